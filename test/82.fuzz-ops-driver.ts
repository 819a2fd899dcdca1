// Fuzz driver for the public ops (lib/ops) in test/82.fuzz-api, run in a child process by test/support/fuzz.ts so a
// native crash or a hang fails the test with the case that caused it. Two parts:
//   sweepOps: every exported op x every argument (and every option key) x a fixed list of hostile values: wrong
//     kinds (undefined, null, numbers, strings, arrays, typed arrays, plain and fake Tensor objects), tensors whose
//     storage was detached (transferred) or shrunk (resizable buffer), wrong dtypes and ranks, absurd numbers.
//   fuzzOps: seeded random valid calls, 70% of them mutated once or twice anywhere in their argument tree.
// Oracle for both: a call returns (and a result that requires grad also runs backward) or throws a TypeError /
// RangeError whose message starts with the op's name ("ops.linear: ...", the shape ops "permute: ...") and names
// an argument of the op (for the sweep: the argument that was made hostile). An engine error ("Cannot read
// properties of undefined", "x is not iterable", ...) is always a finding.
import * as util from "util";
import * as ops from "../lib/ops";
import { Tensor } from "../lib/tensor";
import type { DType } from "../lib/tensor";
import { ABSURD_NUMBERS, describeArg, detached, Progress, Rand, resizableF32, wrongKinds } from "./support/fuzz";

type OpFn = (...a: unknown[]) => unknown;
const table = ops as unknown as Record<string, OpFn>;

/** What kind of value each positional parameter takes (drives the hostile values of the sweep). */
type Kind = "tensor" | "tensor?" | "operand" | "int-tensor" | "number" | "number?" | "bool?" | "device?" | "dims?" | "shape" | "tensors" | "parts" | "weights" | "options";
interface Param {
  name: string;
  kind: Kind;
  /** option keys (kind "options") with bad values for each */
  keys?: Record<string, unknown[]>;
  /** tensor fields of a weights object (kind "weights") */
  fields?: readonly string[];
}

const BAD_BOOL = [1, "yes", null, {}];
const MLSTM_LAYER_FIELDS = ["wUp", "wConv", "bConv", "wQ", "wK", "wV", "wI", "bI", "wF", "bF", "wNorm", "skip", "wDown"] as const;
const BAD_NUM = [NaN, Infinity, -1, 0.5, 2 ** 40, "3", null, {}, 3n];
const OPERAND = (name: string): Param => ({ name, kind: "operand" });
const TENSOR = (name: string): Param => ({ name, kind: "tensor" });
const TENSOR_OPT = (name: string): Param => ({ name, kind: "tensor?" });

const MLSTM_LAYER_WEIGHTS = ["wUp", "wConv", "bConv", "wQ", "wK", "wV", "wI", "bI", "wF", "bF", "wNorm", "skip", "wDown"];

/** Every public op: its parameters in order (names as the op's messages use them). */
export const SIGNATURES: Record<string, Param[]> = {
  reshape: [TENSOR("x"), { name: "shape", kind: "shape" }],
  permute: [TENSOR("x"), { name: "dims", kind: "shape" }],
  transpose: [TENSOR("x"), { name: "dim0", kind: "number" }, { name: "dim1", kind: "number" }],
  slice: [TENSOR("x"), { name: "dim", kind: "number" }, { name: "start", kind: "number" }, { name: "end", kind: "number?" }, { name: "step", kind: "number?" }],
  cat: [{ name: "tensors", kind: "tensors" }, { name: "dim", kind: "number?" }],
  matmul: [TENSOR("a"), TENSOR("b")],
  linear: [TENSOR("x"), TENSOR("weight"), TENSOR_OPT("bias")],
  add: [OPERAND("a"), OPERAND("b")],
  sub: [OPERAND("a"), OPERAND("b")],
  mul: [OPERAND("a"), OPERAND("b")],
  div: [OPERAND("a"), OPERAND("b")],
  ...Object.fromEntries(["neg", "exp", "log", "sigmoid", "logsigmoid", "tanh", "softplus", "relu", "silu", "softmax", "logSoftmax"].map((n) => [n, [TENSOR("x")]])),
  gelu: [TENSOR("x"), { name: "options", kind: "options", keys: { approximate: ["erf", 1, null] } }],
  scale: [TENSOR("x"), { name: "alpha", kind: "number" }, { name: "beta", kind: "number?" }],
  ...Object.fromEntries(["sum", "mean", "max"].map((n) => [n, [TENSOR("x"), { name: "dims", kind: "dims?" }, { name: "keepdim", kind: "bool?" }]])),
  crossEntropy: [TENSOR("logits"), { name: "targets", kind: "int-tensor" }, { name: "options", kind: "options", keys: { reduction: ["bogus", 1, null], ignoreIndex: [2 ** 60, 0.5, "x", NaN] } }],
  ...Object.fromEntries(
    ["layerNorm", "multiHeadLayerNorm"].map((n) => [n, [TENSOR("x"), TENSOR_OPT("weight"), TENSOR_OPT("bias"), { name: "options", kind: "options", keys: { eps: [-1, NaN, Infinity, "1e-5", null] } }]]),
  ),
  embedding: [{ name: "indices", kind: "int-tensor" }, TENSOR("weight")],
  causalConv1d: [TENSOR("x"), TENSOR("weight"), TENSOR_OPT("bias")],
  dropout: [TENSOR("x"), { name: "p", kind: "number?" }, { name: "options", kind: "options", keys: { generator: [1, "g", {}, null] } }],
  headwiseLinear: [TENSOR("x"), TENSOR("weight"), TENSOR_OPT("bias")],
  headwiseLinearConcat: [{ name: "parts", kind: "parts" }],
  slstm: [TENSOR("x"), TENSOR("R"), TENSOR("bias"), TENSOR_OPT("state0"), { name: "options", kind: "options", keys: {} }],
  lstm: [TENSOR("x"), TENSOR("R"), TENSOR("bias"), TENSOR_OPT("state0")],
  mlstm: [
    TENSOR("q"),
    TENSOR("k"),
    TENSOR("v"),
    TENSOR("i"),
    TENSOR("f"),
    {
      name: "options",
      kind: "options",
      keys: { form: ["bogus", 1, null, 3n], chunkSize: [...BAD_NUM, "Auto", ""], eps: [-1, NaN, "1e-6", Symbol("e")], initialState: [5, "s", {}, { c: 1, n: 2, m: 3 }, []] },
    },
  ],
  mlstmAutoChunk: [{ name: "DK", kind: "number" }, { name: "DV", kind: "number" }, { name: "device", kind: "device?" }],
  mlstmLayer: [
    TENSOR("x"),
    { name: "weights", kind: "weights", fields: MLSTM_LAYER_FIELDS },
    { name: "options", kind: "options", keys: { numHeads: [0, 3, NaN, "2", null, undefined], chunkSize: [...BAD_NUM, "Auto", ""], cellEps: [NaN, -1, "x"], normEps: [NaN, -1, "x"] } },
  ],
};

function T(r: Rand, shape: number[], dtype: DType = "float32"): Tensor {
  const t = Tensor.randn(shape, { generator: r.g });
  return dtype === "float32" ? t : t.to(dtype);
}
function idx(r: Rand, shape: number[], V: number): Tensor {
  return Tensor.from(Int32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.int(V)), shape);
}

/** A valid call of each op (small random shapes). */
const BUILDERS: Record<string, (r: Rand) => unknown[]> = (() => {
  const dims = (r: Rand) => ({ B: r.range(1, 2), S: r.range(1, 4), F: r.range(1, 5) });
  const b: Record<string, (r: Rand) => unknown[]> = {
    reshape: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), [B * S, F]]; },
    permute: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), [2, 0, 1]]; },
    transpose: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), 0, 2]; },
    slice: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), 1, 0, S, 1]; },
    cat: (r) => { const { B, S, F } = dims(r); return [[T(r, [B, S, F]), T(r, [B, S, F])], r.int(3)]; },
    matmul: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), T(r, [F, 3])]; },
    linear: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), T(r, [4, F]), r.bool() ? T(r, [4]) : null]; },
    gelu: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), { approximate: r.pick(["none", "tanh"]) }]; },
    scale: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), 2, 0.5]; },
    crossEntropy: (r) => { const { B, S } = dims(r); const V = r.range(1, 5); return [T(r, [B, S, V]), idx(r, [B, S], V), { reduction: r.pick(["mean", "sum", "none"]) }]; },
    layerNorm: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), T(r, [F]), r.bool() ? T(r, [F]) : null, { eps: 1e-5 }]; },
    multiHeadLayerNorm: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, 2, F]), T(r, [2 * F]), null, { residualWeight: true }]; },
    embedding: (r) => { const { B, S, F } = dims(r); const V = r.range(1, 6); return [idx(r, [B, S], V), T(r, [V, F])]; },
    causalConv1d: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), T(r, [F, 1, r.range(1, 4)]), r.bool() ? T(r, [F]) : null]; },
    dropout: (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), r.pick([0, 0.3, 0.9]), { training: r.bool(0.8) }]; },
    headwiseLinear: (r) => { const { B, S } = dims(r); const NB = r.range(1, 2), I = r.range(1, 3), O = r.range(1, 3); return [T(r, [B, S, NB * I]), T(r, [NB, O, I]), r.bool() ? T(r, [NB * O]) : null]; },
    headwiseLinearConcat: (r) => {
      const { B, S } = dims(r);
      return [[{ x: T(r, [B, S, 4]), weight: T(r, [2, 2, 2]) }, { x: T(r, [B, S, 4]), weight: T(r, [2, 2, 2]), bias: T(r, [4]) }]];
    },
    mlstm: (r) => {
      const { B, S } = dims(r);
      const NH = r.range(1, 2), DK = r.range(1, 3), DV = r.range(1, 3);
      const opts: Record<string, unknown> = { form: r.pick(["auto", "parallel", "chunkwise", "recurrent"]), chunkSize: r.pick([1, 2, 64, "auto"]), returnLastState: r.bool() };
      if (r.bool(0.3)) opts.initialState = { c: T(r, [B, NH, DK, DV]), n: T(r, [B, NH, DK]), m: T(r, [B, NH]) };
      return [T(r, [B, NH, S, DK]), T(r, [B, NH, S, DK]), T(r, [B, NH, S, DV]), T(r, [B, NH, S]), T(r, [B, NH, S]), opts];
    },
    mlstmAutoChunk: (r) => [r.range(1, 600), r.range(1, 600), r.pick(["cpu", "cuda"])],
    mlstmLayer: (r) => {
      const { B, S } = dims(r);
      const E = r.range(1, 4), NH = r.range(1, 2), Bq = r.range(1, 2), Di = NH * Bq * r.range(1, 2), K = r.range(1, 3);
      const shapes: Record<string, number[]> = {
        wUp: [2 * Di, E], wConv: [Di, 1, K], bConv: [Di], wQ: [Di / Bq, Bq, Bq], wK: [Di / Bq, Bq, Bq], wV: [Di / Bq, Bq, Bq],
        wI: [NH, 3 * Di], bI: [NH], wF: [NH, 3 * Di], bF: [NH], wNorm: [Di], skip: [Di], wDown: [E, Di],
      };
      return [T(r, [B, S, E]), Object.fromEntries(MLSTM_LAYER_WEIGHTS.map((k) => [k, T(r, shapes[k])])), { numHeads: NH, chunkSize: r.pick([1, 2, 64, "auto"]) }];
    },
  };
  for (const n of ["add", "sub", "mul", "div"])
    b[n] = (r) => {
      const { B, S, F } = dims(r);
      const x = T(r, [B, S, F]);
      const k = r.int(4);
      return k === 0 ? [x, 2] : k === 1 ? [3, x] : k === 2 ? [x, T(r, [F])] : [x, T(r, [S, 1])];
    };
  for (const n of ["neg", "exp", "log", "sigmoid", "logsigmoid", "tanh", "softplus", "relu", "silu", "softmax", "logSoftmax"])
    b[n] = (r) => [T(r, r.bool(0.1) ? [r.range(0, 2), 3] : [r.range(1, 2), r.range(1, 4), r.range(1, 5)])];
  for (const n of ["sum", "mean", "max"])
    b[n] = (r) => { const { B, S, F } = dims(r); return [T(r, [B, S, F]), r.pick([undefined, 0, -1, [0, 2]]), r.bool()]; };
  for (const [n, ns] of [["slstm", 4], ["lstm", 2]] as const)
    b[n] = (r) => {
      const { B, S } = dims(r);
      const NH = r.range(1, 2), DH = r.range(1, 3), H = NH * DH;
      const args: unknown[] = [T(r, [B, S, 4 * H]), T(r, [NH, DH, 4 * DH]), T(r, [4 * H]), r.bool() ? T(r, [ns, B, H]) : null];
      if (n === "slstm") args.push({ exactM0Grad: r.bool() });
      return args;
    };
  return b;
})();

/** Ops that have a signature and a builder: every function lib/ops exports must be here (the test checks). */
export function coveredOps(): string[] {
  return Object.keys(SIGNATURES).filter((n) => BUILDERS[n]);
}

// ---- oracle ------------------------------------------------------------------------------------------------------

const ENGINE_ERRORS = /Cannot read properties|Cannot set properties|is not a function|is not iterable|Cannot convert|Invalid typed array length|Invalid array length|Maximum call stack|Array buffer allocation failed|offset is out of bounds|Cannot destructure|Cannot perform|is not a constructor|is not defined|Cannot create property|Cannot mix BigInt|Cannot access/;

/** Thrown by a hostile getter: the caller's own error may come back as is. */
const GETTER_ERROR = new Error("fuzz: hostile getter");

/** Ops whose errors may come from the op they delegate to, with the argument named as in that op. */
const DELEGATES: Record<string, { op: string; prefix: string }> = { headwiseLinear: { op: "headwiseLinearConcat", prefix: "parts[0]." } };

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Every name a message of `op` may use for its arguments: parameters, option keys, nested fields. */
function argNames(op: string): string[] {
  const out: string[] = [];
  for (const p of SIGNATURES[op] ?? []) {
    out.push(p.name);
    if (p.kind === "options") for (const k of Object.keys(p.keys ?? {})) out.push(k);
    if (p.kind === "parts") out.push("x", "weight", "bias");
    if (p.kind === "weights") out.push(...(p.fields ?? []).map((f) => `${p.name}.${f}`));
    if (p.kind === "dims?" || p.kind === "number" || p.kind === "number?") out.push("dim");
  }
  if (op === "mlstm") out.push("initialState.c", "initialState.n", "initialState.m", "returnLastState");
  if (op === "slstm") out.push("exactM0Grad");
  if (op === "layerNorm" || op === "multiHeadLayerNorm") out.push("residualWeight");
  if (op === "dropout") out.push("training");
  if (op === "gelu") out.push("approximate");
  return out;
}

/** Does `text` mention the argument `name` (as a token, not inside a word)? */
function mentions(text: string, name: string): boolean {
  // one-letter names (a, b, i, ...) must look like a subject: "a has shape", "b must be", "i [..]", "q=", "(a ..."
  const tail = name.length === 1 ? "(?=\\s+(has|must|is|was|and|of)\\b|\\s*[[=:,)])" : "(?![\\w])";
  return new RegExp(`(^|[^\\w.\\]])${escapeRe(name)}${tail}`).test(text);
}

/**
 * null when `e` is an acceptable error of op `op` whose hostile argument was `hostile` (a parameter name or an
 * option key; undefined: any argument of the op); otherwise what is wrong with it.
 */
export function checkOpError(op: string, e: unknown, hostile?: string): string | null {
  if (e === GETTER_ERROR) return null;
  if (!(e instanceof Error)) return `threw a non-Error ${describeArg(e)}`;
  const msg = `${e.constructor.name}: ${e.message}`;
  if (ENGINE_ERRORS.test(e.message)) return `engine error instead of a check: ${msg}`;
  if (!(e instanceof TypeError || e instanceof RangeError)) return `threw ${msg} (expected a TypeError or RangeError)`;
  const prefixes = [op, DELEGATES[op]?.op].filter(Boolean) as string[];
  let rest: string | null = null;
  for (const p of prefixes) {
    const m = new RegExp(`^(ops\\.)?${escapeRe(p)}(: | |$)`).exec(e.message);
    if (m) rest = e.message.slice(m[0].length);
  }
  if (rest === null) return `message does not start with the op's name: ${msg}`;
  // a TypeError is about one value: it must name the hostile argument; a RangeError may be about how arguments fit
  // together ("weight has shape [4], expected [D] = [5]" when x changed): it must name one of them
  const strict = hostile !== undefined && e instanceof TypeError;
  const base = strict ? [hostile, ...(hostile === "dims" ? ["dim"] : [])] : [...argNames(op), "options"];
  const names = [...base, ...(DELEGATES[op] ? base.map((n) => `${DELEGATES[op].prefix}${n}`) : [])];
  if (!names.some((n) => mentions(rest!, n))) return `message does not name ${strict ? `the argument "${hostile}"` : "an argument of the op"}: ${msg}`;
  return null;
}

// ---- hostile values ------------------------------------------------------------------------------------------------

/** A tensor of `shape` whose storage has been transferred away (a "disposed" tensor: 0 stored elements). */
function detachedTensor(r: Rand, shape: readonly number[]): Tensor {
  const t = T(r, [...shape].map((s) => Math.max(s, 1)));
  detached(t.data as Float32Array);
  return t;
}

/** A tensor over a length-tracking array on a resizable buffer, then shrunk to fewer elements than its shape. */
function shrunkTensor(r: Rand, shape: readonly number[]): Tensor | null {
  const s = [...shape].map((v) => Math.max(v, 1));
  const n = s.reduce((a, b) => a * b, 1);
  const a = resizableF32(n);
  if (!a) return null;
  a.set(r.f32(n));
  const t = Tensor.from(a, s);
  (a.buffer as ArrayBuffer & { resize(n: number): void }).resize(4 * (n - 1));
  return t;
}

/** Objects that pretend to be tensors. */
function fakeTensors(like: Tensor): unknown[] {
  const shell = Object.create(Tensor.prototype) as Tensor;
  const broken = Object.create(Tensor.prototype) as Record<string, unknown>;
  broken.shape = like.shape;
  Object.defineProperty(broken, "data", { value: "not a typed array" });  // shadows Tensor's getter
  broken.dtype = "float32";
  return [shell, broken, { shape: [...like.shape], data: new Float32Array(like.numel), dtype: "float32", ndim: like.ndim }];
}

function hostileTensors(r: Rand, like: Tensor | null, intTensor: boolean): { v: unknown; what: string }[] {
  const ref = like ?? T(r, [2, 3]);
  const out: { v: unknown; what: string }[] = wrongKinds(r, Math.max(1, ref.numel)).map((v) => ({ v, what: describeArg(v) }));
  fakeTensors(ref).forEach((v, k) => out.push({ v, what: `fake tensor #${k}` }));
  out.push({ v: detachedTensor(r, ref.shape), what: "tensor with detached storage" });
  const shrunk = shrunkTensor(r, ref.shape);
  if (shrunk) out.push({ v: shrunk, what: "tensor whose resizable storage shrank" });
  for (const dt of (intTensor ? ["float32", "bfloat16"] : ["int32", "int64", "bfloat16"]) as DType[]) out.push({ v: T(r, [...ref.shape], dt), what: `${dt} tensor` });
  out.push({ v: Tensor.scalar(1), what: "0-d tensor" });
  out.push({ v: T(r, [...ref.shape, 2]), what: "one more dimension" });
  out.push({ v: T(r, [0]), what: "empty tensor" });
  out.push({ v: T(r, ref.shape.map((s) => s + 1)), what: "every size + 1" });
  if (intTensor) {
    const n = ref.shape.reduce((a, b) => a * b, 1);
    out.push({ v: Tensor.from(Int32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1 << 30)), [...ref.shape]), what: "indices out of range" });
    out.push({ v: Tensor.from(BigInt64Array.from({ length: n }, () => 2n ** 40n), [...ref.shape]), what: "int64 indices out of range" });
  }
  return out;
}

function hostileValues(r: Rand, p: Param, current: unknown): { v: unknown; what: string }[] {
  const kinds = (n: number) => wrongKinds(r, n).map((v) => ({ v, what: describeArg(v) }));
  switch (p.kind) {
    case "tensor":
    case "tensor?":
    case "operand":
      return hostileTensors(r, current instanceof Tensor ? current : null, false).filter((h) => !(p.kind === "tensor?" && h.v == null) && !(p.kind === "operand" && typeof h.v === "number"));
    case "int-tensor":
      return hostileTensors(r, current instanceof Tensor ? current : null, true);
    case "number":
    case "number?":
      return [...ABSURD_NUMBERS.map((v) => ({ v, what: String(v) })), ...kinds(2).filter((h) => typeof h.v !== "number" && !(p.kind === "number?" && h.v === undefined))];
    case "bool?":
      return BAD_BOOL.map((v) => ({ v, what: describeArg(v) }));
    case "device?":
      return ["gpu", "CPU", "", 1, null, {}].map((v) => ({ v, what: describeArg(v) }));
    case "dims?":
    case "shape": {
      const holey: number[] = new Array(3);
      const getter = [1, 2];
      Object.defineProperty(getter, 0, { get: () => { throw GETTER_ERROR; } });
      const arrays = [[NaN], [1e300], [-5], [0.5, 1], ["1", 2], [null], [{}], holey, getter, [2 ** 53, 2 ** 53], [1, 1, 1, 1, 1, 1, 1, 1, 1]];
      return [...kinds(2).filter((h) => !(p.kind === "dims?" && (h.v === undefined || typeof h.v === "number"))), ...arrays.map((v) => ({ v, what: `[${describeArg(v)}]` })), { v: { length: 2, 0: 1, 1: 2 }, what: "array-like" }];
    }
    case "tensors": {
      const t = Array.isArray(current) && current[0] instanceof Tensor ? (current[0] as Tensor) : T(r, [2, 2]);
      return [
        ...kinds(2).filter((h) => !Array.isArray(h.v) || h.v.length === 0),
        { v: [], what: "[]" },
        ...hostileTensors(r, t, false).map((h) => ({ v: [t, h.v], what: `[t, ${h.what}]` })),
        ...hostileTensors(r, t, false).slice(0, 12).map((h) => ({ v: [h.v, t], what: `[${h.what}, t]` })),
      ];
    }
    case "parts": {
      const base = () => ({ x: T(r, [2, 3, 4]), weight: T(r, [2, 2, 2]) });
      const out: { v: unknown; what: string }[] = [...kinds(2), { v: [], what: "[]" }, { v: [null], what: "[null]" }, { v: [5], what: "[5]" }, { v: [base(), "x"], what: "[part, string]" }];
      for (const field of ["x", "weight", "bias"])
        for (const h of hostileTensors(r, field === "x" ? T(r, [2, 3, 4]) : field === "weight" ? T(r, [2, 2, 2]) : T(r, [4]), false))
          if (!(field === "bias" && h.v == null)) out.push({ v: [{ ...base(), [field]: h.v }], what: `parts[0].${field} = ${h.what}` });
      return out;
    }
    case "weights": {
      const base = current as Record<string, Tensor>;
      const out: { v: unknown; what: string }[] = kinds(2);
      for (const field of p.fields ?? [])
        for (const h of hostileTensors(r, base[field], false)) out.push({ v: { ...base, [field]: h.v }, what: `${p.name}.${field} = ${h.what}` });
      return out;
    }
    case "options":
      return [null, 5, "opts", true, () => 1, 3n, Symbol("o")].map((v) => ({ v, what: `options = ${describeArg(v)}` }));
  }
}

// ---- running a call --------------------------------------------------------------------------------------------------

interface CallOutcome {
  ok: boolean;
  backward: boolean;
  error?: unknown;
}

function run(name: string, args: unknown[], grad: boolean): CallOutcome {
  if (grad) for (const a of args) if (a instanceof Tensor && a.dtype === "float32" && a.isLeaf && !a.isDisposed && a.data.length === a.shape.reduce((x, y) => x * y, 1)) a.requiresGrad = true;
  try {
    const out = table[name](...args) as Tensor | { y?: Tensor; h?: Tensor };
    const t = out instanceof Tensor ? out : (out as { y?: Tensor }).y ?? (out as { h?: Tensor }).h;
    if (t instanceof Tensor && t.requiresGrad && t.dtype === "float32") {
      ops.sum(t).backward();
      return { ok: true, backward: true };
    }
    return { ok: true, backward: false };
  } catch (error) {
    return { ok: false, backward: false, error };
  }
}

export interface Finding {
  case: string;
  problem: string;
}

export interface SweepResult {
  cases: number;
  ok: number;
  threw: number;
  byOp: Record<string, number>;
  findings: Finding[];
  /** distinct error messages (argument values replaced by #), for the report */
  messages: number;
}

/** Every op x every argument x every hostile value, plus every option key x bad values. */
export function sweepOps(options: { seed: number }, progress: Progress): SweepResult {
  const r = new Rand(options.seed);
  const res: SweepResult = { cases: 0, ok: 0, threw: 0, byOp: {}, findings: [], messages: 0 };
  const seen = new Set<string>();
  const one = (name: string, args: unknown[], hostile: string, what: string) => {
    const label = `ops.${name} ${hostile} = ${what}`;
    progress(label);
    res.cases++;
    res.byOp[name] = (res.byOp[name] ?? 0) + 1;
    const out = run(name, args, r.bool());
    if (out.ok) res.ok++;
    else {
      res.threw++;
      const m = `${(out.error as Error)?.constructor?.name}: ${(out.error as Error)?.message}`.replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, "#");
      if (!seen.has(m) && process.env.XLSTM_FUZZ_VERBOSE) progress(`   message: ${m}`);
      seen.add(m);
      const bad = checkOpError(name, out.error, hostile);
      if (bad && res.findings.length < 300) res.findings.push({ case: label, problem: bad });
    }
  };
  for (const name of coveredOps()) {
    const sig = SIGNATURES[name];
    sig.forEach((p, i) => {
      for (const h of hostileValues(r, p, BUILDERS[name](new Rand(options.seed + i))[i])) {
        const args = BUILDERS[name](new Rand(options.seed + i));
        while (args.length <= i) args.push(undefined);
        args[i] = h.v;
        one(name, args, p.name, h.what);
      }
      if (p.kind === "options")
        for (const [key, bads] of Object.entries(p.keys ?? {}))
          for (const v of bads) {
            const args = BUILDERS[name](new Rand(options.seed + i));
            while (args.length <= i) args.push({});
            args[i] = { ...((args[i] as object) ?? {}), [key]: v };
            one(name, args, key, describeArg(v));
          }
    });
    // fields of a nested option (mlstm's initialState)
    if (name === "mlstm")
      for (const field of ["c", "n", "m"])
        for (const h of hostileTensors(r, null, false)) {
          const args = BUILDERS.mlstm(new Rand(options.seed));
          const [q, , v] = args as Tensor[];
          const [B, NH, , DK] = q.shape, DV = v.shape[3];
          const st: Record<string, unknown> = { c: T(r, [B, NH, DK, DV]), n: T(r, [B, NH, DK]), m: T(r, [B, NH]) };
          st[field] = h.v;
          args[5] = { ...(args[5] as object), initialState: st };
          one(name, args, `initialState.${field}`, h.what);
        }
    // too few arguments: each prefix of a valid call
    const full = BUILDERS[name](new Rand(options.seed));
    for (let n = 0; n < full.length; ++n) {
      const p = sig[n];
      if (p.kind === "tensor?" || p.kind === "number?" || p.kind === "bool?" || p.kind === "device?" || p.kind === "dims?" || p.kind === "options") continue;
      one(name, full.slice(0, n), p.name, "missing");
    }
  }
  res.messages = seen.size;
  return res;
}

// ---- random calls ----------------------------------------------------------------------------------------------------

type OpCall = { name: string; args: unknown[] };

/** Replace one Tensor / number / option somewhere in the call's argument tree with something hostile. */
function mutateOp(r: Rand, call: OpCall): string {
  const paths: { get: () => unknown; set: (v: unknown) => void; what: string }[] = [];
  const visit = (holder: Record<string | number, unknown>, key: string | number, what: string, depth: number) => {
    const v = holder[key];
    paths.push({ get: () => holder[key], set: (nv) => (holder[key] = nv), what });
    if (depth > 2 || v === null || typeof v !== "object" || v instanceof Tensor || ArrayBuffer.isView(v) || util.types.isProxy(v)) return;
    for (const k of Object.keys(v)) visit(v as Record<string, unknown>, k, `${what}.${k}`, depth + 1);
  };
  call.args.forEach((_, i) => visit(call.args as unknown as Record<number, unknown>, i, `arg${i}`, 0));
  if (!paths.length) return "none";
  const p = r.pick(paths);
  const v = p.get();
  const k = r.int(9);
  let nv: unknown;
  if (v instanceof Tensor) {
    if (k === 0) nv = v.dtype === "float32" ? v.to(r.pick(["bfloat16", "int32", "int64"] as DType[])) : v.to("float32");
    else if (k === 1) nv = T(r, Array.from({ length: r.int(5) }, () => r.pick([0, 1, 2, 3, 5])));
    else if (k === 2) nv = detachedTensor(r, v.shape);
    else if (k === 3) nv = T(r, [...v.shape, 1]);
    else if (k === 4) nv = v.ndim ? T(r, v.shape.slice(1)) : T(r, [2]);
    else if (k === 5) {
      const t = T(r, [...v.shape]);
      t.f32().fill(r.pick([NaN, Infinity, -Infinity, 3e38]));
      nv = t;
    } else if (k === 6) nv = r.pick([...fakeTensors(v), shrunkTensor(r, v.shape) ?? detachedTensor(r, v.shape)]);
    else nv = r.pick(wrongKinds(r, Math.max(1, v.numel)));
  } else if (typeof v === "number") nv = k < 6 ? r.pick(ABSURD_NUMBERS) : r.pick(wrongKinds(r, 2));
  else nv = k < 4 ? r.pick(wrongKinds(r, 3)) : r.pick([{ form: "bogus" }, { chunkSize: NaN }, { reduction: "bogus" }, { ignoreIndex: 2 ** 60 }, { eps: -1 }, { approximate: 1 }, { training: "yes" }, { initialState: {} }, [9, 9, 9], [-1], [0, 0]]);
  p.set(nv);
  const shown = nv instanceof Tensor ? `${nv}${nv.data.length !== nv.shape.reduce((a, b) => a * b, 1) ? " (storage detached or shrunk)" : ""}` : describeArg(nv);
  return `${p.what} = ${shown}`;
}

export interface OpsFuzzResult {
  cases: number;
  ok: number;
  threw: number;
  backwardOk: number;
  byOp: Record<string, number>;
  findings: (Finding & { mutation: string })[];
}

/** Seeded random calls of every op: 30% valid (must succeed), 70% mutated once or twice (strict oracle). */
export function fuzzOps(options: { seed: number; cases: number }, progress: Progress): OpsFuzzResult {
  const r = new Rand(options.seed);
  const names = coveredOps();
  const res: OpsFuzzResult = { cases: 0, ok: 0, threw: 0, backwardOk: 0, byOp: {}, findings: [] };
  for (let c = 0; c < options.cases; ++c) {
    const name = r.pick(names);
    const call = { name, args: BUILDERS[name](r) };
    const mutated = r.bool(0.7);
    let desc = "plain";
    try {
      if (mutated) desc = mutateOp(r, call);
      if (mutated && r.bool(0.2)) desc += `; ${mutateOp(r, call)}`;
    } catch {
      continue; // e.g. converting a tensor whose storage an earlier mutation detached
    }
    const label = `#${c} ops.${name} ${desc}`;
    progress(label);
    res.cases++;
    res.byOp[name] = (res.byOp[name] ?? 0) + 1;
    const out = run(name, call.args, r.bool(0.5));
    if (out.ok) {
      res.ok++;
      if (out.backward) res.backwardOk++;
      continue;
    }
    res.threw++;
    const e = out.error;
    let bad: string | null;
    if (!mutated) bad = `a valid call threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`;
    else bad = checkOpError(name, e);
    if (bad && res.findings.length < 300) res.findings.push({ case: label, mutation: desc, problem: bad });
  }
  return res;
}
