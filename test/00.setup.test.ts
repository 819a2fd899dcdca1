// Layer 0: the package installs, the addon loads, and the public entry points work from CJS and ESM.
import { strict as assert } from "assert";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { backends, getNumThreads, setNumThreads, setSimdLevel } from "../lib";
import { native } from "../lib/native";
import { _setPoisonUninit } from "../lib/tensor";

// The whole suite runs with NaN-poisoned uninitialised op outputs (lib/tensor.ts uninitF32): a kernel that leaves an
// output element unwritten then shows NaNs to every test that reads it, instead of whatever the heap held.
_setPoisonUninit(true);

const root = path.resolve(__dirname, "..");

describe("00 setup", () => {
  it("loads the native addon and reports backends", () => {
    const b = backends();
    assert.equal(b.cpu.available, true);
    assert.ok(["scalar", "avx2", "avx512"].includes(b.cpu.simd));
    assert.ok(b.cpu.threads >= 1);
    // the bf16 hardware named is the one bf16Linear's roundX uses (AMX first)
    assert.equal(b.cpu.bf16, native.bf16AmxAvailable() ? "amx" : native.bf16DotAvailable() ? "avx512bf16" : "none");
    assert.equal(typeof b.cuda.compiled, "boolean");
    if (!b.cuda.available) assert.ok(b.cuda.reason && b.cuda.reason.length > 0, "no CUDA must come with a reason");
    else assert.ok(b.cuda.devices.length > 0);
  });

  it("resizes the thread pool and restores the default", () => {
    const before = getNumThreads();
    setNumThreads(3);
    assert.equal(getNumThreads(), 3);
    setNumThreads(0);
    assert.equal(getNumThreads(), before);
    assert.throws(() => setNumThreads(-1), (e: Error) => e instanceof RangeError && /setNumThreads: n/.test(e.message));
    assert.throws(() => setNumThreads("2" as unknown as number), TypeError);
  });

  it("caps the SIMD level and rejects unknown levels", () => {
    const best = backends().cpu.simdSupported;
    assert.equal(setSimdLevel("scalar"), "scalar");
    assert.equal(setSimdLevel(best), best);
    assert.throws(() => setSimdLevel("sse" as never), (e: Error) => e instanceof RangeError && /level/.test(e.message));
  });

  it("is importable from CommonJS and ESM (compiled dist/)", function () {
    assert.ok(fs.existsSync(path.join(root, "dist", "index.js")), "dist/ is built by npm install (prepare)");
    const cjs = execFileSync(process.execPath, ["-e", "const x = require('./dist'); console.log(typeof x.Tensor, typeof x.ops.cat)"], { cwd: root }).toString().trim();
    assert.equal(cjs, "function function");
    const esm = execFileSync(process.execPath, ["--input-type=module", "-e", "import { Tensor, ops } from './dist/index.mjs'; console.log(typeof Tensor, typeof ops.cat)"], { cwd: root }).toString().trim();
    assert.equal(esm, "function function");
  });

  it("only lib/native.ts loads the binding", () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts") && !p.endsWith(path.join("lib", "native.ts")) && /node-gyp-build|\.node["']/.test(fs.readFileSync(p, "utf8"))) offenders.push(p);
      }
    };
    walk(path.join(root, "lib"));
    assert.deepEqual(offenders, []);
  });

  it("gives every CPU kernel file a CUDA twin or a written reason (cuda/TWINS.md)", () => {
    const twins = fs.readFileSync(path.join(root, "cuda", "TWINS.md"), "utf8");
    const missing: string[] = [];
    for (const f of fs.readdirSync(path.join(root, "csrc", "kernels"))) {
      const m = /^([a-z0-9_]+?)(_avx512|_avx2|_amx)?\.cc$/.exec(f);
      if (!m) continue;
      const hasTwin = fs.existsSync(path.join(root, "cuda", `${m[1]}.cu`));
      const listed = new RegExp("^\\|\\s*`" + m[1] + "\\.cc`\\s*\\|\\s*none\\s*\\|\\s*\\S", "m").test(twins);
      if (!hasTwin && !listed) missing.push(f);
    }
    assert.deepEqual(missing, [], "kernel files without a cuda/ twin or a reason in cuda/TWINS.md");
  });

  it("binding.d.ts declares exactly the functions the native module exports", () => {
    const dts = fs.readFileSync(path.join(root, "binding.d.ts"), "utf8");
    const body = dts.slice(dts.indexOf("export interface Binding {"));
    const declared = new Set([...body.matchAll(/^\s{2}([a-zA-Z0-9_]+)\s*(?:<[^>]*>)?\(/gm)].map((m) => m[1]));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const exported = new Set(Object.keys(require("../lib/native").native as object));
    assert.deepEqual([...exported].filter((k) => !declared.has(k)).sort(), [], "exported but not declared in binding.d.ts");
    assert.deepEqual([...declared].filter((k) => !exported.has(k)).sort(), [], "declared in binding.d.ts but not exported");
  });
});
