// The `xlstm train` / `xlstm bench` process on small machines (CLI layer). V8 marks the heap on helper threads while
// JavaScript runs (concurrent marking), and a training step allocates a few hundred megabytes of tensors, so full
// collections start several times a step; on a machine with few cores those helper threads take cores from the
// addon's compute threads, and every parallel kernel then waits for its slowest thread. Measured on 2 cores: W2
// 8.7–9.9k tokens/s with the default GC, 10.2–11.3k with --single-threaded-gc (the marking done in the pauses).
// The child also runs with --no-incremental-marking: under the single-threaded GC, incremental marking advances only
// as JavaScript allocates on V8's heap, which a step of native kernels barely does, so a full collection that the
// tensors' external memory started could take several steps to finish while dropped tensors piled up (the C heap then
// grew in phases, every new page faulted in). Marking in one pause instead, measured on 2 cores (2026-11-27,
// alternating runs): `xlstm train` (default xLSTM) 27,600–27,800 → 28,900–29,400 tokens/s, `--model lstm` 72,600–73,400
// → 79,600–82,300; W3 alone: slowest step 0.30 → 0.10 s, page faults 192,000 → 71,000–75,000; W2's median the same,
// its slowest step 30–50 % faster; W1's median 3–6 % lower.
// V8 takes these flags only at start-up (setting them later aborts), so the command runs itself again in a child node
// with them: same arguments, same stdio, exit code and signals passed through. XLSTM_RELAUNCH=0 turns this off.
import { spawn } from "child_process";
import * as os from "os";

export const GC_FLAG = "--single-threaded-gc";
/** The node flags of the relaunched child (see the file header). */
export const GC_FLAGS: readonly string[] = [GC_FLAG, "--no-incremental-marking"];

/** Which V8 garbage collector a process with these node flags runs, as bench rows report it (`v8_gc`). */
export function gcLabel(execArgv: readonly string[]): string {
  const base = execArgv.includes(GC_FLAG) ? "single-threaded" : "concurrent";
  return execArgv.includes("--no-incremental-marking") ? `${base}, non-incremental` : base;
}
/** Commands that run long enough for the GC threads to matter. */
const HEAVY = new Set(["train", "bench"]);

/** Whether `xlstm <args>` should run in a child node with GC_FLAG (see the file header). */
export function wantsRelaunch(args: readonly string[], env: NodeJS.ProcessEnv, execArgv: readonly string[], cores: number, platform: NodeJS.Platform = process.platform): boolean {
  // POSIX only: on Windows a signal passed to the child would end it at once instead of stopping training cleanly
  if (platform === "win32") return false;
  if (!HEAVY.has(args[0] ?? "") || args.includes("--help") || args.includes("-h")) return false;
  if (env.XLSTM_RELAUNCH === "0" || env.XLSTM_RELAUNCHED === "1") return false;
  if (execArgv.some((a) => a === GC_FLAG || a === "--single-threaded" || a === "--no-concurrent-marking")) return false;
  return cores <= 4;
}

/** The number of cores Node may use. */
export function coreCount(): number {
  return typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
}

/**
 * Runs `script args` in a child node with GC_FLAGS (and this process's own node flags), stdio inherited, and resolves
 * with the exit code to end with. SIGINT, SIGTERM and SIGHUP reaching this process are passed to the child (a
 * terminal's Ctrl-C reaches both: the child's CLI treats two SIGINTs within 300 ms as one); the child ends itself
 * if this process goes away (its IPC channel closes). A child killed by a signal ends this process with 128 + signo.
 */
export function relaunch(script: string, args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...GC_FLAGS, ...process.execArgv, script, ...args], {
      stdio: ["inherit", "inherit", "inherit", "ipc"],
      env: { ...process.env, XLSTM_RELAUNCHED: "1" },
    });
    const signals = ["SIGINT", "SIGTERM", "SIGHUP"] as const;
    const forward = (s: NodeJS.Signals) => () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(s);
    };
    const handlers = signals.map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    child.on("error", (e) => {
      for (const [s, h] of handlers) process.off(s, h);
      reject(e);
    });
    child.on("exit", (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}

/** In the child: end if the parent goes away (its IPC channel closes); the channel does not keep the child alive. */
export function watchParent(): void {
  if (process.env.XLSTM_RELAUNCHED !== "1" || !process.send) return;
  process.on("disconnect", () => process.exit(129));
  (process as unknown as { channel?: { unref(): void } }).channel?.unref();
}
