// The fused mLSTM layer (ops layer): the whole pre-up-projection layer body of XLSTM_SPEC §6.1 (proj_up, causal
// conv + SiLU, block-diagonal q/k/v, gates, chunkwise mLSTM cell, per-head output norm, learnable skip, SiLU(z)
// gate, proj_down) as ONE native call each way and ONE tape entry (csrc/kernels/mlstm_layer.h). The same numbers as
// composing the single ops (lib/nn/mlstm-layer.ts does that for the cases this op does not cover: an initial or
// returned state, projection biases), without their per-op allocations, layout copies and tape bookkeeping. On CUDA
// tensors the layer is that composition of the single ops, each with its CUDA kernel (layerComposed below).
import { record, needsGrad } from "../autograd";
import { shapeError } from "../errors";
import { native } from "../native";
import { Tensor, uninitF32, zeroedF32 } from "../tensor";
import { kindOf, requireTensor } from "./args";
import { causalConv1d } from "./conv1d";
import { requireSameDevice } from "./cuda";
import { add, mul, silu } from "./elementwise";
import { headwiseLinear } from "./headwise";
import { linear } from "./matmul";
import { mlstm } from "./mlstm";
import { resolveChunkSize } from "./mlstm-chunk";
import { layerNorm, multiHeadLayerNorm } from "./norm";
import { cat, permuteOrView as permute, slice } from "./shape";

/** The layer's parameters, named as the reference's state_dict keys (no biases on the projections). */
export interface MlstmLayerWeights {
  /** proj_up.weight [2Di, E] */
  wUp: Tensor;
  /** conv1d.conv.weight [Di, 1, K] */
  wConv: Tensor;
  /** conv1d.conv.bias [Di] */
  bConv: Tensor;
  /** q_proj.weight, k_proj.weight, v_proj.weight [Di/Bq, Bq, Bq] */
  wQ: Tensor;
  wK: Tensor;
  wV: Tensor;
  /** mlstm_cell.igate.weight [NH, 3Di], .bias [NH] */
  wI: Tensor;
  bI: Tensor;
  /** mlstm_cell.fgate.weight [NH, 3Di], .bias [NH] */
  wF: Tensor;
  bF: Tensor;
  /** mlstm_cell.outnorm.weight [Di] (residual: gamma = 1 + w) */
  wNorm: Tensor;
  /** learnable_skip [Di] */
  skip: Tensor;
  /** proj_down.weight [E, Di] */
  wDown: Tensor;
}

const OP = "ops.mlstmLayer";
const show = (v: unknown) => (typeof v === "number" ? String(v) : kindOf(v));
const ORDER = ["wUp", "wConv", "bConv", "wQ", "wK", "wV", "wI", "bI", "wF", "bF", "wNorm", "skip", "wDown"] as const;

/** The block form's layer norm (xLSTMBlock's xlstm_norm: weight, no bias). */
export interface MlstmPreNorm {
  /** [E] */
  weight: Tensor;
  /** default 1e-5 */
  eps?: number;
  /** gamma = 1 + weight (default true, the reference's LayerNorm) or weight */
  residualWeight?: boolean;
}

/**
 * The fused mLSTM layer from the zero state: y [B, S, E] for x [B, S, E]. Differentiable w.r.t. x and every weight.
 * With options.preNorm, the whole pre-norm residual half of an xLSTM block instead: y = x + layer(LayerNorm(x))
 * (the same numbers as ops.layerNorm, the layer and ops.add; the norm's weight gets its gradient too). On CUDA tensors
 * (x and every weight on the GPU) it runs as the composition of the single ops, each with its CUDA kernel.
 * @param options.numHeads NH (divides Di); options.chunkSize the cell's chunk (default 64: the "auto" form), or "auto":
 *   chosen per head size and device (mlstmAutoChunk)
 * @throws TypeError for non-Tensor / non-float32 arguments, RangeError for inconsistent shapes
 */
export function mlstmLayer(x: Tensor, w: MlstmLayerWeights, options: { numHeads: number; chunkSize?: number | "auto"; cellEps?: number; normEps?: number; preNorm?: MlstmPreNorm | null }): Tensor {
  requireTensor(OP, "x", x, { cuda: true });
  if (typeof w !== "object" || w === null || Array.isArray(w)) throw new TypeError(`${OP}: weights must be an object of Tensors (${ORDER.join(", ")}), got ${kindOf(w)}`);
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new TypeError(`${OP}: options must be an object { numHeads, chunkSize?, cellEps?, normEps? }, got ${kindOf(options)}`);
  for (const k of ORDER) {
    const t = requireTensor(OP, `weights.${k}`, w[k], { cuda: true });
    if (t.dtype !== "float32") throw new TypeError(`${OP}: weights.${k} must be float32, got ${t.dtype}`);
  }
  if (x.dtype !== "float32") throw new TypeError(`${OP}: x must be float32, got ${x.dtype}`);
  if (x.ndim !== 3) throw shapeError(`${OP}: x`, x.shape, "[B, S, E]");
  const [B, S, E] = x.shape;
  if (w.wUp.ndim !== 2 || w.wUp.shape[1] !== E || w.wUp.shape[0] % 2) throw shapeError(`${OP}: weights.wUp`, w.wUp.shape, `[2Di, E] with E = ${E}`);
  const Di = w.wUp.shape[0] / 2;
  const NH = options.numHeads;
  if (typeof NH !== "number" || !Number.isInteger(NH) || NH < 1 || Di % NH) throw new RangeError(`${OP}: numHeads must divide the inner dim ${Di}, got ${show(NH)}`);
  if (w.wConv.ndim !== 3 || w.wConv.shape[0] !== Di || w.wConv.shape[1] !== 1) throw shapeError(`${OP}: weights.wConv`, w.wConv.shape, `[Di, 1, K] with Di = ${Di}`);
  const K = w.wConv.shape[2];
  if (w.wQ.ndim !== 3 || w.wQ.shape[1] !== w.wQ.shape[2] || w.wQ.shape[0] * w.wQ.shape[1] !== Di) throw shapeError(`${OP}: weights.wQ`, w.wQ.shape, `[Di/Bq, Bq, Bq] with Di = ${Di}`);
  const Bq = w.wQ.shape[1];
  const want: Record<(typeof ORDER)[number], number[]> = {
    wUp: [2 * Di, E], wConv: [Di, 1, K], bConv: [Di], wQ: [Di / Bq, Bq, Bq], wK: [Di / Bq, Bq, Bq], wV: [Di / Bq, Bq, Bq],
    wI: [NH, 3 * Di], bI: [NH], wF: [NH, 3 * Di], bF: [NH], wNorm: [Di], skip: [Di], wDown: [E, Di],
  };
  for (const k of ORDER) {
    const s = w[k].shape, e = want[k];
    if (s.length !== e.length || s.some((d, j) => d !== e[j])) throw shapeError(`${OP}: weights.${k}`, s, `[${e.join(", ")}]`);
  }
  const chunk = Math.min(resolveChunkSize(OP, options.chunkSize, 64, Di / NH, Di / NH, x.device), S);
  const cellEps = options.cellEps ?? 1e-6, normEps = options.normEps ?? 1e-5;
  if (typeof cellEps !== "number" || !Number.isFinite(cellEps) || cellEps < 0) throw new RangeError(`${OP}: cellEps must be a finite number >= 0, got ${show(cellEps)}`);
  if (typeof normEps !== "number" || !Number.isFinite(normEps) || normEps <= 0) throw new RangeError(`${OP}: normEps must be a finite number > 0, got ${show(normEps)}`);
  const pre = options.preNorm ?? null;
  let lnW: Tensor | null = null, lnEps = 1e-5, lnResidual = true;
  if (pre !== null) {
    if (typeof pre !== "object" || Array.isArray(pre)) throw new TypeError(`${OP}: options.preNorm must be an object { weight, eps?, residualWeight? } or null, got ${kindOf(pre)}`);
    lnW = requireTensor(OP, "options.preNorm.weight", pre.weight, { cuda: true });
    if (lnW.dtype !== "float32") throw new TypeError(`${OP}: options.preNorm.weight must be float32, got ${lnW.dtype}`);
    if (lnW.ndim !== 1 || lnW.shape[0] !== E) throw shapeError(`${OP}: options.preNorm.weight`, lnW.shape, `[E] = [${E}]`);
    lnEps = pre.eps ?? 1e-5;
    if (typeof lnEps !== "number" || !Number.isFinite(lnEps) || lnEps <= 0) throw new RangeError(`${OP}: options.preNorm.eps must be a finite number > 0, got ${show(lnEps)}`);
    lnResidual = pre.residualWeight ?? true;
    if (typeof lnResidual !== "boolean") throw new TypeError(`${OP}: options.preNorm.residualWeight must be a boolean, got ${kindOf(lnResidual)}`);
  }
  requireSameDevice(OP, [["x", x], ...ORDER.map((k) => [`weights.${k}`, w[k]] as [string, Tensor]), ["options.preNorm.weight", lnW]]);
  if (x.device === "cuda") return layerComposed(x, w, NH, chunk, cellEps, normEps, lnW ? { weight: lnW, eps: lnEps, residualWeight: lnResidual } : null);
  const dims = [B, S, E, Di, NH, Bq, K, chunk] as const;
  const params = ORDER.map((k) => w[k].f32());
  const inputs = [x, ...ORDER.map((k) => w[k]), ...(lnW ? [lnW] : [])];
  const grad = needsGrad(inputs);
  const y = uninitF32(B * S * E);  // the layer's kernels write y, dx and every gradient in full
  // the saved activations stay in native memory (several times y's size), freed as soon as the backward has run
  const saved = lnW
    ? native.mlstmLayerForward(y, x.f32(), ...params, ...dims, cellEps, normEps, grad, lnW.f32(), lnEps, lnResidual)
    : native.mlstmLayerForward(y, x.f32(), ...params, ...dims, cellEps, normEps, grad);
  const out = new Tensor(y, [B, S, E]);
  if (!grad || !saved) return out;
  return record("mlstmLayer", inputs, out, ([gy]) => {
    const dx = uninitF32(B * S * E);
    const grads = ORDER.map((k) => uninitF32(w[k].numel));
    const dy = gy ? gy.f32() : zeroedF32(B * S * E);
    if (lnW) {
      const dLn = lnW.requiresGrad ? uninitF32(E) : null;
      native.mlstmLayerBackward(dx, ...grads, dy, x.f32(), saved, ...params, ...dims, cellEps, normEps, lnW.f32(), dLn);
      return [new Tensor(dx, x.shape), ...ORDER.map((k, j) => new Tensor(grads[j], w[k].shape)), dLn ? new Tensor(dLn, lnW.shape) : null];
    }
    native.mlstmLayerBackward(dx, ...grads, dy, x.f32(), saved, ...params, ...dims, cellEps, normEps);
    return [new Tensor(dx, x.shape), ...ORDER.map((k, j) => new Tensor(grads[j], w[k].shape))];
  }, { release: () => native.mlstmLayerRelease(saved) });
}

/**
 * The layer (and its block form) as the composition of the single ops, for CUDA tensors: the same steps as the fused
 * CPU kernel and lib/nn/mlstm-layer.ts (the cell in its "auto" form from the zero state), each op on the GPU.
 */
function layerComposed(x: Tensor, w: MlstmLayerWeights, NH: number, chunk: number, cellEps: number, normEps: number, pre: Required<MlstmPreNorm> | null): Tensor {
  const [B, S] = x.shape;
  const Di = w.wUp.shape[0] / 2, DH = Di / NH;
  const xin = pre ? layerNorm(x, pre.weight, null, { eps: pre.eps, residualWeight: pre.residualWeight }) : x;
  const up = linear(xin, w.wUp);
  const xm = slice(up, 2, 0, Di), z = slice(up, 2, Di, 2 * Di);
  const xc = silu(causalConv1d(xm, w.wConv, w.bConv));
  const q = headwiseLinear(xc, w.wQ), k = headwiseLinear(xc, w.wK), v = headwiseLinear(xm, w.wV);
  const u = cat([q, k, v], 2);
  const ig = permute(linear(u, w.wI, w.bI), [0, 2, 1]), fg = permute(linear(u, w.wF, w.bF), [0, 2, 1]);  // [B, NH, S]
  const heads = (t: Tensor) => permute(t.reshape(B, S, NH, DH), [0, 2, 1, 3]);
  const cell = mlstm(heads(q), heads(k), heads(v), ig, fg, { form: "auto", chunkSize: chunk, eps: cellEps });
  const hNorm = multiHeadLayerNorm(permute(cell.h, [0, 2, 1, 3]), w.wNorm, null, { residualWeight: true, eps: normEps }).reshape(B, S, Di);
  const y = linear(mul(add(hNorm, mul(w.skip, xc)), silu(z)), w.wDown);
  return pre ? add(x, y) : y;
}
