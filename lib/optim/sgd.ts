// SGD (optimizers layer), as torch.optim.SGD: d = grad + weight_decay * p; with momentum,
// buf = d (first step) or momentum * buf + (1 - dampening) * d, then d = buf, or d + momentum * buf with nesterov;
// p -= lr * d. Parameter groups may set their own lr/momentum/weight_decay. Also: global-norm gradient clipping.
import { noGrad } from "../autograd";
import { native } from "../native";
import { Tensor } from "../tensor";
import { checkNumber, Optimizer, ParamsInput, stateBuffer } from "./optimizer";

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

// An addon built before the SGD kernel existed (an old prebuild) lacks sgdStep: fall back to the loop below.
const nativeSgd = typeof native.sgdStep === "function" ? native.sgdStep.bind(native) : null;

/**
 * @internal The CPU update in JS (float64 arithmetic, each stored value rounded once): what the native sgdStep
 * computes bit for bit; used when the addon predates it, and by the tests.
 */
export function sgdStepJs(w: Float32Array, buf: Float32Array | null, gr: Float32Array, lr: number, mom: number, dampening: number, wd: number, nesterov: boolean, first: boolean): void {
  if (mom === 0 || !buf) {
    for (let i = 0; i < w.length; ++i) w[i] -= lr * (gr[i] + wd * w[i]);
    return;
  }
  const keep = 1 - dampening;
  for (let i = 0; i < w.length; ++i) {
    const d = gr[i] + wd * w[i];
    const b = first ? d : mom * buf[i] + keep * d;
    buf[i] = b;
    w[i] -= lr * (nesterov ? d + mom * b : b);
  }
}

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
          if (p.device === "cuda") {
            this.stepCuda(p, p.grad, g);
            continue;
          }
          const w = p.f32(), gr = p.grad.f32("SGD: grad");
          let buf: Float32Array | null = null, first = false;
          if (mom !== 0) {
            let s = this.state.get(p);
            first = !s;
            if (!s) this.state.set(p, (s = {}));
            buf = stateBuffer(s, "momentum_buffer", p) as Float32Array;
          }
          if (nativeSgd) nativeSgd(w, buf, gr, lr, mom, dampening, wd, nesterov, first);
          else sgdStepJs(w, buf, gr, lr, mom, dampening, wd, nesterov, first);
        }
      }
    });
  }

  /** The same update with elementwise kernels on a CUDA parameter (float32 rounding may differ from the CPU loop). */
  private stepCuda(p: Tensor, grad: Tensor, h: SGDHyper): void {
    if (grad.device !== "cuda") throw new TypeError("SGD.step: a CUDA parameter has a CPU gradient");
    const { lr, momentum: mom, dampening, weight_decay: wd, nesterov } = h;
    const d = wd ? Tensor._empty(p.shape) : grad;
    if (wd) axpby(d, 1, grad, wd, p);
    let upd = d, tmp: Tensor | null = null;
    if (mom !== 0) {
      let s = this.state.get(p);
      const first = !s;
      if (!s) this.state.set(p, (s = {}));
      const buf = stateBuffer(s, "momentum_buffer", p) as Tensor;
      if (first) native.cudaCopyBuffer(buf._buffer("SGD.step"), 0, d._buffer("SGD.step"), 0, 4 * p.numel);
      else axpby(buf, mom, buf, 1 - dampening, d);
      if (nesterov) axpby((tmp = Tensor._empty(p.shape)), 1, d, mom, buf);
      upd = tmp ?? buf;
    }
    axpby(p, 1, p, -lr, upd);
    tmp?.dispose();
    if (d !== grad) d.dispose();
  }
}

/** out = a*x + b*y on CUDA tensors of one shape (out may be x or y). */
function axpby(out: Tensor, a: number, x: Tensor, b: number, y: Tensor): void {
  const what = "SGD.step", n = out.numel;
  const t = Tensor._empty(out.shape);
  native.cudaUnaryDev("affine", y._buffer(what), t._buffer(what), n, b, 0);
  if (a !== 1 || out !== x) native.cudaUnaryDev("affine", x._buffer(what), out._buffer(what), n, a, 0);
  native.cudaBinaryDev("add", out._buffer(what), out.shape, t._buffer(what), out.shape, out._buffer(what));
  t.dispose();
}

/** Sum of squares of every gradient, float64: CPU ones natively, CUDA ones on the GPU with one read-back. */
function sumOfSquares(grads: Tensor[]): number {
  let sq = 0;
  const onGpu = grads.filter((g) => g.device === "cuda");
  for (const g of grads) {
    if (g.device === "cuda") continue;
    const a = g.f32();
    if (typeof native.sumSquares === "function") sq += native.sumSquares(a);
    else for (let i = 0; i < a.length; ++i) sq += a[i] * a[i];
  }
  if (onGpu.length) {
    const parts = Tensor._empty([onGpu.length], "int64");  // float64 sums (8 bytes each)
    onGpu.forEach((g, i) => native.cudaSumSquaresDev(g._buffer("clipGradNorm"), g.numel, parts._buffer("clipGradNorm"), i));
    const host = new Float64Array(onGpu.length);
    native.cudaDownload(parts._buffer("clipGradNorm"), 0, host);
    parts.dispose();
    for (const v of host) sq += v;
  }
  return sq;
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
  const norm = Math.sqrt(sumOfSquares(ps.map((p) => p.grad!)));
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1)
    for (const p of ps) {
      if (p.grad!.device === "cuda") {
        native.cudaScaleInPlaceDev(p.grad!._buffer("clipGradNorm"), p.numel, coef);
        continue;
      }
      const g = p.grad!.f32();
      if (fast) native.scaleInPlace(g, coef);
      else for (let i = 0; i < g.length; ++i) g[i] *= coef;
    }
  return norm;
}

/** The global L2 norm of the gradients (float64 accumulation), without changing them. */
export function gradNorm(params: Iterable<Tensor>): number {
  return Math.sqrt(sumOfSquares([...new Set(params)].flatMap((p) => (p.grad ? [p.grad] : []))));
}
