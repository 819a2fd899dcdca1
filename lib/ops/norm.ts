// Layer norm over the last dimension and per-head layer norm (the reference's MultiHeadLayerNorm), ops layer;
// kernels in csrc/kernels/norm.cc. XLSTM_SPEC §5.3 and §5.4. Each op is one tape entry.
import { record1 } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { formatShape } from "../shape";
import { Tensor, zeroedF32 } from "../tensor";
import { floatStorage, optionalNumber, requireOptions } from "./args";
import { requireSameDevice } from "./cuda";
import { normCuda } from "./cuda-nn";

export interface LayerNormOptions {
  /** Added to the (biased) variance. Default 1e-5 (the xLSTM small models; xLSTM Large uses 1e-6). */
  eps?: number;
  /**
   * Scale by `1 + weight` instead of `weight` (the xLSTM reference's LayerNorm / MultiHeadLayerNorm
   * parameterisation: the stored weight starts at 0). Default false (PyTorch's LayerNorm). Ignored without weight.
   */
  residualWeight?: boolean;
}


function checkEps(op: string, eps: number): number {
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) throw new RangeError(`${op}: eps must be a finite number >= 0, got ${eps}`);
  return eps;
}

/** Shared forward + tape entry for both ops: x viewed as [rows, groups, dim], weight/bias [groups * dim]. */
function normOp(
  name: string,
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  rows: number,
  groups: number,
  dim: number,
  eps: number,
  residual: boolean,
): Tensor {
  requireSameDevice(`ops.${name}`, [["x", x], ["weight", weight], ["bias", bias]]);
  if (x.device === "cuda") return normCuda(name, x, weight, bias, rows, groups, dim, eps, residual);
  const xs = x.data as Float32Array;
  const w = weight ? (weight.data as Float32Array) : null;
  const b = bias ? (bias.data as Float32Array) : null;
  const out = Tensor._uninit(x.shape);  // forward and backward write every output element (gradients with =)
  const mean = zeroedF32(rows * groups), rstd = zeroedF32(rows * groups);
  native.layerNormForward(out.data as Float32Array, mean, rstd, xs, w, b, rows, groups, dim, eps, residual);
  return record1(name, [x, weight, bias], out, (g) => {
    const gx = Tensor._uninit(x.shape);
    const gw = weight?.requiresGrad ? Tensor._uninit(weight.shape) : null;
    const gb = bias?.requiresGrad ? Tensor._uninit(bias.shape) : null;
    native.layerNormBackward(
      gx.data as Float32Array,
      gw ? (gw.data as Float32Array) : null,
      gb ? (gb.data as Float32Array) : null,
      g.f32(`${name} backward`),
      xs,
      mean,
      rstd,
      w,
      rows,
      groups,
      dim,
      residual,
    );
    return [x.requiresGrad ? gx : null, gw, gb];
  });
}

/**
 * Layer norm over the last dimension: `y = (x - mean) / sqrt(var + eps) * scale + bias`, with the biased variance
 * and `scale = weight`, or `1 + weight` with `residualWeight` (XLSTM_SPEC §5.3), or 1 without a weight.
 * @param x float32 tensor [..., D]
 * @param weight float32 [D] or null (no scale)
 * @param bias float32 [D] or null (no shift; the xLSTM models use none)
 * @throws TypeError for a non-float32 tensor; RangeError for shapes that do not match x's last dimension or a bad eps
 * @example ops.layerNorm(x, w, null, { residualWeight: true })  // the xLSTM block norm
 */
export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, options: LayerNormOptions = {}): Tensor {
  const op = "ops.layerNorm";
  floatStorage(op, "x", x);
  optionalNumber(op, "eps", requireOptions(op, "options", options).eps);
  if (x.ndim < 1) throw shapeError(`${op}: x`, x.shape, "[..., D] with at least 1 dimension");
  const d = x.shape[x.ndim - 1];
  if (d < 1) throw shapeError(`${op}: x`, x.shape, "[..., D] with D >= 1");
  for (const [t, nm] of [[weight, "weight"], [bias, "bias"]] as const) {
    if (t == null) continue;
    floatStorage(op, nm, t);
    if (t.ndim !== 1 || t.shape[0] !== d) throw shapeError(`${op}: ${nm}`, t.shape, `[D] = [${d}]`);
  }
  const eps = checkEps(op, options.eps ?? 1e-5);
  return normOp("layerNorm", x, weight, bias, x.numel / d, 1, d, eps, !!options.residualWeight);
}

/**
 * Per-head layer norm (the reference's MultiHeadLayerNorm, a group norm with NH groups, XLSTM_SPEC §5.4): every
 * head's DH-vector is normalised on its own, then scaled by `weight` (or `1 + weight` with `residualWeight`) and
 * shifted by `bias`, both of length NH*DH indexed head-major.
 * @param x float32 tensor [..., NH, DH], e.g. [B, S, NH, DH] or [B*S, NH, DH]
 * @param weight float32 [NH * DH] or null
 * @param bias float32 [NH * DH] or null
 * @throws TypeError for a non-float32 tensor; RangeError for x with fewer than 2 dimensions, weight/bias of the wrong
 *   size, or a bad eps
 * @example ops.multiHeadLayerNorm(h.reshape(B, S, NH, DH), w, null, { residualWeight: true })  // eps 1e-5
 */
export function multiHeadLayerNorm(
  x: Tensor,
  weight: Tensor | null = null,
  bias: Tensor | null = null,
  options: LayerNormOptions = {},
): Tensor {
  const op = "ops.multiHeadLayerNorm";
  floatStorage(op, "x", x);
  optionalNumber(op, "eps", requireOptions(op, "options", options).eps);
  if (x.ndim < 2) throw shapeError(`${op}: x`, x.shape, "[..., NH, DH] with at least 2 dimensions");
  const nh = x.shape[x.ndim - 2], dh = x.shape[x.ndim - 1];
  if (nh < 1 || dh < 1) throw shapeError(`${op}: x`, x.shape, "[..., NH, DH] with NH, DH >= 1");
  for (const [t, nm] of [[weight, "weight"], [bias, "bias"]] as const) {
    if (t == null) continue;
    floatStorage(op, nm, t);
    if (t.ndim !== 1 || t.shape[0] !== nh * dh)
      throw shapeError(`${op}: ${nm}`, t.shape, `[NH * DH] = [${nh * dh}] for x of shape ${formatShape(x.shape)}`);
  }
  const eps = checkEps(op, options.eps ?? 1e-5);
  return normOp("multiHeadLayerNorm", x, weight, bias, x.numel / (nh * dh), nh, dh, eps, !!options.residualWeight);
}
