// SGD (optimizers layer): p -= lr * (grad + weight_decay * p), with optional momentum, as torch.optim.SGD.
import { noGrad } from "../autograd";
import { Tensor } from "../tensor";

export interface SGDOptions {
  lr: number;
  /** Default 0. */
  momentum?: number;
  /** L2 penalty added to the gradient. Default 0. */
  weight_decay?: number;
}

export class SGD {
  readonly params: Tensor[];
  lr: number;
  readonly momentum: number;
  readonly weight_decay: number;
  private readonly buffers = new Map<Tensor, Float32Array>();

  /** @throws RangeError for a non-positive lr or a negative momentum/weight_decay */
  constructor(params: Iterable<Tensor>, options: SGDOptions) {
    this.params = [...params];
    if (!(options.lr > 0)) throw new RangeError(`SGD: lr must be positive, got ${options.lr}`);
    this.lr = options.lr;
    this.momentum = options.momentum ?? 0;
    this.weight_decay = options.weight_decay ?? 0;
    if (!(this.momentum >= 0)) throw new RangeError(`SGD: momentum must be >= 0, got ${this.momentum}`);
    if (!(this.weight_decay >= 0)) throw new RangeError(`SGD: weight_decay must be >= 0, got ${this.weight_decay}`);
  }

  /** One update of every parameter that has a gradient. */
  step(): void {
    noGrad(() => {
      for (const p of this.params) {
        if (!p.grad) continue;
        const w = p.f32(), g = p.grad.f32();
        const lr = this.lr, wd = this.weight_decay, mom = this.momentum;
        if (mom === 0) {
          for (let i = 0; i < w.length; ++i) w[i] -= lr * (g[i] + wd * w[i]);
          continue;
        }
        let buf = this.buffers.get(p);
        const first = !buf;
        if (!buf) this.buffers.set(p, (buf = new Float32Array(w.length)));
        for (let i = 0; i < w.length; ++i) {
          const d = g[i] + wd * w[i];
          buf[i] = first ? d : mom * buf[i] + d;
          w[i] -= lr * buf[i];
        }
      }
    });
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }
}

/**
 * Scale all gradients so that their joint L2 norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_); returns
 * the norm before clipping.
 */
export function clipGradNorm(params: Iterable<Tensor>, maxNorm: number): number {
  const ps = [...params].filter((p) => p.grad);
  let sq = 0;
  for (const p of ps) {
    const g = p.grad!.f32();
    for (let i = 0; i < g.length; ++i) sq += g[i] * g[i];
  }
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1)
    for (const p of ps) {
      const g = p.grad!.f32();
      for (let i = 0; i < g.length; ++i) g[i] *= coef;
    }
  return norm;
}
