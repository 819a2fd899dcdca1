// Layer 2: the CUDA twins of the nn kernels (cuda/softmax.cu, cuda/norm.cu, cuda/embedding.cu).
// Without a GPU the kernels still get checked: the cuda*Emulate entries replay each launch on the host (every
// block and thread, the kernels' own __host__ __device__ code and reduction order), and the tests compare the
// replayed outputs with the CPU kernels and check that every output element is written exactly once. On a machine
// with a GPU the cuda*Host entries run the real kernels against the CPU kernels on the same awkward shapes.
import { strict as assert } from "assert";
import { assertRefusedWithoutCuda } from "./support/cuda";
import { backends } from "../lib";
import { native } from "../lib/native";
import { assertClose } from "./support/gradcheck";

const cuda = backends().cuda;
const itCuda = cuda.available && !cuda.emulated ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);
const itNoCuda = !cuda.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: a CUDA device is available]`, fn);
const itCompiled = cuda.compiled ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: built without CUDA]`, fn);

/** assertClose with a per-element allowance added to atol + rtol * |expected| (a float32 error-propagation bound). */
function assertCloseWithin(actual: Float32Array, expected: Float32Array, what: string, rtol: number, atol: number, extra: Float64Array): void {
  let worst = 0, at = 0;
  for (let i = 0; i < expected.length; ++i) {
    const r = Math.abs(actual[i] - expected[i]) / (atol + rtol * Math.abs(expected[i]) + extra[i]);
    if (!(r <= worst)) [worst, at] = [Number.isNaN(r) ? Infinity : r, i];
  }
  assert.ok(worst <= 1, `${what}: worst error/tolerance ratio ${worst.toFixed(3)} at index ${at}: got ${actual[at]}, expected ${expected[at]} (allowance ${extra[at]})`);
}

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
function randInt(n: number, hi: number, seed: number): Int32Array {
  return Int32Array.from(rand(n, seed), (v) => Math.min(hi - 1, Math.floor(((v + 1) / 2) * hi)));
}
const nanFilled = (n: number) => new Float32Array(n).fill(NaN);

function assertWrittenOnce(writes: Int32Array, what: string): void {
  const bad = writes.findIndex((v) => v !== 1);
  assert.equal(bad, -1, `${what}: output element ${bad} written ${writes[bad]} times`);
}

// Row shapes: a row, a column, odd sizes, warp-per-row (<= 1024) and block-per-row (> 1024) rows, many rows.
const ROW_SHAPES: [number, number][] = [[1, 1], [1, 7], [5, 1], [3, 33], [17, 1024], [2, 1025], [3, 3001], [300, 5], [2, 5000]];

// Tolerances (replay/GPU vs CPU). Both compute the same float formulas with sums in double; they differ in exp()
// (the CPU's SIMD paths use a Cephes polynomial, ~2 ulp; the host/device expf ~1-2 ulp) and in the order of the
// float products inside the sums, so outputs agree to a few float ulp: rtol 4e-6. Values near 0 that come from
// cancellations (log-softmax of the max, layer-norm gradients, dx of softmax backward) get an absolute 2e-6 of
// the data scale (inputs are O(1); a 1-ulp change of a summed O(1) term moves them by ~1e-7).
const RTOL = 4e-6, ATOL = 2e-6;

describe("21 CUDA nn kernels (softmax, cross-entropy, layer norm, embedding)", function () {
  this.timeout(60000);

  describe("host replay of the CUDA launches vs the CPU kernels", () => {
    itCompiled("softmax / log-softmax forward and backward: every element written once, values as the CPU", () => {
      for (const [rows, cols] of ROW_SHAPES) {
        const n = rows * cols;
        const x = rand(n, rows * 31 + cols, 6), dy = rand(n, rows + 7 * cols);
        for (const log of [false, true]) {
          const fwd = log ? "logSoftmaxForward" : "softmaxForward";
          const bwd = log ? "logSoftmaxBackward" : "softmaxBackward";
          const yc = new Float32Array(n), ye = nanFilled(n), w = new Int32Array(n);
          native[fwd](yc, x, rows, cols);
          native[log ? "cudaLogSoftmaxForwardEmulate" : "cudaSoftmaxForwardEmulate"](ye, x, rows, cols, w);
          assertWrittenOnce(w, `${fwd} ${rows}x${cols}`);
          assertClose(ye, yc, `${fwd} ${rows}x${cols}`, RTOL, log ? ATOL : 1e-9);
          const dxc = new Float32Array(n), dxe = nanFilled(n), w2 = new Int32Array(n);
          native[bwd](dxc, yc, dy, rows, cols);
          native[log ? "cudaLogSoftmaxBackwardEmulate" : "cudaSoftmaxBackwardEmulate"](dxe, yc, dy, rows, cols, w2);
          assertWrittenOnce(w2, `${bwd} ${rows}x${cols}`);
          assertClose(dxe, dxc, `${bwd} ${rows}x${cols}`, RTOL, ATOL);
        }
      }
    });

    itCompiled("softmax over more rows than one grid holds (several passes per block) covers every row once", () => {
      const rows = 8 * 65535 + 13, cols = 2; // 65535 blocks of 8 warp-rows, then a second pass
      const x = rand(rows * cols, 5, 3), yc = new Float32Array(rows * cols), ye = nanFilled(rows * cols), w = new Int32Array(rows * cols);
      native.softmaxForward(yc, x, rows, cols);
      native.cudaSoftmaxForwardEmulate(ye, x, rows, cols, w);
      assertWrittenOnce(w, "softmax 524293x2");
      assertClose(ye, yc, "softmax 524293x2", RTOL, 1e-9);
    });

    itCompiled("cross-entropy forward / backward (int32 and int64 targets, ignore index) as the CPU", () => {
      for (const [n, v] of [[1, 1], [4, 3], [33, 17], [9, 1024], [3, 1500], [2, 4099]]) {
        for (const [ignore, wide] of [[-100, false], [2, true], [-100, true]] as [number, boolean][]) {
          const logits = rand(n * v, n * 13 + v, 8);
          const t32 = randInt(n, v, n + v);
          for (let i = 0; i < n; i += 3) t32[i] = ignore; // every third row ignored
          const targets = wide ? BigInt64Array.from(t32, (x) => BigInt(x)) : t32;
          const what = `crossEntropy n=${n} v=${v} ignore=${ignore} ${wide ? "int64" : "int32"}`;
          const lc = new Float32Array(n), mc = new Float32Array(n), sc = new Float32Array(n);
          const le = nanFilled(n), me = nanFilled(n), se = nanFilled(n), w = new Int32Array(3 * n);
          const cc = native.crossEntropyForward(lc, mc, sc, logits, targets, n, v, ignore);
          const ce = native.cudaCrossEntropyForwardEmulate(le, me, se, logits, targets, n, v, ignore, w);
          assert.equal(ce, cc, `${what}: count`);
          assertWrittenOnce(w, `${what} forward`);
          assert.deepEqual(me, mc, `${what}: rowMax (a max is exact)`);
          assertClose(se, sc, `${what}: logSum`, RTOL, ATOL);
          assertClose(le, lc, `${what}: loss`, RTOL, ATOL);
          const g = rand(n, 99, 2), dc = new Float32Array(n * v), de = nanFilled(n * v), w2 = new Int32Array(n * v);
          native.crossEntropyBackward(dc, logits, mc, sc, targets, g, n, v, ignore);
          native.cudaCrossEntropyBackwardEmulate(de, logits, mc, sc, targets, g, n, v, ignore, w2);
          assertWrittenOnce(w2, `${what} backward`);
          assertClose(de, dc, `${what}: dlogits`, RTOL, ATOL);
          for (let i = 0; i < n; i += 3) assert.ok(de.subarray(i * v, (i + 1) * v).every((x) => x === 0), `${what}: ignored row ${i} is zero`);
        }
      }
    });

    itCompiled("layer norm forward / backward (groups, weight/bias/residual, dweight/dbias) as the CPU", () => {
      const shapes: [number, number, number][] = [[1, 1, 1], [3, 1, 7], [5, 4, 16], [2, 3, 1024], [3, 2, 1025], [2, 1, 3000], [70, 2, 9]];
      for (const [rows, groups, dim] of shapes) {
        const n = rows * groups * dim, rg = rows * groups, gd = groups * dim;
        const x = rand(n, n + 1, 2).map((v, i) => v + (i % 5) * 0.3); // nonzero means
        for (const [hasW, hasB, residual] of [[true, true, true], [true, false, false], [false, true, false], [false, false, true]]) {
          const what = `layerNorm ${rows}x${groups}x${dim} w=${hasW} b=${hasB} residual=${residual}`;
          const w = hasW ? rand(gd, 3, 0.5) : null, b = hasB ? rand(gd, 4) : null;
          const yc = new Float32Array(n), mc = new Float32Array(rg), rc = new Float32Array(rg);
          const ye = nanFilled(n), me = nanFilled(rg), re = nanFilled(rg), wr = new Int32Array(n + 2 * rg);
          native.layerNormForward(yc, mc, rc, x, w, b, rows, groups, dim, 1e-5, residual);
          native.cudaLayerNormForwardEmulate(ye, me, re, x, w, b, rows, groups, dim, 1e-5, residual, wr);
          assertWrittenOnce(wr, `${what} forward`);
          assertClose(me, mc, `${what}: mean`, RTOL, ATOL);
          assertClose(re, rc, `${what}: rstd`, RTOL, 0);
          assertClose(ye, yc, `${what}: y`, RTOL, ATOL);
          const dy = rand(n, 77, 1.5);
          const dxc = new Float32Array(n), dwc = new Float32Array(gd), dbc = new Float32Array(gd);
          const dxe = nanFilled(n), dwe = nanFilled(gd), dbe = nanFilled(gd), wb = new Int32Array(n + 2 * gd);
          native.layerNormBackward(dxc, dwc, dbc, dy, x, mc, rc, w, rows, groups, dim, residual);
          native.cudaLayerNormBackwardEmulate(dxe, dwe, dbe, dy, x, mc, rc, w, rows, groups, dim, residual, wb);
          assertWrittenOnce(wb, `${what} backward`);
          assertClose(dxe, dxc, `${what}: dx`, RTOL, ATOL * 4);
          assertClose(dwe, dwc, `${what}: dweight`, RTOL, ATOL);
          assertClose(dbe, dbc, `${what}: dbias`, RTOL, ATOL);
          // dx only (dweight, dbias null): writes covers dx alone
          const dx2 = nanFilled(n), w3 = new Int32Array(n);
          native.cudaLayerNormBackwardEmulate(dx2, null, null, dy, x, mc, rc, w, rows, groups, dim, residual, w3);
          assertWrittenOnce(w3, `${what} backward (dx only)`);
          assert.deepEqual(dx2, dxe, `${what}: dx does not depend on dweight/dbias being asked for`);
        }
      }
    });

    itCompiled("embedding forward / backward (duplicate indices) equal the CPU bitwise", () => {
      for (const [n, v, e] of [[1, 1, 1], [7, 3, 5], [50, 9, 33], [200, 4, 64], [33, 1000, 3], [5, 70, 4097]]) {
        for (const wide of [false, true]) {
          const idx32 = randInt(n, v, n * 3 + v); // v < n: duplicates
          const idx = wide ? BigInt64Array.from(idx32, (x) => BigInt(x)) : idx32;
          const what = `embedding n=${n} v=${v} e=${e} ${wide ? "int64" : "int32"}`;
          const weight = rand(v * e, 8), oc = new Float32Array(n * e), oe = nanFilled(n * e), w = new Int32Array(n * e);
          native.embeddingForward(oc, weight, idx, v, e);
          native.cudaEmbeddingForwardEmulate(oe, weight, idx, v, e, w);
          assertWrittenOnce(w, `${what} forward`);
          assert.deepEqual(oe, oc, `${what}: out`);
          const dout = rand(n * e, 9), dc = new Float32Array(v * e), de = nanFilled(v * e), w2 = new Int32Array(v * e);
          native.embeddingBackward(dc, dout, idx, v, e);
          native.cudaEmbeddingBackwardEmulate(de, dout, idx, v, e, w2);
          assertWrittenOnce(w2, `${what} backward`);
          assert.deepEqual(de, dc, `${what}: dweight (each element summed in index order)`);
        }
      }
    });

    itCompiled("the replay entries check their arguments like the CPU exports, and writes' length", () => {
      const x = new Float32Array(6), y = new Float32Array(6);
      assert.throws(() => native.cudaSoftmaxForwardEmulate(y, x, 2, 3, new Int32Array(5)), (e: Error) => e instanceof RangeError && /^cudaSoftmaxForwardEmulate: writes has 5 elements/.test(e.message));
      assert.throws(() => native.cudaSoftmaxForwardEmulate(y, x, 2, 3, new Float32Array(6) as never), (e: Error) => e instanceof TypeError && /writes/.test(e.message));
      assert.throws(() => native.cudaSoftmaxForwardEmulate(y, new Float32Array(5), 2, 3, new Int32Array(6)), (e: Error) => e instanceof RangeError && /^cudaSoftmaxForwardEmulate: x has 5 elements/.test(e.message));
      assert.throws(() => native.cudaLayerNormBackwardEmulate(y, new Float32Array(3), null, x, x, new Float32Array(2), new Float32Array(2), null, 2, 1, 3, false, new Int32Array(6)), (e: Error) => e instanceof RangeError && /^cudaLayerNormBackwardEmulate: writes has 6 elements, expected .* = 9/.test(e.message));
    });
  });

  describe("CUDA kernels vs the CPU kernels", () => {
    itCuda("softmax / log-softmax forward and backward", () => {
      for (const [rows, cols] of [...ROW_SHAPES, [70000, 3] as [number, number], [600000, 1] as [number, number]]) {
        const n = rows * cols;
        const x = rand(n, rows * 31 + cols, 6), dy = rand(n, rows + 7 * cols);
        for (const log of [false, true]) {
          const yc = new Float32Array(n), yg = nanFilled(n), dxc = new Float32Array(n), dxg = nanFilled(n);
          native[log ? "logSoftmaxForward" : "softmaxForward"](yc, x, rows, cols);
          native[log ? "cudaLogSoftmaxForwardHost" : "cudaSoftmaxForwardHost"](yg, x, rows, cols);
          assertClose(yg, yc, `cuda ${log ? "log-" : ""}softmax ${rows}x${cols}`, RTOL, log ? ATOL : 1e-9);
          native[log ? "logSoftmaxBackward" : "softmaxBackward"](dxc, yc, dy, rows, cols);
          native[log ? "cudaLogSoftmaxBackwardHost" : "cudaSoftmaxBackwardHost"](dxg, yc, dy, rows, cols);
          assertClose(dxg, dxc, `cuda ${log ? "log-" : ""}softmax backward ${rows}x${cols}`, RTOL, ATOL);
        }
      }
    });

    itCuda("cross-entropy forward / backward (int32 / int64 targets, ignore index)", () => {
      for (const [n, v] of [[1, 1], [33, 17], [3, 1500], [2, 50257], [5000, 7]]) {
        for (const [ignore, wide] of [[-100, false], [1, true]] as [number, boolean][]) {
          const logits = rand(n * v, n + v, 8), t32 = randInt(n, v, n * 7 + v);
          for (let i = 0; i < n; i += 3) t32[i] = ignore;
          const targets = wide ? BigInt64Array.from(t32, (x) => BigInt(x)) : t32;
          const what = `cuda crossEntropy n=${n} v=${v} ${wide ? "int64" : "int32"}`;
          const lc = new Float32Array(n), mc = new Float32Array(n), sc = new Float32Array(n);
          const lg = nanFilled(n), mg = nanFilled(n), sg = nanFilled(n);
          assert.equal(native.cudaCrossEntropyForwardHost(lg, mg, sg, logits, targets, n, v, ignore), native.crossEntropyForward(lc, mc, sc, logits, targets, n, v, ignore), `${what}: count`);
          assert.deepEqual(mg, mc, `${what}: rowMax`);
          assertClose(sg, sc, `${what}: logSum`, RTOL, ATOL);
          assertClose(lg, lc, `${what}: loss`, RTOL, ATOL);
          const g = rand(n, 5), dc = new Float32Array(n * v), dg = nanFilled(n * v);
          native.crossEntropyBackward(dc, logits, mc, sc, targets, g, n, v, ignore);
          native.cudaCrossEntropyBackwardHost(dg, logits, mc, sc, targets, g, n, v, ignore);
          assertClose(dg, dc, `${what}: dlogits`, RTOL, ATOL);
        }
      }
    });

    itCuda("layer norm forward / backward", () => {
      for (const [rows, groups, dim] of [[1, 1, 1], [3, 1, 7], [5, 4, 16], [3, 2, 1025], [2, 1, 3000], [4097, 4, 64], [9000, 1, 3]]) {
        const n = rows * groups * dim, rg = rows * groups, gd = groups * dim;
        const x = rand(n, n, 2), w = rand(gd, 3, 0.5), b = rand(gd, 4), dy = rand(n, 5);
        for (const residual of [false, true]) {
          const what = `cuda layerNorm ${rows}x${groups}x${dim} residual=${residual}`;
          const yc = new Float32Array(n), mc = new Float32Array(rg), rc = new Float32Array(rg);
          const yg = nanFilled(n), mg = nanFilled(rg), rgs = nanFilled(rg);
          native.layerNormForward(yc, mc, rc, x, w, b, rows, groups, dim, 1e-5, residual);
          native.cudaLayerNormForwardHost(yg, mg, rgs, x, w, b, rows, groups, dim, 1e-5, residual);
          assertClose(mg, mc, `${what}: mean`, RTOL, ATOL);
          assertClose(rgs, rc, `${what}: rstd`, RTOL, 0);
          // y and dx: besides RTOL / ATOL, the float32 error propagation of each element (nvcc contracts the
          // products into fmas where g++ does not): xhat = (x - mean) * rstd carries ~ulp(|x| + |mean|) * rstd, which a
          // row of small variance (dim 3) makes large; 4 ulps of every term
          const u4 = 4 * 2 ** -24;
          const yExtra = new Float64Array(n), dxExtra = new Float64Array(n);
          for (let r = 0; r < rg; ++r) {
            const gi = r % groups, rs = rc[r];
            let mgr = 0, mgx = 0;
            for (let d = 0; d < dim; ++d) {
              const e = r * dim + d, we = w[gi * dim + d] + (residual ? 1 : 0), xh = (x[e] - mc[r]) * rs;
              mgr += (dy[e] * we) / dim;
              mgx += (dy[e] * we * xh) / dim;
            }
            for (let d = 0; d < dim; ++d) {
              const e = r * dim + d, we = w[gi * dim + d] + (residual ? 1 : 0), xh = (x[e] - mc[r]) * rs;
              const dxh = u4 * (Math.abs(x[e]) + Math.abs(mc[r])) * rs;  // the error of xhat
              yExtra[e] = dxh * Math.abs(we) + u4 * (Math.abs(xh * we) + Math.abs(b[gi * dim + d]));
              dxExtra[e] = 2 * u4 * rs * (Math.abs(dy[e] * we) + Math.abs(mgr) + Math.abs(mgx * xh)) + rs * Math.abs(mgx) * dxh;
            }
          }
          assertCloseWithin(yg, yc, `${what}: y`, RTOL, ATOL, yExtra);
          const dxc = new Float32Array(n), dwc = new Float32Array(gd), dbc = new Float32Array(gd);
          const dxg = nanFilled(n), dwg = nanFilled(gd), dbg = nanFilled(gd);
          native.layerNormBackward(dxc, dwc, dbc, dy, x, mc, rc, w, rows, groups, dim, residual);
          native.cudaLayerNormBackwardHost(dxg, dwg, dbg, dy, x, mc, rc, w, rows, groups, dim, residual);
          assertCloseWithin(dxg, dxc, `${what}: dx`, RTOL, ATOL * 4, dxExtra);
          // dweight / dbias against their float64 evaluation (with the CPU's mean and rstd): the GPU sums in double,
          // so only its float terms dy * xhat differ, each by at most a few ulps (xhat = (x - mean) * rstd and the
          // product rounded; nvcc may contract them into fmas): the bound is 4 ulps of every term, summed. (The CPU
          // sums its row blocks in float first, so it is not the reference here: test/20 checks it.)
          const dw64 = new Float64Array(gd), db64 = new Float64Array(gd), bound = new Float64Array(gd);
          for (let r = 0; r < rg; ++r) for (let d = 0; d < dim; ++d) {
            const e = r * dim + d, c = (r % groups) * dim + d, term = dy[e] * (x[e] - mc[r]) * rc[r];
            dw64[c] += term;
            db64[c] += dy[e];
            bound[c] += Math.abs(term) * 2 ** -22;
          }
          for (let c = 0; c < gd; ++c) {
            const ew = Math.abs(dwg[c] - dw64[c]), eb = Math.abs(dbg[c] - db64[c]);
            assert.ok(ew <= ATOL + RTOL * Math.abs(dw64[c]) + bound[c], `${what}: dweight[${c}] got ${dwg[c]}, float64 ${dw64[c]} (error ${ew}, bound ${bound[c]})`);
            assert.ok(eb <= 1e-7 + 2 ** -23 * Math.abs(db64[c]), `${what}: dbias[${c}] got ${dbg[c]}, float64 ${db64[c]} (error ${eb})`);
          }
          const again = nanFilled(gd);
          native.cudaLayerNormBackwardHost(nanFilled(n), again, null, dy, x, mc, rc, w, rows, groups, dim, residual);
          assert.deepEqual(again, dwg, `${what}: dweight is reproducible bit for bit`);
        }
      }
    });

    itCuda("embedding forward / backward equal the CPU bitwise (duplicate indices)", () => {
      for (const [n, v, e] of [[1, 1, 1], [50, 9, 33], [8192, 50, 64], [300, 50257, 5], [64, 7, 4097]]) {
        for (const wide of [false, true]) {
          const idx32 = randInt(n, v, n + v), idx = wide ? BigInt64Array.from(idx32, (x) => BigInt(x)) : idx32;
          const what = `cuda embedding n=${n} v=${v} e=${e}`;
          const weight = rand(v * e, 8), oc = new Float32Array(n * e), og = nanFilled(n * e);
          native.embeddingForward(oc, weight, idx, v, e);
          native.cudaEmbeddingForwardHost(og, weight, idx, v, e);
          assert.deepEqual(og, oc, `${what}: out`);
          const dout = rand(n * e, 9), dc = new Float32Array(v * e), dg = nanFilled(v * e);
          native.embeddingBackward(dc, dout, idx, v, e);
          native.cudaEmbeddingBackwardHost(dg, dout, idx, v, e);
          assert.deepEqual(dg, dc, `${what}: dweight`);
        }
      }
    });
  });

  itNoCuda("without a GPU every cuda*Host entry throws an Error naming the export and backends().cuda.reason", () => {
    const f = (k: number) => new Float32Array(k);
    const t = new Int32Array([0, 1]);
    const calls: [string, () => unknown][] = [
      ["cudaSoftmaxForwardHost", () => native.cudaSoftmaxForwardHost(f(6), f(6), 2, 3)],
      ["cudaLogSoftmaxForwardHost", () => native.cudaLogSoftmaxForwardHost(f(6), f(6), 2, 3)],
      ["cudaSoftmaxBackwardHost", () => native.cudaSoftmaxBackwardHost(f(6), f(6), f(6), 2, 3)],
      ["cudaLogSoftmaxBackwardHost", () => native.cudaLogSoftmaxBackwardHost(f(6), f(6), f(6), 2, 3)],
      ["cudaCrossEntropyForwardHost", () => native.cudaCrossEntropyForwardHost(f(2), f(2), f(2), f(6), t, 2, 3, -100)],
      ["cudaCrossEntropyBackwardHost", () => native.cudaCrossEntropyBackwardHost(f(6), f(6), f(2), f(2), t, f(2), 2, 3, -100)],
      ["cudaLayerNormForwardHost", () => native.cudaLayerNormForwardHost(f(6), f(2), f(2), f(6), null, null, 2, 1, 3, 1e-5, false)],
      ["cudaLayerNormBackwardHost", () => native.cudaLayerNormBackwardHost(f(6), null, null, f(6), f(6), f(2), f(2), null, 2, 1, 3, false)],
      ["cudaEmbeddingForwardHost", () => native.cudaEmbeddingForwardHost(f(6), f(9), t, 3, 3)],
      ["cudaEmbeddingBackwardHost", () => native.cudaEmbeddingBackwardHost(f(9), f(6), t, 3, 3)],
    ];
    assertRefusedWithoutCuda(calls, cuda.reason!);
  });

  it("the cuda*Host entries check their arguments before looking for a GPU (same errors as the CPU exports)", () => {
    const f = (k: number) => new Float32Array(k);
    const cases: [string, () => unknown, (e: Error) => boolean][] = [
      ["cudaSoftmaxForwardHost", () => native.cudaSoftmaxForwardHost(f(6), f(5), 2, 3), (e) => e instanceof RangeError && /^cudaSoftmaxForwardHost: x has 5 elements, expected rows\*cols .* = 6/.test(e.message)],
      ["cudaLogSoftmaxBackwardHost", () => native.cudaLogSoftmaxBackwardHost(f(6), f(6), [] as never, 2, 3), (e) => e instanceof TypeError && /^cudaLogSoftmaxBackwardHost: dy /.test(e.message)],
      ["cudaCrossEntropyForwardHost", () => native.cudaCrossEntropyForwardHost(f(2), f(2), f(2), f(6), new Int32Array([0, 3]), 2, 3, -100), (e) => e instanceof RangeError && /targets\[1\] = 3 is out of range/.test(e.message)],
      ["cudaCrossEntropyBackwardHost", () => native.cudaCrossEntropyBackwardHost(f(6), f(6), f(2), f(2), new Float32Array(2) as never, f(2), 2, 3, -100), (e) => e instanceof TypeError && /targets must be an Int32Array or BigInt64Array/.test(e.message)],
      ["cudaLayerNormForwardHost", () => native.cudaLayerNormForwardHost(f(6), f(2), f(2), f(6), f(2), null, 2, 1, 3, 1e-5, false), (e) => e instanceof RangeError && /weight has 2 elements/.test(e.message)],
      ["cudaLayerNormBackwardHost", () => native.cudaLayerNormBackwardHost(f(6), null, null, f(6), f(6), f(2), f(2), null, 2, 1, 3, "no" as never), (e) => e instanceof TypeError && /residualWeight/.test(e.message)],
      ["cudaEmbeddingForwardHost", () => native.cudaEmbeddingForwardHost(f(6), f(9), new Int32Array([0, 3]), 3, 3), (e) => e instanceof RangeError && /indices\[1\] = 3 is out of range/.test(e.message)],
      ["cudaEmbeddingBackwardHost", () => native.cudaEmbeddingBackwardHost(f(8), f(6), new Int32Array([0, 1]), 3, 3), (e) => e instanceof RangeError && /dweight has 8 elements/.test(e.message)],
    ];
    for (const [name, call, ok] of cases)
      assert.throws(call, (e: Error) => {
        assert.ok(e.message.startsWith(`${name}: `), e.message);
        assert.ok(ok(e), `${name}: ${e.constructor.name}: ${e.message}`);
        return true;
      });
  });
});
