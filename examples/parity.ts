// Parity, the formal-language task of the xLSTM paper (issue 7, reproduction 3): a sequence of 0/1 tokens; the
// label is the parity of the number of 1s. The paper (after Deletang et al., "Neural networks and the Chomsky
// hierarchy") trains on short sequences and tests on longer ones; models with sLSTM blocks solve it (state tracking
// needs the sLSTM's non-linear recurrence: a state that flips on every 1), mLSTM-only models do not (their memory is a
// gated sum, so they can count the 1s up to the lengths they were trained on, but not carry parity beyond them).
//
// Labels: every position t is supervised with the parity of tokens 1..t (vocabulary 2, the LM head's two logits).
// The models are causal, so the prediction at position t is exactly the prediction for the sequence cut at length t:
// one training sequence of length 20 trains all lengths 1..20 at once (the denser signal makes a 2-core run take
// seconds instead of minutes), no padding is needed, and one evaluation sequence of length 80 measures every length up
// to 80. Training sequences have length --train-len (20); accuracies are reported per range of lengths: 3..20 (seen
// in training), 21..40 and 41..80 (longer than anything seen), on --eval fresh random sequences. Chance is 50 %.
//
// Models (embedding 32, dropout 0; AdamW lr 5e-3 with the reference's weight-decay groups, 10 % warm-up + cosine to
// lr/10, gradient clipping at 1, batches of 32):
//   sLSTM-only   2 sLSTM blocks (each with its gated feed-forward)
//   xLSTM[1:1]   an sLSTM block, then an mLSTM block
//   mLSTM-only   3 mLSTM blocks (one block more than the others, so it is not the smaller model)
// Every layer has one head (--heads): the sLSTM's recurrent matrix then mixes all 32 cells. With 4 heads of 8 cells
// the sLSTM models still fit lengths up to 20 but generalise less reliably (it varied with the seed; seed 0: 94 % and
// 71 % for sLSTM-only on 21..40 and 41..80); the mLSTM-only model fails beyond the training lengths either way.
//
//   npx tsx examples/parity.ts [--steps 3000] [--seed 0] [--threads 1] [--out parity-run] [--models slstm,xlstm,mlstm]
//       [--embedding 32] [--heads 1] [--lr 0.005] [--batch 32] [--train-len 20] [--test-len 80] [--eval 512]
//
// Prints the loss every 250 steps, then a results table; writes <out>/accuracy.svg and .png (accuracy against
// sequence length per model) and <out>/results.json. Runs with one kernel thread by default (--threads 0: all cores).
import * as fs from "fs";
import * as path from "path";
import { noGrad } from "../lib/autograd";
import { native } from "../lib/native";
import "../lib/nn/mlstm-layer"; // registers the mLSTM layer with the block stack
import { xLSTMLMModel, xLSTMLMModelConfig } from "../lib/nn/stack";
import * as ops from "../lib/ops";
import { AdamW, clipGradNorm, LRScheduler, warmupCosineSchedule, xlstmParamGroups } from "../lib/optim";
import { Generator } from "../lib/rng";
import { scope } from "../lib/scope";
import { Tensor } from "../lib/tensor";
import { countParameters } from "../lib/train/models";
import { ChartSeries, writeChart } from "../lib/train/plot";
import { formatTable, parseFlags } from "./common";

const USAGE = `
usage: npx tsx examples/parity.ts [flags]
  --steps N       optimizer updates per model (default 3000)
  --seed N        initialisation and data seed (default 0)
  --threads N     kernel threads, 0 = all cores (default 1)
  --out DIR       where accuracy.svg/.png and results.json go (default parity-run)
  --models LIST   comma-separated from slstm, xlstm, mlstm (default all three)
  --embedding N   embedding dimension (default 32)
  --heads N       heads of every sLSTM and mLSTM layer (default 1)
  --lr X          peak learning rate (default 0.005)
  --batch N       sequences per batch (default 32)
  --train-len N   length of the training sequences: lengths 1..N are trained (default 20)
  --test-len N    length of the evaluation sequences (default 80)
  --eval N        evaluation sequences (default 512)
`;

const f = parseFlags("parity", USAGE, {
  steps: ["int", 3000],
  seed: ["int", 0],
  threads: ["int", 1],
  out: ["string", "parity-run"],
  models: ["string", "slstm,xlstm,mlstm"],
  embedding: ["int", 32],
  heads: ["int", 1],
  lr: ["number", 5e-3],
  batch: ["int", 32],
  "train-len": ["int", 20],
  "test-len": ["int", 80],
  eval: ["int", 512],
});
const steps = f.steps as number, seed = f.seed as number, threads = f.threads as number, outDir = f.out as string;
const E = f.embedding as number, heads = f.heads as number, lr = f.lr as number, B = f.batch as number;
const trainLen = f["train-len"] as number, testLen = f["test-len"] as number, nEval = f.eval as number;
const fail = (msg: string): never => {
  process.stderr.write(`parity: ${msg}\n`);
  process.exit(2);
};
for (const [k, v] of [["steps", steps], ["embedding", E], ["heads", heads], ["batch", B], ["eval", nEval]] as const) if (v < 1) fail(`--${k} must be at least 1`);
if (!(lr > 0)) fail("--lr must be positive");
if (trainLen < 3) fail("--train-len must be at least 3");
if (testLen <= trainLen) fail(`--test-len (${testLen}) must be longer than --train-len (${trainLen})`);

const MLSTM = { mlstm: { num_heads: heads, qkv_proj_blocksize: 4, conv1d_kernel_size: 4 } };
const SLSTM = { slstm: { backend: "cuda", num_heads: heads, conv1d_kernel_size: 4, bias_init: "powerlaw_blockdependent" }, feedforward: { proj_factor: 1.3, act_fn: "gelu" } };
const common = { vocab_size: 2, embedding_dim: E, context_length: testLen, dropout: 0, tie_weights: false, weight_decay_on_embedding: false };
const MODELS: Record<string, { label: string; color: string; config: xLSTMLMModelConfig }> = {
  slstm: { label: "sLSTM-only", color: "#d62728", config: { ...common, num_blocks: 2, mlstm_block: null, slstm_block: SLSTM, slstm_at: "all" } },
  xlstm: { label: "xLSTM[1:1]", color: "#1f77b4", config: { ...common, num_blocks: 2, mlstm_block: MLSTM, slstm_block: SLSTM, slstm_at: [0] } },
  mlstm: { label: "mLSTM-only", color: "#2ca02c", config: { ...common, num_blocks: 3, mlstm_block: MLSTM, slstm_block: null, slstm_at: [] } },
};
const chosen = (f.models as string).split(",").map((s) => s.trim()).filter(Boolean);
for (const m of chosen) if (!(m in MODELS)) fail(`unknown model ${JSON.stringify(m)} in --models (expected slstm, xlstm, mlstm)`);

/** n random 0/1 sequences of length len; y[t] = parity of x[0..t]. */
function sequences(rng: Generator, n: number, len: number): { x: Int32Array; y: Int32Array } {
  const x = new Int32Array(n * len), y = new Int32Array(n * len);
  for (let b = 0; b < n; ++b) {
    let p = 0;
    for (let t = 0; t < len; ++t) {
      const v = rng.int(2);
      p ^= v;
      x[b * len + t] = v;
      y[b * len + t] = p;
    }
  }
  return { x, y };
}

const RANGES: [number, number][] = [
  [3, trainLen],
  [trainLen + 1, Math.min(2 * trainLen, testLen)],
  ...(testLen > 2 * trainLen ? [[2 * trainLen + 1, testLen] as [number, number]] : []),
];

interface Result {
  key: string;
  label: string;
  parameters: number;
  finalLoss: number;
  /** accuracy[t - 1]: accuracy of the parity of the first t tokens. */
  accuracy: number[];
  ranges: { from: number; to: number; accuracy: number }[];
  seconds: number;
  tokensPerSec: number;
}

function runModel(key: string): Result {
  const m = MODELS[key];
  const model = new xLSTMLMModel(m.config, { generator: new Generator(seed) });
  model.train();
  const opt = new AdamW(xlstmParamGroups(model, 0.1), { lr });
  const sch = new LRScheduler(opt, warmupCosineSchedule({ lr, warmup_steps: Math.floor(steps / 10), decay_until_step: steps, min_lr: lr / 10 }));
  const data = new Generator(1_000_003 + seed);
  const parameters = countParameters(model);
  console.log(`${m.label}: ${parameters.toLocaleString("en-US")} parameters`);
  const t0 = performance.now();
  let lossSum = 0, lossN = 0, finalLoss = NaN;
  for (let step = 1; step <= steps; ++step) {
    sch.apply();
    const { x, y } = sequences(data, B, trainLen);
    // the step's intermediates released when it ends (scope), not left to the garbage collector
    const loss = scope(() => {
      const { logits } = model.forward(new Tensor(x, [B, trainLen]));
      const l = ops.crossEntropy(logits.reshape(B * trainLen, 2), new Tensor(y, [B * trainLen]));
      l.backward();
      return l.item();
    });
    clipGradNorm(opt.params, 1);
    opt.step();
    opt.zeroGrad();
    sch.step();
    lossSum += loss;
    lossN++;
    if (step % 250 === 0 || step === steps) {
      finalLoss = lossSum / lossN;
      console.log(`${m.label.padEnd(10)} step ${String(step).padStart(5)}/${steps}  loss ${finalLoss.toFixed(4)}  ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      lossSum = 0;
      lossN = 0;
    }
  }
  const seconds = (performance.now() - t0) / 1000;

  // evaluation: fresh sequences (the same for every model), in batches of 64
  model.eval();
  const ev = sequences(new Generator(7_777_777 + seed), nEval, testLen);
  const correct = new Float64Array(testLen);
  noGrad(() => {
    for (let b0 = 0; b0 < nEval; b0 += 64) {
      const nb = Math.min(64, nEval - b0);
      const { logits } = model.forward(new Tensor(ev.x.slice(b0 * testLen, (b0 + nb) * testLen), [nb, testLen]));
      const l = logits.f32();
      for (let i = 0; i < nb * testLen; ++i) if ((l[2 * i + 1] > l[2 * i] ? 1 : 0) === ev.y[b0 * testLen + i]) correct[i % testLen]++;
    }
  });
  const accuracy = Array.from(correct, (c) => c / nEval);
  const mean = (a: number, b: number) => accuracy.slice(a - 1, b).reduce((s, v) => s + v, 0) / (b - a + 1);
  return {
    key, label: m.label, parameters, finalLoss, accuracy, seconds,
    ranges: RANGES.map(([from, to]) => ({ from, to, accuracy: mean(from, to) })),
    tokensPerSec: (steps * B * trainLen) / seconds,
  };
}

function main(): void {
  if (threads > 0) native.setNumThreads(threads);
  const t0 = performance.now();
  console.log(`parity: ${steps} steps of ${B} sequences of length ${trainLen} per model (lengths 1..${trainLen} supervised), evaluation on ${nEval} sequences of length ${testLen}, ${threads || "all"} thread(s)`);
  const results = chosen.map(runModel);

  fs.mkdirSync(outDir, { recursive: true });
  // the mixed model dashed, so that the sLSTM-only line shows where both are at 100 %
  const series: ChartSeries[] = results.map((r) => ({ label: r.label, color: MODELS[r.key].color, dashed: r.key === "xlstm", points: r.accuracy.map((a, i) => ({ x: i + 1, y: a })) }));
  const plot = writeChart(path.join(outDir, "accuracy"), series, {
    title: `parity: accuracy by sequence length (trained on lengths 1-${trainLen})`,
    xLabel: "sequence length",
    yLabel: "accuracy",
    yMin: 0.3,
    yMax: 1.02,
    xMin: 1,
    legend: "bottom-left",
    markX: [{ x: trainLen, label: "longest training length" }],
  });
  fs.writeFileSync(path.join(outDir, "results.json"), JSON.stringify({ flags: f, results }, null, 1) + "\n");

  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  console.log("\nresults (accuracy of the parity label; chance 50%)");
  console.log(
    formatTable(
      ["model", "parameters", ...RANGES.map(([a, b]) => `lengths ${a}-${b}`), "final loss", "tokens/s", "seconds"],
      results.map((r) => [r.label, r.parameters.toLocaleString("en-US"), ...r.ranges.map((x) => pct(x.accuracy)), r.finalLoss.toFixed(4), Math.round(r.tokensPerSec).toLocaleString("en-US"), r.seconds.toFixed(1)]),
    ),
  );
  console.log(`plot: ${plot.svg}, ${plot.png}; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`parity: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
