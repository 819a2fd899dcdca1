// Argument checks shared by the public ops (ops layer). Every op checks its arguments on entry, so a value of the
// wrong kind (undefined, a number, a plain object or array, an object that only looks like a Tensor, a Tensor whose
// storage was detached / transferred or shrunk) ends in a TypeError that names the op and the argument, e.g.
//   TypeError: ops.linear: weight must be a Tensor, got undefined
// and never in an engine error from deep inside ("Cannot read properties of undefined"). Shape and dtype checks
// stay in each op (they know what they expect).
import { Generator } from "../rng";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";

/** The kind of a value for messages: "undefined", "null", "number", "Array", "Float32Array", "Object", ... */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (typeof v !== "object") return typeof v;
  if (Array.isArray(v)) return "Array";
  try {
    const name = (v as object).constructor?.name;
    return typeof name === "string" && name ? name : "object";
  } catch {
    return "object";
  }
}

function storedElements(t: Tensor): number {
  let n = 1;
  for (const s of t.shape) n *= s;
  return n;
}

/**
 * `value` as a Tensor whose storage still holds every element of its shape; otherwise a TypeError
 * `${op}: ${name} must be a Tensor, got ${kind}` (or, for a tensor whose buffer was detached, transferred or shrunk
 * after it was created, `${op}: ${name} has N stored elements for shape [...]`).
 * @example const w = requireTensor("ops.linear", "weight", weight);
 */
export function requireTensor(op: string, name: string, value: unknown, options?: { cuda?: boolean }): Tensor {
  if (!(value instanceof Tensor)) throw new TypeError(`${op}: ${name} must be a Tensor, got ${kindOf(value)}`);
  if (value.device === "cuda") {
    // ops that run on the GPU pass { cuda: true }; the rest refuse CUDA tensors by name
    if (!options?.cuda) throw new TypeError(`${op}: ${name} is a CUDA tensor, and ${op} has no CUDA kernel yet; move it to the CPU with .cpu()`);
    if (value.isDisposed) throw new Error(`${op}: ${name} is a CUDA tensor that was already released (dispose() or a cuda.scope that ended)`);
    return value;
  }
  if (value.isDisposed) throw new TypeError(`${op}: ${name} is a tensor whose memory was released: the xlstm.scope that made it ended (return it from the scope to keep it), or its ArrayBuffer was detached`);
  let data: unknown;
  try {
    data = value.data;  // a getter: an object made from Tensor's prototype without the fields throws here
  } catch {
    data = undefined;
  }
  const shape: unknown = value.shape;
  if (!ArrayBuffer.isView(data) || !Array.isArray(shape) || typeof value.dtype !== "string")
    throw new TypeError(`${op}: ${name} must be a Tensor, got an object with Tensor's prototype but no tensor fields`);
  const need = storedElements(value);
  if ((data as Float32Array).length !== need)
    throw new TypeError(
      `${op}: ${name} has ${(data as Float32Array).length} stored elements for shape ${formatShape(value.shape)} (its buffer was detached, transferred or resized after the tensor was made)`,
    );
  return value;
}

/** `value` as a Tensor (see requireTensor), or null when it is null or undefined. */
export function optionalTensor(op: string, name: string, value: unknown, options?: { cuda?: boolean }): Tensor | null {
  return value == null ? null : requireTensor(op, name, value, options);
}

/** An options object: undefined gives {}; anything else that is not a plain object is a TypeError naming it. */
export function requireOptions<T extends object>(op: string, name: string, value: T | undefined): T {
  if (value === undefined) return {} as T;
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new TypeError(`${op}: ${name} must be an object (or omitted), got ${kindOf(value)}`);
  return value;
}

/** A number argument (any value; range checks stay in the op); TypeError naming it for other kinds. */
export function requireNumber(op: string, name: string, value: unknown): number {
  if (typeof value !== "number") throw new TypeError(`${op}: ${name} must be a number, got ${kindOf(value)}`);
  return value;
}

/** An optional number: undefined passes through. */
export function optionalNumber(op: string, name: string, value: unknown): number | undefined {
  return value === undefined ? undefined : requireNumber(op, name, value);
}

/** An array argument (e.g. a shape or a list of dims); its elements are checked by the op. */
export function requireArray<T>(op: string, name: string, value: unknown): readonly T[] {
  if (!Array.isArray(value)) throw new TypeError(`${op}: ${name} must be an array, got ${kindOf(value)}`);
  return value as readonly T[];
}

/** An array of numbers (a shape, a permutation); TypeError naming the first element that is not a number. */
export function requireNumberArray(op: string, name: string, value: unknown): readonly number[] {
  const a = requireArray<unknown>(op, name, value);
  for (let i = 0; i < a.length; ++i) requireNumber(op, `${name}[${i}]`, a[i]);
  return a as readonly number[];
}

/** An optional string option (its allowed values are checked by the op); TypeError naming it for other kinds. */
export function optionalString(op: string, name: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new TypeError(`${op}: ${name} must be a string, got ${kindOf(value)}`);
  return value;
}

/**
 * Run a native call whose refusals depend on the data (an index out of range): its TypeError / RangeError is
 * rethrown as the op's own, "<native export>: ..." becoming "<op>: ...".
 */
export function asOpError<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof RangeError) throw new RangeError(`${op}: ${e.message.replace(/^\w+: /, "")}`);
    if (e instanceof TypeError) throw new TypeError(`${op}: ${e.message.replace(/^\w+: /, "")}`);
    throw e;
  }
}

/** An optional Generator (lib/rng.ts): null and undefined pass through (the default generator). */
export function optionalGenerator(op: string, name: string, value: unknown): Generator | undefined {
  if (value == null) return undefined;
  if (!(value instanceof Generator)) throw new TypeError(`${op}: ${name} must be a Generator, got ${kindOf(value)}`);
  return value;
}

const ON_GPU = new Float32Array(0);

/**
 * A float32 tensor argument's host storage, or an empty array for a CUDA tensor (its values stay on the GPU; the
 * op then takes its CUDA path). TypeError naming the op and argument for anything else.
 */
export function floatStorage(op: string, name: string, t: unknown): Float32Array {
  const x = requireTensor(op, name, t, { cuda: true });
  if (x.dtype !== "float32") throw new TypeError(`${op}: ${name} must be a float32 tensor, got ${x.dtype}`);
  return x.device === "cuda" ? ON_GPU : (x.data as Float32Array);
}
