// The `xlstm` command line (products layer). Commands: train, generate, convert, info, bench, check-fixtures, help.
// Every command has `--help`. Errors are one line on stderr, "xlstm <command>: <what is wrong>", with exit code 2
// for usage errors (bad flags or values) and 1 for runtime errors (unreadable files, failed fixtures, ...).
import { gcLabel } from "./relaunch";
import * as fs from "fs";
import * as path from "path";
import { backends } from "../index";
import { workloads } from "../bench";
import "../bench/all";
import { formatResult, readManifest, runFixture } from "../fixtures";
import { CONFIG_FILE, loadModel, resolveCheckpoint, saveCheckpoint, writeModelFile } from "../checkpoint";
import { ByteTokenizer, CharTokenizer, Tokenizer } from "../data/tokenizer";
import { HFTokenizer } from "../data/hf-tokenizer";
import { readTextFile } from "../data/dataset";
import { generate } from "../generate";
import { Trainer, TrainOptions, ProgressEvent, StartEvent, terminalChart, readLossPoints } from "../train";

/** A mistake in the command line: exit code 2. */
class UsageError extends Error {}

type FlagKind = "string" | "int" | "number" | "bool" | "optional";
interface FlagSpec {
  name: string;
  kind: FlagKind;
  help: string;
  arg?: string;
  values?: readonly string[];
}

interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** Extra help paragraphs. */
  notes?: string;
}

const TRAIN: CommandSpec = {
  name: "train",
  summary: "train a language model on a text file (default: a small xLSTM on the bundled time-machine text)",
  usage: "xlstm train [--config file.json] [options]",
  flags: [
    { name: "config", kind: "string", arg: "FILE", help: "JSON file of training options (the train() option names; flags override it), or a bare xLSTM model config" },
    { name: "data", kind: "string", arg: "FILE", help: "UTF-8 text to train on (default: data/timemachine.txt from the package)" },
    { name: "out", kind: "string", arg: "DIR", help: "run directory: checkpoints/, metrics.jsonl, loss.svg, loss.png (default: xlstm-run)" },
    { name: "resume", kind: "optional", arg: "[DIR]", help: "continue the run in --out (or the checkpoint DIR) exactly where it stopped" },
    { name: "model", kind: "string", arg: "TYPE", values: ["xlstm", "lstm"], help: "model type (default xlstm)" },
    { name: "tokenizer", kind: "string", arg: "KIND", help: "char (vocabulary from the text, default), byte (UTF-8, 256), or FILE.json (a Hugging Face tokenizer.json)" },
    { name: "max-tokens", kind: "int", arg: "N", help: "train on the first N tokens only" },
    { name: "steps", kind: "int", arg: "N", help: "optimizer updates (default 800)" },
    { name: "epochs", kind: "int", arg: "N", help: "passes over the training split instead of --steps" },
    { name: "batch-size", kind: "int", arg: "N", help: "sequences per batch (default 16)" },
    { name: "seq-len", kind: "int", arg: "N", help: "tokens per sequence (default 128)" },
    { name: "embedding-dim", kind: "int", arg: "N", help: "xLSTM embedding_dim (default 128)" },
    { name: "num-blocks", kind: "int", arg: "N", help: "xLSTM num_blocks (default 4)" },
    { name: "num-heads", kind: "int", arg: "N", help: "sLSTM heads (default 4)" },
    { name: "hidden-size", kind: "int", arg: "N", help: "LSTM hidden_size (default 256)" },
    { name: "num-layers", kind: "int", arg: "N", help: "LSTM num_layers (default 1)" },
    { name: "dropout", kind: "number", arg: "P", help: "dropout (default 0.1 for xlstm, 0 for lstm)" },
    { name: "optimizer", kind: "string", arg: "NAME", values: ["adamw", "sgd"], help: "adamw (default; the reference's weight-decay groups) or sgd" },
    { name: "lr", kind: "number", arg: "X", help: "peak learning rate (default 4e-3 adamw, 1 sgd)" },
    { name: "weight-decay", kind: "number", arg: "X", help: "weight decay (default 0.1 adamw, 0 sgd)" },
    { name: "momentum", kind: "number", arg: "X", help: "SGD momentum (default 0)" },
    { name: "nesterov", kind: "bool", help: "SGD Nesterov momentum" },
    { name: "schedule", kind: "string", arg: "NAME", values: ["warmup-cosine", "constant"], help: "learning-rate schedule (default warmup-cosine for adamw, constant for sgd)" },
    { name: "warmup-steps", kind: "int", arg: "N", help: "linear warm-up steps (default min(50, steps/10))" },
    { name: "decay-until-step", kind: "int", arg: "N", help: "end of the cosine decay (default: the last step)" },
    { name: "min-lr", kind: "number", arg: "X", help: "final learning rate (default lr/10)" },
    { name: "clip", kind: "number", arg: "X", help: "clip the global gradient norm at X; 0 turns it off (default 1)" },
    { name: "grad-accum", kind: "int", arg: "N", help: "batches per optimizer update (default 1)" },
    { name: "sampling", kind: "string", arg: "MODE", values: ["random", "sequential"], help: "batch order as d2l's iterators (default random)" },
    { name: "carry-state", kind: "bool", help: "carry the recurrent state across batches (default: on for sequential)" },
    { name: "val-fraction", kind: "number", arg: "X", help: "share of the text held out for validation (default 0.05)" },
    { name: "eval-every", kind: "int", arg: "N", help: "validate every N steps and at the end; 0 never (default 100)" },
    { name: "eval-batches", kind: "int", arg: "N", help: "validation batches per evaluation (default 4)" },
    { name: "checkpoint-every", kind: "int", arg: "N", help: "checkpoint every N steps, and always at the end (default 200)" },
    { name: "keep-checkpoints", kind: "int", arg: "N", help: "checkpoints to keep (default 2)" },
    { name: "slstm-layout", kind: "string", arg: "L", values: ["cuda", "vanilla"], help: "sLSTM layout of the saved model files (default cuda)" },
    { name: "seed", kind: "int", arg: "N", help: "seed of initialisation, batch order and dropout (default 0)" },
    { name: "threads", kind: "int", arg: "N", help: "CPU threads (default: all cores)" },
    { name: "device", kind: "string", arg: "D", values: ["cpu", "cuda"], help: "cpu (default) or cuda" },
    { name: "autocast", kind: "string", arg: "T", values: ["none", "bfloat16"], help: "bfloat16 matrix products (float32 accumulation): on the GPU, or on CPUs with AMX or AVX512_BF16; default none" },
    { name: "log-every", kind: "int", arg: "N", help: "without a terminal: print a progress line every N steps (default: about 25 lines per run)" },
    { name: "quiet", kind: "bool", help: "no progress output; only the summary" },
  ],
  notes:
    "Progress goes to stderr (a bar on a terminal, plain lines otherwise); metrics to <out>/metrics.jsonl; plots to\n" +
    "<out>/loss.svg and <out>/loss.png. Ctrl-C stops after the current step and writes a checkpoint; --resume\n" +
    "continues with the same losses as an uninterrupted run.",
};

const GENERATE: CommandSpec = {
  name: "generate",
  summary: "generate text from a checkpoint, streaming to stdout",
  usage: "xlstm generate --checkpoint PATH --prompt TEXT [options]",
  flags: [
    { name: "checkpoint", kind: "string", arg: "PATH", help: "run directory, checkpoint directory or model .safetensors file (required)" },
    { name: "prompt", kind: "string", arg: "TEXT", help: "the text to continue (required)" },
    { name: "max-tokens", kind: "int", arg: "N", help: "tokens to generate (default 200)" },
    { name: "temperature", kind: "number", arg: "T", help: "sampling temperature; 0 is greedy (default 0.8)" },
    { name: "top-k", kind: "int", arg: "K", help: "sample from the K most likely tokens; 0 all (default 0)" },
    { name: "top-p", kind: "number", arg: "P", help: "nucleus sampling: the most likely tokens up to probability P (default 1)" },
    { name: "seed", kind: "int", arg: "N", help: "sampling seed (default 0)" },
    { name: "tokenizer", kind: "string", arg: "KIND", help: "overrides the checkpoint's: byte, char:FILE (vocabulary of a text file), or FILE.json (a Hugging Face tokenizer.json; a checkpoint directory's own tokenizer.json is used when the checkpoint has no tokenizer)" },
    { name: "config", kind: "string", arg: "FILE", help: "model config JSON for a model file that carries none" },
    { name: "dtype", kind: "string", arg: "T", values: ["bfloat16", "float32"], help: "xLSTM Large checkpoints: weight storage (default bfloat16) of the decoder, or of the module on cuda" },
    { name: "device", kind: "string", arg: "D", values: ["cpu", "cuda"], help: "cpu (default) or cuda (xLSTM Large: the module with its --dtype weights on the GPU)" },
    { name: "no-echo", kind: "bool", help: "do not print the prompt before the generated text" },
  ],
};

const CONVERT: CommandSpec = {
  name: "convert",
  summary: "convert a model between the sLSTM layouts and to/from the reference's checkpoint layout",
  usage: "xlstm convert <input> <output> [--slstm-layout cuda|vanilla] [--config file.json] [--tokenizer KIND]",
  flags: [
    { name: "slstm-layout", kind: "string", arg: "L", values: ["cuda", "vanilla"], help: "sLSTM parameter layout of the output (default cuda, the reference's default backend)" },
    { name: "config", kind: "string", arg: "FILE", help: "model config JSON (reference field names) for an input that carries none" },
    { name: "tokenizer", kind: "string", arg: "KIND", help: "tokenizer to store with the output: byte, char:FILE, or FILE.json (a Hugging Face tokenizer.json)" },
  ],
  notes:
    "<input>: a run or checkpoint directory, or a .safetensors file with the reference's state_dict keys (either\n" +
    "sLSTM layout; its config from the file's metadata, a config.json beside it, or --config).\n" +
    "<output>: a name ending in .safetensors writes one file (the reference's keys, config in __metadata__);\n" +
    "anything else writes a checkpoint directory (model.safetensors + config.json) that generate can use.",
};

const BENCH: CommandSpec = {
  name: "bench",
  summary: "run benchmark workloads, one JSON line per result (default: every workload of --device; G1-rows and G1-split-lane only when named)",
  usage: "xlstm bench [--workload a,b] [--device cpu|cuda] [--reps N]",
  flags: [
    { name: "workload", kind: "string", arg: "IDS", help: "comma-separated workload ids (see ../shared/bench/WORKLOADS.md; on the GPU: G1, G1-split-lane, G1-rows, G2, G2-forms, G3, G3-W5, L1-cuda, W1-cuda, W3-cuda, W4-cuda, W6-cuda)" },
    { name: "device", kind: "string", arg: "D", values: ["cpu", "cuda"], help: "device of the workloads to run (default cpu)" },
    { name: "reps", kind: "int", arg: "N", help: "timed repetitions after the warm-up (untimed runs for at least 0.5 s; default 5)" },
  ],
};

const CHECK: CommandSpec = {
  name: "check-fixtures",
  summary: "run every fixture of <dir>/manifest.json through the public API; exit 1 if any fails",
  usage: "xlstm check-fixtures <dir> [--only REGEX] [--exclude REGEX] [--device cpu|cuda]",
  flags: [
    { name: "only", kind: "string", arg: "REGEX", help: "run only fixtures whose name matches" },
    { name: "exclude", kind: "string", arg: "REGEX", help: "skip fixtures whose name matches" },
    { name: "device", kind: "string", arg: "D", values: ["cpu", "cuda"], help: "cpu (default) or cuda: modules and inputs on the GPU, results read back and compared" },
  ],
};

const INFO: CommandSpec = { name: "info", summary: "the backends this machine and binary offer (CPU SIMD level, threads, CUDA)", usage: "xlstm info", flags: [] };

const COMMANDS = [TRAIN, GENERATE, CONVERT, INFO, BENCH, CHECK];

function usage(): string {
  const lines = ["Usage: xlstm <command> [options]", "", "Commands:"];
  for (const c of COMMANDS) lines.push(`  ${c.name.padEnd(16)}${c.summary}`);
  lines.push(`  ${"help [command]".padEnd(16)}this text, or a command's options`);
  lines.push("", "Run 'xlstm <command> --help' for a command's options.", "");
  return lines.join("\n");
}

function commandHelp(c: CommandSpec): string {
  const lines = [`Usage: ${c.usage}`, "", c.summary.charAt(0).toUpperCase() + c.summary.slice(1) + "."];
  if (c.flags.length) {
    lines.push("", "Options:");
    for (const f of c.flags) {
      const left = `--${f.name}${f.arg ? " " + f.arg : ""}`;
      lines.push(`  ${left.padEnd(26)}${f.help}${f.values ? ` [${f.values.join("|")}]` : ""}`);
    }
    lines.push(`  ${"--help".padEnd(26)}this text`);
  }
  if (c.notes) lines.push("", c.notes);
  lines.push("");
  return lines.join("\n");
}

/** Parse `args` against a command's flags; positionals are collected in order. */
function parseArgs(c: CommandSpec, args: string[]): { flags: Map<string, string | number | boolean>; positionals: string[]; explicit: Set<string> } {
  const flags = new Map<string, string | number | boolean>();
  const positionals: string[] = [];
  const specs = new Map(c.flags.map((f) => [f.name, f]));
  for (let i = 0; i < args.length; ++i) {
    const a = args[i];
    if (!a.startsWith("--") || a === "--") {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    let name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let value: string | undefined = eq > 0 ? a.slice(eq + 1) : undefined;
    let spec = specs.get(name);
    if (!spec && name.startsWith("no-") && specs.get(name.slice(3))?.kind === "bool") {
      spec = specs.get(name.slice(3))!;
      name = spec.name;
      if (value !== undefined) throw new UsageError(`option --no-${name} takes no value`);
      flags.set(name, false);
      continue;
    }
    if (!spec) throw new UsageError(`unknown option --${name} (see xlstm ${c.name} --help)`);
    if (flags.has(name)) throw new UsageError(`option --${name} is given twice`);
    if (spec.kind === "bool") {
      if (value !== undefined && value !== "true" && value !== "false") throw new UsageError(`option --${name} takes no value (or =true/=false)`);
      flags.set(name, value !== "false");
      continue;
    }
    if (spec.kind === "optional") {
      if (value === undefined && args[i + 1] !== undefined && !args[i + 1].startsWith("--")) value = args[++i];
      flags.set(name, value ?? true);
      continue;
    }
    if (value === undefined) {
      if (args[i + 1] === undefined || (args[i + 1].startsWith("--") && spec.kind === "string")) throw new UsageError(`option --${name} needs a value${spec.arg ? ` (${spec.arg})` : ""}`);
      value = args[++i];
    }
    if (spec.kind === "int") {
      const n = Number(value);
      if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`option --${name} must be an integer, got "${value}"`);
      flags.set(name, n);
    } else if (spec.kind === "number") {
      const n = Number(value);
      if (value.trim() === "" || !Number.isFinite(n)) throw new UsageError(`option --${name} must be a number, got "${value}"`);
      flags.set(name, n);
    } else {
      if (spec.values && !spec.values.includes(value)) throw new UsageError(`option --${name} must be ${spec.values.join(" or ")}, got "${value}"`);
      flags.set(name, value);
    }
  }
  return { flags, positionals, explicit: new Set(flags.keys()) };
}

function wantsHelp(args: string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

// ---- train ------------------------------------------------------------------------------------------------------

function readJsonFile(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new Error(`${what} ${file} must hold a JSON object`);
  return v as Record<string, unknown>;
}

const TRAIN_OPTION_KEYS = new Set(["data", "maxTokens", "tokenizer", "modelType", "model", "steps", "epochs", "batchSize", "seqLen", "optimizer", "lr", "weightDecay", "betas", "eps", "momentum", "nesterov", "schedule", "warmupSteps", "decayUntilStep", "minLr", "clipGradNorm", "gradientAccumulationSteps", "sampling", "carryState", "valFraction", "evalEvery", "evalBatches", "seed", "outDir", "checkpointEvery", "keepCheckpoints", "slstmLayout", "threads"]);

function fmtDuration(sec: number): string {
  if (!Number.isFinite(sec)) return "?";
  sec = Math.max(0, Math.round(sec));
  const h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
  return h ? `${h}h${String(m).padStart(2, "0")}m` : m ? `${m}m${String(s).padStart(2, "0")}s` : `${s}s`;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function trainCmd(args: string[]): Promise<number> {
  const { flags, positionals, explicit } = parseArgs(TRAIN, args);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see xlstm train --help)`);
  const device = (flags.get("device") as string) ?? "cpu";
  if (device === "cuda") {
    const cuda = backends().cuda;
    if (!cuda.available) throw new Error(`--device cuda: CUDA is not available on this machine (${cuda.reason ?? "no usable GPU"}); use --device cpu`);
  }
  // options: config file, then flags
  let opts: TrainOptions = {};
  if (flags.has("config")) {
    const j = readJsonFile(flags.get("config") as string, "config file");
    const keys = Object.keys(j);
    if (keys.some((k) => TRAIN_OPTION_KEYS.has(k))) {
      const unknown = keys.filter((k) => !TRAIN_OPTION_KEYS.has(k));
      if (unknown.length) throw new UsageError(`config file ${flags.get("config")}: unknown option "${unknown[0]}"`);
      opts = j as TrainOptions;
    } else opts = { model: j };
  }
  const set = <K extends keyof TrainOptions>(flag: string, key: K, map: (v: never) => TrainOptions[K] = (v) => v) => {
    if (flags.has(flag)) opts[key] = map(flags.get(flag) as never);
  };
  set("data", "data");
  set("model", "modelType");
  set("tokenizer", "tokenizer");
  // a tokenizer.json path (flag or config file) travels to the trainer as the tokenizer's saved form
  if (typeof opts.tokenizer === "string" && opts.tokenizer !== "char" && opts.tokenizer !== "byte") opts.tokenizer = hfTokenizerFile(opts.tokenizer, "tokenizer").toJSON();
  set("max-tokens", "maxTokens");
  set("steps", "steps");
  set("epochs", "epochs");
  if (flags.has("steps")) opts.epochs = undefined;
  if (flags.has("epochs")) opts.steps = undefined;
  set("batch-size", "batchSize");
  set("seq-len", "seqLen");
  set("optimizer", "optimizer");
  set("lr", "lr");
  set("device", "device");
  set("autocast", "autocast");
  set("weight-decay", "weightDecay");
  set("momentum", "momentum");
  set("nesterov", "nesterov");
  set("schedule", "schedule");
  set("warmup-steps", "warmupSteps");
  set("decay-until-step", "decayUntilStep");
  set("min-lr", "minLr");
  set("clip", "clipGradNorm");
  set("grad-accum", "gradientAccumulationSteps");
  set("sampling", "sampling");
  set("carry-state", "carryState");
  set("val-fraction", "valFraction");
  set("eval-every", "evalEvery");
  set("eval-batches", "evalBatches");
  set("checkpoint-every", "checkpointEvery");
  set("keep-checkpoints", "keepCheckpoints");
  set("slstm-layout", "slstmLayout");
  set("seed", "seed");
  set("threads", "threads");
  const model: Record<string, unknown> = { ...(opts.model ?? {}) };
  const modelType = opts.modelType ?? "xlstm";
  const xOnly = ["embedding-dim", "num-blocks", "num-heads"], lOnly = ["hidden-size", "num-layers"];
  for (const f of modelType === "xlstm" ? lOnly : xOnly) if (flags.has(f)) throw new UsageError(`option --${f} does not apply to --model ${modelType}`);
  if (flags.has("embedding-dim")) model.embedding_dim = flags.get("embedding-dim");
  if (flags.has("num-blocks")) model.num_blocks = flags.get("num-blocks");
  if (flags.has("num-heads")) {
    const { DEFAULT_XLSTM_CONFIG } = await import("../train/defaults");
    const sb = (model.slstm_block ?? DEFAULT_XLSTM_CONFIG.slstm_block) as { slstm?: object; feedforward?: unknown };
    model.slstm_block = { ...sb, slstm: { ...(sb.slstm ?? {}), num_heads: flags.get("num-heads") } };
  }
  if (flags.has("hidden-size")) model.hidden_size = flags.get("hidden-size");
  if (flags.has("num-layers")) model.num_layers = flags.get("num-layers");
  if (flags.has("dropout")) model.dropout = flags.get("dropout");
  if (Object.keys(model).length) opts.model = model;

  const outDir = (flags.get("out") as string | undefined) ?? opts.outDir ?? "xlstm-run";
  opts.outDir = outDir;
  const resume = flags.get("resume");
  if (resume !== undefined) {
    // a resumed run takes its options from the checkpoint; only explicit flags are passed on
    const explicitOpts: TrainOptions = { outDir, resume: resume === true ? true : (resume as string) };
    const flagToKey: Record<string, keyof TrainOptions> = { steps: "steps", epochs: "epochs", "eval-every": "evalEvery", "eval-batches": "evalBatches", "checkpoint-every": "checkpointEvery", "keep-checkpoints": "keepCheckpoints", threads: "threads", "slstm-layout": "slstmLayout", device: "device", autocast: "autocast" };
    for (const [f, k] of Object.entries(flagToKey)) if (explicit.has(f)) (explicitOpts as Record<string, unknown>)[k] = opts[k];
    const ignored = [...explicit].filter((f) => !(f in flagToKey) && !["resume", "out", "quiet", "log-every", "config"].includes(f));
    if (ignored.length) process.stderr.write(`xlstm train: note: --${ignored.join(", --")} ${ignored.length > 1 ? "are" : "is"} taken from the checkpoint when resuming\n`);
    opts = explicitOpts;
  } else {
    let existing = false;
    try {
      resolveCheckpoint(outDir);
      existing = true;
    } catch {
      // no run there yet
    }
    if (existing) throw new Error(`${outDir} already holds a training run; pass --resume to continue it, or --out to start a new one elsewhere`);
  }

  const quiet = flags.get("quiet") === true;
  const tty = !!process.stderr.isTTY && !quiet;
  let logEvery = (flags.get("log-every") as number | undefined) ?? 0;
  if (flags.has("log-every") && !(logEvery >= 1)) throw new UsageError("option --log-every must be >= 1");
  let last: ProgressEvent | null = null;
  let lastVal: number | null = null;
  const trainer = new Trainer(opts);
  trainer.on("start", (e: StartEvent) => {
    if (!logEvery) logEvery = Math.max(1, Math.round((e.totalSteps - e.startStep) / 25));
    const cfg = e.config as Record<string, unknown>;
    const shape = e.modelType === "xlstm" ? `xLSTM E=${cfg.embedding_dim} blocks=${cfg.num_blocks} (${cfg.mlstm_block ? `sLSTM at ${JSON.stringify(cfg.slstm_at)}, mLSTM elsewhere` : "sLSTM only"})` : `LSTM hidden=${cfg.hidden_size} layers=${cfg.num_layers ?? 1}`;
    for (const n of e.notes) process.stderr.write(`xlstm train: note: ${n}\n`);
    if (!quiet)
      process.stderr.write(
        `${e.resumedFrom ? `resuming from ${e.resumedFrom} at step ${e.startStep}\n` : ""}` +
          `model: ${shape}, ${fmtInt(e.parameters)} parameters, vocabulary ${e.vocabSize}\n` +
          `data: ${fmtInt(e.trainTokens)} training tokens, ${fmtInt(e.valTokens)} validation; ${fmtInt(e.tokensPerStep)} tokens per step, ${e.totalSteps} steps\n` +
          `run directory: ${e.outDir}\n`,
      );
  });
  const bar = (e: ProgressEvent) => {
    const width = 24, frac = e.step / e.totalSteps;
    const fill = Math.round(frac * width);
    return `[${"█".repeat(fill)}${"░".repeat(width - fill)}] ${e.step}/${e.totalSteps}  loss ${e.loss.toFixed(3)}  ppl ${e.perplexity.toFixed(2)}${lastVal !== null ? `  val ${lastVal.toFixed(3)}` : ""}  ${fmtInt(e.tokensPerSec)} tok/s  ETA ${fmtDuration(e.etaSec)}`;
  };
  trainer.on("progress", (e: ProgressEvent) => {
    last = e;
    if (quiet) return;
    if (tty) process.stderr.write(`\r${bar(e)}\x1b[K`);
    else if (e.step % logEvery === 0 || e.step === e.totalSteps)
      process.stderr.write(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)} ppl ${e.perplexity.toFixed(2)} lr ${e.lr.toExponential(2)} ${fmtInt(e.tokensPerSec)} tok/s eta ${fmtDuration(e.etaSec)}\n`);
  });
  trainer.on("eval", (e) => {
    lastVal = e.valLoss;
    if (!quiet && !tty) process.stderr.write(`step ${e.step} validation loss ${e.valLoss.toFixed(4)} ppl ${e.valPerplexity.toFixed(2)}\n`);
  });
  let interrupts = 0, firstAt = 0;
  const onSigint = () => {
    // a terminal's Ctrl-C can arrive twice at once (to this process and forwarded by the relaunching parent, see
    // lib/cli/relaunch.ts): a second signal counts only when it comes later
    if (interrupts === 1 && Date.now() - firstAt < 300) return;
    interrupts++;
    if (interrupts === 1) {
      firstAt = Date.now();
      trainer.stop();
      process.stderr.write(`${tty ? "\n" : ""}xlstm train: stopping after this step and writing a checkpoint (Ctrl-C again to quit at once)\n`);
    } else process.exit(130);
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  let result;
  try {
    result = await trainer.run();
  } finally {
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
    if (tty && last) process.stderr.write("\n");
  }
  const runDir = result.outDir ?? outDir;
  const points = readLossPoints(path.join(runDir, "metrics.jsonl"));
  if (!quiet && points.length > 1) process.stderr.write(terminalChart(points) + "\n");
  const first = points.length ? points[0].loss : NaN;
  process.stderr.write(
    `${result.stopped ? "stopped" : "done"}: step ${result.step}/${result.totalSteps}, loss ${first.toFixed(3)} -> ${result.loss.toFixed(3)}` +
      `${result.valLoss !== null ? ` (validation ${result.valLoss.toFixed(3)}, perplexity ${Math.exp(result.valLoss).toFixed(2)})` : ""}, ${fmtInt(result.tokensPerSec)} tok/s, ${fmtDuration(result.elapsedSec)}\n` +
      `checkpoint: ${result.checkpoint ?? "(none)"}\nmetrics: ${path.join(runDir, "metrics.jsonl")}\nplots: ${path.join(runDir, "loss.svg")}, ${path.join(runDir, "loss.png")}\n` +
      (result.stopped ? `resume with: xlstm train --resume --out ${runDir}\n` : `generate with: xlstm generate --checkpoint ${runDir} --prompt "..."\n`),
  );
  return result.stopped ? 130 : 0;
}

// ---- generate ---------------------------------------------------------------------------------------------------

/** A Hugging Face tokenizer.json named by an option (errors are one line naming the file). */
function hfTokenizerFile(v: string, flag: string, kinds = "char, byte"): HFTokenizer {
  if (!fs.existsSync(v) && !v.endsWith(".json")) throw new UsageError(`option --${flag} must be ${kinds} or a tokenizer.json file, got "${v}"`);
  return HFTokenizer.fromFile(v);
}

function tokenizerFlag(v: string | undefined): Tokenizer | undefined {
  if (v === undefined) return undefined;
  if (v === "byte") return new ByteTokenizer();
  if (v.startsWith("char:")) return CharTokenizer.fromText(readTextFile(v.slice(5)));
  return hfTokenizerFile(v, "tokenizer", "byte, char:FILE");
}

async function generateCmd(args: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(GENERATE, args);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see xlstm generate --help)`);
  const ck = flags.get("checkpoint") as string | undefined;
  if (!ck) throw new UsageError("--checkpoint is required (a run directory, checkpoint directory or model .safetensors file)");
  const prompt = flags.get("prompt") as string | undefined;
  if (prompt === undefined) throw new UsageError("--prompt is required");
  if (prompt.length === 0) throw new UsageError("--prompt must not be empty");
  const temperature = (flags.get("temperature") as number | undefined) ?? 0.8;
  const topK = (flags.get("top-k") as number | undefined) ?? 0;
  const topP = (flags.get("top-p") as number | undefined) ?? 1;
  const maxTokens = (flags.get("max-tokens") as number | undefined) ?? 200;
  if (temperature < 0) throw new UsageError(`option --temperature must be >= 0, got ${temperature}`);
  if (topK < 0) throw new UsageError(`option --top-k must be >= 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`option --top-p must be in (0, 1], got ${topP}`);
  if (maxTokens < 0) throw new UsageError(`option --max-tokens must be >= 0, got ${maxTokens}`);
  const seed = (flags.get("seed") as number | undefined) ?? 0;
  if (seed < 0) throw new UsageError(`option --seed must be >= 0, got ${seed}`);
  const config = flags.has("config") ? readJsonFile(flags.get("config") as string, "config file") : undefined;
  const dtype = flags.get("dtype") as "bfloat16" | "float32" | undefined;
  const loaded = loadModel(ck, { config, tokenizer: tokenizerFlag(flags.get("tokenizer") as string | undefined), dtype, device: (flags.get("device") as "cpu" | "cuda" | undefined) ?? "cpu" });
  if (dtype && loaded.modelType !== "xlstm-large") process.stderr.write(`xlstm generate: note: --dtype applies to xLSTM Large checkpoints only; ignored\n`);
  if (!loaded.tokenizer) throw new Error(`${loaded.checkpoint.modelFile} has no tokenizer; pass --tokenizer byte, --tokenizer char:FILE or --tokenizer tokenizer.json`);
  const ids = loaded.tokenizer.encode(prompt); // RangeError names characters outside the vocabulary
  if (flags.get("no-echo") !== true) process.stdout.write(prompt);
  let ended = false;
  const onSigint = () => (ended = true);
  process.on("SIGINT", onSigint);
  try {
    for await (const t of generate(loaded.model, ids, { tokenizer: loaded.tokenizer, maxTokens, temperature, topK, topP, seed })) {
      process.stdout.write(t.text);
      if (ended) break;
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
  process.stdout.write("\n");
  return 0;
}

// ---- convert ----------------------------------------------------------------------------------------------------

async function convertCmd(args: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(CONVERT, args);
  if (positionals.length !== 2) throw new UsageError(`convert needs <input> and <output>, got ${positionals.length} argument${positionals.length === 1 ? "" : "s"} (see xlstm convert --help)`);
  const [input, output] = positionals;
  const layout = ((flags.get("slstm-layout") as string | undefined) ?? "cuda") as "cuda" | "vanilla";
  const config = flags.has("config") ? readJsonFile(flags.get("config") as string, "config file") : undefined;
  const loaded = loadModel(input, { config, tokenizer: tokenizerFlag(flags.get("tokenizer") as string | undefined) });
  if (loaded.modelType === "xlstm-large")
    throw new Error(`${loaded.checkpoint.modelFile} is an xLSTM Large checkpoint, which convert does not handle (it already uses the reference's keys; convert weight modes with nn.convertLargeWeights)`);
  if (path.resolve(output) === path.resolve(loaded.checkpoint.modelFile) || (loaded.checkpoint.dir && path.resolve(output) === path.resolve(loaded.checkpoint.dir)))
    throw new UsageError("convert: <output> must differ from <input>");
  const n = loaded.model.stateDict().size;
  if (output.endsWith(".safetensors")) {
    fs.mkdirSync(path.dirname(path.resolve(output)), { recursive: true });
    writeModelFile(output, loaded.model, loaded.modelType, loaded.tokenizer, { slstmLayout: layout });
    process.stdout.write(`wrote ${output}: ${n} tensors (reference keys), sLSTM layout ${layout}, config in __metadata__${loaded.tokenizer ? ", tokenizer" : ""}\n`);
  } else {
    saveCheckpoint(output, { model: loaded.model, modelType: loaded.modelType, tokenizer: loaded.tokenizer, slstmLayout: layout });
    process.stdout.write(`wrote ${output}/: model.safetensors (${n} tensors, sLSTM layout ${layout}) and ${CONFIG_FILE}${loaded.tokenizer ? "" : " (no tokenizer: pass --tokenizer to generate from it)"}\n`);
  }
  return 0;
}

// ---- bench, check-fixtures --------------------------------------------------------------------------------------

async function bench(args: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(BENCH, args);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see xlstm bench --help)`);
  const device = (flags.get("device") as string | undefined) ?? "cpu";
  const reps = (flags.get("reps") as number | undefined) ?? 5;
  if (reps < 1) throw new UsageError(`--reps must be a positive integer, got "${reps}"`);
  const all = workloads();
  let chosen = all.filter((w) => w.device === device && !w.onRequest);
  const wanted = flags.get("workload") as string | undefined;
  if (wanted) {
    const ids = wanted.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = ids.filter((id) => !all.some((w) => w.id === id));
    if (unknown.length) throw new UsageError(`unknown workload ${unknown.join(", ")}; available: ${all.map((w) => w.id).join(", ")}`);
    chosen = all.filter((w) => ids.includes(w.id));
  }
  if (chosen.length === 0) throw new Error(`no ${device} workload is available in this version`);
  if (chosen.some((w) => w.device === "cuda") && !backends().cuda.available)
    throw new Error(`--device cuda: CUDA is not available on this machine (${backends().cuda.reason ?? "no usable GPU"})`);
  // which V8 garbage collector the rows ran under (lib/cli/relaunch.ts; rows measured in a child say so themselves)
  const gc = gcLabel(process.execArgv);
  for (const w of chosen) for await (const row of w.run({ reps })) process.stdout.write(JSON.stringify({ v8_gc: gc, ...row }) + "\n");
  return 0;
}

async function checkFixtures(args: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(CHECK, args);
  const dirArg = positionals[0];
  if (!dirArg) throw new UsageError("the fixture directory is required (see xlstm check-fixtures --help)");
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const device = (flags.get("device") as string | undefined) ?? "cpu";
  if (device !== "cpu" && device !== "cuda") throw new UsageError(`--device must be cpu or cuda, got ${device}`);
  if (device === "cuda" && !backends().cuda.available) throw new Error(`--device cuda: CUDA is not available on this machine (${backends().cuda.reason ?? "no usable GPU"})`);
  const re = (k: string) => {
    const v = flags.get(k) as string | undefined;
    if (v === undefined) return null;
    try {
      return new RegExp(v);
    } catch {
      throw new UsageError(`--${k} is not a valid regular expression: ${v}`);
    }
  };
  const only = re("only"), exclude = re("exclude");
  const dir = path.resolve(dirArg);
  const manifest = readManifest(dir);
  const selected = manifest.fixtures.filter((f) => (!only || only.test(f.name)) && !(exclude && exclude.test(f.name)));
  if (selected.length === 0) throw new Error(`no fixture in ${dir} matches the selection`);
  let failed = 0;
  for (const f of selected) {
    const r = runFixture(f, dir, { device });
    if (!r.ok) failed++;
    process.stdout.write(formatResult(r) + "\n");
  }
  process.stdout.write(`${selected.length - failed} passed, ${failed} failed\n`);
  return failed ? 1 : 0;
}

// ---- entry ------------------------------------------------------------------------------------------------------

const RUNNERS: Record<string, (args: string[]) => Promise<number>> = {
  train: trainCmd,
  generate: generateCmd,
  convert: convertCmd,
  bench,
  "check-fixtures": checkFixtures,
  info: async (args) => {
    if (args.length) throw new UsageError(`unexpected argument "${args[0]}"`);
    process.stdout.write(JSON.stringify(backends(), null, 2) + "\n");
    return 0;
  },
};

/** The first line of an error's message (stack traces are for bugs, not for users). */
function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0];
}

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. Never throws. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "help" || cmd === "--help" || cmd === "-h") {
    const about = cmd === "help" ? rest[0] : undefined;
    if (about !== undefined) {
      const c = COMMANDS.find((x) => x.name === about);
      if (!c) {
        process.stderr.write(`xlstm: unknown command "${about}" (see xlstm --help)\n`);
        return 2;
      }
      process.stdout.write(commandHelp(c));
      return 0;
    }
    process.stdout.write(usage());
    return 0;
  }
  const spec = COMMANDS.find((c) => c.name === cmd);
  const run = RUNNERS[cmd];
  if (!spec || !run) {
    process.stderr.write(`xlstm: unknown command "${cmd}" (see xlstm --help)\n`);
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(commandHelp(spec));
    return 0;
  }
  try {
    return await run(rest);
  } catch (e) {
    process.stderr.write(`xlstm ${cmd}: ${oneLine(e)}\n`);
    if (process.env.XLSTM_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + "\n");
    return e instanceof UsageError ? 2 : 1;
  }
}
