// CUDA twin of the fused sLSTM / LSTM recurrences (cuda/recurrent.cu; binding csrc/binding/cuda_recurrent.cc).
//  - Coverage (runs wherever the addon is built with CUDA, GPU or not): the kernels' __host__ __device__ launch maps,
//    run on the host over every block, thread and step, write every output element (y, states, gates, dx, dR,
//    dbias, dstate0) exactly once, at awkward sizes (NH 1..4, DH 1/3/8/64 and one > 1024, B 1/3/17, S 1/5).
//  - Argument checks (the CPU exports' parsing) and the no-GPU error (no GPU needed).
//  - CPU <-> CUDA-kernel parity of outputs, states, gates and every gradient: the kernels' own __host__ __device__
//    bodies replayed on the host (cuda*Emulate: every block, each phase for all threads, NaN-filled shared memory;
//    runs here), and the real GPU launch, run when a GPU is available and skipped visibly otherwise. The cell math is the CPU's own (recurrent_cells.h), so the CPU tests (40.recurrent) check it
//    against float64; here only float32 rounding differs: the GPU contracts a*b + c to FMAs where the CPU's scalar
//    path may not, and dR / dbias are summed in row chunks (float) added in double instead of the CPU's GEMM.
import { strict as assert } from "assert";
import { assertRefusedWithoutCuda } from "./support/cuda";
import { backends, Generator } from "../lib";
import { native } from "../lib/native";
import { worstRatio } from "./support/gradcheck";

const cuda = backends().cuda;
const itCuda = cuda.available && !cuda.emulated ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);
const itNoCuda = !cuda.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: a CUDA device is available]`, fn);
const itCompiled = cuda.compiled ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: built without CUDA]`, fn);

type Kind = "slstm" | "lstm";
interface Dims {
  B: number;
  S: number;
  NH: number;
  DH: number;
}

function randn(n: number, seed: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  new Generator(seed).fillNormal(out, 0, std);
  return out;
}
/** Lengths of every array of a call (NS states). */
function lens(d: Dims, ns: number) {
  const H = d.NH * d.DH;
  return { H, y: d.B * d.S * H, x: d.B * d.S * 4 * H, R: d.NH * d.DH * 4 * d.DH, bias: 4 * H, state: ns * d.B * H, seq: ns * d.S * d.B * H };
}
/** Error class and message check: the message starts with the export name and names the argument. */
function throwsNaming(call: () => unknown, cls: ErrorConstructor, fn: string, arg: string): void {
  assert.throws(call, (e: Error) => {
    assert.ok(e instanceof cls, `${fn}: expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${fn}: `), e.message);
    assert.ok(e.message.includes(arg), `${fn}: "${e.message}" should name ${arg}`);
    return true;
  });
}
/**
 * |got - want| <= rtol * (|want| + max|want|) elementwise: float32 rounding differences of sums and recurrences scale
 * with the magnitudes involved, not with a (possibly cancelling) result, hence the array-wide term.
 */
function assertNear(got: Float32Array, want: Float32Array, what: string, rtol: number): void {
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  const r = worstRatio(got, want, rtol, rtol * scale + 1e-30);
  assert.ok(r.ratio <= 1, `${what}: worst error/tolerance ratio ${r.ratio.toFixed(3)} at index ${r.index}: got ${got[r.index]}, expected ${want[r.index]} (scale ${scale})`);
}

/** fn with a process-wide setting changed (`set` returns the previous value), the previous value restored after. */
function withSetting<T>(set: (v: T) => T, value: T, fn: () => void): void {
  const prev = set(value);
  try {
    fn();
  } finally {
    set(prev);
  }
}

describe("21 CUDA twin: sLSTM / LSTM recurrences", function () {
  this.timeout(60000);

  describe("launch coverage (host run of the kernels' index maps)", () => {
    itCompiled("forward and backward write every output element exactly once at awkward sizes", () => {
      const cases: [Kind, Dims][] = [];
      for (const kind of ["slstm", "lstm"] as const)
        for (const NH of [1, 2, 3, 4])
          for (const DH of [1, 3, 8, 64])
            for (const B of [1, 3, 17]) for (const S of [1, 5]) cases.push([kind, { B, S, NH, DH }]);
      // DH > 1024: one batch row per block (the per-row state then still fits in shared memory)
      cases.push(["slstm", { B: 2, S: 2, NH: 1, DH: 1025 }], ["lstm", { B: 3, S: 1, NH: 2, DH: 1100 }]);
      for (const [kind, d] of cases) {
        const ns = kind === "slstm" ? 4 : 2;
        const n = lens(d, ns);
        const parts: [string, number][] = [["y", n.y], ["states", n.seq], ["gates", n.x], ["dx", n.x], ["dR", n.R], ["dbias", n.bias], ["dstate0", n.state]];
        const writes = new Int32Array(parts.reduce((a, [, l]) => a + l, 0)).fill(-7);
        const errors = native.cudaRecurrentCoverage(kind === "slstm", d.B, d.S, d.NH, d.DH, writes);
        const tag = `${kind} B=${d.B} S=${d.S} NH=${d.NH} DH=${d.DH}`;
        assert.equal(errors, 0, `${tag}: inconsistencies`);
        let off = 0;
        for (const [name, len] of parts) {
          for (let i = 0; i < len; ++i) if (writes[off + i] !== 1) assert.fail(`${tag}: ${name}[${i}] written ${writes[off + i]} times`);
          off += len;
        }
      }
    });
  });

  describe("arguments", () => {
    it("the host entries check their arguments like the CPU exports (RangeError / TypeError naming the argument)", () => {
      const d: Dims = { B: 2, S: 3, NH: 2, DH: 3 };
      for (const kind of ["slstm", "lstm"] as const) {
        const ns = kind === "slstm" ? 4 : 2;
        const n = lens(d, ns);
        const fwd = kind === "slstm" ? "cudaSlstmForwardHost" : "cudaLstmForwardHost";
        const bwd = kind === "slstm" ? "cudaSlstmBackwardHost" : "cudaLstmBackwardHost";
        const F = (len: number) => new Float32Array(len);
        const f = native[fwd] as (...a: unknown[]) => void;
        const b = native[bwd] as (...a: unknown[]) => void;
        throwsNaming(() => f(F(n.y + 1), F(n.seq), F(n.x), F(n.x), null, F(n.R), F(n.bias), d.B, d.S, d.NH, d.DH), RangeError, fwd, "y");
        throwsNaming(() => f(F(n.y), F(n.seq), F(n.x), F(n.x), F(n.state - 1), F(n.R), F(n.bias), d.B, d.S, d.NH, d.DH), RangeError, fwd, "state0");
        throwsNaming(() => f(F(n.y), F(n.seq), F(n.x), F(n.x), null, new Float64Array(n.R), F(n.bias), d.B, d.S, d.NH, d.DH), TypeError, fwd, "R");
        throwsNaming(() => f(F(n.y), F(n.seq), F(n.x), F(n.x), null, F(n.R), F(n.bias), d.B, 0, d.NH, d.DH), RangeError, fwd, "S");
        const x = F(n.x);
        throwsNaming(() => f(F(n.y), F(n.seq), x, x, null, F(n.R), F(n.bias), d.B, d.S, d.NH, d.DH), RangeError, fwd, "gates");
        const tail = kind === "slstm" ? [false] : [];
        throwsNaming(() => b(F(n.x), F(n.R + 2), F(n.bias), null, F(n.x), F(n.seq), F(n.y), null, null, F(n.R), d.B, d.S, d.NH, d.DH, ...tail), RangeError, bwd, "dR");
        throwsNaming(() => b(F(n.x), F(n.R), F(n.bias), null, F(n.x), F(n.seq), F(n.y), F(3), null, F(n.R), d.B, d.S, d.NH, d.DH, ...tail), RangeError, bwd, "dstateFinal");
        if (kind === "slstm")
          throwsNaming(() => b(F(n.x), F(n.R), F(n.bias), null, F(n.x), F(n.seq), F(n.y), null, null, F(n.R), d.B, d.S, d.NH, d.DH, 1), TypeError, bwd, "exactM0Grad");
      }
    });

    itCompiled("cudaRecurrentCoverage checks its arguments", () => {
      throwsNaming(() => native.cudaRecurrentCoverage(true, 1, 1, 1, 1, new Int32Array(5)), RangeError, "cudaRecurrentCoverage", "writes");
      throwsNaming(() => native.cudaRecurrentCoverage(1 as unknown as boolean, 1, 1, 1, 1, new Int32Array(5)), TypeError, "cudaRecurrentCoverage", "slstm");
      throwsNaming(() => native.cudaRecurrentCoverage(false, 1, 1, 0, 1, new Int32Array(5)), RangeError, "cudaRecurrentCoverage", "NH");
    });

    itNoCuda("without a usable GPU the host entries throw an Error naming backends().cuda.reason", () => {
      const d: Dims = { B: 1, S: 2, NH: 1, DH: 2 };
      const calls: [string, () => unknown][] = [];
      for (const kind of ["slstm", "lstm"] as const) {
        const n = lens(d, kind === "slstm" ? 4 : 2);
        const F = (len: number) => new Float32Array(len);
        const fwd = kind === "slstm" ? "cudaSlstmForwardHost" : "cudaLstmForwardHost";
        const bwd = kind === "slstm" ? "cudaSlstmBackwardHost" : "cudaLstmBackwardHost";
        const tail = kind === "slstm" ? [true] : [];
        calls.push([fwd, () => (native[fwd] as (...a: unknown[]) => void)(F(n.y), F(n.seq), F(n.x), F(n.x), null, F(n.R), F(n.bias), d.B, d.S, d.NH, d.DH)]);
        calls.push([bwd, () => (native[bwd] as (...a: unknown[]) => void)(F(n.x), F(n.R), F(n.bias), F(n.state), F(n.x), F(n.seq), F(n.y), null, null, F(n.R), d.B, d.S, d.NH, d.DH, ...tail)]);
      }
      assertRefusedWithoutCuda(calls, cuda.reason!);
    });
  });

  describe("CPU <-> GPU parity", () => {
    // awkward shapes: T = 1, B = 1, odd DH, NH > 1, a partial last row block (B = 17), long T = 300, DH = 64 (R in
    // shared memory with the opt-in limit), DH = 160 (R too large for shared memory: read from global memory) and
    // DH = 520 (the split forward's lane form with 24 j slots per lane)
    const shapes: Dims[] = [
      { B: 1, S: 1, NH: 1, DH: 1 },
      { B: 3, S: 5, NH: 2, DH: 3 },
      { B: 17, S: 5, NH: 4, DH: 8 },
      { B: 1, S: 7, NH: 3, DH: 33 },
      { B: 5, S: 6, NH: 1, DH: 64 },
      { B: 2, S: 300, NH: 2, DH: 16 },
      { B: 3, S: 4, NH: 1, DH: 160 },
      { B: 2, S: 3, NH: 1, DH: 520 },
    ];
    // Tolerances (relative to each array's largest magnitude, see assertNear): the same cell code runs on both
    // sides, so only float32 rounding differs (FMA contraction, dR / dbias summation order). Measured on the host
    // replay: at most 1.4e-7 (forward) and 3.5e-7 (gradients, dR at T = 300). Forward 2e-5 leaves room for a few ulp
    // per operation on the GPU, 1e-4 for T = 300 where rounding differences accumulate through the recurrence (the
    // recurrences here are contractive: |R| ~ 0.5/√DH); gradients 1e-4 (the backward recurrence adds the same
    // per-step error; dR / dbias sum up to B*S = 600 terms in another order). An indexing or phase-ordering error
    // gives O(1) differences (or NaN from unwritten shared memory in the replay).
    // both launches: "rows" (a block per head and <= 4 batch rows) and "split" (a head's units over many blocks with
    // a grid barrier per step, cuda/recurrent_split.cuh: every shape here has few enough blocks that auto picks it),
    // the latter with the forward's gate products reading R from shared memory ("split") and in the lane form (R in
    // registers: "split-lane", every shape here)
    for (const kind of ["slstm", "lstm"] as const) {
      for (const launch of ["rows", "split", "split-lane"] as const)
        for (const target of ["emulate", "gpu"] as const) {
          const emulate = target === "emulate";
          const title = emulate
            ? `${kind}, ${launch} launch: the kernels' code replayed on the host (cuda${kind === "slstm" ? "Slstm" : "Lstm"}*Emulate) equals the CPU kernels`
            : `${kind}, ${launch} launch: outputs, states, gates and every gradient on the GPU equal the CPU kernels`;
          (emulate ? itCompiled : itCuda)(title, () => {
            const prev = native.cudaSetRecurrentLaunch(launch);
            try {
              parity(kind, emulate);
            } finally {
              native.cudaSetRecurrentLaunch(prev);
            }
          });
        }
    }

    // A cap on the split launch's blocks per head (cudaSetRecurrentSplitBlocks: the G1 benchmark times the trade of
    // exchange traffic and grid barrier against work per block) gives blocks of more units: the same results.
    const capped: [Dims, number][] = [
      [{ B: 3, S: 5, NH: 2, DH: 3 }, 2], // 2 units per block, the last block of a head 1
      [{ B: 17, S: 5, NH: 4, DH: 8 }, 3], // 3, 3, 2
      [{ B: 2, S: 3, NH: 1, DH: 520 }, 40], // 13 units per block
      [{ B: 5, S: 6, NH: 1, DH: 64 }, 4], // 16 units per block
    ];
    for (const kind of ["slstm", "lstm"] as const)
      for (const launch of ["split", "split-lane"] as const)
        itCompiled(`${kind}, ${launch} launch with its blocks per head capped: the replay equals the CPU kernels (the same on a GPU: the capped bf16 case below)`, () => {
          withSetting(native.cudaSetRecurrentLaunch, launch, () => {
            for (const [d, cap] of capped)
              withSetting(native.cudaSetRecurrentSplitBlocks, cap, () => {
                const plan = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, true, false);
                assert.ok(plan && plan.blocksPerHead <= cap && plan.blocksPerHead < Math.min(d.DH, Math.floor(132 / d.NH)), `B=${d.B} NH=${d.NH} DH=${d.DH} cap ${cap}: plan ${JSON.stringify(plan)}`);
                parity(kind, true, [d]);
              });
          });
        });

    itCompiled("cudaRecurrentPlan: the split plan follows the blocks-per-head cap (units spread evenly, the tensor-core tiles for the units)", () => {
      // closed forms of cuda/recurrent_split.cuh's split_plan on the emulated H100 (132 SMs, one block each) and
      // recurrent_tc.cuh's tc_tiles (own gate columns 4·nu in 16-wide tiles, padded to 1, 2, 4 or 8)
      const tiles = (nu: number) => {
        const t = Math.ceil((4 * nu) / 16);
        return t > 8 ? 0 : t <= 2 ? t : t <= 4 ? 4 : 8;
      };
      const prevLaunch = native.cudaSetRecurrentLaunch("auto");
      try {
        const cases: [Dims, number[]][] = [
          [{ B: 16, S: 4, NH: 1, DH: 768 }, [0, 96, 64, 48]],
          [{ B: 4, S: 4, NH: 2, DH: 300 }, [0, 17]],
          [{ B: 2, S: 4, NH: 4, DH: 64 }, [0, 17, 2]],
        ];
        for (const [d, caps] of cases)
          for (const cap of caps) {
            const prev = native.cudaSetRecurrentSplitBlocks(cap);
            try {
              const perHead = Math.floor(Math.min(132, cap === 0 ? 132 : cap * d.NH) / d.NH);
              const nu = Math.ceil(d.DH / Math.min(perHead, d.DH)), P = Math.ceil(d.DH / nu);
              for (const forward of [true, false])
                for (const bf16 of [false, true]) {
                  const tag = `B=${d.B} NH=${d.NH} DH=${d.DH} cap ${cap} ${forward ? "forward" : "backward"}${bf16 ? " bf16" : ""}`;
                  const plan = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, forward, bf16);
                  // G1's head in 48 blocks: the float32 forward's share of R (64 columns x 800 floats) and h_{t-1}
                  // (16 x 768) take 254 KB, more than a block's 227 KiB: the rows launch; the tensor-core form's
                  // bf16 share fits (the plan counts that form's shared memory under bf16)
                  if (d.DH === 768 && cap === 48 && forward && !bf16) {
                    assert.equal(plan, null, tag);
                    continue;
                  }
                  assert.ok(plan, `${tag}: the split launch applies`);
                  assert.equal(plan.unitsPerBlock, nu, `${tag}: units per block`);
                  assert.equal(plan.blocksPerHead, P, `${tag}: blocks per head`);
                  assert.equal(plan.tensorCoreTiles, bf16 ? tiles(nu) : 0, `${tag}: tensor-core tiles`);
                }
            } finally {
              native.cudaSetRecurrentSplitBlocks(prev);
            }
          }
        // where a block's share does not fit shared memory, the rows launch (G1 at 2 blocks of 384 units: their
        // 1536 columns of R alone take 4.9 MB as float32)
        const prev = native.cudaSetRecurrentSplitBlocks(2);
        try {
          assert.equal(native.cudaRecurrentPlan(16, 4, 1, 768, true, false), null);
        } finally {
          native.cudaSetRecurrentSplitBlocks(prev);
        }
        // the launch mode still rules: "rows" never splits
        native.cudaSetRecurrentLaunch("rows");
        assert.equal(native.cudaRecurrentPlan(16, 4, 1, 768, true, true), null);
      } finally {
        native.cudaSetRecurrentLaunch(prevLaunch);
      }
      const prev = native.cudaSetRecurrentSplitBlocks(5);
      assert.equal(native.cudaSetRecurrentSplitBlocks(prev), 5);
      throwsNaming(() => native.cudaSetRecurrentSplitBlocks(1), RangeError, "cudaSetRecurrentSplitBlocks", "perHead");
      throwsNaming(() => native.cudaSetRecurrentSplitBlocks(-3), RangeError, "cudaSetRecurrentSplitBlocks", "perHead");
      throwsNaming(() => native.cudaSetRecurrentSplitBlocks(2.5), RangeError, "cudaSetRecurrentSplitBlocks", "perHead");
      throwsNaming(() => native.cudaRecurrentPlan(16, 4, 0, 768, true, true), RangeError, "cudaRecurrentPlan", "NH");
      throwsNaming(() => native.cudaRecurrentPlan(16, 4, 1, 768, 1 as unknown as boolean, true), TypeError, "cudaRecurrentPlan", "forward");
    });

    itCompiled("cudaSetRecurrentLaunch returns the previous mode and refuses unknown ones", () => {
      const prev = native.cudaSetRecurrentLaunch("split");
      assert.equal(native.cudaSetRecurrentLaunch(prev), "split");
      assert.throws(() => native.cudaSetRecurrentLaunch("fast" as never), (e: Error) => e instanceof RangeError && /cudaSetRecurrentLaunch: mode must be "auto", "rows", "split" or "split-lane", got "fast"/.test(e.message));
    });

    function parity(kind: Kind, emulate: boolean, cases: Dims[] = shapes): void {
      const ns = kind === "slstm" ? 4 : 2;
      const cpuF = kind === "slstm" ? native.slstmForward : native.lstmForward;
      const devF =
        kind === "slstm" ? (emulate ? native.cudaSlstmForwardEmulate : native.cudaSlstmForwardHost) : emulate ? native.cudaLstmForwardEmulate : native.cudaLstmForwardHost;
      const devB = kind === "slstm" ? (emulate ? native.cudaSlstmBackwardEmulate : native.cudaSlstmBackwardHost) : emulate ? native.cudaLstmBackwardEmulate : native.cudaLstmBackwardHost;
      let seed = 100;
      for (const d of cases)
        for (const withState of [false, true]) {
          const n = lens(d, ns);
          const tag = `${emulate ? "emulated " : ""}${kind} B=${d.B} S=${d.S} NH=${d.NH} DH=${d.DH}${withState ? " state0" : ""}`;
          const x = randn(n.x, ++seed), R = randn(n.R, ++seed, 0.5 / Math.sqrt(d.DH)), bias = randn(n.bias, ++seed, 0.5);
          let s0: Float32Array | null = null;
          if (withState) {
            s0 = randn(n.state, ++seed);
            const bh = d.B * n.H;
            if (kind === "slstm") for (let i = 2 * bh; i < 3 * bh; ++i) s0[i] = 1 + Math.abs(s0[i]); // n_0 > 0
          }
          const y = new Float32Array(n.y), st = new Float32Array(n.seq), gt = new Float32Array(n.x);
          const yg = new Float32Array(n.y), stg = new Float32Array(n.seq), gtg = new Float32Array(n.x);
          cpuF(y, st, gt, x, s0, R, bias, d.B, d.S, d.NH, d.DH);
          devF(yg, stg, gtg, x, s0, R, bias, d.B, d.S, d.NH, d.DH);
          const ftol = d.S >= 100 ? 1e-4 : 2e-5;
          assertNear(yg, y, `${tag}: y`, ftol);
          assertNear(stg, st, `${tag}: states`, ftol);
          assertNear(gtg, gt, `${tag}: gates`, ftol);

          // backward from the CPU's saved tensors, so both sides differentiate the same trajectory
          const dy = randn(n.y, ++seed);
          for (const withFinal of [false, true]) {
            const dfin = withFinal ? randn(n.state, ++seed) : null;
            for (const exact of kind === "slstm" ? [false, true] : [false]) {
              const run = (dev: boolean) => {
                const dx = new Float32Array(n.x), dR = new Float32Array(n.R), db = new Float32Array(n.bias), ds0 = new Float32Array(n.state);
                const fn = (dev ? devB : kind === "slstm" ? native.slstmBackward : native.lstmBackward) as (...a: unknown[]) => void;
                fn(dx, dR, db, ds0, gt, st, dy, dfin, s0, R, d.B, d.S, d.NH, d.DH, ...(kind === "slstm" ? [exact] : []));
                return { dx, dR, db, ds0 };
              };
              const c = run(false), g = run(true);
              const btag = `${tag}${withFinal ? " dstateFinal" : ""}${exact ? " exactM0Grad" : ""}`;
              assertNear(g.dx, c.dx, `${btag}: dx`, 1e-4);
              assertNear(g.dR, c.dR, `${btag}: dR`, 1e-4);
              assertNear(g.db, c.db, `${btag}: dbias`, 1e-4);
              assertNear(g.ds0, c.ds0, `${btag}: dstate0`, 1e-4);
              if (kind === "slstm" && !exact) {
                const bh = d.B * n.H;
                assert.ok(g.ds0.subarray(3 * bh).every((v) => v === 0), `${btag}: ∂m_0 must be 0 (reference CUDA convention)`);
              }
              // deterministic: a second run is bitwise identical (no atomics)
              const g2 = run(true);
              assert.deepEqual([g2.dx, g2.dR, g2.db, g2.ds0], [g.dx, g.dR, g.db, g.ds0], `${btag}: backward is deterministic`);
            }
          }
        }
    }
  });

  // The form under the bf16 autocast (cuda/recurrent_tc.cuh): the recurrent products on tensor cores with bf16 R and
  // h_{t-1} (forward) and bf16 R and dp (backward), float32 sums; everything else float32. Its reference is built
  // independently from the CPU kernels one step at a time: forward, each step's h_{t-1} rounded to bf16 in state0 and
  // R rounded beforehand (bf16 x bf16 products are exact in float32, so only the order of the float32 sums differs);
  // backward, each step's CPU backward for dx, ∂c, ∂n, with ∂h_{t-1} = Σ_k bf16(R[j][k])·bf16(dx_t[k]) summed here in
  // float64; dR (bf16 h_{t-1} and dx: tensor-core GEMMs in the kernels) and dbias (float32 dx) here in float64. A value within float32
  // rounding of a bf16 rounding boundary may round the other way on the two sides, and the recurrence carries that
  // bf16 ulp on; so the reference takes the rounded operands from the run it checks (h_{t-1} from its states, dp from
  // its dx: "forced"), and each step is checked against the CPU's step from the same operands. The documented bound
  // on bf16 vs float32: y and dx within 4 E_ref, E_ref = the float32 recurrence's own move when only R is rounded
  // (measured 0.4..2.8 E_ref; XLSTM_TEST_VERBOSE=1 prints the ratios).
  describe("bf16 tensor-core form (the autocast's recurrences)", () => {
    // shapes where the split launch takes it (B <= 64, <= 32 units per block, shared memory permitting): 1 or 2 column
    // tiles with R's fragments in registers, 4 and 8 (NH 16 / 33: 12 and 25 units per block, pad columns) and DH > 1024
    // with them read from shared memory; 1..4 row tiles (B = 17, 64), j-tiles that leave warps idle (DH 3, 33) or give
    // them 1..9 each (DH 160, 520, 1000, 1040)
    const shapes: Dims[] = [
      { B: 1, S: 1, NH: 1, DH: 2 },
      { B: 3, S: 5, NH: 2, DH: 3 },
      { B: 17, S: 5, NH: 4, DH: 8 },
      { B: 1, S: 7, NH: 3, DH: 33 },
      { B: 64, S: 3, NH: 1, DH: 24 },
      { B: 2, S: 40, NH: 2, DH: 16 },
      { B: 3, S: 4, NH: 1, DH: 160 },
      { B: 2, S: 3, NH: 1, DH: 520 },
      { B: 2, S: 2, NH: 1, DH: 1000 },
      { B: 16, S: 2, NH: 1, DH: 768 }, // G1's configuration: 128 blocks of 6 units (2 column tiles), 6 j-tiles per warp
      { B: 2, S: 3, NH: 16, DH: 96 },
      { B: 1, S: 3, NH: 33, DH: 100 },
      { B: 2, S: 2, NH: 1, DH: 1040 },
      { B: 40, S: 2, NH: 4, DH: 256 }, // 1280 outputs per block: beyond the 4 per thread whose x is prefetched
    ];
    const bits = new Uint32Array(1), fl = new Float32Array(bits.buffer);
    /** x rounded to bfloat16 (nearest even; the arrays here hold no NaN) */
    const bfr = (v: number): number => {
      fl[0] = v;
      const u = bits[0];
      bits[0] = (((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16) >>> 0;
      return fl[0];
    };
    const col = (d: Dims, hd: number, k: number) => Math.floor(k / d.DH) * d.NH * d.DH + hd * d.DH + (k % d.DH);

    function refForward(kind: Kind, d: Dims, x: Float32Array, s0: Float32Array | null, R: Float32Array, bias: Float32Array, forced: Float32Array) {
      const ns = kind === "slstm" ? 4 : 2, n = lens(d, ns), H = n.H, BH = d.B * H;
      const cpuF = kind === "slstm" ? native.slstmForward : native.lstmForward;
      const Rr = R.map(bfr);
      const y = new Float32Array(n.y), st = new Float32Array(n.seq), gt = new Float32Array(n.x);
      let prev = s0 ? s0.slice() : new Float32Array(n.state);
      for (let t = 0; t < d.S; ++t) {
        const s0t = prev.slice();
        if (t > 0) s0t.set(forced.subarray((t - 1) * BH, t * BH)); // h_{t-1} of the checked run
        for (let i = 0; i < BH; ++i) s0t[i] = bfr(s0t[i]);
        const xt = new Float32Array(d.B * 4 * H);
        for (let b = 0; b < d.B; ++b) xt.set(x.subarray((b * d.S + t) * 4 * H, (b * d.S + t + 1) * 4 * H), b * 4 * H);
        const y1 = new Float32Array(BH), st1 = new Float32Array(ns * BH), gt1 = new Float32Array(d.B * 4 * H);
        cpuF(y1, st1, gt1, xt, s0t, Rr, bias, d.B, 1, d.NH, d.DH);
        for (let b = 0; b < d.B; ++b) {
          y.set(y1.subarray(b * H, (b + 1) * H), (b * d.S + t) * H);
          gt.set(gt1.subarray(b * 4 * H, (b + 1) * 4 * H), (b * d.S + t) * 4 * H);
        }
        for (let q = 0; q < ns; ++q) st.set(st1.subarray(q * BH, (q + 1) * BH), (q * d.S + t) * BH);
        prev = st1;
      }
      return { y, st, gt };
    }

    function refBackward(kind: Kind, d: Dims, gt: Float32Array, st: Float32Array, dy: Float32Array, dfin: Float32Array | null, s0: Float32Array | null, R: Float32Array, exact: boolean, forced: Float32Array) {
      const ns = kind === "slstm" ? 4 : 2, n = lens(d, ns), H = n.H, BH = d.B * H, G = 4 * d.DH;
      const cpuB = (kind === "slstm" ? native.slstmBackward : native.lstmBackward) as (...a: unknown[]) => void;
      const Rr = R.map(bfr);
      const dx = new Float32Array(n.x);
      const carried = dfin ? dfin.slice() : new Float32Array(n.state); // [dh, dc, dn, (m ignored)]
      let ds0 = new Float32Array(n.state);
      for (let t = d.S - 1; t >= 0; --t) {
        const gt1 = new Float32Array(d.B * 4 * H), dy1 = new Float32Array(BH), st1 = new Float32Array(ns * BH), s0t = new Float32Array(ns * BH);
        for (let b = 0; b < d.B; ++b) {
          gt1.set(gt.subarray((b * d.S + t) * 4 * H, (b * d.S + t + 1) * 4 * H), b * 4 * H);
          dy1.set(dy.subarray((b * d.S + t) * H, (b * d.S + t + 1) * H), b * H);
        }
        for (let q = 0; q < ns; ++q) {
          st1.set(st.subarray((q * d.S + t) * BH, (q * d.S + t + 1) * BH), q * BH);
          if (t > 0) s0t.set(st.subarray((q * d.S + t - 1) * BH, (q * d.S + t) * BH), q * BH);
          else if (s0) s0t.set(s0.subarray(q * BH, (q + 1) * BH), q * BH);
        }
        const dfin1 = carried.slice();
        if (ns === 4) dfin1.fill(0, 3 * BH);
        const dx1 = new Float32Array(d.B * 4 * H), dR1 = new Float32Array(n.R), db1 = new Float32Array(n.bias);
        ds0 = new Float32Array(n.state);
        cpuB(dx1, dR1, db1, ds0, gt1, st1, dy1, dfin1, s0t, Rr, d.B, 1, d.NH, d.DH, ...(kind === "slstm" ? [exact] : []));
        for (let b = 0; b < d.B; ++b) dx.set(dx1.subarray(b * 4 * H, (b + 1) * 4 * H), (b * d.S + t) * 4 * H);
        carried.set(ds0.subarray(BH, ns === 4 ? 3 * BH : 2 * BH), BH); // dc (, dn)
        for (let b = 0; b < d.B; ++b)
          for (let hd = 0; hd < d.NH; ++hd)
            for (let j = 0; j < d.DH; ++j) {
              let acc = 0;
              for (let k = 0; k < G; ++k) acc += Rr[(hd * d.DH + j) * G + k] * bfr(forced[(b * d.S + t) * 4 * H + col(d, hd, k)]);
              carried[b * H + hd * d.DH + j] = acc;
            }
      }
      ds0.set(carried.subarray(0, BH), 0); // ∂h_0 from the bf16 products; ∂c, ∂n, ∂m from the t = 0 call
      // dR from bf16 h_{t-1} and dx (the checked run's, as above), dbias from float32 dx
      const dR = new Float64Array(n.R), db = new Float64Array(n.bias);
      for (let b = 0; b < d.B; ++b)
        for (let t = 0; t < d.S; ++t) {
          const hOf = (i: number) => bfr(t > 0 ? st[(t - 1) * BH + b * H + i] : s0 ? s0[b * H + i] : 0);
          for (let hd = 0; hd < d.NH; ++hd)
            for (let k = 0; k < G; ++k) {
              const g = forced[(b * d.S + t) * 4 * H + col(d, hd, k)];
              db[col(d, hd, k)] += g;
              const gr = bfr(g);
              for (let j = 0; j < d.DH; ++j) dR[(hd * d.DH + j) * G + k] += hOf(hd * d.DH + j) * gr;
            }
        }
      return { dx, dR: Float32Array.from(dR), db: Float32Array.from(db), ds0 };
    }

    function bf16Parity(kind: Kind, emulate: boolean, cases: Dims[] = shapes): void {
      const ns = kind === "slstm" ? 4 : 2;
      const S = kind === "slstm" ? "Slstm" : "Lstm";
      const nat = native as unknown as Record<string, (...a: unknown[]) => void>;
      const devF = nat[`cuda${S}ForwardBf16${emulate ? "Emulate" : "Host"}`], devB = nat[`cuda${S}BackwardBf16${emulate ? "Emulate" : "Host"}`];
      const cpuF = kind === "slstm" ? native.slstmForward : native.lstmForward;
      let seed = 900;
      let apart = 0, apartB = 0;
      const bound: number[] = [];
      for (const d of cases) {
        // the large shapes (G1's, DH ~1000) once, with a state and final cotangents: the replay and the float64
        // reference are slow there, and the smaller shapes cover every variant
        const big = d.B * d.NH * d.DH * d.DH >= 2e6;
        for (const withState of big ? [true] : [false, true]) {
          const n = lens(d, ns);
          const tag = `${emulate ? "emulated " : ""}bf16 ${kind} B=${d.B} S=${d.S} NH=${d.NH} DH=${d.DH}${withState ? " state0" : ""}`;
          const x = randn(n.x, ++seed), R = randn(n.R, ++seed, 0.5 / Math.sqrt(d.DH)), bias = randn(n.bias, ++seed, 0.5);
          let s0: Float32Array | null = null;
          if (withState) {
            s0 = randn(n.state, ++seed);
            const bh = d.B * n.H;
            if (kind === "slstm") for (let i = 2 * bh; i < 3 * bh; ++i) s0[i] = 1 + Math.abs(s0[i]);
          }
          const y = new Float32Array(n.y), st = new Float32Array(n.seq), gt = new Float32Array(n.x);
          devF(y, st, gt, x, s0, R, bias, d.B, d.S, d.NH, d.DH);
          const ref = refForward(kind, d, x, s0, R, bias, st);
          const ftol = d.S >= 20 ? 1e-4 : 2e-5;
          assertNear(y, ref.y, `${tag}: y`, ftol);
          assertNear(st, ref.st, `${tag}: states`, ftol);
          assertNear(gt, ref.gt, `${tag}: gates`, ftol);
          // the form is not the float32 one: where h_{t-1} reaches the products, the float32 kernels land elsewhere
          const y32 = new Float32Array(n.y), st32 = new Float32Array(n.seq), gt32 = new Float32Array(n.x);
          cpuF(y32, st32, gt32, x, s0, R, bias, d.B, d.S, d.NH, d.DH);
          if (d.S > 1 && d.DH >= 8) {
            let scale = 0;
            for (const v of ref.y) scale = Math.max(scale, Math.abs(v));
            const r = worstRatio(y32, ref.y, ftol, ftol * scale);
            assert.ok(r.ratio > 2, `${tag}: the float32 recurrence is within ${r.ratio.toFixed(2)}x the bf16 tolerance of the bf16 reference`);
            apart++;
          }
          // and how far it lands from float32 (the documented bound): within 4 E_ref, E_ref = how far the float32
          // recurrence moves when only R is rounded to bf16 (the problem's own sensitivity to bf16 weights)
          const yR = new Float32Array(n.y), stR = new Float32Array(n.seq), gtR = new Float32Array(n.x);
          cpuF(yR, stR, gtR, x, s0, R.map(bfr), bias, d.B, d.S, d.NH, d.DH);
          const maxDiff = (u: Float32Array, w: Float32Array) => u.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i])), 0);
          const eRef = maxDiff(yR, y32), eBf = maxDiff(y, y32);
          bound.push(eBf / Math.max(eRef, 1e-30));
          assert.ok(eBf <= 4 * eRef + 1e-6, `${tag}: bf16 form vs float32 ${eBf.toExponential(2)} exceeds 4 E_ref (${eRef.toExponential(2)})`);

          const dy = randn(n.y, ++seed);
          for (const withFinal of big ? [true] : [false, true]) {
            const dfin = withFinal ? randn(n.state, ++seed) : null;
            for (const exact of kind === "slstm" && !big ? [false, true] : [false]) {
              const dx = new Float32Array(n.x), dR = new Float32Array(n.R), db = new Float32Array(n.bias), ds0 = new Float32Array(n.state);
              devB(dx, dR, db, ds0, ref.gt, ref.st, dy, dfin, s0, R, d.B, d.S, d.NH, d.DH, ...(kind === "slstm" ? [exact] : []));
              const want = refBackward(kind, d, ref.gt, ref.st, dy, dfin, s0, R, exact, dx);
              const btag = `${tag}${withFinal ? " dstateFinal" : ""}${exact ? " exactM0Grad" : ""}`;
              if (d.S >= 4 && d.DH >= 8 && withFinal && !exact) {
                // nor is its backward the float32 one
                const dx32 = new Float32Array(n.x), dR32 = new Float32Array(n.R), db32 = new Float32Array(n.bias), ds32 = new Float32Array(n.state);
                const f32B = (kind === "slstm" ? native.cudaSlstmBackwardEmulate : native.cudaLstmBackwardEmulate) as (...a: unknown[]) => void;
                f32B(dx32, dR32, db32, ds32, ref.gt, ref.st, dy, dfin, s0, R, d.B, d.S, d.NH, d.DH, ...(kind === "slstm" ? [exact] : []));
                let scale = 0;
                for (const v of want.dx) scale = Math.max(scale, Math.abs(v));
                const r = worstRatio(dx32, want.dx, 1e-4, 1e-4 * scale);
                assert.ok(r.ratio > 2, `${btag}: the float32 backward is within ${r.ratio.toFixed(2)}x the bf16 tolerance of the bf16 reference`);
                let scaleR = 0;
                for (const v of want.dR) scaleR = Math.max(scaleR, Math.abs(v));
                const rR = worstRatio(dR32, want.dR, 1e-4, 1e-4 * scaleR);
                assert.ok(rR.ratio > 2, `${btag}: the float32 dR is within ${rR.ratio.toFixed(2)}x the bf16 tolerance of the bf16 reference`);
                apartB++;
                // the documented bound for gradients too: dx within 4 E_ref of float32 (E_ref: R alone rounded)
                const dxR = new Float32Array(n.x);
                f32B(dxR, new Float32Array(n.R), new Float32Array(n.bias), new Float32Array(n.state), ref.gt, ref.st, dy, dfin, s0, R.map(bfr), d.B, d.S, d.NH, d.DH, ...(kind === "slstm" ? [exact] : []));
                const maxDiff = (u: Float32Array, w: Float32Array) => u.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i])), 0);
                const eRef = maxDiff(dxR, dx32), eBf = maxDiff(dx, dx32);
                bound.push(eBf / Math.max(eRef, 1e-30));
                assert.ok(eBf <= 4 * eRef + 1e-6, `${btag}: bf16 dx vs float32 ${eBf.toExponential(2)} exceeds 4 E_ref (${eRef.toExponential(2)})`);
              }
              assertNear(dx, want.dx, `${btag}: dx`, 1e-4);
              assertNear(dR, want.dR, `${btag}: dR`, 1e-4);
              assertNear(db, want.db, `${btag}: dbias`, 1e-4);
              assertNear(ds0, want.ds0, `${btag}: dstate0`, 1e-4);
            }
          }
        }
      }
      if (process.env.XLSTM_TEST_VERBOSE) console.log(`bf16 ${kind}: error / E_ref per case`, bound.map((r) => r.toFixed(2)).join(" "));
      if (cases === shapes) assert.ok(apart >= 12 && apartB >= 6, `the bf16 / float32 separation was checked at ${apart} forward and ${apartB} backward cases`);
    }

    // blocks per head capped (cudaSetRecurrentSplitBlocks): more units per block, wider column tiles (G1 at 48 blocks:
    // 4 tiles of its own 64 columns read from shared memory; at 64 blocks: 48 columns padded to 64; 26 units: 8 tiles)
    const cappedBf16: [Dims, number][] = [
      [{ B: 3, S: 5, NH: 2, DH: 3 }, 2],
      [{ B: 2, S: 3, NH: 1, DH: 520 }, 20],
      [{ B: 16, S: 2, NH: 1, DH: 768 }, 48],
      [{ B: 16, S: 2, NH: 1, DH: 768 }, 64],
    ];
    for (const kind of ["slstm", "lstm"] as const)
      for (const emulate of [true, false])
        (emulate ? itCompiled : itCuda)(`${kind}: the tensor-core form with its blocks per head capped ${emulate ? "(replayed on the host)" : "on the GPU"} equals the step-by-step bf16 reference`, () => {
          for (const [d, cap] of cappedBf16)
            withSetting(native.cudaSetRecurrentSplitBlocks, cap, () => {
              for (const forward of [true, false]) {
                const plan = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, forward, true);
                assert.ok(plan && plan.blocksPerHead <= cap && plan.tensorCoreTiles > 0, `B=${d.B} DH=${d.DH} cap ${cap}: plan ${JSON.stringify(plan)}`);
              }
              bf16Parity(kind, emulate, [d]);
            });
        });

    // The backward's "gather" exchange (cudaSetRecurrentExchange, cuda/recurrent_gather.cuh): each block gathers the
    // head's bf16 dp and multiplies its own rows of R, instead of summing the other blocks' partial products. Shapes:
    // T = 1, one unit per block (DH 3), odd head sizes (4DH not a multiple of 8: the scalar staging), several row tiles
    // (B 17, 64), two unit tiles (26 units per block at cap 20), NH > 1, G1 at its default plan and at 48 blocks.
    const gathered: [Dims, number][] = [
      [{ B: 1, S: 1, NH: 1, DH: 2 }, 0], // T = 1: only the gather after the last step (∂h_{-1})
      [{ B: 3, S: 5, NH: 2, DH: 3 }, 0],
      [{ B: 17, S: 5, NH: 4, DH: 8 }, 0],
      [{ B: 1, S: 7, NH: 3, DH: 33 }, 0],
      [{ B: 64, S: 3, NH: 1, DH: 24 }, 0],
      [{ B: 2, S: 40, NH: 2, DH: 16 }, 0],
      [{ B: 2, S: 3, NH: 1, DH: 520 }, 20],
      [{ B: 16, S: 2, NH: 1, DH: 768 }, 0],
      [{ B: 16, S: 2, NH: 1, DH: 768 }, 48],
    ];
    for (const kind of ["slstm", "lstm"] as const)
      for (const emulate of [true, false])
        (emulate ? itCompiled : itCuda)(`${kind}: the tensor-core backward with the gather exchange ${emulate ? "(replayed on the host)" : "on the GPU"} equals the step-by-step bf16 reference`, () => {
          withSetting(native.cudaSetRecurrentExchange, "gather", () => {
            for (const [d, cap] of gathered)
              withSetting(native.cudaSetRecurrentSplitBlocks, cap, () => {
                const plan = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, false, true);
                assert.ok(plan && plan.tensorCoreTiles > 0 && plan.exchange === "gather", `B=${d.B} NH=${d.NH} DH=${d.DH} cap ${cap}: plan ${JSON.stringify(plan)}`);
                bf16Parity(kind, emulate, [d]);
              });
          });
        });

    itCompiled("cudaSetRecurrentExchange: partials by default, the forward and float32 never gather, refuses unknown exchanges", () => {
      const prev = native.cudaSetRecurrentExchange("gather");
      try {
        assert.equal(native.cudaSetRecurrentExchange("gather"), "gather");
        assert.equal(native.cudaRecurrentPlan(16, 4, 1, 768, false, true)?.exchange, "gather");
        assert.equal(native.cudaRecurrentPlan(16, 4, 1, 768, true, true)?.exchange, "partials");
        assert.equal(native.cudaRecurrentPlan(16, 4, 1, 768, false, false)?.exchange, "partials");
        // B 64 at G1's head: the gathered dp (64 x 3072 bf16) and R's rows no longer fit a block: the partials
        assert.equal(native.cudaRecurrentPlan(64, 4, 1, 768, false, true)?.exchange, "partials");
      } finally {
        assert.equal(native.cudaSetRecurrentExchange(prev), "gather");
      }
      assert.equal(prev, "partials", "the default exchange");
      assert.throws(() => native.cudaSetRecurrentExchange("scatter" as never), (e: Error) => e instanceof RangeError && /cudaSetRecurrentExchange: exchange must be "partials" or "gather", got "scatter"/.test(e.message));
    });

    // wmma's rules (32-byte aligned tile pointers, leading dimensions of 16-byte multiples, tiles inside their arrays),
    // which the host replays cannot see, over the plans the kernels take: 1, 2, 4 and 8 column tiles, registers or
    // shared memory, 1..4 row tiles, odd head sizes, one and two unit tiles of the gather form, capped plans
    itCompiled("the tensor-core kernels' wmma tiles keep wmma's alignment rules and stay inside their arrays at every plan", () => {
      let checked = 0;
      for (const d of [...shapes, { B: 64, S: 2, NH: 1, DH: 768 }, { B: 5, S: 2, NH: 3, DH: 77 }, { B: 33, S: 2, NH: 2, DH: 130 }])
        for (const cap of [0, 96, 48, 20, 7, 2])
          withSetting(native.cudaSetRecurrentSplitBlocks, cap, () => {
            if (!native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, true, true)?.tensorCoreTiles) return;
            assert.equal(native.cudaRecurrentWmmaErrors(d.B, d.S, d.NH, d.DH), 0, `B=${d.B} NH=${d.NH} DH=${d.DH} cap ${cap}`);
            checked++;
          });
      assert.ok(checked >= 30, `${checked} plans checked`);
    });

    // The autotune (cudaSetRecurrentAutotune): which plans it times (on the emulated device), and on a GPU that a
    // tuned call gives the chosen plan's results, the same as the next call's.
    itCompiled("the autotune's candidates: the settings' plan first, then distinct wider plans that fit (the bf16 backward also with the other exchange)", () => {
      const key = (p: ReturnType<typeof native.cudaRecurrentPlan>) => JSON.stringify(p);
      for (const d of [{ B: 16, S: 64, NH: 1, DH: 768 }, { B: 4, S: 64, NH: 2, DH: 300 }, { B: 2, S: 64, NH: 4, DH: 8 }])
        for (const forward of [true, false])
          for (const bf16 of [false, true]) {
            const tag = `B=${d.B} NH=${d.NH} DH=${d.DH} ${forward ? "forward" : "backward"}${bf16 ? " bf16" : ""}`;
            const cands = native.cudaRecurrentTuneCandidates(d.B, d.S, d.NH, d.DH, forward, bf16);
            const auto = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, forward, bf16);
            assert.ok(auto, tag);
            assert.deepEqual(cands[0], { cap: 0, exchange: "partials" }, `${tag}: the settings' own plan first`);
            const seen = new Set<string>();
            for (const c of cands) {
              const prevCap = native.cudaSetRecurrentSplitBlocks(c.cap), prevEx = native.cudaSetRecurrentExchange(c.exchange);
              try {
                const plan = native.cudaRecurrentPlan(d.B, d.S, d.NH, d.DH, forward, bf16);
                assert.ok(plan, `${tag}: candidate ${JSON.stringify(c)} plans the split launch`);
                assert.ok(!seen.has(key(plan)), `${tag}: candidate ${JSON.stringify(c)} repeats a plan`);
                seen.add(key(plan));
                assert.ok(plan.blocksPerHead <= auto.blocksPerHead && (c.cap === 0 || plan.blocksPerHead <= c.cap), `${tag}: ${JSON.stringify(c)} -> ${key(plan)}`);
                assert.ok(c.exchange === "partials" || (!forward && bf16 && plan.exchange === "gather"), `${tag}: only the bf16 backward gathers`);
              } finally {
                native.cudaSetRecurrentExchange(prevEx);
                native.cudaSetRecurrentSplitBlocks(prevCap);
              }
            }
            // G1 (128 blocks by default): caps 96, 64, 48, 32 give 8, 12, 16, 24 units per block, as far as a block's
            // share fits 227 KiB (by hand from the layouts): float32 forward R's columns 4nu x 800 floats + h 16 x
            // 768: to 12 units; bf16 forward bf16 R 768 x (16·tiles + 8) + h + the warps' partials: to 16; float32
            // backward R 768 x (4nu + 4) floats: to 16; bf16 backward to 24 units, gathering to 16 (24 units: two unit
            // tiles of R's rows, 32 x 3080 bf16, and the gathered dp, 16 x 3080, exceed it)
            if (d.DH === 768) assert.equal(cands.length, forward ? (bf16 ? 4 : 3) : bf16 ? 9 : 4, `${tag}: ${JSON.stringify(cands)}`);
          }
      // the rows launch (a batch over 64 rows): nothing to tune
      assert.deepEqual(native.cudaRecurrentTuneCandidates(200, 64, 1, 64, true, true), []);
      const prev = native.cudaSetRecurrentAutotune(true);
      assert.equal(native.cudaSetRecurrentAutotune(prev), true);
      assert.equal(prev, false, "the autotune is off by default");
      throwsNaming(() => native.cudaSetRecurrentAutotune(1 as unknown as boolean), TypeError, "cudaSetRecurrentAutotune", "on");
    });

    for (const kind of ["slstm", "lstm"] as const)
      itCuda(`${kind}: with the autotune on, a call of a new shape times the plans, keeps one, and its results are that plan's (bf16 and float32)`, () => {
        const d = { B: 16, S: 64, NH: 1, DH: 768 };
        const ns = kind === "slstm" ? 4 : 2, n = lens(d, ns);
        const S = kind === "slstm" ? "Slstm" : "Lstm";
        const nat = native as unknown as Record<string, (...a: unknown[]) => void>;
        const x = randn(n.x, 41), R = randn(n.R, 42, 0.5 / Math.sqrt(d.DH)), bias = randn(n.bias, 43, 0.5), dy = randn(n.y, 44);
        const prev = native.cudaSetRecurrentAutotune(true);
        try {
          for (const bf16 of [false, true]) {
            const F = nat[`cuda${S}Forward${bf16 ? "Bf16" : ""}Host`], Bk = nat[`cuda${S}Backward${bf16 ? "Bf16" : ""}Host`];
            const extra = kind === "slstm" ? [false] : [];
            const call = () => {
              const y = new Float32Array(n.y), st = new Float32Array(n.seq), gt = new Float32Array(n.x);
              F(y, st, gt, x, null, R, bias, d.B, d.S, d.NH, d.DH);
              const g = [new Float32Array(n.x), new Float32Array(n.R), new Float32Array(n.bias), new Float32Array(n.state)];
              Bk(...g, gt, st, dy, null, null, R, d.B, d.S, d.NH, d.DH, ...extra);
              return [y, st, gt, ...g];
            };
            const first = call();  // tunes the forward and the backward
            for (const forward of [true, false]) {
              const pick = native.cudaRecurrentTuned(kind === "slstm", d.B, d.S, d.NH, d.DH, forward, bf16);
              assert.ok(pick, `${bf16 ? "bf16 " : ""}${forward ? "forward" : "backward"}: a choice was made`);
              const cands = native.cudaRecurrentTuneCandidates(d.B, d.S, d.NH, d.DH, forward, bf16);
              assert.ok(cands.some((c) => c.cap === pick.cap && c.exchange === pick.exchange), `the choice ${JSON.stringify(pick)} is a candidate`);
            }
            const second = call();  // the tuned plans, bit for bit the first call's
            assert.deepEqual(second, first, `${bf16 ? "bf16" : "float32"}: the tuning call's results are its chosen plans'`);
          }
          // the choices were tuned against the settings: changing one drops them (the next call tunes again)
          native.cudaSetRecurrentSplitBlocks(native.cudaSetRecurrentSplitBlocks(0));
          assert.equal(native.cudaRecurrentTuned(kind === "slstm", d.B, d.S, d.NH, d.DH, true, true), null, "a settings change drops the tuned choices");
        } finally {
          native.cudaSetRecurrentAutotune(prev);
        }
      });

    for (const kind of ["slstm", "lstm"] as const) {
      itCompiled(`${kind}: the tensor-core form replayed on the host (cuda*Bf16Emulate) equals the step-by-step bf16 reference, forward and every gradient`, () => bf16Parity(kind, true));
      itCuda(`${kind}: the tensor-core form on the GPU (cuda*Bf16Host) equals the step-by-step bf16 reference, forward and every gradient`, () => bf16Parity(kind, false));
    }

    itCompiled("where the tensor-core form does not apply (the rows launch, one unit per head, shared memory) the bf16 exports run the float32 kernels", () => {
      const cases: [Kind, Dims][] = [
        ["slstm", { B: 200, S: 2, NH: 2, DH: 8 }],
        ["lstm", { B: 3, S: 2, NH: 2, DH: 1 }],
        ["slstm", { B: 2, S: 2, NH: 1, DH: 1600 }],
      ];
      for (const [kind, d] of cases) {
        const ns = kind === "slstm" ? 4 : 2, n = lens(d, ns);
        const nat = native as unknown as Record<string, (...a: unknown[]) => void>;
        const S = kind === "slstm" ? "Slstm" : "Lstm";
        const x = randn(n.x, 5), R = randn(n.R, 6, 0.5 / Math.sqrt(d.DH)), bias = randn(n.bias, 7, 0.5);
        const a = [new Float32Array(n.y), new Float32Array(n.seq), new Float32Array(n.x)], b = [new Float32Array(n.y), new Float32Array(n.seq), new Float32Array(n.x)];
        nat[`cuda${S}ForwardBf16Emulate`](...a, x, null, R, bias, d.B, d.S, d.NH, d.DH);
        nat[`cuda${S}ForwardEmulate`](...b, x, null, R, bias, d.B, d.S, d.NH, d.DH);
        assert.deepEqual(a, b, `${kind} B=${d.B} NH=${d.NH} DH=${d.DH}: forward`);
        const dy = randn(n.y, 8);
        const ga = [new Float32Array(n.x), new Float32Array(n.R), new Float32Array(n.bias), new Float32Array(n.state)];
        const gb = [new Float32Array(n.x), new Float32Array(n.R), new Float32Array(n.bias), new Float32Array(n.state)];
        const extra = kind === "slstm" ? [false] : [];
        nat[`cuda${S}BackwardBf16Emulate`](...ga, a[2], a[1], dy, null, null, R, d.B, d.S, d.NH, d.DH, ...extra);
        nat[`cuda${S}BackwardEmulate`](...gb, a[2], a[1], dy, null, null, R, d.B, d.S, d.NH, d.DH, ...extra);
        assert.deepEqual(ga, gb, `${kind} B=${d.B} NH=${d.NH} DH=${d.DH}: backward`);
      }
    });
  });
});
