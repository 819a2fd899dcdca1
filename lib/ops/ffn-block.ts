// The fused feed-forward half of an xLSTM block (ops layer; csrc/kernels/ffn_block.h): y = x + FFN(LayerNorm(x)) with
// the gated feed-forward FFN(u) = act(u W_gᵀ) ⊙ (u W_vᵀ) W_downᵀ, as one native call each way and one tape entry
// instead of norm, two linears, the gated activation and the residual add with their buffers and gradient sums. The
// same values as composing those ops (test/46). Internal: GatedFeedForward.fusedBlock picks it (CPU, no biases, no
// dropout in training).
import { needsGrad, record } from "../autograd";
import { native } from "../native";
import { Tensor, uninitF32, zeroedF32 } from "../tensor";
import type { UnaryOp } from "./elementwise";

export interface FfnBlockWeights {
  /** the block's norm weight [E] (gamma = 1 + w when residualWeight) */
  normWeight: Tensor;
  normEps: number;
  residualWeight: boolean;
  /** proj_up.weight [2P, E]: rows 0..P-1 the gate, P..2P-1 the value */
  wUp: Tensor;
  /** proj_down.weight [E, P] */
  wDown: Tensor;
  /** the activation as a native unary op */
  act: UnaryOp;
}

/** @internal x [..., E] float32 on the CPU; shapes are the caller's (GatedFeedForward's) to guarantee. */
export function ffnBlock(x: Tensor, w: FfnBlockWeights): Tensor {
  const E = x.shape[x.ndim - 1], N = x.numel / E, P = w.wDown.shape[1];
  const inputs = [x, w.normWeight, w.wUp, w.wDown];
  const grad = needsGrad(inputs);
  const saved = grad ? uninitF32(native.ffnBlockSavedSize(N, E, P)) : null;  // what the backward reads
  const y = uninitF32(N * E);  // the kernels write y, dx and every gradient in full
  const args = [N, E, P, w.normEps, w.residualWeight, w.act, 1, 0] as const;
  native.ffnBlockForward(y, saved, x.f32(), w.normWeight.f32(), w.wUp.f32(), w.wDown.f32(), ...args);
  const out = new Tensor(y, x.shape);
  if (!grad) return out;
  return record("ffnBlock", inputs, out, ([gy]) => {
    const dx = uninitF32(N * E);
    const dLn = w.normWeight.requiresGrad ? uninitF32(E) : null;
    const dUp = w.wUp.requiresGrad ? uninitF32(w.wUp.numel) : null;
    const dDown = w.wDown.requiresGrad ? uninitF32(w.wDown.numel) : null;
    const dy = gy ? gy.f32() : zeroedF32(N * E);
    native.ffnBlockBackward(dx, dLn, dUp, dDown, dy, x.f32(), saved!, w.normWeight.f32(), w.wUp.f32(), w.wDown.f32(), ...args);
    return [new Tensor(dx, x.shape), dLn && new Tensor(dLn, w.normWeight.shape), dUp && new Tensor(dUp, w.wUp.shape), dDown && new Tensor(dDown, w.wDown.shape)];
  });
}
