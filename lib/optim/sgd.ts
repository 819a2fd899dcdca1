// SGD (optimizers layer), as torch.optim.SGD: d = grad + weight_decay * p; with momentum,
// buf = d (first step) or momentum * buf + (1 - dampening) * d, then d = buf, or d + momentum * buf with nesterov;
// p -= lr * d. Parameter groups may set their own lr/momentum/weight_decay. Also: global-norm gradient clipping.
import { noGrad } from "../autograd";
import { native } from "../native";
import { Tensor } from "../tensor";
import { checkNumber, Optimizer, ParamsInput } from "./optimizer";

export interface SGDOptions {
  /** Learning rate (> 0). */
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** Damping of the momentum's new term. Default 0. */
  dampening?: number;
  /** L2 penalty added to the gradient (coupled weight decay, as torch.optim.SGD). Default 0. */
  weight_decay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). Default false. */
  nesterov?: boolean;
}

export type SGDHyper = Required<SGDOptions>;

export class SGD extends Optimizer<SGDHyper> {
  /**
   * @param params tensors, or groups `{ params, lr?, momentum?, ... }` with their own hyperparameters
   * @throws RangeError for a non-positive lr, a negative momentum/dampening/weight_decay, or nesterov without
   *   momentum (or with dampening)
   * @example const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9, nesterov: true });
   */
  constructor(params: ParamsInput<SGDHyper>, options: SGDOptions) {
    if (!options || typeof options !== "object") throw new TypeError("SGD: options must be an object with lr");
    const defaults: SGDHyper = { lr: options.lr, momentum: options.momentum ?? 0, dampening: options.dampening ?? 0, weight_decay: options.weight_decay ?? 0, nesterov: options.nesterov ?? false };
    for (const k of Object.keys(options)) if (!(k in defaults)) throw new RangeError(`SGD: unknown option "${k}"`);
    super("SGD", params, defaults, (h, where) => {
      if (!(typeof h.lr === "number" && h.lr > 0 && Number.isFinite(h.lr))) throw new RangeError(`SGD: ${where}: lr must be positive, got ${h.lr}`);
      checkNumber("SGD", where, "momentum", h.momentum, (x) => x >= 0, ">= 0");
      checkNumber("SGD", where, "dampening", h.dampening, (x) => x >= 0, ">= 0");
      checkNumber("SGD", where, "weight_decay", h.weight_decay, (x) => x >= 0, ">= 0");
      if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) throw new RangeError(`SGD: ${where}: nesterov needs momentum > 0 and dampening 0`);
    });
  }

  step(): void {
    noGrad(() => {
      for (const g of this.paramGroups) {
        const { lr, momentum: mom, dampening, weight_decay: wd, nesterov } = g;
        for (const p of g.params) {
          if (!p.grad) continue;
          const w = p.f32(), gr = p.grad.f32("SGD: grad");
          if (mom === 0) {
            for (let i = 0; i < w.length; ++i) w[i] -= lr * (gr[i] + wd * w[i]);
            continue;
          }
          let s = this.state.get(p);
          const first = !s;
          if (!s) this.state.set(p, (s = { momentum_buffer: new Float32Array(w.length) }));
          const buf = s.momentum_buffer as Float32Array;
          const keep = 1 - dampening;
          for (let i = 0; i < w.length; ++i) {
            const d = gr[i] + wd * w[i];
            const b = first ? d : mom * buf[i] + keep * d;
            buf[i] = b;
            w[i] -= lr * (nesterov ? d + mom * b : b);
          }
        }
      }
    });
  }
}

/**
 * Scale all gradients so that their joint L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_: the
 * factor is maxNorm / (norm + 1e-6), applied only when below 1); returns the norm before clipping.
 * @throws RangeError for a maxNorm that is not positive
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be positive, got ${maxNorm}`);
  const ps = [...new Set(params)].filter((p) => p.grad);
  const fast = typeof native.sumSquares === "function";
  let sq = 0;
  for (const p of ps) {
    const g = p.grad!.f32();
    if (fast) sq += native.sumSquares(g);
    else for (let i = 0; i < g.length; ++i) sq += g[i] * g[i];
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1)
    for (const p of ps) {
      const g = p.grad!.f32();
      if (fast) native.scaleInPlace(g, coef);
      else for (let i = 0; i < g.length; ++i) g[i] *= coef;
    }
  return norm;
}

/** The global L2 norm of the gradients (float64 accumulation), without changing them. */
export function gradNorm(params: Iterable<Tensor>): number {
  let sq = 0;
  for (const p of new Set(params)) {
    if (!p.grad) continue;
    const g = p.grad.f32();
    if (typeof native.sumSquares === "function") sq += native.sumSquares(g);
    else for (let i = 0; i < g.length; ++i) sq += g[i] * g[i];
  }
  return Math.sqrt(sq);
}
