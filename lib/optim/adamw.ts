// AdamW (optimizers layer), as torch.optim.AdamW (amsgrad off): per step t (counted per parameter),
//   p <- p * (1 - lr * weight_decay)                       (decoupled weight decay)
//   m <- beta1 * m + (1 - beta1) * g;  v <- beta2 * v + (1 - beta2) * g^2
//   p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Parameter groups carry their own lr / betas / eps / weight_decay (the xLSTM recipe uses two groups, see
// groups.ts). The update runs in the native kernel `adamwStep` (csrc/kernels/optim.cc) when the addon has it,
// otherwise in a typed-array loop with the same arithmetic (float64 scalars, float32 storage).
import { noGrad } from "../autograd";
import { native } from "../native";
import { Tensor } from "../tensor";
import { checkNumber, Optimizer, ParamsInput, stateBuffer } from "./optimizer";

export interface AdamWOptions {
  /** Learning rate. Default 1e-3. */
  lr?: number;
  /** Coefficients of the running averages of the gradient and its square. Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Added to the denominator. Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay. Default 1e-2 (torch.optim.AdamW's default). */
  weight_decay?: number;
}

export type AdamWHyper = Required<AdamWOptions>;

// An addon built before the optim kernels existed (an old prebuild) lacks adamwStep: fall back to the loop.
const nativeAdamW = typeof native.adamwStep === "function" ? native.adamwStep.bind(native) : null;

/** The update in TypeScript (also the fallback when the addon has no optim kernel). @internal */
export function adamwStepJs(w: Float32Array, m: Float32Array, v: Float32Array, g: Float32Array, lr: number, beta1: number, beta2: number, eps: number, wd: number, t: number): void {
  const decay = 1 - lr * wd;
  const stepSize = lr / (1 - Math.pow(beta1, t));
  const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
  const a1 = 1 - beta1, a2 = 1 - beta2;
  for (let i = 0; i < w.length; ++i) {
    const gi = g[i];
    const mi = beta1 * m[i] + a1 * gi;
    const vi = beta2 * v[i] + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}

export class AdamW extends Optimizer<AdamWHyper> {
  /** Use the native kernel when available (default); false forces the TypeScript loop (for tests). */
  useNative = nativeAdamW !== null;

  /**
   * @param params tensors, or groups `{ params, lr?, weight_decay?, betas?, eps? }` (see xlstmParamGroups)
   * @throws RangeError for a negative lr/eps/weight_decay or betas outside [0, 1)
   * @example const opt = new optim.AdamW(optim.xlstmParamGroups(model, 0.1), { lr: 1e-3 });
   */
  constructor(params: ParamsInput<AdamWHyper>, options: AdamWOptions = {}) {
    if (!options || typeof options !== "object") throw new TypeError("AdamW: options must be an object");
    const defaults: AdamWHyper = { lr: options.lr ?? 1e-3, betas: options.betas ?? [0.9, 0.999], eps: options.eps ?? 1e-8, weight_decay: options.weight_decay ?? 1e-2 };
    for (const k of Object.keys(options)) if (!(k in defaults)) throw new RangeError(`AdamW: unknown option "${k}"`);
    super("AdamW", params, defaults, (h, where) => {
      checkNumber("AdamW", where, "lr", h.lr, (x) => x >= 0 && Number.isFinite(x), "a finite number >= 0");
      checkNumber("AdamW", where, "eps", h.eps, (x) => x >= 0, ">= 0");
      checkNumber("AdamW", where, "weight_decay", h.weight_decay, (x) => x >= 0, ">= 0");
      if (!Array.isArray(h.betas) || h.betas.length !== 2 || !h.betas.every((b) => typeof b === "number" && b >= 0 && b < 1))
        throw new RangeError(`AdamW: ${where}: betas must be two numbers in [0, 1), got ${JSON.stringify(h.betas)}`);
    });
  }

  step(): void {
    noGrad(() => {
      for (const g of this.paramGroups) {
        const [b1, b2] = g.betas;
        for (const p of g.params) {
          if (!p.grad) continue;
          let s = this.state.get(p);
          if (!s) this.state.set(p, (s = { step: 0 }));
          const t = (s.step as number) + 1;
          s.step = t;
          const m = stateBuffer(s, "exp_avg", p), v = stateBuffer(s, "exp_avg_sq", p);
          if (p.device === "cuda") {
            if (p.grad.device !== "cuda") throw new TypeError("AdamW.step: a CUDA parameter has a CPU gradient");
            const what = "AdamW.step";
            native.cudaAdamwStepDev(p._buffer(what), (m as Tensor)._buffer(what), (v as Tensor)._buffer(what), p.grad._buffer(what), p.numel, g.lr, b1, b2, g.eps, g.weight_decay, t);
            continue;
          }
          const w = p.f32(), gr = p.grad.f32("AdamW: grad");
          if (this.useNative && nativeAdamW) nativeAdamW(w, m as Float32Array, v as Float32Array, gr, g.lr, b1, b2, g.eps, g.weight_decay, t);
          else adamwStepJs(w, m as Float32Array, v as Float32Array, gr, g.lr, b1, b2, g.eps, g.weight_decay, t);
        }
      }
    });
  }
}
