// Checkpoints (products layer). A checkpoint is a directory:
//   model.safetensors     the model's state_dict under the reference's exact keys (sLSTM cells in the "cuda" layout
//                         unless asked otherwise), __metadata__: format "pt", config (the model config as JSON, the
//                         reference's field names), xlstm.model_type ("xlstm" | "lstm"), xlstm.tokenizer (JSON)
//   config.json           the same config, for people and for the reference's loaders
//   training.safetensors  (training checkpoints only) optimizer buffers "optimizer.<param index>.<name>", the carried
//                         recurrent state "carry.<path>", and __metadata__ xlstm.training: step, data position,
//                         scheduler, optimizer groups and scalars, RNG state, the training options, data checksum
// A directory is written under a temporary name and renamed into place, each file written atomically, so a reader
// sees a whole checkpoint or none. A run directory keeps checkpoints/step-<N>/ and checkpoints/latest (the name of
// the newest, replaced atomically). A lone .safetensors file (e.g. from the reference) is a model-only checkpoint:
// its config comes from its metadata, a config.json beside it, or the caller.
// xLSTM Large checkpoints (lib/nn/large.ts) load for inference from the Hugging Face layout: a directory with
// config.json (xLSTMLargeConfig fields; others are ignored), model.safetensors or shards plus
// model.safetensors.index.json (or the reference's model_0.safetensors, ...), and tokenizer.json. They become an
// xLSTMLargeDecoder (bf16 weights by default) read tensor by tensor from memory-mapped shards. A checkpoint without
// a tokenizer of its own uses a tokenizer.json in its directory (HFTokenizer).
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ByteTokenizer, Tokenizer, TokenizerJSON, tokenizerFromJSON } from "../data/tokenizer";
import { HFTokenizer } from "../data/hf-tokenizer";
import { CorruptFileError } from "../errors";
import { writeFileAtomic } from "../io/atomic";
import { openSafetensors, readSafetensors, writeSafetensors } from "../io/safetensors";
import { FloatDType, openShardedCheckpoint, ShardedCheckpoint } from "../io/sharded";
import { native } from "../native";
import { readLargeConfig, resolveLargeConfig, XLSTM_LARGE_DEFAULTS, xLSTMLarge, xLSTMLargeConfig, xLSTMLargeDecoder } from "../nn/large";
import { biasCudaToVanilla, kernelCudaToVanilla, SlstmLayout } from "../nn/slstm-layout";
import { Generator } from "../rng";
import { Tensor, withElementBudget } from "../tensor";
import type { OptimizerStateDict, SavedParamState } from "../optim/optimizer";
import { buildModel, LanguageModel, ModelSpec, ModelType } from "../train/models";
import type { GeneratorState } from "../rng";
import { flattenState, StateTree, unflattenState } from "../train/state-tree";

export const MODEL_FILE = "model.safetensors";
export const CONFIG_FILE = "config.json";
export const TRAINING_FILE = "training.safetensors";
/** A Hugging Face tokenizer in a checkpoint directory. */
export const HF_TOKENIZER_FILE = "tokenizer.json";

/** The training side of a checkpoint (everything `--resume` needs besides the weights). */
export interface TrainingState {
  /** Optimizer updates done. */
  step: number;
  /** Position of the next batch. */
  position: { epoch: number; index: number };
  scheduler: { last_step: number };
  optimizer: { type: "adamw" | "sgd"; state: OptimizerStateDict; param_names: string[] };
  rng: { model: GeneratorState };
  /** The resolved training options (JSON). */
  options: Record<string, unknown>;
  /** Which tokens were trained on: count and FNV-1a checksum of the training ids. */
  data: { tokens: number; checksum: string };
  /** Recurrent state carried across batches (sequential sampling), or null. */
  carry: StateTree;
  /** Seconds of training so far (all runs). */
  elapsed_sec: number;
}

/** A model read from a checkpoint or a safetensors file. */
export interface ModelCheckpoint {
  modelType: ModelType;
  config: Record<string, unknown>;
  tokenizer: TokenizerJSON | null;
  stateDict: Map<string, Tensor>;
  /** The file it came from. */
  file: string;
}

/** Where a path's checkpoint is: its model file, and its directory when it is a full checkpoint. */
export interface ResolvedCheckpoint {
  modelFile: string;
  /** The checkpoint directory (null for a lone .safetensors file). */
  dir: string | null;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Find the checkpoint a path names: a model .safetensors file, a checkpoint directory, a sharded checkpoint's index
 * JSON or its directory (Hugging Face layout; modelFile is then the index), a run directory (follows
 * checkpoints/latest), or a checkpoints/ directory (follows latest).
 * @throws Error with a one-line message when there is none
 */
export function resolveCheckpoint(p: string): ResolvedCheckpoint {
  if (typeof p !== "string" || p.length === 0) throw new TypeError("resolveCheckpoint: path must be a non-empty string");
  if (isFile(p)) {
    const dir = path.dirname(p);
    return { modelFile: p, dir: path.basename(p) === MODEL_FILE && isFile(path.join(dir, TRAINING_FILE)) ? dir : null };
  }
  if (!fs.existsSync(p)) throw new Error(`no checkpoint at ${p}: no such file or directory`);
  if (!isDir(p)) throw new Error(`no checkpoint at ${p}: not a file or directory`);
  if (isFile(path.join(p, MODEL_FILE))) return { modelFile: path.join(p, MODEL_FILE), dir: p };
  // sharded (xLSTM Large): model.safetensors.index.json + shards, or the reference's model_0.safetensors, ...
  const indexes = fs.readdirSync(p).filter((n) => n.endsWith(".safetensors.index.json"));
  if (indexes.length > 1) throw new Error(`${p} holds several index files (${indexes.join(", ")}); pass the one to use`);
  if (indexes.length === 1) return { modelFile: path.join(p, indexes[0]), dir: p };
  if (isFile(path.join(p, "model_0.safetensors"))) return { modelFile: path.join(p, "model_0.safetensors"), dir: p };
  for (const latestFile of [path.join(p, "checkpoints", "latest"), path.join(p, "latest")]) {
    if (!isFile(latestFile)) continue;
    const name = fs.readFileSync(latestFile, "utf8").trim();
    const dir = path.join(path.dirname(latestFile), name);
    if (!name || name.includes("/") || !isFile(path.join(dir, MODEL_FILE)))
      throw new Error(`${latestFile} names checkpoint "${name}", which does not exist or has no ${MODEL_FILE}`);
    return { modelFile: path.join(dir, MODEL_FILE), dir };
  }
  throw new Error(`no checkpoint in ${p} (expected ${MODEL_FILE}, a *.safetensors.index.json with its shards, or a run directory with checkpoints/latest)`);
}

function parseJsonMeta(file: string, key: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new CorruptFileError(file, `metadata "${key}" is not valid JSON`);
  }
}

function inferModelType(keys: Iterable<string>): ModelType | null {
  for (const k of keys) {
    if (k.startsWith("xlstm_block_stack.") || k === "token_embedding.weight") return "xlstm";
    if (k.startsWith("rnn.weight_ih_l")) return "lstm";
  }
  return null;
}

/**
 * Read a model file. The config comes from `options.config`, else the file's "config" metadata, else config.json
 * beside the file.
 * @throws CorruptFileError for unreadable files or metadata; Error when no config can be found
 */
export function readModelFile(file: string, options: { config?: Record<string, unknown> } = {}): ModelCheckpoint {
  let contents;
  try {
    contents = readSafetensors(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new Error(`cannot read ${file}: no such file`);
    if (code === "EACCES") throw new Error(`cannot read ${file}: permission denied`);
    throw e;
  }
  const meta = contents.metadata;
  let config = options.config ?? null;
  if (!config && meta.config !== undefined) config = parseJsonMeta(file, "config", meta.config) as Record<string, unknown>;
  if (!config) {
    const beside = path.join(path.dirname(file), CONFIG_FILE);
    if (isFile(beside)) {
      try {
        config = JSON.parse(fs.readFileSync(beside, "utf8"));
      } catch {
        throw new CorruptFileError(beside, "is not valid JSON");
      }
    }
  }
  if (!config || typeof config !== "object" || Array.isArray(config))
    throw new Error(`${file} has no model config (no "config" metadata and no ${CONFIG_FILE} beside it); pass one with --config`);
  const declared = meta["xlstm.model_type"];
  if (declared !== undefined && declared !== "xlstm" && declared !== "lstm") throw new CorruptFileError(file, `unknown xlstm.model_type "${declared}"`);
  const modelType = (declared as ModelType | undefined) ?? inferModelType(contents.tensors.keys());
  if (!modelType) throw new CorruptFileError(file, "does not hold an xLSTM or LSTM language model (no token_embedding.weight or rnn.* keys)");
  const tokenizer = meta["xlstm.tokenizer"] !== undefined ? (parseJsonMeta(file, "xlstm.tokenizer", meta["xlstm.tokenizer"]) as TokenizerJSON) : null;
  return { modelType, config, tokenizer, stateDict: contents.tensors, file };
}

/**
 * A model's state_dict with its sLSTM cells in `layout` (the model keeps "cuda"; "vanilla" converts the
 * `slstm_cell._recurrent_kernel_` / `_bias_` pairs).
 */
export function stateDictInLayout(model: LanguageModel, layout: SlstmLayout = "cuda"): Map<string, Tensor> {
  // CUDA parameters are read back: files are written from host memory
  const sd = new Map([...model.stateDict()].map(([k, t]) => [k, t.device === "cpu" ? t : t.cpu()]));
  if (layout === "cuda") return sd;
  if (layout !== "vanilla") throw new RangeError(`stateDictInLayout: layout must be "cuda" or "vanilla", got ${String(layout)}`);
  const out = new Map<string, Tensor>();
  for (const [k, t] of sd) {
    if (k.endsWith("slstm_cell._recurrent_kernel_")) {
      const [NH, DH] = t.shape;
      out.set(k, Tensor.from(kernelCudaToVanilla(t.f32(), NH, DH), [NH, 4 * DH, DH]));
    } else if (k.endsWith("slstm_cell._bias_")) {
      const kernel = sd.get(k.replace(/_bias_$/, "_recurrent_kernel_"))!;
      const [NH, DH] = kernel.shape;
      out.set(k, Tensor.from(biasCudaToVanilla(t.f32(), NH, DH), t.shape));
    } else out.set(k, t);
  }
  return out;
}

/** The metadata of a model file. */
function modelMetadata(modelType: ModelType, config: object, tokenizer: Tokenizer | TokenizerJSON | null): Record<string, string> {
  const meta: Record<string, string> = { format: "pt", config: JSON.stringify(config), "xlstm.model_type": modelType };
  if (tokenizer) meta["xlstm.tokenizer"] = JSON.stringify("toJSON" in tokenizer ? tokenizer.toJSON() : tokenizer);
  return meta;
}

/**
 * Write a model as one safetensors file (reference keys, config in the metadata), atomically.
 * @param options.slstmLayout sLSTM parameter layout of the file; default "cuda" (the reference's default backend)
 */
export function writeModelFile(file: string, model: LanguageModel, modelType: ModelType, tokenizer: Tokenizer | TokenizerJSON | null, options: { slstmLayout?: SlstmLayout } = {}): void {
  writeSafetensors(file, stateDictInLayout(model, options.slstmLayout ?? "cuda"), modelMetadata(modelType, model.config, tokenizer));
}

/**
 * Create or replace directory `dir` atomically: `fill` writes into a fresh temporary directory beside it, which is
 * then renamed into place (an existing `dir` is moved aside first and removed after).
 */
export function writeDirAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const parent = path.dirname(path.resolve(dir));
  fs.mkdirSync(parent, { recursive: true });
  const tag = `${process.pid}.${randomBytes(4).toString("hex")}`;
  const tmp = path.join(parent, `.${path.basename(dir)}.tmp-${tag}`);
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    let old: string | null = null;
    if (fs.existsSync(dir)) {
      old = path.join(parent, `.${path.basename(dir)}.old-${tag}`);
      fs.renameSync(dir, old);
    }
    fs.renameSync(tmp, dir);
    if (old) fs.rmSync(old, { recursive: true, force: true });
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Everything saveCheckpoint writes. */
export interface CheckpointInput {
  model: LanguageModel;
  modelType: ModelType;
  tokenizer: Tokenizer | TokenizerJSON | null;
  training?: TrainingState | null;
  slstmLayout?: SlstmLayout;
}

/** Write a checkpoint directory (see the file header), atomically. */
export function saveCheckpoint(dir: string, input: CheckpointInput): void {
  writeDirAtomic(dir, (tmp) => {
    writeModelFile(path.join(tmp, MODEL_FILE), input.model, input.modelType, input.tokenizer, { slstmLayout: input.slstmLayout });
    writeFileAtomic(path.join(tmp, CONFIG_FILE), Buffer.from(JSON.stringify(input.model.config, null, 2) + "\n"));
    const t = input.training;
    if (!t) return;
    const tensors = new Map<string, Tensor>();
    const scalars: Record<number, Record<string, number>> = {};
    for (const [i, s] of Object.entries(t.optimizer.state.state)) {
      for (const [name, v] of Object.entries(s)) {
        if (typeof v === "number") (scalars[Number(i)] ??= {})[name] = v;
        else tensors.set(`optimizer.${i}.${name}`, new Tensor(v, [v.length]));
      }
    }
    const carry = flattenState(t.carry, "carry.");
    for (const [k, v] of carry.tensors) tensors.set(k, v.device === "cpu" ? v : v.cpu());
    const meta = {
      format: 1,
      step: t.step,
      position: t.position,
      scheduler: t.scheduler,
      optimizer: { type: t.optimizer.type, param_groups: t.optimizer.state.param_groups, scalars, param_names: t.optimizer.param_names },
      rng: t.rng,
      options: t.options,
      data: t.data,
      carry: carry.skeleton,
      elapsed_sec: t.elapsed_sec,
    };
    writeSafetensors(path.join(tmp, TRAINING_FILE), tensors, { "xlstm.training": JSON.stringify(meta) });
  });
}

/**
 * Read the training state of a checkpoint directory.
 * @throws CorruptFileError for a malformed file
 */
export function readTrainingState(dir: string): TrainingState {
  const file = path.join(dir, TRAINING_FILE);
  if (!isFile(file)) throw new Error(`${dir} is not a training checkpoint (no ${TRAINING_FILE}); it can be used for generation but not resumed`);
  const { tensors, metadata } = readSafetensors(file);
  if (metadata["xlstm.training"] === undefined) throw new CorruptFileError(file, 'has no "xlstm.training" metadata');
  const m = parseJsonMeta(file, "xlstm.training", metadata["xlstm.training"]) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const bad = (what: string) => new CorruptFileError(file, `training metadata: ${what}`);
  if (m.format !== 1) throw bad(`unsupported format ${JSON.stringify(m.format)}`);
  if (!Number.isInteger(m.step) || m.step < 0) throw bad("step is missing or invalid");
  if (!m.position || !Number.isInteger(m.position.epoch) || !Number.isInteger(m.position.index)) throw bad("position is missing or invalid");
  if (!m.optimizer || !Array.isArray(m.optimizer.param_groups) || !Array.isArray(m.optimizer.param_names)) throw bad("optimizer is missing or invalid");
  if (!m.rng?.model) throw bad("rng is missing");
  const state: Record<number, SavedParamState> = {};
  for (const [i, s] of Object.entries((m.optimizer.scalars ?? {}) as Record<string, Record<string, number>>)) state[Number(i)] = { ...s };
  for (const [k, t] of tensors) {
    const mm = /^optimizer\.(\d+)\.(.+)$/.exec(k);
    if (!mm) continue;
    if (t.dtype !== "float32") throw bad(`${k} is ${t.dtype}, expected float32`);
    (state[Number(mm[1])] ??= {})[mm[2]] = t.f32();
  }
  let carry: StateTree = null;
  try {
    carry = unflattenState(m.carry ?? null, tensors);
  } catch (e) {
    throw bad((e as Error).message);
  }
  return {
    step: m.step,
    position: m.position,
    scheduler: m.scheduler ?? { last_step: m.step },
    optimizer: { type: m.optimizer.type, state: { state, param_groups: m.optimizer.param_groups }, param_names: m.optimizer.param_names },
    rng: m.rng,
    options: m.options ?? {},
    data: m.data,
    carry,
    elapsed_sec: m.elapsed_sec ?? 0,
  };
}

/** A model ready to use, with its tokenizer and where it came from. */
export interface LoadedModel {
  /** xLSTM Large checkpoints: an xLSTMLargeDecoder (inference only), which generate() drives like the others. */
  model: LanguageModel;
  modelType: ModelType | "xlstm-large";
  config: Record<string, unknown>;
  /** Null when the file carries none (a reference checkpoint), its directory has no tokenizer.json, and the caller gave none. */
  tokenizer: Tokenizer | null;
  checkpoint: ResolvedCheckpoint;
}

/** Options of loadModel. */
export interface LoadModelOptions {
  /** The config for files that carry none (an xLSTM Large config may hold extra Hugging Face fields: ignored). */
  config?: Record<string, unknown>;
  /** Overrides the checkpoint's tokenizer (e.g. "byte" for a reference model with vocab 256). */
  tokenizer?: Tokenizer | TokenizerJSON | "byte";
  /** xLSTM Large only: the decoder's weight storage, "bfloat16" (default) or "float32". */
  dtype?: FloatDType;
  /**
   * "cpu" (default) or "cuda": the model's parameters on the GPU. xLSTM Large checkpoints then load as the float32
   * `xLSTMLarge` module (the bf16 decoder is CPU-only), 4 bytes per parameter of GPU memory.
   */
  device?: "cpu" | "cuda";
}

function requireDevice(options: LoadModelOptions): "cpu" | "cuda" {
  const d = options.device ?? "cpu";
  if (d !== "cpu" && d !== "cuda") throw new RangeError(`loadModel: device must be "cpu" or "cuda", got ${JSON.stringify(d)}`);
  const cuda = native.backends().cuda;
  if (d === "cuda" && !cuda.available) throw new Error(`loadModel: device "cuda": CUDA is not available on this machine (${cuda.reason ?? "no usable GPU"})`);
  return d;
}

/**
 * Load a model from a checkpoint directory, run directory or safetensors file (either sLSTM layout), in eval mode;
 * or an xLSTM Large checkpoint (Hugging Face layout, see the file header) as an inference decoder.
 * @throws Error/CorruptFileError with one-line messages for missing, corrupt or mismatching files
 * @example const { model, tokenizer } = loadModel("xlstm-run");
 */
export function loadModel(p: string, options: LoadModelOptions = {}): LoadedModel {
  const device = requireDevice(options);
  const resolved = resolveCheckpoint(p);
  if (isLargeCheckpoint(resolved.modelFile)) return loadLarge(resolved, options, device);
  const ck = readModelFile(resolved.modelFile, { config: options.config });
  const spec = { type: ck.modelType, config: ck.config } as ModelSpec;
  let model: LanguageModel;
  try {
    // the config is untrusted: the model it describes may not need (much) more storage than the file holds
    let fileElements = 0;
    for (const t of ck.stateDict.values()) fileElements += t.numel;
    model = withElementBudget(2 * fileElements + (1 << 20), "its config", () => buildModel(spec, new Generator(0)));
    model.loadStateDict(ck.stateDict);
  } catch (e) {
    throw new Error(`${resolved.modelFile}: ${(e as Error).message}`);
  }
  model.eval();
  if (device === "cuda") model.to("cuda");
  const tok = chooseTokenizer(resolved, options.tokenizer ?? ck.tokenizer, (ck.config as { vocab_size?: number }).vocab_size);
  return { model, modelType: ck.modelType, config: ck.config, tokenizer: tok, checkpoint: resolved };
}

/** The tokenizer given or saved, else the checkpoint directory's tokenizer.json, else null; checked against the vocabulary. */
function chooseTokenizer(resolved: ResolvedCheckpoint, t: Tokenizer | TokenizerJSON | "byte" | null | undefined, vocab: number | undefined): Tokenizer | null {
  let tok: Tokenizer | null = null;
  if (t === "byte") tok = new ByteTokenizer();
  else if (t) {
    try {
      tok = "encode" in t ? t : tokenizerFromJSON(t);
    } catch (e) {
      throw new CorruptFileError(resolved.modelFile, `invalid tokenizer: ${(e as Error).message}`);
    }
  } else {
    const file = path.join(resolved.dir ?? path.dirname(resolved.modelFile), HF_TOKENIZER_FILE);
    if (isFile(file)) tok = HFTokenizer.fromFile(file); // errors name the file
  }
  if (tok && vocab !== undefined && tok.vocabSize > vocab)
    throw new Error(`${resolved.modelFile}: the tokenizer has ${tok.vocabSize} tokens but the model's vocab_size is ${vocab}`);
  return tok;
}

/** Whether a resolved model file is an xLSTM Large checkpoint: an index JSON, or safetensors keys under backbone.blocks. */
function isLargeCheckpoint(modelFile: string): boolean {
  if (modelFile.endsWith(".json")) return true;
  let f;
  try {
    f = openSafetensors(modelFile);
  } catch {
    return false; // readModelFile reports what is wrong with it
  }
  try {
    return f.metadata["xlstm.model_type"] === "xlstm-large" || f.keys().some((k) => k.startsWith("backbone.blocks."));
  } finally {
    f.close();
  }
}

const LARGE_CONFIG_KEYS = new Set(["embedding_dim", "num_heads", "num_blocks", "vocab_size", ...Object.keys(XLSTM_LARGE_DEFAULTS)]);

/** Names other exporters use for a parameter (the transformers port of xLSTM Large nests the embedding). */
const LARGE_KEY_ALIASES: Record<string, string> = { "embedding.weight": "backbone.embeddings.weight" };

/** A checkpoint's tensors as the Map the decoder reads, each read (as `dtype`) only when asked for. */
class LazyCheckpointTensors extends Map<string, Tensor> {
  readonly #ckpt: ShardedCheckpoint;
  readonly #dtype: FloatDType;
  constructor(ckpt: ShardedCheckpoint, dtype: FloatDType) {
    super();
    this.#ckpt = ckpt;
    this.#dtype = dtype;
  }
  #key(k: string): string | null {
    if (this.#ckpt.has(k)) return k;
    const alias = LARGE_KEY_ALIASES[k];
    return alias !== undefined && this.#ckpt.has(alias) ? alias : null;
  }
  override has(k: string): boolean {
    return this.#key(k) !== null;
  }
  override get(k: string): Tensor | undefined {
    const key = this.#key(k);
    return key === null ? undefined : this.#ckpt.get(key, this.#dtype);
  }
}

/** The xLSTM Large config of a checkpoint: the caller's, the shard's "config" metadata, or config.json / config.yaml. */
function largeConfig(resolved: ResolvedCheckpoint, ckpt: ShardedCheckpoint, given: Record<string, unknown> | undefined): xLSTMLargeConfig {
  let raw: unknown = given ?? null;
  if (raw === null && typeof ckpt.metadata.config === "string") raw = parseJsonMeta(resolved.modelFile, "config", ckpt.metadata.config);
  const dir = resolved.dir ?? path.dirname(resolved.modelFile);
  if (raw === null) {
    const json = path.join(dir, CONFIG_FILE);
    if (isFile(json)) {
      try {
        raw = JSON.parse(fs.readFileSync(json, "utf8"));
      } catch (e) {
        throw new CorruptFileError(json, `is not valid JSON (${(e as Error).message.split("\n")[0]})`);
      }
    } else if (isFile(path.join(dir, "config.yaml"))) {
      try {
        raw = readLargeConfig(dir);
      } catch (e) {
        throw new CorruptFileError(path.join(dir, "config.yaml"), (e as Error).message.split("\n")[0]);
      }
    }
  }
  if (raw === null) throw new Error(`${resolved.modelFile} has no model config (no "config" metadata and no ${CONFIG_FILE} beside it); pass one with --config`);
  if (typeof raw !== "object" || Array.isArray(raw)) throw new Error(`${resolved.modelFile}: the model config must be a JSON object`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) if (LARGE_CONFIG_KEYS.has(k) && v !== undefined) out[k] = v;
  return { ...out, mode: "inference" } as unknown as xLSTMLargeConfig;
}

function loadLarge(resolved: ResolvedCheckpoint, options: LoadModelOptions, device: "cpu" | "cuda"): LoadedModel {
  const where = resolved.modelFile;
  const dtype = options.dtype ?? "bfloat16";
  if (dtype !== "bfloat16" && dtype !== "float32") throw new RangeError(`loadModel: dtype must be "bfloat16" or "float32", got ${JSON.stringify(dtype)}`);
  const ckpt = openShardedCheckpoint(resolved.modelFile.endsWith(".json") ? resolved.modelFile : (resolved.dir ?? resolved.modelFile));
  let model: xLSTMLargeDecoder | xLSTMLarge;
  let config: xLSTMLargeConfig;
  try {
    if (!ckpt.keys().some((k) => k.startsWith("backbone.blocks.")))
      throw new CorruptFileError(where, `does not hold an xLSTM Large model (no backbone.blocks.* tensors)`);
    config = largeConfig(resolved, ckpt, options.config);
    try {
      const c = resolveLargeConfig(config);
      // the config is untrusted: its recurrent state may not be much larger than the checkpoint's tensors
      let fileElements = 0;
      for (const k of ckpt.keys()) fileElements += ckpt.info(k).shape.reduce((a, b) => a * b, 1);
      const stateElements = c.num_blocks * c.num_heads * c.qk_head_dim * (c.v_head_dim + 1);
      if (stateElements > 2 * fileElements + (1 << 20)) throw new RangeError(`its config: needs more than twice the checkpoint's ${fileElements} elements for one row of recurrent state (${stateElements})`);
      if (device === "cuda") {
        // the module with its matrix weights in `dtype` (bfloat16 by default: half the GPU memory; norms and biases
        // float32), loaded on the host and then moved to the GPU; its zeros are re-allocated, not converted
        const m = new xLSTMLarge(config, { skipInit: true })._allocateWeightsAs(dtype);
        const lazy = new LazyCheckpointTensors(ckpt, dtype);
        m.loadStateDict(new Map([...m.stateDict().keys()].flatMap((k) => (lazy.has(k) ? [[k, lazy.get(k)!] as [string, Tensor]] : []))));
        model = m.to("cuda");
        model.eval();
      } else model = xLSTMLargeDecoder.fromStateDict(config, new LazyCheckpointTensors(ckpt, dtype), { dtype });
    } catch (e) {
      if (e instanceof CorruptFileError) throw e;
      throw new Error(`${where}: ${(e as Error).message.split("\n")[0]}`);
    }
  } finally {
    ckpt.close();
  }
  const tok = chooseTokenizer(resolved, options.tokenizer, config.vocab_size);
  return { model: model as unknown as LanguageModel, modelType: "xlstm-large", config: config as unknown as Record<string, unknown>, tokenizer: tok, checkpoint: resolved };
}
