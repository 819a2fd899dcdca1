// Config validation shared by the module constructors (modules layer). A config may come from an untrusted JSON
// file, so every size is checked before anything is allocated: a bad value is a TypeError/RangeError naming the
// field, never an engine error, an allocation failure or a process-killing out-of-memory. The bounds are far above
// any real xLSTM/LSTM model and far below what would exhaust memory before the first tensor exists.

/** Largest width/size of one dimension a config may ask for (embedding_dim, hidden_size, vocab_size, ...). */
export const MAX_CONFIG_DIM = 2 ** 24;
/** Most blocks / layers a config may ask for. */
export const MAX_CONFIG_DEPTH = 1024;

/** TypeError unless `config` is a non-null, non-array object. */
export function checkConfigObject(owner: string, config: unknown): asserts config is Record<string, unknown> {
  if (config === null || typeof config !== "object" || Array.isArray(config))
    throw new TypeError(`${owner}: config must be an object, got ${config === null ? "null" : Array.isArray(config) ? "an array" : typeof config}`);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "symbol" || typeof v === "function") return typeof v;
  return String(v);
}

/** An integer in [lo, hi]: TypeError for a non-number, RangeError otherwise, both naming `owner.field`. */
export function checkInt(owner: string, field: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== "number") throw new TypeError(`${owner}.${field} must be an integer, got ${typeof v === "object" ? (v === null ? "null" : "an object") : `${typeof v} ${show(v)}`}`);
  if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${owner}.${field} must be an integer in [${lo}, ${hi}], got ${show(v)}`);
  return v;
}

/** A finite number in (lo, hi] (or [lo, hi] with `closed`): TypeError / RangeError naming `owner.field`. */
export function checkNumber(owner: string, field: string, v: unknown, lo: number, hi: number, closed = false): number {
  if (typeof v !== "number") throw new TypeError(`${owner}.${field} must be a number, got ${typeof v === "object" ? (v === null ? "null" : "an object") : `${typeof v} ${show(v)}`}`);
  if (!Number.isFinite(v) || (closed ? v < lo : v <= lo) || v > hi) throw new RangeError(`${owner}.${field} must be a finite number in ${closed ? "[" : "("}${lo}, ${hi}], got ${show(v)}`);
  return v;
}

/** One of `allowed`: RangeError naming `owner.field` and the allowed values. */
export function checkEnum<T extends string>(owner: string, field: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) throw new RangeError(`${owner}.${field} must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got ${show(v)}`);
  return v as T;
}
