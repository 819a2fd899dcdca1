// CUDA twins of the reduction, causal conv1d, dropout, optimizer and permute kernels (cuda/reduce.cu, conv1d.cu,
// dropout.cu, optim.cu, permute.cu; binding csrc/binding/cuda_misc.cc).
//  - Coverage (runs wherever the addon is built with CUDA, GPU or not): the kernels' __host__ __device__ index maps,
//    run on the host over every block and thread of a launch, read each input element exactly once for the right
//    output and write each output exactly once; expected counts are computed here independently.
//  - Host replays (cuda*Emulate, runs wherever the addon is built with CUDA): the kernels' own code run on the host
//    over every block and thread, compared with the CPU kernels, each output element written exactly once.
//  - Argument checks and the no-GPU error (no GPU needed).
//  - CPU <-> GPU parity on awkward shapes, run when a GPU is available and skipped visibly otherwise.
import { strict as assert } from "assert";
import { assertRefusedWithoutCuda } from "./support/cuda";
import { backends, Generator } from "../lib";
import { native } from "../lib/native";
import { assertClose } from "./support/gradcheck";

const cuda = backends().cuda;
const itCuda = cuda.available && !cuda.emulated ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);
const itNoCuda = !cuda.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: a CUDA device is available]`, fn);
const itCompiled = cuda.compiled ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: built without CUDA]`, fn);

function randn(n: number, seed: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  new Generator(seed).fillNormal(out, 0, std);
  return out;
}
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const allEqual = (a: ArrayLike<number>, v: number) => Array.prototype.every.call(a, (x: number) => x === v);
/** Error class and message check: the message starts with the export name and names the argument. */
function throwsNaming(call: () => unknown, cls: ErrorConstructor, fn: string, arg: string): void {
  assert.throws(call, (e: Error) => {
    assert.ok(e instanceof cls, `${fn}: expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.ok(e.message.startsWith(`${fn}: `), e.message);
    assert.ok(e.message.includes(arg), `${fn}: "${e.message}" should name ${arg}`);
    return true;
  });
}

describe("21 CUDA twins: reduce, conv1d, dropout, optim, permute", function () {
  this.timeout(60000);

  describe("launch coverage (host run of the kernels' index maps)", () => {
    itCompiled("reductions read every x element once, for its own output, in every launch mode", () => {
      // [shape, axes, expected mode]: serial = reduction of <= 32 elements, block = innermost (non-1) axis reduced,
      // columns = innermost axis kept. Long reductions (> 8192) are split into pieces.
      const cases: [number[], number[], string | null, boolean][] = [
        [[7], [0], "serial", false],
        [[1], [0], null, false], // nothing (of size > 1) reduced: copy
        [[4, 1, 3], [1], null, false],
        [[3, 0], [1], null, false], // empty reduction: fill
        [[2, 3, 4], [0, 2], "serial", false],
        [[5, 33], [1], "block", false],
        [[2, 1030], [1], "block", false],
        [[3, 20000], [1], "block", true],
        [[33, 5], [0], "columns", false],
        [[2, 40, 3, 7], [1, 2], "columns", false],
        [[20000, 5], [0], "columns", true],
        [[40, 9, 2, 5], [0, 2], "columns", false],
        [[3, 5, 11], [0, 2], "block", false], // alternating runs
        [[70000, 33], [1], "block", false], // more outputs than blocks in the grid: grid-stride loop
        [[1, 2, 1, 3, 1], [0, 1, 2, 3, 4], "serial", false],
      ];
      for (const [shape, axes, mode, split] of cases) {
        const reads = new Int32Array(numel(shape)).fill(-7);
        const r = native.cudaReduceCoverage(shape, axes, reads);
        const what = `[${shape}] over [${axes}]`;
        assert.equal(r.errors, 0, what);
        assert.equal(r.mode, mode, what);
        if (mode !== null) assert.ok(allEqual(reads, 1), `${what}: every x element read once`);
        else assert.ok(allEqual(reads, 0), `${what}: the fill/copy kernels do not reduce`);
        if (mode !== null) assert.equal(r.pieces > 1, split, `${what}: pieces ${r.pieces}`);
      }
    });

    itCompiled("the two-pass sums (sum_all, sum_squares) read every element once", () => {
      for (const n of [0, 1, 255, 257, 16384, 16385, 100003, 16384 * 1024 + 4097]) {
        const reads = new Int32Array(n).fill(-1);
        assert.equal(native.cudaSumCoverage(reads), 0, `n=${n}`);
        assert.ok(allEqual(reads, 1), `n=${n}: every element read once`);
      }
    });

    itCompiled("conv1d writes every y / dx element once and sums every (row, tap) gradient term once", () => {
      for (const [b, s, f, k] of [[1, 1, 1, 1], [2, 3, 5, 4], [1, 7, 3, 7], [3, 200, 2, 4], [1, 1030, 3, 3], [2, 9, 1100, 2], [0, 4, 2, 3]]) {
        const n = b * s * f;
        const yw = new Int32Array(n).fill(-1), dwt = new Int32Array(f * k).fill(-1), dbt = new Int32Array(f).fill(-1);
        assert.equal(native.cudaCausalConv1dCoverage(b, s, f, k, yw, dwt, dbt), 0, `b=${b} s=${s} f=${f} k=${k}`);
        assert.ok(allEqual(yw, 1), "y written once");
        // tap j at time t reads x at t - (k-1) + j: valid for t >= k-1-j, i.e. s - (k-1-j) times per sequence
        for (let c = 0; c < f; ++c) {
          for (let j = 0; j < k; ++j) assert.equal(dwt[c * k + j], b * Math.max(0, s - (k - 1 - j)), `dweight[${c}, ${j}] terms`);
          assert.equal(dbt[c], b * s, `dbias[${c}] terms`);
        }
      }
    });

    itCompiled("permute reads every input element once and puts it in its place", () => {
      const g = new Generator(5);
      const cases: [number[], number[]][] = [[[], []], [[5], [0]], [[3, 4], [1, 0]], [[2, 3, 4], [2, 0, 1]], [[2, 1, 3, 1, 2], [4, 2, 0, 3, 1]], [[3, 0, 2], [2, 1, 0]], [[300, 257], [1, 0]]];
      for (let t = 0; t < 10; ++t) {
        const nd = 1 + g.int(5);
        const shape = Array.from({ length: nd }, () => 1 + g.int(4));
        const perm = shape.map((_, i) => i);
        for (let i = nd - 1; i > 0; --i) {
          const j = g.int(i + 1);
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        cases.push([shape, perm]);
      }
      for (const [shape, perm] of cases) {
        const reads = new Int32Array(numel(shape)).fill(-1);
        assert.equal(native.cudaPermuteCoverage(shape, perm, reads), 0, `[${shape}] perm [${perm}]`);
        assert.ok(allEqual(reads, 1), `[${shape}] perm [${perm}]: every element read once`);
      }
    });
  });

  describe("host replays (the kernels' own code run on the host for every block and thread)", () => {
    // Outputs compared with the CPU kernels (computed independently of the CUDA code), and every output element
    // written exactly once (writes counts each write; outputs concatenated in argument order).
    itCompiled("cudaReduceEmulate / cudaReduceBackwardEmulate equal reduce / reduceBackward in every launch mode", () => {
      // serial, block, columns, split into pieces (> 8192), grid-stride over > 65535 blocks, alternating runs, copy and fill
      const cases: [number[], number[]][] = [
        [[7], [0]], [[1], [0]], [[4, 1, 3], [1]], [[3, 0], [1]], [[2, 3, 4], [0, 2]], [[5, 33], [1]], [[2, 1030], [-1]],
        [[3, 20000], [1]], [[33, 5], [0]], [[2, 40, 3, 7], [1, 2]], [[9000, 3], [0]], [[40, 9, 2, 5], [0, 2]],
        [[3, 5, 11], [0, 2]], [[65600, 33], [1]], [[1, 2, 1, 3, 1], [0, 1, 2, 3, 4]], [[6, 4], []], [[0, 3], [1]],
      ];
      let seed = 500;
      for (const [shape, axes] of cases) {
        const n = numel(shape), nd = shape.length;
        const red = axes.map((a) => (a < 0 ? a + nd : a));
        const m = numel(shape.filter((_, i) => !red.includes(i)));
        const x = randn(n, seed++);
        if (n > 40) { x[3] = NaN; x[n - 2] = x[n - 1] = 5; x[n >> 1] = -0; } // NaN wins max; ties keep the first index
        const what = `[${shape}] over [${axes}]`;
        for (const op of ["sum", "mean", "max"] as const) {
          if (op === "max" && shape.some((sz, i) => red.includes(i) && sz === 0)) continue;
          const xs = op === "max" ? x : x.map((v) => (Number.isNaN(v) ? 0.25 : v));
          const c = new Float32Array(m), e = new Float32Array(m).fill(-7);
          const ac = op === "max" ? new BigInt64Array(m) : null, ae = op === "max" ? new BigInt64Array(m).fill(-9n) : null;
          native.reduce(op, xs, shape, axes, c, ac);
          const w = new Int32Array(op === "max" ? 2 * m : m).fill(5);
          native.cudaReduceEmulate(op, xs, shape, axes, e, ae, w);
          assert.ok(allEqual(w, 1), `${op} ${what}: every out${op === "max" ? " / argmax" : ""} element written once`);
          if (op === "max") {
            assert.deepEqual(e, c, `max ${what}`);
            assert.deepEqual(ae, ac, `argmax ${what}`);
            // without argmax: out alone, counted alone
            const e2 = new Float32Array(m), w2 = new Int32Array(m);
            native.cudaReduceEmulate(op, xs, shape, axes, e2, null, w2);
            assert.deepEqual(e2, c, `max ${what} (no argmax)`);
            assert.ok(allEqual(w2, 1), `max ${what} (no argmax): written once`);
          } else {
            // float64 sums in another order, rounded once: at most one float ulp apart (see the GPU parity test)
            const absSum = new Float32Array(m);
            native.reduce(op, xs.map(Math.abs), shape, axes, absSum);
            for (let o = 0; o < m; ++o) {
              const tol = 2 ** -23 * Math.abs(c[o]) + 1e-12 * absSum[o];
              assert.ok(Math.abs(e[o] - c[o]) <= tol || (Number.isNaN(e[o]) && Number.isNaN(c[o])), `${op} ${what} [${o}]: ${e[o]} vs ${c[o]}`);
            }
          }
          const dy = randn(m, seed++);
          const dc = new Float32Array(n).fill(9), de = new Float32Array(n).fill(-9), wd = new Int32Array(n).fill(3);
          native.reduceBackward(op, dy, shape, axes, dc, ac);
          native.cudaReduceBackwardEmulate(op, dy, shape, axes, de, ac, wd);
          assert.deepEqual(de, dc, `${op} backward ${what}`); // the same per-element op on the same operands
          assert.ok(allEqual(wd, 1), `${op} backward ${what}: every dx element written once`);
        }
      }
    });

    itCompiled("cudaCausalConv1dForwardEmulate / BackwardEmulate equal the CPU kernels, every output written once", () => {
      let seed = 700;
      // b*s*f > 256 * 65535 is out of reach here; 3*33*1100 > 256 blocks' worth and rows > 64 * 8 exercise the
      // grid-stride loops and the row blocks of the weight gradient
      for (const [b, s, f, k] of [[1, 1, 1, 1], [2, 3, 5, 4], [1, 7, 3, 7], [2, 130, 7, 4], [1, 1030, 3, 3], [3, 33, 1100, 4], [0, 4, 2, 3], [2, 0, 3, 2]]) {
        const n = b * s * f, what = `b=${b} s=${s} f=${f} k=${k}`;
        const x = randn(n, seed++), w = randn(f * k, seed++), bias = randn(f, seed++), dy = randn(n, seed++);
        for (const bb of [bias, null]) {
          const yc = new Float32Array(n), ye = new Float32Array(n).fill(NaN), wr = new Int32Array(n).fill(-1);
          native.causalConv1dForward(yc, x, w, bb, b, s, f, k);
          native.cudaCausalConv1dForwardEmulate(ye, x, w, bb, b, s, f, k, wr);
          // the replay fuses each multiply-add (the CPU's scalar path rounds twice): ~k roundings of terms ~1 apart
          assertClose(ye, yc, `y ${what}${bb ? "" : " (no bias)"}`, 1e-5, 1e-5 * k);
          assert.ok(allEqual(wr, 1), `y ${what}: written once`);
        }
        const dxc = new Float32Array(n), dwc = new Float32Array(f * k), dbc = new Float32Array(f);
        native.causalConv1dBackward(dxc, dwc, dbc, dy, x, w, b, s, f, k);
        const rows = b * s;
        // every subset of the optional outputs: writes holds the given ones, concatenated
        for (const mask of [7, 1, 2, 4, 6, 3, 5]) {
          const dxe = mask & 1 ? new Float32Array(n).fill(NaN) : null;
          const dwe = mask & 2 ? new Float32Array(f * k).fill(NaN) : null;
          const dbe = mask & 4 ? new Float32Array(f).fill(NaN) : null;
          const sizes = [dxe ? n : 0, dwe ? f * k : 0, dbe ? f : 0];
          const wr = new Int32Array(sizes[0] + sizes[1] + sizes[2]).fill(-1);
          native.cudaCausalConv1dBackwardEmulate(dxe, dwe, dbe, dy, x, w, b, s, f, k, wr);
          assert.ok(allEqual(wr, 1), `backward ${what} outputs ${mask}: every given output element written once`);
          if (dxe) assertClose(dxe, dxc, `dx ${what}`, 1e-5, 1e-5 * k);
          // the CPU's row blocks and block order; float partials whose roundings may differ by FMA contraction
          if (dwe) assertClose(dwe, dwc, `dweight ${what}`, 1e-5, 1e-6 * Math.sqrt(rows) * Math.max(1, rows / 64));
          if (dbe) assert.deepEqual(dbe, dbc, `dbias ${what}`); // plain adds in the same order: bitwise
        }
      }
    });

    itCompiled("the replay entries check their arguments like the CPU exports, and writes' length", () => {
      const x = new Float32Array(6);
      throwsNaming(() => native.cudaReduceEmulate("sum", x, [2, 3], [1], new Float32Array(2), null, new Int32Array(3)), RangeError, "cudaReduceEmulate", "writes");
      throwsNaming(() => native.cudaReduceEmulate("max", x, [2, 3], [1], new Float32Array(2), new BigInt64Array(2), new Int32Array(2)), RangeError, "cudaReduceEmulate", "writes");
      throwsNaming(() => native.cudaReduceEmulate("sum", x, [2, 3], [1], new Float32Array(3), null, new Int32Array(3)), RangeError, "cudaReduceEmulate", "out");
      throwsNaming(() => native.cudaReduceEmulate("sum", x, [2, 3], [1], new Float32Array(2), null, undefined as unknown as Int32Array), TypeError, "cudaReduceEmulate", "writes");
      throwsNaming(() => native.cudaReduceBackwardEmulate("max", new Float32Array(2), [2, 3], [1], new Float32Array(6), BigInt64Array.from([4n, 5n]), new Int32Array(6)), RangeError, "cudaReduceBackwardEmulate", "argmax[0]");
      throwsNaming(() => native.cudaReduceBackwardEmulate("mean", new Float32Array(2), [2, 3], [1], new Float32Array(6), null, new Int32Array(5)), RangeError, "cudaReduceBackwardEmulate", "writes");
      throwsNaming(() => native.cudaCausalConv1dForwardEmulate(new Float32Array(6), x, new Float32Array(6), null, 1, 2, 3, 2, new Int32Array(5)), RangeError, "cudaCausalConv1dForwardEmulate", "writes");
      throwsNaming(() => native.cudaCausalConv1dBackwardEmulate(null, new Float32Array(6), null, x, x, new Float32Array(6), 1, 2, 3, 2, new Int32Array(7)), RangeError, "cudaCausalConv1dBackwardEmulate", "writes");
      throwsNaming(() => native.cudaCausalConv1dBackwardEmulate(null, new Float32Array(5), null, x, x, new Float32Array(6), 1, 2, 3, 2, new Int32Array(5)), RangeError, "cudaCausalConv1dBackwardEmulate", "dweight");
    });
  });

  describe("argument checks (no GPU needed)", () => {
    it("every entry checks its arguments like its CPU export, naming the argument", () => {
      const x = new Float32Array(6), u8 = new Uint8Array(6);
      throwsNaming(() => native.cudaReduceHost("sum", x, [2, 3], [1], new Float32Array(3)), RangeError, "cudaReduceHost", "out");
      throwsNaming(() => native.cudaReduceHost("prod" as "sum", x, [2, 3], [1], new Float32Array(2)), RangeError, "cudaReduceHost", "op");
      throwsNaming(() => native.cudaReduceBackwardHost("max", new Float32Array(2), [2, 3], [1], new Float32Array(6), null), TypeError, "cudaReduceBackwardHost", "argmax");
      // argmax 4 is in row 1's reduction set, not row 0's: the GPU gathers, so it is refused before any CUDA call
      throwsNaming(() => native.cudaReduceBackwardHost("max", new Float32Array(2), [2, 3], [1], new Float32Array(6), BigInt64Array.from([4n, 5n])), RangeError, "cudaReduceBackwardHost", "argmax[0]");
      throwsNaming(() => native.cudaSumAllHost([1, 2] as unknown as Float32Array), TypeError, "cudaSumAllHost", "x");
      throwsNaming(() => native.cudaCausalConv1dForwardHost(new Float32Array(5), x, new Float32Array(6), null, 1, 2, 3, 2), RangeError, "cudaCausalConv1dForwardHost", "y");
      throwsNaming(() => native.cudaCausalConv1dBackwardHost(null, new Float32Array(5), null, x, x, new Float32Array(6), 1, 2, 3, 2), RangeError, "cudaCausalConv1dBackwardHost", "dweight");
      throwsNaming(() => native.cudaDropoutForwardHost(new Float32Array(6), u8, x, 1.5, 0, 0), RangeError, "cudaDropoutForwardHost", "p");
      throwsNaming(() => native.cudaDropoutBackwardHost(new Float32Array(6), x, new Uint8Array(5), 0.5), RangeError, "cudaDropoutBackwardHost", "mask");
      throwsNaming(() => native.cudaAdamwStepHost(x, x.slice(), x.slice(), x.slice(), -1, 0.9, 0.999, 1e-8, 0, 1), RangeError, "cudaAdamwStepHost", "lr");
      throwsNaming(() => native.cudaSumSquaresHost(null as unknown as Float32Array), TypeError, "cudaSumSquaresHost", "x");
      throwsNaming(() => native.cudaScaleInPlaceHost(x, NaN), RangeError, "cudaScaleInPlaceHost", "alpha");
      throwsNaming(() => native.cudaPermuteHost(new Float32Array(6), x, [2, 3], [0, 0]), RangeError, "cudaPermuteHost", "perm");
      throwsNaming(() => native.cudaReduceCoverage([2, 3], [1], new Int32Array(5)), RangeError, "cudaReduceCoverage", "reads");
      throwsNaming(() => native.cudaSumCoverage(x as unknown as Int32Array), TypeError, "cudaSumCoverage", "reads");
      throwsNaming(() => native.cudaCausalConv1dCoverage(1, 2, 3, 2, new Int32Array(6), new Int32Array(6), new Int32Array(2)), RangeError, "cudaCausalConv1dCoverage", "dbiasTerms");
      throwsNaming(() => native.cudaPermuteCoverage([2, 3], [1, 0], new Int32Array(7)), RangeError, "cudaPermuteCoverage", "reads");
    });

    itNoCuda("the CUDA entries throw an Error naming backends().cuda.reason when no GPU is usable", () => {
      const x = new Float32Array(6), y = new Float32Array(6);
      const calls: [string, () => unknown][] = [
        ["cudaReduceHost", () => native.cudaReduceHost("sum", x, [2, 3], [1], new Float32Array(2))],
        ["cudaReduceBackwardHost", () => native.cudaReduceBackwardHost("mean", new Float32Array(2), [2, 3], [1], y)],
        ["cudaSumAllHost", () => native.cudaSumAllHost(x)],
        ["cudaCausalConv1dForwardHost", () => native.cudaCausalConv1dForwardHost(y, x, new Float32Array(6), null, 1, 2, 3, 2)],
        ["cudaCausalConv1dBackwardHost", () => native.cudaCausalConv1dBackwardHost(y, null, null, x, x.slice(), new Float32Array(6), 1, 2, 3, 2)],
        ["cudaDropoutForwardHost", () => native.cudaDropoutForwardHost(y, new Uint8Array(6), x, 0.5, 1, 2)],
        ["cudaDropoutBackwardHost", () => native.cudaDropoutBackwardHost(y, x, new Uint8Array(6), 0.5)],
        ["cudaAdamwStepHost", () => native.cudaAdamwStepHost(x, x.slice(), x.slice(), y, 1e-3, 0.9, 0.999, 1e-8, 0, 1)],
        ["cudaSumSquaresHost", () => native.cudaSumSquaresHost(x)],
        ["cudaScaleInPlaceHost", () => native.cudaScaleInPlaceHost(x, 2)],
        ["cudaPermuteHost", () => native.cudaPermuteHost(y, x, [2, 3], [1, 0])],
      ];
      assertRefusedWithoutCuda(calls, cuda.reason!);
    });
  });

  describe("CPU <-> GPU parity", () => {
    itCuda("cudaReduceHost / cudaReduceBackwardHost equal reduce / reduceBackward", () => {
      const cases: [number[], number[]][] = [
        [[1], [0]], [[1, 1], [0, 1]], [[7], [0]], [[5, 1030], [1]], [[5, 1030], [0]], [[3, 17, 5], [0, 2]], [[3, 17, 5], [1]],
        [[40000], [0]], [[2, 20000, 3], [1]], [[70000, 3], [1]], [[3, 70000], [0]], [[2, 3, 4, 5], [0, 1, 2, 3]], [[6, 4], []], [[3, 0], [1]],
      ];
      let seed = 1;
      for (const [shape, axes] of cases) {
        const n = numel(shape);
        const x = randn(n, seed++);
        if (n > 10) { x[3] = NaN; x[n - 2] = x[n - 1] = 5; } // NaN wins max; ties keep the first index
        const kept = shape.filter((_, i) => !axes.includes(i));
        const m = numel(kept);
        const what = `[${shape}] over [${axes}]`;
        for (const op of ["sum", "mean", "max"] as const) {
          if (op === "max" && shape.some((s, i) => axes.includes(i) && s === 0)) continue;
          const xs = op === "max" ? x : x.map((v) => (Number.isNaN(v) ? 0.25 : v));
          const c = new Float32Array(m), g = new Float32Array(m);
          const ac = op === "max" ? new BigInt64Array(m) : null, ag = op === "max" ? new BigInt64Array(m) : null;
          native.reduce(op, xs, shape, axes, c, ac);
          native.cudaReduceHost(op, xs, shape, axes, g, ag);
          if (op === "max") {
            assert.deepEqual(g, c, `max ${what}`);
            assert.deepEqual(ag, ac, `argmax ${what}`);
          } else {
            // Both sum in float64 and round once; only the order differs, so the float64 sums differ by about
            // count * 2^-53 * sum|x| and the rounded results by at most one float ulp (2^-23 relative).
            const absSum = new Float32Array(m);
            native.reduce(op, xs.map(Math.abs), shape, axes, absSum);
            for (let o = 0; o < m; ++o) {
              const tol = 2 ** -23 * Math.abs(c[o]) + 1e-12 * absSum[o];
              assert.ok(Math.abs(g[o] - c[o]) <= tol || (Number.isNaN(g[o]) && Number.isNaN(c[o])), `${op} ${what} [${o}]: ${g[o]} vs ${c[o]}`);
            }
          }
          const dy = randn(m, seed++);
          const dc = new Float32Array(n).fill(9), dg = new Float32Array(n).fill(-9);
          native.reduceBackward(op, dy, shape, axes, dc, ac);
          native.cudaReduceBackwardHost(op, dy, shape, axes, dg, ac);
          assert.deepEqual(dg, dc, `${op} backward ${what}`); // the same per-element op on the same operands
        }
      }
    });

    itCuda("cudaSumAllHost equals the float64 sum", () => {
      for (const n of [0, 1, 1000, 16385, 1_000_003]) {
        const x = randn(n, 40 + n);
        let s = 0, a = 0;
        for (const v of x) { s += v; a += Math.abs(v); }
        // float64 accumulation in another order: |error| <= n * 2^-52 * sum|x|
        assert.ok(Math.abs(native.cudaSumAllHost(x) - s) <= n * 2 ** -52 * a + 1e-300, `n=${n}`);
      }
    });

    itCuda("cudaCausalConv1dForwardHost / BackwardHost equal the CPU kernels", () => {
      let seed = 100;
      for (const [b, s, f, k] of [[1, 1, 1, 1], [2, 3, 5, 4], [1, 7, 3, 7], [2, 130, 7, 4], [1, 1030, 3, 3], [3, 33, 1100, 4]]) {
        const n = b * s * f, what = `b=${b} s=${s} f=${f} k=${k}`;
        const x = randn(n, seed++), w = randn(f * k, seed++), bias = randn(f, seed++), dy = randn(n, seed++);
        const yc = new Float32Array(n), yg = new Float32Array(n);
        native.causalConv1dForward(yc, x, w, bias, b, s, f, k);
        native.cudaCausalConv1dForwardHost(yg, x, w, bias, b, s, f, k);
        // Same taps in the same order; the GPU fuses each multiply-add (as the CPU's AVX2/AVX-512 paths do, the
        // scalar path rounds twice): at most ~k float roundings of terms of size |w x| ~ 1 apart.
        assertClose(yg, yc, `y ${what}`, 1e-5, 1e-5 * k);
        const dxc = new Float32Array(n), dwc = new Float32Array(f * k), dbc = new Float32Array(f);
        const dxg = new Float32Array(n), dwg = new Float32Array(f * k), dbg = new Float32Array(f);
        native.causalConv1dBackward(dxc, dwc, dbc, dy, x, w, b, s, f, k);
        native.cudaCausalConv1dBackwardHost(dxg, dwg, dbg, dy, x, w, b, s, f, k);
        assertClose(dxg, dxc, `dx ${what}`, 1e-5, 1e-5 * k);
        // dweight / dbias: the same row blocks and block order; float partials of up to ceil(rows/64) terms whose
        // roundings may differ by FMA contraction: ~ rows/64 * 2^-24 * sqrt(rows) relative to the terms.
        const rows = b * s;
        assertClose(dwg, dwc, `dweight ${what}`, 1e-5, 1e-6 * Math.sqrt(rows) * Math.max(1, rows / 64));
        assert.deepEqual(dbg, dbc, `dbias ${what}`); // plain adds in the same order: bitwise
      }
    });

    itCuda("cudaDropoutForwardHost / BackwardHost are bit-identical to the CPU for the same key", () => {
      let seed = 200;
      for (const n of [0, 1, 3, 5, 4097, 100003])
        for (const p of [0, 0.1, 1 / 3, 0.5, 1]) {
          const x = randn(n, seed++), dy = randn(n, seed++);
          const key0 = (seed * 2654435761) >>> 0, key1 = seed;
          const yc = new Float32Array(n), mc = new Uint8Array(n), yg = new Float32Array(n), mg = new Uint8Array(n);
          native.dropoutForward(yc, mc, x, p, key0, key1);
          native.cudaDropoutForwardHost(yg, mg, x, p, key0, key1);
          assert.deepEqual(mg, mc, `mask n=${n} p=${p}`);
          assert.deepEqual(yg, yc, `y n=${n} p=${p}`);
          const dc = new Float32Array(n), dg = new Float32Array(n);
          native.dropoutBackward(dc, dy, mc, p);
          native.cudaDropoutBackwardHost(dg, dy, mc, p);
          assert.deepEqual(dg, dc, `dx n=${n} p=${p}`);
        }
    });

    itCuda("cudaAdamwStepHost / cudaSumSquaresHost / cudaScaleInPlaceHost equal the CPU kernels", () => {
      let seed = 300;
      for (const n of [1, 7, 1000, 100003]) {
        const p = randn(n, seed++), m = randn(n, seed++, 0.1), v = randn(n, seed++, 0.01).map(Math.abs);
        const pc = p.slice(), mc = m.slice(), vc = v.slice(), pg = p.slice(), mg = m.slice(), vg = v.slice();
        for (let t = 1; t <= 3; ++t) {
          const g = randn(n, seed++);
          native.adamwStep(pc, mc, vc, g, 1e-3, 0.9, 0.999, 1e-8, 0.01, t);
          native.cudaAdamwStepHost(pg, mg, vg, g, 1e-3, 0.9, 0.999, 1e-8, 0.01, t);
        }
        // every float operation rounded on its own on both sides (optim_math.h): bitwise
        assert.deepEqual(pg, pc, `p n=${n}`);
        assert.deepEqual(mg, mc, `m n=${n}`);
        assert.deepEqual(vg, vc, `v n=${n}`);
        const x = randn(n, seed++);
        const sc = native.sumSquares(x), sg = native.cudaSumSquaresHost(x);
        assert.ok(Math.abs(sg - sc) <= n * 2 ** -52 * sc, `sumSquares n=${n}: ${sg} vs ${sc}`); // float64, other order
        const xc = x.slice(), xg = x.slice();
        native.scaleInPlace(xc, -0.37);
        native.cudaScaleInPlaceHost(xg, -0.37);
        assert.deepEqual(xg, xc, `scaleInPlace n=${n}`);
      }
      assert.equal(native.cudaSumSquaresHost(new Float32Array(0)), 0);
    });

    itCuda("cudaPermuteHost equals permute for every element size", () => {
      const cases: [number[], number[]][] = [[[], []], [[5], [0]], [[1, 1], [1, 0]], [[33, 1025], [1, 0]], [[2, 3, 4], [2, 0, 1]], [[2, 1, 3, 1, 2], [4, 2, 0, 3, 1]], [[4, 0, 3], [2, 1, 0]], [[3, 64, 17, 5], [0, 2, 3, 1]]];
      for (const [shape, perm] of cases) {
        const n = numel(shape);
        const base = randn(n, n + 7);
        const arrays = [base, Int32Array.from(base, (v) => Math.round(v * 1e6)), BigInt64Array.from(base, (v) => BigInt(Math.round(v * 1e12))), Uint16Array.from(base, (v) => Math.abs(v * 1e4) & 0xffff), Uint8Array.from(base, (v) => Math.abs(v * 100) & 0xff)];
        for (const x of arrays) {
          const c = new (x.constructor as new (n: number) => typeof x)(n), g = new (x.constructor as new (n: number) => typeof x)(n);
          native.permute(c, x, shape, perm);
          native.cudaPermuteHost(g, x, shape, perm);
          assert.deepEqual(g, c, `${x.constructor.name} [${shape}] perm [${perm}]`);
        }
      }
    });
  });
});
