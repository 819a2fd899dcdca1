// Test helper: finds the golden fixture set, reads and type-checks manifest.json, and lets tests skip visibly when
// the set is missing. Nothing about the fixtures is hard-coded: names, files, shapes and values come from the
// manifest (schema: ../shared/fixtures/README.md, "manifest.json schema").
//
// Directory: $XLSTM_FIXTURES, else <repo>/../shared/fixtures.
import * as fs from "fs";
import * as path from "path";
import { FixtureEntry, FixtureManifest, validateManifest } from "../../lib/fixtures/manifest";

export type { FixtureEntry, FixtureManifest, FixtureTensor } from "../../lib/fixtures/manifest";
export { validateManifest };

/** The repository root (this file lives in test/support/). */
export const repoRoot = path.resolve(__dirname, "..", "..");

/** Where the fixtures are looked for: $XLSTM_FIXTURES or <repo>/../shared/fixtures. */
export function fixturesDir(): string {
  const env = process.env.XLSTM_FIXTURES;
  return env && env.length > 0 ? path.resolve(env) : path.resolve(repoRoot, "..", "shared", "fixtures");
}

export type FixtureAvailability = { ok: true; dir: string; manifest: FixtureManifest } | { ok: false; dir: string; reason: string };

let cached: { dir: string; result: FixtureAvailability } | undefined;

/**
 * Whether the fixture set can be used: { ok, dir, manifest } or { ok: false, reason }. A missing directory or
 * manifest is "not available" (tests skip); a manifest that exists but is malformed throws (tests fail).
 */
export function fixturesAvailable(): FixtureAvailability {
  const dir = fixturesDir();
  if (cached && cached.dir === dir) return cached.result;
  let result: FixtureAvailability;
  const manifestPath = path.join(dir, "manifest.json");
  if (!fs.existsSync(dir)) result = { ok: false, dir, reason: `fixture directory ${dir} not found (set XLSTM_FIXTURES)` };
  else if (!fs.existsSync(manifestPath)) result = { ok: false, dir, reason: `${manifestPath} not found` };
  else {
    let parsed: unknown;
    try {
      parsed = JSON.parse(fs.readFileSync(manifestPath, "utf8"));
    } catch (e) {
      throw new Error(`fixtures manifest: ${manifestPath} is not valid JSON: ${(e as Error).message}`);
    }
    result = { ok: true, dir, manifest: validateManifest(parsed, manifestPath) };
  }
  cached = { dir, result };
  return result;
}

/** The manifest; throws with the reason when the fixtures are not available. */
export function loadManifest(): FixtureManifest {
  const a = fixturesAvailable();
  if (!a.ok) throw new Error(`fixtures not available: ${a.reason}`);
  return a.manifest;
}

/** Absolute path of a fixture's file. */
export function fixturePath(entry: FixtureEntry): string {
  return path.join(fixturesDir(), entry.file);
}

/** The manifest entry named `name` (throws, listing the known names, if absent). */
export function fixtureEntry(name: string): FixtureEntry {
  const m = loadManifest();
  const e = m.fixtures.find((f) => f.name === name);
  if (!e) throw new Error(`fixtures manifest has no fixture ${JSON.stringify(name)} (has: ${m.fixtures.map((f) => f.name).join(", ")})`);
  return e;
}

/**
 * `describe(title, ...)` over the fixture set. When it is missing, registers one skipped test whose title carries
 * the reason, so the skip is visible in the report.
 * @example describeFixtures("fixtures", (manifest, dir) => { for (const f of manifest.fixtures) it(f.name, ...); });
 */
export function describeFixtures(title: string, body: (manifest: FixtureManifest, dir: string) => void): void {
  const a = fixturesAvailable();
  describe(title, () => {
    if (a.ok) body(a.manifest, a.dir);
    else it.skip(`${title} (skipped: ${a.reason})`, () => undefined);
  });
}
