// Entry of openGenerator's worker thread (products layer): loads the checkpoint with loadGenerator, says "ready"
// (or posts the loading error and ends), then serves generate / batch requests one at a time in arrival order,
// posting each token as it is sampled; an "abort" (the caller's signal, or its loop left early) stops its request at
// the next token, whether it runs or still waits its turn.
import { parentPort, workerData } from "worker_threads";
import { loadGenerator } from "./index";
import type { ThreadInput, ThreadMessage, ThreadRequest } from "./thread";

const port = parentPort!;
const input = workerData as ThreadInput;
const post = (m: ThreadMessage) => port.postMessage(m);
const errorMessage = (id: number | null, e: unknown): ThreadMessage => {
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: "error", id, name: err.name, message: err.message, code: (err as { code?: string }).code };
};

let gen: ReturnType<typeof loadGenerator>;
try {
  gen = loadGenerator(input.checkpoint, input.options);
  const vocab = Number(gen.config.vocab_size);
  post({ kind: "ready", modelType: gen.modelType, vocabSize: Number.isFinite(vocab) ? vocab : -1, hasTokenizer: gen.tokenizer !== null });
} catch (e) {
  post(errorMessage(null, e));
  process.exit(0); // ends this thread only
}

const aborts = new Map<number, AbortController>();
let queue: Promise<void> = Promise.resolve();

async function serve(r: Exclude<ThreadRequest, { kind: "abort" }>, signal: AbortSignal): Promise<void> {
  if (r.kind === "generate") {
    for await (const token of gen.generate(r.prompt, { ...r.options, signal })) post({ kind: "token", id: r.id, token });
    post({ kind: "done", id: r.id });
  } else {
    post({ kind: "done", id: r.id, result: await gen.generateBatch(r.prompts, { ...r.options, signal }) });
  }
}

port.on("message", (r: ThreadRequest) => {
  if (r.kind === "abort") {
    aborts.get(r.id)?.abort();
    return;
  }
  const ac = new AbortController();
  aborts.set(r.id, ac);
  queue = queue.then(() =>
    serve(r, ac.signal)
      .catch((e: unknown) => post(errorMessage(r.id, e)))
      .finally(() => aborts.delete(r.id)),
  );
});
