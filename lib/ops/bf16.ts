// Linear maps and embedding lookups whose weight is stored as bfloat16 (ops layer): the storage xLSTM Large
// checkpoints ship, at half the memory and half the bytes read per decoded token. Inference storage: a bfloat16
// tensor never requires grad, so the tape carries gradients to x and the bias only. Activations, products and sums
// stay float32 (the weight widened exactly), on the CPU through csrc/kernels/bf16.h and on the GPU through its twin
// cuda/bf16.cu (a GEMV per output for up to 8 rows, widen + GEMM above). Under cuda.autocast the CUDA products take
// x rounded to bfloat16 (the tensor-core path), as every CUDA matrix product does there.
import { record1 } from "../autograd";
import { autocastActive } from "../device";
import { native } from "../native";
import { Tensor, zeroedF32 } from "../tensor";
import { ones } from "./cuda";
import { checkedIds } from "./cuda-nn";

function floatBias(op: string, bias: Tensor | null): void {
  if (bias && bias.dtype !== "float32") throw new TypeError(`${op}: bias must be a float32 tensor, got ${bias.dtype}`);
}

/** The weight [out, in] widened to float32 on its device (for the gradient with respect to x). */
function widened(op: string, weight: Tensor): Tensor {
  if (weight.device === "cpu") {
    const w = new Float32Array(weight.numel);
    native.bf16ToF32(w, weight.data as Uint16Array);
    return new Tensor(w, weight.shape);
  }
  const w = Tensor._empty(weight.shape);
  native.cudaBf16ToF32Dev(w._buffer(op), weight._buffer(op), weight.numel);
  return w;
}

/**
 * ops.linear with a bfloat16 weight: y = x Wᵀ (+ bias) over `rows` rows (shapes and devices checked by the caller).
 * Differentiable with respect to x and bias.
 */
export function linearBf16(x: Tensor, weight: Tensor, bias: Tensor | null, rows: number, inF: number, outF: number): Tensor {
  const op = "ops.linear";
  floatBias(op, bias);
  const shape = [...x.shape.slice(0, -1), outF];
  const cuda = x.device === "cuda";
  let out: Tensor;
  if (cuda) {
    out = Tensor._empty(shape);
    native.cudaBf16LinearDev(out._buffer(op), x._buffer(op), weight._buffer(op), bias ? bias._buffer(op) : null, rows, inF, outF, autocastActive());
  } else {
    const y = zeroedF32(rows * outF);
    native.bf16Linear(y, x.f32(), weight.data as Uint16Array, bias ? bias.f32() : null, rows, inF, outF, false);
    out = new Tensor(y, shape);
  }
  return record1("linear", [x, weight, bias], out, (g) => {
    const gx = x.requiresGrad ? widenedProduct(op, g, widened(op, weight), rows, inF, outF, x.shape) : null;
    const gb = bias?.requiresGrad ? rowSums(op, g, rows, outF, bias.shape) : null;
    return [gx, null, gb];
  });
}

/** g [rows, out] · W [out, in] (float32 W). */
function widenedProduct(op: string, g: Tensor, w: Tensor, rows: number, inF: number, outF: number, shape: readonly number[]): Tensor {
  if (g.device === "cpu") {
    const gx = zeroedF32(rows * inF);
    native.gemm(false, false, rows, inF, outF, 1, g.f32(op), w.f32(), 0, gx);
    return new Tensor(gx, shape);
  }
  const gx = Tensor._empty(shape);
  native.cudaGemmDev(false, false, 1, rows, inF, outF, 1, g._buffer(op), 0, outF, 0, w._buffer(op), 0, inF, 0, 0, gx._buffer(op), 0, inF, 0, autocastActive());
  w.dispose();
  return gx;
}

/** Σ over rows of g [rows, out] (the bias gradient). */
function rowSums(op: string, g: Tensor, rows: number, outF: number, shape: readonly number[]): Tensor {
  if (g.device === "cpu") {
    const G = g.f32(op), s = new Float64Array(outF);
    for (let r = 0; r < rows; ++r) for (let o = 0; o < outF; ++o) s[o] += G[r * outF + o];
    return new Tensor(Float32Array.from(s), shape);
  }
  const gb = Tensor._empty(shape);
  native.cudaGemmDev(true, false, 1, outF, 1, rows, 1, g._buffer(op), 0, outF, 0, ones(rows)._buffer(op), 0, 1, 0, 0, gb._buffer(op), 0, 1, 0, false);
  return gb;
}

/** ops.embedding with a bfloat16 table [V, E]: rows widened to float32 (no gradient: the table is inference storage). */
export function embeddingBf16(indices: Tensor, weight: Tensor): Tensor {
  const op = "ops.embedding";
  const [v, e] = weight.shape;
  const shape = [...indices.shape, e];
  if (weight.device === "cuda") {
    const { dev: idx } = checkedIds(op, "indices", indices, v, null);
    const out = Tensor._empty(shape);
    native.cudaBf16EmbeddingDev(out._buffer(op), weight._buffer(op), idx._buffer(op), idx.dtype === "int64", indices.numel, v, e);
    return out;
  }
  if (indices.device === "cuda") throw new TypeError(`${op}: indices are on cuda but weight is on cpu; move them to one device first`);
  const ids = indices.data as Int32Array | BigInt64Array, w = weight.data as Uint16Array;
  const out = new Float32Array(ids.length * e);
  for (let j = 0; j < ids.length; ++j) {
    const id = Number(ids[j]);
    if (!(id >= 0 && id < v)) throw new RangeError(`${op}: indices holds ${ids[j]} at flat position ${j}, outside [0, ${v})`);
    native.bf16ToF32(out.subarray(j * e, (j + 1) * e), w.subarray(id * e, (id + 1) * e));
  }
  return new Tensor(out, shape);
}
