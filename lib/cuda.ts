// The `cuda` namespace (public API): is a GPU usable, what it is, how its memory is used, and scoped release of
// CUDA tensors. Tensors move with tensor.to("cuda") / .cuda() / .cpu(), modules with module.to("cuda").
import type { CudaDeviceInfo, CudaMemoryStats } from "../binding";
import { withAutocast } from "./device";
import { native } from "./native";
import { runScoped } from "./scope";
import { Tensor } from "./tensor";

/** Whether CUDA tensors can be made here (a CUDA build, a driver and at least one device). */
export function isAvailable(): boolean {
  return native.backends().cuda.available;
}

/** Why CUDA is not available ("" when it is): built without CUDA, no driver, no device, ... */
export function unavailableReason(): string {
  const c = native.backends().cuda;
  return c.available ? "" : c.reason ?? "unknown";
}

/** Number of usable CUDA devices (0 without a GPU or driver). xlstm runs on device 0. */
export function deviceCount(): number {
  return native.backends().cuda.devices.length;
}

/** Name, compute capability, memory and multiprocessors of device `index`. RangeError for a missing device. */
export function deviceProperties(index = 0): CudaDeviceInfo {
  const devices = native.backends().cuda.devices;
  if (!Number.isInteger(index) || index < 0 || index >= devices.length)
    throw new RangeError(`cuda.deviceProperties: no CUDA device ${String(index)} (${devices.length} available${devices.length ? "" : `: ${unavailableReason()}`})`);
  return devices[index];
}

/** The caching allocator's counters (bytes in tensors, reserved, peaks, cache hits, ...) and the device's free/total. */
export function memoryStats(): CudaMemoryStats {
  return native.cudaMemoryStats();
}

/** Returns cached device memory that no tensor uses to the driver (for other processes; xlstm does not need it). */
export function emptyCache(): void {
  native.cudaEmptyCache();
}

export { profileKernels } from "./cuda-profile";
export type { KernelProfileEntry } from "./cuda-profile";

/**
 * Whether the device inference sessions (createInferenceSession / createLargeInferenceSession on a GPU model, and
 * generate() through them) replay their decode steps from CUDA graphs: the first step from each state-buffer parity
 * runs eagerly, the second is captured into a graph and launched, later ones launch the graph (one host call instead
 * of one per kernel). A step whose capture fails runs eagerly (`session.cudaGraphs` says why); the session tries a
 * new capture after 32 more steps that needed one, and after three failed captures none, until a kernel setting
 * changes (graphs captured before keep being launched).
 * Process-wide; off by default until it has been timed on a GPU (`xlstm bench --device cuda --workload G3-W5`).
 * Returns the previous setting.
 */
export function setSessionGraphs(enabled: boolean): boolean {
  return native.cudaSetSessionGraphs(enabled);
}

/** Waits for every queued kernel (timing; reading a value back waits by itself). */
export function synchronize(): void {
  native.cudaSynchronize();
}

let bf16Checked = false;

/**
 * Runs `fn` with bfloat16 autocast: the matrix products of CUDA tensors made inside (matmul, linear, the headwise
 * maps, the products inside the chunkwise mLSTM cell for chunks up to 256, and the sLSTM / LSTM recurrent products
 * h_{t-1}·R where the split-head launch runs them), and their backward, round their inputs to bfloat16 and accumulate
 * in float32 on tensor cores; everything else (elementwise ops, norms, the recurrences' cells and states, the mLSTM
 * gates, stabilisers and states, reductions, the optimizer) stays float32, as do all tensors. Needs a GPU
 * of compute capability 8.0 or newer (Error otherwise). Synchronous only (TypeError when fn returns a Promise).
 * @example const loss = cuda.autocast(() => ops.crossEntropy(model.forward(x).logits.reshape(-1, V), y));
 */
export function autocast<T>(fn: () => T): T {
  if (!bf16Checked) {
    const d = deviceProperties(0);
    const [major] = d.computeCapability.split(".").map(Number);
    if (!(major >= 8)) throw new Error(`cuda.autocast: bfloat16 needs compute capability 8.0 or newer; device 0 (${d.name}) is ${d.computeCapability}`);
    bf16Checked = true;  // the device does not change: checked once, not on every training step
  }
  const r = withAutocast(fn);
  if (r instanceof Promise) throw new TypeError("cuda.autocast: fn returned a Promise; autocast is synchronous");
  return r;
}

/**
 * Runs `fn` and then releases the device memory of every CUDA tensor made during it, except the tensors in what it
 * returns (found through arrays, Maps, Sets and plain objects; they then belong to the enclosing scope, if any).
 * Leaf gradients (.grad, e.g. of parameters) are never released by a scope. Nested scopes are fine; run backward()
 * inside the scope that made the forward pass. Synchronous only: TypeError when fn returns a Promise. CPU memory is
 * left to garbage collection here; xlstm.scope releases both.
 * @example const loss = cuda.scope(() => { const l = ops.mean(model.forward(x)); l.backward(); return l; });
 */
export function scope<T>(fn: () => T): T {
  return runScoped(fn, "cuda.scope", false);
}
