// Fused whole-sequence sLSTM and LSTM recurrences on the CPU (CPU kernels layer; XLSTM_SPEC §2, §3).
// One call runs every time step, head and batch row; backward is BPTT in the reference CUDA convention.
//
// Sizes: B batch, S steps, NH heads, DH head dim, H = NH*DH, G = 4*DH, NS states (4 for sLSTM: h, c, n, m;
// 2 for LSTM: h, c). Layouts (row-major):
//   x       [B, S, 4H]   gate pre-activation inputs, last axis (gate i,f,z,o; head; unit) — "BSGNH"
//   R       [NH, DH, 4*DH]  recurrent kernel R[h, j, g*DH + k] (source unit j, gate g, target unit k): the
//                        reference "cuda" layout; block-diagonal per head (memory mixing within heads only).
//                        With d.r_transposed, R is given per head transposed instead: [NH, 4*DH, DH], element
//                        [h, g*DH + k, j] (for one head this is torch.nn.LSTM's weight_hh [4H, H] as it is)
//   bias    [4H]         (gate, head, unit), the order of x
//   state0  [NS, B, H]   initial state, or nullptr for the zero state
//   y       [B, S, H]    h_t for every step (head-major features)
//   states  [NS, S, B, H]  the state after every step (saved for backward; states[:, S-1] is the final state)
//   gates   [B, S, 4H]   saved for backward: the sLSTM's pre-activations p = x + R h_{t-1} + bias; the LSTM's gate
//                        activations (σ(p_i), σ(p_f), tanh(p_z), σ(p_o)) of them (recurrent_cells.h)
// Backward writes (=, not +=) dx [B, S, 4H], dR (R's layout), dbias [4H] and, when non-null, dstate0
// [NS, B, H]. dstate_final [NS, B, H] (nullable) is the cotangent of the final state; its m part is ignored
// (as in the reference). sLSTM's ∂m_0 is 0 (reference CUDA convention) unless exact_m0_grad, which gives the
// vanilla backend's exact δc⊙c_0 + δn⊙n_0.
#pragma once
#include <cstdint>

namespace xlstm {

struct RecurrentDims {
  int64_t B, S, NH, DH;
  bool r_transposed = false;  // R (and dR) [NH, 4DH, DH] instead of [NH, DH, 4DH]
  // The step products (h_{t-1} R forward, dp Rᵀ backward) with both factors rounded to bf16 and float32 sums, on
  // AVX512_BF16's vdpbf16ps: set by the entry points below under setFloat32MatmulPrecision("medium") where the CPU
  // has it and DH is a multiple of 32 (recurrent_bf16_products); callers leave it false.
  bool bf16 = false;
};

// Whether the step products of a call with these dims run on bf16 pairs now (see RecurrentDims::bf16).
bool recurrent_bf16_products(const RecurrentDims& d);

void slstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                   const float* bias, const RecurrentDims& d);
void slstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                    const float* dy, const float* dstate_final, const float* state0, const float* R,
                    const RecurrentDims& d, bool exact_m0_grad);

void lstm_forward(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                  const float* bias, const RecurrentDims& d);
void lstm_backward(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                   const float* dy, const float* dstate_final, const float* state0, const float* R,
                   const RecurrentDims& d);

namespace recurrent_detail {

// Per-ISA instantiations of recurrent_engine.h (scalar in recurrent.cc, AVX2/AVX-512 in recurrent_avx*.cc).
struct Impl {
  void (*slstm_forward)(float*, float*, float*, const float*, const float*, const float*, const float*,
                        const RecurrentDims&);
  void (*slstm_backward_seq)(float*, float*, const float*, const float*, const float*, const float*, const float*,
                             const float*, const RecurrentDims&, bool);
  void (*lstm_forward)(float*, float*, float*, const float*, const float*, const float*, const float*,
                       const RecurrentDims&);
  void (*lstm_backward_seq)(float*, float*, const float*, const float*, const float*, const float*, const float*,
                            const float*, const RecurrentDims&, bool);
};

const Impl& impl_scalar();
#ifdef XLSTM_X86
const Impl& impl_avx2();
const Impl& impl_avx512();
#endif

}  // namespace recurrent_detail
}  // namespace xlstm
