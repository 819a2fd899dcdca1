// The mLSTM cell on the CPU (CPU kernels layer; XLSTM_SPEC §4): chunkwise form (§4.5/§4.6; one chunk = the
// parallel form of §4.4) and recurrent step form (§4.3), forward and backward, multithreaded over
// batch × heads (× chunks), register-blocked small tiles read in place (mlstm_tile.h).
//
// Sizes: B batch, NH heads, S steps, DK query/key head dim, DV value head dim, L chunk size, NC = ceil(S/L)
// (the last chunk may be shorter: S need not be a multiple of L; L > S acts as L = S, the parallel form).
// Layouts (row-major):
//   q, k      [B, NH, S, DK]     v, h, dh [B, NH, S, DV]     i, f [B, NH, S]  gate PRE-activations ĩ, f̃
//   c0, c_last [B, NH, DK, DV]   n0, n_last [B, NH, DK]      m0, m_last [B, NH]
// State convention (the ONE used everywhere): the small model's recurrent form (§4.3, keys scaled): C and n hold
// Σ exp(log-gates − m) · (k/√DK) vᵀ, stabilised by m. chunkwise_simple's state is √DK times larger (convert at the
// caller). An absent initial state (c0 = n0 = m0 = nullptr) is the zero state C = n = 0, m = 0.
//
// Stabiliser semantics (§4.7; only the ε term depends on them):
//   parallel_init = false: m_0 = 0 for the zero state (recurrent_step_stabilized_simple, chunkwise_simple):
//                          μ_t = max(F_t + m_0, max_s Λ_ts).
//   parallel_init = true and no initial state: μ_t = max_s Λ_ts exactly as parallel_stabilized_simple (§4.4),
//                          for any chunk size. The returned final state is still given in the m_0 = 0 convention
//                          (m_last = max(m, F_S), C and n rescaled), so it equals the other forms' state.
//   With an initial state every form uses its m: μ_t = max(F_t + m_0, max_s Λ_ts), the exact running max.
// h_t = num_t / (max(|den_t|, exp(−μ_t)) + eps).
//
// Backward (exact mode of §4.6): stabilisers are constants; the normaliser is differentiated (ρ term). Gradients
// are written (=). dc_last / dn_last (nullable) are cotangents of the returned final state; the dependence of m_last
// on the inputs is ignored (the final state is treated as stabiliser-detached, §4.6 caveat), and dm0 is the exact
// ⟨∂C_0, C_0⟩ + ⟨∂n_0, n_0⟩, so chaining calls through the state gives the gradient of one call.
// ∂f̃_t = σ(−f̃_t) · (Σ_{u≥t} (q_u·∂q_u − k_u·∂k_u) + ⟨∂C_last, C_last⟩ + ⟨∂n_last, n_last⟩).
//
// Saved for backward ("saved", from the forward; nullable in the forward when no backward follows):
//   chunkwise, per (b, h) block of mlstm_chunkwise_saved_size(d, L) / (B*NH) floats:
//     C_c  (NC+1) x DK x DV   state entering chunk c (c = NC: the final state, internal stabiliser)
//     n_c  (NC+1) x DK
//     m_c  NC+2               stabiliser entering chunk c (−inf: no state yet), [NC+1] = m_last
//     mu   S                  μ_t          den  S   den_t (signed normaliser before the max)
//   recurrent: per (b, h), the state (C, n, m) entering every segment of kRecurrentSegment steps
//     (the backward recomputes the states inside a segment): NSEG x (DK*DV + DK + 1), NSEG = ceil(S/segment).
// Memory stays O(S·D + (S/L)·D²): the backward recomputes the L×L tiles chunk by chunk.
#pragma once
#include <cstdint>

namespace xlstm {

struct MlstmDims {
  int64_t B, NH, S, DK, DV;
  // The chunkwise form's tile products with both factors rounded to bf16 and float32 sums, on AVX512_BF16's
  // vdpbf16ps: set by the entry points under setFloat32MatmulPrecision("medium") where the CPU has it
  // (medium_on_bf16_pairs, matmul_precision.h); callers leave it false. The recurrent form's products stay float32.
  bool bf16 = false;
};

constexpr int64_t kRecurrentSegment = 16;

int64_t mlstm_num_chunks(int64_t S, int64_t chunk);
int64_t mlstm_chunkwise_saved_size(const MlstmDims& d, int64_t chunk);
int64_t mlstm_recurrent_saved_size(const MlstmDims& d);

// c_last, n_last, m_last: all three or none (nullptr: the final state is not computed; a backward on this `saved`
// must then pass no dc_last / dn_last).
void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init);

// dc0, dn0, dm0 nullable (not computed); dc_last, dn_last nullable (zero cotangent).
void mlstm_chunkwise_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* h, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, int64_t chunk, float eps);

void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps);

void mlstm_recurrent_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, float eps);

namespace mlstm_detail {

// Offsets inside one (b, h) block of the chunkwise `saved` buffer (see the header comment).
struct SavedLayout {
  int64_t NC, DK, DV, S;
  int64_t c_off() const { return 0; }
  int64_t n_off() const { return (NC + 1) * DK * DV; }
  int64_t m_off() const { return n_off() + (NC + 1) * DK; }
  int64_t mu_off() const { return m_off() + NC + 2; }
  int64_t den_off() const { return mu_off() + S; }
  int64_t size() const { return den_off() + S; }
};

// Per-ISA instantiations of mlstm_engine.h (scalar in mlstm.cc, AVX2/AVX-512 in mlstm_avx*.cc).
struct Impl {
  decltype(&mlstm_chunkwise_forward) chunkwise_forward;
  decltype(&mlstm_chunkwise_backward) chunkwise_backward;
  decltype(&mlstm_recurrent_forward) recurrent_forward;
  decltype(&mlstm_recurrent_backward) recurrent_backward;
};

const Impl& impl_scalar();
#ifdef XLSTM_X86
const Impl& impl_avx2();
const Impl& impl_avx512();
#endif

}  // namespace mlstm_detail
}  // namespace xlstm
