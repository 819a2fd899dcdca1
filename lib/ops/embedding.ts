// Embedding lookup (ops layer; kernels in csrc/kernels/embedding.cc). One tape entry; the gradient flows to the
// weight only (a race-free scatter-add).
import { record1 } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { Tensor } from "../tensor";
import { asOpError, requireTensor } from "./args";
import { embeddingBf16 } from "./bf16";
import { embeddingCuda } from "./cuda-nn";

/**
 * Rows of `weight` picked by integer indices: `out[..., :] = weight[indices[...], :]` (torch.nn.functional.embedding).
 * @param indices int32 or int64 tensor of any shape, values in [0, V)
 * @param weight float32 [V, E], or bfloat16 (inference storage: rows widened to float32, no gradient)
 * @returns float32 tensor [...indices.shape, E]
 * @throws TypeError for non-integer indices or a non-float32 weight; RangeError for a weight that is not 2-D or an
 *   index outside [0, V) (the message names the value and its flat position)
 * @example ops.embedding(Tensor.from([[1, 2]], undefined, { dtype: "int32" }), weight)  // [1, 2, E]
 */
export function embedding(indices: Tensor, weight: Tensor): Tensor {
  const op = "ops.embedding";
  requireTensor(op, "indices", indices, { cuda: true });
  requireTensor(op, "weight", weight, { cuda: true });
  if (!(indices instanceof Tensor)) throw new TypeError(`${op}: indices must be a Tensor, got ${typeof indices}`);
  if (indices.dtype !== "int32" && indices.dtype !== "int64")
    throw new TypeError(`${op}: indices must be an int32 or int64 tensor, got ${indices.dtype}`);
  if (!(weight instanceof Tensor)) throw new TypeError(`${op}: weight must be a Tensor, got ${typeof weight}`);
  if (weight.dtype !== "float32" && weight.dtype !== "bfloat16") throw new TypeError(`${op}: weight must be a float32 (or bfloat16) tensor, got ${weight.dtype}`);
  if (weight.ndim !== 2 || weight.shape[0] < 1 || weight.shape[1] < 1) throw shapeError(`${op}: weight`, weight.shape, "[V, E] with V, E >= 1");
  if (weight.dtype === "bfloat16") return embeddingBf16(indices, weight);
  if (weight.device === "cuda") return embeddingCuda(indices, weight);
  if (indices.device === "cuda") throw new TypeError(`${op}: indices are on cuda but weight is on cpu; move them to one device first`);
  const [v, e] = weight.shape;
  const idx = indices.data as Int32Array | BigInt64Array;
  const out = Tensor._uninit([...indices.shape, e]);  // every row gathered (a bad index throws, out is dropped)
  asOpError(op, () => native.embeddingForward(out.data as Float32Array, weight.data as Float32Array, idx, v, e));
  return record1("embedding", [indices, weight], out, (g) => {
    const gw = Tensor._uninit(weight.shape);  // the kernel zeroes and scatter-adds itself (= overall)
    native.embeddingBackward(gw.data as Float32Array, g.f32("embedding backward"), idx, v, e);
    return [null, gw];
  });
}
