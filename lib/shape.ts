// Shape arithmetic shared by the tensor, autograd and op layers: sizes, strides, broadcasting, axis checks.

export type Shape = readonly number[];

export function formatShape(shape: Shape): string {
  return `[${shape.join(", ")}]`;
}

/** Number of elements; throws RangeError on a negative, fractional or overflowing size. */
export function numel(shape: Shape, what = "shape"): number {
  let n = 1;
  for (const s of shape) {
    if (!Number.isInteger(s) || s < 0) throw new RangeError(`${what} ${formatShape(shape)} has an invalid size ${s}`);
    n *= s;
  }
  if (n > 2 ** 45) throw new RangeError(`${what} ${formatShape(shape)} is too large (${n} elements)`);
  return n;
}

/** Row-major strides in elements. */
export function stridesOf(shape: Shape): number[] {
  const st = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; --i) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** NumPy broadcasting of two shapes; RangeError naming `what` when they are incompatible. */
export function broadcastShapes(a: Shape, b: Shape, what = "broadcast"): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; ++i) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1)
      throw new RangeError(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} cannot be broadcast together`);
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** A dimension index in [-ndim, ndim) normalised to [0, ndim). */
export function normalizeDim(dim: number, ndim: number, what = "dim"): number {
  if (!Number.isInteger(dim) || dim < -ndim || dim >= Math.max(ndim, 1))
    throw new RangeError(`${what} ${dim} is out of range for a tensor with ${ndim} dimensions`);
  return dim < 0 ? dim + ndim : dim;
}

/** Resolves a single -1 in a target shape against `total` elements. */
export function inferShape(shape: Shape, total: number, what: string | (() => string) = "reshape"): number[] {
  try {
    return inferShapeOrThrow(shape, total);
  } catch (e) {
    // the caller's name for the shape, built only for the error (reshape is on every layer's hot path)
    if (e instanceof RangeError) throw new RangeError(`${typeof what === "function" ? what() : what}: ${e.message}`);
    throw e;
  }
}

function inferShapeOrThrow(shape: Shape, total: number): number[] {
  const out = [...shape];
  let unknown = -1;
  let known = 1;
  for (let i = 0; i < out.length; ++i) {
    if (out[i] === -1) {
      if (unknown >= 0) throw new RangeError(`only one dimension can be -1, got ${formatShape(shape)}`);
      unknown = i;
    } else if (!Number.isInteger(out[i]) || out[i] < 0) {
      throw new RangeError(`invalid size ${out[i]} in ${formatShape(shape)}`);
    } else known *= out[i];
  }
  if (unknown >= 0) {
    if (known === 0 || total % known !== 0) throw new RangeError(`cannot infer -1 in ${formatShape(shape)} for ${total} elements`);
    out[unknown] = total / known;
  }
  if (numel(out) !== total) throw new RangeError(`shape ${formatShape(shape)} has ${numel(out)} elements, the tensor has ${total}`);
  return out;
}
