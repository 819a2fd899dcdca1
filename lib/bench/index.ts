// Benchmark workloads (products layer): each yields result rows printed as JSON lines, in the format of
// ../shared/bench/WORKLOADS.md. Timing helpers live here so every workload reports the same statistics.

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

/** Median, min and max of `reps` timed runs of `fn` after one warm-up, in seconds. */
export async function timeIt(fn: () => void | Promise<void>, reps: number): Promise<{ median: number; min: number; max: number }> {
  await fn();
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
