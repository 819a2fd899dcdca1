// Benchmark workloads (products layer): each yields result rows printed as JSON lines, in the format of
// ../shared/bench/WORKLOADS.md. Timing helpers live here so every workload reports the same statistics.
import { scope } from "../scope";

export interface BenchRow {
  workload: string;
  name: string;
  metric: string;
  value: number;
  device: "cpu" | "cuda";
  [extra: string]: unknown;
}

export interface Workload {
  /** Id used by `--workload`, e.g. "gemm" or "W1". */
  id: string;
  description: string;
  device: "cpu" | "cuda";
  /** Runs only when named with `--workload` (comparisons that take long, e.g. G1 under the slow launch). */
  onRequest?: boolean;
  run(options: { reps: number }): AsyncIterable<BenchRow>;
}

/**
 * Untimed warm-up before the timed runs: at least one run, then more until WARMUP_S seconds have passed (at most
 * WARMUP_MAX_RUNS). One run is not enough for sub-millisecond workloads: V8 optimises the ops and autograd code over
 * the first hundreds of calls, and the thread pool and allocator settle (W4 S 256: median 1.16 ms after one warm-up
 * run, 0.45 ms after 0.5 s of them). bench/reference_workloads.py warms the PyTorch reference up the same way.
 */
export const WARMUP_S = 0.5;

/**
 * XLSTM_BENCH_SHAPES=tiny: the GPU workloads run at tiny shapes with one warm-up run: a check of their wiring (every
 * row, opt-in and setting they touch, on the host-emulated device in test/70) before a GPU's minutes are spent on
 * them; the figures mean nothing.
 */
export function tinyShapes(): boolean {
  return process.env.XLSTM_BENCH_SHAPES === "tiny";
}
export const WARMUP_MAX_RUNS = 1000;

/**
 * `step` run inside an xlstm.scope, as train() runs its steps: the step's intermediates are released when it ends
 * instead of at the garbage collector's next full collection. (XLSTM_BENCH_NO_SCOPE=1: without, for A/B runs.)
 */
export function scopedStep(step: () => void): () => void {
  if (process.env.XLSTM_BENCH_NO_SCOPE === "1") return step;
  return () => scope(step);
}

/** Median, min and max of `reps` timed runs of `fn` after the warm-up (WARMUP_S), in seconds. */
export async function timeIt(fn: () => void | Promise<void>, reps: number): Promise<{ median: number; min: number; max: number }> {
  const start = process.hrtime.bigint();
  for (let runs = 0; runs < WARMUP_MAX_RUNS; ) {
    await fn();
    ++runs;
    if (tinyShapes() || Number(process.hrtime.bigint() - start) / 1e9 >= WARMUP_S) break;
  }
  const times: number[] = [];
  for (let i = 0; i < reps; ++i) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], min: times[0], max: times[times.length - 1] };
}

/** The CPU thread count, recorded with every row. */
export function getNumThreadsForBench(): number {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("../native") as typeof import("../native")).native.getNumThreads();
}

const registry: Workload[] = [];

export function registerWorkload(w: Workload): void {
  registry.push(w);
}

export function workloads(): readonly Workload[] {
  return registry;
}
