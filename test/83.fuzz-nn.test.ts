// Layer 8 (reliability): bad calls of the public module API. For every public Module class (small configs) and every
// entry point (forward / step / generate, the xLSTM Large decoder's factories, lib/generate's generate /
// generateBatch / sampleLogits, the fused inference session), every argument is replaced in turn by each value of a
// hostile list: undefined, null, 5, "x", {}, [], objects with Tensor's prototype (bare, or with broken fields), a
// tensor whose buffer was transferred away (structuredClone(buf, { transfer: [buf] })), tensors of the wrong dtype
// and shape, token ids outside the vocabulary; options objects get each key set to bad values; recurrent states get
// every part (down to each tensor) replaced by the same hostile values.
// Oracle: the call throws a TypeError or RangeError whose message starts with the class and method name
// ("xLSTMLMModel.forward: ", "nn.LSTM.forward: ", "generate: ") and names the argument, never an engine error
// ("Cannot read properties of undefined", ...) or an error named after an inner op. Every valid template call runs.
import { strict as assert } from "assert";
import { Generator, nn, Tensor } from "../lib";
import type { DType } from "../lib";
import { generate, generateBatch, sampleLogits } from "../lib/generate";
import { createInferenceSession, InferenceSession } from "../lib/infer/session";

/** Errors raised by the JavaScript engine rather than by a check (as test/82.fuzz-ops-driver.ts). */
const ENGINE_ERRORS =
  /Cannot read properties|Cannot set properties|is not a function|is not iterable|Cannot convert|Invalid typed array length|Invalid array length|Maximum call stack|Array buffer allocation failed|offset is out of bounds|Cannot destructure|Cannot perform|is not a constructor|is not defined|Cannot create property|Cannot mix BigInt|Cannot access|^ops\./;

interface Hostile {
  v: unknown;
  /** how the case is shown */
  what: string;
  /** the argument / option / state part the error message must name */
  name: string;
}

interface Entry {
  /** the class and method (or function) name every message must start with */
  name: string;
  /** fresh valid arguments */
  valid: () => unknown[];
  /** run the entry point (may return a Promise that rejects) */
  call: (args: unknown[]) => unknown;
  /** one per position: the hostile values for it, given the valid value there */
  params: { name: string; hostile: (valid: unknown) => Hostile[] }[];
  /** message prefix when not `name` (nn.LSTM) */
  prefix?: string;
}

// ---- hostile values -----------------------------------------------------------------------------------------------

const g = new Generator(83);

function tensor(shape: number[], dtype: DType = "float32"): Tensor {
  const t = Tensor.randn(shape, { generator: g });
  return dtype === "float32" ? t : t.to(dtype);
}
function ids(shape: number[], V: number, dtype: "int32" | "int64" = "int32"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return dtype === "int32" ? new Tensor(Int32Array.from({ length: n }, () => g.int(V)), shape) : new Tensor(BigInt64Array.from({ length: n }, () => BigInt(g.int(V))), shape);
}
/** A tensor whose storage was transferred away after it was made (0 stored elements for its shape). */
/** A copy of t's typed array, then its buffer transferred away (the array left detached). */
function transferredArray(t: Tensor): Tensor["data"] {
  const d = t.clone().data;
  structuredClone(d.buffer as ArrayBuffer, { transfer: [d.buffer as ArrayBuffer] });
  return d;
}
function transferred(t: Tensor): Tensor {
  const c = t.dtype === "float32" ? tensor([...t.shape]) : t.clone();
  const buf = c.data.buffer as ArrayBuffer;
  structuredClone(buf, { transfer: [buf] });
  return c;
}
function fakeTensors(): Hostile[] {
  const broken = Object.create(Tensor.prototype) as Record<string, unknown>;
  broken.shape = [2, 3];
  Object.defineProperty(broken, "data", { value: "not a typed array" });  // shadows Tensor's getter
  broken.dtype = "float32";
  return [
    { v: Object.create(Tensor.prototype), what: "object with Tensor's prototype", name: "" },
    { v: broken, what: "Tensor-prototype object with broken fields", name: "" },
  ];
}

/** undefined, null, 5, "x", {}, [], fake tensors; without the values `keep` says are valid there. */
function kinds(name: string, keep: { nullish?: boolean; emptyObject?: boolean } = {}): Hostile[] {
  const all: Hostile[] = [
    { v: undefined, what: "undefined", name },
    { v: null, what: "null", name },
    { v: 5, what: "5", name },
    { v: "x", what: '"x"', name },
    { v: {}, what: "{}", name },
    { v: [], what: "[]", name },
    ...fakeTensors().map((h) => ({ ...h, name })),
  ];
  return all.filter((h) => !(keep.nullish && h.v == null) && !(keep.emptyObject && h.what === "{}"));
}

/** Hostile values for a float32 tensor argument like `like`: kinds, transferred storage, wrong dtypes and shapes. */
function floatHostile(name: string, badShapes: number[][], optional = false): (like: unknown) => Hostile[] {
  return (like) => {
    const t = like as Tensor;
    return [
      ...kinds(name, { nullish: optional }),
      { v: transferred(t), what: "tensor with transferred storage", name },
      ...(["int32", "int64", "bfloat16"] as const).map((dt) => ({ v: tensor([...t.shape], dt), what: `${dt} tensor`, name })),
      { v: Tensor.scalar(1), what: "0-d tensor", name },
      ...badShapes.map((s) => ({ v: tensor(s), what: `shape [${s}]`, name })),
    ];
  };
}

/** Hostile values for token ids like `like` (vocabulary V): kinds, transferred, float dtypes, bad shapes, bad ids. */
function idsHostile(name: string, V: number, badShapes: number[][], optional = false): (like: unknown) => Hostile[] {
  return (like) => {
    const t = like as Tensor;
    const n = t.numel;
    return [
      ...kinds(name, { nullish: optional }),
      { v: transferred(t), what: "ids with transferred storage", name },
      ...(["float32", "bfloat16"] as const).map((dt) => ({ v: tensor([...t.shape], dt), what: `${dt} tensor`, name })),
      ...badShapes.map((s) => ({ v: ids(s, V), what: `shape [${s}]`, name })),
      { v: new Tensor(Int32Array.from({ length: n }, (_, i) => (i === n - 1 ? V : 0)), [...t.shape]), what: `id ${V} (= vocab_size)`, name },
      { v: new Tensor(Int32Array.from({ length: n }, () => -1), [...t.shape]), what: "id -1", name },
      { v: new Tensor(BigInt64Array.from({ length: n }, () => 2n ** 40n), [...t.shape]), what: "int64 id 2^40", name },
    ];
  };
}

/** A copy of `root` (plain objects copied along `path`, tensors shared) with the value at `path` replaced. */
function setAt(root: unknown, path: string[], v: unknown): unknown {
  if (path.length === 0) return v;
  const src = root as Record<string, unknown>;
  const copy: Record<string, unknown> = Array.isArray(src) ? ([...src] as unknown as Record<string, unknown>) : { ...src };
  copy[path[0]] = setAt(src[path[0]], path.slice(1), v);
  return copy;
}

/**
 * Hostile states derived from a valid one: the whole state of a wrong kind, then every nested object and every
 * tensor replaced in turn (kinds, a tensor where an object belongs, transferred storage, wrong dtype, wrong shapes).
 */
function stateHostile(name: string, keep: { nullish?: boolean; emptyObject?: boolean } = { nullish: true, emptyObject: true }): (valid: unknown) => Hostile[] {
  return (valid) => {
    const out: Hostile[] = [...kinds(name, keep), { v: tensor([2]), what: "a Tensor", name }];
    const visit = (path: string[], v: unknown) => {
      const label = `${name}.${path.join(".")}`;
      const leaf = path[path.length - 1];
      if (v instanceof Tensor) {
        const bad: Hostile[] = [
          ...kinds(leaf, { nullish: true, emptyObject: false }),
          { v: transferred(v), what: "transferred storage", name: leaf },
          { v: v.to("int32"), what: "int32", name: leaf },
          { v: tensor([...v.shape, 2]), what: "one more dimension", name: leaf },
          { v: tensor(v.shape.map((s, j) => (j === v.ndim - 1 ? s + 1 : s))), what: "last size + 1", name: leaf },
        ];
        for (const h of bad) out.push({ v: setAt(valid, path, h.v), what: `${label} = ${h.what}`, name: leaf });
        return;
      }
      if (v === null || typeof v !== "object") return;
      if (path.length)
        for (const h of [...kinds(leaf, { nullish: true, emptyObject: true }), { v: tensor([2]), what: "a Tensor", name: leaf }])
          out.push({ v: setAt(valid, path, h.v), what: `${label} = ${h.what}`, name: leaf });
      for (const k of Object.keys(v)) visit([...path, k], (v as Record<string, unknown>)[k]);
    };
    visit([], valid);
    return out;
  };
}

/**
 * Hostile values for an options object: wrong kinds (null; undefined too when the options are `required`; never {}),
 * then each key set to each of its bad values, and each `extra` key (a state) to each of the values it derives.
 */
function optionsHostile(keys: Record<string, unknown[]>, extra: Record<string, (validValue: unknown) => Hostile[]> = {}, required = false): (valid: unknown) => Hostile[] {
  return (valid) => {
    const base = (valid ?? {}) as Record<string, unknown>;
    const out: Hostile[] = [...kinds("options", { nullish: true, emptyObject: true }), { v: null, what: "null", name: "options" }];
    if (required) out.push({ v: undefined, what: "undefined", name: "options" });
    for (const [k, bads] of Object.entries(keys)) for (const b of bads) out.push({ v: { ...base, [k]: b }, what: `{ ${k}: ${show(b)} }`, name: k });
    for (const [k, fn] of Object.entries(extra)) for (const h of fn(base[k])) out.push({ v: { ...base, [k]: h.v }, what: `{ ${k}: ${h.what} }`, name: h.name || k });
    return dedupe(out);
  };
}

function dedupe(hs: Hostile[]): Hostile[] {
  const seen = new Set<string>();
  return hs.filter((h) => (seen.has(h.what) ? false : (seen.add(h.what), true)));
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Tensor) return `Tensor ${v.dtype} [${v.shape}]`;
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (v !== null && typeof v === "object") return v.constructor?.name ?? "object";
  return String(v);
}

const BAD_BOOL = ["yes", 1, null];

// ---- oracle -----------------------------------------------------------------------------------------------------

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Does `text` name `name` as a token (not inside a longer identifier)? */
function mentions(text: string, name: string): boolean {
  return new RegExp(`(^|[^\\w])${escapeRe(name)}(?![\\w])`).test(text);
}

/** null when `e` is an acceptable refusal of `entry` for a hostile value naming `h.name`; otherwise the problem. */
function checkRefusal(entry: Entry, e: unknown, h: Hostile): string | null {
  if (!(e instanceof Error)) return `threw a non-Error ${show(e)}`;
  const msg = `${e.constructor.name}: ${e.message}`;
  if (ENGINE_ERRORS.test(e.message)) return `engine or inner-op error instead of a check: ${msg}`;
  if (!(e instanceof TypeError || e instanceof RangeError)) return `threw ${msg} (expected a TypeError or RangeError)`;
  const prefix = `${entry.prefix ?? entry.name}: `;
  if (!e.message.startsWith(prefix)) return `message does not start with "${prefix}": ${msg}`;
  if (h.name && !mentions(e.message.slice(prefix.length), h.name)) return `message does not name "${h.name}": ${msg}`;
  return null;
}

async function outcome(entry: Entry, args: unknown[]): Promise<{ ok: true } | { ok: false; error: unknown }> {
  try {
    await entry.call(args);
    return { ok: true };
  } catch (error) {
    return { ok: false, error };
  }
}

// ---- the models and entry points --------------------------------------------------------------------------------

const E = 8, V = 11;
const slstmCfg = { embedding_dim: E, num_heads: 2, conv1d_kernel_size: 2 };
const mlstmCfg = { embedding_dim: E, num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4, round_proj_up_to_multiple_of: 8 };
const stackCfg = {
  embedding_dim: E,
  num_blocks: 2,
  slstm_at: [1],
  mlstm_block: { mlstm: { num_heads: 2, conv1d_kernel_size: 2, qkv_proj_blocksize: 4, round_proj_up_to_multiple_of: 8 } },
  slstm_block: { slstm: { num_heads: 2, conv1d_kernel_size: 2 }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } },
};
const LARGE = { embedding_dim: 32, num_heads: 2, num_blocks: 2, vocab_size: 40, chunk_size: 16, mode: "inference" as const };

function entries(): Entry[] {
  const gen = { generator: new Generator(1) };
  const lstm = new nn.LSTM({ input_size: 3, hidden_size: 4, num_layers: 2, batch_first: true, ...gen });
  const norm = new nn.LayerNorm(4);
  const ffn = new nn.GatedFeedForward({ embedding_dim: 4, proj_factor: 1.3 }, gen);
  const linear = new nn.Linear(4, 3);
  const slstm = new nn.sLSTMLayer(slstmCfg, gen);
  const mlstm = new nn.mLSTMLayer(mlstmCfg, gen);
  const sBlock = new nn.xLSTMBlock(new nn.sLSTMLayer(slstmCfg, gen) as unknown as nn.BlockLayer, E, { proj_factor: 1.3 }, gen);
  const mBlock = new nn.xLSTMBlock(new nn.mLSTMLayer(mlstmCfg, gen) as unknown as nn.BlockLayer, E, null, gen);
  const stack = new nn.xLSTMBlockStack(stackCfg, gen);
  const lm = new nn.xLSTMLMModel({ ...stackCfg, vocab_size: V }, gen).eval();
  const large = new nn.xLSTMLarge(LARGE, gen);
  const decoder = nn.xLSTMLargeDecoder.fromModel(large, { dtype: "float32" });
  const VL = LARGE.vocab_size;

  const x = (S: number) => () => tensor([2, S, E]);
  const returned = <T>(fn: () => T) => fn(); // states made by valid calls, reused by the templates
  const sState = returned(() => slstm.forward(tensor([2, 3, E]), { returnLastState: true }).state);
  const sStep = returned(() => slstm.step(tensor([2, 1, E])).state);
  const mState = returned(() => mlstm.forward(tensor([2, 3, E]), { returnLastState: true }).state);
  const mStep = returned(() => mlstm.step(tensor([2, 1, E])).state);
  const stackState = returned(() => stack.forward(tensor([2, 3, E]), { returnLastState: true }).state);
  const stackStep = returned(() => stack.step(tensor([2, 1, E])).state);
  const lmState = returned(() => lm.forward(ids([2, 3], V), { returnLastState: true }).state);
  const lmStep = returned(() => lm.step(ids([2, 1], V)).state);
  const largeState = returned(() => large.forward(ids([2, 3], VL), { returnLastState: true }).state);
  const layerKeys = { returnLastState: BAD_BOOL };
  const seqShapes = [[2, 3, E + 1], [2, 3], [2, 3, E, 1], [0]];
  const stepShapes = [[2, 2, E], [2, 1, E + 1], [2, E], [2, 1, E, 1]];

  const list: Entry[] = [
    {
      name: "nn.LSTM.forward",
      valid: () => [tensor([2, 3, 3]), [tensor([2, 2, 4]), tensor([2, 2, 4])]],
      call: ([a, b]) => lstm.forward(a as Tensor, b as [Tensor, Tensor]),
      params: [
        { name: "x", hostile: floatHostile("x", [[2, 3, 4], [2, 3], [2, 3, 3, 1]]) },
        {
          name: "state",
          hostile: (valid) => {
            const [h0, c0] = valid as Tensor[];
            return [
              ...kinds("state", { nullish: true }),
              { v: [h0], what: "[h0]", name: "state" },
              { v: [h0, c0, h0], what: "[h0, c0, h0]", name: "state" },
              ...floatHostile("h0", [[1, 2, 4], [2, 3, 4], [2, 2, 5]])(h0).map((h) => ({ ...h, v: [h.v, c0], what: `[${h.what}, c0]`, name: "h0" })),
              ...floatHostile("c0", [[1, 2, 4], [2, 2, 4, 1]])(c0).map((h) => ({ ...h, v: [h0, h.v], what: `[h0, ${h.what}]`, name: "c0" })),
            ];
          },
        },
      ],
    },
    { name: "LayerNorm.forward", valid: () => [tensor([2, 3, 4])], call: ([a]) => norm.forward(a as Tensor), params: [{ name: "x", hostile: floatHostile("x", [[2, 3, 5], [0]]) }] },
    { name: "GatedFeedForward.forward", valid: () => [tensor([2, 3, 4])], call: ([a]) => ffn.forward(a as Tensor), params: [{ name: "x", hostile: floatHostile("x", [[2, 3, 5], [0]]) }] },
    { name: "Linear.forward", valid: () => [tensor([2, 4])], call: ([a]) => linear.forward(a as Tensor), params: [{ name: "x", hostile: floatHostile("x", [[2, 5], [0]]) }] },
    {
      name: "sLSTMLayer.forward",
      valid: () => [tensor([2, 3, E]), { state: sState, returnLastState: true }],
      call: ([a, o]) => slstm.forward(a as Tensor, o as never),
      params: [{ name: "x", hostile: floatHostile("x", seqShapes) }, { name: "options", hostile: optionsHostile(layerKeys, { state: stateHostile("state") }) }],
    },
    {
      name: "sLSTMLayer.step",
      valid: () => [tensor([2, 1, E]), sStep],
      call: ([a, s]) => slstm.step(a as Tensor, s as never),
      params: [{ name: "x", hostile: floatHostile("x", stepShapes) }, { name: "state", hostile: stateHostile("state") }],
    },
    {
      name: "mLSTMLayer.forward",
      valid: () => [tensor([2, 3, E]), { state: mState, returnLastState: true, form: "auto" }],
      call: ([a, o]) => mlstm.forward(a as Tensor, o as never),
      params: [{ name: "x", hostile: floatHostile("x", seqShapes) }, { name: "options", hostile: optionsHostile({ ...layerKeys, form: ["bogus", 1, null] }, { state: stateHostile("state") }) }],
    },
    {
      name: "mLSTMLayer.step",
      valid: () => [tensor([2, 1, E]), mStep],
      call: ([a, s]) => mlstm.step(a as Tensor, s as never),
      params: [{ name: "x", hostile: floatHostile("x", stepShapes) }, { name: "state", hostile: stateHostile("state") }],
    },
  ];
  for (const [which, block] of [["sLSTM", sBlock], ["mLSTM", mBlock]] as const) {
    const fwdState = which === "sLSTM" ? sState : mState, stepState = which === "sLSTM" ? sStep : mStep;
    list.push(
      {
        name: "xLSTMBlock.forward",
        valid: () => [tensor([2, 3, E]), { state: fwdState, returnLastState: true }],
        call: ([a, o]) => block.forward(a as Tensor, o as never),
        params: [{ name: "x", hostile: floatHostile("x", seqShapes) }, { name: "options", hostile: optionsHostile(layerKeys, { state: stateHostile("state") }) }],
      },
      {
        name: "xLSTMBlock.step",
        valid: () => [tensor([2, 1, E]), stepState],
        call: ([a, s]) => block.step(a as Tensor, s as never),
        params: [{ name: "x", hostile: floatHostile("x", stepShapes) }, { name: "state", hostile: stateHostile("state") }],
      },
    );
  }
  list.push(
    {
      name: "xLSTMBlockStack.forward",
      valid: () => [tensor([2, 3, E]), { state: stackState, returnLastState: true }],
      call: ([a, o]) => stack.forward(a as Tensor, o as never),
      params: [{ name: "x", hostile: floatHostile("x", seqShapes) }, { name: "options", hostile: optionsHostile(layerKeys, { state: stateHostile("state") }) }],
    },
    {
      name: "xLSTMBlockStack.step",
      valid: () => [tensor([2, 1, E]), stackStep],
      call: ([a, s]) => stack.step(a as Tensor, s as never),
      params: [{ name: "x", hostile: floatHostile("x", stepShapes) }, { name: "state", hostile: stateHostile("state") }],
    },
    {
      name: "xLSTMLMModel.forward",
      valid: () => [ids([2, 3], V), { state: lmState, returnLastState: true }],
      call: ([a, o]) => lm.forward(a as Tensor, o as never),
      params: [{ name: "idx", hostile: idsHostile("idx", V, [[2, 3, 1], [6]]) }, { name: "options", hostile: optionsHostile(layerKeys, { state: stateHostile("state") }) }],
    },
    {
      name: "xLSTMLMModel.step",
      valid: () => [ids([2, 1], V, "int64"), lmStep],
      call: ([a, s]) => lm.step(a as Tensor, s as never),
      params: [{ name: "idx", hostile: idsHostile("idx", V, [[2, 2], [2], [2, 1, 1]]) }, { name: "state", hostile: stateHostile("state") }],
    },
  );
  for (const [cls, model] of [["xLSTMLarge", large], ["xLSTMLargeDecoder", decoder]] as const) {
    const fwdKeys: Record<string, unknown[]> = cls === "xLSTMLarge" ? layerKeys : { ...layerKeys, logits: ["first", 1, null], inPlace: BAD_BOOL };
    list.push(
      {
        name: `${cls}.forward`,
        valid: () => [ids([2, 3], VL), { state: largeState, returnLastState: true }],
        call: ([a, o]) => model.forward(a as Tensor, o as never),
        params: [{ name: "idx", hostile: idsHostile("idx", VL, [[2, 3, 1], [6], [2, 0]]) }, { name: "options", hostile: optionsHostile(fwdKeys, { state: stateHostile("state") }) }],
      },
      {
        name: `${cls}.step`,
        valid: () => [ids([2, 1], VL), largeState],
        call: ([a, s]) => model.step(a as Tensor, s as never),
        params: [{ name: "idx", hostile: idsHostile("idx", VL, [[2, 2], [2], [2, 1, 1]]) }, { name: "state", hostile: stateHostile("state") }],
      },
      {
        name: `${cls}.generate`,
        valid: () => [ids([2, 3], VL), { maxLength: 2, state: largeState }],
        call: ([a, o]) => model.generate(a as Tensor, o as never),
        params: [
          { name: "prefillTokens", hostile: idsHostile("prefillTokens", VL, [[2, 3, 1], [2, 0]], true) },
          { name: "options", hostile: optionsHostile({ maxLength: [-1, 0.5, "2", NaN, 2 ** 40], samplingType: ["top_k", 1] }, { state: stateHostile("state") }, true) },
        ],
      },
      {
        name: `${cls}.generate`,
        valid: () => [null, { maxLength: 2, bosTokenId: 1, batchSizeNoPrefill: 2 }],
        call: ([a, o]) => model.generate(a as Tensor, o as never),
        params: [
          { name: "prefillTokens", hostile: () => [] }, // (null: covered above)
          { name: "options", hostile: optionsHostile({ bosTokenId: [-1, VL, 0.5, "1", 2 ** 40], batchSizeNoPrefill: [0, -1, 1.5, "2", 2 ** 40] }, {}, true) },
        ],
      },
    );
  }
  list.push({
    name: "xLSTMLargeDecoder.forwardAsync",
    valid: () => [ids([2, 3], VL), { state: largeState, returnLastState: true }],
    call: ([a, o]) => decoder.forwardAsync(a as Tensor, o as never),
    params: [
      { name: "idx", hostile: idsHostile("idx", VL, [[2, 3, 1], [6], [2, 0]]) },
      { name: "options", hostile: optionsHostile({ ...layerKeys, logits: ["first", 1, null], inPlace: BAD_BOOL }, { state: stateHostile("state") }) },
    ],
  });

  list.push({
    name: "xLSTMLargeDecoder.fromModel",
    valid: () => [large, { dtype: "float32" }],
    call: ([m, o]) => nn.xLSTMLargeDecoder.fromModel(m as nn.xLSTMLarge, o as never),
    params: [
      { name: "model", hostile: () => [...kinds("model"), { v: lm, what: "an xLSTMLMModel", name: "model" }] },
      { name: "options", hostile: optionsHostile({ dtype: ["float16", 1], roundActivations: ["yes", 1] }) },
    ],
  });

  // lib/generate
  const genOptions = {
    temperature: [-1, "x", NaN, Infinity],
    topK: [-1, 0.5, "x"],
    topP: [0, 2, "x"],
    maxTokens: [-1, 0.5, "x"],
    seed: ["x", NaN],
    tokenizer: [5, {}, "x"],
    signal: [5, {}, "x"],
    stop: [5, "x", [1]],
    fused: ["yes", 1],
  };
  const promptHostile = (name: string) => (): Hostile[] => [
    ...kinds(name).filter((h) => h.what !== "[]"),
    { v: [], what: "[] (empty)", name: "" },
    { v: "abc", what: "a string without a tokenizer", name: "" },
    { v: [0.5], what: "[0.5]", name: `${name}[0]` },
    { v: ["1"], what: '["1"]', name: `${name}[0]` },
    { v: [1, V], what: `[1, ${V}]`, name: `${name}[1]` },
    { v: [-1], what: "[-1]", name: `${name}[0]` },
    { v: [2 ** 32 + 1], what: "[2^32 + 1]", name: `${name}[0]` },
    { v: BigInt64Array.of(1n), what: "BigInt64Array", name: `${name}[0]` },
    { v: transferredArray(ids([3], V)), what: "Int32Array with transferred buffer", name: "" },
  ];
  const modelHostile = (): Hostile[] => [...kinds("model"), { v: new nn.LayerNorm(3), what: "a LayerNorm", name: "model" }];
  list.push(
    {
      name: "generate",
      valid: () => [lm, [1, 2, 3], { maxTokens: 2, temperature: 0 }],
      call: ([m, p, o]) => generate(m as never, p as never, o as never).next(),
      params: [{ name: "model", hostile: modelHostile }, { name: "prompt", hostile: promptHostile("prompt") }, { name: "options", hostile: optionsHostile(genOptions) }],
    },
    {
      name: "generateBatch",
      valid: () => [lm, [[1, 2], [3]], { maxTokens: 2, temperature: 0 }],
      call: ([m, p, o]) => generateBatch(m as never, p as never, o as never),
      params: [
        { name: "model", hostile: modelHostile },
        {
          name: "prompts",
          hostile: () => [
            ...kinds("prompts").filter((h) => h.what !== "[]"),
            { v: [], what: "[]", name: "prompts" },
            ...promptHostile("prompts[1]")().filter((h) => h.v !== undefined).map((h) => ({ ...h, v: [[1, 2], h.v], what: `[[1, 2], ${h.what}]` })),
          ],
        },
        { name: "options", hostile: optionsHostile(genOptions) },
      ],
    },
    {
      name: "sampleLogits",
      valid: () => [Float32Array.of(0, 1, 2), { temperature: 0.5 }, new Generator(1)],
      call: ([l, o, gg]) => sampleLogits(l as never, o as never, gg as never),
      params: [
        { name: "logits", hostile: () => [...kinds("logits"), { v: [0, 1], what: "[0, 1]", name: "logits" }, { v: new Float64Array(2), what: "Float64Array", name: "logits" }, { v: new Float32Array(0), what: "empty", name: "logits" }] },
        { name: "options", hostile: optionsHostile({ temperature: [-1, "x"], topK: [-1, "x"], topP: [0, "x"] }) },
        { name: "gen", hostile: () => kinds("gen") },
      ],
    },
  );

  // lib/infer: the fused session
  const session = createInferenceSession(lm, { batch: 2 });
  const sessionState = session.getState();
  const tokensHostile = (n: number) => (): Hostile[] => [
    ...kinds("tokens"),
    { v: Array.from({ length: n }, () => 1), what: "number[]", name: "tokens" },
    { v: new Float32Array(n), what: "Float32Array", name: "tokens" },
    { v: ids([n], V), what: "a Tensor", name: "tokens" },
    { v: transferredArray(ids([n], V)), what: "Int32Array with transferred buffer", name: "tokens" },
    { v: new Int32Array(n + 1), what: "one too many", name: "tokens" },
    { v: Int32Array.from({ length: n }, () => V), what: `id ${V}`, name: "tokens" },
  ];
  list.push(
    {
      name: "createInferenceSession",
      valid: () => [lm, { batch: 1 }],
      call: ([m, o]) => (createInferenceSession(m as never, o as never) as InferenceSession).dispose(),
      params: [
        { name: "model", hostile: () => [...kinds("model"), { v: large, what: "an xLSTMLarge", name: "model" }] },
        { name: "options", hostile: optionsHostile({ batch: [0, -1, 1.5, "2", 2 ** 40] }) },
      ],
    },
    { name: "InferenceSession.step", valid: () => [Int32Array.of(1, 2)], call: ([t]) => session.step(t as never), params: [{ name: "tokens", hostile: tokensHostile(2) }] },
    {
      name: "InferenceSession.prefill",
      valid: () => [Int32Array.of(1, 2, 3, 4), 2],
      call: ([t, S]) => session.prefill(t as never, S as never),
      params: [
        { name: "tokens", hostile: tokensHostile(4) },
        { name: "S", hostile: () => [...kinds("S").filter((h) => h.v !== undefined), { v: undefined, what: "undefined", name: "S" }, ...[0, -1, 1.5, NaN, 2 ** 40].map((v) => ({ v, what: String(v), name: v === 2 ** 40 ? "tokens" : "S" }))] },
      ],
    },
    {
      name: "InferenceSession.setState",
      valid: () => [sessionState],
      call: ([s]) => session.setState(s as never),
      params: [{ name: "state", hostile: stateHostile("state") }],
    },
  );
  return list;
}

// ---- the test -----------------------------------------------------------------------------------------------------

describe("83 fuzz: bad calls of the nn / generate / infer entry points", function () {
  this.timeout(60_000);

  it("every entry point x every argument x every hostile value: a TypeError/RangeError starting with the class and method, naming the argument", async () => {
    const t0 = Date.now();
    const list = entries();
    const findings: string[] = [];
    let cases = 0;
    const byEntry = new Map<string, number>();
    const messages = new Set<string>();
    for (const entry of list) {
      const ok = await outcome(entry, entry.valid());
      if (!ok.ok) findings.push(`${entry.name}: the valid template call threw ${(ok.error as Error)?.message}`);
      for (let i = 0; i < entry.params.length; ++i) {
        const p = entry.params[i];
        for (const h of p.hostile(entry.valid()[i])) {
          const args = entry.valid();
          args[i] = h.v;
          cases++;
          byEntry.set(entry.name, (byEntry.get(entry.name) ?? 0) + 1);
          const r = await outcome(entry, args);
          const label = `${entry.name} ${p.name} = ${h.what}`;
          if (r.ok) {
            findings.push(`${label}: returned without an error`);
            continue;
          }
          messages.add(String((r.error as Error)?.message).replace(/-?\d+(\.\d+)?(e[+-]?\d+)?/g, "#"));
          const bad = checkRefusal(entry, r.error, h);
          if (bad) findings.push(`${label}: ${bad}`);
        }
      }
      // the module still works after all those refusals
      const again = await outcome(entry, entry.valid());
      if (!again.ok) findings.push(`${entry.name}: the valid call threw after the hostile calls: ${(again.error as Error)?.message}`);
    }
    assert.deepEqual(findings, [], findings.slice(0, 40).join("\n"));
    assert.ok(cases > 1000, `only ${cases} cases`);
    console.log(`      ${cases} hostile calls over ${byEntry.size} entry points (${list.length} templates): all refused with checked messages (${messages.size} distinct); ${Date.now() - t0} ms`);
  });
});
