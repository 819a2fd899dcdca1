// Reproduction of "Dive into Deep Learning" §10.1 (LSTM, concise implementation) on the time machine:
// characters of the text lowercased with every run of non-letters replaced by one space (28 tokens with <unk>, in
// d2l's frequency order), the first 10,000 tokens, one-hot input, nn.LSTM(28, 256), a linear head, sequential
// minibatches (batch 32, 35 steps, state carried across the batches of an epoch), SGD lr 1, gradient clipping at 1,
// 500 epochs. The book reports perplexity 1.3 at 17,736 tokens/s on one GPU.
//
//   npx tsx examples/d2l-timemachine.ts [--epochs 500] [--seed 0] [--threads N] [--out DIR]
//
// Prints the perplexity every 10 epochs (and d2l's "time traveller" prediction), then the final perplexity and
// training tokens per second.
import { loadGenerator } from "../lib/generate";
import { train } from "../lib/train";
import { d2lTimeMachine } from "./common";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`d2l-timemachine: --${name} must be a non-negative integer\n`);
    process.exit(2);
  }
  return v;
}

const epochs = flag("epochs", 500), seed = flag("seed", 0), threads = flag("threads", 0);
const outIdx = process.argv.indexOf("--out");
const outDir = outIdx >= 0 ? process.argv[outIdx + 1] : null;

// d2l.read_time_machine + tokenize(lines, 'char') + Vocab (examples/common.ts)
const { text, vocab } = d2lTimeMachine();

async function main(): Promise<void> {
  console.log(`vocabulary ${vocab.length} tokens, corpus ${Math.min(10000, text.length)} tokens; ${epochs} epochs`);
  // d2l's epoch perplexity: exp(mean loss over the epoch's batches), all batches having 32 x 35 tokens
  let epoch = 0, sum = 0, n = 0, epochStart = performance.now();
  let lastPpl = NaN, lastEpochTokensPerSec = NaN;
  const finishEpoch = (now: number) => {
    lastPpl = Math.exp(sum / n);
    lastEpochTokensPerSec = (n * 32 * 35) / ((now - epochStart) / 1000);
    if ((epoch + 1) % 10 === 0 || epoch + 1 === epochs) console.log(`epoch ${epoch + 1}: perplexity ${lastPpl.toFixed(2)}, ${Math.round(lastEpochTokensPerSec).toLocaleString("en-US")} tokens/sec`);
    sum = 0;
    n = 0;
    epochStart = now;
  };
  const result = await train({
    text,
    tokenizer: { type: "char", vocab, unk: "<unk>" },
    maxTokens: 10000,
    modelType: "lstm",
    model: { hidden_size: 256, num_layers: 1 },
    optimizer: "sgd",
    lr: 1,
    schedule: "constant",
    clipGradNorm: 1,
    batchSize: 32,
    seqLen: 35,
    sampling: "sequential",
    carryState: true,
    epochs,
    valFraction: 0,
    evalEvery: 0,
    seed,
    threads,
    outDir,
    checkpointEvery: 0,
    onProgress: (e) => {
      if (e.epoch !== epoch) {
        finishEpoch(performance.now());
        epoch = e.epoch;
      }
      sum += e.loss;
      n += 1;
    },
  });
  finishEpoch(performance.now());
  console.log(
    `perplexity ${lastPpl.toFixed(2)}, ${Math.round(result.tokensPerSec).toLocaleString("en-US")} tokens/sec over the run ` +
      `(${result.step} steps, ${result.elapsedSec.toFixed(1)} s; book: perplexity 1.3, 17,736 tokens/sec on one GPU)`,
  );
  if (outDir) {
    const g = loadGenerator(outDir);
    for (const prefix of ["time traveller", "traveller"]) {
      let s = prefix;
      for await (const t of g.generate(prefix, { maxTokens: 50, temperature: 0 })) s += t.text;
      console.log(s);
    }
  }
}

main().catch((e) => {
  process.stderr.write(`d2l-timemachine: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
