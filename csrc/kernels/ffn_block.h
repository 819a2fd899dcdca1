// The feed-forward half of an xLSTM block as ONE fused CPU op, forward and backward (CPU kernels layer):
//   y = x + FFN(LN(x)),  FFN(u) = act(u W_g ᵀ) ⊙ (u W_v ᵀ) W_downᵀ   (W_up = [W_g; W_v] [2P, E], W_down [E, P])
// with LN the block's layer norm over E (weight ln_w, gamma = 1 + w when ln_residual, no bias). Exactly the
// composed ops' arithmetic (layer_norm_forward, the linear GEMMs, gated_unary, the residual as the down product's
// epilogue C = x: one rounding, as a separate add), so the same values as lib/nn composing them.
// Sizes: N rows, E embedding, P the projection's hidden width. Layouts row-major: x, y, dx, dy [N, E].
// saved (ffn_block_saved_size floats): LN(x) [N, E], mean / rstd [N], h = LN(x) W_upᵀ [N, 2P], a = act(h_g) ⊙ h_v
// [N, P]; the forward may be given none (inference). Backward writes every gradient with `=` (nullable ones skipped).
#pragma once
#include <cstdint>

#include "kernels/elementwise_math.h"

namespace xlstm {

struct FfnBlockDims {
  int64_t N, E, P;
  float ln_eps;
  bool ln_residual;
  UnaryOp act;
  float act_a, act_b;  // the unary op's alpha / beta
};

int64_t ffn_block_saved_size(const FfnBlockDims& d);
void ffn_block_forward(float* y, float* saved, const float* x, const float* ln_w, const float* w_up,
                       const float* w_down, const FfnBlockDims& d);
void ffn_block_backward(float* dx, float* d_ln_w, float* d_w_up, float* d_w_down, const float* dy, const float* x,
                        const float* saved, const float* ln_w, const float* w_up, const float* w_down,
                        const FfnBlockDims& d);

}  // namespace xlstm
