// Training options (training layer): what train(), the Trainer and `xlstm train` accept, their defaults, and the
// checks that turn a bad value into one clear message naming the option. Options are plain JSON (they cross into
// the training worker and are saved in checkpoints).
import * as path from "path";
import { tokenizerFromJSON, TokenizerJSON } from "../data/tokenizer";
import { DEFAULT_TRAINING, DEFAULT_XLSTM_CONFIG } from "./defaults";
import type { ModelType } from "./models";

export interface TrainOptions {
  /** Text file to train on. Default: the time-machine text bundled with the package (data/timemachine.txt). */
  data?: string;
  /** Text to train on, instead of a file. */
  text?: string;
  /** Train on the first N tokens only (e.g. 10000 for the d2l reproduction). Default: all. */
  maxTokens?: number | null;
  /**
   * "char" (vocabulary from the text, default), "byte" (UTF-8 bytes, vocabulary 256), or a saved tokenizer
   * (e.g. `{ type: "char", vocab: [...], unk: "<unk>" }` for a fixed vocabulary).
   */
  tokenizer?: "char" | "byte" | TokenizerJSON;
  /** "xlstm" (default) or "lstm". */
  modelType?: ModelType;
  /**
   * The model config (reference field names). xlstm: merged over DEFAULT_XLSTM_CONFIG (lib/train/defaults.ts);
   * lstm: { hidden_size (default 256), num_layers (default 1), dropout }. vocab_size comes from the tokenizer.
   */
  model?: Record<string, unknown>;
  /** Optimizer updates to run (default 800); `epochs` instead counts passes over the training split. */
  steps?: number | null;
  epochs?: number | null;
  /** Default 16. */
  batchSize?: number;
  /** Tokens per sequence. Default 128. */
  seqLen?: number;
  /** "adamw" (default; the reference's weight-decay groups) or "sgd". */
  optimizer?: "adamw" | "sgd";
  /** Peak learning rate. Default 4e-3 (adamw), 1 (sgd). */
  lr?: number;
  /** Default 0.1 (adamw, decoupled, decayed group only), 0 (sgd, L2). */
  weightDecay?: number;
  /** AdamW betas. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** AdamW eps. Default 1e-8. */
  eps?: number;
  /** SGD momentum. Default 0. */
  momentum?: number;
  /** SGD Nesterov momentum. Default false. */
  nesterov?: boolean;
  /** "warmup-cosine" (default for adamw; the reference's schedule) or "constant" (default for sgd). */
  schedule?: "warmup-cosine" | "constant";
  /** Default (or -1): 50, capped at a tenth of the run. */
  warmupSteps?: number;
  /** Where the cosine ends. Default: the last step. */
  decayUntilStep?: number | null;
  /** Final learning rate. Default lr / 10. */
  minLr?: number | null;
  /** Global gradient-norm clipping; 0 turns it off. Default 1. */
  clipGradNorm?: number;
  /** Batches per optimizer update (gradients summed, loss averaged). Default 1. */
  gradientAccumulationSteps?: number;
  /** "random" (default) or "sequential" batches (d2l's two iterators). */
  sampling?: "random" | "sequential";
  /** Carry the recurrent state from batch to batch (detached), reset each epoch. Default: sampling is sequential. */
  carryState?: boolean;
  /** Fraction of the tokens (the end of the text) held out for validation. Default 0.05; 0 for none. */
  valFraction?: number;
  /** Evaluate every N steps and at the end (0: never). Default 100. */
  evalEvery?: number;
  /** Validation batches per evaluation. Default 4. */
  evalBatches?: number;
  /** Seed of the initialisation, batch order and dropout. Default 0. */
  seed?: number;
  /** Run directory: checkpoints/, metrics.jsonl, loss.svg, loss.png. null: write nothing. Default null. */
  outDir?: string | null;
  /** Checkpoint every N steps (and always at the end). 0: only at the end. Default 200. */
  checkpointEvery?: number;
  /** Periodic checkpoints to keep (the newest). Default 2. */
  keepCheckpoints?: number;
  /** sLSTM layout of the checkpoints' model files. Default "cuda". */
  slstmLayout?: "cuda" | "vanilla";
  /** Continue from outDir's latest checkpoint (true) or the given checkpoint directory. */
  resume?: boolean | string;
  /** CPU threads for the kernels (0: all cores). Default 0. */
  threads?: number;
  /** "cpu" (default) or "cuda": the model, its gradients and the optimizer state live on the GPU. */
  device?: "cpu" | "cuda";
  /**
   * "none" (default) or "bfloat16": the matrix products run with bf16 inputs and float32 sums. On the GPU:
   * cuda.autocast. On the CPU: the float32 GEMMs of 128+ rows on the AMX tile unit or with AVX512_BF16's vdpbf16ps,
   * where the CPU has either, and with AVX512_BF16 the recurrences' step products and the mLSTM cell's tile products
   * (setFloat32MatmulPrecision("medium") while each step runs; elsewhere they stay float32).
   */
  autocast?: "none" | "bfloat16";
}

/** Every option filled in (saved in checkpoints). */
export type ResolvedTrainOptions = Required<Omit<TrainOptions, "text" | "resume" | "data">> & { data: string | null; text: string | null; resume: boolean | string };

/** Options that a resumed run may change; every other option comes from the checkpoint. */
export const RESUME_OVERRIDABLE = ["steps", "epochs", "evalEvery", "evalBatches", "outDir", "checkpointEvery", "keepCheckpoints", "threads", "slstmLayout", "device", "autocast"] as const;

/** The bundled time-machine text. */
export function defaultDataPath(): string {
  // lib/train (sources) and dist/train (build) are both two levels below the package root
  return path.resolve(__dirname, "..", "..", "data", "timemachine.txt");
}

const KNOWN = new Set<string>([
  "data", "text", "maxTokens", "tokenizer", "modelType", "model", "steps", "epochs", "batchSize", "seqLen", "optimizer", "lr", "weightDecay", "betas", "eps", "momentum", "nesterov",
  "schedule", "warmupSteps", "decayUntilStep", "minLr", "clipGradNorm", "gradientAccumulationSteps", "sampling", "carryState", "valFraction", "evalEvery", "evalBatches", "seed",
  "outDir", "checkpointEvery", "keepCheckpoints", "slstmLayout", "resume", "threads", "device", "autocast",
]);

function int(name: string, v: unknown, min: number): number {
  if (!(typeof v === "number" && Number.isInteger(v) && v >= min)) throw new RangeError(`train: ${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return v;
}

function num(name: string, v: unknown, ok: (x: number) => boolean, expected: string): number {
  if (!(typeof v === "number" && Number.isFinite(v) && ok(v))) throw new RangeError(`train: ${name} must be ${expected}, got ${JSON.stringify(v)}`);
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (!values.includes(v as T)) throw new RangeError(`train: ${name} must be ${values.map((x) => `"${x}"`).join(" or ")}, got ${JSON.stringify(v)}`);
  return v as T;
}

function checkTokenizer(t: TokenizerJSON): TokenizerJSON {
  try {
    tokenizerFromJSON(t);
  } catch (e) {
    throw new RangeError(`train: tokenizer: ${(e as Error).message}`);
  }
  return t;
}

/**
 * Fill in defaults and check every option.
 * @throws TypeError/RangeError whose message names the option (e.g. `train: batchSize must be an integer >= 1`)
 */
export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  if (!o || typeof o !== "object") throw new TypeError("train: options must be an object");
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new RangeError(`train: unknown option "${k}"`);
  const D = DEFAULT_TRAINING;
  const optimizer = oneOf("optimizer", o.optimizer ?? "adamw", ["adamw", "sgd"] as const);
  const sgd = optimizer === "sgd";
  const steps = o.steps ?? null, epochs = o.epochs ?? null;
  if (steps !== null && epochs !== null) throw new RangeError("train: give steps or epochs, not both");
  const modelType = oneOf("modelType", o.modelType ?? "xlstm", ["xlstm", "lstm"] as const);
  if (o.model !== undefined && (o.model === null || typeof o.model !== "object" || Array.isArray(o.model))) throw new TypeError("train: model must be an object (the model config)");
  const lr = num("lr", o.lr ?? (sgd ? 1 : D.lr), (x) => x > 0, "a positive number");
  const r: ResolvedTrainOptions = {
    data: o.data ?? null,
    text: o.text ?? null,
    maxTokens: o.maxTokens == null ? null : int("maxTokens", o.maxTokens, 2),
    tokenizer: typeof o.tokenizer === "object" && o.tokenizer !== null ? checkTokenizer(o.tokenizer) : oneOf("tokenizer", o.tokenizer ?? "char", ["char", "byte"] as const),
    modelType,
    model: { ...(modelType === "xlstm" ? DEFAULT_XLSTM_CONFIG : { hidden_size: 256, num_layers: 1 }), ...(o.model ?? {}) },
    steps: steps === null && epochs === null ? D.steps : steps === null ? null : int("steps", steps, 1),
    epochs: epochs === null ? null : int("epochs", epochs, 1),
    batchSize: int("batchSize", o.batchSize ?? D.batchSize, 1),
    seqLen: int("seqLen", o.seqLen ?? D.seqLen, 1),
    optimizer,
    lr,
    weightDecay: num("weightDecay", o.weightDecay ?? (sgd ? 0 : D.weightDecay), (x) => x >= 0, "a number >= 0"),
    betas: o.betas ?? [0.9, 0.999],
    eps: num("eps", o.eps ?? 1e-8, (x) => x >= 0, "a number >= 0"),
    momentum: num("momentum", o.momentum ?? 0, (x) => x >= 0, "a number >= 0"),
    nesterov: !!(o.nesterov ?? false),
    schedule: oneOf("schedule", o.schedule ?? (sgd ? "constant" : "warmup-cosine"), ["warmup-cosine", "constant"] as const),
    warmupSteps: o.warmupSteps === undefined || o.warmupSteps === -1 ? -1 : int("warmupSteps", o.warmupSteps, 0),
    decayUntilStep: o.decayUntilStep == null ? null : int("decayUntilStep", o.decayUntilStep, 0),
    minLr: o.minLr == null ? null : num("minLr", o.minLr, (x) => x >= 0 && x <= lr, `a number in [0, lr = ${lr}]`),
    clipGradNorm: num("clipGradNorm", o.clipGradNorm ?? D.clipGradNorm, (x) => x >= 0, "a number >= 0 (0 turns clipping off)"),
    gradientAccumulationSteps: int("gradientAccumulationSteps", o.gradientAccumulationSteps ?? 1, 1),
    sampling: oneOf("sampling", o.sampling ?? "random", ["random", "sequential"] as const),
    carryState: false,
    valFraction: num("valFraction", o.valFraction ?? D.valFraction, (x) => x >= 0 && x < 1, "in [0, 1)"),
    evalEvery: int("evalEvery", o.evalEvery ?? D.evalEvery, 0),
    evalBatches: int("evalBatches", o.evalBatches ?? D.evalBatches, 1),
    seed: int("seed", o.seed ?? D.seed, 0),
    outDir: o.outDir ?? null,
    checkpointEvery: int("checkpointEvery", o.checkpointEvery ?? D.checkpointEvery, 0),
    keepCheckpoints: int("keepCheckpoints", o.keepCheckpoints ?? D.keepCheckpoints, 1),
    slstmLayout: oneOf("slstmLayout", o.slstmLayout ?? "cuda", ["cuda", "vanilla"] as const),
    resume: o.resume ?? false,
    threads: int("threads", o.threads ?? 0, 0),
    device: oneOf("device", o.device ?? "cpu", ["cpu", "cuda"] as const),
    autocast: oneOf("autocast", o.autocast ?? "none", ["none", "bfloat16"] as const),
  };
  r.carryState = o.carryState ?? r.sampling === "sequential";
  if (!Array.isArray(r.betas) || r.betas.length !== 2 || !r.betas.every((b) => typeof b === "number" && b >= 0 && b < 1))
    throw new RangeError(`train: betas must be two numbers in [0, 1), got ${JSON.stringify(r.betas)}`);
  if (r.nesterov && (!sgd || r.momentum <= 0)) throw new RangeError("train: nesterov needs optimizer sgd with momentum > 0");
  if (r.outDir !== null && (typeof r.outDir !== "string" || r.outDir.length === 0)) throw new TypeError("train: outDir must be a non-empty string or null");
  if (r.resume !== false && r.resume !== true && (typeof r.resume !== "string" || r.resume.length === 0)) throw new TypeError("train: resume must be a boolean or a checkpoint path");
  if (r.resume === true && r.outDir === null) throw new RangeError("train: resume: true needs outDir (the run directory to continue)");
  if (r.text !== null && typeof r.text !== "string") throw new TypeError("train: text must be a string");
  if (r.text !== null && r.data !== null) throw new RangeError("train: give data (a file) or text, not both");
  return r;
}

/** Warm-up length, cosine end and final rate for a run of `totalSteps`. */
export function scheduleFor(r: ResolvedTrainOptions, totalSteps: number): { warmup: number; until: number; minLr: number } {
  const warmup = r.warmupSteps >= 0 ? r.warmupSteps : Math.min(DEFAULT_TRAINING.warmupSteps, Math.floor(totalSteps / 10));
  const until = Math.max(r.decayUntilStep ?? totalSteps, warmup);
  return { warmup, until, minLr: r.minLr ?? r.lr * DEFAULT_TRAINING.minLrRatio };
}
