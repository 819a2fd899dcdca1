// The CUDA side of the nn ops (ops layer): softmax / log-softmax, fused cross-entropy, layer norm and embedding for
// tensors on device "cuda", over csrc/binding/cuda_ops_nn.cc (cuda/softmax.cu, norm.cu, embedding.cu). Same tape
// entries and gradients as their CPU forms. Integer inputs (targets, indices) are checked against their range on
// the host, where they usually come from (CUDA ones are read back first), and uploaded checked.
import { record1 } from "../autograd";
import { native } from "../native";
import { Tensor } from "../tensor";
import { ones, reduceToShapeCuda } from "./cuda";

/** ops.softmax / ops.logSoftmax for a CUDA tensor viewed as [rows, cols]. */
export function softmaxCuda(name: string, log: boolean, x: Tensor, rows: number, cols: number): Tensor {
  const what = `ops.${name}`;
  const out = Tensor._empty(x.shape);
  native.cudaSoftmaxDev(log, x._buffer(what), out._buffer(what), rows, cols);
  return record1(name, [x], out, (g) => {
    const gx = Tensor._empty(x.shape);
    native.cudaSoftmaxBackwardDev(log, out._buffer(what), g._buffer(what), gx._buffer(what), rows, cols);
    return [gx];
  });
}

/**
 * Integer ids as a checked CUDA int tensor: every value in [0, limit) or equal to `allowed` (ignoreIndex); RangeError
 * naming the first bad value and its flat position. Returns the tensor and how many values are not `allowed`.
 */
export function checkedIds(op: string, name: string, ids: Tensor, limit: number, allowed: number | null): { dev: Tensor; counted: number } {
  // ids uploaded from the host carry their range: when it lies inside [0, limit) (and cannot hold `allowed`), nothing
  // is read back from the GPU (a read waits for every queued kernel)
  const r = ids._intRange();
  if (r && r.min >= 0 && r.max < limit && (allowed === null || allowed < r.min || allowed > r.max)) return { dev: ids, counted: ids.numel };
  const host = ids.device === "cpu" ? ids : ids.cpu();
  const d = host.data as Int32Array | BigInt64Array;
  let counted = 0;
  for (let j = 0; j < d.length; ++j) {
    const id = Number(d[j]);
    if (allowed !== null && id === allowed) continue;
    if (!(id >= 0 && id < limit)) throw new RangeError(`${op}: ${name} holds ${d[j]} at flat position ${j}, outside [0, ${limit})`);
    ++counted;
  }
  return { dev: ids.device === "cuda" ? ids : host.to("cuda"), counted };
}

/** ops.crossEntropy for CUDA logits [n, v] (targets on either device). */
export function crossEntropyCuda(logits: Tensor, targets: Tensor, n: number, v: number, lead: number[], reduction: "mean" | "sum" | "none", ignoreIndex: number): Tensor {
  const op = "ops.crossEntropy";
  const { dev: t, counted } = checkedIds(op, "targets", targets, v, ignoreIndex);
  const i64 = t.dtype === "int64";
  const loss = Tensor._empty(lead), rowMax = Tensor._empty([n]), logSum = Tensor._empty([n]), count = Tensor._empty([1], "int64");
  native.cudaCrossEntropyDev(loss._buffer(op), rowMax._buffer(op), logSum._buffer(op), count._buffer(op), logits._buffer(op), t._buffer(op), i64, n, v, ignoreIndex);
  count.dispose();
  let out = loss;
  if (reduction !== "none") {
    if (reduction === "mean" && counted === 0) out = Tensor.full([], NaN, { device: "cuda" });  // 0 / 0, as on the CPU
    else {
      out = reduceToShapeCuda(loss._viewAs([n]), []);
      if (reduction === "mean") native.cudaUnaryDev("affine", out._buffer(op), out._buffer(op), 1, 1 / counted, 0);
    }
    loss.dispose();
  }
  return record1("crossEntropy", [logits, targets], out, (g) => {
    let gRow = g;
    if (reduction !== "none") {
      gRow = Tensor._empty([n]);
      native.cudaBinaryDev("mul", ones(n)._buffer(op), [n], g._buffer(op), [], gRow._buffer(op));
      // (every row ignored: their gradient rows are 0 whatever the factor)
      if (reduction === "mean") native.cudaUnaryDev("affine", gRow._buffer(op), gRow._buffer(op), n, counted ? 1 / counted : 0, 0);
    }
    const gx = Tensor._empty(logits.shape);
    native.cudaCrossEntropyBackwardDev(gx._buffer(op), logits._buffer(op), rowMax._buffer(op), logSum._buffer(op), t._buffer(op), i64, gRow._buffer(op), n, v, ignoreIndex);
    if (gRow !== g) gRow.dispose();
    return [gx, null];
  });
}

/** ops.layerNorm / ops.multiHeadLayerNorm for a CUDA x viewed as [rows, groups, dim]. */
export function normCuda(name: string, x: Tensor, weight: Tensor | null, bias: Tensor | null, rows: number, groups: number, dim: number, eps: number, residual: boolean): Tensor {
  const what = `ops.${name}`;
  const out = Tensor._empty(x.shape);
  const mean = Tensor._empty([rows * groups]), rstd = Tensor._empty([rows * groups]);
  native.cudaLayerNormDev(out._buffer(what), mean._buffer(what), rstd._buffer(what), x._buffer(what), weight?._buffer(what) ?? null, bias?._buffer(what) ?? null, rows, groups, dim, eps, residual);
  return record1(name, [x, weight, bias], out, (g) => {
    const gx = Tensor._empty(x.shape);
    const gw = weight?.requiresGrad ? Tensor._empty(weight.shape) : null;
    const gb = bias?.requiresGrad ? Tensor._empty(bias.shape) : null;
    native.cudaLayerNormBackwardDev(gx._buffer(what), gw?._buffer(what) ?? null, gb?._buffer(what) ?? null, g._buffer(what), x._buffer(what), mean._buffer(what), rstd._buffer(what), weight?._buffer(what) ?? null, rows, groups, dim, residual);
    return [x.requiresGrad ? gx : null, gw, gb];
  });
}

/** ops.embedding for a CUDA weight [v, e] (indices on either device). */
export function embeddingCuda(indices: Tensor, weight: Tensor): Tensor {
  const op = "ops.embedding";
  const [v, e] = weight.shape;
  const { dev: idx } = checkedIds(op, "indices", indices, v, null);
  const n = indices.numel, i64 = idx.dtype === "int64";
  const out = Tensor._empty([...indices.shape, e]);
  native.cudaEmbeddingDev(out._buffer(op), weight._buffer(op), idx._buffer(op), i64, n, v, e);
  return record1("embedding", [indices, weight], out, (g) => {
    const gw = Tensor._empty(weight.shape);
    native.cudaEmbeddingBackwardDev(gw._buffer(op), g._buffer(op), idx._buffer(op), i64, n, v, e);
    return [null, gw];
  });
}
