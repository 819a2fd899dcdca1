// The training loop (training layer). Runs in whatever thread calls it: the Trainer runs it in a worker thread
// (lib/train/worker.ts) so the caller's event loop stays free, or in-process when asked. Per optimizer update:
//   lr from the schedule; for each of gradientAccumulationSteps batches: forward, cross-entropy (averaged over the
//   accumulated batches), backward (gradients add up on the tape's leaves); clip the global gradient norm; update;
//   zero the gradients. Every step emits a progress event; evaluation, metrics lines, checkpoints and plots follow
//   the options. Everything random is seeded: initialisation and dropout from one Generator (saved in checkpoints),
//   batch order from (seed, epoch) (lib/data), so a resumed run repeats the uninterrupted one's losses exactly.
import * as fs from "fs";
import * as path from "path";
import { noGrad } from "../autograd";
import { saveCheckpoint, readModelFile, readTrainingState, resolveCheckpoint, TrainingState, MODEL_FILE } from "../checkpoint";
import { BatchSampler, evaluationBatches, readTextFile, trainValSplit } from "../data/dataset";
import { ByteTokenizer, CharTokenizer, Tokenizer, tokenizerFromJSON } from "../data/tokenizer";
import { writeFileAtomic } from "../io/atomic";
import { native } from "../native";
import * as ops from "../ops";
import { AdamW } from "../optim/adamw";
import { xlstmParamGroups } from "../optim/groups";
import { Optimizer } from "../optim/optimizer";
import { constantSchedule, LRScheduler, warmupCosineSchedule } from "../optim/schedule";
import { clipGradNorm, gradNorm as gradientNorm, SGD } from "../optim/sgd";
import { Generator } from "../rng";
import { releaseLeafGradients } from "../host-scope";
import { scope } from "../scope";
import * as cuda from "../cuda";
import { Tensor } from "../tensor";
import { buildModel, countParameters, LanguageModel, ModelSpec } from "./models";
import { defaultDataPath, RESUME_OVERRIDABLE, ResolvedTrainOptions, resolveTrainOptions, scheduleFor, TrainOptions } from "./options";
import { writePlots } from "./plot";
import { detachState, StateTree } from "./state-tree";

/** Sent once, before the first step. */
export interface StartEvent {
  type: "start";
  /** First step of this run (0, or the checkpoint's step when resuming). */
  startStep: number;
  totalSteps: number;
  parameters: number;
  vocabSize: number;
  tokensPerStep: number;
  trainTokens: number;
  valTokens: number;
  modelType: string;
  config: Record<string, unknown>;
  outDir: string | null;
  resumedFrom: string | null;
  /** Anything worth telling the user (e.g. an option ignored on resume). */
  notes: string[];
}

/** Sent after every optimizer update. */
export interface ProgressEvent {
  type: "progress";
  /** Updates done (1 after the first). */
  step: number;
  totalSteps: number;
  /** Epoch of the last batch of this step. */
  epoch: number;
  /** Mean cross-entropy of this step's batches (nats per token). */
  loss: number;
  perplexity: number;
  /** Learning rate of this update. */
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Over the last few steps. */
  tokensPerSec: number;
  /** Seconds of training, all runs of this model together. */
  elapsedSec: number;
  /** Estimate for the remaining steps. */
  etaSec: number;
}

export interface EvalEvent {
  type: "eval";
  step: number;
  valLoss: number;
  valPerplexity: number;
}

export interface CheckpointEvent {
  type: "checkpoint";
  step: number;
  path: string;
}

/** A step whose loss or gradient norm was NaN/Inf: its update was skipped, so no non-finite value reaches the weights. */
export interface NonFiniteEvent {
  type: "nonfinite";
  step: number;
  loss: number;
  gradNorm: number;
  /** Updates skipped so far in this run. */
  skipped: number;
}

export type TrainEvent = StartEvent | ProgressEvent | EvalEvent | CheckpointEvent | NonFiniteEvent;

export interface TrainResult {
  /** Updates done in total (including those before a resume). */
  step: number;
  totalSteps: number;
  /** True when stopped early (abort/signal); the last checkpoint is at `step`. */
  stopped: boolean;
  /** Loss of the last step (NaN if no step ran). */
  loss: number;
  /** Steps whose update was skipped because the loss or a gradient was NaN/Inf. */
  skippedSteps: number;
  /** Last validation loss (null without validation). */
  valLoss: number | null;
  /** Losses of the steps this run did, in order (for plots and tests). */
  losses: number[];
  /** The final checkpoint directory (null without outDir). */
  checkpoint: string | null;
  outDir: string | null;
  /** Seconds this run trained. */
  elapsedSec: number;
  /** Training tokens per second over this run. */
  tokensPerSec: number;
  parameters: number;
}

export interface LoopHooks {
  emit(event: TrainEvent): void;
  /** Polled before every step: true stops after writing a final checkpoint. */
  shouldStop(): boolean;
}

/** FNV-1a over the token ids (hex), to recognise the training data on resume. */
export function tokenChecksum(ids: Int32Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < ids.length; ++i) {
    const v = ids[i];
    h = Math.imul(h ^ (v & 0xff), 0x01000193);
    h = Math.imul(h ^ ((v >>> 8) & 0xff), 0x01000193);
    h = Math.imul(h ^ (v >>> 16), 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

const stepName = (step: number) => `step-${String(step).padStart(8, "0")}`;

interface MetricRow {
  step: number;
  loss: number;
  perplexity: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  elapsed_s: number;
  val_loss?: number;
  val_perplexity?: number;
}

/** Read a metrics.jsonl file (skipping lines that do not parse). */
export function readMetrics(file: string): MetricRow[] {
  if (!fs.existsSync(file)) return [];
  const rows: MetricRow[] = [];
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line);
      if (typeof r.step === "number") rows.push(r);
    } catch {
      // a torn last line from a killed run: ignore
    }
  }
  return rows;
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Run training to the end (or until hooks.shouldStop()).
 * @throws Error/RangeError with one-line messages for bad options, unreadable data or mismatching checkpoints
 */
export async function runTraining(options: TrainOptions, hooks: LoopHooks): Promise<TrainResult> {
  let opts = resolveTrainOptions(options);
  const notes: string[] = [];

  // ---- resume: the checkpoint's options, with the few a resumed run may change --------------------------------
  let resumeDir: string | null = null;
  let saved: TrainingState | null = null;
  if (opts.resume !== false) {
    const where = opts.resume === true ? opts.outDir! : opts.resume;
    const r = resolveCheckpoint(where);
    if (!r.dir) throw new Error(`cannot resume from ${where}: a lone model file has no training state`);
    resumeDir = r.dir;
    saved = readTrainingState(r.dir);
    const base = saved.options as unknown as TrainOptions;
    const merged: TrainOptions = { ...base, resume: false };
    for (const k of RESUME_OVERRIDABLE) if (options[k] !== undefined) (merged as Record<string, unknown>)[k] = options[k];
    if (options.steps !== undefined && options.steps !== null) merged.epochs = null;
    if (options.epochs !== undefined && options.epochs !== null) merged.steps = null;
    if (merged.outDir == null && opts.outDir) merged.outDir = opts.outDir;
    if (options.text !== undefined) merged.text = options.text;
    for (const k of Object.keys(options) as (keyof TrainOptions)[]) {
      if (k === "resume" || k === "text" || (RESUME_OVERRIDABLE as readonly string[]).includes(k) || options[k] === undefined) continue;
      if (JSON.stringify(options[k]) !== JSON.stringify((base as Record<string, unknown>)[k])) notes.push(`resume: ${k} is taken from the checkpoint (${JSON.stringify((base as Record<string, unknown>)[k])}), not ${JSON.stringify(options[k])}`);
    }
    opts = { ...resolveTrainOptions({ ...merged, text: merged.text ?? undefined, data: merged.data ?? undefined }), resume: false };
  }
  if (opts.threads > 0) native.setNumThreads(opts.threads);

  // ---- data -----------------------------------------------------------------------------------------------------
  if (saved && saved.options.data === null && opts.text === null)
    throw new Error("cannot resume: the checkpoint was trained on text passed inline (options.text); pass the same text again");
  const dataPath = opts.text !== null ? null : path.resolve(opts.data ?? defaultDataPath());
  opts.data = dataPath;
  const text = opts.text ?? readTextFile(dataPath!);
  let tokenizer: Tokenizer;
  if (resumeDir) {
    const tj = readModelFile(path.join(resumeDir, MODEL_FILE)).tokenizer;
    if (!tj) throw new Error(`${resumeDir}: the checkpoint has no tokenizer`);
    tokenizer = tokenizerFromJSON(tj);
  } else if (typeof opts.tokenizer === "object") tokenizer = tokenizerFromJSON(opts.tokenizer);
  else tokenizer = opts.tokenizer === "byte" ? new ByteTokenizer() : CharTokenizer.fromText(text);
  let ids = tokenizer.encode(text);
  if (opts.maxTokens !== null) ids = ids.subarray(0, opts.maxTokens);
  const { train: trainIds, val: valIds } = trainValSplit(ids, opts.valFraction);
  const checksum = tokenChecksum(trainIds);
  if (saved && (saved.data?.checksum !== checksum || saved.data?.tokens !== trainIds.length))
    throw new Error(`cannot resume: the training text differs from the one the checkpoint was trained on (${saved.data?.tokens} tokens, checksum ${saved.data?.checksum}; now ${trainIds.length} tokens, checksum ${checksum})`);
  const B = opts.batchSize, S = opts.seqLen, accum = opts.gradientAccumulationSteps;
  const sampler = new BatchSampler(trainIds, { batchSize: B, seqLen: S, mode: opts.sampling, seed: opts.seed });
  const evalSet = opts.evalEvery > 0 && valIds.length > 0 ? evaluationBatches(valIds, B, S, opts.evalBatches) : [];
  if (opts.evalEvery > 0 && opts.valFraction > 0 && evalSet.length === 0) notes.push(`validation split (${valIds.length} tokens) is smaller than one batch of ${B} x ${S}: no evaluation`);

  // ---- model, optimizer, schedule ---------------------------------------------------------------------------------
  const V = tokenizer.vocabSize;
  const config = resumeDir ? readModelFile(path.join(resumeDir, MODEL_FILE)).config : { ...opts.model, vocab_size: V };
  if (opts.modelType === "xlstm" && (config as { context_length?: number }).context_length === undefined) (config as Record<string, unknown>).context_length = S;
  const spec = { type: opts.modelType, config } as ModelSpec;
  const gen = new Generator(opts.seed);
  const model: LanguageModel = buildModel(spec, gen);
  if (resumeDir) model.loadStateDict(readModelFile(path.join(resumeDir, MODEL_FILE)).stateDict);
  if (opts.device === "cuda") {
    if (!cuda.isAvailable()) throw new Error(`train: device "cuda": CUDA is not available on this machine (${cuda.unavailableReason()})`);
    model.to("cuda");
  }
  model.train();
  const names = [...model.namedParameters()];
  const uniqueNames: string[] = [];
  {
    const seen = new Set<Tensor>();
    for (const [n, p] of names)
      if (!seen.has(p)) {
        seen.add(p);
        uniqueNames.push(n);
      }
  }
  let optimizer: Optimizer<{ lr: number }>;
  if (opts.optimizer === "adamw") optimizer = new AdamW(xlstmParamGroups(model, opts.weightDecay), { lr: opts.lr, betas: opts.betas, eps: opts.eps, weight_decay: opts.weightDecay });
  else optimizer = new SGD(model.parameters(), { lr: opts.lr, momentum: opts.momentum, nesterov: opts.nesterov, weight_decay: opts.weightDecay });
  const nameOf = new Map<Tensor, string>();
  for (const [n, p] of names) if (!nameOf.has(p)) nameOf.set(p, n);
  const paramNames = optimizer.params.map((p) => nameOf.get(p)!);

  let totalSteps: number;
  if (opts.steps !== null) totalSteps = opts.steps;
  else {
    let micro = 0;
    for (let e = 0; e < opts.epochs!; ++e) micro += sampler.numBatches(e);
    totalSteps = Math.floor(micro / accum);
  }
  const sch = scheduleFor(opts, totalSteps);
  const schedule = opts.schedule === "constant" ? constantSchedule(opts.lr) : warmupCosineSchedule({ lr: opts.lr, warmup_steps: sch.warmup, decay_until_step: sch.until, min_lr: sch.minLr });
  const scheduler = new LRScheduler(optimizer, schedule);

  let step = 0;
  let carry: StateTree = null;
  let elapsedBefore = 0;
  if (saved) {
    if (saved.optimizer.type !== opts.optimizer) throw new Error(`cannot resume: the checkpoint's optimizer is ${saved.optimizer.type}, not ${opts.optimizer}`);
    if (JSON.stringify(saved.optimizer.param_names) !== JSON.stringify(paramNames)) throw new Error("cannot resume: the checkpoint's optimizer state is for different parameters");
    optimizer.loadStateDict(saved.optimizer.state);
    scheduler.loadStateDict(saved.scheduler);
    gen.setState(saved.rng.model);
    sampler.seek(saved.position);
    step = saved.step;
    carry = opts.carryState ? detachState(saved.carry, opts.device) : null;
    elapsedBefore = saved.elapsed_sec;
  }

  // ---- run directory: metrics (truncated to the resumed step), checkpoints ---------------------------------------
  const outDir = opts.outDir ? path.resolve(opts.outDir) : null;
  const metricsFile = outDir ? path.join(outDir, "metrics.jsonl") : null;
  let metrics: MetricRow[] = [];
  if (outDir) {
    fs.mkdirSync(path.join(outDir, "checkpoints"), { recursive: true });
    if (saved) metrics = readMetrics(metricsFile!).filter((r) => r.step <= step);
    writeFileAtomic(metricsFile!, Buffer.from(metrics.map((r) => JSON.stringify(r) + "\n").join("")));
  }

  const tokensPerStep = B * S * accum;
  const t0 = performance.now();
  hooks.emit({
    type: "start", startStep: step, totalSteps, parameters: countParameters(model), vocabSize: V, tokensPerStep, trainTokens: trainIds.length, valTokens: valIds.length,
    modelType: opts.modelType, config: config as Record<string, unknown>, outDir, resumedFrom: resumeDir, notes,
  });

  const trainingState = (): TrainingState => ({
    step,
    position: { ...sampler.position },
    scheduler: scheduler.stateDict(),
    optimizer: { type: opts.optimizer, state: optimizer.stateDict(), param_names: paramNames },
    rng: { model: gen.getState() },
    options: { ...opts, text: null, resume: false } as unknown as Record<string, unknown>,
    data: { tokens: trainIds.length, checksum },
    carry,
    elapsed_sec: elapsedBefore + (performance.now() - t0) / 1000,
  });
  let lastCheckpoint: string | null = null;
  let lastCheckpointStep = -1;
  const checkpoint = () => {
    if (!outDir || lastCheckpointStep === step) return;
    const dir = path.join(outDir, "checkpoints", stepName(step));
    saveCheckpoint(dir, { model, modelType: opts.modelType, tokenizer, training: trainingState(), slstmLayout: opts.slstmLayout });
    writeFileAtomic(path.join(outDir, "checkpoints", "latest"), Buffer.from(stepName(step) + "\n"));
    const old = fs.readdirSync(path.join(outDir, "checkpoints")).filter((n) => /^step-\d{8}$/.test(n) && n !== stepName(step)).sort();
    for (const n of old.slice(0, Math.max(0, old.length - (opts.keepCheckpoints - 1)))) fs.rmSync(path.join(outDir, "checkpoints", n), { recursive: true, force: true });
    writePlots(outDir, metrics);
    lastCheckpoint = dir;
    lastCheckpointStep = step;
    hooks.emit({ type: "checkpoint", step, path: dir });
  };

  const evaluate = (): number => {
    model.eval();
    const losses = noGrad(() =>
      evalSet.map((b) => {
        // token ids stay on the CPU: embedding and cross-entropy take them there for CUDA models too
        return onDevice(() => {
          const { logits } = model.forward(new Tensor(b.x, [b.batchSize, b.seqLen]));
          return ops.crossEntropy(logits.reshape(b.batchSize * b.seqLen, V), new Tensor(b.y, [b.batchSize * b.seqLen])).item();
        });
      }),
    );
    model.train();
    return mean(losses);
  };

  // bf16 autocast: on the GPU cuda.autocast; on the CPU the float32 GEMMs with bf16 operands on AMX or AVX512_BF16
  // (setFloat32MatmulPrecision("medium") for the step, process-wide while it runs; without either nothing changes)
  // Each step's (and evaluation batch's) intermediates are released when it ends (xlstm.scope), not at some later
  // garbage collection; the carried state is returned, so it is kept.
  const onDevice = <T>(fn: () => T): T => {
    if (opts.device === "cuda") return scope(() => (opts.autocast === "bfloat16" ? cuda.autocast(fn) : fn()));
    if (opts.autocast !== "bfloat16") return scope(fn);
    const before = native.setFloat32MatmulPrecision("medium");
    try {
      return scope(fn);
    } finally {
      native.setFloat32MatmulPrecision(before);
    }
  };

  // ---- the loop ----------------------------------------------------------------------------------------------
  const losses: number[] = [];
  const window: { t: number; tokens: number }[] = [];
  let stopped = false;
  let lastVal: number | null = null;
  let tokensThisRun = 0;
  let skippedSteps = 0;
  const params = optimizer.params;
  while (step < totalSteps) {
    if (hooks.shouldStop()) {
      stopped = true;
      break;
    }
    const ts = performance.now();
    const lr = scheduler.apply();
    let lossSum = 0;
    let epoch = sampler.position.epoch;
    for (let a = 0; a < accum; ++a) {
      const batch = sampler.next();
      epoch = batch.epoch;
      if (batch.index === 0) carry = null; // a new epoch starts from a zero state (as d2l)
      const x = new Tensor(batch.x, [B, S]), y = new Tensor(batch.y, [B * S]);
      const r = onDevice(() => {
        const out = model.forward(x, opts.carryState ? { state: carry, returnLastState: true } : {});
        const loss = ops.crossEntropy(out.logits.reshape(B * S, V), y);
        (accum > 1 ? ops.scale(loss, 1 / accum) : loss).backward();
        return { loss: loss.item(), state: opts.carryState ? detachState(out.state ?? null) : null };
      });
      lossSum += r.loss;
      if (opts.carryState) carry = r.state;
    }
    // NaN/Inf anywhere in the loss or the gradients: skip this update (the weights, and so every checkpoint, stay
    // finite) and report it; the schedule still advances, as with a skipped mixed-precision step.
    const rawNorm = gradientNorm(params);
    const finite = Number.isFinite(lossSum) && Number.isFinite(rawNorm);
    const gradNorm = finite && opts.clipGradNorm > 0 ? clipGradNorm(params, opts.clipGradNorm) : rawNorm;
    if (finite) optimizer.step();
    else hooks.emit({ type: "nonfinite", step: step + 1, loss: lossSum / accum, gradNorm: rawNorm, skipped: ++skippedSteps });
    // the gradients backward made inside the step's scope: freed now rather than by a later full collection (each
    // step's set would otherwise pile up for it: full collections over 100 steps of the default model 18 -> 4-6)
    releaseLeafGradients(params.flatMap((p) => (p.grad && p.grad.device === "cpu" && !p.grad.isDisposed ? [p.grad.data] : [])));
    optimizer.zeroGrad();
    scheduler.step();
    step++;
    const loss = lossSum / accum;
    losses.push(loss);
    tokensThisRun += tokensPerStep;
    const now = performance.now();
    window.push({ t: now - ts, tokens: tokensPerStep });
    if (window.length > 20) window.shift();
    const wt = window.reduce((s, w) => s + w.t, 0) / 1000, wn = window.reduce((s, w) => s + w.tokens, 0);
    const tokensPerSec = wn / wt;
    const elapsedSec = elapsedBefore + (now - t0) / 1000;
    hooks.emit({ type: "progress", step, totalSteps, epoch, loss, perplexity: Math.exp(loss), lr, gradNorm, tokensPerSec, elapsedSec, etaSec: ((totalSteps - step) * wt) / window.length });
    const row: MetricRow = { step, loss, perplexity: Math.exp(loss), lr, grad_norm: gradNorm, tokens_per_s: tokensPerSec, elapsed_s: elapsedSec };
    if (evalSet.length && ((opts.evalEvery > 0 && step % opts.evalEvery === 0) || step === totalSteps)) {
      lastVal = evaluate();
      row.val_loss = lastVal;
      row.val_perplexity = Math.exp(lastVal);
      hooks.emit({ type: "eval", step, valLoss: lastVal, valPerplexity: Math.exp(lastVal) });
    }
    if (metricsFile) {
      metrics.push(row);
      fs.appendFileSync(metricsFile, JSON.stringify(row) + "\n");
    }
    if (opts.checkpointEvery > 0 && step % opts.checkpointEvery === 0 && step < totalSteps) checkpoint();
    // let messages (stop requests) and timers in, in-process and in the worker alike
    await new Promise<void>((r) => setImmediate(r));
  }
  checkpoint();
  const runSec = (performance.now() - t0) / 1000;
  return {
    step, totalSteps, stopped, loss: losses.length ? losses[losses.length - 1] : NaN, skippedSteps, valLoss: lastVal, losses, checkpoint: lastCheckpoint,
    outDir, elapsedSec: runSec, tokensPerSec: tokensThisRun / Math.max(runSec, 1e-9), parameters: countParameters(model),
  };
}
