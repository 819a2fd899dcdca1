// Block-diagonal linear map, the reference's LinearHeadwiseExpand (ops layer; XLSTM_SPEC §5.1; kernel in
// csrc/kernels/headwise.h): one tape entry, strided GEMMs in both directions.
import { record1 } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { Tensor } from "../tensor";

/**
 * y[..., hb*O + o] = Σ_d x[..., hb*I + d] · weight[hb, o, d] (+ bias[hb*O + o]).
 * @param x float32 [..., NB*I]
 * @param weight float32 [NB, O, I]
 * @param bias float32 [NB*O] or null
 * @returns [..., NB*O]
 * @throws TypeError for non-float32 tensors; RangeError for inconsistent shapes
 */
export function headwiseLinear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = "ops.headwiseLinear";
  for (const [n, t] of [["x", x], ["weight", weight], ["bias", bias]] as const)
    if (t && t.dtype !== "float32") throw new TypeError(`${op}: ${n} must be float32, got ${t.dtype}`);
  if (weight.ndim !== 3) throw shapeError(`${op}: weight`, weight.shape, "[NB, O, I]");
  const [NB, O, I] = weight.shape;
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== NB * I) throw shapeError(`${op}: x`, x.shape, `[..., NB*I] = [..., ${NB * I}]`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== NB * O)) throw shapeError(`${op}: bias`, bias.shape, `[NB*O] = [${NB * O}]`);
  const rows = x.numel / (NB * I);
  const outShape = [...x.shape.slice(0, -1), NB * O];
  const y = Tensor.zeros(outShape);
  native.headwiseLinearForward(y.data as Float32Array, x.f32(), weight.f32(), bias ? bias.f32() : null, rows, NB, I, O);
  return record1("headwiseLinear", [x, weight, bias], y, (g) => {
    const dx = x.requiresGrad ? Tensor.zeros(x.shape) : null;
    const dW = weight.requiresGrad ? Tensor.zeros(weight.shape) : null;
    const db = bias && bias.requiresGrad ? Tensor.zeros(bias.shape) : null;
    native.headwiseLinearBackward(dx ? (dx.data as Float32Array) : null, dW ? (dW.data as Float32Array) : null, db ? (db.data as Float32Array) : null, g.f32(), x.f32(), weight.f32(), rows, NB, I, O);
    return [dx, dW, db];
  });
}
