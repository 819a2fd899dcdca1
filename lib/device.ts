// Device storage (tensor layer): the memory behind a CUDA tensor. A DeviceStorage owns one device buffer from the
// native caching allocator (csrc/binding/cuda_memory.cc); dispose() gives it back at once, cuda.scope() disposes
// every storage made inside it that the scope's result does not hold, and garbage collection frees what a program
// dropped without disposing (the buffer's bytes are reported to V8, so unreachable device memory makes it collect).
import type { DeviceBuffer } from "../binding";
import { native } from "./native";

/** Bytes per element of each dtype (bfloat16: 2). */
export const ELEMENT_BYTES = { float32: 4, int32: 4, int64: 8, bfloat16: 2 } as const;

/** The scopes open now (cuda.scope), innermost last; each collects the storages made while it is open. */
const scopes: Set<DeviceStorage>[] = [];

export class DeviceStorage {
  private buffer: DeviceBuffer | null;
  readonly bytes: number;
  /**
   * The smallest and largest value of integer contents uploaded from the host (known without reading the GPU back);
   * null when unknown (contents written on the device). The id checks of embedding, cross-entropy and the models'
   * token arguments use it instead of a device-to-host copy, which would stall the GPU's queue.
   */
  intRange: { min: number; max: number } | null = null;

  /**
   * `bytes` of device memory (contents undefined unless `zero`). Error when CUDA is not available or full. Inside a
   * cuda.scope its bytes are not reported to the garbage collector (the scope frees it); `leaveScopes` reports them
   * when it outlives its scopes.
   */
  constructor(bytes: number, zero = false) {
    const scope = scopes[scopes.length - 1];
    this.buffer = native.cudaMalloc(bytes, scope === undefined);
    this.bytes = bytes;
    if (zero) native.cudaZero(this.buffer);
    scope?.add(this);
  }

  /** Takes the storage out of every open scope: it now lives until disposed or collected (reported to the GC). */
  leaveScopes(): void {
    for (const s of scopes) s.delete(this);
    if (this.buffer) native.cudaTrackGc(this.buffer);
  }

  get disposed(): boolean {
    return this.buffer === null;
  }

  /** The native buffer; Error naming `what` once disposed. */
  handle(what: string): DeviceBuffer {
    if (!this.buffer) throw new Error(`${what}: the tensor's CUDA memory was already released (dispose() or a cuda.scope that ended)`);
    return this.buffer;
  }

  /** Gives the memory back to the allocator now; later use of the tensor is an Error. Idempotent. */
  dispose(): void {
    if (!this.buffer) return;
    native.cudaFree(this.buffer);
    this.buffer = null;
    for (const s of scopes) s.delete(this);
  }
}

/** Takes a storage out of every open scope (leaf gradients: they outlive the scope of the backward that made them). */
export function releaseFromScopes(d: DeviceStorage): void {
  d.leaveScopes();
}

let autocastDepth = 0;

/** Whether a cuda.autocast is running: CUDA matrix products then take bfloat16 inputs (float32 accumulation). */
export function autocastActive(): boolean {
  return autocastDepth > 0;
}

/** Runs fn with the bf16 autocast on (nesting allowed). */
export function withAutocast<T>(fn: () => T): T {
  ++autocastDepth;
  try {
    return fn();
  } finally {
    --autocastDepth;
  }
}

/** Opens a scope: storages made until closeScope are collected. */
export function openScope(): void {
  scopes.push(new Set());
}

/** Takes `d` out of every open scope: it lives until disposed (process-wide caches). */
export function unscoped(d: DeviceStorage): DeviceStorage {
  d.leaveScopes();
  return d;
}

/** Closes the innermost scope, disposing its storages except `keep` (which move to the enclosing scope, if any). */
export function closeScope(keep: Set<DeviceStorage>): void {
  const s = scopes.pop();
  if (!s) return;
  const outer = scopes[scopes.length - 1];
  for (const d of s) {
    if (!keep.has(d)) d.dispose();
    else if (outer) outer.add(d);
    else d.leaveScopes();  // kept past the outermost scope: garbage collection's to weigh from now on
  }
}
