// Input checks of the kernel-level API's calls (lib/kernels.ts, lib/kernels-mlstm.ts).
// N-API can keep an array object alive while native work runs, but it cannot stop JavaScript from transferring its
// ArrayBuffer (structuredClone / postMessage with transfer: the memory moves to a new owner, which may free it) or
// from resizing a resizable one. So the *Async calls never hand caller-owned memory to the native side: every input
// is copied into a private array when the call is made (synchronously, before the promise is returned), and the
// outputs are allocated by the callers. Whatever the caller does with its arrays while the promise is pending, the work
// reads the values they held at the call and the results are the same as the sync call's.
//
// The private copies come from a small pool and go back to it when the call settles: a fresh array per input cost the
// main thread its allocation, zero-filling and first-touch page faults (most of the main thread's time with a few
// concurrent calls of a few MB each), and the garbage it left made V8 run a full collection for external-memory
// pressure every round or two. A pooled array is only handed out again after the call that used it has settled, so
// no two pending calls share one. The pool keeps at most POOL_MAX_BYTES and empties itself after POOL_IDLE_MS unused.

/** Whether the view's buffer was detached (transferred away). */
export function isDetached(a: ArrayBufferView): boolean {
  const b = a.buffer as ArrayBufferLike & { detached?: boolean };
  if (typeof b.detached === "boolean") return b.detached;
  if (b.byteLength !== 0 || (typeof SharedArrayBuffer !== "undefined" && b instanceof SharedArrayBuffer)) return false;
  try {
    new Uint8Array(b);
    return false;
  } catch {
    return true; // only a detached ArrayBuffer refuses a new view
  }
}

/**
 * The caller's arguments with each input array in `keys` checked (TypeError naming it when its buffer is detached).
 * Values that are not typed arrays pass through for the binding's own checks (which name the argument).
 */
export function inputs<A extends object>(fn: string, a: A, keys: readonly string[]): A {
  return checked(fn, a, keys, null);
}

/**
 * The Promise variants' inputs: `inputs(fn, a, keys)` with each float32 input replaced by a private copy drawn from
 * the pool. `release` gives the copies back; call it once the native work has settled (never before: the work reads
 * them until then).
 */
export function pooledInputs<A extends object>(fn: string, a: A, keys: readonly string[]): { args: A; release(): void } {
  const taken: Float32Array[] = [];
  let args: A;
  try {
    args = checked(fn, a, keys, taken);
  } catch (e) {
    for (const t of taken) giveBack(t);
    throw e;
  }
  let released = false;
  return {
    args,
    release() {
      if (released) return;
      released = true;
      for (const t of taken) giveBack(t);
    },
  };
}

/** Runs `work` on pooled copies of `a`'s inputs and returns them to the pool when its promise settles. */
export async function withPooledInputs<A extends object, R>(fn: string, a: A, keys: readonly string[], work: (a: A) => Promise<R>): Promise<R> {
  const c = pooledInputs(fn, a, keys);
  try {
    return await work(c.args);
  } finally {
    c.release();
  }
}

function checked<A extends object>(fn: string, a: A, keys: readonly string[], copies: Float32Array[] | null): A {
  const out = { ...a } as Record<string, unknown>;
  for (const k of keys) {
    const v = out[k];
    if (!ArrayBuffer.isView(v)) continue;
    if (isDetached(v))
      throw new TypeError(`kernels.${fn}: ${k} is detached (its ArrayBuffer was transferred, e.g. by postMessage or structuredClone) and holds no data`);
    if (copies && v instanceof Float32Array) {
      const c = take(v.length);
      c.set(v);
      copies.push(c);
      out[k] = c;
    }
  }
  return out as A;
}

// ---- the pool of private copies ----------------------------------------------------------------------------------

/** Bytes the pool may keep between calls (a few concurrent calls' inputs at the sizes the Promise API is for). */
export const POOL_MAX_BYTES = 64 << 20;
/** The pool empties itself after this long without a call giving arrays back. */
export const POOL_IDLE_MS = 2000;
let maxBytes = POOL_MAX_BYTES;
let idleMs = POOL_IDLE_MS;

const free = new Map<number, Float32Array[]>(); // by length
let pooledBytes = 0;
let lastGiveBack = 0;
let trimTimer: ReturnType<typeof setTimeout> | null = null;

function take(length: number): Float32Array {
  const list = free.get(length);
  const a = list?.pop();
  if (!a) return new Float32Array(length);
  pooledBytes -= a.byteLength;
  if (list!.length === 0) free.delete(length);
  return a;
}

function giveBack(a: Float32Array): void {
  lastGiveBack = Date.now();
  if (a.length === 0 || pooledBytes + a.byteLength > maxBytes) return; // dropped: the GC frees it
  let list = free.get(a.length);
  if (!list) free.set(a.length, (list = []));
  list.push(a);
  pooledBytes += a.byteLength;
  if (!trimTimer) armTrim(idleMs);
}

function armTrim(ms: number): void {
  trimTimer = setTimeout(() => {
    trimTimer = null;
    const idle = Date.now() - lastGiveBack;
    if (idle < idleMs) armTrim(idleMs - idle);
    else emptyInputPool();
  }, ms);
  trimTimer.unref?.(); // never keeps the process alive
}

/** Drops every pooled array (tests; the idle timer does this on its own). */
export function emptyInputPool(): void {
  free.clear();
  pooledBytes = 0;
}

/** Tests: other limits (both default to POOL_MAX_BYTES / POOL_IDLE_MS when omitted); empties the pool. */
export function setInputPoolLimits(limits: { maxBytes?: number; idleMs?: number } = {}): void {
  maxBytes = limits.maxBytes ?? POOL_MAX_BYTES;
  idleMs = limits.idleMs ?? POOL_IDLE_MS;
  if (trimTimer) clearTimeout(trimTimer);
  trimTimer = null;
  emptyInputPool();
}

/** What the pool holds now (tests). */
export function inputPoolStats(): { arrays: number; bytes: number } {
  let arrays = 0;
  for (const l of free.values()) arrays += l.length;
  return { arrays, bytes: pooledBytes };
}
