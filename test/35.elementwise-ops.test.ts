// Layer 3 ops: the differentiable elementwise ops and reductions of lib/ops/elementwise.ts and lib/ops/reduce.ts:
// forward against float64 references, gradients against float64 finite differences (gradCheck), broadcast
// gradients reduced by the tape (through the native sum kernel), and the ops' bad-input errors.
import { strict as assert } from "assert";
import { Generator, ops, Tensor } from "../lib";
import { native } from "../lib/native";
import { GatedFeedForward } from "../lib/nn/components";
import { gatedActivation, UnaryOp } from "../lib/ops/elementwise";
import { forEachSimdLevel } from "./support/simd";
import { gradCheck, randnGrad } from "./support/gradcheck";
import { erfc64, sig } from "./support/ref64";

// ---- float64 references on flat arrays -------------------------------------------------------------------------

const map = (f: (v: number) => number) => ([x]: Float64Array[]) => x.map(f);

/** Float64 broadcast of a binary function over flat arrays with NumPy shapes. */
function broadcast64(f: (a: number, b: number) => number, as: number[], bs: number[]): (xs: Float64Array[]) => Float64Array {
  const nd = Math.max(as.length, bs.length);
  const A = [...Array(nd - as.length).fill(1), ...as], B = [...Array(nd - bs.length).fill(1), ...bs];
  const shape = A.map((d, i) => (d === 1 ? B[i] : d));
  const n = shape.reduce((p, d) => p * d, 1);
  return ([a, b]) => {
    const out = new Float64Array(n);
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
      out[i] = f(a[oa], b[ob]);
    }
    return out;
  };
}

/** Float64 reduction over `axes` of a flat array with `shape` (kept axes in order). */
function reduce64(kind: "sum" | "mean" | "max", shape: number[], axes: number[]): (xs: Float64Array[]) => Float64Array {
  const red = shape.map((_, d) => axes.includes(d));
  const outN = shape.reduce((p, d, i) => (red[i] ? p : p * d), 1);
  return ([x]) => {
    const acc = new Float64Array(outN).fill(kind === "max" ? -Infinity : 0);
    const cnt = new Float64Array(outN);
    for (let i = 0; i < x.length; ++i) {
      let r = i, o = 0, mul = 1;
      for (let d = shape.length - 1; d >= 0; --d) {
        const idx = r % shape[d];
        r = Math.floor(r / shape[d]);
        if (!red[d]) {
          o += idx * mul;
          mul *= shape[d];
        }
      }
      acc[o] = kind === "max" ? Math.max(acc[o], x[i]) : acc[o] + x[i];
      cnt[o]++;
    }
    return kind === "mean" ? acc.map((v, o) => v / cnt[o]) : acc;
  };
}

/** Inputs away from kinks and singularities: |x| >= 0.05. */
function awayFromZero(shape: number[], seed: number, scale = 1): Tensor {
  const t = randnGrad(shape, seed, scale);
  const d = t.data as Float32Array;
  for (let i = 0; i < d.length; ++i) if (Math.abs(d[i]) < 0.05) d[i] += d[i] < 0 ? -0.1 : 0.1;
  return t;
}

describe("35 elementwise ops: forward and gradients", () => {
  it("add, sub, mul, div with broadcasting (gradients reduced to each input's shape)", () => {
    const cases: [number[], number[]][] = [
      [[2, 3], [2, 3]],
      [[2, 3], [3]],
      [[2, 1], [1, 3]],
      [[3], [2, 2, 3]],
      [[], [2, 2]],
    ];
    const f64 = { add: (a: number, b: number) => a + b, sub: (a: number, b: number) => a - b, mul: (a: number, b: number) => a * b, div: (a: number, b: number) => a / b };
    cases.forEach(([as, bs], k) => {
      for (const op of ["add", "sub", "mul", "div"] as const) {
        const a = randnGrad(as, 10 + k), b = awayFromZero(bs, 20 + k);
        if (op === "div") (b.data as Float32Array).forEach((v, i, arr) => (arr[i] = v + Math.sign(v)));
        gradCheck({ name: `${op} [${as}] [${bs}]`, op: ([x, y]) => ops[op](x, y), ref64: broadcast64(f64[op], as, bs), inputs: [a, b] });
        assert.deepEqual(a.grad!.shape, as);
        assert.deepEqual(b.grad!.shape, bs);
      }
    });
  });

  it("number operands on either side", () => {
    const x = awayFromZero([2, 3], 5);
    gradCheck({ name: "x + 2.5", op: ([t]) => ops.add(t, 2.5), ref64: map((v) => v + 2.5), inputs: [x] });
    gradCheck({ name: "3 - x", op: ([t]) => ops.sub(3, t), ref64: map((v) => 3 - v), inputs: [x] });
    gradCheck({ name: "x * -1.5", op: ([t]) => ops.mul(t, -1.5), ref64: map((v) => v * -1.5), inputs: [x] });
    gradCheck({ name: "2 / x", op: ([t]) => ops.div(2, t), ref64: map((v) => 2 / v), inputs: [x] });
    gradCheck({ name: "x / 4", op: ([t]) => ops.div(t, 4), ref64: map((v) => v / 4), inputs: [x] });
  });

  it("activations", () => {
    const K = Math.sqrt(2 / Math.PI);
    const cases: [string, (t: Tensor) => Tensor, (v: number) => number, Tensor][] = [
      ["neg", ops.neg, (v) => -v, randnGrad([2, 3], 1)],
      ["exp", ops.exp, Math.exp, randnGrad([2, 3], 2)],
      ["log", ops.log, Math.log, Tensor.from([0.1, 0.5, 1, 2, 7.5, 100], [2, 3], { requiresGrad: true })],
      ["sigmoid", ops.sigmoid, sig, randnGrad([2, 3], 3, 3)],
      ["logsigmoid", ops.logsigmoid, (v) => -Math.log1p(Math.exp(-v)), Tensor.from([-30, -4, -0.5, 0.3, 5, 25], [2, 3], { requiresGrad: true })],
      ["tanh", ops.tanh, Math.tanh, randnGrad([2, 3], 4, 2)],
      ["softplus", ops.softplus, (v) => (v > 20 ? v : Math.log1p(Math.exp(v))), Tensor.from([-25, -3, 0.5, 19, 21, 30], [2, 3], { requiresGrad: true })],
      ["relu", ops.relu, (v) => Math.max(v, 0), awayFromZero([2, 3], 5)],
      ["gelu", (t) => ops.gelu(t), (v) => 0.5 * v * erfc64(-v / Math.SQRT2), randnGrad([2, 3], 6, 2)],
      ["gelu tanh", (t) => ops.gelu(t, { approximate: "tanh" }), (v) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v ** 3))), randnGrad([2, 3], 7, 2)],
      ["silu", ops.silu, (v) => v * sig(v), randnGrad([2, 3], 8, 2)],
      ["scale", (t) => ops.scale(t, 2.5, -1), (v) => 2.5 * v - 1, randnGrad([2, 3], 9)],
    ];
    for (const [name, op, f, x] of cases) gradCheck({ name, op: ([t]) => op(t), ref64: map(f), inputs: [x] });
  });

  it("sum, mean, max over dims with keepdim", () => {
    const shape = [2, 3, 4];
    const dimCases: (number | number[] | undefined)[] = [undefined, 0, 1, -1, [0, 2], [1, 2], [0, 1, 2], []];
    for (const dims of dimCases)
      for (const keepdim of [false, true])
        for (const kind of ["sum", "mean", "max"] as const) {
          const axes = dims === undefined ? [0, 1, 2] : (typeof dims === "number" ? [dims] : dims).map((d) => (d < 0 ? d + 3 : d));
          const x = randnGrad(shape, 40 + axes.length);
          const y = ops[kind](x, dims, keepdim);
          const want = shape.map((s, d) => (axes.includes(d) ? 1 : s)).filter((s, d) => keepdim || !axes.includes(d));
          assert.deepEqual(y.shape, want, `${kind} dims ${JSON.stringify(dims)} keepdim ${keepdim}`);
          gradCheck({ name: `${kind} dims ${JSON.stringify(dims)} keepdim ${keepdim}`, op: ([t]) => ops[kind](t, dims, keepdim), ref64: reduce64(kind, shape, axes), inputs: [x] });
        }
    // a 0-d tensor reduces to itself
    const s = Tensor.scalar(3, { requiresGrad: true });
    assert.equal(ops.sum(s).item(), 3);
    assert.equal(ops.max(s, 0).item(), 3);
  });

  it("max sends the gradient to the first maximum only", () => {
    const x = Tensor.from([[1, 4, 4], [2, 2, -1]], undefined, { requiresGrad: true });
    ops.max(x, 1).backward(Tensor.from([10, 20]));
    assert.deepEqual(x.grad!.toArray(), [[0, 10, 0], [20, 0, 0]]);
  });

  it("composes on the tape: mean((sigmoid(x) + b) * x) with b broadcast", () => {
    const x = randnGrad([3, 4], 60), b = randnGrad([4], 61);
    gradCheck({
      name: "composite",
      op: ([t, u]) => ops.mean(ops.mul(ops.add(ops.sigmoid(t), u), t)),
      ref64: ([t, u]) => {
        let s = 0;
        for (let i = 0; i < 12; ++i) s += (sig(t[i]) + u[i % 4]) * t[i];
        return Float64Array.of(s / 12);
      },
      inputs: [x, b],
    });
  });
});

describe("35 gated activation (the gated feed-forward's act(gate) * value)", () => {
  // the composed form the fused op replaces; per element the same native arithmetic, so the values must agree
  // exactly (up to the sign of a zero: the composed gradient adds the two slices' zero-padded gradients)
  const composed = (h: Tensor, act: UnaryOp) => {
    const P = h.shape[h.ndim - 1] / 2;
    const gate = ops.slice(h, -1, 0, P), value = ops.slice(h, -1, P, 2 * P);
    const a = act === "gelu" ? ops.gelu(gate) : act === "relu" ? ops.relu(gate) : act === "sigmoid" ? ops.sigmoid(gate) : ops.silu(gate);
    return ops.mul(a, value);
  };
  const run = (f: (h: Tensor) => Tensor, shape: number[], seed: number) => {
    const gen = new Generator(seed);
    const h = Tensor.randn(shape, { generator: gen, std: 2 });
    h.requiresGrad = true;
    const y = f(h);
    ops.sum(ops.mul(y, Tensor.randn(y.shape, { generator: gen }))).backward();
    return { y: y.f32().slice(), dh: h.grad!.f32().slice(), shape: y.shape };
  };
  for (const act of ["gelu", "relu", "sigmoid", "silu"] as const)
    it(`${act}: output and gradient equal the composed slice / activation / mul exactly, every SIMD level`, () => {
      forEachSimdLevel((level) => {
        for (const [shape, seed] of [[[1, 2], 1], [[3, 5, 34], 2], [[2, 70, 768], 3], [[1, 4097 * 2], 4]] as const) {
          const a = run((h) => gatedActivation(h, act), [...shape], seed), b = run((h) => composed(h, act), [...shape], seed);
          assert.deepEqual(a.shape, b.shape);
          for (const [k, p, q] of [["y", a.y, b.y], ["dh", a.dh, b.dh]] as const)
            for (let i = 0; i < q.length; ++i)
              if (!(p[i] === q[i] || (Number.isNaN(p[i]) && Number.isNaN(q[i])))) assert.fail(`${act} ${level} [${shape}] ${k}[${i}]: fused ${p[i]}, composed ${q[i]}`);
        }
      });
    });

  it("GatedFeedForward uses it on the CPU: same output and gradients as the composed form", () => {
    const ffn = new GatedFeedForward({ embedding_dim: 24, proj_factor: 1.3, act_fn: "gelu", round_proj_up_to_multiple_of: 8 }, { generator: new Generator(7) });
    const x = Tensor.randn([2, 9, 24], { generator: new Generator(8) });
    const grads = () => ffn.parameters().map((p) => p.grad!.f32().slice());
    const fused = ffn.forward(x);
    ops.sum(ops.mul(fused, fused)).backward();
    const g1 = grads();
    ffn.zeroGrad();
    const w = new Map(ffn.namedParameters());
    assert.deepEqual([...w.keys()].sort(), ["proj_down.weight", "proj_up.weight"]);
    const h = ops.linear(x, w.get("proj_up.weight")!);
    const ref = ops.linear(composed(h, "gelu"), w.get("proj_down.weight")!);
    ops.sum(ops.mul(ref, ref)).backward();
    assert.deepEqual([...fused.f32()], [...ref.f32()]);
    assert.deepEqual(g1.map((g) => [...g]), grads().map((g) => [...g]));
  });

  it("rejects bad input with errors naming the argument", () => {
    assert.throws(() => gatedActivation(Tensor.zeros([2, 3]), "gelu"), (e: Error) => e instanceof RangeError && /^gatedActivation: h has shape \[2, 3\], expected \[\.\.\., 2P\]/.test(e.message));
    assert.throws(() => gatedActivation(Tensor.zeros([2, 4], { dtype: "int32" }), "gelu"), (e: Error) => e instanceof TypeError && /^gatedActivation: h must be a float32 tensor/.test(e.message));
    assert.throws(() => native.gatedUnary("gelu", new Float32Array(8), 2, 2, new Float32Array(3)), (e: Error) => e instanceof RangeError && /gatedUnary: y/.test(e.message));
    assert.throws(() => native.gatedUnaryBackward("gelu", new Float32Array(8), new Float32Array(4), 2, 2, new Float32Array(8).subarray(0, 7)), (e: Error) => e instanceof RangeError && /gatedUnaryBackward: dh/.test(e.message));
    const h = new Float32Array(8);
    assert.throws(() => native.gatedUnary("gelu", h, 2, 2, h.subarray(0, 4)), (e: Error) => /gatedUnary: y .*overlap/.test(e.message));
    assert.throws(() => native.gatedUnary("erf" as never, h, 2, 2, new Float32Array(4)), (e: Error) => e instanceof RangeError && /gatedUnary: op must be one of/.test(e.message));
  });
});

describe("35 elementwise ops: bad input", () => {
  const x = Tensor.zeros([2, 3]);
  const bad = (v: unknown) => v as never;

  it("binary ops", () => {
    assert.throws(() => ops.add(x, Tensor.zeros([4])), (e: Error) => e instanceof RangeError && /^ops\.add: shapes \[2, 3\] and \[4\] cannot be broadcast together/.test(e.message));
    assert.throws(() => ops.mul(2, 3 as never), (e: Error) => e instanceof TypeError && /^ops\.mul: at least one operand must be a Tensor/.test(e.message));
    assert.throws(() => ops.sub(x, Tensor.zeros([3], { dtype: "int32" })), (e: Error) => e instanceof TypeError && /^ops\.sub: b must be a float32 tensor, got int32/.test(e.message));
    assert.throws(() => ops.div(bad("x"), x), (e: Error) => e instanceof TypeError && /^ops\.div: a must be a Tensor, got string/.test(e.message));
  });

  it("unary ops", () => {
    for (const [name, f] of Object.entries({ exp: ops.exp, log: ops.log, sigmoid: ops.sigmoid, logsigmoid: ops.logsigmoid, tanh: ops.tanh, softplus: ops.softplus, relu: ops.relu, silu: ops.silu, neg: ops.neg, gelu: ops.gelu }))
      assert.throws(() => (f as (t: Tensor) => Tensor)(Tensor.zeros([2], { dtype: "int64" })), (e: Error) => e instanceof TypeError && new RegExp(`^ops\\.${name}: x must be a float32 tensor, got int64`).test(e.message));
    assert.throws(() => ops.relu(bad([1, 2])), (e: Error) => e instanceof TypeError && /^ops\.relu: x must be a Tensor, got Array/.test(e.message));
    assert.throws(() => ops.gelu(x, { approximate: bad("erf") }), (e: Error) => e instanceof RangeError && /^ops\.gelu: approximate must be "none" or "tanh", got "erf"/.test(e.message));
    assert.throws(() => ops.scale(x, bad("2")), (e: Error) => e instanceof TypeError && /^ops\.scale: alpha must be a number, got string/.test(e.message));
    assert.throws(() => ops.scale(x, 2, bad(null)), (e: Error) => e instanceof TypeError && /^ops\.scale: beta must be a number, got null/.test(e.message));
  });

  it("reductions", () => {
    assert.throws(() => ops.sum(x, 2), (e: Error) => e instanceof RangeError && /ops\.sum: dim 2 is out of range for a tensor with 2 dimensions/.test(e.message));
    assert.throws(() => ops.mean(x, [0, -2]), (e: Error) => e instanceof RangeError && /^ops\.mean: dims \[0, -2\] repeat dimension 0/.test(e.message));
    assert.throws(() => ops.max(Tensor.zeros([0, 3]), 0), (e: Error) => e instanceof RangeError && /^ops\.max: cannot take the max over an empty dimension of shape \[0, 3\]/.test(e.message));
    assert.throws(() => ops.sum(bad(5)), (e: Error) => e instanceof TypeError && /^ops\.sum: x must be a Tensor, got number/.test(e.message));
    assert.throws(() => ops.sum(Tensor.zeros([2], { dtype: "int32" })), (e: Error) => e instanceof TypeError && /^ops\.sum: x must be a float32 tensor/.test(e.message));
    assert.throws(() => ops.sum(x, bad("0")), (e: Error) => e instanceof TypeError && /^ops\.sum: dims must be a number or an array of numbers, got string/.test(e.message));
    assert.throws(() => ops.sum(x, 0, bad(1)), (e: Error) => e instanceof TypeError && /^ops\.sum: keepdim must be a boolean, got number/.test(e.message));
    assert.throws(() => ops.sum(Tensor.scalar(1), 1), (e: Error) => e instanceof RangeError && /^ops\.sum: dim 1 is out of range for a tensor with 0 dimensions/.test(e.message));
    assert.equal(ops.mean(Tensor.zeros([0, 3]), 0).toFlatArray().every(Number.isNaN), true);
  });
});
