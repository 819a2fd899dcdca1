// sLSTM parameter layouts (XLSTM_SPEC §2.2). The reference stores `_recurrent_kernel_` and `_bias_` under the
// same keys in two layouts; xlstm computes in the "cuda" layout:
//   vanilla: kernel [NH, 4*DH, DH], value[h, g*DH + k, j] = R[h, j, g, k]; bias (gate, head, unit)
//   cuda:    kernel [NH, DH, 4*DH], value[h, j, g*DH + k] = R[h, j, g, k]; bias (head, gate, unit)
// The kernel's shape tells the layouts apart (dims 1 and 2 are swapped); the bias follows its kernel.
// Internally: kernel in the cuda layout, bias in (gate, head, unit) order (the order of the gate inputs x).
import { formatShape } from "../shape";
import { Tensor } from "../tensor";

export type SlstmLayout = "vanilla" | "cuda";

/**
 * Which layout a stored `_recurrent_kernel_` has, from its shape and the head count: vanilla [NH, 4DH, DH],
 * cuda [NH, DH, 4DH]. Throws a RangeError for any other shape.
 */
export function detectSlstmLayout(kernelShape: readonly number[], numHeads?: number): SlstmLayout {
  const [nh, a, b] = kernelShape;
  if (kernelShape.length !== 3 || (numHeads !== undefined && nh !== numHeads))
    throw new RangeError(`sLSTM _recurrent_kernel_ has shape ${formatShape(kernelShape)}, expected [NH, 4*DH, DH] or [NH, DH, 4*DH]${numHeads ? ` with NH = ${numHeads}` : ""}`);
  if (a === 4 * b) return "vanilla";
  if (b === 4 * a) return "cuda";
  throw new RangeError(`sLSTM _recurrent_kernel_ has shape ${formatShape(kernelShape)}, expected [NH, 4*DH, DH] (vanilla) or [NH, DH, 4*DH] (cuda)`);
}

/** Vanilla kernel [NH, 4DH, DH] -> internal/cuda [NH, DH, 4DH]. */
export function kernelVanillaToCuda(k: Float32Array, NH: number, DH: number): Float32Array {
  const out = new Float32Array(k.length);
  const G = 4 * DH;
  for (let h = 0; h < NH; ++h)
    for (let gk = 0; gk < G; ++gk)
      for (let j = 0; j < DH; ++j) out[(h * DH + j) * G + gk] = k[(h * G + gk) * DH + j];
  return out;
}

/** Internal/cuda kernel [NH, DH, 4DH] -> vanilla [NH, 4DH, DH]. */
export function kernelCudaToVanilla(k: Float32Array, NH: number, DH: number): Float32Array {
  const out = new Float32Array(k.length);
  const G = 4 * DH;
  for (let h = 0; h < NH; ++h)
    for (let j = 0; j < DH; ++j)
      for (let gk = 0; gk < G; ++gk) out[(h * G + gk) * DH + j] = k[(h * DH + j) * G + gk];
  return out;
}

/** Bias in (head, gate, unit) order (cuda) -> (gate, head, unit) (vanilla and internal). */
export function biasCudaToVanilla(b: Float32Array, NH: number, DH: number): Float32Array {
  const out = new Float32Array(b.length);
  for (let h = 0; h < NH; ++h) for (let g = 0; g < 4; ++g) for (let k = 0; k < DH; ++k) out[(g * NH + h) * DH + k] = b[(h * 4 + g) * DH + k];
  return out;
}

/** Bias in (gate, head, unit) order -> (head, gate, unit) (cuda). */
export function biasVanillaToCuda(b: Float32Array, NH: number, DH: number): Float32Array {
  const out = new Float32Array(b.length);
  for (let h = 0; h < NH; ++h) for (let g = 0; g < 4; ++g) for (let k = 0; k < DH; ++k) out[(h * 4 + g) * DH + k] = b[(g * NH + h) * DH + k];
  return out;
}

/**
 * A stored (kernel, bias) pair in either layout -> the internal layout: kernel [NH, DH, 4DH], bias (gate, head,
 * unit). The bias layout follows the kernel's (their shapes cannot tell the bias layouts apart).
 */
export function slstmParamsToInternal(kernel: Tensor, bias: Tensor, numHeads: number): { kernel: Tensor; bias: Tensor; layout: SlstmLayout } {
  const layout = detectSlstmLayout(kernel.shape, numHeads);
  const NH = numHeads;
  const DH = layout === "vanilla" ? kernel.shape[2] : kernel.shape[1];
  if (bias.ndim !== 1 || bias.shape[0] !== 4 * NH * DH)
    throw new RangeError(`sLSTM _bias_ has shape ${formatShape(bias.shape)}, expected [4*NH*DH] = [${4 * NH * DH}]`);
  const k = kernel.f32("sLSTM _recurrent_kernel_"), b = bias.f32("sLSTM _bias_");
  return layout === "vanilla"
    ? { kernel: Tensor.from(kernelVanillaToCuda(k, NH, DH), [NH, DH, 4 * DH]), bias: Tensor.from(b.slice(), [4 * NH * DH]), layout }
    : { kernel: Tensor.from(k.slice(), [NH, DH, 4 * DH]), bias: Tensor.from(biasCudaToVanilla(b, NH, DH), [4 * NH * DH]), layout };
}

/** Internal (kernel, bias) -> the stored form in `layout` (xlstm writes "cuda" by default, as the reference's default backend). */
export function slstmParamsFromInternal(kernel: Tensor, bias: Tensor, layout: SlstmLayout = "cuda"): { kernel: Tensor; bias: Tensor } {
  const [NH, DH] = kernel.shape;
  const k = kernel.f32(), b = bias.f32();
  return layout === "vanilla"
    ? { kernel: Tensor.from(kernelCudaToVanilla(k, NH, DH), [NH, 4 * DH, DH]), bias: Tensor.from(b.slice(), [4 * NH * DH]) }
    : { kernel: Tensor.from(k.slice(), [NH, DH, 4 * DH]), bias: Tensor.from(biasVanillaToCuda(b, NH, DH), [4 * NH * DH]) };
}
