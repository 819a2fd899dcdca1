// W4 `mlstm-cell-S{256,1024,4096,16384}` (../shared/bench/WORKLOADS.md): forward + backward of the mLSTM cell alone
// (ops.mlstm, form "auto"), loss mean(h^2); q, k, v [1, 4, S, 64], i, f [1, 4, S] with f = 3 + N(0, 1).
// Metric: seconds per forward+backward, plus `peak_rss_mb`: each size runs in its own child process (this file run
// as a script, under the same node flags, e.g. tsx's loader), which reports process.resourceUsage().maxRSS, so the
// peak belongs to that size alone.
import { execFile } from "child_process";
import { Generator } from "../rng";
import { Device, Tensor } from "../tensor";
import * as ops from "../ops";
import { BenchRow, getNumThreadsForBench, registerWorkload, scopedStep, timeIt } from "./index";
import { GC_FLAG, gcLabel } from "../cli/relaunch";

const SIZES = [256, 1024, 4096, 16384];
const B = 1, NH = 4, DH = 64;

export const MLSTM_CELL_SIZES = SIZES;

/**
 * W4's inputs at sequence length S on `device`: `step` runs the cell forward + backward, `zeroGrad` drops the grads,
 * `dispose` releases the inputs' device memory (a no-op on the CPU).
 */
export function mlstmCellWorkload(S: number, device: Device): { step: () => void; zeroGrad: () => void; dispose: () => void } {
  const gen = new Generator(S);
  const q = Tensor.randn([B, NH, S, DH], { generator: gen, requiresGrad: true, device });
  const k = Tensor.randn([B, NH, S, DH], { generator: gen, requiresGrad: true, device });
  const v = Tensor.randn([B, NH, S, DH], { generator: gen, requiresGrad: true, device });
  const i = Tensor.randn([B, NH, S], { generator: gen, requiresGrad: true, device });
  const f = Tensor.randn([B, NH, S], { generator: gen, mean: 3, requiresGrad: true, device });
  const leaves = [q, k, v, i, f];
  const step = scopedStep(() => {
    const { h } = ops.mlstm(q, k, v, i, f);
    ops.mean(ops.mul(h, h)).backward();
  });
  const zeroGrad = () => {
    for (const t of leaves) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  const dispose = () => {
    zeroGrad();
    for (const t of leaves) t.dispose();
  };
  return { step, zeroGrad, dispose };
}

/** Time `reps` forward+backward passes of the cell at sequence length S in this process. */
export async function measureMlstmCell(S: number, reps: number): Promise<{ median: number; min: number; max: number }> {
  const w = mlstmCellWorkload(S, "cpu");
  return timeIt(() => {
    w.zeroGrad();
    w.step();
  }, reps);
}

/** This process's node flags (e.g. tsx's loader) without the ones that would run other code than a script (or change its GC). */
function childNodeFlags(): string[] {
  const out: string[] = [];
  const argv = process.execArgv;
  for (let j = 0; j < argv.length; ++j) {
    const a = argv[j];
    if (a === "-e" || a === "--eval" || a === "-p" || a === "--print") ++j;
    // the CLI's relaunch under --single-threaded-gc (lib/cli/relaunch.ts) defers freeing dropped tensors' memory:
    // W4 reports the peak resident memory of the cell, so its children run with V8's concurrent GC (S 16384: 331 MB
    // instead of 1.2 GB); they keep --no-incremental-marking (S 256 / 1024 medians 3.2–3.5 / 3.4–4.0 → 0.6–0.8 /
    // 2.6–2.7 ms on 2 cores, peak memory the same)
    else if (a === GC_FLAG) continue;
    else if (!/^--(eval|print|input-type)=/.test(a) && a !== "-i" && a !== "--interactive") out.push(a);
  }
  return out;
}

function runChild(S: number, reps: number): Promise<BenchRow> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...childNodeFlags(), __filename, String(S), String(reps)], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`W4 child for S=${S} failed: ${err.message}\n${stderr}`));
      const line = stdout.trim().split("\n").pop() ?? "";
      try {
        resolve(JSON.parse(line) as BenchRow);
      } catch {
        reject(new Error(`W4 child for S=${S} printed no result: ${stdout}\n${stderr}`));
      }
    });
  });
}

registerWorkload({
  id: "W4",
  description: "mlstm-cell-S{256,1024,4096,16384}: mLSTM cell forward+backward (auto form), B 1, NH 4, DH 64; peak RSS per size",
  device: "cpu",
  async *run({ reps }) {
    for (const S of SIZES) yield await runChild(S, reps);
  },
});

/**
 * This process's peak resident memory in MiB. On Linux, VmHWM of /proc/self/status: getrusage's maxRSS also
 * counts the parent's resident set copied at fork, so a child spawned by a big parent would report the parent's.
 */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(require("fs").readFileSync("/proc/self/status", "utf8"));
    if (m) return Math.round((Number(m[1]) / 1024) * 10) / 10;
  } catch {
    /* not Linux: fall back to getrusage */
  }
  return Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10;
}

// Child mode: `node [flags] mlstm-cell.(js|ts) <S> <reps>` prints one W4 row.
if (require.main === module) {
  const S = Number(process.argv[2]), reps = Number(process.argv[3] ?? 5);
  measureMlstmCell(S, reps).then((t) => {
    const row: BenchRow = {
      workload: "W4",
      name: `mlstm-cell-S${S}`,
      metric: "seconds",
      value: t.median,
      device: "cpu",
      peak_rss_mb: peakRssMb(),
      min: t.min,
      max: t.max,
      threads: getNumThreadsForBench(),
      reps,
      form: "auto",
      chunkSize: 64,
      v8_gc: gcLabel(process.execArgv),
    };
    process.stdout.write(JSON.stringify(row) + "\n");
  });
}
