// Training API (products layer): train(options) and the Trainer. The loop (loop.ts) runs in a worker thread by
// default, so the caller's event loop stays free (a server keeps answering while it trains); progress arrives as
// events. stop(), an AbortSignal or SIGINT handling in the CLI end training after the current step, with a final
// checkpoint.
// defines: Trainer, train, runTraining (loop), resolveTrainOptions (options), defaults, models, plots
import { EventEmitter } from "events";
import * as path from "path";
import { Worker } from "worker_threads";
import { runTraining } from "./loop";
import type { CheckpointEvent, EvalEvent, ProgressEvent, StartEvent, TrainEvent, TrainResult } from "./loop";
import { resolveTrainOptions, TrainOptions } from "./options";

export { runTraining, readMetrics, tokenChecksum } from "./loop";
export type { CheckpointEvent, EvalEvent, LoopHooks, ProgressEvent, StartEvent, TrainEvent, TrainResult } from "./loop";
export { resolveTrainOptions, defaultDataPath, RESUME_OVERRIDABLE } from "./options";
export type { ResolvedTrainOptions, TrainOptions } from "./options";
export { DEFAULT_XLSTM_CONFIG, DEFAULT_TRAINING, MLSTM_BLOCK } from "./defaults";
export { LSTMLanguageModel, buildModel, countParameters, mlstmUnavailableReason } from "./models";
export type { LanguageModel, LSTMLMConfig, ModelSpec, ModelType } from "./models";
export { lossSvg, lossPng, encodePng, terminalChart, writePlots, readLossPoints } from "./plot";
export type { LossPoint } from "./plot";
export type { GeneratorState } from "../rng";
export { detachState, flattenState, unflattenState } from "./state-tree";
export type { StateTree } from "./state-tree";

/** @internal what the worker receives */
export interface WorkerInput {
  options: TrainOptions;
  /** Int32Array(1) flag: non-zero asks the loop to stop. */
  stop: SharedArrayBuffer;
}

/** @internal what the worker sends */
export type WorkerMessage =
  | { kind: "event"; event: TrainEvent }
  | { kind: "done"; result: TrainResult }
  | { kind: "error"; name: string; message: string; code?: string; stack?: string };

export interface TrainerRunOptions {
  /** Run the loop in a worker thread (default true). false runs it on this thread, yielding between steps. */
  worker?: boolean;
  /** Aborting stops training after the current step (with a final checkpoint when outDir is set). */
  signal?: AbortSignal;
}

function spawnWorker(input: WorkerInput): Worker {
  const ext = path.extname(__filename); // ".ts" when run from the sources (tsx), ".js" from dist/
  const file = path.join(__dirname, `worker${ext}`);
  if (ext === ".ts") {
    // the sources need tsx's loader inside the worker too
    const tsx = require.resolve("tsx/cjs");
    return new Worker(`require(${JSON.stringify(tsx)}); require(${JSON.stringify(file)});`, { eval: true, workerData: input });
  }
  return new Worker(file, { workerData: input });
}

/**
 * Trains a language model; emits "start", "progress", "eval" and "checkpoint" events (see TrainEvent).
 * @example
 *   const t = new Trainer({ data: "my.txt", steps: 1000, outDir: "run" });
 *   t.on("progress", (e) => console.log(e.step, e.loss.toFixed(3), Math.round(e.tokensPerSec), "tok/s"));
 *   process.on("SIGINT", () => t.stop());
 *   const result = await t.run();
 */
export class Trainer extends EventEmitter {
  private readonly stopFlag = new Int32Array(new SharedArrayBuffer(4));
  private started = false;

  constructor(
    readonly options: TrainOptions,
    readonly runOptions: TrainerRunOptions = {},
  ) {
    super();
  }

  /** Ask training to stop after the current step; run() then resolves with stopped: true. */
  stop(): void {
    Atomics.store(this.stopFlag, 0, 1);
  }

  get stopRequested(): boolean {
    return Atomics.load(this.stopFlag, 0) !== 0;
  }

  private dispatch(e: TrainEvent): void {
    this.emit(e.type, e);
    this.emit("event", e);
  }

  /**
   * Run training to the end (or until stopped).
   * @throws (rejects) TypeError/RangeError for bad options, Error for unreadable data or checkpoints, and the
   *   worker's error otherwise; a second call rejects.
   */
  async run(): Promise<TrainResult> {
    if (this.started) throw new Error("Trainer.run: this trainer has already run; create a new one");
    this.started = true;
    resolveTrainOptions(this.options); // fail fast, on this thread, with the caller's stack
    const signal = this.runOptions.signal;
    const onAbort = () => this.stop();
    if (signal) {
      if (signal.aborted) this.stop();
      else signal.addEventListener("abort", onAbort, { once: true });
    }
    try {
      if (this.runOptions.worker === false) return await runTraining(this.options, { emit: (e) => this.dispatch(e), shouldStop: () => this.stopRequested });
      return await this.runInWorker();
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  private runInWorker(): Promise<TrainResult> {
    return new Promise((resolve, reject) => {
      const worker = spawnWorker({ options: this.options, stop: this.stopFlag.buffer as SharedArrayBuffer });
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        f();
      };
      worker.on("message", (m: WorkerMessage) => {
        if (m.kind === "event") {
          try {
            this.dispatch(m.event);
          } catch (e) {
            // a listener threw: stop training and report it
            this.stop();
            finish(() => reject(e));
          }
        } else if (m.kind === "done") finish(() => resolve(m.result));
        else {
          const Ctor = m.name === "RangeError" ? RangeError : m.name === "TypeError" ? TypeError : Error;
          const err = new Ctor(m.message) as Error & { code?: string; workerStack?: string };
          if (m.code) err.code = m.code;
          err.workerStack = m.stack;
          finish(() => reject(err));
        }
      });
      worker.on("error", (e) => finish(() => reject(e)));
      worker.on("exit", (code) => finish(() => reject(new Error(`training worker exited with code ${code} before finishing`))));
    });
  }
}

export interface TrainCallbacks {
  onProgress?: (e: ProgressEvent) => void;
  onEvent?: (e: TrainEvent) => void;
  signal?: AbortSignal;
  /** Default true (see TrainerRunOptions.worker). */
  worker?: boolean;
}

/**
 * Train with `options`; resolves when done or stopped.
 * @example const r = await train({ steps: 200, outDir: "run", onProgress: (e) => console.log(e.step, e.loss) });
 */
export function train(options: TrainOptions & TrainCallbacks): Promise<TrainResult> {
  const { onProgress, onEvent, signal, worker, ...rest } = options;
  const t = new Trainer(rest, { signal, worker });
  if (onProgress) t.on("progress", onProgress);
  if (onEvent) t.on("event", onEvent);
  return t.run();
}

export type { StartEvent as TrainStartEvent, EvalEvent as TrainEvalEvent, CheckpointEvent as TrainCheckpointEvent };
