// The tape (tensor + autograd layer): ops record a GradNode linking inputs to outputs; backward() walks the
// nodes in reverse topological order, sums gradients per tensor, reduces broadcast gradients back to their
// input's shape (the one place this happens) and accumulates into the leaves' `.grad`.
import { releaseFromScopes } from "./device";
import { keepLeafGradient } from "./host-scope";
import type { Tensor } from "./tensor";
import { formatShape, sameShape, Shape } from "./shape";
import { native } from "./native";

/** Called with a tensor's gradient; may return a replacement. */
export type TensorHook = (grad: Tensor) => Tensor | void;

/**
 * One recorded op. `backward` receives one gradient per output (null where an output got none) and returns one
 * gradient per input (null where there is none). A returned gradient may have a broadcast shape: the tape sums
 * it down to the input's shape.
 */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  backward: ((gradOutputs: (Tensor | null)[]) => (Tensor | null)[]) | null;
  /** Frees what the backward holds (e.g. native saved activations) once the graph through this node is freed. */
  release?: () => void;
}

let noGradDepth = 0;

/** Whether ops record on the tape right now. */
export function isGradEnabled(): boolean {
  return noGradDepth === 0;
}

/** Run `fn` without recording (inference, optimizer updates). Works for sync and async functions. */
export function noGrad<T>(fn: () => T): T {
  noGradDepth++;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    noGradDepth--;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => {
      noGradDepth--;
    }) as T;
  }
  noGradDepth--;
  return result;
}

/** True when recording `inputs` would matter: grad mode is on and some input requires grad. */
export function needsGrad(inputs: readonly (Tensor | null | undefined)[]): boolean {
  return noGradDepth === 0 && inputs.some((t) => t != null && t.requiresGrad);
}

/**
 * Record an op on the tape (the hook every op, fused or not, uses: one forward, one backward).
 * Does nothing when no input requires grad or grad mode is off. Returns the outputs for chaining. `release`
 * runs once the graph through this node is freed (after its backward without retainGraph).
 */
export function record<T extends Tensor | Tensor[]>(
  name: string,
  inputs: readonly (Tensor | null | undefined)[],
  outputs: T,
  backward: (gradOutputs: (Tensor | null)[]) => (Tensor | null)[],
  options: { release?: () => void } = {},
): T {
  if (!needsGrad(inputs)) return outputs;
  const outs: Tensor[] = Array.isArray(outputs) ? (outputs as Tensor[]) : [outputs as Tensor];
  const node: GradNode = { name, inputs: inputs.map((t) => t ?? null), outputs: outs, backward, release: options.release };
  outs.forEach((o, i) => {
    if (o.dtype !== "float32") return; // integer outputs (indices) carry no gradient
    o.requiresGrad = true;
    o._node = node;
    o._outputIndex = i;
  });
  return outputs;
}

/** Convenience for single-output ops whose backward takes one gradient. */
export function record1(
  name: string,
  inputs: readonly (Tensor | null | undefined)[],
  output: Tensor,
  backward: (gradOutput: Tensor) => (Tensor | null)[],
): Tensor {
  return record(name, inputs, output, (g) => (g[0] ? backward(g[0]) : inputs.map(() => null)));
}

// Tensor is imported lazily: tensor.ts imports this module.
function TensorClass(): typeof Tensor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("./tensor") as typeof import("./tensor")).Tensor;
}

/** Sum `grad` over broadcast dimensions so that it has `shape` (NumPy broadcasting in reverse). */
export function reduceToShape(grad: Tensor, shape: Shape, what = "gradient"): Tensor {
  if (sameShape(grad.shape, shape)) return grad;
  if (grad.device === "cuda") return cudaOps().reduceToShapeCuda(grad, shape);
  const gs = grad.shape;
  const lead = gs.length - shape.length;
  if (lead < 0) throw new RangeError(`${what}: gradient ${formatShape(gs)} cannot be reduced to ${formatShape(shape)}`);
  for (let i = 0; i < shape.length; ++i)
    if (shape[i] !== 1 && shape[i] !== gs[lead + i])
      throw new RangeError(`${what}: gradient ${formatShape(gs)} cannot be reduced to ${formatShape(shape)}`);
  const src = grad.f32(what);
  const out = TensorClass().zeros(shape);
  // Native sum (float64 accumulation) over the leading dims and the dims broadcast from size 1; the kept dims'
  // layout is exactly `shape` (its size-1 dims stay size 1).
  const axes: number[] = [];
  for (let i = 0; i < gs.length; ++i) if (i < lead || (shape[i - lead] === 1 && gs[i] !== 1)) axes.push(i);
  native.reduce("sum", src, gs, axes, out.data as Float32Array);
  return out;
}

// The CUDA forms of the ops, imported lazily as Tensor is.
function cudaOps(): typeof import("./ops/cuda") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("./ops/cuda") as typeof import("./ops/cuda");
}

function addInto(a: Tensor, b: Tensor): Tensor {
  if (a.device !== b.device) throw new TypeError(`backward: gradients on ${a.device} and ${b.device} for one tensor`);
  // Fresh tensor: gradients handed to hooks or stored in .grad must not alias each other.
  if (a.device === "cuda") {
    const out = TensorClass()._empty(a.shape);
    native.cudaBinaryDev("add", a._buffer("backward"), a.shape, b._buffer("backward"), b.shape, out._buffer("backward"));
    return out;
  }
  const out = TensorClass()._uninit(a.shape);  // the add writes every element
  native.binary("add", a.f32(), a.shape, b.f32(), b.shape, out.data as Float32Array);
  return out;
}

function runHooks(t: Tensor, g: Tensor): Tensor {
  for (const h of t._hooks) {
    const r = h(g);
    if (r) {
      if (!sameShape(r.shape, t.shape))
        throw new RangeError(`hook returned a gradient of shape ${formatShape(r.shape)} for a tensor of shape ${formatShape(t.shape)}`);
      g = r;
    }
  }
  return g;
}

/** See Tensor.backward. */
export function backward(root: Tensor, gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
  if (!root.requiresGrad) throw new Error("backward: the tensor does not require grad (no input that requires grad reached it)");
  const T = TensorClass();
  let seed: Tensor;
  if (gradient) {
    if (!sameShape(gradient.shape, root.shape))
      throw new RangeError(`backward: gradient has shape ${formatShape(gradient.shape)}, expected ${formatShape(root.shape)}`);
    // on the GPU a copy: the leaf gradient it may become is released by zeroGrad, which must not free the caller's tensor
    seed = gradient.device === "cuda" ? gradient.clone() : gradient.detach();
  } else {
    if (root.numel !== 1)
      throw new RangeError(`backward: a gradient is needed for a non-scalar tensor of shape ${formatShape(root.shape)}`);
    seed = T.ones(root.shape, { device: root.device });
  }

  // Topological order of the nodes reachable from the root (iterative DFS: graphs can be thousands deep).
  const order: GradNode[] = [];
  const seen = new Set<GradNode>();
  if (root._node) {
    const stack: [GradNode, number][] = [[root._node, 0]];
    seen.add(root._node);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (i < node.inputs.length) {
        top[1]++;
        const child = node.inputs[i]?._node;
        if (child && !seen.has(child)) {
          seen.add(child);
          stack.push([child, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }

  const grads = new Map<Tensor, Tensor>();
  const accumulate = (t: Tensor, g: Tensor) => {
    if (!t.requiresGrad) return;
    if (!sameShape(g.shape, t.shape)) g = reduceToShape(g, t.shape, `backward`);
    if (t._node) {
      const prev = grads.get(t);
      grads.set(t, prev ? addInto(prev, g) : g);
    } else {
      g = runHooks(t, g);
      const old = t.grad;
      t.grad = old ? addInto(old, g) : g.detach();
      // a leaf's gradient outlives the scope of the backward that made it (zeroGrad releases it)
      if (t.grad._device) releaseFromScopes(t.grad._device);
      else keepLeafGradient(t.grad.data);
    }
  };
  accumulate(root, seed);

  for (let k = order.length - 1; k >= 0; --k) {
    const node = order[k];
    if (!node.backward)
      throw new Error(`backward: the graph through ${node.name} was already freed; pass { retainGraph: true } to the first backward`);
    const gOut = node.outputs.map((o) => {
      const g = grads.get(o);
      if (!g) return null;
      grads.delete(o);
      return runHooks(o, g);
    });
    if (gOut.every((g) => g === null)) continue;
    const gIn = node.backward(gOut);
    if (!options.retainGraph) {
      node.backward = null;
      node.release?.();
    }
    if (gIn.length !== node.inputs.length)
      throw new Error(`backward of ${node.name} returned ${gIn.length} gradients for ${node.inputs.length} inputs`);
    node.inputs.forEach((inp, i) => {
      const g = gIn[i];
      if (inp && g) accumulate(inp, g);
    });
  }
}
