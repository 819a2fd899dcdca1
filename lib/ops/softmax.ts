// Softmax, log-softmax and fused cross-entropy over the last dimension (ops layer; kernels in
// csrc/kernels/softmax.cc). Each op is one tape entry.
import { record1 } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { formatShape, sameShape } from "../shape";
import { Tensor, zeroedF32 } from "../tensor";
import { asOpError, floatStorage, optionalNumber, optionalString, requireOptions, requireTensor } from "./args";
import { requireSameDevice } from "./cuda";
import { crossEntropyCuda, softmaxCuda } from "./cuda-nn";


/** [rows, cols] view of a tensor reduced over its last dimension. */
function rowsCols(x: Tensor, op: string): [number, number] {
  if (x.ndim < 1) throw new RangeError(`${op}: x has shape ${formatShape(x.shape)}, expected at least 1 dimension`);
  const cols = x.shape[x.ndim - 1];
  return [x.shape.slice(0, -1).reduce((a, b) => a * b, 1), cols];
}

/**
 * Softmax over the last dimension: `y = exp(x - max) / sum(exp(x - max))` per row (numerically stable).
 * @param x float32 tensor of shape [..., C]
 * @returns float32 tensor of the same shape; each row sums to 1
 * @throws TypeError when x is not float32; RangeError for a 0-d tensor
 * @example ops.softmax(Tensor.from([[1, 2, 3]]))  // [[0.090, 0.245, 0.665]]
 */
export function softmax(x: Tensor): Tensor {
  const xs = floatStorage("ops.softmax", "x", x);
  const [rows, cols] = rowsCols(x, "ops.softmax");
  if (x.device === "cuda") return softmaxCuda("softmax", false, x, rows, cols);
  const out = Tensor.zeros(x.shape);
  const y = out.data as Float32Array;
  native.softmaxForward(y, xs, rows, cols);
  return record1("softmax", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape);
    native.softmaxBackward(gx.data as Float32Array, y, g.f32("softmax backward"), rows, cols);
    return [gx];
  });
}

/**
 * Log-softmax over the last dimension: `y = (x - max) - log(sum(exp(x - max)))` per row (numerically stable).
 * @param x float32 tensor of shape [..., C]
 * @returns float32 tensor of the same shape (log-probabilities)
 * @throws TypeError when x is not float32; RangeError for a 0-d tensor
 * @example ops.logSoftmax(Tensor.from([[0, 0]]))  // [[-0.693, -0.693]]
 */
export function logSoftmax(x: Tensor): Tensor {
  const xs = floatStorage("ops.logSoftmax", "x", x);
  const [rows, cols] = rowsCols(x, "ops.logSoftmax");
  if (x.device === "cuda") return softmaxCuda("logSoftmax", true, x, rows, cols);
  const out = Tensor.zeros(x.shape);
  const y = out.data as Float32Array;
  native.logSoftmaxForward(y, xs, rows, cols);
  return record1("logSoftmax", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape);
    native.logSoftmaxBackward(gx.data as Float32Array, y, g.f32("logSoftmax backward"), rows, cols);
    return [gx];
  });
}

export interface CrossEntropyOptions {
  /**
   * How per-row losses are combined: "mean" (default) averages over the rows whose target is not `ignoreIndex`
   * (NaN when every row is ignored, as in PyTorch), "sum" adds them, "none" returns them with the targets' shape
   * (0 for ignored rows).
   */
  reduction?: "mean" | "sum" | "none";
  /** Target value whose rows contribute neither loss nor gradient. Default -100 (PyTorch's default). */
  ignoreIndex?: number;
}

/**
 * Cross-entropy of logits against integer class targets, computed as one fused log-softmax + NLL pass that is
 * stable for large logits (|x| ~ 1e4); its backward is `(softmax(logits) - onehot(target)) * g` (divided by the
 * number of non-ignored rows for "mean").
 * @param logits float32 tensor [..., V] (usually [N, V] or [B, S, V])
 * @param targets int32 or int64 tensor with the leading shape of `logits` ([N] or [B, S]), values in [0, V) or
 *   `ignoreIndex`
 * @returns a scalar for "mean"/"sum", a float32 tensor of the targets' shape for "none"
 * @throws TypeError for a non-float32 `logits` or non-integer `targets`; RangeError for mismatched shapes, an
 *   unknown reduction, or a target outside [0, V) (the message names the value and its position)
 * @example ops.crossEntropy(logits, Tensor.from([3, 0], [2], { dtype: "int32" }))  // mean loss, a scalar
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = "ops.crossEntropy";
  const xs = floatStorage(op, "logits", logits);
  requireTensor(op, "targets", targets, { cuda: true });
  requireOptions(op, "options", options);
  optionalNumber(op, "ignoreIndex", options.ignoreIndex);
  optionalString(op, "reduction", options.reduction);
  if (!(targets instanceof Tensor)) throw new TypeError(`${op}: targets must be a Tensor, got ${typeof targets}`);
  if (targets.dtype !== "int32" && targets.dtype !== "int64")
    throw new TypeError(`${op}: targets must be an int32 or int64 tensor, got ${targets.dtype}`);
  const reduction = options.reduction ?? "mean";
  if (reduction !== "mean" && reduction !== "sum" && reduction !== "none")
    throw new RangeError(`${op}: reduction must be "mean", "sum" or "none", got ${String(reduction)}`);
  const ignoreIndex = options.ignoreIndex ?? -100;
  if (!Number.isSafeInteger(ignoreIndex)) throw new RangeError(`${op}: ignoreIndex must be an integer, got ${ignoreIndex}`);
  if (logits.ndim < 1) throw shapeError(`${op}: logits`, logits.shape, "[..., V] with at least 1 dimension");
  const [n, v] = rowsCols(logits, op);
  if (v < 1) throw shapeError(`${op}: logits`, logits.shape, "[..., V] with V >= 1");
  const lead = logits.shape.slice(0, -1);
  if (!sameShape(targets.shape, lead))
    throw shapeError(`${op}: targets`, targets.shape, `the leading shape of logits ${formatShape(logits.shape)} = ${formatShape(lead)}`);
  if (logits.device === "cuda") return crossEntropyCuda(logits, targets, n, v, lead, reduction, ignoreIndex);
  requireSameDevice(op, [["logits", logits], ["targets", targets]]);
  const t = targets.data as Int32Array | BigInt64Array;
  const loss = zeroedF32(n), rowMax = zeroedF32(n), logSum = zeroedF32(n);
  const count = asOpError(op, () => native.crossEntropyForward(loss, rowMax, logSum, xs, t, n, v, ignoreIndex));
  let out: Tensor;
  if (reduction === "none") out = new Tensor(loss, lead);
  else {
    let s = 0;
    for (let i = 0; i < n; ++i) s += loss[i];
    out = Tensor.scalar(reduction === "mean" ? s / count : s);
  }
  return record1("crossEntropy", [logits, targets], out, (g) => {
    let gRow: Float32Array;
    if (reduction === "none") gRow = g.f32("crossEntropy backward");
    else gRow = zeroedF32(n).fill(reduction === "mean" ? g.item() / count : g.item());
    const gx = Tensor._uninit(logits.shape);  // written in full (ignored rows with 0)
    native.crossEntropyBackward(gx.data as Float32Array, xs, rowMax, logSum, t, gRow, n, v, ignoreIndex);
    return [gx, null];
  });
}
