// The whole mLSTM layer (the reference's pre-up-projection block body, XLSTM_SPEC §6.1) as ONE fused CPU op,
// forward and backward (CPU kernels layer). It computes exactly what lib/nn/mlstm-layer.ts composes from single
// ops (proj_up, causal conv + SiLU, block-diagonal q/k/v, gate projections, chunkwise mLSTM cell, per-head output
// norm, learnable skip, SiLU(z) output gate, proj_down) but keeps every intermediate in native memory: no tape
// entries, allocations or layout copies per sub-op. Used for the training / full-sequence path (no initial state,
// no returned state, no projection biases); the composed path covers the rest.
//
// Sizes: B batch, S steps, N = B*S rows, E embedding, Di inner (up-projected) width, NH heads, DH = Di/NH,
// Bq the q/k/v block size (NP = Di/Bq blocks), K conv kernel, L cell chunk (the "auto" form: min(64, S),
// parallel stabiliser from the zero state).
// Layouts (row-major): x, y, dx, dy [B, S, E]; parameters as the reference stores them:
//   w_up [2Di, E] (rows 0..Di-1 the mLSTM branch x_m, Di..2Di-1 the gate branch z), w_conv [Di, K], b_conv [Di],
//   w_q, w_k, w_v [NP, Bq, Bq], w_i, w_f [NH, 3Di] (input concat(q, k, v)), b_i, b_f [NH], w_norm [Di] (residual
//   weight: gamma = 1 + w), skip [Di], w_down [E, Di].
// Forward:  x_m = x W_up[:Di]ᵀ, z = x W_up[Di:]ᵀ, x_c = SiLU(conv(x_m)), q = hw(x_c, W_q), k = hw(x_c, W_k),
//           v = hw(x_m, W_v), ĩ = [q k v] W_iᵀ + b_i, f̃ likewise, h = mLSTM(q, k, v, ĩ, f̃) per head,
//           h_s = MHLN(h) + skip ⊙ x_c, y = (h_s ⊙ SiLU(z)) W_downᵀ.
// "saved" (mlstm_layer_saved_size floats) holds the intermediates the backward reads; the forward may be given
// none (inference: intermediates in a temporary buffer). Backward writes every gradient with `=`.
// Block form (d.block): the op is the whole pre-norm residual half of an xLSTM block around the layer,
//   y = x + layer(LN(x)),  LN = layer norm over E with weight ln_w (gamma = 1 + w when ln_residual) and no bias,
// LN(x) and its statistics saved; the backward adds dy to LN's input gradient and writes d ln_w (nullable).
// The same arithmetic as the composed layer_norm_forward, layer and residual add (the add happens in the last
// product's epilogue: y = 1·(out W_downᵀ) + 1·x, one rounding like the add).
#pragma once
#include <cstdint>

namespace xlstm {

struct MlstmLayerDims {
  int64_t B, S, E, Di, NH, Bq, K, chunk;
  float cell_eps, norm_eps;
  bool block = false;        // the block form (above)
  float ln_eps = 1e-5f;      // its layer norm's eps
  bool ln_residual = true;   // and weight form: gamma = 1 + ln_w (else ln_w)
};

struct MlstmLayerParams {
  const float *w_up, *w_conv, *b_conv, *w_q, *w_k, *w_v, *w_i, *b_i, *w_f, *b_f, *w_norm, *skip, *w_down;
  const float* ln_w = nullptr;  // [E], the block form's layer norm weight
};

struct MlstmLayerGrads {
  float *w_up, *w_conv, *b_conv, *w_q, *w_k, *w_v, *w_i, *b_i, *w_f, *b_f, *w_norm, *skip, *w_down;
  float* ln_w = nullptr;  // block form, nullable: d ln_w not computed
};

// Element counts of each parameter, in MlstmLayerParams order (for the binding's checks).
void mlstm_layer_param_sizes(const MlstmLayerDims& d, int64_t out[13]);
int64_t mlstm_layer_saved_size(const MlstmLayerDims& d);
void mlstm_layer_forward(float* y, float* saved, const float* x, const MlstmLayerParams& p, const MlstmLayerDims& d);
void mlstm_layer_backward(float* dx, const MlstmLayerGrads& g, const float* dy, const float* x, const float* saved,
                          const MlstmLayerParams& p, const MlstmLayerDims& d);

namespace mlstm_layer_detail {
// The pointwise parts, compiled once per ISA (mlstm_layer_engine.h). Each works on elements [begin, end) of
// row-major [rows, Di] arrays (rows folded into the index) or rows [begin, end).
struct Pointwise {
  // y = SiLU(conv), conv = causal depthwise conv of x [rows, F] (weight transposed: wt [K, F]) + bias; rows [r0, r1)
  void (*conv_silu)(float* y, const float* x, const float* wt, const float* bias, int64_t r0, int64_t r1, int64_t S,
                    int64_t F, int64_t K);
  // g ⊙= SiLU'(conv) in place (conv recomputed from x, bit for bit the forward's); partial sums pw [K, F] += g ⊙
  // shifted x, pb [F] += g   over rows [r0, r1)
  void (*silu_conv_grads)(float* g, float* pw, float* pb, const float* x, const float* wt, const float* bias,
                          int64_t r0, int64_t r1, int64_t S, int64_t F, int64_t K);
  // dx (+=) the conv's transpose applied to g, rows [r0, r1)
  void (*conv_dx)(float* dx, const float* g, const float* wt, int64_t r0, int64_t r1, int64_t S, int64_t F, int64_t K);
  // out = hs ⊙ SiLU(z), hs = hn + skip ⊙ xc   over rows [r0, r1) of width Di (hn may be out itself; hs is not stored)
  void (*skip_gate)(float* out, const float* hn, const float* skip, const float* xc, const float* z, int64_t r0,
                    int64_t r1, int64_t Di);
  // row r (= b·S + s) of [rows, Di = NH·DH] arrays: dhs = dout ⊙ SiLU(z) (dhs: that row only, [Di]);  dz = dout ⊙
  // hs ⊙ SiLU'(z), hs evaluated again (bit for bit) from h_c (head layout [B, NH, S, DH]) and the row's norm
  // statistics mean / rstd [NH];  dxc = dhs ⊙ skip
  void (*skip_gate_backward)(float* dhs, float* dz, float* dxc, const float* dout, const float* hc, const float* mean,
                             const float* rstd, const float* w_norm, const float* skip, const float* xc,
                             const float* z, int64_t r, int64_t S, int64_t NH, int64_t DH);
  // ig, fg [B, NH, S] = u W_iᵀ + b_i, u W_fᵀ + b_f for rows [r0, r1); u [r1 - r0, ld] holds those rows (ld = 3Di)
  void (*gates_forward)(float* ig, float* fg, const float* u, const float* w_i, const float* w_f, const float* b_i,
                        const float* b_f, int64_t r0, int64_t r1, int64_t S, int64_t NH, int64_t ld);
  // the gate projections' backward for the rows [r0, r1) of one row block (mlstm_layer_engine.h): the block's partial
  // sums dW_i, dW_f [NH, 3Di] (=), and du [r1 - r0, 3Di] (=) the block's rows of d concat(q, k, v) in the row layout:
  // dX[part] (head layout [B, NH, S, DH]) moved over plus the gates' share
  void (*gates_backward)(float* du, const float* const dX[3], float* dw_i, float* dw_f, const float* const X[3],
                         const float* di, const float* df, const float* w_i, const float* w_f, int64_t r0, int64_t r1,
                         int64_t S, int64_t NH, int64_t DH);
};
const Pointwise& pointwise_scalar();
#ifdef XLSTM_X86
const Pointwise& pointwise_avx2();
const Pointwise& pointwise_avx512();
#endif
}  // namespace mlstm_layer_detail

}  // namespace xlstm
