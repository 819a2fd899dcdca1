// Differentiable shape ops (ops layer): reshape (shares storage), permute/transpose, slice and cat (copy).
// Work on any dtype; gradients flow for float32.
import { requireSameDevice } from "./cuda";
import { catCuda, sliceCuda } from "./cuda-layout";
import { permuteCuda } from "./cuda-misc";
import { record1 } from "../autograd";
import { native } from "../native";
import { formatShape, inferShape, normalizeDim, numel } from "../shape";
import { Storage, Tensor } from "../tensor";
import { requireNumber, requireNumberArray, requireTensor } from "./args";

function emptyLike(t: Tensor, shape: readonly number[]): Tensor {
  return Tensor.zeros(shape, { dtype: t.dtype });
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  requireTensor("ops.reshape", "x", x, { cuda: true });
  requireNumberArray("ops.reshape", "shape", shape);
  // every RangeError of inferShape (numel's overflow included) comes out prefixed with this context
  const s = inferShape(shape, x.numel, () => `ops.reshape: shape (x has shape ${formatShape(x.shape)})`);
  const out = x._viewAs(s);
  return record1("reshape", [x], out, (g) => [g._viewAs(x.shape)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  requireTensor("ops.permute", "x", x, { cuda: true });
  requireNumberArray("ops.permute", "dims", dims);
  const nd = x.ndim;
  if (dims.length !== nd) throw new RangeError(`permute: got ${dims.length} dims ${formatShape(dims)} for a tensor with ${nd} dimensions`);
  const p = dims.map((d, i) => normalizeDim(d, nd, `ops.permute: dims[${i}] =`));
  if (new Set(p).size !== nd) throw new RangeError(`permute: dims ${formatShape(dims)} repeat a dimension`);
  const inverse = new Array<number>(nd);
  p.forEach((d, i) => (inverse[d] = i));
  if (x.device === "cuda") return permuteCuda(x, p, inverse, permute);
  const out = emptyLike(x, p.map((d) => x.shape[d]));
  native.permute(out.data, x.data, x.shape, p);
  return record1("permute", [x], out, (g) => [permute(g, inverse)]);
}

/**
 * @internal ops.permute's values and gradients, as a view of x's storage (no copy, no device call) when the
 * permutation only moves dimensions of size 1, the others keeping their order (a decode step's [B, 1, NH, DH] ->
 * [B, NH, 1, DH]); otherwise ops.permute. For the package's layers, which neither mutate nor dispose such a result
 * apart from x (ops.permute's own contract stays "copies").
 */
export function permuteOrView(x: Tensor, dims: readonly number[]): Tensor {
  const nd = x.ndim;
  const valid = dims.length === nd && new Set(dims).size === nd && dims.every((d) => Number.isInteger(d) && d >= 0 && d < nd);
  const moved = valid ? dims.filter((d) => x.shape[d] !== 1) : [];
  if (valid && moved.every((d, i) => i === 0 || moved[i - 1] < d)) return reshape(x, dims.map((d) => x.shape[d]));
  return permute(x, dims);
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  requireTensor("ops.transpose", "x", x, { cuda: true });
  requireNumber("ops.transpose", "dim0", dim0);
  requireNumber("ops.transpose", "dim1", dim1);
  const nd = x.ndim;
  const a = normalizeDim(dim0, nd, "ops.transpose: dim0");
  const b = normalizeDim(dim1, nd, "ops.transpose: dim1");
  const dims = [...Array(nd).keys()];
  dims[a] = b;
  dims[b] = a;
  return permute(x, dims);
}

export function slice(x: Tensor, dim: number, start: number, end?: number, step = 1): Tensor {
  requireTensor("ops.slice", "x", x, { cuda: true });
  requireNumber("ops.slice", "dim", dim);
  requireNumber("ops.slice", "start", start);
  if (end !== undefined) requireNumber("ops.slice", "end", end);
  requireNumber("ops.slice", "step", step);
  const d = normalizeDim(dim, x.ndim, "ops.slice: dim");
  const n = x.shape[d];
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`slice: step must be a positive integer, got ${step}`);
  if (!Number.isInteger(start)) throw new RangeError(`slice: start must be an integer, got ${String(start)}`);
  if (end !== undefined && !Number.isInteger(end)) throw new RangeError(`slice: end must be an integer, got ${String(end)}`);
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const lo = clamp(start);
  const hi = clamp(end ?? n);
  const count = hi > lo ? Math.ceil((hi - lo) / step) : 0;
  const outShape = [...x.shape];
  outShape[d] = count;
  const outer = x.shape.slice(0, d).reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(d + 1).reduce((a, b) => a * b, 1);
  if (x.device === "cuda") {
    if (step !== 1) throw new TypeError(`ops.slice: on CUDA only slices with step 1 are supported (got step ${step}); move the tensor with .cpu()`);
    return sliceCuda(x, outShape, outer, n, inner, lo, count);
  }
  const out = emptyLike(x, outShape);
  const src = x.data as Float32Array, dst = out.data as Float32Array;
  // step 1: one contiguous block of count*inner elements per outer index (slicing the last dim stays cheap)
  const run = step === 1 ? count * inner : inner;
  const runs = step === 1 ? 1 : count;
  for (let o = 0; o < outer; ++o)
    for (let i = 0; i < runs; ++i) {
      const from = (o * n + lo + i * step) * inner;
      dst.set(src.subarray(from, from + run), (o * count + i) * inner);
    }
  return record1("slice", [x], out, (g) => {
    const gx = Tensor.zeros(x.shape);
    const gs = g.f32(), gd = gx.data as Float32Array;
    for (let o = 0; o < outer; ++o)
      for (let i = 0; i < runs; ++i) gd.set(gs.subarray((o * count + i) * inner, (o * count + i) * inner + run), (o * n + lo + i * step) * inner);
    return [gx];
  });
}

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new RangeError("cat: expected a non-empty array of tensors");
  tensors.forEach((t, k) => requireTensor("ops.cat", `tensors[${k}]`, t, { cuda: true }));
  requireNumber("ops.cat", "dim", dim);
  const first = tensors[0];
  const d = normalizeDim(dim, first.ndim, "ops.cat: dim");
  tensors.forEach((t, k) => {
    if (!(t instanceof Tensor)) throw new TypeError(`cat: tensors[${k}] is not a Tensor`);
    if (t.dtype !== first.dtype) throw new TypeError(`cat: tensors[${k}] is ${t.dtype}, tensors[0] is ${first.dtype}`);
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i]))
      throw new RangeError(`cat: tensors[${k}] has shape ${formatShape(t.shape)}, incompatible with ${formatShape(first.shape)} along dim ${d}`);
  });
  const outShape = [...first.shape];
  outShape[d] = tensors.reduce((a, t) => a + t.shape[d], 0);
  numel(outShape, "cat result");
  const outer = first.shape.slice(0, d).reduce((a: number, b: number) => a * b, 1);
  const inner = first.shape.slice(d + 1).reduce((a: number, b: number) => a * b, 1);
  const rowOut = outShape[d] * inner;
  requireSameDevice("ops.cat", tensors.map((t, k) => [`tensors[${k}]`, t] as [string, Tensor]));
  if (first.device === "cuda") {
    return catCuda(tensors, outShape, outer, tensors.map((t) => t.shape[d] * inner), rowOut);
  }
  const out = emptyLike(first, outShape);
  const dst = out.data as Float32Array;
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(offset);
    const row = t.shape[d] * inner;
    const src = t.data as Float32Array;
    for (let o = 0; o < outer; ++o) dst.set(src.subarray(o * row, (o + 1) * row), o * rowOut + offset);
    offset += row;
  }
  return record1("cat", tensors, out, (g) => {
    const gs = g.f32();
    return tensors.map((t, k) => {
      const row = t.shape[d] * inner;
      const gt = Tensor.zeros(t.shape);
      const gd = gt.data as Float32Array;
      for (let o = 0; o < outer; ++o) gd.set(gs.subarray(o * rowOut + offsets[k], o * rowOut + offsets[k] + row), o * row);
      return gt;
    });
  });
}
