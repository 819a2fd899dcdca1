// Per-entry GPU time of a piece of work (cuda.profileKernels): which device entries a training step or a decode
// step spends its time in. Every device entry of the binding (the native functions named cuda*Dev, and the device
// copies, fills and host transfers) is wrapped for the duration of the call: each call is followed by
// cudaSynchronize, so its wall time covers its launch and its kernels, and the entries' times add up to about the
// work's time with nothing overlapped. For finding where the time goes, not for timing the work itself.
import { native } from "./native";

/** One device entry's calls and time within the profiled work. */
export interface KernelProfileEntry {
  /** the binding's export, e.g. "cudaGemmDev" */
  name: string;
  calls: number;
  /** wall time of the calls, each synchronised, in milliseconds */
  ms: number;
}

/** The exports that enqueue device work (or copy between host and device). */
function isDeviceEntry(name: string): boolean {
  return /^cuda\w+Dev$/.test(name) || ["cudaCopy2D", "cudaCopyBuffer", "cudaZero", "cudaUpload", "cudaDownload"].includes(name);
}

let active = false;

/**
 * Runs `fn` with every device entry timed (each call synchronised) and returns its result and the entries it called,
 * most time first. Synchronous only; not nestable.
 * @throws TypeError when fn returns a Promise, Error when called inside another profileKernels
 */
export function profileKernels<T>(fn: () => T): { result: T; kernels: KernelProfileEntry[]; totalMs: number } {
  if (typeof fn !== "function") throw new TypeError(`cuda.profileKernels: fn must be a function, got ${fn === null ? "null" : typeof fn}`);
  if (active) throw new Error("cuda.profileKernels: already profiling (calls do not nest)");
  const table = native as unknown as Record<string, unknown>;
  const stats = new Map<string, { calls: number; ns: bigint }>();
  const originals = new Map<string, (...a: unknown[]) => unknown>();
  for (const name of Object.keys(table)) {
    const f = table[name];
    if (typeof f !== "function" || !isDeviceEntry(name)) continue;
    const orig = f as (...a: unknown[]) => unknown;
    originals.set(name, orig);
    table[name] = (...args: unknown[]) => {
      const t0 = process.hrtime.bigint();
      try {
        return orig(...args);
      } finally {
        native.cudaSynchronize();
        const s = stats.get(name) ?? { calls: 0, ns: 0n };
        s.calls += 1;
        s.ns += process.hrtime.bigint() - t0;
        stats.set(name, s);
      }
    };
  }
  active = true;
  let result: T;
  const start = process.hrtime.bigint();
  try {
    native.cudaSynchronize();
    result = fn();
    if (result instanceof Promise) throw new TypeError("cuda.profileKernels: fn returned a Promise; profiling is synchronous");
    native.cudaSynchronize();
  } finally {
    for (const [name, orig] of originals) table[name] = orig;
    active = false;
  }
  const totalMs = Number(process.hrtime.bigint() - start) / 1e6;
  const kernels = [...stats].map(([name, s]) => ({ name, calls: s.calls, ms: Number(s.ns) / 1e6 })).sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));
  return { result, kernels, totalMs };
}
