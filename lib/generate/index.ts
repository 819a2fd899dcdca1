// Text generation (products layer): prefill the prompt with one forward pass (keeping the recurrent state), then
// one model.step() per new token from that state, sampling with temperature, top-k and top-p (nucleus) from a
// seeded generator. generate() is an async iterable of tokens that yields to the event loop between tokens (xLSTM
// models: the fused session's prefill and every step run on a native worker thread, the loop free meanwhile; on the
// GPU the device session, one native call per token);
// generateBatch() runs several prompts as one batch (rows whose prompts are longer keep feeding prompt tokens
// through step() while the others already sample). xLSTM Large decoders (lib/nn/large.ts, loaded from Hugging Face
// layout checkpoints by loadModel) run their prefill and every step through forwardAsync (a native worker thread,
// the event loop free), with only the last position's logits and the state updated in place after the prefill.
// defines: generate, generateBatch, sampleLogits, Generation (handle from a checkpoint), loadGenerator; openGenerator
// (thread.ts: the same in a worker thread)
import * as cuda from "../cuda";
import { noGrad } from "../autograd";
import { loadModel, LoadedModel } from "../checkpoint";
import type { Tokenizer } from "../data/tokenizer";
import { Module } from "../nn/module";
import { optionsArg } from "../nn/entry-checks";
import { kindOf } from "../ops/args";
import { Generator } from "../rng";
import { Tensor } from "../tensor";
import type { LanguageModel } from "../train/models";
import { createInferenceSession } from "../infer/session";
import { createLargeInferenceSession } from "../infer/large-session";
import type { NativeSession } from "../infer/native-session";
import { xLSTMLMModel } from "../nn/stack";
import { LargeState, xLSTMLarge, xLSTMLargeDecoder } from "../nn/large";
import { releaseReplacedState, StateTree } from "../train/state-tree";

export { openGenerator } from "./thread";
export type { GeneratorThread, ThreadGenerateOptions } from "./thread";
export interface SamplingOptions {
  /** Softmax temperature; 0 picks the most likely token (greedy). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0: all). Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1: all). Default 1. */
  topP?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate. Default 100. */
  maxTokens?: number;
  /** Seed of the sampling stream. Default 0. */
  seed?: number;
  /** Turns a string prompt into ids and ids into text; needed for string prompts. */
  tokenizer?: Tokenizer | null;
  /** Stops generation early (the iterator ends). */
  signal?: AbortSignal;
  /** Stop after a token whose text ends the output with one of these strings. */
  stop?: string[];
  /**
   * xLSTM language models: run the prompt and each step through the fused native inference session (lib/infer;
   * same numbers within 1e-4, ~15x faster per token on the CPU; models on the GPU get the device session; xLSTM
   * Large models on the GPU decode through theirs) instead of the Tensor path. Default true.
   */
  fused?: boolean;
}

/** One generated token. */
export interface GeneratedToken {
  id: number;
  /** Its text (may be "" for an incomplete UTF-8 byte; the next token completes it). Empty without a tokenizer. */
  text: string;
  /** 0-based position among the generated tokens. */
  index: number;
}

function checkSampling(o: SamplingOptions, what: string): Required<SamplingOptions> {
  o = optionsArg(what, o);
  const temperature = o.temperature ?? 1, topK = o.topK ?? 0, topP = o.topP ?? 1;
  if (!(typeof temperature === "number" && temperature >= 0 && Number.isFinite(temperature))) throw new RangeError(`${what}: temperature must be a number >= 0, got ${show(temperature)}`);
  if (!(Number.isInteger(topK) && topK >= 0)) throw new RangeError(`${what}: topK must be an integer >= 0, got ${show(topK)}`);
  if (!(typeof topP === "number" && topP > 0 && topP <= 1)) throw new RangeError(`${what}: topP must be in (0, 1], got ${show(topP)}`);
  return { temperature, topK, topP };
}

/**
 * Draw a token from logits (one row): greedy for temperature 0, else softmax(logits / temperature) restricted to
 * the top-k and then the top-p set. Ties in greedy pick the lowest id.
 * @param logits the scores of one position (length V)
 * @throws TypeError for logits that are not a Float32Array, options that are not an object or gen that is not a
 *   Generator; RangeError for empty logits or bad sampling options
 */
export function sampleLogits(logits: Float32Array, options: SamplingOptions, gen: Generator): number {
  if (!(logits instanceof Float32Array)) throw new TypeError(`sampleLogits: logits must be a Float32Array, got ${kindOf(logits)}`);
  if (logits.length === 0) throw new RangeError("sampleLogits: logits is empty (detached, or a vocabulary of 0 tokens)");
  const { temperature, topK, topP } = checkSampling(options, "sampleLogits");
  if (!(gen instanceof Generator)) throw new TypeError(`sampleLogits: gen must be a Generator, got ${kindOf(gen)}`);
  const V = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; ++i) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b);
  if (topK > 0 && topK < V) order = order.slice(0, topK);
  const maxL = logits[order[0]];
  let probs = order.map((i) => Math.exp((logits[i] - maxL) / temperature));
  let total = probs.reduce((a, b) => a + b, 0);
  if (topP < 1) {
    let acc = 0, keep = 0;
    while (keep < probs.length && acc < topP * total) acc += probs[keep++];
    order = order.slice(0, Math.max(1, keep));
    probs = probs.slice(0, Math.max(1, keep));
    total = probs.reduce((a, b) => a + b, 0);
  }
  let u = gen.uniform() * total;
  for (let i = 0; i < order.length; ++i) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[order.length - 1];
}

function show(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : typeof v === "number" || typeof v === "boolean" || v === undefined ? String(v) : kindOf(v);
}

/** The prompt's ids: a string (through the tokenizer) or an array / typed array of integer ids in [0, V). */
function toIds(prompt: string | ArrayLike<number>, tokenizer: Tokenizer | null | undefined, what: string, V: number | null, name = "prompt"): Int32Array {
  let ids: Int32Array;
  if (typeof prompt === "string") {
    if (!tokenizer) throw new TypeError(`${what}: a string ${name} needs options.tokenizer (or pass token ids)`);
    ids = tokenizer.encode(prompt);
  } else {
    const isArray = Array.isArray(prompt) || (ArrayBuffer.isView(prompt) && !(prompt instanceof DataView));
    if (!isArray) throw new TypeError(`${what}: ${name} must be a string or an array of token ids, got ${kindOf(prompt)}`);
    const a = prompt as ArrayLike<unknown>;
    for (let i = 0; i < a.length; ++i) {
      const id = a[i];
      if (typeof id !== "number" || !Number.isInteger(id)) throw new TypeError(`${what}: ${name}[${i}] must be an integer token id, got ${show(id)}`);
    }
    ids = new Int32Array(a.length); // (a typed array whose buffer was detached has length 0: "empty" below)
    for (let i = 0; i < a.length; ++i) ids[i] = a[i] as number;
  }
  if (ids.length === 0) throw new RangeError(`${what}: ${name === "prompt" ? "the prompt" : name} is empty (it needs at least one token)`);
  if (V !== null)
    for (let i = 0; i < ids.length; ++i)
      if (ids[i] < 0 || ids[i] >= V || (typeof prompt !== "string" && (prompt as ArrayLike<number>)[i] !== ids[i]))
        throw new RangeError(`${what}: ${name}[${i}] = ${typeof prompt === "string" ? ids[i] : (prompt as ArrayLike<number>)[i]} is outside the vocabulary [0, ${V})`);
  return ids;
}

/** The model (a Module with forward / step), with its vocabulary size when its config has one. */
function checkModel(model: unknown, what: string): { V: number | null } {
  const m = model as { forward?: unknown; step?: unknown; config?: { vocab_size?: unknown } } | null;
  if (!(model instanceof Module) || typeof m!.forward !== "function" || typeof m!.step !== "function")
    throw new TypeError(`${what}: model must be a language model (a Module with forward and step), got ${kindOf(model)}`);
  const V = m!.config?.vocab_size;
  return { V: Number.isInteger(V) && (V as number) > 0 ? (V as number) : null };
}

/** The options shared by generate and generateBatch (sampling checked by checkSampling). */
function checkGenerateOptions(options: GenerateOptions, what: string): { maxTokens: number; seed: number } {
  const maxTokens = options.maxTokens ?? 100;
  if (!(Number.isInteger(maxTokens) && maxTokens >= 0)) throw new RangeError(`${what}: maxTokens must be an integer >= 0, got ${show(maxTokens)}`);
  const seed = options.seed ?? 0;
  if (typeof seed !== "number" || !Number.isFinite(seed)) throw new RangeError(`${what}: seed must be a finite number, got ${show(seed)}`);
  const tok = options.tokenizer as unknown;
  if (tok != null && (typeof tok !== "object" || typeof (tok as Tokenizer).encode !== "function" || typeof (tok as Tokenizer).decode !== "function" || typeof (tok as Tokenizer).streamDecoder !== "function"))
    throw new TypeError(`${what}: tokenizer must be a Tokenizer (encode, decode, streamDecoder) or null, got ${kindOf(tok)}`);
  const signal = options.signal as unknown;
  if (signal !== undefined && (signal === null || typeof signal !== "object" || !("aborted" in signal))) throw new TypeError(`${what}: signal must be an AbortSignal, got ${kindOf(signal)}`);
  const stop = options.stop as unknown;
  if (stop !== undefined && (!Array.isArray(stop) || stop.some((s) => typeof s !== "string"))) throw new TypeError(`${what}: stop must be an array of strings, got ${Array.isArray(stop) ? "an array holding a non-string" : kindOf(stop)}`);
  if (options.fused !== undefined && typeof options.fused !== "boolean") throw new TypeError(`${what}: fused must be a boolean, got ${kindOf(options.fused)}`);
  return { maxTokens, seed };
}

/** Last position's logits of row b of [B, S, V] (a CPU tensor). */
function lastLogits(logits: Tensor, b: number): Float32Array {
  const [, S, V] = logits.shape;
  return logits.f32().slice((b * S + S - 1) * V, (b * S + S) * V);
}


/** Whether the model's parameters live on the GPU. */
function onGpu(model: LanguageModel): boolean {
  return model.parameters().some((p) => p.device === "cuda");
}

/**
 * A forward or step of the model without the tape, its logits read back to the CPU. On the GPU it runs in a
 * cuda.scope, so the step's intermediates are released at once; the recurrent state it returns is kept.
 */
function noGradStep(gpu: boolean, fn: () => { logits: Tensor; state?: StateTree }): { logits: Tensor; state: StateTree } {
  if (!gpu) {
    const r = noGrad(fn);
    return { logits: r.logits, state: r.state ?? null };
  }
  return cuda.scope(() => {
    const r = noGrad(fn);
    return { logits: r.logits.cpu(), state: r.state ?? null };
  });
}

// generate()'s fused-session steps: a step whose round trip through a worker thread took under INLINE_STEP_ENTER_MS
// is cheap (a small model): the next ones run inline, until one takes INLINE_STEP_MAX_MS or more (a few ms at most
// of a blocked loop per token, never a large model's step).
const INLINE_STEP_ENTER_MS = 0.5;
const INLINE_STEP_MAX_MS = 1;

/**
 * Generate tokens after `prompt`, streaming.
 * @param prompt text (needs options.tokenizer) or token ids
 * @example
 *   for await (const t of generate(model, "the time ", { tokenizer, maxTokens: 200, temperature: 0.8, topK: 20 }))
 *     process.stdout.write(t.text);
 * @throws (from the iterator) TypeError/RangeError for bad options or prompts outside the vocabulary
 */
export async function* generate(model: LanguageModel, prompt: string | ArrayLike<number>, options: GenerateOptions = {}): AsyncGenerator<GeneratedToken> {
  const what = "generate";
  const { V } = checkModel(model, what);
  const sampling = checkSampling(options, what);
  const { maxTokens, seed } = checkGenerateOptions(options, what);
  const ids = toIds(prompt, options.tokenizer, what, V);
  const gen = new Generator(seed);
  const decoder = options.tokenizer?.streamDecoder() ?? null;
  const stops = options.stop ?? [];
  const wasTraining = model.training;
  model.eval();
  // xLSTM models: the fused native session (one native call per token; on the GPU the device session, which
  // enqueues the token's kernels from that call); xLSTM Large on the GPU: the prompt through model.forward (the
  // chunkwise kernels), the steps through its device session; other models: the Tensor path
  const gpu = onGpu(model);
  const fused = options.fused ?? true;
  const largeGpu = fused && gpu && model instanceof xLSTMLarge ? createLargeInferenceSession(model) : null;
  const session: NativeSession | null = fused && model instanceof xLSTMLMModel && ids.length > 0 ? createInferenceSession(model) : largeGpu;
  const large = model instanceof xLSTMLargeDecoder ? model : null;
  let state: StateTree = null;
  try {
    let out = "";
    let logits: Float32Array;
    let inlineSteps = false;
    if (largeGpu) {
      const r = noGradStep(gpu, () => model.forward(new Tensor(ids, [1, ids.length]), { returnLastState: true }));
      logits = lastLogits(r.logits, 0);
      largeGpu.setState(r.state as unknown as LargeState);
      releaseReplacedState(r.state, null);
    } else if (session) logits = await session.prefillAsync(Int32Array.from(ids), ids.length); // on a native worker thread
    else if (large) {
      const r = await large.forwardAsync(new Tensor(ids, [1, ids.length]), { logits: "last" }); // on a native worker thread
      logits = r.logits.f32();
      state = r.state as unknown as StateTree;
    } else {
      const r = noGradStep(gpu, () => model.forward(new Tensor(ids, [1, ids.length]), { returnLastState: true }));
      logits = lastLogits(r.logits, 0);
      state = r.state;
    }
    for (let i = 0; i < maxTokens; ++i) {
      if (options.signal?.aborted) return;
      const id = sampleLogits(logits, sampling, gen);
      const text = decoder ? decoder.push(id) : "";
      yield { id, text, index: i };
      out += text;
      if (stops.some((s) => s && out.endsWith(s))) return;
      if (i + 1 === maxTokens) break;
      if (session) {
        // steps run on a native worker thread (the event loop free meanwhile) unless they are cheap enough that the
        // hand-off would cost more than the step: then inline, between turns of the loop
        if (inlineSteps) {
          await new Promise<void>((res) => setImmediate(res));
          const t0 = performance.now();
          logits = session.step(Int32Array.of(id));
          inlineSteps = performance.now() - t0 < INLINE_STEP_MAX_MS;
        } else {
          const t0 = performance.now();
          logits = await session.stepAsync(Int32Array.of(id));
          inlineSteps = performance.now() - t0 < INLINE_STEP_ENTER_MS;
        }
        continue;
      }
      if (large) logits = (await large.forwardAsync(new Tensor(Int32Array.of(id), [1, 1]), { state: state as unknown as LargeState, logits: "last", inPlace: true })).logits.f32();
      else {
        await new Promise<void>((res) => setImmediate(res));
        const s = noGradStep(gpu, () => model.step(new Tensor(Int32Array.of(id), [1, 1]), state));
        logits = lastLogits(s.logits, 0);
        if (gpu) releaseReplacedState(state, s.state);
        state = s.state;
      }
    }
  } finally {
    session?.dispose();
    if (gpu) releaseReplacedState(state, null);
    if (wasTraining) model.train();
  }
}

/**
 * Generate for several prompts at once (one batch). Prompts may differ in length: the common prefix length is
 * prefilled in one forward pass, the rest of each prompt is fed through step() alongside the other rows' sampling.
 * xLSTM models run it through the fused inference session of B rows (options.fused, default true; on the GPU the
 * device session), its prefill and steps on a native worker thread; xLSTM Large models on the GPU their device
 * session's steps after the common prefix ran through model.forward.
 * Row b uses the sampling stream seeded with seed + b, so each row equals generate() of its prompt alone with that
 * seed (up to floating-point differences between batched and single kernels).
 * @returns the generated ids and (with a tokenizer) texts, one per prompt
 */
export async function generateBatch(model: LanguageModel, prompts: (string | ArrayLike<number>)[], options: GenerateOptions = {}): Promise<{ ids: number[][]; texts: string[] }> {
  const what = "generateBatch";
  const { V } = checkModel(model, what);
  if (!Array.isArray(prompts)) throw new TypeError(`${what}: prompts must be a non-empty array, got ${kindOf(prompts)}`);
  if (prompts.length === 0) throw new RangeError(`${what}: prompts must be a non-empty array`);
  const sampling = checkSampling(options, what);
  const { maxTokens, seed } = checkGenerateOptions(options, what);
  const rows = prompts.map((p, b) => toIds(p, options.tokenizer, what, V, `prompts[${b}]`));
  const B = rows.length;
  const gens = rows.map((_, b) => new Generator(seed + b));
  const out: number[][] = rows.map(() => []);
  const minLen = Math.min(...rows.map((r) => r.length));
  const wasTraining = model.training;
  const gpu = onGpu(model);
  model.eval();
  // xLSTM models: the fused session of B rows (on the GPU the device session); xLSTM Large on the GPU: the common
  // prefix through model.forward, the steps through its device session of B rows; other models: the Tensor path
  const fused = options.fused ?? true;
  const largeGpu = fused && gpu && model instanceof xLSTMLarge ? createLargeInferenceSession(model, { batch: B }) : null;
  const session: NativeSession | null = fused && model instanceof xLSTMLMModel ? createInferenceSession(model, { batch: B }) : largeGpu;
  let state: StateTree = null;
  try {
    const prefix = new Int32Array(B * minLen);
    rows.forEach((r, b) => prefix.set(r.subarray(0, minLen), b * minLen));
    // the batch's logits, row by row
    const sessionRows = (l: Float32Array) => (b: number) => l.slice((b * l.length) / B, ((b + 1) * l.length) / B); // [B, V]
    const tensorRows = (l: Tensor) => (b: number) => lastLogits(l, b);
    let rowLogits: (b: number) => Float32Array;
    const large = model instanceof xLSTMLargeDecoder ? model : null;
    if (large) {
      // xLSTM Large on the CPU: prefill and steps on a native worker thread, the state updated in place
      const r = await large.forwardAsync(new Tensor(prefix, [B, minLen]), { logits: "last" });
      rowLogits = sessionRows(r.logits.f32());
      state = r.state as unknown as StateTree;
    } else if (largeGpu) {
      const r = noGradStep(gpu, () => model.forward(new Tensor(prefix, [B, minLen]), { returnLastState: true }));
      rowLogits = tensorRows(r.logits);
      largeGpu.setState(r.state as unknown as LargeState);
      releaseReplacedState(r.state, null);
    } else if (session) rowLogits = sessionRows(await session.prefillAsync(prefix, minLen));
    else {
      const r = noGradStep(gpu, () => model.forward(new Tensor(prefix, [B, minLen]), { returnLastState: true }));
      rowLogits = tensorRows(r.logits);
      state = r.state ?? null;
    }
    let t = minLen; // tokens consumed per row so far
    while (out.some((o) => o.length < maxTokens)) {
      if (options.signal?.aborted) break;
      const next = new Int32Array(B);
      for (let b = 0; b < B; ++b) {
        if (t < rows[b].length) next[b] = rows[b][t]; // still reading its prompt
        else if (out[b].length < maxTokens) {
          const id = sampleLogits(rowLogits(b), sampling, gens[b]);
          out[b].push(id);
          next[b] = id;
        } else next[b] = out[b][out[b].length - 1]; // finished: keep the row busy, ignore it
      }
      if (!out.some((o) => o.length < maxTokens)) break;
      if (session) rowLogits = sessionRows(await session.stepAsync(next)); // on a native worker thread
      else if (large) rowLogits = sessionRows((await large.forwardAsync(new Tensor(next, [B, 1]), { state: state as unknown as LargeState, logits: "last", inPlace: true })).logits.f32());
      else {
        await new Promise<void>((res) => setImmediate(res));
        const s = noGradStep(gpu, () => model.step(new Tensor(next, [B, 1]), state));
        rowLogits = tensorRows(s.logits);
        if (gpu) releaseReplacedState(state, s.state);
        state = s.state;
      }
      t++;
    }
  } finally {
    session?.dispose();
    if (gpu) releaseReplacedState(state, null);
    if (wasTraining) model.train();
  }
  const tok = options.tokenizer;
  return { ids: out, texts: out.map((ids) => (tok ? tok.decode(ids) : "")) };
}

/** A model loaded from a checkpoint, with `generate(prompt, options)` bound to its tokenizer. */
export interface Generation extends LoadedModel {
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): AsyncGenerator<GeneratedToken>;
  generateBatch(prompts: (string | ArrayLike<number>)[], options?: GenerateOptions): Promise<{ ids: number[][]; texts: string[] }>;
}

/**
 * Load a checkpoint (directory, run directory or model file) for generation.
 * @example
 *   const m = loadGenerator("xlstm-run");
 *   for await (const t of m.generate("the time ", { maxTokens: 100, temperature: 0.8 })) process.stdout.write(t.text);
 */
export function loadGenerator(checkpoint: string, options: Parameters<typeof loadModel>[1] = {}): Generation {
  if (typeof checkpoint !== "string") throw new TypeError(`loadGenerator: checkpoint must be a path string, got ${kindOf(checkpoint)}`);
  options = optionsArg("loadGenerator", options);
  const loaded = loadModel(checkpoint, options);
  return {
    ...loaded,
    generate: (prompt, o = {}) => generate(loaded.model, prompt, { tokenizer: loaded.tokenizer, ...o }),
    generateBatch: (prompts, o = {}) => generateBatch(loaded.model, prompts, { tokenizer: loaded.tokenizer, ...o }),
  };
}
