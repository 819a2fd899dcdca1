// Layer 2 kernels: elementwise unary/binary ops, reductions and their backward (csrc/kernels/elementwise.cc,
// elementwise_avx512.cc, reduce.cc through the binding), against independent float64 references, on every SIMD
// level and on lengths that leave tails in the vector loops; the CUDA twin (cuda/elementwise.cu) against the CPU.
import { strict as assert } from "assert";
import { assertRefusedWithoutCuda } from "./support/cuda";
import { backends, Generator, getNumThreads, setNumThreads, setSimdLevel } from "../lib";
import { native } from "../lib/native";
import { assertClose } from "./support/gradcheck";
import { erfc64, sig } from "./support/ref64";

type UnaryOp = Parameters<typeof native.unary>[0];
type BinaryOp = Parameters<typeof native.binary>[0];
type ReduceOp = Parameters<typeof native.reduce>[0];

const LEVELS = ["scalar", "avx2", "avx512"] as const;
/** Runs fn at every SIMD level (capped at what this CPU supports), restoring the level in use afterwards. */
function atEveryLevel(fn: (level: string) => void): void {
  const before = backends().cpu.simd;
  try {
    for (const l of LEVELS) fn(setSimdLevel(l));
  } finally {
    setSimdLevel(before);
  }
}

/** Runs fn with a single-thread pool, then restores the previous thread count. */
function singleThreaded(fn: () => void): void {
  const before = getNumThreads();
  setNumThreads(1);
  try {
    fn();
  } finally {
    setNumThreads(before);
  }
}

function randn(n: number, seed: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  new Generator(seed).fillNormal(out, 0, std);
  return out;
}

// ---- float64 references (written from the textbook definitions, not from the kernels) ---------------------------

const K = Math.sqrt(2 / Math.PI), KAPPA = 0.044715;
const geluU = (v: number) => K * (v + KAPPA * v * v * v);
const Phi = (v: number) => 0.5 * erfc64(-v / Math.SQRT2);
const phi = (v: number) => Math.exp(-0.5 * v * v) / Math.sqrt(2 * Math.PI);

const AFFINE_A = -1.75, AFFINE_B = 0.5;
const FWD: Record<UnaryOp, (x: number) => number> = {
  exp: Math.exp,
  log: Math.log,
  sigmoid: sig,
  logsigmoid: (v) => (v < -30 ? v - Math.exp(v) : -Math.log1p(Math.exp(-v))),
  tanh: Math.tanh,
  softplus: (v) => (v > 20 ? v : Math.log1p(Math.exp(v))),
  relu: (v) => (v < 0 ? 0 : v),
  gelu: (v) => v * Phi(v),
  geluTanh: (v) => v * sig(2 * geluU(v)), // 0.5 v (1 + tanh u), without float64 cancellation for v << 0
  silu: (v) => v / (1 + Math.exp(-v)),
  neg: (v) => -v,
  affine: (v) => AFFINE_A * v + AFFINE_B,
};
// dx / dy as a function of x, and of y = the float32 forward output for ops whose backward reads y
const BWD: Record<UnaryOp, (x: number, y: number) => number> = {
  exp: (_x, y) => y,
  log: (x) => 1 / x,
  sigmoid: (_x, y) => y * (1 - y),
  logsigmoid: (x) => sig(-x),
  tanh: (_x, y) => 1 - y * y,
  softplus: (x) => (x > 20 ? 1 : sig(x)),
  relu: (x) => (x <= 0 ? 0 : 1),
  gelu: (x) => Phi(x) + x * phi(x),
  geluTanh: (x) => {
    const s = sig(2 * geluU(x));
    return s + x * s * (1 - s) * 2 * K * (1 + 3 * KAPPA * x * x);
  },
  silu: (x) => sig(x) * (1 + x * (1 - sig(x))),
  neg: () => -1,
  affine: () => AFFINE_A,
};
const UNARY = Object.keys(FWD) as UnaryOp[];
const READS_X = new Set<UnaryOp>(["log", "logsigmoid", "softplus", "relu", "gelu", "geluTanh", "silu"]);
const READS_Y = new Set<UnaryOp>(["exp", "sigmoid", "tanh"]);
// gelu's tails carry the float32 rounding of x/sqrt(2) (relative error ~ x^2 * 6e-8 on values ~ phi(x)).
const ATOL: Partial<Record<UnaryOp, number>> = { gelu: 1e-9, geluTanh: 1e-9 };
// Derivatives that cross zero (gelu near x = -0.75, silu near -1.28) are sums of O(1) terms that cancel: float32
// keeps their absolute error (a few ulp of the terms), not a relative one.
const ATOL_BWD: Partial<Record<UnaryOp, number>> = { gelu: 1e-6, geluTanh: 1e-6, silu: 1e-6 };

/**
 * Compares float32 results with float64 expectations: NaN must be NaN, a value that overflows float32 must be the
 * same infinity, everything else within atol + rtol |e|.
 */
function expectValues(got: Float32Array, want: ArrayLike<number>, what: string, rtol = 1e-6, atol = 1e-37): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; ++i) {
    const e = want[i], g = got[i];
    if (Number.isNaN(e)) assert.ok(Number.isNaN(g), `${what}[${i}]: got ${g}, expected NaN`);
    else if (!Number.isFinite(Math.fround(e))) assert.equal(g, Math.fround(e), `${what}[${i}]: expected ${e} to overflow`);
    else assert.ok(Math.abs(g - e) <= atol + rtol * Math.abs(e), `${what}[${i}]: got ${g}, expected ${e} (rtol ${rtol}, atol ${atol})`);
  }
}

/** Inputs spanning every regime: small, moderate, large, huge, denormal, and the special values. */
function unaryInputs(n: number, seed: number, op: UnaryOp): Float32Array {
  const g = new Generator(seed);
  const u = new Float32Array(n);
  g.fillUniform(u, 0, 1);
  const x = new Float32Array(n);
  const special = [0, -0, 1, -1, 0.625, -0.625, 0.6249999, 20, 20.000002, 19.999998, 88.72, 88.73, -87.5, -103.5, -110, 1e-40, -1e-40, 1e30, -1e30, Infinity, -Infinity, NaN];
  for (let i = 0; i < n; ++i) {
    const k = i % 5, v = u[i];
    if (i < special.length && n > 2 * special.length) x[i] = special[i];
    else if (k === 0) x[i] = (2 * v - 1) * 1.2;
    else if (k === 1) x[i] = (2 * v - 1) * 12;
    else if (k === 2) x[i] = (2 * v - 1) * 110;
    else if (k === 3) x[i] = Math.sign(v - 0.5) * Math.exp((2 * ((v * 7) % 1) - 1) * 30);
    else x[i] = (2 * v - 1) * 0.05;
  }
  if (op === "log") for (let i = 0; i < n; ++i) if (i % 3 !== 0) x[i] = Math.abs(x[i]); // mostly positive, some < 0
  return x;
}

/** Exactly equal element by element (Object.is: -0 and 0 differ), any NaN equal to any NaN. */
function sameValues(got: Float32Array, want: Float32Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; ++i)
    if (!Object.is(got[i], want[i]) && !(Number.isNaN(got[i]) && Number.isNaN(want[i])))
      assert.fail(`${what}[${i}]: got ${got[i]}, expected ${want[i]}`);
}

const LENGTHS = [1, 5, 15, 16, 17, 31, 33, 100, 2049, 20003];

describe("20 elementwise kernels: unary", () => {
  it("forward matches float64 on every SIMD level, length and regime (special values included)", () => {
    atEveryLevel((level) => {
      for (const op of UNARY)
        for (const n of LENGTHS) {
          const x = unaryInputs(n, 11 + n, op);
          const out = new Float32Array(n);
          native.unary(op, x, out, AFFINE_A, AFFINE_B);
          expectValues(out, Array.from(x, FWD[op]), `${level} ${op} n=${n}`, 1e-6, ATOL[op] ?? 1e-37);
        }
    });
  });

  it("handles overflow, log(0), NaN and infinities as the math says", () => {
    atEveryLevel((level) => {
      const x = Float32Array.from([100, -200, 0, -0, -1, NaN, Infinity, -Infinity, 1e-45]);
      const run = (op: UnaryOp) => {
        const o = new Float32Array(x.length);
        native.unary(op, x, o);
        return o;
      };
      const e = run("exp");
      assert.deepEqual([e[0], e[1], e[6], e[7]], [Infinity, 0, Infinity, 0], `${level} exp`);
      const l = run("log");
      assert.deepEqual([l[2], l[3], l[6]], [-Infinity, -Infinity, Infinity], `${level} log`);
      assert.ok(Number.isNaN(l[4]) && Number.isNaN(l[7]) && Math.abs(l[8] - Math.log(x[8])) < 1e-5, `${level} log of negatives / denormal`);
      for (const op of UNARY) assert.ok(Number.isNaN(run(op)[5]), `${level} ${op}(NaN) must be NaN`);
      const s = run("sigmoid"), ls = run("logsigmoid"), sp = run("softplus"), t = run("tanh");
      assert.deepEqual([s[0], s[1], s[6], s[7]], [1, 0, 1, 0], `${level} sigmoid tails`);
      assert.deepEqual([ls[1], ls[6], ls[7]], [-200, 0, -Infinity], `${level} logsigmoid tails`);
      assert.deepEqual([sp[0], sp[1], sp[6], sp[7]], [100, 0, Infinity, 0], `${level} softplus tails`);
      assert.deepEqual([t[0], t[1], t[6], t[7]], [1, -1, 1, -1], `${level} tanh tails`);
      assert.ok(Object.is(t[3], -0), `${level} tanh(-0) = -0`);
    });
  });

  it("backward matches float64 on every SIMD level (reading x, y or neither)", () => {
    atEveryLevel((level) => {
      for (const op of UNARY)
        for (const n of [1, 17, 33, 2049]) {
          const x = unaryInputs(n, 7 * n + 1, op);
          for (let i = 0; i < n; ++i) if (!Number.isFinite(x[i]) || Math.abs(x[i]) > 1e4) x[i] = 3.5; // finite gradients
          const y = new Float32Array(n);
          native.unary(op, x, y, AFFINE_A, AFFINE_B);
          const dy = randn(n, 99 + n);
          const dx = new Float32Array(n);
          native.unaryBackward(op, READS_X.has(op) ? x : null, READS_Y.has(op) ? y : null, dy, dx, AFFINE_A);
          const want = Array.from(x, (v, i) => dy[i] * BWD[op](v, y[i]));
          expectValues(dx, want, `${level} ${op}' n=${n}`, 2e-6, ATOL_BWD[op] ?? 1e-30);
        }
    });
  });

  it("gives identical bits for 1 thread and the default pool, and works in place", () => {
    const n = 50001;
    const x = unaryInputs(n, 5, "tanh");
    for (const op of ["tanh", "gelu", "softplus", "affine"] as UnaryOp[]) {
      const a = new Float32Array(n), b = new Float32Array(n);
      singleThreaded(() => native.unary(op, x, a, 2, 1));
      native.unary(op, x, b, 2, 1);
      assert.deepEqual(b, a, `${op}: threads change the result`);
      const inplace = x.slice();
      native.unary(op, inplace, inplace, 2, 1);
      assert.deepEqual(inplace, a, `${op}: in place`);
    }
  });
});

// ---- binary --------------------------------------------------------------------------------------------------------

function numel(s: readonly number[]): number {
  return s.reduce((a, b) => a * b, 1);
}

/** Broadcast reference: for every output index, the flat indices into a and b (NumPy rules). */
function broadcastIndex(as: number[], bs: number[]): { shape: number[]; ia: number[]; ib: number[] } {
  const nd = Math.max(as.length, bs.length);
  const A = [...Array(nd - as.length).fill(1), ...as], B = [...Array(nd - bs.length).fill(1), ...bs];
  const shape = A.map((d, i) => (d === 1 ? B[i] : d));
  const n = numel(shape);
  const ia: number[] = [], ib: number[] = [];
  for (let i = 0; i < n; ++i) {
    let r = i, oa = 0, ob = 0, sa = 1, sb = 1;
    for (let d = nd - 1; d >= 0; --d) {
      const idx = r % shape[d];
      r = Math.floor(r / shape[d]);
      if (A[d] !== 1) oa += idx * sa;
      if (B[d] !== 1) ob += idx * sb;
      sa *= A[d];
      sb *= B[d];
    }
    ia.push(oa);
    ib.push(ob);
  }
  return { shape, ia, ib };
}

const F64_BIN: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
};
const BIN = Object.keys(F64_BIN) as BinaryOp[];

const SHAPE_CASES: [number[], number[]][] = [
  [[3, 5], [3, 5]],
  [[], [4, 3]],
  [[4, 3], []],
  [[5, 7], [7]],
  [[7], [5, 7]],
  [[5, 1], [1, 7]],
  [[2, 1, 3], [4, 1]],
  [[1], [6]],
  [[0, 3], [3]],
  [[2, 3, 1, 5], [3, 4, 1]],
  [[300, 129], [129]],
  [[20003], [20003]],
  [[2, 17000], [2, 1]],
  [[1, 17000], [3, 1]],
];

describe("20 elementwise kernels: binary with broadcasting", () => {
  it("forward is exactly the float32 rounding of the float64 result, on every SIMD level", () => {
    atEveryLevel((level) => {
      SHAPE_CASES.forEach(([as, bs], k) => {
        const a = randn(numel(as), 100 + k), b = randn(numel(bs), 200 + k);
        if (b.length > 2) [b[0], b[1]] = [0, NaN];
        const { shape, ia, ib } = broadcastIndex(as, bs);
        for (const op of BIN) {
          const out = new Float32Array(numel(shape));
          native.binary(op, a, as, b, bs, out);
          const want = Float32Array.from(ia, (p, i) => F64_BIN[op](a[p], b[ib[i]]));
          sameValues(out, want, `${level} ${op} [${as}] with [${bs}]`);
        }
      });
    });
  });

  it("backward gives broadcast-shaped gradients matching float64, on every SIMD level", () => {
    atEveryLevel((level) => {
      SHAPE_CASES.forEach(([as, bs], k) => {
        if (numel(as) * numel(bs) > 1e6) return; // the big cases are covered by the forward test
        const a = randn(numel(as), 300 + k), b = randn(numel(bs), 400 + k);
        for (let i = 0; i < b.length; ++i) if (Math.abs(b[i]) < 0.1) b[i] += 0.5; // keep div finite
        const { shape, ia, ib } = broadcastIndex(as, bs);
        const n = numel(shape);
        const dy = randn(n, 500 + k);
        for (const op of BIN) {
          const da = new Float32Array(n), db = new Float32Array(n);
          native.binaryBackward(op, a, as, b, bs, dy, da, db);
          const A = (i: number) => a[ia[i]], B = (i: number) => b[ib[i]];
          const wantA = { add: (i: number) => dy[i], sub: (i: number) => dy[i], mul: (i: number) => dy[i] * B(i), div: (i: number) => dy[i] / B(i) }[op];
          const wantB = { add: (i: number) => dy[i], sub: (i: number) => -dy[i], mul: (i: number) => dy[i] * A(i), div: (i: number) => (-dy[i] * A(i)) / (B(i) * B(i)) }[op];
          expectValues(da, Array.from({ length: n }, (_, i) => wantA(i)), `${level} ${op} da [${as}] [${bs}]`, 1e-6, 1e-30);
          expectValues(db, Array.from({ length: n }, (_, i) => wantB(i)), `${level} ${op} db [${as}] [${bs}]`, 1e-6, 1e-30);
          const onlyB = new Float32Array(n);
          native.binaryBackward(op, a, as, b, bs, dy, null, onlyB);
          assert.deepEqual(onlyB, db, `${level} ${op}: db alone`);
        }
      });
    });
  });

  it("gives identical bits for 1 thread and the default pool, and works in place", () => {
    const as = [40, 1001], bs = [1001];
    const a = randn(numel(as), 1), b = randn(numel(bs), 2);
    const one = new Float32Array(a.length), many = new Float32Array(a.length);
    singleThreaded(() => native.binary("div", a, as, b, bs, one));
    native.binary("div", a, as, b, bs, many);
    assert.deepEqual(many, one);
    const inplace = a.slice();
    native.binary("div", inplace, as, b, bs, inplace);
    assert.deepEqual(inplace, one);
  });
});

// ---- reductions ----------------------------------------------------------------------------------------------------

/** float64 reference: for each output (kept coordinates, row-major), the reduced elements in row-major order. */
function reduceRef(x: Float32Array, shape: number[], axes: number[], op: ReduceOp): { out: number[]; arg: number[] } {
  const nd = shape.length;
  const red = shape.map((_, d) => axes.includes(d));
  const keptShape = shape.filter((_, d) => !red[d]);
  const outN = numel(keptShape);
  const groups: number[][] = Array.from({ length: outN }, () => []);
  for (let i = 0; i < x.length; ++i) {
    let r = i, o = 0, mul = 1;
    for (let d = nd - 1; d >= 0; --d) {
      const idx = r % shape[d];
      r = Math.floor(r / shape[d]);
      if (!red[d]) {
        o += idx * mul;
        mul *= shape[d];
      }
    }
    groups[o].push(i);
  }
  const out: number[] = [], arg: number[] = [];
  for (const g of groups) {
    if (op === "max") {
      let bi = -1;
      for (const i of g) if (bi < 0 || x[i] > x[bi] || (Number.isNaN(x[i]) && !Number.isNaN(x[bi]))) bi = i;
      out.push(bi < 0 ? NaN : x[bi]);
      arg.push(bi);
    } else {
      let s = 0;
      for (const i of g) s += x[i];
      out.push(op === "mean" ? s / g.length : s);
    }
  }
  return { out, arg };
}

const REDUCE_CASES: [number[], number[]][] = [
  [[2, 3, 4], []],
  [[2, 3, 4], [0]],
  [[2, 3, 4], [1]],
  [[2, 3, 4], [2]],
  [[2, 3, 4], [0, 1]],
  [[2, 3, 4], [0, 2]],
  [[2, 3, 4], [1, 2]],
  [[2, 3, 4], [0, 1, 2]],
  [[2, 3, 4], [-1, -3]],
  [[1, 1, 5], [0, 1]],
  [[3, 1, 7, 1, 2], [1, 2, 4]],
  [[40003], [0]],
  [[3, 20000], [1]],
  [[20000, 3], [0]],
  [[5, 1500], [0]],
  [[6, 50, 9], [0, 2]],
  [[0, 3], [0]],
  [[], []],
];

describe("20 reduction kernels", () => {
  it("sum, mean and max match float64 over every axis set, on every SIMD level", () => {
    atEveryLevel((level) => {
      REDUCE_CASES.forEach(([shape, axes], k) => {
        const x = randn(numel(shape), 600 + k, 3);
        const norm = axes.map((a) => (a < 0 ? a + shape.length : a));
        for (const op of ["sum", "mean", "max"] as ReduceOp[]) {
          const { out: want, arg } = reduceRef(x, shape, norm, op);
          if (op === "max" && want.some((v, i) => Number.isNaN(v) && arg[i] < 0)) continue; // empty max: see the error test
          const out = new Float32Array(want.length);
          const argmax = op === "max" ? new BigInt64Array(want.length) : null;
          native.reduce(op, x, shape, axes, out, argmax);
          expectValues(out, want, `${level} ${op} [${shape}] axes [${axes}]`, 2e-7, 1e-5);
          if (argmax) assert.deepEqual(Array.from(argmax, Number), arg, `${level} argmax [${shape}] axes [${axes}]`);
        }
      });
    });
  });

  it("max propagates NaN and picks the first of tied maxima", () => {
    const x = Float32Array.from([1, 5, 5, 2, /* row 2 */ 3, NaN, 7, NaN, /* row 3 */ -Infinity, -Infinity, -Infinity, -Infinity]);
    const out = new Float32Array(3), arg = new BigInt64Array(3);
    native.reduce("max", x, [3, 4], [1], out, arg);
    assert.deepEqual(Array.from(arg, Number), [1, 5, 8]);
    assert.equal(out[0], 5);
    assert.ok(Number.isNaN(out[1]));
    assert.equal(out[2], -Infinity);
  });

  it("sums accurately (float64 accumulation) and identically for any thread count", () => {
    const n = 1 << 20;
    const x = new Float32Array(n).fill(0.1);
    x[0] = 1e7; // float32 accumulation would lose the 0.1s entirely
    const out = new Float32Array(1);
    native.reduce("sum", x, [n], [0], out);
    assert.equal(out[0], Math.fround(1e7 + Math.fround(0.1) * (n - 1)));
    const y = randn(64 * 3001, 3);
    for (const [shape, axes] of [[[64, 3001], [0]], [[64, 3001], [1]], [[64 * 3001], [0]]] as [number[], number[]][]) {
      const outN = numel(shape.filter((_, d) => !axes.includes(d)));
      const one = new Float32Array(outN), many = new Float32Array(outN);
      singleThreaded(() => native.reduce("sum", y, shape, axes, one));
      native.reduce("sum", y, shape, axes, many);
      assert.deepEqual(many, one, `[${shape}] axes [${axes}]`);
    }
  });

  it("empty reductions: sum 0, mean NaN", () => {
    const out = new Float32Array(3);
    native.reduce("sum", new Float32Array(0), [0, 3], [0], out);
    assert.deepEqual(Array.from(out), [0, 0, 0]);
    native.reduce("mean", new Float32Array(0), [0, 3], [0], out);
    assert.ok(out.every(Number.isNaN));
  });

  it("backward: broadcast for sum, divided by the count for mean, to the argmax for max", () => {
    atEveryLevel((level) => {
      REDUCE_CASES.forEach(([shape, axes], k) => {
        if (numel(shape) === 0 || numel(shape) > 10000) return;
        const x = randn(numel(shape), 700 + k);
        const norm = axes.map((a) => (a < 0 ? a + shape.length : a));
        const red = shape.map((_, d) => norm.includes(d));
        const count = numel(shape.filter((_, d) => red[d]));
        const outN = numel(shape.filter((_, d) => !red[d]));
        const dy = randn(outN, 800 + k);
        // output index of every input element
        const oIdx = Array.from(x, (_, i) => {
          let r = i, o = 0, mul = 1;
          for (let d = shape.length - 1; d >= 0; --d) {
            const idx = r % shape[d];
            r = Math.floor(r / shape[d]);
            if (!red[d]) {
              o += idx * mul;
              mul *= shape[d];
            }
          }
          return o;
        });
        for (const op of ["sum", "mean", "max"] as ReduceOp[]) {
          const dx = new Float32Array(x.length);
          let argmax: BigInt64Array | null = null;
          let want: Float32Array;
          if (op === "max") {
            argmax = new BigInt64Array(outN);
            native.reduce("max", x, shape, axes, new Float32Array(outN), argmax);
            want = new Float32Array(x.length);
            argmax.forEach((a, o) => (want[Number(a)] = dy[o]));
          } else want = Float32Array.from(oIdx, (o) => (op === "mean" ? dy[o] / count : dy[o]));
          native.reduceBackward(op, dy, shape, axes, dx, argmax);
          assert.deepEqual(dx, want, `${level} ${op} backward [${shape}] axes [${axes}]`);
        }
      });
    });
  });
});

// ---- bad input ----------------------------------------------------------------------------------------------------

/** assert.throws with the error class and a message pattern naming the export and the argument. */
function throwsNamed(fn: () => unknown, cls: ErrorConstructor, pattern: RegExp): void {
  assert.throws(fn, (e: Error) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe("20 elementwise kernels: bad input", () => {
  const x = new Float32Array(6), out = new Float32Array(6);
  const bad = (v: unknown) => v as never;

  it("unary / cudaUnary", () => {
    for (const fn of ["unary", "cudaUnary"] as const) {
      const f = native[fn];
      throwsNamed(() => f(bad("cosh"), x, out), RangeError, new RegExp(`^${fn}: op must be one of "exp", .*"geluTanh".*, got "cosh"`));
      throwsNamed(() => f("exp", bad([1, 2]), out), TypeError, new RegExp(`^${fn}: x must be a Float32Array, got Array`));
      throwsNamed(() => f("exp", x, new Float32Array(5)), RangeError, new RegExp(`^${fn}: out has 5 elements, expected x.length = 6`));
      throwsNamed(() => f("affine", x, out, bad("2")), TypeError, new RegExp(`^${fn}: alpha must be a number`));
      throwsNamed(() => f("exp", x.subarray(0, 4), x.subarray(2, 6)), RangeError, new RegExp(`^${fn}: out overlaps x`));
      throwsNamed(() => (f as unknown as (...a: unknown[]) => void)("exp", x), TypeError, new RegExp(`^${fn}: expected 3 arguments, got 2`));
    }
  });

  it("unaryBackward / cudaUnaryBackward", () => {
    for (const fn of ["unaryBackward", "cudaUnaryBackward"] as const) {
      const f = native[fn];
      throwsNamed(() => f(bad("sin"), x, null, x, out), RangeError, new RegExp(`^${fn}: op must be one of`));
      throwsNamed(() => f("log", null, out, x, new Float32Array(6)), TypeError, new RegExp(`^${fn}: x must be a Float32Array: the backward of "log" reads the forward input`));
      throwsNamed(() => f("tanh", x, null, x, new Float32Array(6)), TypeError, new RegExp(`^${fn}: y must be a Float32Array: the backward of "tanh" reads the forward output`));
      throwsNamed(() => f("relu", new Float32Array(5), null, x, out), RangeError, new RegExp(`^${fn}: x has 5 elements, expected dy.length = 6`));
      throwsNamed(() => f("relu", x, null, out, new Float32Array(7)), RangeError, new RegExp(`^${fn}: dx has 7 elements`));
      throwsNamed(() => f("relu", x, null, out, x), RangeError, new RegExp(`^${fn}: dx overlaps x`));
    }
  });

  it("binary / cudaBinary / binaryBackward / cudaBinaryBackward", () => {
    for (const fn of ["binary", "cudaBinary"] as const) {
      const f = native[fn];
      throwsNamed(() => f(bad("pow"), x, [6], x, [6], out), RangeError, new RegExp(`^${fn}: op must be one of "add", "sub", "mul", "div", got "pow"`));
      throwsNamed(() => f("add", x, [2, 3], x, [3, 2], out), RangeError, new RegExp(`^${fn}: aShape and bShape: shapes \\[2, 3\\] and \\[3, 2\\] cannot be broadcast together`));
      throwsNamed(() => f("add", x, [2, 4], x, [6], out), RangeError, new RegExp(`^${fn}: a has 6 elements, expected numel\\(aShape \\[2, 4\\]\\) = 8`));
      throwsNamed(() => f("add", x, [2, 3], x, [6], out), RangeError, new RegExp(`^${fn}: aShape and bShape: shapes`));
      throwsNamed(() => f("add", x, [2, 3], new Float32Array(3), [3], new Float32Array(5)), RangeError, new RegExp(`^${fn}: out has 5 elements, expected numel\\(broadcast shape \\[2, 3\\]\\) = 6`));
      throwsNamed(() => f("add", x, [2, -3], x, [6], out), RangeError, new RegExp(`^${fn}: aShape\\[1\\] must be an integer`));
      throwsNamed(() => f("add", x, bad("6"), x, [6], out), TypeError, new RegExp(`^${fn}: aShape must be an array of integers`));
      throwsNamed(() => f("add", new Float32Array(1), Array(17).fill(1), x, [6], out), RangeError, new RegExp(`^${fn}: aShape has 17 dimensions, at most 16`));
      throwsNamed(() => f("add", x, [6], new Float32Array(1), [1], x.subarray(1)), RangeError, new RegExp(`^${fn}: out has 5 elements`));
    }
    for (const fn of ["binaryBackward", "cudaBinaryBackward"] as const) {
      const f = native[fn];
      throwsNamed(() => f(bad("pow"), x, [6], x, [6], x, out, null), RangeError, new RegExp(`^${fn}: op must be one of`));
      throwsNamed(() => f("mul", x, [6], x, [6], new Float32Array(5), out, null), RangeError, new RegExp(`^${fn}: dy has 5 elements`));
      throwsNamed(() => f("mul", x, [6], x, [6], x.slice(), new Float32Array(2), null), RangeError, new RegExp(`^${fn}: da has 2 elements`));
      throwsNamed(() => f("mul", x, [6], new Float32Array(1), [1], out.slice(), null, bad(7)), TypeError, new RegExp(`^${fn}: db must be a Float32Array, got number`));
      throwsNamed(() => f("mul", x, [6], new Float32Array(1), [1], out.slice(), x, null), RangeError, new RegExp(`^${fn}: da overlaps a`));
    }
  });

  it("reduce / reduceBackward", () => {
    throwsNamed(() => native.reduce(bad("min"), x, [2, 3], [0], new Float32Array(3)), RangeError, /^reduce: op must be one of "sum", "mean", "max", got "min"/);
    throwsNamed(() => native.reduce("sum", x, [2, 3], [2], new Float32Array(3)), RangeError, /^reduce: axes\[0\] must be an integer in \[-2, 1\], got 2/);
    throwsNamed(() => native.reduce("sum", x, [2, 3], [1, -1], new Float32Array(2)), RangeError, /^reduce: axes repeats axis 1/);
    throwsNamed(() => native.reduce("sum", x, [2, 3], [1], new Float32Array(3)), RangeError, /^reduce: out has 3 elements, expected numel\(kept axes \[2\]\) = 2/);
    throwsNamed(() => native.reduce("sum", x, [4, 3], [1], new Float32Array(4)), RangeError, /^reduce: x has 6 elements, expected numel\(shape \[4, 3\]\) = 12/);
    throwsNamed(() => native.reduce("sum", x, [2, 3], [1], new Float32Array(2), new BigInt64Array(2)), RangeError, /^reduce: argmax is only written by "max"/);
    throwsNamed(() => native.reduce("max", x, [2, 3], [1], new Float32Array(2), bad(new Int32Array(2))), TypeError, /^reduce: argmax must be a BigInt64Array, got Int32Array/);
    throwsNamed(() => native.reduce("max", new Float32Array(0), [0, 3], [0], new Float32Array(3)), RangeError, /^reduce: max of zero elements/);
    throwsNamed(() => native.reduceBackward("max", new Float32Array(2), [2, 3], [1], new Float32Array(6)), TypeError, /^reduceBackward: argmax must be a BigInt64Array: the backward of "max" needs/);
    throwsNamed(() => native.reduceBackward("max", new Float32Array(2), [2, 3], [1], new Float32Array(6), BigInt64Array.from([0n, 6n])), RangeError, /^reduceBackward: argmax\[1\] = 6 is not an index into x/);
    throwsNamed(() => native.reduceBackward("sum", new Float32Array(3), [2, 3], [1], new Float32Array(6)), RangeError, /^reduceBackward: dy has 3 elements, expected numel\(kept axes \[2\]\) = 2/);
    throwsNamed(() => native.reduceBackward("sum", new Float32Array(2), [2, 3], [1], new Float32Array(5)), RangeError, /^reduceBackward: dx has 5 elements/);
  });
});

// ---- CUDA twin -----------------------------------------------------------------------------------------------------

const cuda = backends().cuda;
const itCuda = cuda.available && !cuda.emulated ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: ${cuda.emulated ? "host emulation (XLSTM_CUDA_EMULATE): the CUDA kernels need a GPU" : cuda.reason}]`, fn);
const itNoCuda = !cuda.available ? it : (title: string, fn: () => void) => it.skip(`${title} [skipped: a CUDA device is available]`, fn);

describe("20 elementwise kernels: CUDA twin", () => {
  itCuda("cudaUnary / cudaUnaryBackward / cudaBinary / cudaBinaryBackward equal the CPU kernels", () => {
    for (const op of UNARY) {
      const n = 4099;
      const x = unaryInputs(n, 3, op);
      const cpu = new Float32Array(n), gpu = new Float32Array(n);
      native.unary(op, x, cpu, AFFINE_A, AFFINE_B);
      native.cudaUnary(op, x, gpu, AFFINE_A, AFFINE_B);
      expectValues(gpu, Array.from(x, FWD[op]), `cuda ${op}`, 1e-6, ATOL[op] ?? 1e-37);
      assertClose(gpu.map((v) => (Number.isFinite(v) ? v : 0)), cpu.map((v) => (Number.isFinite(v) ? v : 0)), `cuda vs cpu ${op}`, 1e-6, ATOL[op] ?? 1e-37);
      for (let i = 0; i < n; ++i) if (!Number.isFinite(x[i]) || Math.abs(x[i]) > 1e4) x[i] = 0.5;
      native.unary(op, x, cpu, AFFINE_A, AFFINE_B);
      const dy = randn(n, 4), dxc = new Float32Array(n), dxg = new Float32Array(n);
      const xs = READS_X.has(op) ? x : null, ys = READS_Y.has(op) ? cpu : null;
      native.unaryBackward(op, xs, ys, dy, dxc, AFFINE_A);
      native.cudaUnaryBackward(op, xs, ys, dy, dxg, AFFINE_A);
      assertClose(dxg, dxc, `cuda vs cpu ${op}'`, 2e-6, ATOL_BWD[op] ?? 1e-30);
    }
    SHAPE_CASES.forEach(([as, bs], k) => {
      const a = randn(numel(as), 10 + k), b = randn(numel(bs), 20 + k).map((v) => v + Math.sign(v) * 0.5);
      const n = numel(broadcastIndex(as, bs).shape);
      const dy = randn(n, 30 + k);
      for (const op of BIN) {
        const c = new Float32Array(n), g = new Float32Array(n);
        native.binary(op, a, as, b, bs, c);
        native.cudaBinary(op, a, as, b, bs, g);
        assert.deepEqual(g, c, `cuda ${op} [${as}] [${bs}]`);
        const dac = new Float32Array(n), dbc = new Float32Array(n), dag = new Float32Array(n), dbg = new Float32Array(n);
        native.binaryBackward(op, a, as, b, bs, dy, dac, dbc);
        native.cudaBinaryBackward(op, a, as, b, bs, dy, dag, dbg);
        assertClose(dag, dac, `cuda ${op} da`, 1e-6, 1e-30);
        assertClose(dbg, dbc, `cuda ${op} db`, 1e-6, 1e-30);
      }
    });
  });

  itNoCuda("the CUDA entries throw an Error naming backends().cuda.reason when no GPU is usable", () => {
    const x = new Float32Array(4), out = new Float32Array(4);
    const calls: [string, () => unknown][] = [
      ["cudaUnary", () => native.cudaUnary("exp", x, out)],
      ["cudaUnaryBackward", () => native.cudaUnaryBackward("exp", null, x, x.slice(), out)],
      ["cudaBinary", () => native.cudaBinary("add", x, [4], x, [4], out)],
      ["cudaBinaryBackward", () => native.cudaBinaryBackward("mul", x, [4], x, [4], x.slice(), out, null)],
    ];
    assertRefusedWithoutCuda(calls, cuda.reason!);
  });
});
