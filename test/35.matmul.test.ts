// Layer 3 (ops): ops.matmul (2-D, batched with broadcasting, 1-D operands) and ops.linear (with and without bias):
// forward against float64 references written here with plain index arithmetic, gradients by float64 finite
// differences (gradCheck), one tape entry each, and shape / dtype errors.
import { strict as assert } from "assert";
import { ops, Tensor } from "../lib";
import { gradCheck, randnGrad } from "./support/gradcheck";

/** float64 torch.matmul: 1-D operands promoted (and their dim dropped), batch dims broadcast per element index. */
function matmulRef(a: Float64Array, aShape: number[], b: Float64Array, bShape: number[]): Float64Array {
  const aS = aShape.length === 1 ? [1, aShape[0]] : aShape;
  const bS = bShape.length === 1 ? [bShape[0], 1] : bShape;
  const M = aS[aS.length - 2], K = aS[aS.length - 1], N = bS[bS.length - 1];
  const aB = aS.slice(0, -2), bB = bS.slice(0, -2);
  const nd = Math.max(aB.length, bB.length);
  const outB: number[] = [];
  for (let d = 0; d < nd; ++d) {
    const x = aB[aB.length - nd + d] ?? 1, y = bB[bB.length - nd + d] ?? 1;
    outB.push(Math.max(x, y));
  }
  const batches = outB.reduce((p, s) => p * s, 1);
  const out = new Float64Array(batches * M * N);
  // flat batch index of an operand for output batch multi-index `idx`
  const flat = (shape: number[], idx: number[]) => {
    let f = 0;
    for (let d = 0; d < shape.length; ++d) f = f * shape[d] + (shape[d] === 1 ? 0 : idx[nd - shape.length + d]);
    return f;
  };
  for (let t = 0; t < batches; ++t) {
    const idx: number[] = [];
    let r = t;
    for (let d = nd - 1; d >= 0; --d) {
      idx[d] = r % outB[d];
      r = Math.floor(r / outB[d]);
    }
    const ia = flat(aB, idx), ib = flat(bB, idx);
    for (let i = 0; i < M; ++i)
      for (let j = 0; j < N; ++j) {
        let s = 0;
        for (let p = 0; p < K; ++p) s += a[ia * M * K + i * K + p] * b[ib * K * N + p * N + j];
        out[t * M * N + i * N + j] = s;
      }
  }
  return out;
}

/** float64 linear: y[r, o] = sum_i x[r, i] w[o, i] + bias[o]. */
function linearRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, inF: number, outF: number): Float64Array {
  const rows = x.length / inF;
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; ++r)
    for (let o = 0; o < outF; ++o) {
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < inF; ++i) s += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = s;
    }
  return y;
}

describe("35 matmul and linear", () => {
  it("matmul: shapes follow torch.matmul", () => {
    const cases: [number[], number[], number[]][] = [
      [[3, 4], [4, 5], [3, 5]],
      [[2, 3, 4], [2, 4, 5], [2, 3, 5]],
      [[2, 1, 3, 4], [3, 4, 2], [2, 3, 3, 2]],
      [[2, 3, 4], [4, 5], [2, 3, 5]],
      [[4], [4, 5], [5]],
      [[3, 4], [4], [3]],
      [[4], [4], []],
      [[4], [2, 4, 5], [2, 5]],
      [[2, 3, 4], [4], [2, 3]],
      [[0, 3, 4], [4, 5], [0, 3, 5]],
      [[3, 0], [0, 5], [3, 5]],
    ];
    for (const [as, bs, want] of cases) {
      const a = Tensor.randn(as), b = Tensor.randn(bs);
      const y = ops.matmul(a, b);
      assert.deepEqual(y.shape, want, `${JSON.stringify(as)} x ${JSON.stringify(bs)}`);
      const ref = matmulRef(Float64Array.from(a.f32()), as, Float64Array.from(b.f32()), bs);
      y.f32().forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-5 * (1 + Math.abs(ref[i])), `element ${i}: ${v} vs ${ref[i]}`));
    }
    // K = 0 gives zeros
    assert.deepEqual(ops.matmul(Tensor.randn([3, 0]), Tensor.randn([0, 2])).toFlatArray(), [0, 0, 0, 0, 0, 0]);
  });

  it("matmul: gradients (2-D, batched, broadcast batch, 1-D operands) match finite differences", () => {
    const cases: [number[], number[]][] = [
      [[3, 4], [4, 5]],
      [[2, 3, 4], [2, 4, 5]],
      [[2, 1, 3, 4], [3, 4, 2]],
      [[2, 3, 4], [4, 5]],
      [[3, 4], [2, 4, 5]],
      [[1, 3, 4], [2, 1, 4, 3]],
      [[4], [4, 5]],
      [[3, 4], [4]],
      [[4], [4]],
      [[4], [2, 4, 3]],
      [[2, 3, 4], [4]],
    ];
    cases.forEach(([as, bs], k) => {
      const a = randnGrad(as, 10 + k), b = randnGrad(bs, 100 + k);
      gradCheck({
        name: `matmul ${JSON.stringify(as)} x ${JSON.stringify(bs)}`,
        op: ([x, y]) => ops.matmul(x, y),
        ref64: ([x, y]) => matmulRef(x, as, y, bs),
        inputs: [a, b],
      });
    });
  });

  it("matmul: one tape entry, and no gradient work for inputs that do not require grad", () => {
    const a = randnGrad([2, 3], 1), b = Tensor.randn([3, 4]);
    const y = ops.matmul(a, b);
    assert.equal(y._node?.name, "matmul");
    assert.equal(y._node?.inputs[0], a);
    assert.equal(y._node?.inputs[1], b);
    const grads = y._node!.backward!([Tensor.ones([2, 4])]);
    assert.equal(grads.length, 2);
    assert.ok(grads[0] instanceof Tensor);
    assert.equal(grads[1], null);
    assert.equal(ops.matmul(Tensor.randn([2, 3]), b).requiresGrad, false);
  });

  it("linear: forward and gradients with and without bias match finite differences", () => {
    const cases: [number[], number, boolean][] = [
      [[2, 3, 4], 5, true],
      [[3, 4], 2, false],
      [[4], 3, true],
      [[2, 2, 3], 1, false],
    ];
    cases.forEach(([xs, outF, withBias], k) => {
      const inF = xs[xs.length - 1];
      const x = randnGrad(xs, 200 + k), w = randnGrad([outF, inF], 300 + k, 0.5);
      const inputs = withBias ? [x, w, randnGrad([outF], 400 + k)] : [x, w];
      gradCheck({
        name: `linear x ${JSON.stringify(xs)} weight [${outF}, ${inF}]${withBias ? " + bias" : ""}`,
        op: (t) => {
          const y = ops.linear(t[0], t[1], t[2]);
          assert.deepEqual(y.shape, [...xs.slice(0, -1), outF]);
          assert.equal(y._node?.name, "linear");
          return y;
        },
        ref64: (t) => linearRef(t[0], t[1], t[2] ?? null, inF, outF),
        inputs,
      });
    });
  });

  it("linear: a larger product agrees with the float64 reference", () => {
    const x = Tensor.randn([3, 37, 70]), w = Tensor.randn([45, 70]), bias = Tensor.randn([45]);
    const y = ops.linear(x, w, bias);
    const ref = linearRef(Float64Array.from(x.f32()), Float64Array.from(w.f32()), Float64Array.from(bias.f32()), 70, 45);
    y.f32().forEach((v, i) => assert.ok(Math.abs(v - ref[i]) <= 1e-4 * (1 + Math.abs(ref[i])), `element ${i}: ${v} vs ${ref[i]}`));
  });

  it("rejects mismatched shapes and dtypes, naming the argument and the shapes", () => {
    const range = (re: RegExp) => (e: Error) => e instanceof RangeError && re.test(e.message);
    const type = (re: RegExp) => (e: Error) => e instanceof TypeError && re.test(e.message);
    assert.throws(() => ops.matmul(Tensor.randn([2, 3]), Tensor.randn([4, 5])), range(/ops\.matmul: b has shape \[4, 5\], expected \[\.\.\., K, N\] with K = 3 \(a has shape \[2, 3\]\)/));
    assert.throws(() => ops.matmul(Tensor.randn([2, 3]), Tensor.randn([4])), range(/ops\.matmul: b has shape \[4\], expected \[K\] = \[3\]/));
    assert.throws(() => ops.matmul(Tensor.randn([2, 3, 4]), Tensor.randn([3, 4, 5])), range(/ops\.matmul: batch dimensions of a \[2, 3, 4\] and b \[3, 4, 5\].*cannot be broadcast/));
    assert.throws(() => ops.matmul(Tensor.scalar(1), Tensor.randn([1, 2])), range(/ops\.matmul: a has shape \[\]/));
    assert.throws(() => ops.matmul(Tensor.zeros([2, 2], { dtype: "int32" }), Tensor.randn([2, 2])), type(/ops\.matmul: a must be a float32 tensor, got int32/));
    assert.throws(() => ops.matmul(Tensor.randn([2, 2]), [[1, 2], [3, 4]] as never), type(/ops\.matmul: b must be a Tensor/));
    assert.throws(() => ops.linear(Tensor.randn([2, 5]), Tensor.randn([3, 4])), range(/ops\.linear: weight has shape \[3, 4\], expected \[out, in\] = \[3, 5\]/));
    assert.throws(() => ops.linear(Tensor.randn([2, 5]), Tensor.randn([15])), range(/ops\.linear: weight has shape \[15\], expected \[out, in\]/));
    assert.throws(() => ops.linear(Tensor.randn([2, 4]), Tensor.randn([3, 4]), Tensor.randn([4])), range(/ops\.linear: bias has shape \[4\], expected \[out\] = \[3\]/));
    assert.throws(() => ops.linear(Tensor.scalar(2), Tensor.randn([3, 1])), range(/ops\.linear: x has shape \[\]/));
    assert.throws(() => ops.linear(Tensor.randn([2, 4]), Tensor.zeros([3, 4], { dtype: "int32" })), type(/ops\.linear: weight must be a float32 tensor, got int32/));  // bfloat16: test/36
  });
});
