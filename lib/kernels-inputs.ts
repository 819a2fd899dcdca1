// Input checks of the kernel-level API's calls (lib/kernels.ts, lib/kernels-mlstm.ts).
// N-API can keep an array object alive while native work runs, but it cannot stop JavaScript from transferring its
// ArrayBuffer (structuredClone / postMessage with transfer: the memory moves to a new owner, which may free it) or
// from resizing a resizable one. So the *Async calls never hand caller-owned memory to the native side: every input
// is copied into a private array when the call is made (synchronously, before the promise is returned), and the
// outputs are allocated by the callers. Whatever the caller does with its arrays while the promise is pending, the work
// reads the values they held at the call and the results are the same as the sync call's.

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
 * The caller's arguments with each input array in `keys` checked (TypeError naming it when its buffer is detached)
 * and, when `copy`, replaced by a private copy. Values that are not typed arrays pass through for the binding's
 * own checks (which name the argument).
 */
export function inputs<A extends object>(fn: string, a: A, keys: readonly string[], copy: boolean): A {
  const out = { ...a } as Record<string, unknown>;
  for (const k of keys) {
    const v = out[k];
    if (!ArrayBuffer.isView(v)) continue;
    if (isDetached(v))
      throw new TypeError(`kernels.${fn}: ${k} is detached (its ArrayBuffer was transferred, e.g. by postMessage or structuredClone) and holds no data`);
    if (copy && v instanceof Float32Array) out[k] = v.slice();
  }
  return out as A;
}
