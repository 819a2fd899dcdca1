// xLSTM, mLSTM-only and sLSTM-only language models on the "Dive into Deep Learning" time machine (issue 7,
// reproduction 2): the same text and 28-token vocabulary as examples/d2l-timemachine.ts (d2l's preprocessing, shared
// through examples/common.ts), three small models of similar size, perplexity against training tokens seen, one plot.
//
// Data: d2l's preprocessed text (lowercase letters and spaces, 28 tokens with <unk>). d2l's reproduction trains on
// the first 10,000 tokens only, which a model this size memorises (the LSTM ends at perplexity 1.05 there), so by
// default this script uses the whole preprocessed book and holds out its last 5 % for validation; `--max-tokens 10000
// --val 0` gives d2l's exact data (training perplexity only).
//
// Models (AdamW with the reference's weight-decay groups, warm-up + cosine, random 16 x 64 windows, dropout 0),
// embedding 64 and 4 blocks each:
//   xLSTM[3:1]  mLSTM blocks with an sLSTM block at position 1 (the layout of the reference's config (a))
//   mLSTM-only  four mLSTM blocks
//   sLSTM-only  four sLSTM blocks (each with its gated feed-forward, as in the reference)
//
//   npx tsx examples/xlstm-timemachine.ts [--steps 1200] [--seed 0] [--threads 1] [--out xlstm-timemachine-run]
//       [--models xlstm,mlstm,slstm] [--embedding 64] [--blocks 4] [--batch 16] [--seq-len 64] [--lr 0.004]
//       [--eval-every 50] [--max-tokens N] [--val 0.05]
//
// Prints a line per evaluation, then a results table; writes <out>/perplexity.svg and .png (validation perplexity,
// solid, and the mean training perplexity of each evaluation interval, dashed, against tokens seen) and
// <out>/results.json. Runs with one kernel thread by default (--threads 0: all cores).
import * as fs from "fs";
import * as path from "path";
import { train } from "../lib/train";
import { ChartSeries, writeChart } from "../lib/train/plot";
import { d2lTimeMachine, formatTable, parseFlags } from "./common";

const USAGE = `
usage: npx tsx examples/xlstm-timemachine.ts [flags]
  --steps N        optimizer updates per model (default 1200)
  --seed N         initialisation and batch-order seed (default 0)
  --threads N      kernel threads, 0 = all cores (default 1)
  --out DIR        where perplexity.svg/.png and results.json go (default xlstm-timemachine-run)
  --models LIST    comma-separated from xlstm, mlstm, slstm (default all three)
  --embedding N    embedding dimension (default 64)
  --blocks N       blocks per model (default 4)
  --batch N        sequences per batch (default 16)
  --seq-len N      tokens per sequence (default 64)
  --lr X           peak learning rate (default 0.004)
  --eval-every N   steps between evaluations (default 50)
  --max-tokens N   use the first N tokens of the text (default: all)
  --val X          fraction held out for validation, 0 for none (default 0.05)
`;

const f = parseFlags("xlstm-timemachine", USAGE, {
  steps: ["int", 1200],
  seed: ["int", 0],
  threads: ["int", 1],
  out: ["string", "xlstm-timemachine-run"],
  models: ["string", "xlstm,mlstm,slstm"],
  embedding: ["int", 64],
  blocks: ["int", 4],
  batch: ["int", 16],
  "seq-len": ["int", 64],
  lr: ["number", 4e-3],
  "eval-every": ["int", 50],
  "max-tokens": ["int", 0],
  val: ["number", 0.05],
});
const steps = f.steps as number, seed = f.seed as number, threads = f.threads as number, outDir = f.out as string;
const E = f.embedding as number, nBlocks = f.blocks as number, B = f.batch as number, S = f["seq-len"] as number;
const evalEvery = f["eval-every"] as number, maxTokens = (f["max-tokens"] as number) || null, valFraction = f.val as number;
if (!(valFraction < 1)) {
  process.stderr.write(`xlstm-timemachine: --val must be in [0, 1), got ${JSON.stringify(f.val)}\n`);
  process.exit(2);
}
for (const [k, v] of [["steps", steps], ["embedding", E], ["blocks", nBlocks], ["batch", B], ["seq-len", S]] as const)
  if (v < 1) {
    process.stderr.write(`xlstm-timemachine: --${k} must be at least 1\n`);
    process.exit(2);
  }

const MLSTM = { mlstm: { num_heads: 4, qkv_proj_blocksize: 4, conv1d_kernel_size: 4 } };
const SLSTM = { slstm: { backend: "cuda", num_heads: 4, conv1d_kernel_size: 4, bias_init: "powerlaw_blockdependent" }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } };
const common = { embedding_dim: E, num_blocks: nBlocks, context_length: S, dropout: 0, tie_weights: false, weight_decay_on_embedding: false };
const MODELS: Record<string, { label: string; color: string; config: Record<string, unknown> }> = {
  xlstm: { label: `xLSTM[${nBlocks - 1}:1]`, color: "#1f77b4", config: { ...common, mlstm_block: MLSTM, slstm_block: SLSTM, slstm_at: nBlocks > 1 ? [1] : [0] } },
  mlstm: { label: "mLSTM-only", color: "#2ca02c", config: { ...common, mlstm_block: MLSTM, slstm_block: null, slstm_at: [] } },
  slstm: { label: "sLSTM-only", color: "#d62728", config: { ...common, mlstm_block: null, slstm_block: SLSTM, slstm_at: "all" } },
};
const chosen = (f.models as string).split(",").map((s) => s.trim()).filter(Boolean);
for (const m of chosen)
  if (!(m in MODELS)) {
    process.stderr.write(`xlstm-timemachine: unknown model ${JSON.stringify(m)} in --models (expected xlstm, mlstm, slstm)\n`);
    process.exit(2);
  }

interface Curve {
  tokens: number;
  step: number;
  trainPpl: number;
  valPpl: number | null;
}

interface Result {
  key: string;
  label: string;
  parameters: number;
  curve: Curve[];
  finalTrainPpl: number;
  finalValPpl: number | null;
  bestValPpl: number | null;
  tokensPerSec: number;
  seconds: number;
}

async function runModel(key: string, text: string, vocab: string[]): Promise<Result> {
  const m = MODELS[key];
  const curve: Curve[] = [];
  let parameters = 0, lossSum = 0, lossN = 0, lastStep = 0;
  const tokensPerStep = B * S;
  const point = (step: number, valPpl: number | null) => {
    if (lossN === 0) return;
    const c: Curve = { tokens: step * tokensPerStep, step, trainPpl: Math.exp(lossSum / lossN), valPpl };
    curve.push(c);
    lossSum = 0;
    lossN = 0;
    console.log(
      `${m.label.padEnd(11)} step ${String(step).padStart(5)}/${steps}  tokens ${c.tokens.toLocaleString("en-US").padStart(9)}  train ppl ${c.trainPpl.toFixed(2).padStart(6)}` +
        (valPpl !== null ? `  val ppl ${valPpl.toFixed(2).padStart(6)}` : ""),
    );
  };
  const result = await train({
    text,
    tokenizer: { type: "char", vocab, unk: "<unk>" },
    maxTokens,
    modelType: "xlstm",
    model: m.config,
    steps,
    batchSize: B,
    seqLen: S,
    lr: f.lr as number,
    sampling: "random",
    valFraction,
    evalEvery: valFraction > 0 ? evalEvery : 0,
    evalBatches: 1000, // all of the validation split
    seed,
    threads,
    outDir: null,
    onEvent: (e) => {
      if (e.type === "start") {
        parameters = e.parameters;
        console.log(`${m.label}: ${parameters.toLocaleString("en-US")} parameters, ${e.trainTokens.toLocaleString("en-US")} training / ${e.valTokens.toLocaleString("en-US")} validation tokens`);
        for (const n of e.notes) console.log(`  note: ${n}`);
      } else if (e.type === "progress") {
        lossSum += e.loss;
        lossN += 1;
        lastStep = e.step;
        // without validation, a point every evalEvery steps from the training loss alone
        if (valFraction === 0 && evalEvery > 0 && (e.step % evalEvery === 0 || e.step === steps)) point(e.step, null);
      } else if (e.type === "eval") point(e.step, e.valPerplexity);
      else if (e.type === "nonfinite") console.log(`  step ${e.step}: non-finite loss or gradients, update skipped`);
    },
  });
  point(lastStep, null); // training steps after the last evaluation, if any
  const vals = curve.map((c) => c.valPpl).filter((v): v is number => v !== null);
  return {
    key, label: m.label, parameters, curve,
    finalTrainPpl: curve.length ? curve[curve.length - 1].trainPpl : NaN,
    finalValPpl: result.valLoss !== null ? Math.exp(result.valLoss) : null,
    bestValPpl: vals.length ? Math.min(...vals) : null,
    tokensPerSec: result.tokensPerSec,
    seconds: result.elapsedSec,
  };
}

async function main(): Promise<void> {
  const { text, vocab } = d2lTimeMachine();
  const t0 = performance.now();
  console.log(
    `time machine (d2l preprocessing): ${(maxTokens ?? text.length).toLocaleString("en-US")} of ${text.length.toLocaleString("en-US")} tokens, vocabulary ${vocab.length}; ` +
      `${steps} steps of ${B} x ${S} per model, ${threads || "all"} thread(s)`,
  );
  const results: Result[] = [];
  for (const key of chosen) results.push(await runModel(key, text, vocab));

  fs.mkdirSync(outDir, { recursive: true });
  const series: ChartSeries[] = [];
  for (const r of results) {
    const color = MODELS[r.key].color;
    const val = r.curve.filter((c) => c.valPpl !== null).map((c) => ({ x: c.tokens, y: c.valPpl! }));
    if (val.length) series.push({ label: `${r.label} validation`, color, points: val, markers: val.length <= 40 });
    series.push({ label: `${r.label} training`, color, dashed: true, width: 1, points: r.curve.map((c) => ({ x: c.tokens, y: c.trainPpl })) });
  }
  const plot = writeChart(path.join(outDir, "perplexity"), series, {
    title: `time machine (d2l, 28 tokens): perplexity, E=${E}, ${nBlocks} blocks`,
    xLabel: "training tokens seen",
    yLabel: "perplexity",
    logY: true,
    xMin: 0,
  });
  fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify({ flags: f, results }, null, 1) + "\n");

  const fmt = (v: number | null) => (v === null || !Number.isFinite(v) ? "-" : v.toFixed(2));
  console.log("\nresults");
  console.log(
    formatTable(
      ["model", "parameters", "tokens seen", "train ppl", "val ppl", "best val ppl", "tokens/s", "seconds"],
      results.map((r) => [
        r.label, r.parameters.toLocaleString("en-US"), (steps * B * S).toLocaleString("en-US"), fmt(r.finalTrainPpl), fmt(r.finalValPpl), fmt(r.bestValPpl),
        Math.round(r.tokensPerSec).toLocaleString("en-US"), r.seconds.toFixed(1),
      ]),
    ),
  );
  console.log(`(train ppl: mean over the last evaluation interval; tokens/s include the evaluations)`);
  console.log(`plot: ${plot.svg}, ${plot.png}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((e) => {
  process.stderr.write(`xlstm-timemachine: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
