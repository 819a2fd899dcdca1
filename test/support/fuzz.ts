// Test helper for the reliability fuzzers (test/80.fuzz-files, 82.fuzz-api, 84.responsive): a seeded random source
// on lib/rng.ts (so every failure reproduces from its seed and case number), case counts for the default and the
// long mode (XLSTM_FUZZ_LONG=1), hostile values (absurd numbers, wrong kinds, detached / shared / resizable typed
// arrays), an outcome classifier, and a child-process runner so that a native crash (a signal) or a hang fails
// the test with the case that caused it instead of killing mocha.
//
// Child protocol: `node --import tsx test/support/fuzz.ts <module> <export> <json options>` loads <module>, calls
// <export>(options, progress) and prints the JSON it returns. `progress(desc)` writes "C <desc>" to fd 3 before
// each case (unbuffered, so the parent knows the last case even after a SIGSEGV); the result goes to fd 3 as
// "R <json>". Set XLSTM_FUZZ_SEED to change the seed, XLSTM_FUZZ_LONG=1 for many more cases.
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Generator } from "../../lib/rng";

/** Long mode: many more cases (XLSTM_FUZZ_LONG=1). */
export const FUZZ_LONG = process.env.XLSTM_FUZZ_LONG === "1";

/** Base seed of every fuzzer (XLSTM_FUZZ_SEED, default 20240610). */
export const FUZZ_SEED = process.env.XLSTM_FUZZ_SEED !== undefined ? Number(process.env.XLSTM_FUZZ_SEED) : 20240610;

/** `normal` cases in the default run, `long` with XLSTM_FUZZ_LONG=1. */
export function fuzzCases(normal: number, long: number): number {
  return FUZZ_LONG ? long : normal;
}

/** A seeded random source with the helpers fuzzers need (all draws from one xoshiro128** stream). */
export class Rand {
  readonly g: Generator;
  constructor(readonly seed: number) {
    this.g = new Generator(seed);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return this.g.int(n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.g.int(hi - lo + 1);
  }
  bool(p = 0.5): boolean {
    return this.g.uniform() < p;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.g.int(a.length)];
  }
  uniform(): number {
    return this.g.uniform();
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; ++i) b[i] = this.g.nextUint32() & 0xff;
    return b;
  }
  /** Float32Array of n standard normals scaled by `std`. */
  f32(n: number, std = 1): Float32Array {
    return this.g.fillNormal(new Float32Array(n), 0, std);
  }
  /** Random subset order (Fisher-Yates). */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; --i) {
      const j = this.g.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

/** Numbers no size, index or count argument accepts (or only at its limits). */
export const ABSURD_NUMBERS: readonly number[] = [
  NaN,
  Infinity,
  -Infinity,
  -1,
  -0.5,
  0.5,
  1.5,
  -(2 ** 31),
  2 ** 31,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 40,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 63,
  2 ** 64,
  1e300,
  Number.MIN_VALUE,
  -(2 ** 40),
];

/** A typed array whose buffer has been transferred away (detached: length 0, no memory). */
export function detached<T extends Float32Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array>(a: T): T {
  structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  return a;
}

/** A Float32Array of n elements on a SharedArrayBuffer. */
export function sharedF32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * n));
}

/** A length-tracking Float32Array of n elements on a resizable ArrayBuffer (null where unsupported). */
export function resizableF32(n: number): Float32Array | null {
  try {
    const Ctor = ArrayBuffer as unknown as new (len: number, opts: { maxByteLength: number }) => ArrayBuffer;
    const b = new Ctor(4 * n, { maxByteLength: 4 * n + 64 });
    return new Float32Array(b);
  } catch {
    return null;
  }
}

/** Values of every other JS kind, for "wrong kind" mutations. */
export function wrongKinds(r: Rand, n: number): unknown[] {
  const sab = sharedF32(n);
  const out: unknown[] = [
    null,
    undefined,
    true,
    0,
    r.pick(ABSURD_NUMBERS),
    "3",
    "",
    3n,
    {},
    [],
    [1, 2, 3],
    () => 1,
    Symbol("s"),
    new Float64Array(n),
    new Int32Array(n),
    new Uint8Array(4 * n),
    new Uint32Array(n),
    new BigUint64Array(n),
    new Float32Array(0),
    new Float32Array(n + 1),
    new Float32Array(Math.max(0, n - 1)),
    detached(new Float32Array(n)),
    new DataView(new ArrayBuffer(4 * n)),
    new ArrayBuffer(4 * n),
    sab,
    { length: n, buffer: new ArrayBuffer(4 * n), byteOffset: 0 },
    new Proxy(new Float32Array(n), {}),
    Object.create(Float32Array.prototype),
  ];
  const rz = resizableF32(n);
  if (rz) out.push(rz);
  return out;
}

/** What a call did. */
export type Outcome = { kind: "ok"; value: unknown } | { kind: "threw"; error: unknown };

export function callOutcome(fn: () => unknown): Outcome {
  try {
    return { kind: "ok", value: fn() };
  } catch (error) {
    return { kind: "threw", error };
  }
}

export async function asyncOutcome(fn: () => unknown): Promise<Outcome> {
  try {
    return { kind: "ok", value: await fn() };
  } catch (error) {
    return { kind: "threw", error };
  }
}

/** Short description of a value for case logs. */
export function describeArg(v: unknown): string {
  try {
    return describeUnsafe(v);
  } catch {
    return "(unprintable)";
  }
}

function describeUnsafe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 24 ? v.slice(0, 24) + "..." : v);
  if (typeof v === "symbol" || typeof v === "function") return typeof v;
  if (ArrayBuffer.isView(v)) {
    const name = v.constructor?.name ?? "view";
    const len = (v as unknown as { length?: number }).length;
    return `${name}(${len ?? v.byteLength})`;
  }
  if (Array.isArray(v)) return `[${v.slice(0, 6).map(describeArg).join(",")}${v.length > 6 ? ",..." : ""}]`;
  return Object.prototype.toString.call(v);
}

/** Progress callback of a child driver. */
export type Progress = (desc: string) => void;

export interface ChildResult<T> {
  /** exit code (null when killed by a signal) */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** the last case the child announced before it ended */
  lastCase: string | null;
  /** what the driver returned (null when it did not finish) */
  result: T | null;
  stderr: string;
  ms: number;
}

const repoRoot = path.resolve(__dirname, "..", "..");

/**
 * Run `exportName` of `modulePath` (relative to the repository root) in a fresh Node process with `options`,
 * with a wall-clock limit; see the file header for the protocol.
 */
export function runInChild<T>(
  modulePath: string,
  exportName: string,
  options: unknown,
  limits: { timeoutMs: number; env?: NodeJS.ProcessEnv; nodeArgs?: string[] },
): Promise<ChildResult<T>> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...(limits.nodeArgs ?? []), "--import", "tsx", path.join(__dirname, "fuzz.ts"), modulePath, exportName, JSON.stringify(options)],
      { cwd: repoRoot, env: { ...process.env, ...(limits.env ?? {}), XLSTM_FUZZ_CHANNEL: "3" }, stdio: ["ignore", "ignore", "pipe", "pipe"] },
    );
    let stderr = "";
    let channel = "";
    let timedOut = false;
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.length > 1 << 16) stderr = stderr.slice(-(1 << 15));
    });
    const ch = child.stdio[3] as NodeJS.ReadableStream;
    ch.on("data", (d: Buffer) => {
      channel += d.toString();
      // keep the tail only: the last case line and the result line matter
      if (channel.length > 1 << 20) channel = channel.slice(-(1 << 16));
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, limits.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const lines = channel.split("\n");
      let lastCase: string | null = null;
      let result: T | null = null;
      for (const l of lines) {
        if (l.startsWith("C ")) lastCase = l.slice(2);
        else if (l.startsWith("R ")) result = JSON.parse(l.slice(2)) as T;
      }
      resolve({ code, signal, timedOut, lastCase, result, stderr, ms: Date.now() - started });
    });
  });
}

/** A one-line account of a child that did not finish cleanly, for assertion messages. */
export function childFailure(r: ChildResult<unknown>): string | null {
  if (r.code === 0 && r.result !== null) return null;
  const how = r.timedOut ? `hung (killed after ${r.ms} ms)` : r.signal ? `was killed by ${r.signal}` : `exited with code ${r.code}`;
  return `the fuzz child ${how}; last case: ${r.lastCase ?? "(none)"}\n${r.stderr.slice(-4000)}`;
}

async function childMain(): Promise<void> {
  const [modulePath, exportName, json] = process.argv.slice(2);
  // the parent passes the channel's fd; run by hand, the protocol lines go to stdout
  const out = process.env.XLSTM_FUZZ_CHANNEL === "3" ? 3 : 1;
  const progress: Progress = (desc) => {
    fs.writeSync(out, `C ${desc.replace(/\n/g, " ")}\n`);
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.resolve(repoRoot, modulePath)) as Record<string, (o: unknown, p: Progress) => unknown>;
  const fn = mod[exportName];
  if (typeof fn !== "function") throw new Error(`${modulePath} has no export ${exportName}`);
  const result = await fn(JSON.parse(json ?? "{}"), progress);
  fs.writeSync(out, `R ${JSON.stringify(result)}\n`);
}

if (require.main === module) {
  childMain().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}
