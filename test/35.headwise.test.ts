// Layer 3: block-diagonal linear maps (LinearHeadwiseExpand), alone and several side by side into one output with
// a shared input, against float64 references and finite differences.
import { strict as assert } from "assert";
import { ops, Tensor } from "../lib";
import { gradCheck, randnGrad } from "./support/gradcheck";
import { forEachSimdLevel } from "./support/simd";

// y[r, hb*O + o] = Σ_d x[r, hb*I + d] W[hb, o, d] + b[hb*O + o]
function headwise64(x: Float64Array, W: Float64Array, b: Float64Array | null, rows: number, NB: number, I: number, O: number): Float64Array {
  const y = new Float64Array(rows * NB * O);
  for (let r = 0; r < rows; ++r)
    for (let hb = 0; hb < NB; ++hb)
      for (let o = 0; o < O; ++o) {
        let s = b ? b[hb * O + o] : 0;
        for (let d = 0; d < I; ++d) s += x[r * NB * I + hb * I + d] * W[(hb * O + o) * I + d];
        y[r * NB * O + hb * O + o] = s;
      }
  return y;
}

describe("35 headwise linear", () => {
  it("matches a float64 evaluation and finite differences (with bias, batched leading dims)", () => {
    gradCheck({
      name: "headwiseLinear",
      op: ([x, W, b]) => ops.headwiseLinear(x, W, b),
      ref64: ([x, W, b]) => headwise64(x, W, b, 6, 3, 2, 4),
      inputs: [randnGrad([2, 3, 6], 1), randnGrad([3, 4, 2], 2), randnGrad([12], 3)],
    });
  });

  it("takes the GEMM path for large blocks (17x17) with the same numbers", () => {
    gradCheck({
      name: "headwiseLinear 17x17",
      op: ([x, W, b]) => ops.headwiseLinear(x, W, b),
      ref64: ([x, W, b]) => headwise64(x, W, b, 3, 2, 17, 17),
      inputs: [randnGrad([3, 34], 9), randnGrad([2, 17, 17], 10, 0.3), randnGrad([34], 11)],
    });
  });

  it("4x4 blocks (the mLSTM's q/k/v projections) agree at every SIMD level, alone and concatenated", () => {
    forEachSimdLevel((level) => {
      gradCheck({
        name: `headwiseLinear 4x4 (${level})`,
        op: ([x, W, b]) => ops.headwiseLinear(x, W, b),
        ref64: ([x, W, b]) => headwise64(x, W, b, 70, 8, 4, 4),
        inputs: [randnGrad([70, 32], 12), randnGrad([8, 4, 4], 13), randnGrad([32], 14)],
        eps: 1e-5,
      });
      gradCheck({
        name: `headwiseLinearConcat 4x4 shared input (${level})`,
        op: ([a, W1, W2]) => ops.headwiseLinearConcat([{ x: a, weight: W1 }, { x: a, weight: W2 }]),
        ref64: ([a, W1, W2]) => {
          const y1 = headwise64(a, W1, null, 3, 4, 4, 4), y2 = headwise64(a, W2, null, 3, 4, 4, 4);
          const out = new Float64Array(3 * 32);
          for (let r = 0; r < 3; ++r) {
            out.set(y1.subarray(r * 16, r * 16 + 16), r * 32);
            out.set(y2.subarray(r * 16, r * 16 + 16), r * 32 + 16);
          }
          return out;
        },
        inputs: [randnGrad([3, 16], 15), randnGrad([4, 4, 4], 16), randnGrad([4, 4, 4], 17)],
      });
    });
  });

  it("concatenates several maps with a shared input exactly like separate maps and cat", () => {
    gradCheck({
      name: "headwiseLinearConcat",
      op: ([a, c, W1, W2, W3]) => ops.headwiseLinearConcat([{ x: a, weight: W1 }, { x: a, weight: W2 }, { x: c, weight: W3 }]),
      ref64: ([a, c, W1, W2, W3]) => {
        const y1 = headwise64(a, W1, null, 5, 2, 3, 3), y2 = headwise64(a, W2, null, 5, 2, 3, 3), y3 = headwise64(c, W3, null, 5, 2, 3, 3);
        const out = new Float64Array(5 * 18);
        for (let r = 0; r < 5; ++r) {
          out.set(y1.subarray(r * 6, r * 6 + 6), r * 18);
          out.set(y2.subarray(r * 6, r * 6 + 6), r * 18 + 6);
          out.set(y3.subarray(r * 6, r * 6 + 6), r * 18 + 12);
        }
        return out;
      },
      inputs: [randnGrad([5, 6], 4), randnGrad([5, 6], 5), randnGrad([2, 3, 3], 6), randnGrad([2, 3, 3], 7), randnGrad([2, 3, 3], 8)],
    });
  });

  it("rejects mismatched shapes and dtypes, naming the part", () => {
    const x = Tensor.zeros([4, 6]);
    assert.throws(() => ops.headwiseLinear(x, Tensor.zeros([3, 2, 3])), /ops\.headwiseLinearConcat: parts\[0\]\.x has shape \[4, 6\], expected \[\.\.\., NB\*I\] = \[\.\.\., 9\]/);
    assert.throws(() => ops.headwiseLinearConcat([{ x, weight: Tensor.zeros([2, 2, 3]) }, { x: Tensor.zeros([5, 6]), weight: Tensor.zeros([2, 2, 3]) }]), /parts\[1\]\.x has shape \[5, 6\]/);
    assert.throws(() => ops.headwiseLinear(x.to("int32"), Tensor.zeros([2, 2, 3])), TypeError);
    assert.throws(() => ops.headwiseLinear(x, Tensor.zeros([2, 2, 3]), Tensor.zeros([3])), /bias has shape \[3\]/);
  });
});
