// Layer 2: the CUDA twin of the mLSTM cell (cuda/mlstm.cu; CPU kernels csrc/kernels/mlstm.cc). Without a GPU: the
// host replay of every launch's write maps (each output element of h, the states, `saved` and every gradient written
// exactly once, at awkward sizes), the "CUDA is not available" errors and bad input. With a GPU: CPU-vs-GPU parity of
// h, the final states, `saved` and every gradient, both forms, at awkward shapes (S = 1, S = chunk + 1, B = 1, NH = 3,
// DHQK != DHV, head dims above the 64-column tiles, a long S = 1000). Also without a GPU (CUDA builds): the host
// replays of the launches (the kernels' own code on the host) against the CPU at the same shapes.
import { strict as assert } from "assert";
import { backends, Generator } from "../lib";
import { native } from "../lib/native";

const cuda = backends().cuda;
const itCuda = cuda.available && !cuda.emulated ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);
const itNoCuda = !cuda.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: a CUDA device is available]`, fn);
const itCompiled = cuda.compiled ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: built without CUDA]`, fn);

interface Shape {
  B: number;
  NH: number;
  S: number;
  DK: number;
  DV: number;
  L: number;
}

// awkward sizes: S = 1, S = chunk + 1, S not a multiple of the chunk, chunk > S, B = 1, NH = 3, DHQK != DHV, odd
// head dims, dims above the tile widths (64 output columns, 32-wide dot slices), a chunk of 1, a chunk over 128 (one
// tile-kernel block per output tile) and a long sequence
const SHAPES: Shape[] = [
  { B: 1, NH: 1, S: 1, DK: 8, DV: 12, L: 64 },
  { B: 2, NH: 3, S: 65, DK: 8, DV: 12, L: 64 },
  { B: 1, NH: 3, S: 17, DK: 5, DV: 3, L: 4 },
  { B: 2, NH: 1, S: 37, DK: 65, DV: 130, L: 100 },
  { B: 1, NH: 2, S: 9, DK: 3, DV: 7, L: 1 },
  { B: 1, NH: 1, S: 33, DK: 33, DV: 1, L: 16 },
  { B: 1, NH: 2, S: 300, DK: 20, DV: 70, L: 150 }, // a chunk above the tile kernel's all-columns limit (128)
];
const LONG: Shape = { B: 1, NH: 3, S: 1000, DK: 8, DV: 12, L: 64 };

const COVERAGE_OUTPUTS = ["h", "cLast", "nLast", "mLast", "saved"].flatMap((o) => [`chunkwiseForward.${o}`, `recurrentForward.${o}`])
  .concat(["dq", "dk", "dv", "di", "df", "dc0", "dn0", "dm0"].flatMap((o) => [`chunkwiseBackward.${o}`, `recurrentBackward.${o}`]))
  .concat(["tile.sharedSlots", "fused.h", "fused.dq", "fused.dk", "fused.dv"]);

function randn(n: number, seed: number, mean = 0, std = 1): Float32Array {
  const out = new Float32Array(n);
  new Generator(seed).fillNormal(out, mean, std);
  return out;
}
const Z = (n: number) => new Float32Array(n);

/**
 * max |a − b| / max(max |b|, floor) (the error relative to the array's scale, or to `floor` where the array is a
 * cancelling sum of larger terms; 0 for two zero arrays); NaN / length mismatch fail.
 */
function relErr(a: Float32Array, b: Float32Array, what: string, floor = 0): number {
  assert.equal(a.length, b.length, `${what}: length`);
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; ++i) {
    assert.ok(Number.isFinite(a[i]) === Number.isFinite(b[i]), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
    if (!Number.isFinite(b[i])) {
      assert.equal(a[i], b[i], `${what}[${i}]`);
      continue;
    }
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  scale = Math.max(scale, floor);
  return scale === 0 ? diff : diff / scale;
}
function close(gpu: Float32Array, cpu: Float32Array, what: string, tol: number, floor = 0): void {
  const e = relErr(gpu, cpu, what, floor);
  assert.ok(e <= tol, `${what}: GPU vs CPU max error ${e.toExponential(2)} of the array's scale > ${tol}`);
}

interface Case {
  s: Shape;
  withState: boolean;
  parallelInit: boolean;
  finalCot: boolean;
  seed: number;
  // gates that keep the entering state dominant through the chunk (forget gates ~ σ(8), input gates ~ −4, m0 ~ 2):
  // β ≈ 1 at every row, so the inter-chunk term is most of h even in a long chunk's later row tiles
  stateDominant?: boolean;
}

function inputs(c: Case) {
  const { B, NH, S, DK, DV } = c.s;
  const bh = B * NH;
  let seed = c.seed;
  return {
    q: randn(bh * S * DK, seed++),
    k: randn(bh * S * DK, seed++),
    v: randn(bh * S * DV, seed++),
    // input gates around 0, forget gates mostly open (as trained models have them) with a spread that makes the
    // stabiliser switch between the decay and input branches
    i: randn(bh * S, seed++, c.stateDominant ? -4 : 0, 2),
    f: randn(bh * S, seed++, c.stateDominant ? 8 : 3, 2),
    c0: c.withState ? randn(bh * DK * DV, seed++, 0, 0.5) : null,
    n0: c.withState ? randn(bh * DK, seed++, 0, 0.5) : null,
    m0: c.withState ? randn(bh, seed++, c.stateDominant ? 2 : 0, 1) : null,
    dh: randn(bh * S * DV, seed++),
    dcLast: c.finalCot ? randn(bh * DK * DV, seed++) : null,
    dnLast: c.finalCot ? randn(bh * DK, seed++) : null,
  };
}

type Fwd = { h: Float32Array; cLast: Float32Array; nLast: Float32Array; mLast: Float32Array; saved: Float32Array };
type Bwd = Record<"dq" | "dk" | "dv" | "di" | "df" | "dc0" | "dn0" | "dm0", Float32Array>;

// bfloat16 rounding (nearest even) of each element, in place
function roundBf16(a: Float32Array): void {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let j = 0; j < u.length; ++j) u[j] = (((u[j] + 0x7fff + ((u[j] >>> 16) & 1)) >>> 16) << 16) >>> 0;
}

// gpu: the CUDA host entries (a GPU), or with emulate the host replays of their launches (no GPU), else the CPU.
// bf16: the form under the bf16 autocast ("exact": its host replay with the products unrounded); roundQkv: q, k and v
// rounded to bf16 first (for the CPU reference of what bf16 operands alone change).
function runChunkwise(c: Case, gpu: boolean, emulate = false, bf16: "" | "round" | "exact" = "", roundQkv = false): { fw: Fwd; bw: Bwd } {
  const { B, NH, S, DK, DV, L } = c.s;
  const bh = B * NH;
  const x = inputs(c);
  if (roundQkv) [x.q, x.k, x.v].forEach(roundBf16);
  const extra = bf16 === "exact" ? [true] : [];
  const fw: Fwd = { h: Z(bh * S * DV), cLast: Z(bh * DK * DV), nLast: Z(bh * DK), mLast: Z(bh), saved: Z(native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, L)) };
  const fwdFn = bf16 ? (emulate ? native.cudaMlstmChunkwiseForwardBf16Emulate : native.cudaMlstmChunkwiseForwardBf16Host)
    : emulate ? native.cudaMlstmChunkwiseForwardEmulate : gpu ? native.cudaMlstmChunkwiseForwardHost : native.mlstmChunkwiseForward;
  (fwdFn as (...a: unknown[]) => void)(fw.h, fw.cLast, fw.nLast, fw.mLast, fw.saved, x.q, x.k, x.v, x.i, x.f, x.c0, x.n0, x.m0, B, NH, S, DK, DV, L, 1e-6, c.parallelInit, ...extra);
  const bw: Bwd = { dq: Z(bh * S * DK), dk: Z(bh * S * DK), dv: Z(bh * S * DV), di: Z(bh * S), df: Z(bh * S), dc0: Z(bh * DK * DV), dn0: Z(bh * DK), dm0: Z(bh) };
  const bwdFn = bf16 ? (emulate ? native.cudaMlstmChunkwiseBackwardBf16Emulate : native.cudaMlstmChunkwiseBackwardBf16Host)
    : emulate ? native.cudaMlstmChunkwiseBackwardEmulate : gpu ? native.cudaMlstmChunkwiseBackwardHost : native.mlstmChunkwiseBackward;
  (bwdFn as (...a: unknown[]) => void)(bw.dq, bw.dk, bw.dv, bw.di, bw.df, bw.dc0, bw.dn0, bw.dm0, fw.saved, fw.h, x.dh, x.dcLast, x.dnLast, x.q, x.k, x.v, x.i, x.f, B, NH, S, DK, DV, L, 1e-6, ...extra);
  return { fw, bw };
}

function runRecurrent(c: Case, gpu: boolean, emulate = false): { fw: Fwd; bw: Bwd } {
  const { B, NH, S, DK, DV } = c.s;
  const bh = B * NH;
  const x = inputs(c);
  const fw: Fwd = { h: Z(bh * S * DV), cLast: Z(bh * DK * DV), nLast: Z(bh * DK), mLast: Z(bh), saved: Z(native.mlstmRecurrentSavedSize(B, NH, S, DK, DV)) };
  const fwdFn = emulate ? native.cudaMlstmRecurrentForwardEmulate : gpu ? native.cudaMlstmRecurrentForwardHost : native.mlstmRecurrentForward;
  fwdFn(fw.h, fw.cLast, fw.nLast, fw.mLast, fw.saved, x.q, x.k, x.v, x.i, x.f, x.c0, x.n0, x.m0, B, NH, S, DK, DV, 1e-6);
  const bw: Bwd = { dq: Z(bh * S * DK), dk: Z(bh * S * DK), dv: Z(bh * S * DV), di: Z(bh * S), df: Z(bh * S), dc0: Z(bh * DK * DV), dn0: Z(bh * DK), dm0: Z(bh) };
  const bwdFn = emulate ? native.cudaMlstmRecurrentBackwardEmulate : gpu ? native.cudaMlstmRecurrentBackwardHost : native.mlstmRecurrentBackward;
  bwdFn(bw.dq, bw.dk, bw.dv, bw.di, bw.df, bw.dc0, bw.dn0, bw.dm0, fw.saved, x.dh, x.dcLast, x.dnLast, x.q, x.k, x.v, x.i, x.f, B, NH, S, DK, DV, 1e-6);
  return { fw, bw };
}

// Tolerances (error relative to each array's largest magnitude). Both sides compute in float32 with the same gate
// math (mlstm_math.h, fm_exp) and double gate sums; they differ in summation order only: the GPU adds the L x L
// tiles in 32-column blocks and reduces by trees, the CPU in its vector-lane order. Float32 sums of n terms differ by
// up to ~n·2⁻²⁴ of their magnitude between orders (n ≤ 2·(L + DHQK) ≈ 400 here: ~3e-5); the backward composes two such
// products (δ, ρ and Λ feed the gradient tiles) and the forget-gate gradient is a suffix sum over the sequence of
// terms that largely cancel, so 2e-4 leaves margin without hiding a wrong index (a missed or doubled term is an
// O(1/L) relative error, > 1e-2). The long case accumulates 1000 steps / 16 chunk states (recurrent state errors grow
// ~linearly with the step count): 2e-3.
const TOL = 2e-4;
const TOL_LONG = 2e-3;

// ∂f̃ is σ(−f̃) times a suffix sum of the terms r_u = q·∂q − k·∂k (and ⟨Λ_NC, C_NC⟩) that cancels: exactly to 0
// where no state depends on the forget gate (S = 1 without an initial state, say), leaving rounding noise of the
// terms' size. Its errors are therefore measured against the scale of those terms, max |∂ĩ| = max |k·∂k|, too.
function compare(name: string, gpu: { fw: Fwd; bw: Bwd }, cpu: { fw: Fwd; bw: Bwd }, tol: number): void {
  for (const k of ["h", "cLast", "nLast", "mLast", "saved"] as const) close(gpu.fw[k], cpu.fw[k], `${name} ${k}`, tol);
  const diScale = cpu.bw.di.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (const k of ["dq", "dk", "dv", "di", "df", "dc0", "dn0", "dm0"] as const) close(gpu.bw[k], cpu.bw[k], `${name} ${k}`, tol, k === "df" ? diScale : 0);
}

// The bf16 form (cuda/mlstm_bf16.cuh). Its composition is checked exactly: with the products unrounded its host replay
// must equal the CPU's float32 kernels to float32 rounding (TOL; gradients that cancel to exactly 0, S = 1 without a
// state, leave noise of ~1e-7 next to O(1) inputs, hence a floor of 1e-2 for the gradients' scale). Its numerics are
// then bounded by the problem's own sensitivity to bf16 operands: E_ref = how far the CPU's results move when q, k, v
// alone are rounded to bf16; the bf16 form also rounds the weights, the gate-scaled rows and the states it multiplies,
// about as much again, so each array must stay within 4 E_ref + 5e-3 of the CPU (measured: ~1 E_ref at the larger
// shapes, up to ~9 E_ref on arrays whose E_ref is tiny, covered by the 5e-3). A wrong index is an O(1) error. The
// gradients are measured against the largest of |dq|, |dk|, |dv|: where a position only sees itself (S = 1, no
// state) dq, dk and the gate gradients cancel to exactly 0, which float32 keeps (same terms on both sides of the
// cancellation) and bf16 operands leave as a residue of the terms' size times 2⁻⁸.
const BF16_FLOOR = 1e-2;
function compareBf16Exact(name: string, got: { fw: Fwd; bw: Bwd }, cpu: { fw: Fwd; bw: Bwd }): void {
  for (const k of ["h", "cLast", "nLast", "mLast", "saved"] as const) close(got.fw[k], cpu.fw[k], `${name} ${k}`, TOL);
  for (const k of ["dq", "dk", "dv", "di", "df", "dc0", "dn0", "dm0"] as const) close(got.bw[k], cpu.bw[k], `${name} ${k}`, TOL, BF16_FLOOR);
}
// gradSlack multiplies the gradients' bound (see the fused form's test).
function compareBf16(name: string, got: { fw: Fwd; bw: Bwd }, cpu: { fw: Fwd; bw: Bwd }, rounded: { fw: Fwd; bw: Bwd }, gradSlack = 1): void {
  const absMax = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  const gradScale = Math.max(BF16_FLOOR, absMax(cpu.bw.dq), absMax(cpu.bw.dk), absMax(cpu.bw.dv));
  const diScale = Math.max(gradScale, absMax(cpu.bw.di));
  for (const [part, keys] of [["fw", ["h", "cLast", "nLast", "mLast", "saved"]], ["bw", ["dq", "dk", "dv", "di", "df", "dc0", "dn0", "dm0"]]] as const) {
    for (const k of keys) {
      const a = (got as Record<string, Record<string, Float32Array>>)[part][k], b = (cpu as Record<string, Record<string, Float32Array>>)[part][k];
      const r = (rounded as Record<string, Record<string, Float32Array>>)[part][k];
      const floor = part === "fw" ? 0 : k === "df" ? diScale : k === "dq" || k === "dk" || k === "di" ? gradScale : BF16_FLOOR;
      const ref = relErr(r, b, `${name} ${k} (reference)`, floor), e = relErr(a, b, `${name} ${k}`, floor);
      const slack = part === "bw" ? gradSlack : 1;
      assert.ok(e <= slack * (4 * ref + 5e-3), `${name} ${k}: bf16 form vs CPU ${e.toExponential(2)} > ${slack} x (4 x ${ref.toExponential(2)} (q, k, v rounded to bf16) + 5e-3)`);
    }
  }
}

function cases(s: Shape, seed: number): Case[] {
  return [
    { s, withState: false, parallelInit: false, finalCot: false, seed },
    { s, withState: true, parallelInit: false, finalCot: true, seed: seed + 100 },
    { s, withState: false, parallelInit: true, finalCot: true, seed: seed + 200 },
  ];
}
const label = (c: Case) => `[B ${c.s.B} NH ${c.s.NH} S ${c.s.S} DHQK ${c.s.DK} DHV ${c.s.DV} L ${c.s.L}${c.withState ? " state" : ""}${c.parallelInit ? " parallelInit" : ""}${c.finalCot ? " dLast" : ""}]`;

describe("21 mLSTM cell: CUDA twin (cuda/mlstm.cu)", function () {
  this.timeout(120000);

  itCompiled("cudaMlstmCoverage: every launch writes each element of every output exactly once, at awkward sizes", () => {
    for (const s of [...SHAPES, LONG, { B: 3, NH: 1, S: 130, DK: 1, DV: 200, L: 64 }, { B: 1, NH: 1, S: 5, DK: 1, DV: 1, L: 2 }]) {
      const r = native.cudaMlstmCoverage(s.B, s.NH, s.S, s.DK, s.DV, s.L);
      assert.deepEqual(Object.keys(r.outputs).sort(), [...COVERAGE_OUTPUTS].sort());
      const bad = Object.entries(r.outputs).filter(([, n]) => n !== 0);
      assert.deepEqual(bad, [], `${JSON.stringify(s)}: outputs not written exactly once`);
      assert.equal(r.errors, 0);
    }
  });

  itCompiled("cudaMlstmCoverage refuses bad sizes with a RangeError naming the argument", () => {
    assert.throws(() => native.cudaMlstmCoverage(1, 1, 4, 2, 2, 0), (e: Error) => e instanceof RangeError && /^cudaMlstmCoverage: .*chunkSize/.test(e.message));
    assert.throws(() => native.cudaMlstmCoverage(1, 0, 4, 2, 2, 2), (e: Error) => e instanceof RangeError && /^cudaMlstmCoverage: .*NH/.test(e.message));
    assert.throws(() => native.cudaMlstmCoverage(4096, 4096, 4096, 2, 2, 64), (e: Error) => e instanceof RangeError && e.message.startsWith("cudaMlstmCoverage: "));
  });

  it("the CUDA entries check their arguments as the CPU exports do (before looking for a GPU)", () => {
    const d = { B: 1, NH: 1, S: 3, DK: 2, DV: 2, L: 2 };
    const sv = Z(native.mlstmChunkwiseSavedSize(d.B, d.NH, d.S, d.DK, d.DV, d.L));
    // q one element short: RangeError naming q, the same message as mlstmChunkwiseForward's
    const call = (fn: typeof native.mlstmChunkwiseForward) => () => fn(Z(6), Z(4), Z(2), Z(1), sv, Z(5), Z(6), Z(6), Z(3), Z(3), null, null, null, 1, 1, 3, 2, 2, 2, 1e-6, false);
    let cpuMsg = "";
    assert.throws(call(native.mlstmChunkwiseForward), (e: Error) => ((cpuMsg = e.message), e instanceof RangeError));
    assert.throws(call(native.cudaMlstmChunkwiseForwardHost), (e: Error) => e instanceof RangeError && e.message === cpuMsg.replace(/^mlstmChunkwiseForward/, "cudaMlstmChunkwiseForwardHost") && / q /.test(e.message));
    assert.throws(() => native.cudaMlstmRecurrentBackwardHost(Z(6), Z(6), Z(6), Z(3), Z(3), null, null, null, "x" as never, Z(6), null, null, Z(6), Z(6), Z(6), Z(3), Z(3), 1, 1, 3, 2, 2, 1e-6), (e: Error) => e instanceof TypeError && /^cudaMlstmRecurrentBackwardHost: .*saved/.test(e.message));
  });

  itNoCuda("without a usable GPU the four entries throw '<export>: CUDA is not available: <reason>'", () => {
    const c: Case = { s: { B: 1, NH: 2, S: 3, DK: 2, DV: 3, L: 2 }, withState: true, parallelInit: false, finalCot: true, seed: 1 };
    const calls: [string, () => unknown][] = [
      ["cudaMlstmChunkwiseForwardHost", () => runChunkwise(c, true)],
      ["cudaMlstmRecurrentForwardHost", () => runRecurrent(c, true)],
    ];
    const { B, NH, S, DK, DV, L } = c.s;
    const bh = B * NH;
    const x = inputs(c);
    calls.push(["cudaMlstmChunkwiseBackwardHost", () => native.cudaMlstmChunkwiseBackwardHost(Z(bh * S * DK), Z(bh * S * DK), Z(bh * S * DV), Z(bh * S), Z(bh * S), null, null, null, Z(native.mlstmChunkwiseSavedSize(B, NH, S, DK, DV, L)), Z(bh * S * DV), x.dh, null, null, x.q, x.k, x.v, x.i, x.f, B, NH, S, DK, DV, L, 1e-6)]);
    calls.push(["cudaMlstmRecurrentBackwardHost", () => native.cudaMlstmRecurrentBackwardHost(Z(bh * S * DK), Z(bh * S * DK), Z(bh * S * DV), Z(bh * S), Z(bh * S), null, null, null, Z(native.mlstmRecurrentSavedSize(B, NH, S, DK, DV)), x.dh, null, null, x.q, x.k, x.v, x.i, x.f, B, NH, S, DK, DV, 1e-6)]);
    for (const [name, call] of calls)
      assert.throws(call, (e: Error) => {
        assert.ok(!(e instanceof TypeError) && !(e instanceof RangeError) && e instanceof Error, `${name}: ${e.constructor.name}`);
        assert.ok(e.message.startsWith(`${name}: CUDA is not available: `), e.message);
        assert.ok(e.message.includes(cuda.reason!), `${name}: "${e.message}" should include "${cuda.reason}"`);
        return true;
      });
  });

  // The host replays run the kernels' own code (same float operations, same summation orders as the GPU), so the
  // GPU's tolerance argument applies unchanged: TOL. Their scratch and shared memory start as NaN, so a kernel that
  // reads anything it did not write first shows up as a non-finite mismatch (relErr fails on it).
  itCompiled("host replay of the CUDA launches (no GPU): both forms equal the CPU (h, final state, saved, every gradient) at awkward shapes", () => {
    SHAPES.forEach((s, n) => {
      for (const c of cases(s, 130 + n)) {
        compare(`replay chunkwise ${label(c)}`, runChunkwise(c, true, true), runChunkwise(c, false), TOL);
        if (!c.parallelInit) compare(`replay recurrent ${label(c)}`, runRecurrent(c, true, true), runRecurrent(c, false), TOL);
      }
    });
    // the long sequence (16 chunk states, 16 recurrent segments) once, with the initial state and final cotangents
    const c = cases(LONG, 190)[1];
    compare(`replay chunkwise ${label(c)}`, runChunkwise(c, true, true), runChunkwise(c, false), TOL_LONG);
    compare(`replay recurrent ${label(c)}`, runRecurrent(c, true, true), runRecurrent(c, false), TOL_LONG);
  });

  itCompiled("bf16 form (tensor-core products, cuda/mlstm_bf16.cuh): its host replay with the products unrounded equals the CPU's float32 kernels at awkward shapes", () => {
    [...SHAPES, { B: 1, NH: 2, S: 256, DK: 64, DV: 128, L: 64 }].forEach((s, n) => {
      for (const c of cases(s, 330 + n)) compareBf16Exact(`bf16 replay (exact products) ${label(c)}`, runChunkwise(c, true, true, "exact"), runChunkwise(c, false));
    });
    const c = cases(LONG, 390)[1];
    compareBf16Exact(`bf16 replay (exact products) ${label(c)}`, runChunkwise(c, true, true, "exact"), runChunkwise(c, false));
  });

  // The composed float32 form (cudaSetMlstmForm("composed"), opt-in): the bf16 form's structure with float32 grouped
  // GEMMs; the float32 state kernels. Its replay's products sum in k order like the CPU's reference order within a
  // product, so it meets the float32 tolerance (gradients that cancel to 0 measured against BF16_FLOOR).
  /** fn run with a process-wide setting changed, restored after (set returns the previous value) */
  const withSetting = <V, T>(set: (v: V) => V, value: V, fn: () => T): T => {
    const prev = set(value);
    try {
      return fn();
    } finally {
      set(prev);
    }
  };
  const withForm = <T>(form: "tiles" | "composed" | "auto", fn: () => T): T => withSetting(native.cudaSetMlstmForm, form, fn);
  itCompiled("composed float32 form (opt-in: float32 grouped GEMMs): its host replay equals the CPU at awkward shapes; the setter names the form", () => {
    withForm("composed", () => {
      [...SHAPES, LONG].forEach((s, n) => {
        for (const c of cases(s, 630 + n)) compareBf16Exact(`composed replay ${label(c)}`, runChunkwise(c, true, true), runChunkwise(c, false));
      });
    });
    assert.equal(native.cudaSetMlstmForm("auto"), "auto", "auto is the default");
    assert.throws(() => native.cudaSetMlstmForm("fast" as never), (e: Error) => e instanceof RangeError && /^cudaSetMlstmForm: form must be "tiles", "composed" or "auto", got "fast"/.test(e.message));
  });

  itCompiled("the default float32 form (\"auto\") runs the composed form from DK·DV = 2^16 and the tiled kernels below (bit for bit)", () => {
    const outputs = (r: { fw: Fwd; bw: Bwd }) => [...Object.values(r.fw), ...Object.values(r.bw)].map((a) => Array.from(a as Float32Array));
    const run = (form: "tiles" | "composed" | "auto", s: Shape, seed: number) => withForm(form, () => outputs(runChunkwise(cases(s, seed)[1], true, true)));
    // 256 x 256 heads: the threshold itself; 255 x 256 just below it
    for (const [s, want, other] of [[{ B: 1, NH: 1, S: 40, DK: 256, DV: 256, L: 16 }, "composed", "tiles"], [{ B: 1, NH: 1, S: 40, DK: 255, DV: 256, L: 16 }, "tiles", "composed"]] as const) {
      const auto = run("auto", s, 700);
      assert.deepEqual(auto, run(want, s, 700), `${s.DK} x ${s.DV}: auto is not the ${want} form`);
      assert.notDeepEqual(auto, run(other, s, 700), `${s.DK} x ${s.DV}: the two forms give the same bits (the comparison proves nothing)`);
    }
  });

  // The inter-chunk states by products and a scan (cudaSetMlstmStates("scan"), opt-in): every chunk's product as one
  // grouped GEMM into the state slots, then an elementwise walk over them with the state kernels' own step.
  const withStates = <T>(form: "walk" | "scan", fn: () => T): T => withSetting(native.cudaSetMlstmStates, form, fn);
  itCompiled("states by products and a scan (opt-in): bf16 and composed float32 replays equal the CPU; the float32 forward equals the walk's bit for bit", () => {
    withStates("scan", () => {
      [...SHAPES, LONG].forEach((s, n) => {
        for (const c of cases(s, 830 + n)) compareBf16Exact(`scan states, bf16 replay (exact products) ${label(c)}`, runChunkwise(c, true, true, "exact"), runChunkwise(c, false));
      });
      withForm("composed", () => {
        [...SHAPES, LONG].forEach((s, n) => {
          for (const c of cases(s, 860 + n)) compareBf16Exact(`scan states, composed replay ${label(c)}`, runChunkwise(c, true, true), runChunkwise(c, false));
        });
      });
    });
    // the float32 GEMM sums each state element in position order with fmaf, as the float32 state tile does
    withForm("composed", () => {
      for (const c of [...cases(SHAPES[2], 890), ...cases(LONG, 891)]) {
        const walk = withStates("walk", () => runChunkwise(c, true, true)), scan = withStates("scan", () => runChunkwise(c, true, true));
        for (const k of ["h", "cLast", "nLast", "mLast", "saved"] as const)
          if (walk.fw[k]) assert.deepEqual(Array.from(scan.fw[k] as Float32Array), Array.from(walk.fw[k] as Float32Array), `${label(c)}: forward ${k}`);
      }
    });
    assert.equal(native.cudaSetMlstmStates("walk"), "walk", "walk is the default");
    assert.throws(() => native.cudaSetMlstmStates("fast" as never), (e: Error) => e instanceof RangeError && /^cudaSetMlstmStates: form must be "walk" or "scan", got "fast"/.test(e.message));
  });

  // The bf16 GEMM's 64 x 128 tiles (cudaSetGemmBf16Tiles("auto"), opt-in): the tiling changes which block sums what,
  // not the sums, so the replay's bits stay; a slot the wide tiling failed to stage (NaN-filled) or write would show.
  itCompiled("bf16 form on the GEMM's wide tiles (opt-in): its host replay gives the 64 x 64 tiles' bits (grouped products of two segments, position scales, transposes)", () => {
    const s: Shape = { B: 1, NH: 4, S: 512, DK: 128, DV: 128, L: 8 };  // 256 (head, chunk) products of 8 x 128: 256 wide tiles
    const withTiles = <T>(tiles: "64x64" | "auto", fn: () => T): T => withSetting(native.cudaSetGemmBf16Tiles, tiles, fn);
    assert.deepEqual(withTiles("auto", () => native.cudaGemmBf16Tile((s.B * s.NH * s.S) / s.L, s.L, s.DV)), [64, 128], "the products take the wide tiles");
    const c = cases(s, 910)[1];
    const wide = withTiles("auto", () => runChunkwise(c, true, true, "round")), small = withTiles("64x64", () => runChunkwise(c, true, true, "round"));
    for (const k of ["h", "cLast", "nLast", "mLast", "saved"] as const) assert.ok(wide.fw[k].every((v, j) => Object.is(v, small.fw[k][j])), `forward ${k}`);
    for (const k of ["dq", "dk", "dv", "di", "df", "dc0", "dn0", "dm0"] as const) assert.ok(wide.bw[k].every((v, j) => Object.is(v, small.bw[k][j])), `backward ${k}`);
    assert.ok(wide.fw.h.some((v) => v !== 0) && wide.bw.dq.some((v) => v !== 0), "compared something");
  });

  // The intra-chunk parts fused per tile (cudaSetMlstmIntra("fused"), opt-in; cuda/mlstm_fused.cuh): a kernel per
  // output (h; dq, dk, dv), a block per (chunk, 64-row tile) walking the chunk's tiles on the causal side of its rows
  // (h, dq: key tiles up to the diagonal; dk, dv: query tiles from it) into its weight rows, then every 128-column tile
  // of the output from them. The shapes add chunks of 128
  // and 256 (several row tiles, tiles below, on and above the diagonal, a short last chunk whose later row tiles are
  // empty), DHQK and DHV over one and two column tiles with a partial last one, and over several 32-deep slices.
  const withIntra = <T>(form: "products" | "fused", fn: () => T): T => withSetting(native.cudaSetMlstmIntra, form, fn);
  const FUSED_SHAPES: Shape[] = [...SHAPES, { B: 1, NH: 2, S: 300, DK: 40, DV: 200, L: 256 }, { B: 2, NH: 1, S: 200, DK: 70, DV: 130, L: 128 }, { B: 1, NH: 1, S: 129, DK: 1, DV: 3, L: 128 }];
  itCompiled("fused intra-chunk parts (opt-in): their host replay with the products unrounded equals the CPU's float32 kernels (h and every gradient) at awkward shapes and long chunks", () => {
    withIntra("fused", () => {
      [...FUSED_SHAPES, LONG].forEach((s, n) => {
        for (const c of cases(s, 1030 + n)) compareBf16Exact(`fused replay (exact products) ${label(c)}`, runChunkwise(c, true, true, "exact"), runChunkwise(c, false));
        // the inter-chunk term weighs in every row tile (with the default gates it fades within 64 positions)
        const c: Case = { ...cases(s, 1080 + n)[1], stateDominant: true };
        compareBf16Exact(`fused replay (exact products) ${label(c)} state-dominant`, runChunkwise(c, true, true, "exact"), runChunkwise(c, false));
      });
    });
    assert.equal(native.cudaSetMlstmIntra("products"), "products", "products is the default");
    assert.throws(() => native.cudaSetMlstmIntra("fast" as never), (e: Error) => e instanceof RangeError && /^cudaSetMlstmIntra: form must be "products" or "fused", got "fast"/.test(e.message));
  });

  // Held to the bf16 form's bound, the gradients to 2x that bound: the fused kernels round where the products form
  // rounds, but sum in other orders, and where the gradients are pure cancellation residue (S = 1 without a state:
  // dq = s (inv dh·v + ρ) k, ρ from h) the residue's size depends on the order (measured: dq 1.01x and di 0.94x the
  // bound at S = 1; at most 0.6x at every other shape). Wrong indices are the exact-products test's business (TOL).
  itCompiled("fused intra-chunk parts (opt-in): their bf16 replay stays within bf16 rounding of the CPU, and is not the products' bits", () => {
    FUSED_SHAPES.forEach((s, n) => {
      for (const c of cases(s, 1130 + n)) {
        const got = withIntra("fused", () => runChunkwise(c, true, true, "round"));
        compareBf16(`fused bf16 replay ${label(c)}`, got, runChunkwise(c, false), runChunkwise(c, false, false, "", true), 2);
        // the same rounding points, other sum orders (the inter-chunk term first, 32-deep slices): where the products
        // are deep enough, every output's bits differ from the products form's
        if (s.S > 100 && s.DK >= 32) {
          const products = withIntra("products", () => runChunkwise(c, true, true, "round"));
          for (const [name, a, b] of [["h", got.fw.h, products.fw.h], ["dq", got.bw.dq, products.bw.dq], ["dk", got.bw.dk, products.bw.dk], ["dv", got.bw.dv, products.bw.dv]] as const)
            assert.ok(a.some((v, j) => v !== b[j]), `${label(c)}: the fused ${name} equals the products' bits (the setting did nothing)`);
        }
      }
    });
  });

  itCompiled("fused intra-chunk parts (opt-in): chunks over 256 take the products (the same bits)", () => {
    const c = cases({ B: 1, NH: 1, S: 300, DK: 8, DV: 12, L: 257 }, 1190)[1];
    const fused = withIntra("fused", () => runChunkwise(c, true, true, "round")), products = withIntra("products", () => runChunkwise(c, true, true, "round"));
    for (const k of ["h", "saved"] as const) assert.ok(fused.fw[k].every((v, j) => Object.is(v, products.fw[k][j])), `forward ${k}`);
    for (const k of ["dq", "dk", "dv", "di", "df", "dc0"] as const) assert.ok(fused.bw[k].every((v, j) => Object.is(v, products.bw[k][j])), `backward ${k}`);
  });

  itCompiled("bf16 form: its host replay (bf16 operands, float32 sums) stays within bf16 rounding of the CPU, and really rounds", () => {
    SHAPES.forEach((s, n) => {
      for (const c of cases(s, 430 + n)) {
        const got = runChunkwise(c, true, true, "round"), cpu = runChunkwise(c, false);
        compareBf16(`bf16 replay ${label(c)}`, got, cpu, runChunkwise(c, false, false, "", true));
        if (n === 3) assert.ok(relErr(got.fw.h, cpu.fw.h, "h") > 1e-4, "the bf16 form's h equals float32's: operands not rounded");
      }
    });
  });

  itCompiled("the host replays check their arguments as the CPU exports do", () => {
    const d = { B: 1, NH: 1, S: 3, DK: 2, DV: 2, L: 2 };
    const sv = Z(native.mlstmChunkwiseSavedSize(d.B, d.NH, d.S, d.DK, d.DV, d.L));
    assert.throws(() => native.cudaMlstmChunkwiseForwardEmulate(Z(6), Z(4), Z(2), Z(1), sv, Z(5), Z(6), Z(6), Z(3), Z(3), null, null, null, 1, 1, 3, 2, 2, 2, 1e-6, false), (e: Error) => e instanceof RangeError && /^cudaMlstmChunkwiseForwardEmulate: q /.test(e.message));
    assert.throws(() => native.cudaMlstmRecurrentBackwardEmulate(Z(6), Z(6), Z(6), Z(3), Z(3), null, null, null, "x" as never, Z(6), null, null, Z(6), Z(6), Z(6), Z(3), Z(3), 1, 1, 3, 2, 2, 1e-6), (e: Error) => e instanceof TypeError && /^cudaMlstmRecurrentBackwardEmulate: .*saved/.test(e.message));
  });

  itCuda("the host replays equal the GPU bit for bit but for the host's libm exp (well within TOL)", () => {
    for (const c of cases(SHAPES[1], 170)) {
      compare(`replay vs GPU chunkwise ${label(c)}`, runChunkwise(c, true, true), runChunkwise(c, true), 1e-5);
      if (!c.parallelInit) compare(`replay vs GPU recurrent ${label(c)}`, runRecurrent(c, true, true), runRecurrent(c, true), 1e-5);
    }
  });

  itCuda("chunkwise form: GPU equals the CPU (h, final state, saved, every gradient) at awkward shapes", () => {
    SHAPES.forEach((s, n) => {
      for (const c of cases(s, 10 + n)) compare(`chunkwise ${label(c)}`, runChunkwise(c, true), runChunkwise(c, false), TOL);
    });
  });

  itCuda("recurrent form: GPU equals the CPU (h, final state, saved checkpoints, every gradient) at awkward shapes", () => {
    SHAPES.forEach((s, n) => {
      for (const c of cases(s, 50 + n).filter((c) => !c.parallelInit)) compare(`recurrent ${label(c)}`, runRecurrent(c, true), runRecurrent(c, false), TOL);
    });
  });

  itCuda("a long sequence (S = 1000, NH = 3, DHQK 8 / DHV 12): both forms equal the CPU", () => {
    for (const c of cases(LONG, 90)) {
      compare(`chunkwise ${label(c)}`, runChunkwise(c, true), runChunkwise(c, false), TOL_LONG);
      if (!c.parallelInit) compare(`recurrent ${label(c)}`, runRecurrent(c, true), runRecurrent(c, false), TOL_LONG);
    }
  });

  itCuda("bf16 form on the GPU: within bf16 rounding of the CPU at awkward shapes, and within 2e-3 of its host replay (same rounding points, other sum orders)", () => {
    SHAPES.forEach((s, n) => {
      for (const c of cases(s, 530 + n)) {
        const got = runChunkwise(c, true, false, "round");
        compareBf16(`bf16 GPU ${label(c)}`, got, runChunkwise(c, false), runChunkwise(c, false, false, "", true));
        const rep = runChunkwise(c, true, true, "round");
        for (const k of ["h", "cLast", "saved"] as const) close(got.fw[k], rep.fw[k], `bf16 GPU vs replay ${label(c)} ${k}`, 2e-3);
        for (const k of ["dq", "dk", "dv", "dc0"] as const) close(got.bw[k], rep.bw[k], `bf16 GPU vs replay ${label(c)} ${k}`, 2e-3, BF16_FLOOR);
      }
    });
    const c = cases(LONG, 590)[1];
    compareBf16(`bf16 GPU ${label(c)}`, runChunkwise(c, true, false, "round"), runChunkwise(c, false), runChunkwise(c, false, false, "", true));
  });

  itCuda("composed float32 form on the GPU: equals its host replay (same sums in the same order; the host's libm exp aside) and the CPU", () => {
    withForm("composed", () => {
      SHAPES.forEach((s, n) => {
        for (const c of cases(s, 730 + n)) {
          const got = runChunkwise(c, true);
          compareBf16Exact(`composed GPU ${label(c)}`, got, runChunkwise(c, false));
          compare(`composed GPU vs replay ${label(c)}`, got, runChunkwise(c, true, true), 1e-5);
        }
      });
    });
  });

  itCuda("states by products and a scan on the GPU: bf16 within bf16 rounding of the CPU, composed float32 equal to its replay and the CPU", () => {
    withStates("scan", () => {
      SHAPES.forEach((s, n) => {
        for (const c of cases(s, 930 + n)) compareBf16(`scan states, bf16 GPU ${label(c)}`, runChunkwise(c, true, false, "round"), runChunkwise(c, false), runChunkwise(c, false, false, "", true));
      });
      withForm("composed", () => {
        SHAPES.forEach((s, n) => {
          for (const c of cases(s, 960 + n)) {
            const got = runChunkwise(c, true);
            compareBf16Exact(`scan states, composed GPU ${label(c)}`, got, runChunkwise(c, false));
            compare(`scan states, composed GPU vs replay ${label(c)}`, got, runChunkwise(c, true, true), 1e-5);
          }
        });
      });
    });
  });

  itCuda("fused intra-chunk parts on the GPU (opt-in): within bf16 rounding of the CPU and within 2e-3 of their host replay", () => {
    withIntra("fused", () => {
      FUSED_SHAPES.forEach((s, n) => {
        for (const c of cases(s, 1230 + n)) {
          const got = runChunkwise(c, true, false, "round");
          compareBf16(`fused GPU ${label(c)}`, got, runChunkwise(c, false), runChunkwise(c, false, false, "", true), 2);
          const rep = runChunkwise(c, true, true, "round");
          for (const k of ["h", "saved"] as const) close(got.fw[k], rep.fw[k], `fused GPU vs replay ${label(c)} ${k}`, 2e-3);
          for (const k of ["dq", "dk", "dv", "dc0"] as const) close(got.bw[k], rep.bw[k], `fused GPU vs replay ${label(c)} ${k}`, 2e-3, BF16_FLOOR);
        }
      });
    });
  });

  itCuda("the GPU results are deterministic (two runs give the same bits)", () => {
    const c: Case = { s: SHAPES[1], withState: true, parallelInit: false, finalCot: true, seed: 7 };
    for (const run of [runChunkwise, runRecurrent, (c: Case, gpu: boolean) => runChunkwise(c, gpu, false, "round")]) {
      const a = run(c, true), b = run(c, true);
      for (const k of ["h", "cLast", "saved"] as const) assert.deepEqual(a.fw[k], b.fw[k], k);
      for (const k of ["dq", "dk", "dv", "di", "df", "dc0", "dm0"] as const) assert.deepEqual(a.bw[k], b.bw[k], k);
    }
  });
});
