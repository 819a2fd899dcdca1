// Optimizer base (optimizers layer): parameter groups with their own hyperparameters, per-parameter state in
// Float32Arrays, and a state_dict in PyTorch's shape ({ state: { index: {...} }, param_groups: [{ ..., params:
// [indices] }] }) so checkpoints can save and restore it exactly. SGD and AdamW extend it.
import { releaseFromScopes } from "../device";
import { releaseHostFromScopes } from "../host-scope";
import { Tensor } from "../tensor";

/** A parameter group as passed to an optimizer: its tensors and optional per-group hyperparameters. */
export interface ParamGroupSpec<H> {
  params: Iterable<Tensor>;
  /** Overrides for this group (e.g. `{ weight_decay: 0 }`); the rest come from the optimizer's defaults. */
  [hyper: string]: unknown;
}

/** A resolved parameter group: its tensors and every hyperparameter. */
export type ParamGroup<H> = H & { params: Tensor[] };

/**
 * Per-parameter state: buffers (moments, momentum) and scalars (step counts). Buffers of CUDA parameters are CUDA
 * tensors; stateDict() always gives Float32Arrays.
 */
export type ParamState = Record<string, Float32Array | number | Tensor>;
/** Per-parameter state as saved (stateDict): buffers are always Float32Arrays on the host. */
export type SavedParamState = Record<string, Float32Array | number>;

/**
 * State buffer `key` of parameter p on p's device, created zeroed when absent and moved when p has changed device
 * since (module.to after a step or a loadStateDict). CUDA buffers are kept out of cuda.scope releases.
 * @internal
 */
export function stateBuffer(s: ParamState, key: string, p: Tensor): Float32Array | Tensor {
  let v = s[key];
  if (typeof v === "number") throw new TypeError(`optimizer state ${key} is a number, expected a buffer`);
  if (p.device === "cuda") {
    if (!(v instanceof Tensor)) v = v ? new Tensor(v, p.shape, { device: "cuda" }) : Tensor.zeros(p.shape, { device: "cuda" });
    releaseFromScopes(v._device!);
  } else {
    if (v instanceof Tensor) v = v.cpu().data as Float32Array;
    else if (!v) v = new Float32Array(p.numel);
    releaseHostFromScopes(v);  // made inside an xlstm.scope (a first step), it must outlive it
  }
  s[key] = v;
  return v;
}

/**
 * The serialisable optimizer state, in torch.optim's layout: parameters are numbered in group order (0, 1, ...)
 * and `state` holds only parameters that have been updated.
 */
export interface OptimizerStateDict {
  state: Record<number, SavedParamState>;
  param_groups: (Record<string, unknown> & { params: number[] })[];
}

/** Parameters given as tensors, or as groups with their own hyperparameters (torch.optim style). */
export type ParamsInput<H> = Iterable<Tensor> | Iterable<ParamGroupSpec<H>>;

export abstract class Optimizer<H extends { lr: number }> {
  readonly paramGroups: ParamGroup<H>[] = [];
  /** State per parameter, created on its first update. */
  readonly state = new Map<Tensor, ParamState>();
  protected readonly name: string;

  protected constructor(name: string, params: ParamsInput<H>, defaults: H, validate: (h: H, where: string) => void) {
    this.name = name;
    const items = [...(params as Iterable<Tensor | ParamGroupSpec<H>>)];
    if (items.length === 0) throw new RangeError(`${name}: got an empty parameter list`);
    const groups: ParamGroupSpec<H>[] = items.every((p) => p instanceof Tensor) ? [{ params: items as Tensor[] }] : (items as ParamGroupSpec<H>[]);
    const seen = new Set<Tensor>();
    groups.forEach((g, gi) => {
      if (g instanceof Tensor || g === null || typeof g !== "object" || !g.params || typeof (g.params as Iterable<Tensor>)[Symbol.iterator] !== "function")
        throw new TypeError(`${name}: parameter group ${gi} must be an object with a "params" iterable of Tensors (do not mix tensors and groups)`);
      const ps = [...g.params];
      ps.forEach((p, pi) => {
        if (!(p instanceof Tensor)) throw new TypeError(`${name}: parameter group ${gi} item ${pi} is not a Tensor`);
        if (p.dtype !== "float32") throw new TypeError(`${name}: parameter group ${gi} item ${pi} is ${p.dtype}, expected float32`);
        if (seen.has(p)) throw new RangeError(`${name}: a parameter appears in more than one place (group ${gi}, item ${pi})`);
        seen.add(p);
      });
      for (const k of Object.keys(g)) if (k !== "params" && !(k in defaults)) throw new RangeError(`${name}: parameter group ${gi} has unknown option "${k}"`);
      const merged = { ...defaults, ...g, params: ps } as ParamGroup<H>;
      validate(merged, `parameter group ${gi}`);
      this.paramGroups.push(merged);
    });
  }

  /** Every parameter, in group order. */
  get params(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The learning rate of the first group; setting it sets every group's (as a scheduler does). */
  get lr(): number {
    return this.paramGroups[0].lr;
  }
  set lr(v: number) {
    if (!(typeof v === "number" && v >= 0 && Number.isFinite(v))) throw new RangeError(`${this.name}: lr must be a finite number >= 0, got ${v}`);
    for (const g of this.paramGroups) g.lr = v;
  }

  /** One update of every parameter that has a gradient. */
  abstract step(): void;

  /** Clear every parameter's gradient. */
  zeroGrad(): void {
    for (const g of this.paramGroups)
      for (const p of g.params) {
        p.grad?.dispose();  // CUDA gradients: device memory back at once (nothing on the CPU)
        p.grad = null;
      }
  }

  /** A deep copy of the state (buffers copied), in torch.optim's state_dict layout. */
  stateDict(): OptimizerStateDict {
    const state: Record<number, SavedParamState> = {};
    const param_groups: OptimizerStateDict["param_groups"] = [];
    let i = 0;
    for (const g of this.paramGroups) {
      const { params, ...hyper } = g;
      const idx: number[] = [];
      for (const p of params) {
        const s = this.state.get(p);
        if (s) state[i] = Object.fromEntries(Object.entries(s).map(([k, v]) => [k, typeof v === "number" ? v : v instanceof Tensor ? (v.cpu().data as Float32Array) : v.slice()]));
        idx.push(i++);
      }
      param_groups.push({ ...structuredClone(hyper), params: idx });
    }
    return { state, param_groups };
  }

  /**
   * Restore a state saved by stateDict() of an optimizer over parameters of the same sizes, in the same order.
   * @throws RangeError when the group count, group sizes or buffer sizes differ
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const what = `${this.name}.loadStateDict`;
    if (!sd || !Array.isArray(sd.param_groups) || typeof sd.state !== "object") throw new TypeError(`${what}: expected { state, param_groups }`);
    if (sd.param_groups.length !== this.paramGroups.length)
      throw new RangeError(`${what}: the saved state has ${sd.param_groups.length} parameter groups, this optimizer has ${this.paramGroups.length}`);
    const flat = this.params;
    sd.param_groups.forEach((sg, gi) => {
      const g = this.paramGroups[gi];
      if (!Array.isArray(sg.params) || sg.params.length !== g.params.length)
        throw new RangeError(`${what}: saved group ${gi} has ${sg.params?.length} parameters, this optimizer's has ${g.params.length}`);
    });
    const next = new Map<Tensor, ParamState>();
    for (const [k, s] of Object.entries(sd.state)) {
      const p = flat[Number(k)];
      if (!p) throw new RangeError(`${what}: state for parameter ${k}, but there are only ${flat.length}`);
      const copy: ParamState = {};
      for (const [name, v] of Object.entries(s)) {
        if (typeof v === "number") copy[name] = v;
        else if (v instanceof Float32Array) {
          if (v.length !== p.numel) throw new RangeError(`${what}: state ${k}.${name} has ${v.length} values, parameter ${k} has ${p.numel}`);
          copy[name] = v.slice();
        } else throw new TypeError(`${what}: state ${k}.${name} must be a number or a Float32Array`);
      }
      next.set(p, copy);
    }
    sd.param_groups.forEach((sg, gi) => {
      const { params: _ignored, ...hyper } = sg;
      Object.assign(this.paramGroups[gi], structuredClone(hyper));
    });
    this.state.clear();
    for (const [p, s] of next) this.state.set(p, s);
  }
}

/** Shared checks for hyperparameters. @internal */
export function checkNumber(name: string, where: string, key: string, v: unknown, ok: (x: number) => boolean, expected: string): void {
  if (typeof v !== "number" || !ok(v)) throw new RangeError(`${name}: ${where}: ${key} must be ${expected}, got ${String(v)}`);
}
