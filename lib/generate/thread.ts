// Generation in a worker thread (products layer): openGenerator(checkpoint) loads the model in a worker thread of its
// own and generates there, so neither the loading nor any model's per-token work (xLSTM Large decoders, whose ops run
// on the calling thread; models on the GPU; the Tensor path) ever blocks the caller's event loop. Tokens stream back
// as messages. The worker serves one request at a time, in the order they were made.
// defines: openGenerator, GeneratorThread, ThreadGenerateOptions; the worker's entry is thread-worker.ts
import * as path from "path";
import { Worker } from "worker_threads";
import type { LoadModelOptions } from "../checkpoint";
import type { GenerateOptions, GeneratedToken } from "./index";

/** generate()'s options in the worker: the checkpoint's tokenizer serves (no `tokenizer` option). */
export type ThreadGenerateOptions = Omit<GenerateOptions, "tokenizer">;

/** @internal what the worker receives at its start */
export interface ThreadInput {
  checkpoint: string;
  options: LoadModelOptions;
}

/** @internal requests to the worker */
export type ThreadRequest =
  | { kind: "generate"; id: number; prompt: string | number[]; options: Omit<ThreadGenerateOptions, "signal"> }
  | { kind: "batch"; id: number; prompts: (string | number[])[]; options: Omit<ThreadGenerateOptions, "signal"> }
  | { kind: "abort"; id: number };

/** @internal what the worker sends (id null: about loading) */
export type ThreadMessage =
  | { kind: "ready"; modelType: string; vocabSize: number; hasTokenizer: boolean }
  | { kind: "token"; id: number; token: GeneratedToken }
  | { kind: "done"; id: number; result?: { ids: number[][]; texts: string[] } }
  | { kind: "error"; id: number | null; name: string; message: string; code?: string };

/** A model loaded in a worker thread (openGenerator). */
export interface GeneratorThread {
  readonly modelType: string;
  readonly vocabSize: number;
  /** Whether the checkpoint brought a tokenizer (string prompts and token texts need one). */
  readonly hasTokenizer: boolean;
  /** generate() of the model in the worker: tokens as they are sampled there; `signal` or leaving the loop stops it. */
  generate(prompt: string | ArrayLike<number>, options?: ThreadGenerateOptions): AsyncGenerator<GeneratedToken>;
  /** generateBatch() of the model in the worker. */
  generateBatch(prompts: (string | ArrayLike<number>)[], options?: ThreadGenerateOptions): Promise<{ ids: number[][]; texts: string[] }>;
  /** Ends the worker (pending requests reject); idempotent. The worker keeps the process alive until then. */
  close(): Promise<void>;
}

function spawn(input: ThreadInput): Worker {
  const ext = path.extname(__filename); // ".ts" when run from the sources (tsx), ".js" from dist/
  const file = path.join(__dirname, `thread-worker${ext}`);
  if (ext === ".ts") {
    const tsx = require.resolve("tsx/cjs"); // the sources need tsx's loader inside the worker too
    return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(file)});`, { eval: true, workerData: input });
  }
  return new Worker(file, { workerData: input });
}

function errorFrom(m: { name: string; message: string; code?: string }): Error {
  const Ctor = m.name === "RangeError" ? RangeError : m.name === "TypeError" ? TypeError : Error;
  const e = new Ctor(m.message) as Error & { code?: string };
  if (m.code) e.code = m.code;
  return e;
}

/** A prompt the structured clone carries: a string, or the ids as a plain array (checked in the worker). */
function cloneablePrompt(p: unknown, what: string): string | number[] {
  if (typeof p === "string") return p;
  if (p !== null && typeof p === "object" && typeof (p as ArrayLike<number>).length === "number") return Array.from(p as ArrayLike<number>);
  throw new TypeError(`${what} must be a string or an array of token ids, got ${p === null ? "null" : typeof p}`);
}

function splitOptions(options: ThreadGenerateOptions | undefined, what: string): { signal?: AbortSignal; rest: Omit<ThreadGenerateOptions, "signal"> } {
  if (options === undefined) return { rest: {} };
  if (options === null || typeof options !== "object" || Array.isArray(options)) throw new TypeError(`${what}: options must be an object, got ${options === null ? "null" : Array.isArray(options) ? "an array" : typeof options}`);
  if ("tokenizer" in options && (options as GenerateOptions).tokenizer !== undefined)
    throw new TypeError(`${what}: options.tokenizer is not accepted here (the worker uses the checkpoint's tokenizer; pass openGenerator's options.tokenizer)`);
  const { signal, ...rest } = options;
  return { signal, rest };
}

/**
 * Loads a checkpoint (as loadModel) in a worker thread and generates there.
 * @param options loadModel's options; `tokenizer` may be "byte" or a tokenizer JSON (a Tokenizer object cannot cross
 *   to the thread)
 * @returns once the model is loaded
 * @throws (rejects) loadModel's errors, TypeError for a Tokenizer object
 * @example
 *   const g = await openGenerator("xLSTM-7b");
 *   for await (const t of g.generate("The capital of France is", { maxTokens: 20, temperature: 0 })) process.stdout.write(t.text);
 *   await g.close();
 */
export async function openGenerator(checkpoint: string, options: LoadModelOptions = {}): Promise<GeneratorThread> {
  if (typeof checkpoint !== "string") throw new TypeError(`openGenerator: checkpoint must be a path string, got ${checkpoint === null ? "null" : typeof checkpoint}`);
  if (options === null || typeof options !== "object" || Array.isArray(options)) throw new TypeError(`openGenerator: options must be an object, got ${options === null ? "null" : typeof options}`);
  const tk = options.tokenizer as unknown;
  if (tk !== undefined && tk !== "byte" && (typeof tk !== "object" || tk === null || typeof (tk as { encode?: unknown }).encode === "function"))
    throw new TypeError(`openGenerator: options.tokenizer must be "byte" or a tokenizer JSON object (a Tokenizer object cannot cross to the worker thread)`);
  const worker = spawn({ checkpoint, options });
  const handlers = new Map<number, { token?(t: GeneratedToken): void; done(result?: { ids: number[][]; texts: string[] }): void; fail(e: Error): void }>();
  let nextId = 1;
  let closed = false;
  let exitError: Error | null = null;
  const failAll = (e: Error) => {
    exitError = e;
    for (const h of handlers.values()) h.fail(e);
    handlers.clear();
  };
  const ready = new Promise<Extract<ThreadMessage, { kind: "ready" }>>((resolve, reject) => {
    worker.on("message", (m: ThreadMessage) => {
      if (m.kind === "ready") return resolve(m);
      if (m.kind === "error" && m.id === null) return reject(errorFrom(m));
      const id = m.id as number, h = handlers.get(id);
      if (!h) return; // a request given up (aborted, its consumer gone)
      if (m.kind === "token") h.token?.(m.token);
      else if (m.kind === "done") {
        handlers.delete(id);
        h.done(m.result);
      } else {
        handlers.delete(id);
        h.fail(errorFrom(m));
      }
    });
    worker.on("error", (e) => {
      reject(e);
      failAll(e);
    });
    worker.on("exit", (code) => {
      const e = new Error(closed ? "openGenerator: the generator thread is closed" : `openGenerator: the generator thread exited (code ${code})`);
      reject(e);
      failAll(e);
    });
  });
  let info: Extract<ThreadMessage, { kind: "ready" }>;
  try {
    info = await ready;
  } catch (e) {
    closed = true;
    await worker.terminate();
    throw e;
  }
  const post = (r: ThreadRequest) => worker.postMessage(r);
  const usable = (what: string) => {
    if (closed) throw new Error(`${what}: the generator thread is closed`);
    if (exitError) throw exitError;
  };

  return {
    modelType: info.modelType,
    vocabSize: info.vocabSize,
    hasTokenizer: info.hasTokenizer,

    async *generate(prompt, options) {
      const what = "GeneratorThread.generate";
      usable(what);
      const { signal, rest } = splitOptions(options, what);
      const id = nextId++;
      const queue: GeneratedToken[] = [];
      let finished = false, failure: Error | null = null;
      let wake: (() => void) | null = null;
      const poke = () => {
        const w = wake;
        wake = null;
        w?.();
      };
      handlers.set(id, {
        token: (t) => (queue.push(t), poke()),
        done: () => ((finished = true), poke()),
        fail: (e) => ((failure = e), poke()),
      });
      post({ kind: "generate", id, prompt: cloneablePrompt(prompt, `${what}: prompt`), options: rest });
      const onAbort = () => post({ kind: "abort", id });
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      try {
        for (;;) {
          if (queue.length) {
            yield queue.shift()!;
            continue;
          }
          if (failure) throw failure;
          if (finished) return;
          await new Promise<void>((r) => (wake = r));
        }
      } finally {
        signal?.removeEventListener("abort", onAbort);
        if (!finished && !failure && handlers.has(id) && !closed) post({ kind: "abort", id }); // the consumer left early
        handlers.delete(id);
      }
    },

    generateBatch(prompts, options) {
      const what = "GeneratorThread.generateBatch";
      try {
        usable(what);
        if (!Array.isArray(prompts)) throw new TypeError(`${what}: prompts must be a non-empty array, got ${prompts === null ? "null" : typeof prompts}`);
        const { signal, rest } = splitOptions(options, what);
        const id = nextId++;
        const cloned = prompts.map((p, b) => cloneablePrompt(p, `${what}: prompts[${b}]`));
        return new Promise((resolve, reject) => {
          const onAbort = () => post({ kind: "abort", id });
          const settle = () => signal?.removeEventListener("abort", onAbort);
          handlers.set(id, {
            done: (result) => (settle(), resolve(result!)),
            fail: (e) => (settle(), reject(e)),
          });
          post({ kind: "batch", id, prompts: cloned, options: rest });
          if (signal?.aborted) onAbort();
          else signal?.addEventListener("abort", onAbort, { once: true });
        });
      } catch (e) {
        return Promise.reject(e);
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      await worker.terminate();
    },
  };
}
