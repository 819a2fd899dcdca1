// Child process for test/86.interrupted-writes: trains a tiny model, checkpointing after every step, and prints
// "checkpoint <step>" after each one, until the parent kills it.
import * as fs from "fs";
import * as path from "path";
import { train } from "../../lib/train";

const outDir = process.argv[2];
const text = fs.readFileSync(path.join(__dirname, "..", "..", "data", "timemachine.txt"), "utf8").slice(0, 20000);
train({
  text,
  outDir,
  resume: fs.existsSync(path.join(outDir, "checkpoints", "latest")),
  steps: 100000,
  batchSize: 2,
  seqLen: 16,
  modelType: "lstm",
  model: { hidden_size: 64 },
  optimizer: "adamw",
  evalEvery: 0,
  checkpointEvery: 1,
  keepCheckpoints: 1,
  worker: false,
  onEvent: (e) => {
    if (e.type === "checkpoint") process.stdout.write(`checkpoint ${e.step}\n`);
  },
}).catch((e) => {
  process.stderr.write(String(e && e.message) + "\n");
  process.exitCode = 1;
});
