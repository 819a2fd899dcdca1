// Recurrent-state trees (training layer): the states models return (xLSTM: { block_0: { conv_state, slstm_state },
// ... }; LSTM LM: { h, c }) are nested objects of Tensors and nulls. Carrying a state across batches (truncated
// backpropagation through time) needs it detached from the tape, and checkpoints need it as named tensors.
import { Tensor } from "../tensor";

export type StateTree = Tensor | null | { [key: string]: StateTree };

/**
 * The same tree with every tensor detached from the tape (storage shared), and moved to `device` when one is given
 * (a state read from a checkpoint is on the CPU; a CUDA model needs it on the GPU).
 */
export function detachState<T extends StateTree>(s: T, device?: "cpu" | "cuda"): T {
  if (s === null || s === undefined) return s;
  if (s instanceof Tensor) return (device ? s.detach().to(device) : s.detach()) as T;
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, detachState(v as StateTree, device)])) as T;
}

/**
 * Tensors by dotted path (for safetensors) plus the tree's skeleton (JSON: tensors replaced by their path, nulls
 * kept) so unflattenState can rebuild it.
 */
export function flattenState(s: StateTree, prefix = ""): { tensors: Map<string, Tensor>; skeleton: unknown } {
  const tensors = new Map<string, Tensor>();
  const walk = (node: StateTree, path: string): unknown => {
    if (node === null || node === undefined) return null;
    if (node instanceof Tensor) {
      tensors.set(prefix + path, node);
      return { $tensor: prefix + path };
    }
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v, path ? `${path}.${k}` : k)]));
  };
  const skeleton = walk(s, "");
  return { tensors, skeleton };
}

/**
 * Rebuild a tree from flattenState's output.
 * @throws RangeError when a tensor the skeleton names is missing
 */
export function unflattenState(skeleton: unknown, tensors: Map<string, Tensor>): StateTree {
  if (skeleton === null || skeleton === undefined) return null;
  if (typeof skeleton !== "object") throw new TypeError(`unflattenState: unexpected ${typeof skeleton} in the skeleton`);
  const ref = (skeleton as { $tensor?: string }).$tensor;
  if (typeof ref === "string") {
    const t = tensors.get(ref);
    if (!t) throw new RangeError(`unflattenState: tensor ${ref} is missing`);
    return t;
  }
  return Object.fromEntries(Object.entries(skeleton as object).map(([k, v]) => [k, unflattenState(v, tensors)]));
}

/** Device storages of the CUDA tensors in a state tree. */
function storagesOf(s: StateTree, out = new Set<unknown>()): Set<unknown> {
  if (s instanceof Tensor) {
    if (s._device) out.add(s._device);
  } else if (s) for (const v of Object.values(s)) storagesOf(v, out);
  return out;
}

/**
 * Releases the device memory of `old`'s tensors that `next` (the state that replaces it) does not share: a
 * recurrent loop on the GPU (generation) keeps its device memory flat. Nothing happens for CPU tensors.
 */
export function releaseReplacedState(old: StateTree, next: StateTree): void {
  const keep = storagesOf(next);
  const walk = (s: StateTree) => {
    if (s instanceof Tensor) {
      if (s._device && !keep.has(s._device)) s.dispose();
    } else if (s) for (const v of Object.values(s)) walk(v);
  };
  walk(old);
}
