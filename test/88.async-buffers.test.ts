// Layer 8 (reliability): Promise-based kernel calls whose caller-owned arrays are detached (transferred with
// structuredClone, as postMessage does) or resized (resizable ArrayBuffer) or overwritten while the native work
// runs. N-API cannot pin an ArrayBuffer's memory, so:
//   - the public API (lib/kernels: every *Async export) copies its inputs when the call is made: whatever happens to
//     the caller's arrays afterwards (and a transferred buffer's memory being freed by a GC), the results must equal
//     the sync call's on the original values, bit for bit; a buffer detached BEFORE the call is a clear TypeError;
//     the copies come from a bounded pool that hands an array out again only after its call settled;
//   - the raw binding (lib/native, internal) refuses arrays on resizable buffers up front (a shrink decommits pages),
//     and compares every pinned array with its state when the call was queued, rejecting the promise with a TypeError
//     naming the export and the argument position when one was detached meanwhile (here the transferred memory is
//     kept alive, so the check itself can be observed safely).
// Oracle: independent sync calls on pristine copies of the same inputs.
import { strict as assert } from "assert";
import { kernels } from "../lib";
import { inputPoolStats, POOL_MAX_BYTES, setInputPoolLimits } from "../lib/kernels-inputs";
import { native } from "../lib/native";
import { Generator } from "../lib/rng";

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
type Resizable = ArrayBuffer & { resize(n: number): void; resizable: boolean };

const g = new Generator(88);
function rnd(n: number, std = 0.5): Float32Array {
  return g.fillNormal(new Float32Array(n), 0, std);
}

/** The same values on a fresh buffer of the kind the case asks for. */
function onBuffer(a: Float32Array, kind: "plain" | "resizable" | "shared"): Float32Array {
  if (kind === "plain") return a.slice();
  if (kind === "shared") {
    const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
    s.set(a);
    return s;
  }
  const Ctor = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable;
  const r = new Float32Array(new Ctor(a.byteLength, { maxByteLength: a.byteLength + 64 }));
  r.set(a);
  return r;
}

/** Transfer the buffer away (the clone is dropped, so a GC may free its memory), shrink it, or overwrite it. */
function attack(a: Float32Array, how: "transfer" | "shrink" | "grow" | "overwrite"): void {
  const buf = a.buffer as Resizable;
  if (how === "transfer" && !(buf instanceof SharedArrayBuffer)) structuredClone(buf, { transfer: [buf] });
  else if ((how === "shrink" || how === "grow") && buf.resizable) buf.resize(how === "shrink" ? 0 : buf.byteLength + 64);
  else if (a.length) a.fill(Number.NaN);
}

function sameBits(got: Float32Array | null, want: Float32Array | null, what: string): void {
  assert.ok(got && want, `${what}: missing`);
  assert.equal(got.length, want.length, `${what}: length`);
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length), b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  for (let i = 0; i < a.length; ++i) if (a[i] !== b[i]) assert.fail(`${what}[${i}] = ${got[i]}, expected ${want[i]} (the sync call's)`);
}

const rd = { B: 2, S: 48, NH: 2, DH: 32 }; // H = 64: a few ms per call, long enough to attack a pending call
const H = rd.NH * rd.DH;
const md = { B: 1, NH: 2, S: 96, DHQK: 32, DHV: 32 };
const bh = md.B * md.NH;

interface Case {
  name: string;
  /** fresh inputs (keyed by argument name) */
  make(): Record<string, Float32Array>;
  sync(a: Record<string, Float32Array>): Record<string, Float32Array | null>;
  async(a: Record<string, Float32Array>): Promise<Record<string, Float32Array | null>>;
}

function recurrent(kind: "slstm" | "lstm"): Case[] {
  const ns = kind === "slstm" ? 4 : 2;
  const fwd = kind === "slstm" ? kernels.slstmForward : kernels.lstmForward;
  const fwdA = kind === "slstm" ? kernels.slstmForwardAsync : kernels.lstmForwardAsync;
  const bwd = kind === "slstm" ? kernels.slstmBackward : kernels.lstmBackward;
  const bwdA = kind === "slstm" ? kernels.slstmBackwardAsync : kernels.lstmBackwardAsync;
  const base = () => ({ x: rnd(rd.B * rd.S * 4 * H), R: rnd(rd.NH * rd.DH * 4 * rd.DH, 0.1), bias: rnd(4 * H), state0: rnd(ns * rd.B * H) });
  const asFwd = (a: Record<string, Float32Array>) => ({ x: a.x, R: a.R, bias: a.bias, state0: a.state0, ...rd });
  return [
    {
      name: `${kind}ForwardAsync`,
      make: base,
      sync: (a) => ({ ...fwd(asFwd(a)) }),
      async: async (a) => ({ ...(await fwdA(asFwd(a))) }),
    },
    {
      name: `${kind}BackwardAsync`,
      make: () => {
        const a = base();
        const f = fwd(asFwd(a));
        return { gates: f.gates, states: f.states, R: a.R, state0: a.state0, dy: rnd(rd.B * rd.S * H), dstateFinal: rnd(ns * rd.B * H) };
      },
      sync: (a) => ({ ...bwd({ gates: a.gates, states: a.states, R: a.R, state0: a.state0, dy: a.dy, dstateFinal: a.dstateFinal, ...rd }) }),
      async: async (a) => ({ ...(await bwdA({ gates: a.gates, states: a.states, R: a.R, state0: a.state0, dy: a.dy, dstateFinal: a.dstateFinal, ...rd })) }),
    },
  ];
}

/** The kernel argument objects take named arrays; the cases keep them in a record. */
type MlstmArrays = { q: Float32Array; k: Float32Array; v: Float32Array; i: Float32Array; f: Float32Array; saved: Float32Array; h: Float32Array; dh: Float32Array };
const M = (a: Record<string, Float32Array>) => a as unknown as MlstmArrays;

function mlstmInputs(): Record<string, Float32Array> {
  return { q: rnd(bh * md.S * md.DHQK), k: rnd(bh * md.S * md.DHQK), v: rnd(bh * md.S * md.DHV), i: rnd(bh * md.S), f: rnd(bh * md.S, 2), c0: rnd(bh * md.DHQK * md.DHV), n0: rnd(bh * md.DHQK), m0: rnd(bh, 0.1) };
}

const CASES: Case[] = [
  ...recurrent("slstm"),
  ...recurrent("lstm"),
  {
    name: "mlstmChunkwiseForwardAsync",
    make: mlstmInputs,
    sync: (a) => ({ ...kernels.mlstmChunkwiseForward({ ...M(a), ...md, chunkSize: 32 }) }),
    async: async (a) => ({ ...(await kernels.mlstmChunkwiseForwardAsync({ ...M(a), ...md, chunkSize: 32 })) }),
  },
  {
    name: "mlstmChunkwiseBackwardAsync",
    make: () => {
      const a = mlstmInputs();
      const f = kernels.mlstmChunkwiseForward({ ...M(a), ...md, chunkSize: 32 });
      return { ...a, saved: f.saved!, h: f.h, dh: rnd(bh * md.S * md.DHV), dc: rnd(bh * md.DHQK * md.DHV), dn: rnd(bh * md.DHQK) };
    },
    sync: (a) => ({ ...kernels.mlstmChunkwiseBackward({ ...M(a), ...md, chunkSize: 32 }) }),
    async: async (a) => ({ ...(await kernels.mlstmChunkwiseBackwardAsync({ ...M(a), ...md, chunkSize: 32 })) }),
  },
  {
    name: "mlstmRecurrentForwardAsync",
    make: mlstmInputs,
    sync: (a) => ({ ...kernels.mlstmRecurrentForward({ ...M(a), ...md }) }),
    async: async (a) => ({ ...(await kernels.mlstmRecurrentForwardAsync({ ...M(a), ...md })) }),
  },
  {
    name: "mlstmRecurrentBackwardAsync",
    make: () => {
      const a = mlstmInputs();
      const f = kernels.mlstmRecurrentForward({ ...M(a), ...md });
      return { ...a, saved: f.saved!, dh: rnd(bh * md.S * md.DHV), dc: rnd(bh * md.DHQK * md.DHV), dn: rnd(bh * md.DHQK) };
    },
    sync: (a) => ({ ...kernels.mlstmRecurrentBackward({ ...M(a), ...md }) }),
    async: async (a) => ({ ...(await kernels.mlstmRecurrentBackwardAsync({ ...M(a), ...md })) }),
  },
];

const KINDS = ["plain", "resizable", "shared"] as const;
const ATTACKS = ["transfer", "shrink", "grow", "overwrite"] as const;

describe("88 async calls and detachable / resizable buffers", function () {
  this.timeout(60_000);

  it("lib/kernels: transferring, shrinking, growing or overwriting the inputs while calls are pending changes nothing (8 exports x 12 rounds)", async () => {
    let attacks = 0, transferred = 0;
    for (const c of CASES) {
      for (let round = 0; round < 12; ++round) {
        const original = c.make();
        const want = c.sync(Object.fromEntries(Object.entries(original).map(([k, v]) => [k, v.slice()])));
        // the caller's arrays: each on a plain, resizable or shared buffer
        const mine = Object.fromEntries(Object.entries(original).map(([k, v], j) => [k, onBuffer(v, KINDS[(round + j) % 3])]));
        // two calls in flight on the same arrays, then every array attacked, some right away, some a tick later
        const pending = [c.async(mine), c.async(mine)];
        const names = Object.keys(mine);
        const now = names.filter((_, j) => (round + j) % 2 === 0), later = names.filter((_, j) => (round + j) % 2 === 1);
        for (const [j, k] of now.entries()) attack(mine[k], ATTACKS[(round + j) % 4]);
        await new Promise((r) => setImmediate(r));
        for (const [j, k] of later.entries()) attack(mine[k], ATTACKS[(round + j + 1) % 4]);
        attacks += names.length;
        transferred += names.filter((k) => mine[k].buffer.byteLength === 0).length;
        gc(); // frees the memory of buffers whose transferred clones were dropped
        const results = await Promise.all(pending);
        for (const got of results)
          for (const [k, w] of Object.entries(want)) if (w) sameBits(got[k] as Float32Array, w as Float32Array, `${c.name} round ${round}: ${k}`);
      }
    }
    assert.ok(transferred > 50, `only ${transferred} arrays were detached or shrunk to 0`);
    console.log(`      ${CASES.length * 12 * 2} calls, ${attacks} arrays attacked (${transferred} of them transferred away or shrunk to 0 while pending): every result equal to the sync call's`);
  });

  it("lib/kernels: the private copies come from a bounded pool: calls pending together get their own, arrays are reused after their call settles, the pool empties when idle", async () => {
    setInputPoolLimits(); // the defaults, an empty pool
    try {
      // every export, 4 calls each with inputs of their own, all pending at once (and the pool warm from round 2 on)
      for (let round = 0; round < 3; ++round) {
        const checks: Promise<void>[] = [];
        for (const c of CASES)
          for (let r = 0; r < 4; ++r) {
            const a = c.make();
            const want = c.sync(Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v.slice()])));
            const pending = c.async(a);
            for (const v of Object.values(a)) v.fill(Number.NaN); // the caller reuses its arrays at once
            checks.push(pending.then((got) => {
              for (const [k, w] of Object.entries(want)) if (w) sameBits(got[k] as Float32Array, w as Float32Array, `${c.name} round ${round} call ${r}: ${k}`);
            }));
          }
        await Promise.all(checks);
        const s = inputPoolStats();
        assert.ok(s.arrays > 0 && s.bytes <= POOL_MAX_BYTES, `after round ${round}: ${JSON.stringify(s)}`);
      }
      // a pending call holds arrays taken from the pool and gives them back when it settles
      const c = CASES[1];
      const before = inputPoolStats().arrays;
      const p = c.async(c.make());
      const during = inputPoolStats().arrays;
      await p;
      assert.ok(during < before, `a call took no pooled array (${before} pooled before it, ${during} while it ran)`);
      assert.equal(inputPoolStats().arrays, before, "the call's arrays went back to the pool");
      // a call the binding refuses (R of the wrong length) still gives back what it took
      const bad = c.make();
      bad.R = bad.R.subarray(1);
      const n0 = inputPoolStats().arrays;
      await assert.rejects(c.async(bad), /R/);
      assert.ok(inputPoolStats().arrays >= n0, `a refused call kept pooled arrays (${n0} before, ${inputPoolStats().arrays} after)`);
      // the bounds: at most maxBytes kept, and nothing after idleMs without calls
      setInputPoolLimits({ maxBytes: 1 << 16, idleMs: 40 });
      await Promise.all(CASES.map((k) => k.async(k.make())));
      const capped = inputPoolStats();
      assert.ok(capped.arrays > 0 && capped.bytes <= 1 << 16, `capped pool: ${JSON.stringify(capped)}`);
      await new Promise((r) => setTimeout(r, 150));
      assert.deepEqual(inputPoolStats(), { arrays: 0, bytes: 0 }, "the idle pool emptied itself");
    } finally {
      setInputPoolLimits();
    }
  });

  it("lib/kernels: an input detached before the call is a TypeError naming it (sync and async)", async () => {
    for (const c of CASES) {
      const a = c.make();
      const victim = Object.keys(a)[1];
      structuredClone(a[victim].buffer, { transfer: [a[victim].buffer as ArrayBuffer] });
      const re = new RegExp(`^kernels\\.${c.name}: ${victim} is detached \\(its ArrayBuffer was transferred`);
      await assert.rejects(c.async(a), (e: Error) => e instanceof TypeError && re.test(e.message));
      const syncName = c.name.replace(/Async$/, "");
      assert.throws(() => c.sync(a), (e: Error) => e instanceof TypeError && new RegExp(`^kernels\\.${syncName}: ${victim} is detached`).test(e.message));
    }
  });

  it("raw binding: an array detached or resized while its call is pending rejects the promise naming the export and the argument", async () => {
    const B = rd.B, S = rd.S, NH = rd.NH, DH = rd.DH;
    const fresh = () => ({ y: new Float32Array(B * S * H), states: new Float32Array(4 * S * B * H), gates: new Float32Array(B * S * 4 * H), x: rnd(B * S * 4 * H), R: rnd(NH * DH * 4 * DH, 0.1), bias: rnd(4 * H) });
    const call = (a: ReturnType<typeof fresh>) => native.slstmForwardAsync(a.y, a.states, a.gates, a.x, null, a.R, a.bias, B, S, NH, DH);
    const kept: ArrayBuffer[] = []; // transferred memory stays alive here, so the pending work cannot touch freed memory
    for (let round = 0; round < 6; ++round) {
      // an input (x, argument 3) and an output (gates, argument 2) transferred away while pending
      for (const [name, index] of [["x", 3], ["gates", 2]] as const) {
        const a = fresh();
        const p = call(a);
        kept.push(structuredClone(a[name].buffer as ArrayBuffer, { transfer: [a[name].buffer as ArrayBuffer] }));
        await assert.rejects(p, (e: Error) => e instanceof TypeError && new RegExp(`^slstmForwardAsync: array argument #${index} \\(\\d+ elements, now detached\\) was detached \\(transferred\\) or resized while the call was pending`).test(e.message));
      }
      // R (argument 5) on a resizable buffer: a shrink would decommit pages under the kernel, so it is refused up front
      const a = fresh();
      a.R = onBuffer(a.R, "resizable");
      assert.throws(() => call(a), (e: Error) => e instanceof TypeError && /^slstmForwardAsync: array argument #5 is on a resizable ArrayBuffer, which could shrink under the running work/.test(e.message));
      // untouched arrays (also on a SharedArrayBuffer) resolve as before
      const ok = fresh();
      ok.x = onBuffer(ok.x, "shared");
      await call(ok);
      const ref = kernels.slstmForward({ x: ok.x.slice(), R: ok.R, bias: ok.bias, ...rd });
      sameBits(ok.y, ref.y, "slstmForwardAsync y");
    }
    // gemmAsync pins a, b, c (#0, #1, #2)
    const n = 64;
    const A = rnd(n * n), Bm = rnd(n * n), C = new Float32Array(n * n);
    const p = native.gemmAsync(false, false, n, n, n, 1, A, Bm, 0, C);
    kept.push(structuredClone(Bm.buffer as ArrayBuffer, { transfer: [Bm.buffer as ArrayBuffer] }));
    await assert.rejects(p, (e: Error) => e instanceof TypeError && /^gemmAsync: array argument #1 \(4096 elements, now detached\)/.test(e.message));
    assert.ok(kept.every((b) => b.byteLength > 0));
  });
});
