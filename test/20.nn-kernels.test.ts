// Layer 2: the nn kernels through the binding (csrc/binding/nn.cc): softmax / log-softmax / cross-entropy,
// layer norm (plain and per-head), embedding, causal conv1d, dropout. Every forward and backward is compared with
// an independent float64 JS reference at every SIMD level, thread counts 1 and 3 must give identical bits, and
// each export rejects bad arguments with the right error class naming the argument.
import { strict as assert } from "assert";
import { Generator, setNumThreads } from "../lib";
import { native } from "../lib/native";
import { assertClose } from "./support/gradcheck";
import { forEachSimdLevel, simdLevels as levels } from "./support/simd";


function randn(n: number, seed: number, std = 1, mean = 0): Float32Array {
  return new Generator(seed).fillNormal(new Float32Array(n), mean, std);
}

// ---- float64 references -------------------------------------------------------------------------------------------

function softmax64(x: ArrayLike<number>, rows: number, cols: number, log: boolean): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; ++r) {
    let m = -Infinity;
    for (let j = 0; j < cols; ++j) m = Math.max(m, x[r * cols + j]);
    let s = 0;
    for (let j = 0; j < cols; ++j) s += Math.exp(x[r * cols + j] - m);
    for (let j = 0; j < cols; ++j) y[r * cols + j] = log ? x[r * cols + j] - m - Math.log(s) : Math.exp(x[r * cols + j] - m) / s;
  }
  return y;
}

// Backward of sum(y * dy) through softmax / log-softmax, from the Jacobians written out element by element.
function softmaxBwd64(x: ArrayLike<number>, dy: ArrayLike<number>, rows: number, cols: number, log: boolean): Float64Array {
  const p = softmax64(x, rows, cols, false);
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; ++r)
    for (let i = 0; i < cols; ++i) {
      let acc = 0;
      for (let j = 0; j < cols; ++j) {
        const pi = p[r * cols + i], pj = p[r * cols + j];
        // d y_j / d x_i: softmax p_j (δij - p_i); log-softmax δij - p_i
        const jac = log ? (i === j ? 1 : 0) - pi : pj * ((i === j ? 1 : 0) - pi);
        acc += dy[r * cols + j] * jac;
      }
      dx[r * cols + i] = acc;
    }
  return dx;
}

function layerNorm64(
  x: ArrayLike<number>, w: ArrayLike<number> | null, b: ArrayLike<number> | null,
  rows: number, groups: number, dim: number, eps: number, residual: boolean,
): { y: Float64Array; xhat: Float64Array; rstd: Float64Array; mean: Float64Array } {
  const n = rows * groups * dim;
  const y = new Float64Array(n), xhat = new Float64Array(n), rstd = new Float64Array(rows * groups), mean = new Float64Array(rows * groups);
  for (let i = 0; i < rows * groups; ++i) {
    const g = i % groups;
    let m = 0;
    for (let k = 0; k < dim; ++k) m += x[i * dim + k];
    m /= dim;
    let v = 0;
    for (let k = 0; k < dim; ++k) v += (x[i * dim + k] - m) ** 2;
    v /= dim;
    const rs = 1 / Math.sqrt(v + eps);
    mean[i] = m;
    rstd[i] = rs;
    for (let k = 0; k < dim; ++k) {
      const xh = (x[i * dim + k] - m) * rs;
      const gamma = w ? (residual ? 1 + w[g * dim + k] : w[g * dim + k]) : 1;
      xhat[i * dim + k] = xh;
      y[i * dim + k] = xh * gamma + (b ? b[g * dim + k] : 0);
    }
  }
  return { y, xhat, rstd, mean };
}

// Backward by the full per-group Jacobian of xhat: d xhat_k / d x_l = rstd (δkl - 1/D - xhat_k xhat_l / D).
function layerNormBwd64(
  x: ArrayLike<number>, w: ArrayLike<number> | null, dy: ArrayLike<number>,
  rows: number, groups: number, dim: number, eps: number, residual: boolean,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { xhat, rstd } = layerNorm64(x, w, null, rows, groups, dim, eps, residual);
  const dx = new Float64Array(rows * groups * dim), dw = new Float64Array(groups * dim), db = new Float64Array(groups * dim);
  for (let i = 0; i < rows * groups; ++i) {
    const g = i % groups;
    for (let l = 0; l < dim; ++l) {
      let acc = 0;
      for (let k = 0; k < dim; ++k) {
        const gamma = w ? (residual ? 1 + w[g * dim + k] : w[g * dim + k]) : 1;
        const jac = rstd[i] * ((k === l ? 1 : 0) - 1 / dim - (xhat[i * dim + k] * xhat[i * dim + l]) / dim);
        acc += dy[i * dim + k] * gamma * jac;
      }
      dx[i * dim + l] = acc;
    }
    for (let k = 0; k < dim; ++k) {
      dw[g * dim + k] += dy[i * dim + k] * xhat[i * dim + k];
      db[g * dim + k] += dy[i * dim + k];
    }
  }
  return { dx, dw, db };
}

// y[b,t,f] = bias[f] + Σ_j w[f,j] x[b, t-K+1+j, f]; gradients by the same index map, transposed.
function conv64(x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | null, B: number, S: number, F: number, K: number): Float64Array {
  const y = new Float64Array(B * S * F);
  for (let b = 0; b < B; ++b)
    for (let t = 0; t < S; ++t)
      for (let f = 0; f < F; ++f) {
        let acc = bias ? bias[f] : 0;
        for (let j = 0; j < K; ++j) {
          const tt = t - K + 1 + j;
          if (tt >= 0) acc += w[f * K + j] * x[(b * S + tt) * F + f];
        }
        y[(b * S + t) * F + f] = acc;
      }
  return y;
}

function convBwd64(x: ArrayLike<number>, w: ArrayLike<number>, dy: ArrayLike<number>, B: number, S: number, F: number, K: number) {
  const dx = new Float64Array(B * S * F), dw = new Float64Array(F * K), db = new Float64Array(F);
  for (let b = 0; b < B; ++b)
    for (let t = 0; t < S; ++t)
      for (let f = 0; f < F; ++f) {
        const g = dy[(b * S + t) * F + f];
        db[f] += g;
        for (let j = 0; j < K; ++j) {
          const tt = t - K + 1 + j;
          if (tt < 0) continue;
          dw[f * K + j] += g * x[(b * S + tt) * F + f];
          dx[(b * S + tt) * F + f] += g * w[f * K + j];
        }
      }
  return { dx, dw, db };
}

// Philox4x32-10 in JS (BigInt products), checked against the Random123 known-answer vectors below.
function philoxJs(ctr: number[], key: number[]): number[] {
  const M0 = 0xd2511f53n, M1 = 0xcd9e8d57n;
  let [c0, c1, c2, c3] = ctr.map((v) => BigInt(v >>> 0));
  let [k0, k1] = key.map((v) => BigInt(v >>> 0));
  for (let r = 0; r < 10; ++r) {
    if (r > 0) {
      k0 = (k0 + 0x9e3779b9n) & 0xffffffffn;
      k1 = (k1 + 0xbb67ae85n) & 0xffffffffn;
    }
    const p0 = M0 * c0, p1 = M1 * c2;
    const n0 = (p1 >> 32n) ^ c1 ^ k0, n1 = p1 & 0xffffffffn, n2 = (p0 >> 32n) ^ c3 ^ k1, n3 = p0 & 0xffffffffn;
    [c0, c1, c2, c3] = [n0, n1, n2, n3];
  }
  return [c0, c1, c2, c3].map(Number);
}

function dropoutMaskJs(n: number, p: number, key0: number, key1: number): Uint8Array {
  const mask = new Uint8Array(n);
  const threshold = Math.ceil(p * 2 ** 24);
  for (let j = 0; 4 * j < n; ++j) {
    const r = philoxJs([j % 2 ** 32, Math.floor(j / 2 ** 32), 0, 0], [key0, key1]);
    for (let q = 0; q < 4 && 4 * j + q < n; ++q) mask[4 * j + q] = r[q] >>> 8 >= threshold ? 1 : 0;
  }
  return mask;
}

function withThreads<T>(n: number, fn: () => T): T {
  setNumThreads(n);
  try {
    return fn();
  } finally {
    setNumThreads(0);
  }
}

function throwsNamed(fn: () => unknown, cls: typeof TypeError | typeof RangeError, ...words: string[]): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e?.constructor?.name}: ${e?.message}`);
    for (const w of words) assert.ok(e.message.includes(w), `message "${e.message}" should mention "${w}"`);
    return true;
  });
}

describe("20 nn kernels", () => {
  it(`softmax / log-softmax forward and backward match float64 at every SIMD level (${levels.join(", ")})`, () => {
    // Row lengths around the vector widths (8, 16), the 1024-element block size and a long row.
    const shapes: [number, number][] = [[3, 1], [4, 7], [3, 16], [5, 17], [2, 33], [2, 1024], [2, 1500], [1, 5000]];
    forEachSimdLevel((level) => {
      for (const [rows, cols] of shapes) {
        const x = randn(rows * cols, rows * 100 + cols, 3);
        const dy = randn(rows * cols, cols + 7);
        for (const log of [false, true]) {
          const y = new Float32Array(rows * cols), dx = new Float32Array(rows * cols);
          (log ? native.logSoftmaxForward : native.softmaxForward)(y, x, rows, cols);
          const what = `${level} ${log ? "logSoftmax" : "softmax"} [${rows}, ${cols}]`;
          assertClose(y, softmax64(x, rows, cols, log), `${what} forward`, 2e-5, log ? 2e-6 : 1e-8);
          (log ? native.logSoftmaxBackward : native.softmaxBackward)(dx, y, dy, rows, cols);
          if (cols <= 1500) assertClose(dx, softmaxBwd64(x, dy, rows, cols, log), `${what} backward`, 1e-4, 1e-6);
        }
      }
    });
  });

  it("softmax stays finite for huge logits and masks -Infinity entries", () => {
    forEachSimdLevel((level) => {
      const x = Float32Array.from([1e4, 1e4 - 1, -1e4, 3e38, -3e38, 0, -Infinity, 1, 2]);
      const y = new Float32Array(9), l = new Float32Array(9);
      native.softmaxForward(y, x, 3, 3);
      native.logSoftmaxForward(l, x, 3, 3);
      assertClose(y, softmax64(x, 3, 3, false), `${level} softmax extreme`, 1e-5, 1e-30);
      assert.equal(y[6], 0, "exp(-inf) is exactly 0");
      assert.equal(l[6], -Infinity);
      const ref = softmax64(x, 3, 3, true);
      for (const i of [0, 1, 2, 3, 5, 7, 8]) assert.ok(Math.abs(l[i] - ref[i]) <= 1e-5 * Math.abs(ref[i]) + 1e-5, `${level} logSoftmax[${i}] ${l[i]} vs ${ref[i]}`);
    });
  });

  it("cross-entropy: loss and gradient against float64, int32 and int64 targets, ignore index, logits of 1e4", () => {
    const n = 6, v = 37;
    const base = randn(n * v, 5, 2);
    forEachSimdLevel((level) => {
      for (const scale of [1, 1e4]) {
        const logits = Float32Array.from(base, (a) => a * scale);
        const tArr = [3, 36, 0, -100, 17, 3];
        for (const targets of [Int32Array.from(tArr), BigInt64Array.from(tArr.map(BigInt))]) {
          const loss = new Float32Array(n), rm = new Float32Array(n), ls = new Float32Array(n);
          const count = native.crossEntropyForward(loss, rm, ls, logits, targets, n, v, -100);
          assert.equal(count, 5);
          const lsm = softmax64(logits, n, v, true);
          const p = softmax64(logits, n, v, false);
          const want = tArr.map((t, i) => (t === -100 ? 0 : -lsm[i * v + t]));
          assertClose(loss, want, `${level} CE loss (scale ${scale}, ${targets.constructor.name})`, 1e-5, 1e-5);
          const g = randn(n, 9);
          const dl = new Float32Array(n * v).fill(NaN);
          native.crossEntropyBackward(dl, logits, rm, ls, targets, g, n, v, -100);
          const wantG = new Float64Array(n * v);
          tArr.forEach((t, i) => {
            if (t === -100) return;
            for (let j = 0; j < v; ++j) wantG[i * v + j] = g[i] * (p[i * v + j] - (j === t ? 1 : 0));
          });
          assertClose(dl, wantG, `${level} CE gradient (scale ${scale})`, 1e-5, 1e-6);
        }
      }
    });
  });

  it("layer norm (groups 1 and per head, weight/bias/residual combinations) matches float64", () => {
    const cases = [
      { rows: 5, groups: 1, dim: 7, w: true, b: true, residual: false },
      { rows: 3, groups: 1, dim: 33, w: true, b: false, residual: true },
      { rows: 4, groups: 1, dim: 16, w: false, b: false, residual: false },
      { rows: 6, groups: 4, dim: 5, w: true, b: true, residual: true },
      { rows: 2, groups: 3, dim: 24, w: true, b: false, residual: false },
      { rows: 3, groups: 2, dim: 1100, w: true, b: true, residual: true },
      { rows: 70, groups: 2, dim: 3, w: true, b: true, residual: false }, // several partial-sum blocks
    ];
    forEachSimdLevel((level) => {
      cases.forEach((c, ci) => {
        const n = c.rows * c.groups * c.dim, gd = c.groups * c.dim;
        const x = randn(n, ci + 1, 2, 0.5);
        const w = c.w ? randn(gd, ci + 20, 0.3, c.residual ? 0 : 1) : null;
        const b = c.b ? randn(gd, ci + 40, 0.3) : null;
        const eps = ci % 2 ? 1e-5 : 1e-6;
        const y = new Float32Array(n), mean = new Float32Array(c.rows * c.groups), rstd = new Float32Array(c.rows * c.groups);
        native.layerNormForward(y, mean, rstd, x, w, b, c.rows, c.groups, c.dim, eps, c.residual);
        const ref = layerNorm64(x, w, b, c.rows, c.groups, c.dim, eps, c.residual);
        const what = `${level} layerNorm case ${ci}`;
        assertClose(y, ref.y, `${what} y`, 1e-5, 1e-5);
        assertClose(mean, ref.mean, `${what} mean`, 1e-5, 1e-6);
        assertClose(rstd, ref.rstd, `${what} rstd`, 1e-5, 1e-6);
        const dy = randn(n, ci + 60);
        const dx = new Float32Array(n), dw = new Float32Array(gd), db = new Float32Array(gd);
        native.layerNormBackward(dx, c.w ? dw : null, c.b ? db : null, dy, x, mean, rstd, w, c.rows, c.groups, c.dim, c.residual);
        const rb = layerNormBwd64(x, w, dy, c.rows, c.groups, c.dim, eps, c.residual);
        assertClose(dx, rb.dx, `${what} dx`, 1e-4, 1e-5);
        if (c.w) assertClose(dw, rb.dw, `${what} dweight`, 1e-4, 1e-5);
        if (c.b) assertClose(db, rb.db, `${what} dbias`, 1e-4, 1e-5);
        // Gradients without dweight/dbias give the same dx.
        const dx2 = new Float32Array(n);
        native.layerNormBackward(dx2, null, null, dy, x, mean, rstd, w, c.rows, c.groups, c.dim, c.residual);
        assert.deepEqual(dx2, dx);
      });
    });
  });

  it("causal conv1d forward and backward match float64 (K = 1, 4 and K > S)", () => {
    const cases = [[2, 5, 3, 4], [1, 7, 20, 1], [3, 2, 9, 4], [2, 40, 17, 3]];
    forEachSimdLevel((level) => {
      cases.forEach(([B, S, F, K], ci) => {
        const x = randn(B * S * F, ci + 1), w = randn(F * K, ci + 2, 0.5), bias = randn(F, ci + 3);
        const y = new Float32Array(B * S * F);
        native.causalConv1dForward(y, x, w, bias, B, S, F, K);
        const what = `${level} conv1d [${B}, ${S}, ${F}] K=${K}`;
        assertClose(y, conv64(x, w, bias, B, S, F, K), `${what} forward`, 1e-5, 1e-5);
        const y0 = new Float32Array(B * S * F);
        native.causalConv1dForward(y0, x, w, null, B, S, F, K);
        assertClose(y0, conv64(x, w, null, B, S, F, K), `${what} forward without bias`, 1e-5, 1e-5);
        const dy = randn(B * S * F, ci + 4);
        const dx = new Float32Array(B * S * F), dw = new Float32Array(F * K), db = new Float32Array(F);
        native.causalConv1dBackward(dx, dw, db, dy, x, w, B, S, F, K);
        const ref = convBwd64(x, w, dy, B, S, F, K);
        assertClose(dx, ref.dx, `${what} dx`, 1e-5, 1e-5);
        assertClose(dw, ref.dw, `${what} dweight`, 1e-5, 1e-5);
        assertClose(db, ref.db, `${what} dbias`, 1e-5, 1e-5);
        const dwOnly = new Float32Array(F * K);
        native.causalConv1dBackward(null, dwOnly, null, dy, x, w, B, S, F, K);
        assert.deepEqual(dwOnly, dw);
      });
    });
  });

  it("embedding gathers rows and scatter-adds gradients (repeated indices, int32 and int64)", () => {
    for (const [v, e] of [[20, 8], [20, 100], [3, 1]]) {
      const w = randn(v * e, v + e);
      const idxArr = [0, v - 1, 2 % v, 2 % v, 1 % v, 0, v - 1, 0, 1 % v];
      for (const idx of [Int32Array.from(idxArr), BigInt64Array.from(idxArr.map(BigInt))]) {
        const n = idxArr.length;
        const out = new Float32Array(n * e);
        native.embeddingForward(out, w, idx, v, e);
        for (let i = 0; i < n; ++i) assert.deepEqual(out.subarray(i * e, (i + 1) * e), w.subarray(idxArr[i] * e, (idxArr[i] + 1) * e));
        const dout = randn(n * e, 3);
        const dw = new Float32Array(v * e).fill(NaN); // written with `=`: no NaN may survive
        native.embeddingBackward(dw, dout, idx, v, e);
        const want = new Float64Array(v * e);
        idxArr.forEach((r, i) => {
          for (let c = 0; c < e; ++c) want[r * e + c] += dout[i * e + c];
        });
        assertClose(dw, want, `embedding dweight [${v}, ${e}] ${idx.constructor.name}`, 1e-6, 1e-6);
      }
    }
  });

  it("gives bitwise identical results with 1 and 3 threads", () => {
    const run = () => {
      const rows = 300, d = 40, B = 4, S = 50, F = 24, K = 4, v = 50;
      const x = randn(rows * d, 1), w = randn(d, 2), b = randn(d, 3), dy = randn(rows * d, 4);
      const y = new Float32Array(rows * d), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      native.layerNormForward(y, mean, rstd, x, w, b, rows, 1, d, 1e-5, true);
      const dx = new Float32Array(rows * d), dw = new Float32Array(d), db = new Float32Array(d);
      native.layerNormBackward(dx, dw, db, dy, x, mean, rstd, w, rows, 1, d, true);
      const cx = randn(B * S * F, 5), cw = randn(F * K, 6), cdy = randn(B * S * F, 7);
      const cy = new Float32Array(B * S * F), cdx = new Float32Array(B * S * F), cdw = new Float32Array(F * K), cdb = new Float32Array(F);
      native.causalConv1dForward(cy, cx, cw, null, B, S, F, K);
      native.causalConv1dBackward(cdx, cdw, cdb, cdy, cx, cw, B, S, F, K);
      const sm = new Float32Array(rows * d);
      native.softmaxForward(sm, x, rows, d);
      const idx = Int32Array.from({ length: 400 }, (_, i) => (i * 7) % v);
      const edw8 = new Float32Array(v * 8), edw64 = new Float32Array(v * 64);
      native.embeddingBackward(edw8, randn(400 * 8, 8), idx, v, 8);
      native.embeddingBackward(edw64, randn(400 * 64, 9), idx, v, 64);
      const mask = new Uint8Array(1000), dy2 = new Float32Array(1000);
      native.dropoutForward(dy2, mask, randn(1000, 10), 0.3, 1, 2);
      return [y, dx, dw, db, cy, cdx, cdw, cdb, sm, edw8, edw64, mask];
    };
    const one = withThreads(1, run);
    const three = withThreads(3, run);
    one.forEach((a, i) => assert.deepEqual(three[i], a, `output ${i} differs between 1 and 3 threads`));
  });

  it("Philox4x32-10 reproduces the Random123 known answers, and dropout masks follow it exactly", () => {
    const kat: [number[], number[], number[]][] = [
      [[0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]],
      [[0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff], [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]],
      [[0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0], [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]],
    ];
    for (const [ctr, key, want] of kat) {
      assert.deepEqual(native.philox4x32(ctr as [number, number, number, number], key as [number, number]), want);
      assert.deepEqual(philoxJs(ctr, key), want);
    }
    // every SIMD level (AVX-512 runs 16 blocks a vector, the rest one at a time), sizes around those 64 elements and
    // across the thread pool's chunks of 4,096 blocks, 1 thread and all
    try {
      forEachSimdLevel((level) => {
        for (const threads of [1, 0])
          for (const [n, p] of [[1003, 0.25], [64, 0.9], [10, 0], [127, 0.5], [70001, 0.1]]) {
            setNumThreads(threads);
            const x = randn(n, n), y = new Float32Array(n), mask = new Uint8Array(n);
            native.dropoutForward(y, mask, x, p, 12345, 0xdeadbeef);
            assert.deepEqual(mask, dropoutMaskJs(n, p, 12345, 0xdeadbeef), `mask for n=${n}, p=${p} at ${level}, threads ${threads}`);
            const scale = 1 / (1 - p);
            for (let i = 0; i < n; ++i) assert.equal(y[i], mask[i] ? Math.fround(x[i] * Math.fround(scale)) : 0, `y[${i}] for n=${n} at ${level}`);
          }
      });
    } finally {
      setNumThreads(0);
    }
    // the backward (AVX-512: 16 mask bytes a vector; mask bytes other than 0 and 1 count as kept, as in the scalar loop)
    try {
      forEachSimdLevel((level) => {
        for (const threads of [1, 0])
          for (const [n, p] of [[1003, 0.25], [64, 0.9], [10, 0], [70001, 0.1]]) {
            setNumThreads(threads);
            const mask = dropoutMaskJs(n, p, 12345, 0xdeadbeef);
            for (let i = 5; i < n; i += 97) if (mask[i]) mask[i] = 1 + (i % 255);
            const scale = 1 / (1 - p);
            const dy = randn(n, 77), dx = new Float32Array(n);
            native.dropoutBackward(dx, dy, mask, p);
            for (let i = 0; i < n; ++i) assert.equal(dx[i], mask[i] ? Math.fround(dy[i] * Math.fround(scale)) : 0, `dx[${i}] for n=${n} at ${level}`);
          }
      });
    } finally {
      setNumThreads(0);
    }
    const y = new Float32Array(50), mask = new Uint8Array(50);
    native.dropoutForward(y, mask, randn(50, 1), 1, 1, 2);
    assert.ok(mask.every((m) => m === 0) && y.every((v) => v === 0), "p = 1 drops everything");
  });

  it("rejects bad arguments with TypeError / RangeError naming the argument", () => {
    const f = (n: number) => new Float32Array(n);
    // softmax family
    throwsNamed(() => native.softmaxForward(f(6), f(5), 2, 3), RangeError, "softmaxForward", "x", "rows*cols");
    throwsNamed(() => native.softmaxForward(new Float64Array(6) as never, f(6), 2, 3), TypeError, "y", "Float32Array");
    throwsNamed(() => native.logSoftmaxForward(f(6), f(6), -1, 3), RangeError, "rows");
    throwsNamed(() => native.softmaxBackward(f(6), f(6), f(4), 2, 3), RangeError, "softmaxBackward", "dy");
    throwsNamed(() => native.logSoftmaxBackward(f(6), f(6), "x" as never, 2, 3), TypeError, "dy");
    const shared = f(12);
    throwsNamed(() => native.softmaxForward(shared.subarray(0, 6), shared.subarray(3, 9), 2, 3), RangeError, "y overlaps x");
    // cross-entropy
    const ce = (t: Int32Array | BigInt64Array, extra: Partial<{ logits: Float32Array; ignore: number }> = {}) =>
      native.crossEntropyForward(f(2), f(2), f(2), extra.logits ?? f(6), t, 2, 3, extra.ignore ?? -100);
    throwsNamed(() => ce(Int32Array.from([0, 3])), RangeError, "targets[1] = 3", "out of range");
    throwsNamed(() => ce(BigInt64Array.from([-5n, 0n])), RangeError, "targets[0] = -5");
    throwsNamed(() => ce(Float32Array.from([0, 1]) as never), TypeError, "targets", "Int32Array or BigInt64Array", "Float32Array");
    throwsNamed(() => ce(Int32Array.from([0])), RangeError, "targets");
    throwsNamed(() => ce(Int32Array.from([0, 1]), { logits: f(5) }), RangeError, "logits", "n*v");
    assert.equal(ce(Int32Array.from([7, 1]), { ignore: 7 }), 1);
    throwsNamed(() => native.crossEntropyBackward(f(6), f(6), f(2), f(2), Int32Array.from([0, 9]), f(2), 2, 3, -100), RangeError, "crossEntropyBackward", "targets[1] = 9");
    throwsNamed(() => native.crossEntropyBackward(f(6), f(6), f(2), f(2), Int32Array.from([0, 1]), f(3), 2, 3, -100), RangeError, "g");
    // layer norm
    const ln = (over: Partial<Record<"w" | "b" | "x" | "mean", unknown>> = {}, eps = 1e-5) =>
      native.layerNormForward(f(12), (over.mean as Float32Array) ?? f(4), f(4), (over.x as Float32Array) ?? f(12),
        (over.w as Float32Array) ?? null, (over.b as Float32Array) ?? null, 2, 2, 3, eps, true);
    throwsNamed(() => ln({ w: f(3) }), RangeError, "layerNormForward", "weight", "groups*dim");
    throwsNamed(() => ln({ b: new Int32Array(6) }), TypeError, "bias", "Float32Array");
    throwsNamed(() => ln({ mean: f(2) }), RangeError, "mean", "rows*groups");
    throwsNamed(() => ln({}, -1), RangeError, "eps");
    throwsNamed(() => native.layerNormForward(f(12), f(4), f(4), f(12), null, null, 2, 0, 3, 1e-5, true), RangeError, "groups");
    throwsNamed(() => native.layerNormForward(f(12), f(4), f(4), f(12), null, null, 2, 2, 3, 1e-5, "yes" as never), TypeError, "residualWeight");
    throwsNamed(() => native.layerNormBackward(f(12), f(5), null, f(12), f(12), f(4), f(4), null, 2, 2, 3, false), RangeError, "layerNormBackward", "dweight");
    throwsNamed(() => native.layerNormBackward(f(12), null, null, f(11), f(12), f(4), f(4), null, 2, 2, 3, false), RangeError, "dy");
    // embedding
    throwsNamed(() => native.embeddingForward(f(8), f(12), Int32Array.from([0, 3]), 3, 4), RangeError, "embeddingForward", "indices[1] = 3", "out of range");
    throwsNamed(() => native.embeddingForward(f(8), f(12), Float64Array.from([0, 1]) as never, 3, 4), TypeError, "indices", "Float64Array");
    throwsNamed(() => native.embeddingForward(f(7), f(12), Int32Array.from([0, 1]), 3, 4), RangeError, "out", "n*e");
    throwsNamed(() => native.embeddingForward(f(8), f(11), Int32Array.from([0, 1]), 3, 4), RangeError, "weight", "v*e");
    throwsNamed(() => native.embeddingBackward(f(12), f(8), BigInt64Array.from([2n, -1n]), 3, 4), RangeError, "embeddingBackward", "indices[1] = -1");
    throwsNamed(() => native.embeddingBackward(f(12), f(9), Int32Array.from([0, 1]), 3, 4), RangeError, "dout");
    // conv1d
    throwsNamed(() => native.causalConv1dForward(f(12), f(12), f(5), null, 2, 2, 3, 2), RangeError, "causalConv1dForward", "weight", "f*k");
    throwsNamed(() => native.causalConv1dForward(f(12), f(12), f(6), f(2), 2, 2, 3, 2), RangeError, "bias");
    throwsNamed(() => native.causalConv1dForward(f(12), f(12), f(6), null, 2, 2, 3, 0), RangeError, "k");
    throwsNamed(() => native.causalConv1dForward(f(12), [] as never, f(6), null, 2, 2, 3, 2), TypeError, "x");
    throwsNamed(() => native.causalConv1dBackward(f(11), null, null, f(12), f(12), f(6), 2, 2, 3, 2), RangeError, "causalConv1dBackward", "dx");
    const buf = f(13);
    throwsNamed(() => native.causalConv1dBackward(null, null, buf.subarray(10, 13), buf.subarray(0, 12), f(12), f(6), 2, 2, 3, 2), RangeError, "causalConv1dBackward", "dbias overlaps dy");
    // dropout
    throwsNamed(() => native.dropoutForward(f(4), new Uint8Array(4), f(4), 1.5, 0, 0), RangeError, "dropoutForward", "p");
    throwsNamed(() => native.dropoutForward(f(4), new Uint8Array(3), f(4), 0.5, 0, 0), RangeError, "mask");
    throwsNamed(() => native.dropoutForward(f(4), new Uint8Array(4), f(4), 0.5, -1, 0), RangeError, "key0");
    throwsNamed(() => native.dropoutForward(f(4), f(4) as never, f(4), 0.5, 0, 0), TypeError, "mask", "Uint8Array");
    throwsNamed(() => native.dropoutBackward(f(4), f(5), new Uint8Array(4), 0.5), RangeError, "dropoutBackward", "dx");
    throwsNamed(() => native.philox4x32([0, 0, 0] as never, [0, 0]), RangeError, "counter");
    throwsNamed(() => native.softmaxForward(f(6) as never, undefined as never, 2, 3), TypeError, "x");
  });
});
