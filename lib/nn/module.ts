// Module: the base of every layer (modules layer). Parameters and submodules are registered by name, so
// namedParameters() and stateDict() produce the PyTorch reference's dotted state_dict keys, and loadStateDict()
// copies values into the existing parameter storage (optimizers keep their references).
import { formatShape, sameShape } from "../shape";
import { releaseHostFromScopes } from "../host-scope";
import { Tensor } from "../tensor";

export type StateDict = Map<string, Tensor>;

/** Bumped by every registration anywhere: invalidates the layers' cached parameter lookups (parameterByKey). */
let registrations = 0;

export abstract class Module {
  /** Training mode (dropout active); switch with train()/eval(). */
  training = true;
  private readonly params = new Map<string, Tensor | null>();
  private readonly children = new Map<string, Module>();
  private byKey: { map: StateDict; at: number } | null = null;

  /** Register a parameter (a float32 leaf that requires grad; xLSTMLarge.setWeightDtype may store some as bfloat16 later); `null` keeps the name reserved (e.g. bias=false). */
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t) {
      if (t.dtype !== "float32") throw new TypeError(`registerParameter: ${name} must be float32, got ${t.dtype}`);
      t.requiresGrad = true;
      // a module built inside a scope keeps its parameters (tensor storage made there would be released at its end)
      if (t._device) t._device.leaveScopes();
      else releaseHostFromScopes(t.data);
    }
    this.params.set(name, t);
    registrations += 1;
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    registrations += 1;
    return m;
  }

  /**
   * The parameter at a state_dict key of this module (null when absent), from a map built once and rebuilt only after
   * a registration: the layers look their weights up on every call (a decode step: a dozen per layer), and a new
   * stateDict() each time cost ~8 µs a lookup. Parameters keep their Tensor objects (loadStateDict, to() and
   * setWeightDtype change them in place), so the map stays valid.
   */
  protected parameterByKey(key: string): Tensor | null {
    if (!this.byKey || this.byKey.at !== registrations) this.byKey = { map: this.stateDict(), at: registrations };
    return this.byKey.map.get(key) ?? null;
  }

  /** [dotted name, parameter] for this module and its submodules, in registration order. */
  *namedParameters(prefix = ""): Generator<[string, Tensor]> {
    for (const [n, t] of this.params) if (t) yield [prefix + n, t];
    for (const [n, m] of this.children) yield* m.namedParameters(`${prefix}${n}.`);
  }

  parameters(): Tensor[] {
    return [...this.namedParameters()].map(([, t]) => t);
  }

  /** Parameters by their reference state_dict keys (tensors are shared, not copied). */
  stateDict(): StateDict {
    return new Map(this.namedParameters());
  }

  /**
   * Copy values from `sd` into this module's parameters. With `strict` (default), missing and unexpected keys are
   * errors; shapes must match exactly. Returns the keys it did not use and the ones it did not find.
   * Everything is checked before anything is copied: a refused state dict leaves the parameters as they were.
   * @throws TypeError naming the key for a value that is not a Tensor (or has detached storage) or has a non-float
   *   dtype; RangeError for missing/unexpected keys (strict) and shape mismatches.
   */
  loadStateDict(sd: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): { missing: string[]; unexpected: string[] } {
    if (sd === null || typeof sd !== "object") throw new TypeError(`loadStateDict: state dict must be a Map or an object of name -> Tensor, got ${sd === null ? "null" : typeof sd}`);
    const strict = options?.strict ?? true;
    const entries = sd instanceof Map ? [...sd.entries()] : Object.entries(sd);
    for (const [k, v] of entries) {
      if (typeof k !== "string") throw new TypeError(`loadStateDict: key ${String(k)} is not a string`);
      if (!(v instanceof Tensor)) throw new TypeError(`loadStateDict: ${k} is ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? (v as object).constructor?.name ?? "an object" : typeof v}, expected a Tensor`);
      if (v.device === "cpu" && v.isDisposed) throw new TypeError(`loadStateDict: ${k} has no stored elements for shape ${formatShape(v.shape)} (released by a scope, or detached storage)`);
      if (v.device === "cpu" && v.data.length !== v.shape.reduce((a, b) => a * b, 1)) throw new TypeError(`loadStateDict: ${k} has ${v.data.length} stored elements for shape ${formatShape(v.shape)} (detached storage?)`);
    }
    const src = this.normalizeStateDict(new Map(entries), "");
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !src.has(k));
    const unexpected = [...src.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length || unexpected.length))
      throw new RangeError(`loadStateDict: ${missing.length ? `missing keys ${missing.join(", ")}` : ""}${missing.length && unexpected.length ? "; " : ""}${unexpected.length ? `unexpected keys ${unexpected.join(", ")}` : ""}`);
    const copies: [Tensor, Tensor][] = [];
    for (const [k, p] of own) {
      const v = src.get(k);
      if (!v) continue;
      if (!sameShape(v.shape, p.shape)) throw new RangeError(`loadStateDict: ${k} has shape ${formatShape(v.shape)}, expected ${formatShape(p.shape)}`);
      if (v.dtype !== "float32" && v.dtype !== "bfloat16") throw new TypeError(`loadStateDict: ${k} has dtype ${v.dtype}, expected float32`);
      copies.push([p, v]);
    }
    for (const [p, v] of copies) p._copyFrom(v.dtype === p.dtype ? v : v.to(p.dtype));
    return { missing, unexpected };
  }

  /**
   * Rewrites the entries of an incoming state_dict that this module (at key prefix `prefix`) stores in another
   * layout, in place, before loadStateDict matches keys and shapes. The default recurses into submodules; modules
   * whose reference checkpoints come in several layouts (the sLSTM cell) override it.
   */
  normalizeStateDict(sd: Map<string, Tensor>, prefix: string): Map<string, Tensor> {
    for (const [n, m] of this.children) m.normalizeStateDict(sd, `${prefix}${n}.`);
    return sd;
  }

  /**
   * Moves every parameter to `device` ("cpu" or "cuda") in place (the same Tensor objects, so optimizers made
   * before keep working; gradients are cleared) and returns this module. Which ops a model can then run on the GPU:
   * see the README's CUDA section; the others throw a TypeError naming the op.
   */
  to(device: "cpu" | "cuda"): this {
    for (const p of new Set(this.parameters())) p._moveInPlace(device);
    return this;
  }

  /** Clear every parameter's gradient (a CUDA gradient's device memory is released at once). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this.children.values()) m.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }
}
