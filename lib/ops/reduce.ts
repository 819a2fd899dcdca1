// Differentiable reductions (ops layer): sum, mean, max over any set of dimensions, with keepdim. One tape entry
// each over the native kernels of csrc/kernels/reduce.cc (float64 accumulation; max's gradient goes to the argmax).
import { reduceCuda } from "./cuda-misc";
import type { Binding } from "../../binding";
import { record1 } from "../autograd";
import { native } from "../native";
import { formatShape, normalizeDim } from "../shape";
import { Tensor } from "../tensor";
import { requireTensor } from "./args";

/** Names of the native reductions. */
export type ReduceOp = Parameters<Binding["reduce"]>[0];

/** Dimensions to reduce: one index, a list (negative counts from the end), or undefined for all of them. */
export type Dims = number | readonly number[];

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

/** Sorted, normalised axes; RangeError for out-of-range or repeated ones. A 0-d tensor takes 0 / -1 as no-ops. */
function resolveDims(x: Tensor, dims: Dims | undefined, what: string): number[] {
  const nd = x.ndim;
  if (dims === undefined) return [...Array(nd).keys()];
  const list = typeof dims === "number" ? [dims] : dims;
  if (!Array.isArray(list)) throw new TypeError(`${what}: dims must be a number or an array of numbers, got ${kindOf(dims)}`);
  const out: number[] = [];
  for (const d of list) {
    if (typeof d !== "number") throw new TypeError(`${what}: dims must hold numbers, got ${kindOf(d)}`);
    if (nd === 0) {
      if (d !== 0 && d !== -1) throw new RangeError(`${what}: dim ${d} is out of range for a tensor with 0 dimensions`);
      continue;
    }
    const n = normalizeDim(d, nd, `${what}: dim`);
    if (out.includes(n)) throw new RangeError(`${what}: dims ${formatShape(list)} repeat dimension ${n}`);
    out.push(n);
  }
  return out.sort((a, b) => a - b);
}

function reduceOp(name: string, op: ReduceOp, xIn: Tensor, dims: Dims | undefined, keepdim: boolean): Tensor {
  const what = `ops.${name}`;
  requireTensor(what, "x", xIn, { cuda: true });
  if (!(xIn instanceof Tensor)) throw new TypeError(`${what}: x must be a Tensor, got ${kindOf(xIn)}`);
  const x = xIn;
  if (x.dtype !== "float32") throw new TypeError(`${what}: x must be a float32 tensor, got ${x.dtype}`);
  if (typeof keepdim !== "boolean") throw new TypeError(`${what}: keepdim must be a boolean, got ${kindOf(keepdim)}`);
  const axes = resolveDims(x, dims, what);
  const outShape = keepdim ? x.shape.map((s, d) => (axes.includes(d) ? 1 : s)) : x.shape.filter((_, d) => !axes.includes(d));
  if (op === "max" && axes.some((d) => x.shape[d] === 0) && outShape.every((s) => s > 0))
    throw new RangeError(`${what}: cannot take the max over an empty dimension of shape ${formatShape(x.shape)} (x, dims ${formatShape(axes)})`);
  if (x.device === "cuda") return reduceCuda(name, op, x, axes, outShape);
  const out = Tensor.zeros(outShape);
  const argmax = op === "max" ? new BigInt64Array(out.numel) : null;
  native.reduce(op, x.data as Float32Array, x.shape, axes, out.data as Float32Array, argmax);
  return record1(name, [x], out, (g) => {
    const dx = Tensor.zeros(x.shape);
    native.reduceBackward(op, g.f32(what), x.shape, axes, dx.data as Float32Array, argmax);
    return [dx];
  });
}

/**
 * Sum over `dims` (all dimensions when omitted; [] reduces nothing), accumulated in float64.
 * @throws TypeError for a non-float32 tensor; RangeError for an out-of-range or repeated dim.
 * @example ops.sum(x, -1, true)  // [B, N] -> [B, 1]
 */
export function sum(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return reduceOp("sum", "sum", x, dims, keepdim);
}

/** Mean over `dims` (all dimensions when omitted); NaN for an empty reduction, as torch. */
export function mean(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return reduceOp("mean", "mean", x, dims, keepdim);
}

/**
 * Maximum over `dims` (all dimensions when omitted). NaN propagates; the gradient goes to the first maximum
 * (one element per output, as torch.max(dim) does).
 * @throws RangeError when a reduced dimension is empty.
 */
export function max(x: Tensor, dims?: Dims, keepdim = false): Tensor {
  return reduceOp("max", "max", x, dims, keepdim);
}
