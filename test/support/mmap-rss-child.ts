// Child process of test/51.mmap: loads every tensor of a sharded checkpoint as bfloat16 (mapped or read) and reports
// how the process's memory grew, from /proc/self/status (Linux): RssAnon (anonymous memory: the JS heap and array
// buffers) and RssFile (file pages mapped into the process), before any page is touched and after every page is.
// usage: node --import tsx --expose-gc test/support/mmap-rss-child.ts <checkpoint dir> mmap|read
import * as fs from "fs";
import { openShardedCheckpoint } from "../../lib/io/sharded";

function mem(): { anon: number; file: number } {
  const s = fs.readFileSync("/proc/self/status", "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)![1]) * 1024;
  return { anon: kb("RssAnon"), file: kb("RssFile") };
}

const [dir, mode] = process.argv.slice(2);
const gc = (globalThis as { gc?: () => void }).gc!;
gc();
const m0 = mem();
const ckpt = openShardedCheckpoint(dir, { mmap: mode === "mmap" });
const tensors = ckpt.keys().map((k) => ckpt.get(k, "bfloat16"));
ckpt.close();
gc();
const m1 = mem();
// touch one element per 4 KiB page of every tensor
let sum = 0;
let bytes = 0;
for (const t of tensors) {
  const d = t.data as Uint16Array;
  bytes += d.byteLength;
  for (let i = 0; i < d.length; i += 2048) sum += d[i];
}
const m2 = mem();
const viewsMapping = tensors.every((t) => t.data.buffer.byteLength > t.data.byteLength);
process.stdout.write(JSON.stringify({ bytes, sum, viewsMapping, untouched: { anon: m1.anon - m0.anon, file: m1.file - m0.file }, touched: { anon: m2.anon - m0.anon, file: m2.file - m0.file } }) + "\n");
