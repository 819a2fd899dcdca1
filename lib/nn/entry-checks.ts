// Argument checks at the public entry points of the modules (modules layer): forward / step / generate of every
// Module subclass check their arguments before any work, so a value of the wrong kind (undefined, null, a number, a
// plain object or array, an object with Tensor's prototype but no tensor fields, a tensor whose storage was detached
// or transferred), a wrong dtype or shape, or a bad option ends in a TypeError / RangeError that starts with the
// class and method and names the argument, e.g.
//   TypeError: xLSTMLMModel.forward: idx must be a Tensor, got undefined
//   TypeError: sLSTMLayer.step: state must be an object (or null), got number
// and never in an engine error from deep inside ("Cannot read properties of undefined") or in an error named after
// an inner op. Built on the ops' helpers (lib/ops/args.ts).
import { kindOf, requireOptions, requireTensor } from "../ops/args";
import { formatShape } from "../shape";
import { Tensor } from "../tensor";

/** A float32 Tensor with intact storage; TypeError `${op}: ${name} ...` otherwise. */
export function floatArg(op: string, name: string, value: unknown): Tensor {
  const t = requireTensor(op, name, value, { cuda: true });
  if (t.dtype !== "float32") throw new TypeError(`${op}: ${name} must be float32, got ${t.dtype}`);
  return t;
}

/** null / undefined give null; anything else must be a float32 Tensor (see floatArg). */
export function optionalFloatArg(op: string, name: string, value: unknown): Tensor | null {
  return value == null ? null : floatArg(op, name, value);
}

/** RangeError `${op}: ${name} has shape [..], expected ${text}` unless t has exactly `want`'s shape. */
export function expectShape(op: string, name: string, t: Tensor, want: readonly number[], text?: string): void {
  if (t.ndim !== want.length || t.shape.some((s, j) => s !== want[j]))
    throw new RangeError(`${op}: ${name} has shape ${formatShape(t.shape)}, expected ${text ? `${text} = ` : ""}${formatShape(want)}`);
}

/** As expectShape, accepting extra trailing dimensions of size 1 (as ops.mlstm does for n and m). */
export function expectShapeTrailingOnes(op: string, name: string, t: Tensor, want: readonly number[], text: string): void {
  let s = [...t.shape];
  while (s.length > want.length && s[s.length - 1] === 1) s = s.slice(0, -1);
  if (s.length !== want.length || s.some((v, j) => v !== want[j])) throw new RangeError(`${op}: ${name} has shape ${formatShape(t.shape)}, expected ${text} = ${formatShape(want)}`);
}

/**
 * Token ids: an int32 / int64 Tensor [B, S] (S = 1 with `step`) whose ids lie in [0, V).
 * @returns [B, S]
 */
export function tokenArg(op: string, name: string, value: unknown, V: number, step = false): [number, number] {
  const t = requireTensor(op, name, value, { cuda: true });
  if (t.dtype !== "int32" && t.dtype !== "int64") throw new TypeError(`${op}: ${name} must be an int32 or int64 tensor of token ids, got ${t.dtype}`);
  if (t.ndim !== 2) throw new RangeError(`${op}: ${name} has shape ${formatShape(t.shape)}, expected [B, ${step ? "1" : "S"}]`);
  if (step && t.shape[1] !== 1) throw new RangeError(`${op}: ${name} has shape ${formatShape(t.shape)}, expected [B, 1]`);
  const r = t._intRange();  // ids uploaded from the host carry their range: then nothing is read back from the GPU
  if (r && r.min >= 0 && r.max < V) return [t.shape[0], t.shape[1]];
  const d = t.device === "cpu" ? t.data : t.cpu().data;  // other ids on the GPU are read back to be checked
  for (let j = 0; j < d.length; ++j) {
    const id = Number(d[j]);
    if (!(id >= 0 && id < V)) throw new RangeError(`${op}: ${name} holds token id ${d[j]} at flat position ${j}, outside [0, ${V}) (vocab_size = ${V})`);
  }
  return [t.shape[0], t.shape[1]];
}

/** A state object: null / undefined give null; anything but a plain object (an array, a Tensor, ...) is a TypeError. */
export function stateArg(op: string, name: string, value: unknown): Record<string, unknown> | null {
  if (value == null) return null;
  if (typeof value !== "object" || Array.isArray(value) || value instanceof Tensor || ArrayBuffer.isView(value))
    throw new TypeError(`${op}: ${name} must be an object (or null), got ${kindOf(value)}`);
  return value as Record<string, unknown>;
}

/** An options object: undefined gives {}; anything but a plain object is a TypeError naming it. */
export function optionsArg<T extends object>(op: string, value: T | undefined, name = "options"): T {
  const o = requireOptions(op, name, value);
  if (o instanceof Tensor) throw new TypeError(`${op}: ${name} must be an object (or omitted), got Tensor`);
  return o;
}

/** An optional boolean option: undefined passes; other kinds are a TypeError naming it. */
export function optionalBool(op: string, name: string, value: unknown): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "boolean") throw new TypeError(`${op}: ${name} must be a boolean (or omitted), got ${kindOf(value)}`);
  return value;
}

/** An optional option from a fixed list: undefined passes; anything else not in `allowed` is a RangeError. */
export function optionalEnum<T extends string>(op: string, name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value))
    throw new RangeError(`${op}: ${name} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${typeof value === "string" ? JSON.stringify(value) : kindOf(value)}`);
  return value as T;
}
