// Child process of test/59: builds xLSTMLargeDecoder.fromCheckpoint(dir) in bfloat16 from memory-mapped shards and
// reports how anonymous memory (RssAnon: JS heap and array buffers) and file pages (RssFile) grew, from
// /proc/self/status (Linux), after one forward pass touched every weight.
// usage: node --import tsx --expose-gc test/support/large-rss-child.ts <checkpoint dir>
import * as fs from "fs";
import { Tensor } from "../../lib/tensor";
import { xLSTMLargeDecoder } from "../../lib/nn/large";

function mem(): { anon: number; file: number } {
  const s = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)![1]) * 1024;
  return { anon: kb("RssAnon"), file: kb("RssFile") };
}

const gc = (globalThis as { gc?: () => void }).gc!;
gc();
const m0 = mem();
const dec = xLSTMLargeDecoder.fromCheckpoint(process.argv[2], { dtype: "bfloat16" });
const logits = dec.forward(new Tensor(Int32Array.of(1, 2, 3), [1, 3])).logits.f32();
gc();
const m1 = mem();
process.stdout.write(JSON.stringify({ finite: logits.every(Number.isFinite), weightBytes: dec.weightBytesPerToken(), anon: m1.anon - m0.anon, file: m1.file - m0.file }) + "\n");
