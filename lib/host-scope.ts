// Host storage scopes (tensor layer): the CPU half of xlstm.scope (lib/scope.ts). While a scope is open, the typed
// arrays that the tensor allocators make (Tensor.zeros, op outputs: uninitF32 and the zeroed storages in tensor.ts)
// are recorded by their ArrayBuffer; when it closes, those that the scope's result does not hold are released at
// once (native.releaseHostBuffers detaches them: malloc gets the memory back) instead of at some later garbage
// collection. Storage that must outlive the scope leaves it explicitly: leaf gradients, optimizer state, parameters
// (releaseHostFromScopes). Arrays a caller made (new Float32Array, Tensor.from on a typed array) are never recorded,
// so a scope cannot release memory it did not allocate.
//
// V8's external-memory count: a recorded buffer cannot be collected while its scope holds it, so its bytes are taken
// off the count when it is recorded (otherwise a step's working set, once 64 MB above the count's low point, forces a
// full mark-compact that frees nothing) and put back when it leaves its scopes alive, or just before it is detached
// (which takes them off again). So every buffer's bytes are counted exactly as long as the collector is the one to
// free it.
import { native } from "./native";

/** The open scopes, innermost last: each maps the ArrayBuffers recorded while it was the innermost to their bytes. */
const scopes: Map<ArrayBuffer, number>[] = [];

/**
 * Buffers below this size are not recorded: V8 keeps typed arrays of up to 64 bytes on its own heap (asking for
 * their .buffer would move them out), and small ones cost the collector little. A training step's activations are
 * KBs to MBs.
 */
const MIN_TRACKED_BYTES = 4096;

/** Records `data`'s buffer in the innermost open scope, if any (nothing to do outside scopes). */
export function trackHostStorage(data: ArrayBufferView): void {
  if (scopes.length === 0 || data.byteLength < MIN_TRACKED_BYTES) return;
  const b = data.buffer as ArrayBuffer, top = scopes[scopes.length - 1];
  if (top.has(b)) return;
  top.set(b, b.byteLength);
  native.reportHostMemory(-b.byteLength);
}

/**
 * Takes `data`'s buffer out of every open scope: it lives until garbage collection frees it. Returns whether a scope
 * held it.
 */
export function releaseHostFromScopes(data: ArrayBufferView): boolean {
  if (scopes.length === 0 || data.byteLength < MIN_TRACKED_BYTES) return false;
  const b = data.buffer as ArrayBuffer;
  let held = false;
  for (const s of scopes) {
    const bytes = s.get(b);
    if (bytes === undefined) continue;
    s.delete(b);
    native.reportHostMemory(bytes);
    held = true;
  }
  return held;
}

/**
 * Leaf gradients that backward made inside a scope (and took out of it): storage the library allocated, which
 * releaseLeafGradients may free once their update is done. A program's own arrays never get here.
 */
const scopeMadeGradients = new WeakSet<ArrayBuffer>();

/** A leaf gradient's storage leaves the scopes (it outlives them, until zeroGrad); remembered as scope-made. */
export function keepLeafGradient(data: ArrayBufferView): void {
  if (releaseHostFromScopes(data)) scopeMadeGradients.add(data.buffer as ArrayBuffer);
}

/**
 * Frees now the scope-made storage of these gradients (train() after each update, before zeroGrad drops them), so
 * that they do not pile up for the collector from step to step. The caller must hold no other use of them. Returns
 * the bytes released.
 */
export function releaseLeafGradients(grads: readonly ArrayBufferView[]): number {
  const buffers = new Set<ArrayBuffer>();
  for (const g of grads) {
    const b = g.buffer as ArrayBuffer;
    if (!scopeMadeGradients.has(b)) continue;
    scopeMadeGradients.delete(b);
    buffers.add(b);
  }
  return buffers.size ? native.releaseHostBuffers([...buffers], [...buffers].map(() => 0)) : 0;
}

/** Whether a host scope is open (the allocators skip recording otherwise). */
export function hostScopeOpen(): boolean {
  return scopes.length > 0;
}

export function openHostScope(): void {
  scopes.push(new Map());
}

/**
 * Closes the innermost scope: its buffers in `keep` move to the enclosing scope (or, past the outermost, back to the
 * collector), the others are released. Returns the bytes released (buffers that pending native work still uses are
 * skipped: the collector frees them).
 */
export function closeHostScope(keep: Set<ArrayBuffer>): number {
  const s = scopes.pop();
  if (!s) return 0;
  const outer = scopes[scopes.length - 1];
  const release: ArrayBuffer[] = [], bytes: number[] = [];
  let leaving = 0;
  for (const [b, n] of s) {
    if (!keep.has(b)) {
      release.push(b);
      bytes.push(n);
    } else if (outer) outer.set(b, n);
    else leaving += n;
  }
  if (leaving) native.reportHostMemory(leaving);
  return release.length ? native.releaseHostBuffers(release, bytes) : 0;
}
