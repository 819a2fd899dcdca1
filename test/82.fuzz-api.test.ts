// Layer 8 (reliability): bad calls. Seeded fuzzing of the native binding (every export, found at run time) and
// of the public ops with wrong kinds, lengths and dtypes, absurd sizes (2^40, negative, NaN, fractional, zero next
// to huge), aliased and overlapping outputs, detached / shared / resizable / unaligned typed arrays, holey arrays
// and arrays whose getters throw, null/undefined anywhere, and non-finite data. Each fuzzer runs in a child
// process (test/support/fuzz.ts), so a native crash fails the test with its signal and the last case instead of
// killing mocha; a hang is killed and reported the same way.
// Oracle: every call returns (variants such as an unaligned or shared copy must give the plain call's results)
// or throws an Error; native errors start with "<export>: ". Valid calls of every export must succeed (CUDA ones
// when a GPU is present). The ops (driver: test/82.fuzz-ops-driver.ts) are held to more: every error is a
// TypeError/RangeError that starts with the op's name and names the argument (a non-Tensor, a fake Tensor or one
// whose storage was detached / shrunk gives "ops.linear: weight must be a Tensor, got undefined"), never an engine
// error. XLSTM_FUZZ_LONG=1 runs 50x more cases; XLSTM_FUZZ_SEED changes the seed.
import { strict as assert } from "assert";
import type { NativeFuzzResult } from "./support/fuzz-api";
import type { OpsFuzzResult, SweepResult } from "./82.fuzz-ops-driver";
import { childFailure, FUZZ_LONG, FUZZ_SEED, fuzzCases, runInChild } from "./support/fuzz";
import { native } from "../lib/native";
import * as ops from "../lib/ops";

const DRIVER = "test/support/fuzz-api.ts";
const OPS_DRIVER = "test/82.fuzz-ops-driver.ts";

describe("82 fuzz: bad calls never crash", function () {
  this.timeout(FUZZ_LONG ? 3_600_000 : 120_000);

  it("the harness reports a native crash with its signal and the case that caused it", async () => {
    const r = await runInChild(DRIVER, "selfTestCrash", {}, { timeoutMs: 30_000 });
    assert.equal(r.signal, "SIGSEGV");
    assert.equal(r.lastCase, "self-test: about to crash");
    assert.match(childFailure(r) ?? "", /killed by SIGSEGV; last case: self-test: about to crash/);
  });

  it("the harness kills a hung child and reports the case", async () => {
    const r = await runInChild(DRIVER, "selfTestHang", {}, { timeoutMs: 2_000 });
    assert.ok(r.timedOut);
    assert.match(childFailure(r) ?? "", /hung .*last case: self-test: about to hang/);
  });

  it("inferCreate: getters that detach or shrink an already validated array are caught before anything is copied", async function () {
    if (typeof (native as unknown as Record<string, unknown>).inferCreate !== "function") this.skip();
    const r = await runInChild<{ case: string; outcome: string }[]>(DRIVER, "inferCreateToctou", {}, { timeoutMs: 60_000, nodeArgs: ["--expose-gc"] });
    const fail = childFailure(r);
    assert.equal(fail, null, fail ?? "");
    assert.equal(r.result!.length, 3);
    for (const { case: what, outcome } of r.result!)
      assert.match(outcome, /^TypeError: inferCreate: params\["token_embedding\.weight"\] was detached or resized while inferCreate read its arguments$/, `${what}: ${outcome}`);
  });

  it(`native binding: ${fuzzCases(6000, 300000)} seeded hostile calls over every export`, async () => {
    const cases = fuzzCases(6000, 300000);
    const r = await runInChild<NativeFuzzResult>(DRIVER, "fuzzNative", { seed: FUZZ_SEED + 82, cases }, { timeoutMs: FUZZ_LONG ? 3_000_000 : 90_000 });
    const fail = childFailure(r);
    assert.equal(fail, null, fail ?? "");
    const res = r.result!;
    assert.equal(res.cases, cases);
    assert.deepEqual(res.findings, [], res.findings.map((f) => f.problem).join("\n"));
    // every export of this build was called, and every export with a template ran a valid call successfully
    const exported = Object.keys(native).filter((k) => typeof (native as unknown as Record<string, unknown>)[k] === "function");
    const cuda = native.backends().cuda.available;
    const idle: string[] = [];
    for (const name of exported) {
      const s = res.byExport[name];
      assert.ok(s && s.cases > 0, `${name} was never called`);
      if (!res.exportsWithoutTemplate.includes(name) && s.validOk === 0 && !(name.startsWith("cuda") && !cuda)) idle.push(`${name} (${s.validCalls} valid calls)`);
    }
    assert.deepEqual(idle, [], `no successful valid call: ${idle.join(", ")}`);
    const thrown = Object.values(res.errorKinds).reduce((a, b) => a + b, 0);
    console.log(`      ${res.cases} calls to ${exported.length} exports (${exported.length - res.exportsWithoutTemplate.length} with templates): ${thrown} refused (${Object.entries(res.errorKinds).map(([k, v]) => `${v} ${k}`).join(", ")}), the rest ran; child ${r.ms} ms`);
    if (res.exportsWithoutTemplate.length) console.log(`      garbage-only (no template yet): ${res.exportsWithoutTemplate.join(", ")}`);
  });

  it("lib/ops: every op x every argument x every hostile value ends in a TypeError/RangeError naming the op and the argument", async () => {
    const r = await runInChild<SweepResult>(OPS_DRIVER, "sweepOps", { seed: FUZZ_SEED + 84 }, { timeoutMs: 60_000 });
    const fail = childFailure(r);
    assert.equal(fail, null, fail ?? "");
    const res = r.result!;
    // every function lib/ops exports has a signature in the driver (a new op must be added there, with its checks)
    const exported = Object.keys(ops).filter((k) => typeof (ops as unknown as Record<string, unknown>)[k] === "function").sort();
    assert.deepEqual(Object.keys(res.byOp).sort(), exported);
    assert.deepEqual(res.findings, [], res.findings.map((f) => `${f.case}: ${f.problem}`).join("\n"));
    assert.ok(res.threw > res.cases * 0.8, `only ${res.threw} of ${res.cases} hostile calls threw`);
    console.log(`      ${res.cases} hostile calls over ${exported.length} ops: ${res.threw} threw (${res.messages} distinct messages, each naming the op and the argument), ${res.ok} ran; child ${r.ms} ms`);
  });

  it(`lib/ops: ${fuzzCases(20000, 1000000)} seeded random calls, 70% mutated: every error names the op and an argument, no engine errors`, async () => {
    const cases = fuzzCases(20000, 1000000);
    const r = await runInChild<OpsFuzzResult>(OPS_DRIVER, "fuzzOps", { seed: FUZZ_SEED + 83, cases }, { timeoutMs: FUZZ_LONG ? 3_000_000 : 90_000 });
    const fail = childFailure(r);
    assert.equal(fail, null, fail ?? "");
    const res = r.result!;
    assert.deepEqual(res.findings, [], res.findings.map((f) => `${f.case}: ${f.problem}`).join("\n"));
    assert.ok(res.ok > cases / 4 && res.threw > cases / 4, `ok ${res.ok}, threw ${res.threw}`);
    assert.ok(res.backwardOk > cases / 10, `backward ran ${res.backwardOk} times`);
    console.log(`      ${res.cases} op calls (${Object.keys(res.byOp).length} ops): ${res.ok} ran (${res.backwardOk} also backward), ${res.threw} threw, all with checked messages; child ${r.ms} ms`);
  });
});
