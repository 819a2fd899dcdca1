// Depthwise causal conv1d, the reference's CausalConv1d (XLSTM_SPEC §5.2), ops layer; kernels in
// csrc/kernels/conv1d.cc. One tape entry with gradients for x, weight and bias.
import { requireSameDevice } from "./cuda";
import { causalConv1dCuda } from "./cuda-misc";
import { record1 } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";
import { floatStorage } from "./args";


/**
 * Depthwise causal convolution over time, channel by channel (torch Conv1d with groups = F and K-1 zeros of left
 * padding): `y[b, t, f] = bias[f] + sum_j weight[f, 0, j] * x[b, t - (K-1) + j, f]`, so `weight[f, 0, K-1]` multiplies
 * the current step and no output sees the future.
 * @param x float32 [B, S, F]
 * @param weight float32 [F, 1, K] (the reference's `conv.weight`; [F, K] is accepted too)
 * @param bias float32 [F] or null
 * @returns float32 [B, S, F]
 * @throws TypeError for non-float32 tensors; RangeError for shapes that do not fit together (named in the message)
 * @example ops.causalConv1d(x, conv.weight, conv.bias)  // x [2, 16, 128], weight [128, 1, 4]
 */
export function causalConv1d(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = "ops.causalConv1d";
  const xs = floatStorage(op, "x", x);
  const ws = floatStorage(op, "weight", weight);
  if (x.ndim !== 3) throw shapeError(`${op}: x`, x.shape, "[B, S, F]");
  const [b, s, f] = x.shape;
  if (f < 1) throw shapeError(`${op}: x`, x.shape, "[B, S, F] with F >= 1");
  const okWeight =
    (weight.ndim === 3 && weight.shape[0] === f && weight.shape[1] === 1 && weight.shape[2] >= 1) ||
    (weight.ndim === 2 && weight.shape[0] === f && weight.shape[1] >= 1);
  if (!okWeight) throw shapeError(`${op}: weight`, weight.shape, `[F, 1, K] with F = ${f} (x has shape ${formatShape(x.shape)})`);
  const k = weight.shape[weight.ndim - 1];
  let bs: Float32Array | null = null;
  if (bias != null) {
    bs = floatStorage(op, "bias", bias);
    if (bias.ndim !== 1 || bias.shape[0] !== f) throw shapeError(`${op}: bias`, bias.shape, `[F] = [${f}]`);
  }
  requireSameDevice(op, [["x", x], ["weight", weight], ["bias", bias]]);
  if (x.device === "cuda") return causalConv1dCuda(x, weight, bias ?? null, b, s, f, k);
  const out = Tensor._uninit(x.shape);  // the kernels write every output and gradient element with =
  native.causalConv1dForward(out.data as Float32Array, xs, ws, bs, b, s, f, k);
  return record1("causalConv1d", [x, weight, bias], out, (g) => {
    const gx = x.requiresGrad ? Tensor._uninit(x.shape) : null;
    const gw = weight.requiresGrad ? Tensor._uninit(weight.shape) : null;
    const gb = bias?.requiresGrad ? Tensor._uninit(bias.shape) : null;
    native.causalConv1dBackward(
      gx ? (gx.data as Float32Array) : null,
      gw ? (gw.data as Float32Array) : null,
      gb ? (gb.data as Float32Array) : null,
      g.f32("causalConv1d backward"),
      xs,
      ws,
      b,
      s,
      f,
      k,
    );
    return [gx, gw, gb];
  });
}
