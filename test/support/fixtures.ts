// Test helper: finds the golden fixture set, reads and type-checks manifest.json, and lets tests skip visibly when
// the set is missing. Nothing about the fixtures is hard-coded: names, files, shapes and values come from the
// manifest (schema: ../shared/fixtures/README.md, "manifest.json schema").
//
// Directory: $XLSTM_FIXTURES, else <repo>/../shared/fixtures.
import * as fs from "fs";
import * as path from "path";

/** One tensor of a fixture, as described by the manifest (extra fields are kept). */
export interface FixtureTensor {
  name: string;
  role: string;
  /** safetensors dtype, e.g. "F32", "I64". */
  dtype: string;
  shape: number[];
  layout?: string;
  description?: string;
  /** max |value| (float tensors). */
  max_abs?: number;
  rtol?: number;
  atol?: number;
  fp32_vs_fp64_max_abs_err?: number;
  [key: string]: unknown;
}

/** One fixture entry of the manifest (extra fields are kept). */
export interface FixtureEntry {
  name: string;
  /** File name relative to the fixture directory. */
  file: string;
  bytes: number;
  sha256: string;
  tests?: unknown;
  reference_api?: unknown;
  config_class?: string | null;
  config?: Record<string, unknown> | null;
  derived?: Record<string, unknown>;
  seed?: unknown;
  loss?: unknown;
  param_perturbation?: unknown;
  tolerance?: Record<string, { rtol?: number; atol?: number } | unknown>;
  checks?: unknown;
  notes?: unknown;
  tensors: FixtureTensor[];
  [key: string]: unknown;
}

export interface FixtureManifest {
  format: string;
  format_version: number | string;
  set: string;
  total_bytes?: number;
  fixtures: FixtureEntry[];
  [key: string]: unknown;
}

/** The repository root (this file lives in test/support/). */
export const repoRoot = path.resolve(__dirname, "..", "..");

/** Where the fixtures are looked for: $XLSTM_FIXTURES or <repo>/../shared/fixtures. */
export function fixturesDir(): string {
  const env = process.env.XLSTM_FIXTURES;
  return env && env.length > 0 ? path.resolve(env) : path.resolve(repoRoot, "..", "shared", "fixtures");
}

function fail(where: string, problem: string): never {
  throw new Error(`fixtures manifest: ${where}: ${problem}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Check the fields the tests rely on; a malformed manifest fails loudly instead of silently testing nothing. */
export function validateManifest(m: unknown, source = "manifest.json"): FixtureManifest {
  if (!isObj(m)) fail(source, "top level is not an object");
  if (!Array.isArray(m.fixtures)) fail(source, "`fixtures` is not a list");
  const names = new Set<string>();
  m.fixtures.forEach((f: unknown, i: number) => {
    const where = `fixtures[${i}]`;
    if (!isObj(f)) fail(where, "not an object");
    for (const k of ["name", "file", "sha256"]) if (typeof f[k] !== "string") fail(where, `\`${k}\` is not a string`);
    if (!/^[0-9a-f]{64}$/.test(f.sha256 as string)) fail(`${where} (${f.name})`, "`sha256` is not 64 lowercase hex digits");
    if (!Number.isSafeInteger(f.bytes) || (f.bytes as number) < 0) fail(`${where} (${f.name})`, "`bytes` is not a non-negative integer");
    if (path.isAbsolute(f.file as string) || (f.file as string).split(/[\\/]/).includes(".."))
      fail(`${where} (${f.name})`, "`file` must be a plain relative path");
    if (names.has(f.name as string)) fail(where, `duplicate fixture name ${f.name}`);
    names.add(f.name as string);
    if (!Array.isArray(f.tensors)) fail(`${where} (${f.name})`, "`tensors` is not a list");
    f.tensors.forEach((t: unknown, j: number) => {
      const tw = `${where} (${f.name}).tensors[${j}]`;
      if (!isObj(t)) fail(tw, "not an object");
      if (typeof t.name !== "string") fail(tw, "`name` is not a string");
      if (typeof t.dtype !== "string") fail(`${tw} (${t.name})`, "`dtype` is not a string");
      if (!Array.isArray(t.shape) || !t.shape.every((s) => Number.isSafeInteger(s) && s >= 0))
        fail(`${tw} (${t.name})`, "`shape` is not a list of non-negative integers");
      if (t.max_abs !== undefined && typeof t.max_abs !== "number") fail(`${tw} (${t.name})`, "`max_abs` is not a number");
    });
  });
  return m as FixtureManifest;
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
