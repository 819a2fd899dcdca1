// Scoped release of tensor memory (public API: xlstm.scope, and cuda.scope for CUDA memory only). JavaScript frees a
// dropped tensor's memory only when the garbage collector gets to it; a training step drops tens of MB of
// intermediates, so on the CPU V8 ran a full mark-compact for about every step (its external-memory limit) and on
// the GPU device memory piled up. A scope releases what was made inside it as soon as it ends.
import { closeScope, DeviceStorage, openScope } from "./device";
import { closeHostScope, openHostScope } from "./host-scope";
import { Tensor } from "./tensor";

/** The storages that `value` holds, through arrays, Maps, Sets and plain objects (and typed arrays: their buffers). */
function collectStorages(value: unknown, device: Set<DeviceStorage>, host: Set<ArrayBuffer>, seen: Set<unknown>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Tensor) {
    for (const t of value.grad ? [value, value.grad] : [value]) {
      if (t._device) device.add(t._device);
      else if (!t.isDisposed) host.add(t.data.buffer as ArrayBuffer);
    }
    return;
  }
  if (ArrayBuffer.isView(value)) {
    host.add(value.buffer as ArrayBuffer);
    return;
  }
  if (value instanceof ArrayBuffer) {
    host.add(value);
    return;
  }
  const items = value instanceof Map ? [...value.values()] : value instanceof Set ? [...value] : Array.isArray(value) ? value : Object.values(value);
  for (const v of items) collectStorages(v, device, host, seen);
}

/** @internal Runs fn in a scope: CUDA storages made meanwhile are released at its end, and host ones when `host`. */
export function runScoped<T>(fn: () => T, what: string, host: boolean): T {
  openScope();
  if (host) openHostScope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    if (host) closeHostScope(new Set());
    closeScope(new Set());
    throw e;
  }
  const device = new Set<DeviceStorage>(), hostKeep = new Set<ArrayBuffer>();
  if (result instanceof Promise) {
    if (host) closeHostScope(hostKeep);
    closeScope(device);
    throw new TypeError(`${what}: fn returned a Promise; scopes are synchronous (other work would run inside them while it waits): dispose the tensors of async work with tensor.dispose()`);
  }
  collectStorages(result, device, hostKeep, new Set());
  if (host) closeHostScope(hostKeep);
  closeScope(device);
  return result;
}

/**
 * Runs `fn` and then releases the memory of every tensor made during it, on the CPU and on the GPU, except the
 * tensors (and typed arrays) in what it returns, found through arrays, Maps, Sets and plain objects; those then
 * belong to the enclosing scope, if any. Released now, not at some later garbage collection: a training step of the
 * default `xlstm train` model drops ~80 MB of intermediates, for which V8 otherwise ran a full mark-compact per step.
 *
 * What stays: leaf gradients (.grad of parameters), optimizer state, parameters (a module's registered tensors),
 * memory that pending Promise calls use, and arrays you made yourself (new Float32Array, Tensor.from on a typed
 * array). Anything else made inside and kept by other means (stored in an outer variable) is released: reading it
 * afterwards throws ("this tensor's memory was released: the xlstm.scope that made it ended"). Run backward() inside the
 * scope of its forward pass. Nested scopes are fine; synchronous only (TypeError when fn returns a Promise).
 * @example const loss = xlstm.scope(() => { const l = ops.mean(model.forward(x)); l.backward(); return l.item(); });
 */
export function scope<T>(fn: () => T): T {
  return runScoped(fn, "scope", true);
}
