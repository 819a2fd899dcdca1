// The mLSTM algorithms behind mlstm.h (XLSTM_SPEC §4.3–§4.6), written once and compiled per ISA (mlstm.cc:
// portable flags, mlstm_avx2.cc, mlstm_avx512.cc): the compiler vectorises the pointwise loops for each target, and
// the chunk tiles go through the register-blocked small-tile products of mlstm_tile.h (vector width from the same
// flags; operands read in place, causal triangles skipped, sums of products and rank-1 / row-scale / γ-state terms
// fused into one pass).
// Everything has internal linkage (anonymous namespace) so the per-ISA copies never merge at link time.
//
// Chunkwise form, per (b, h), chunk c of length l holding positions t0 .. t0+l-1 (in-chunk index τ, σ):
//   φ = logσ(f̃) (double), b_τ = Σ_{r≤τ} φ (in-chunk inclusive cumsum), g = b_{l-1},
//   a_τ = Σ_{r>τ} φ + ĩ_τ (suffix sum, §11.1), w_σ = ĩ_σ − b_σ,
//   M_τ = max(m_c, max_{σ≤τ} w_σ)  so that  μ_τ = b_τ + M_τ  and  D̃_τσ − μ_τ = w_σ − M_τ,  β_τ = exp(m_c − M_τ).
// Gate sums, maxima and the arguments of the exponentials are formed in double and rounded once, so the L×L
// exponentials E_τσ = exp(w_σ − M_τ) are accurate to float rounding even when |b| is large (long single chunks).
// Every such exponential has an argument ≤ 0 (E, β, α = exp(a − m_{c+1}), the separable factors of E) and is taken
// in float (mtile::exp_f / exp_v): its error relative to the largest term of the sum it enters stays at float
// rounding (|x| e^x ≤ 1/e times the argument's rounding). φ itself stays in double (logsig_v, vectorised).
//
// Work split (schedules in the chunkwise section below): per (b, h) the inter-chunk recurrence of (C, n, m) is
// sequential over chunks (one DK×DV×l product per chunk), the intra-chunk part is the causal half of QKᵀ, then
// P·V + βQ·C_c in one pass; the backward runs the reverse recurrence of the state cotangents Λ_c (one product per
// chunk) and recomputes the L×L tiles for the gradient products, then a suffix sum gives ∂f̃. The fused schedules
// prefetch the next chunk's rows from inside the tile products. The recurrent form runs one task per (b, h) over all
// steps.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/mlstm.h"
#include "kernels/mlstm_math.h"
#include "kernels/mlstm_tile.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

using mlstm_detail::SavedLayout;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// logσ / σ / the step gates: mlstm_math.h (shared with the CUDA twin, cuda/mlstm.cu)
using mlstm_math::logsig_d;
using mlstm_math::logsig_v;
using mlstm_math::sigmoid_d;
using mlstm_math::step_gates;
using mlstm_math::StepGates;

// The normaliser floor exp(−μ): the float exp (vectorised by the caller, `fast`) where exp(−μ) is a normal float,
// else in double.
inline double floor_exp(float mu, float fast) {
  return (mu > -80.0f && mu < 80.0f) ? static_cast<double>(fast) : std::exp(-static_cast<double>(mu));
}

// Σ_j q_j p_j and Σ_j k_j r_j in double (the float products are exact in double), 8 lanes at a time.
inline void dots_d(const float* q, const float* p, const float* k, const float* r, int64_t n, double* qp, double* kr) {
  typedef double vd8 __attribute__((vector_size(64)));
  typedef float vf8 __attribute__((vector_size(32), aligned(4), may_alias));
#define XLSTM_LD8(x) __builtin_convertvector(*reinterpret_cast<const vf8*>(x), vd8)
  vd8 aq = vd8{}, ak = vd8{};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    aq += XLSTM_LD8(q + j) * XLSTM_LD8(p + j);
    ak += XLSTM_LD8(k + j) * XLSTM_LD8(r + j);
  }
#undef XLSTM_LD8
  for (int u = 0; j < n; ++j, ++u) {
    aq[u] += static_cast<double>(q[j]) * static_cast<double>(p[j]);
    ak[u] += static_cast<double>(k[j]) * static_cast<double>(r[j]);
  }
  *qp = ((aq[0] + aq[4]) + (aq[2] + aq[6])) + ((aq[1] + aq[5]) + (aq[3] + aq[7]));
  *kr = ((ak[0] + ak[4]) + (ak[2] + ak[6])) + ((ak[1] + ak[5]) + (ak[3] + ak[7]));
}

// Gate quantities of one chunk (see the file comment). b, w, a, M have l entries; M only when want_M.
struct ChunkGates {
  std::vector<double> phi, b, w, a, M;
  double g = 0.0;
  void resize(int64_t L) {
    phi.resize(L);
    b.resize(L);
    w.resize(L);
    a.resize(L);
    M.resize(L);
  }
  // f, i point at the chunk's first position. has: a state enters the chunk (m_c finite).
  void compute(const float* f, const float* i, int64_t l, bool has, double mc) {
    double* ph = phi.data();
#pragma omp simd
    for (int64_t t = 0; t < l; ++t) ph[t] = logsig_v(static_cast<double>(f[t]));
    double acc = 0.0;
    for (int64_t t = 0; t < l; ++t) {
      acc += phi[t];
      b[t] = acc;
      w[t] = static_cast<double>(i[t]) - acc;
    }
    g = acc;
    double suf = 0.0;  // Σ_{r>τ} φ_r, accumulated from the end (§11.1)
    for (int64_t t = l - 1; t >= 0; --t) {
      a[t] = suf + static_cast<double>(i[t]);
      suf += phi[t];
    }
    double run = has ? mc : kNegInf;
    for (int64_t t = 0; t < l; ++t) {
      run = std::max(run, w[t]);
      M[t] = run;
    }
  }
};

inline int64_t chunk_len(int64_t S, int64_t L, int64_t c) { return std::min(L, S - c * L); }

// ---------------------------------------------------------------------------------------------------------------
// Chunkwise form (XLSTM_SPEC §4.5 forward, §4.6 backward), as per-chunk steps shared by two schedules:
//   fused (every thread owns whole heads: B*NH is a multiple of the thread count or much larger): one pass per
//          (b, h) over the chunks, forward in order and backward in reverse, so each chunk's q/k/v tiles are used
//          while they are in cache and the backward keeps only the current Λ (no per-chunk Λ buffer);
//   split  (fewer heads than threads): the sequential recurrences per (b, h) first, then every (b, h, chunk) in
//          parallel from the saved chunk states / Λ_c.
// Both schedules run the same per-chunk code in the same order per chunk, so they give identical bits.
//
// Tiles (mlstm_tile.h, operands read in place): the L×L products are causal, so Q Kᵀ and δ Vᵀ compute only the
// column blocks up to each row block's diagonal, and the products with P or Ω (P V, Ω K, Ωᵀ Q, Pᵀ δ) read only the
// nonzero triangle; the decay E_τσ = exp(w_σ − M_τ) is applied row by row right after (it is never stored). Sums
// of two products (P V + (β ⊙ Q) C_c, ...) accumulate in one pass, and rank-1 terms (β ρ n_cᵀ, s α Λⁿᵀ), row
// scales (1 / normaliser) and the γ-scaled previous state go into the tile epilogue. The A Bᵀ-shaped products read
// a transposed copy of B (Kᵀ, Vᵀ, C_cᵀ, Λᶜᵀ: one per chunk).

struct CwCtx {
  int64_t S, DK, DV, L, NC, W;
  SavedLayout lay;
  float s, eps;
  bool bf16;  // MlstmDims::bf16: the tile products on bf16 pairs
  const float *q, *k, *v, *ig, *fg;
  float* saved;
  CwCtx(const MlstmDims& d, int64_t L_, float eps_, const float* q_, const float* k_, const float* v_, const float* i_,
        const float* f_, float* saved_)
      : S(d.S), DK(d.DK), DV(d.DV), L(std::min(L_, d.S)), NC(mlstm_num_chunks(d.S, L_)), W(0), lay{NC, d.DK, d.DV, d.S},
        s(static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.DK)))), eps(eps_), bf16(d.bf16), q(q_), k(k_),
        v(v_), ig(i_), fg(f_), saved(saved_) {
    W = lay.size();
  }
  // a tile epilogue with the thread's prefetcher and this call's product precision
  template <class Scratch>
  mtile::Epi epi(Scratch& w) const {
    mtile::Epi e;
    e.pf = &w.pf;
    e.bf16 = bf16;
    return e;
  }
  int64_t len(int64_t c) const { return chunk_len(S, L, c); }
  float* sv(int64_t bh) const { return saved + bh * W; }
  float* C(int64_t bh, int64_t c) const { return sv(bh) + lay.c_off() + c * DK * DV; }
  float* n(int64_t bh, int64_t c) const { return sv(bh) + lay.n_off() + c * DK; }
  float* m(int64_t bh) const { return sv(bh) + lay.m_off(); }
  float* mu(int64_t bh) const { return sv(bh) + lay.mu_off(); }
  float* den(int64_t bh) const { return sv(bh) + lay.den_off(); }
  // rows of chunk c
  const float* Q(int64_t bh, int64_t c) const { return q + (bh * S + c * L) * DK; }
  const float* K(int64_t bh, int64_t c) const { return k + (bh * S + c * L) * DK; }
  const float* V(int64_t bh, int64_t c) const { return v + (bh * S + c * L) * DV; }
  void gates(ChunkGates& cg, int64_t bh, int64_t c, bool has, double mc) const {
    cg.compute(fg + bh * S + c * L, ig + bh * S + c * L, len(c), has, mc);
  }
};

// Per-thread work buffers, kept between calls (thread_local) unless they grew past kKeepFloats.
struct CwScratch {
  static constexpr size_t kKeepFloats = size_t(1) << 20;
  ChunkGates cg;
  std::vector<float> P, Om, KT, VT, CT, LT, rows_k, rows_v, db, delta, LC, LN, rho, br, beta, alpha, inv, dec_a, dec_b;
  std::vector<double> r;
  mtile::Prefetcher pf;  // the next chunk's rows (fused schedules; empty otherwise)
  size_t floats = 0;
  template <class T>
  void fit(std::vector<T>& b, int64_t n) {
    if (b.size() < static_cast<size_t>(n)) b.resize(static_cast<size_t>(n));
    floats += b.size();
  }
  void prepare(const CwCtx& x, bool backward) {
    const int64_t L = x.L, DK = x.DK, DV = x.DV;
    floats = 0;
    pf.clear();
    cg.resize(L);
    fit(P, L * L);
    fit(dec_a, (L / mtile::kVW + 1) * L);
    fit(dec_b, L);
    fit(KT, DK * L);
    fit(rows_k, L * DK);
    fit(beta, L);
    fit(inv, L);
    fit(alpha, L);
    if (backward) {
      fit(Om, L * L);
      fit(VT, DV * L);
      fit(CT, DV * DK);
      fit(LT, DV * DK);
      fit(rows_v, L * DV);
      fit(db, L * DV);
      fit(delta, L * DV);
      fit(LC, DK * DV);
      fit(LN, DK);
      fit(rho, L);
      fit(br, L);
      fit(r, L);
    }
  }
  void release_if_large() {
    if (floats > kKeepFloats) *this = CwScratch();
  }
};

CwScratch& cw_scratch(const CwCtx& x, bool backward) {
  thread_local CwScratch w;
  w.prepare(x, backward);
  return w;
}

// β_τ = exp(m_c − M_τ) (≤ 1), 0 without a state entering the chunk
inline void chunk_beta(CwScratch& w, int64_t l, bool has, double mc) {
  float* beta = w.beta.data();
  if (!has) {
    std::fill_n(beta, l, 0.0f);
    return;
  }
  const double* M = w.cg.M.data();
#pragma omp simd
  for (int64_t t = 0; t < l; ++t) beta[t] = mtile::exp_f(static_cast<float>(mc - M[t]));
}

// The decay E_τσ = exp(w_σ − M_τ) left of each row's diagonal vector block, in separable form: for a block g of
// kVW columns wholly at or before row τ, c_g = max_{σ∈g} w_σ ≤ M_τ and E_τσ = exp(w_σ − c_g) · exp(c_g − M_τ), both
// factors ≤ 1 with their arguments formed in double and rounded once (so the error stays that of the direct form,
// |w_σ − M_τ| · 2⁻²⁴ plus a few ulp). Exponentials per chunk: l + l²/kVW/2 instead of l²/2.
// dec_b[σ] = exp(w_σ − c_g); dec_a[g·l + τ] = exp(c_g − M_τ) for τ from block g+1 on.
inline void decay_factors(CwScratch& w, int64_t l) {
  constexpr int64_t V = mtile::kVW;
  const double* wv = w.cg.w.data();
  const double* M = w.cg.M.data();
  float* b = w.dec_b.data();
  float* a = w.dec_a.data();
  for (int64_t g = 0; (g + 2) * V <= l; ++g) {
    double cmax = wv[g * V];
    for (int64_t e = g * V + 1; e < (g + 1) * V; ++e) cmax = std::max(cmax, wv[e]);
#pragma omp simd
    for (int64_t e = g * V; e < (g + 1) * V; ++e) b[e] = mtile::exp_f(static_cast<float>(wv[e] - cmax));
    float* ag = a + g * l;
#pragma omp simd
    for (int64_t t = (g + 1) * V; t < l; ++t) ag[t] = mtile::exp_f(static_cast<float>(cmax - M[t]));
  }
}

// Above the diagonal of row t, the triangular tile products read columns up to the end of t's row block only
// (mtile::kLower / kUpper), so only those are zeroed.
inline int64_t causal_zero_end(int64_t t, int64_t l) { return std::min(l, (t / mtile::kMR + 1) * mtile::kMR); }
// Row t of a causal tile product with lower_out holds computed values up to this column (whole vectors past t).
inline int64_t causal_vec_end(int64_t t, int64_t l) { return std::min(l, (t / mtile::kVW + 1) * mtile::kVW); }

bool fused_schedule(int64_t BH) {
  const int64_t T = num_threads();
  return BH % T == 0 || BH >= 4 * T;
}

// ---- forward steps

// The state entering chunk 0: the given one, or zeros with m_0 = 0 (−inf with parallel semantics: no state).
void fw_init_state(const CwCtx& x, int64_t bh, const float* c0, const float* n0, const float* m0, bool empty_init) {
  const int64_t DK = x.DK, DV = x.DV;
  if (c0) {
    std::memcpy(x.C(bh, 0), c0 + bh * DK * DV, sizeof(float) * DK * DV);
    std::memcpy(x.n(bh, 0), n0 + bh * DK, sizeof(float) * DK);
    x.m(bh)[0] = m0[bh];
  } else {
    std::fill_n(x.C(bh, 0), DK * DV, 0.0f);
    std::fill_n(x.n(bh, 0), DK, 0.0f);
    x.m(bh)[0] = empty_init ? -std::numeric_limits<float>::infinity() : 0.0f;
  }
}

// Inter-chunk recurrence step (cg computed for chunk c): m_{c+1} = max(g_c + m_c, max_τ a_τ),
// γ_c = exp(g_c + m_c − m_{c+1}), C_{c+1} = γ C_c + Σ_τ α_τ (s k_τ) v_τᵀ, n_{c+1} = γ n_c + Σ_τ α_τ s k_τ.
// full = false: only the stabiliser m_{c+1} (the backward reads it), not C_{c+1} and n_{c+1} (the last chunk's
// update when the final state is not asked for: ~10 % of the forward's products at 4 chunks).
void fw_state_step(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, bool full = true) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c);
  const ChunkGates& cg = w.cg;
  float* Ms = x.m(bh);
  const double mc = Ms[c];
  const bool has = std::isfinite(mc);
  double amax = kNegInf;
  for (int64_t t = 0; t < l; ++t) amax = std::max(amax, cg.a[t]);
  const float mn = static_cast<float>(has ? std::max(cg.g + mc, amax) : amax);
  if (!full) {
    Ms[c + 1] = mn;
    return;
  }
  const float gamma = has ? static_cast<float>(std::exp(cg.g + mc - mn)) : 0.0f;
  const float* K = x.K(bh, c);
  float* Ks = w.rows_k.data();
  float* al = w.alpha.data();
#pragma omp simd
  for (int64_t t = 0; t < l; ++t) al[t] = x.s * mtile::exp_f(static_cast<float>(cg.a[t] - static_cast<double>(mn)));
  for (int64_t t = 0; t < l; ++t) {
    const float at = al[t];
    const float* kr = K + t * DK;
    float* dst = Ks + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) dst[j] = at * kr[j];
  }
  const float* Cc = x.C(bh, c);
  float* Cn = x.C(bh, c + 1);
  // C_{c+1} = (s α ⊙ K)ᵀ V + γ C_c
  const mtile::Seg kv{Ks, 1, DK, x.V(bh, c), DV, l, mtile::kFull};
  mtile::Epi ep = x.epi(w);
  if (gamma != 0.0f) ep.beta = gamma, ep.cin = Cc, ep.ldcin = DV;
  mtile::gemm_tile(DK, DV, &kv, 1, Cn, DV, ep);
  const float* nc = x.n(bh, c);
  float* nn = x.n(bh, c + 1);
  for (int64_t j = 0; j < DK; ++j) nn[j] = gamma * nc[j];
  for (int64_t t = 0; t < l; ++t) {
    const float* kr = Ks + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) nn[j] += kr[j];
  }
  Ms[c + 1] = mn;
}

// Intra-chunk outputs (cg computed for chunk c with M): P = s (Q Kᵀ) ⊙ E, num = P V + (β ⊙ Q) C_c,
// den_τ = Σ_σ P_τσ + β_τ q_τ·n_c, h = num / (max(|den|, exp(−μ)) + ε); saves μ and den.
void fw_chunk_out(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, float* h) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c), t0 = c * x.L;
  const ChunkGates& cg = w.cg;
  const double mc = x.m(bh)[c];
  const bool has = std::isfinite(mc);
  float* mu = x.mu(bh) + t0;
  float* den = x.den(bh) + t0;
  const float *Q = x.Q(bh, c), *K = x.K(bh, c), *V = x.V(bh, c);
  float* Hc = h + (bh * x.S + t0) * DV;
  float* P = w.P.data();
  for (int64_t t = 0; t < l; ++t) mu[t] = static_cast<float>(cg.b[t] + cg.M[t]);
  chunk_beta(w, l, has, mc);
  // the causal half of s Q Kᵀ, then ⊙ E row by row (0 above the diagonal); row sums: the intra-chunk den
  mtile::transpose(K, l, DK, DK, w.KT.data(), l);
  const mtile::Seg qk{Q, DK, 1, w.KT.data(), l, DK, mtile::kFull};
  mtile::Epi eqk = x.epi(w);
  eqk.alpha = x.s;
  mtile::gemm_tile(l, l, &qk, 1, P, l, eqk, true);
  const double* wv = cg.w.data();
  const mtile::vi lane = mtile::lane_index();
  decay_factors(w, l);
  for (int64_t t = 0; t < l; ++t) {
    float* row = P + t * l;
    const double Mt = cg.M[t];
    // whole vectors up to the diagonal (computed by the tile product; the select drops what lies above it)
    const int64_t ce = causal_vec_end(t, l);
    if (ce % mtile::kVW == 0) {
      mtile::vf rs = mtile::vf{};
      const int64_t ed = ce - mtile::kVW;  // the diagonal vector block
      for (int64_t e = 0; e < ed; e += mtile::kVW) {
        mtile::vf& pv = *reinterpret_cast<mtile::vf*>(row + e);
        pv *= w.dec_a[(e / mtile::kVW) * l + t] * *reinterpret_cast<const mtile::vf*>(w.dec_b.data() + e);
        rs += pv;
      }
      const mtile::vf ex = mtile::exp_v(__builtin_convertvector(*reinterpret_cast<const mtile::vd*>(wv + ed) - Mt, mtile::vf));
      mtile::vf& pv = *reinterpret_cast<mtile::vf*>(row + ed);
      pv = lane + static_cast<int32_t>(ed) <= static_cast<int32_t>(t) ? pv * ex : mtile::vf{};
      rs += pv;
      den[t] = mtile::hsum(rs);
    } else {
#pragma omp simd
      for (int64_t e = 0; e < ce; ++e) {
        const float p = row[e] * mtile::exp_f(static_cast<float>(wv[e] - Mt));
        row[e] = e <= t ? p : 0.0f;
      }
      den[t] = mtile::sum(row, ce);
    }
    for (int64_t e = ce; e < causal_zero_end(t, l); ++e) row[e] = 0.0f;
  }
  float* Qb = w.rows_k.data();
  if (has) {
    const float* nc = x.n(bh, c);
    for (int64_t t = 0; t < l; ++t) {
      den[t] += mtile::scale_dot(Qb + t * DK, Q + t * DK, w.beta[t], nc, DK, true);
    }
  }
  float* inv = w.inv.data();
#pragma omp simd
  for (int64_t t = 0; t < l; ++t) inv[t] = mtile::exp_f(-mu[t]);
  for (int64_t t = 0; t < l; ++t) {
    const double dd = std::max(std::fabs(static_cast<double>(den[t])), floor_exp(mu[t], inv[t]));
    inv[t] = static_cast<float>(1.0 / (dd + x.eps));
  }
  // h = (P V + (β ⊙ Q) C_c) / normaliser, P read below the diagonal only
  const mtile::Seg pv[2] = {{P, l, 1, V, DV, l, mtile::kLower}, {Qb, DK, 1, x.C(bh, c), DV, DK, mtile::kFull}};
  mtile::Epi eo = x.epi(w);
  eo.rs = w.inv.data();
  mtile::gemm_tile(l, DV, pv, has ? 2 : 1, Hc, DV, eo);
}

// The final state, in the m_0 = 0 convention also after a parallel-semantics run (m_last = max(m, F_S)).
void fw_finish(const CwCtx& x, int64_t bh, double F, bool empty_init, float* c_last, float* n_last, float* m_last) {
  const int64_t DK = x.DK, DV = x.DV, NC = x.NC;
  float* Ms = x.m(bh);
  const float mint = Ms[NC];
  const float mout = empty_init ? static_cast<float>(std::max(static_cast<double>(mint), F)) : mint;
  const float scale = static_cast<float>(std::exp(static_cast<double>(mint) - mout));
  Ms[NC + 1] = mout;
  const float* Cf = x.C(bh, NC);
  const float* nf = x.n(bh, NC);
  float* cl = c_last + bh * DK * DV;
#pragma omp simd
  for (int64_t e = 0; e < DK * DV; ++e) cl[e] = scale * Cf[e];
  for (int64_t j = 0; j < DK; ++j) n_last[bh * DK + j] = scale * nf[j];
  m_last[bh] = mout;
}

void cw_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q, const float* k,
                const float* v, const float* ig, const float* fg, const float* c0, const float* n0, const float* m0,
                const MlstmDims& d, int64_t L, float eps, bool parallel_init) {
  const CwCtx x(d, L, eps, q, k, v, ig, fg, saved);
  const int64_t BH = d.B * d.NH, NC = x.NC;
  const bool empty_init = parallel_init && c0 == nullptr;
  const bool want_final = c_last != nullptr;  // else the last chunk's state update is skipped (see fw_state_step)
  // the q/k/v rows of the chunk after (bh, c) in a thread's order (up to head hi), fetched while (bh, c) computes
  auto prefetch_next = [&](mtile::Prefetcher& pf, int64_t bh, int64_t c, int64_t hi) {
    pf.clear();
    if (++c == NC) c = 0, ++bh;
    if (bh >= hi) return;
    const int64_t l = x.len(c);
    pf.add(x.K(bh, c), l * d.DK);
    pf.add(x.Q(bh, c), l * d.DK);
    pf.add(x.V(bh, c), l * d.DV);
  };
  auto recurrence = [&](int64_t bh, int64_t hi, CwScratch& w, bool outputs) {
    fw_init_state(x, bh, c0, n0, m0, empty_init);
    double F = 0.0;  // Σ of every φ: the log-decay of the zero-state term
    for (int64_t c = 0; c < NC; ++c) {
      prefetch_next(w.pf, bh, c, hi);
      const double mc = x.m(bh)[c];
      x.gates(w.cg, bh, c, std::isfinite(mc), mc);
      F += w.cg.g;
      if (outputs) fw_chunk_out(x, w, bh, c, h);
      fw_state_step(x, w, bh, c, want_final || c + 1 < NC);
    }
    if (want_final) fw_finish(x, bh, F, empty_init, c_last, n_last, m_last);
  };
  if (fused_schedule(BH)) {
    parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
      CwScratch& w = cw_scratch(x, false);
      for (int64_t bh = lo; bh < hi; ++bh) recurrence(bh, hi, w, true);
      w.release_if_large();
    });
    return;
  }
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    CwScratch& w = cw_scratch(x, false);
    for (int64_t bh = lo; bh < hi; ++bh) recurrence(bh, hi, w, false);
    w.release_if_large();
  });
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    CwScratch& w = cw_scratch(x, false);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      const double mc = x.m(bh)[c];
      x.gates(w.cg, bh, c, std::isfinite(mc), mc);
      fw_chunk_out(x, w, bh, c, h);
    }
    w.release_if_large();
  });
}

// ---- backward steps

// δ_τ = G_τ / (d_τ + ε) (l × DV) and ρ_τ = −sgn(den_τ) (G_τ·h_τ) / (d_τ + ε) where |den_τ| > exp(−μ_τ), else 0
// (XLSTM_SPEC §4.6, exact mode).
inline void output_cotangents(float* delta, float* rho, float* tmp, const float* G, const float* H, const float* mu,
                              const float* den, int64_t l, int64_t DV, float eps) {
#pragma omp simd
  for (int64_t t = 0; t < l; ++t) tmp[t] = mtile::exp_f(-mu[t]);
  for (int64_t t = 0; t < l; ++t) {
    const double floor_ = floor_exp(mu[t], tmp[t]);
    const double a = std::fabs(static_cast<double>(den[t]));
    const double dd = std::max(a, floor_);
    const float inv = static_cast<float>(1.0 / (dd + eps));
    const float gh = mtile::scale_dot(delta + t * DV, G + t * DV, inv, H + t * DV, DV);
    rho[t] = a > floor_ ? (den[t] > 0 ? -gh * inv : gh * inv) : 0.0f;
  }
}

// Per-chunk quantities of the backward: gates with M, β, δ, ρ, and with a state entering the chunk
// db = β ⊙ δ, br = β ⊙ ρ.
void bw_prepare(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, const float* h, const float* dh) {
  const int64_t l = x.len(c), t0 = c * x.L, DV = x.DV;
  const double mc = x.m(bh)[c];
  const bool has = std::isfinite(mc);
  x.gates(w.cg, bh, c, has, mc);
  chunk_beta(w, l, has, mc);
  output_cotangents(w.delta.data(), w.rho.data(), w.inv.data(), dh + (bh * x.S + t0) * DV, h + (bh * x.S + t0) * DV,
                    x.mu(bh) + t0, x.den(bh) + t0, l, DV, x.eps);
  if (!has) return;
  for (int64_t t = 0; t < l; ++t) {
    const float bt = w.beta[t];
    const float* dr = w.delta.data() + t * DV;
    float* dst = w.db.data() + t * DV;
#pragma omp simd
    for (int64_t e = 0; e < DV; ++e) dst[e] = bt * dr[e];
    w.br[t] = bt * w.rho[t];
  }
}

// Λ_c = γ_c Λ_{c+1} + Q_cᵀ (β ⊙ [δ_c | ρ_c]); in and out may be the same buffers.
void bw_lambda_step(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, const float* LCin, const float* LNin,
                    float* LCout, float* LNout) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c);
  const float* Ms = x.m(bh);
  const double mc = Ms[c];
  if (!std::isfinite(mc)) {  // no state enters this chunk (parallel semantics, first chunk): Λ_c is not needed
    std::fill_n(LCout, DK * DV, 0.0f);
    std::fill_n(LNout, DK, 0.0f);
    return;
  }
  const float gamma = static_cast<float>(std::exp(w.cg.g + mc - static_cast<double>(Ms[c + 1])));
  const float* Q = x.Q(bh, c);
  for (int64_t j = 0; j < DK; ++j) LNout[j] = gamma * LNin[j];
  for (int64_t t = 0; t < l; ++t) {
    const float bt = w.br[t];
    const float* qr = Q + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) LNout[j] += bt * qr[j];
  }
  const mtile::Seg qd{Q, 1, DK, w.db.data(), DV, l, mtile::kFull};
  mtile::Epi ep = x.epi(w);
  ep.beta = gamma, ep.cin = LCin, ep.ldcin = DV;
  mtile::gemm_tile(DK, DV, &qd, 1, LCout, DV, ep);
}

// ∂q, ∂k, ∂v, ∂ĩ of chunk c from the recomputed L×L tiles and Λ_{c+1} = [LC | LN] (lam_zero: Λ_{c+1} = 0, known
// from the shapes alone); w.r[τ] = q·∂q − k·∂k.
void bw_chunk_grads(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, const float* LC, const float* LN,
                    bool lam_zero, float* dq, float* dk, float* dv, float* di) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c), t0 = c * x.L;
  const ChunkGates& cg = w.cg;
  const float* Ms = x.m(bh);
  const double mc = Ms[c], mn = Ms[c + 1];
  const bool has = std::isfinite(mc);
  const float *Q = x.Q(bh, c), *K = x.K(bh, c), *V = x.V(bh, c);
  float* dQ = dq + (bh * x.S + t0) * DK;
  float* dK = dk + (bh * x.S + t0) * DK;
  float* dV = dv + (bh * x.S + t0) * DV;
  float *P = w.P.data(), *Om = w.Om.data();
  const float* delta = w.delta.data();
  // the causal halves of s Q Kᵀ and δ Vᵀ
  mtile::transpose(K, l, DK, DK, w.KT.data(), l);
  mtile::transpose(V, l, DV, DV, w.VT.data(), l);
  {
    const mtile::Seg qk{Q, DK, 1, w.KT.data(), l, DK, mtile::kFull};
    mtile::Epi e = x.epi(w);
    e.alpha = x.s;
    mtile::gemm_tile(l, l, &qk, 1, P, l, e, true);
    const mtile::Seg dvt{delta, DV, 1, w.VT.data(), l, DV, mtile::kFull};
    e.alpha = 1.0f;
    mtile::gemm_tile(l, l, &dvt, 1, Om, l, e, true);
  }
  // P = s (Q Kᵀ) ⊙ E, Ω' = s (δ Vᵀ + ρ 1ᵀ) ⊙ E (Ω' = s Ω), both 0 above the diagonal
  const double* wv = cg.w.data();
  const float s = x.s;
  const mtile::vi lane = mtile::lane_index();
  decay_factors(w, l);
  for (int64_t t = 0; t < l; ++t) {
    float* pr = P + t * l;
    float* orow = Om + t * l;
    const double Mt = cg.M[t];
    const float rt = w.rho[t];
    const int64_t ce = causal_vec_end(t, l);
    if (ce % mtile::kVW == 0) {
      const int64_t ed = ce - mtile::kVW;  // the diagonal vector block
      for (int64_t e = 0; e < ed; e += mtile::kVW) {
        const mtile::vf ex = w.dec_a[(e / mtile::kVW) * l + t] * *reinterpret_cast<const mtile::vf*>(w.dec_b.data() + e);
        mtile::vf& pv = *reinterpret_cast<mtile::vf*>(pr + e);
        mtile::vf& ov = *reinterpret_cast<mtile::vf*>(orow + e);
        pv *= ex;
        ov = s * ((ov + rt) * ex);
      }
      const mtile::vf ex = mtile::exp_v(__builtin_convertvector(*reinterpret_cast<const mtile::vd*>(wv + ed) - Mt, mtile::vf));
      const auto in = lane + static_cast<int32_t>(ed) <= static_cast<int32_t>(t);
      mtile::vf& pv = *reinterpret_cast<mtile::vf*>(pr + ed);
      mtile::vf& ov = *reinterpret_cast<mtile::vf*>(orow + ed);
      pv = in ? pv * ex : mtile::vf{};
      ov = in ? s * ((ov + rt) * ex) : mtile::vf{};
    } else {
#pragma omp simd
      for (int64_t e = 0; e < ce; ++e) {
        const float ex = mtile::exp_f(static_cast<float>(wv[e] - Mt));
        const bool in = e <= t;
        pr[e] = in ? pr[e] * ex : 0.0f;
        orow[e] = in ? s * ((orow[e] + rt) * ex) : 0.0f;
      }
    }
    for (int64_t e = ce; e < causal_zero_end(t, l); ++e) pr[e] = orow[e] = 0.0f;
  }
  // ∂q = Ω' K + (β ⊙ δ) C_cᵀ + (β ⊙ ρ) n_cᵀ
  {
    mtile::Seg sg[2] = {{Om, l, 1, K, DK, l, mtile::kLower}, {}};
    mtile::Epi e = x.epi(w);
    int ns = 1;
    if (has) {
      mtile::transpose(x.C(bh, c), DK, DV, DV, w.CT.data(), DK);
      sg[ns++] = {w.db.data(), DV, 1, w.CT.data(), DK, DV, mtile::kFull};
      e.u = w.br.data(), e.v = x.n(bh, c);
    }
    mtile::gemm_tile(l, DK, sg, ns, dQ, DK, e);
  }
  // s α_σ with α_σ = exp(a_σ − m_{c+1})
  float* al = w.alpha.data();
#pragma omp simd
  for (int64_t t = 0; t < l; ++t) al[t] = s * mtile::exp_f(static_cast<float>(cg.a[t] - mn));
  // ∂k = Ω'ᵀ Q + (s α ⊙ V) Λᶜᵀ + s α Λⁿᵀ
  {
    mtile::Seg sg[2] = {{Om, 1, l, Q, DK, l, mtile::kUpper}, {}};
    mtile::Epi e = x.epi(w);
    int ns = 1;
    if (!lam_zero) {
      float* Va = w.rows_v.data();
      for (int64_t t = 0; t < l; ++t) {
        const float at = w.alpha[t];
        const float* vr = V + t * DV;
        float* dst = Va + t * DV;
#pragma omp simd
        for (int64_t e2 = 0; e2 < DV; ++e2) dst[e2] = at * vr[e2];
      }
      mtile::transpose(LC, DK, DV, DV, w.LT.data(), DK);
      sg[ns++] = {Va, DV, 1, w.LT.data(), DK, DV, mtile::kFull};
      e.u = w.alpha.data(), e.v = LN;
    }
    mtile::gemm_tile(l, DK, sg, ns, dK, DK, e);
  }
  // ∂v = Pᵀ δ + (s α ⊙ K) Λᶜ
  {
    mtile::Seg sg[2] = {{P, 1, l, delta, DV, l, mtile::kUpper}, {}};
    int ns = 1;
    if (!lam_zero) {
      float* Ka = w.rows_k.data();
      for (int64_t t = 0; t < l; ++t) {
        const float at = w.alpha[t];
        const float* kr = K + t * DK;
        float* dst = Ka + t * DK;
#pragma omp simd
        for (int64_t j = 0; j < DK; ++j) dst[j] = at * kr[j];
      }
      sg[ns++] = {Ka, DK, 1, LC, DV, DK, mtile::kFull};
    }
    mtile::Epi e = x.epi(w);
    mtile::gemm_tile(l, DV, sg, ns, dV, DV, e);
  }
  // ∂ĩ = k·∂k; q·∂q − k·∂k for the forget-gate suffix sums
  for (int64_t t = 0; t < l; ++t) {
    double a, b;
    dots_d(Q + t * DK, dQ + t * DK, K + t * DK, dK + t * DK, DK, &a, &b);
    di[bh * x.S + t0 + t] = static_cast<float>(b);
    w.r[t] = a - b;
  }
}

// Λ_NC from the final-state cotangents (rescaled from m_last to the internal stabiliser);
// returns ⟨∂C_last, C_last⟩ + ⟨∂n_last, n_last⟩.
double bw_init_lambda(const CwCtx& x, int64_t bh, const float* dc_last, const float* dn_last, float* LC, float* LN) {
  const int64_t DK = x.DK, DV = x.DV, NC = x.NC;
  if (!dc_last && !dn_last) {
    std::fill_n(LC, DK * DV, 0.0f);
    std::fill_n(LN, DK, 0.0f);
    return 0.0;
  }
  const float* Ms = x.m(bh);
  const float fac = static_cast<float>(std::exp(static_cast<double>(Ms[NC]) - Ms[NC + 1]));
  const float* Cf = x.C(bh, NC);
  const float* nf = x.n(bh, NC);
  double ct = 0.0;
  for (int64_t e = 0; e < DK * DV; ++e) {
    LC[e] = dc_last ? fac * dc_last[bh * DK * DV + e] : 0.0f;
    ct += static_cast<double>(LC[e]) * Cf[e];
  }
  for (int64_t j = 0; j < DK; ++j) {
    LN[j] = dn_last ? fac * dn_last[bh * DK + j] : 0.0f;
    ct += static_cast<double>(LN[j]) * nf[j];
  }
  return ct;
}

// ∂C_0 = Λ_0[:, :DV], ∂n_0 = Λ_0[:, DV], ∂m_0 = ⟨∂C_0, C_0⟩ + ⟨∂n_0, n_0⟩
void bw_finish(const CwCtx& x, int64_t bh, const float* L0C, const float* L0N, float* dc0, float* dn0, float* dm0) {
  const int64_t DK = x.DK, DV = x.DV;
  if (dc0) std::memcpy(dc0 + bh * DK * DV, L0C, sizeof(float) * DK * DV);
  if (dn0) std::memcpy(dn0 + bh * DK, L0N, sizeof(float) * DK);
  if (!dm0) return;
  const float* C0 = x.C(bh, 0);
  const float* N0 = x.n(bh, 0);
  double dm = 0.0;
  for (int64_t e = 0; e < DK * DV; ++e) dm += static_cast<double>(L0C[e]) * C0[e];
  for (int64_t j = 0; j < DK; ++j) dm += static_cast<double>(L0N[j]) * N0[j];
  dm0[bh] = std::isfinite(static_cast<double>(x.m(bh)[0])) ? static_cast<float>(dm) : 0.0f;
}

void cw_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0, float* dm0,
                 const float* saved, const float* h, const float* dh, const float* dc_last, const float* dn_last,
                 const float* q, const float* k, const float* v, const float* ig, const float* fg, const MlstmDims& d,
                 int64_t L, float eps) {
  // the backward only reads `saved`; CwCtx hands out mutable pointers for the forward's sake
  const CwCtx x(d, L, eps, q, k, v, ig, fg, const_cast<float*>(saved));
  const int64_t BH = d.B * d.NH, NC = x.NC, S = d.S, DK = d.DK, DV = d.DV;
  // Λ_NC is zero without final-state cotangents: the last chunk skips the products with it
  const bool last_zero = !dc_last && !dn_last;
  // the rows of the chunk before (bh, c) in a fused thread's order (up to head hi), fetched while (bh, c) computes
  auto prefetch_next = [&](mtile::Prefetcher& pf, int64_t bh, int64_t c, int64_t hi) {
    pf.clear();
    if (c-- == 0) c = NC - 1, ++bh;
    if (bh >= hi) return;
    const int64_t l = x.len(c), r0 = bh * S + c * L;
    pf.add(dh + r0 * DV, l * DV);
    pf.add(h + r0 * DV, l * DV);
    pf.add(x.K(bh, c), l * DK);
    pf.add(x.V(bh, c), l * DV);
    pf.add(x.Q(bh, c), l * DK);
    if (c > 0) pf.add(x.C(bh, c), DK * DV);
  };
  auto dfgate = [&](int64_t bh, int64_t t, double acc) {
    df[bh * S + t] = static_cast<float>(acc * static_cast<double>(1.0f / (1.0f + mtile::exp_f(fg[bh * S + t]))));
  };
  if (fused_schedule(BH)) {
    parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
      CwScratch& w = cw_scratch(x, true);
      float *LC = w.LC.data(), *LN = w.LN.data();
      for (int64_t bh = lo; bh < hi; ++bh) {
        // ∂f̃_t = σ(−f̃_t) (Σ_{u≥t} (q_u·∂q_u − k_u·∂k_u) + ⟨Λ_NC, C'_NC⟩), accumulated in reverse
        double acc = bw_init_lambda(x, bh, dc_last, dn_last, LC, LN);
        for (int64_t c = NC - 1; c >= 0; --c) {
          prefetch_next(w.pf, bh, c, hi);
          bw_prepare(x, w, bh, c, h, dh);
          bw_chunk_grads(x, w, bh, c, LC, LN, last_zero && c == NC - 1, dq, dk, dv, di);  // with Λ_{c+1}
          for (int64_t t = x.len(c) - 1; t >= 0; --t) {
            acc += w.r[t];
            dfgate(bh, c * L + t, acc);
          }
          bw_lambda_step(x, w, bh, c, LC, LN, LC, LN);  // Λ_c
        }
        bw_finish(x, bh, LC, LN, dc0, dn0, dm0);
      }
      w.release_if_large();
    });
    return;
  }
  // split: (A) Λ_c for every chunk, (B) every chunk in parallel, (C) the suffix sums
  std::vector<float> lamC(static_cast<size_t>(BH * NC * DK * DV)), lamN(static_cast<size_t>(BH * NC * DK));
  std::vector<double> rsum(static_cast<size_t>(BH * S)), cterm(static_cast<size_t>(BH));
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    CwScratch& w = cw_scratch(x, true);
    float *L0C = w.LC.data(), *L0N = w.LN.data();
    for (int64_t bh = lo; bh < hi; ++bh) {
      // slot c holds Λ_{c+1}
      float* LC = lamC.data() + bh * NC * DK * DV;
      float* LN = lamN.data() + bh * NC * DK;
      cterm[bh] = bw_init_lambda(x, bh, dc_last, dn_last, LC + (NC - 1) * DK * DV, LN + (NC - 1) * DK);
      for (int64_t c = NC - 1; c >= 0; --c) {
        bw_prepare(x, w, bh, c, h, dh);
        bw_lambda_step(x, w, bh, c, LC + c * DK * DV, LN + c * DK, c > 0 ? LC + (c - 1) * DK * DV : L0C,
                       c > 0 ? LN + (c - 1) * DK : L0N);
      }
      bw_finish(x, bh, L0C, L0N, dc0, dn0, dm0);
    }
    w.release_if_large();
  });
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    CwScratch& w = cw_scratch(x, true);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      bw_prepare(x, w, bh, c, h, dh);
      bw_chunk_grads(x, w, bh, c, lamC.data() + task * DK * DV, lamN.data() + task * DK, last_zero && c == NC - 1,
                     dq, dk, dv, di);
      std::copy_n(w.r.data(), x.len(c), rsum.data() + bh * S + c * L);
    }
    w.release_if_large();
  });
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bh = lo; bh < hi; ++bh) {
      double acc = cterm[bh];
      for (int64_t t = S - 1; t >= 0; --t) {
        acc += rsum[bh * S + t];
        dfgate(bh, t, acc);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Recurrent step form (XLSTM_SPEC §4.3), one task per (b, h) over all steps

// C ← f' C + (i' s k) vᵀ, n ← f' n + i' s k; writes h_t = Cᵀq / (max(|q·n|, exp(−m)) + ε) when hrow != nullptr.
inline void step_forward(float* C, float* n, const StepGates& gt, float s, const float* qr, const float* kr,
                         const float* vr, float* hrow, float* num, int64_t DK, int64_t DV, float eps) {
  const float fp = gt.fp, isk = gt.ip * s;
  if (hrow) std::fill_n(num, DV, 0.0f);
  float den = 0.0f;
  for (int64_t j = 0; j < DK; ++j) {
    float* row = C + j * DV;
    const float kj = isk * kr[j], qj = qr[j];
    if (hrow) {
#pragma omp simd
      for (int64_t x = 0; x < DV; ++x) {
        row[x] = fp * row[x] + kj * vr[x];
        num[x] += qj * row[x];
      }
    } else {
#pragma omp simd
      for (int64_t x = 0; x < DV; ++x) row[x] = fp * row[x] + kj * vr[x];
    }
    n[j] = fp * n[j] + kj;
    den += qj * n[j];
  }
  if (!hrow) return;
  const double dd = std::max(std::fabs(static_cast<double>(den)), std::exp(-static_cast<double>(gt.m)));
  const float inv = static_cast<float>(1.0 / (dd + eps));
#pragma omp simd
  for (int64_t x = 0; x < DV; ++x) hrow[x] = num[x] * inv;
}

void rec_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q, const float* k,
                 const float* v, const float* ig, const float* fg, const float* c0, const float* n0, const float* m0,
                 const MlstmDims& d, float eps) {
  const int64_t B = d.B, NH = d.NH, S = d.S, DK = d.DK, DV = d.DV, BH = B * NH;
  const int64_t NSEG = (S + kRecurrentSegment - 1) / kRecurrentSegment, CP = DK * DV + DK + 1;
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(DK)));
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> num(DV);
    for (int64_t bh = lo; bh < hi; ++bh) {
      float* C = c_last + bh * DK * DV;  // the running state lives in the outputs
      float* n = n_last + bh * DK;
      float m = 0.0f;
      if (c0) {
        std::memcpy(C, c0 + bh * DK * DV, sizeof(float) * DK * DV);
        std::memcpy(n, n0 + bh * DK, sizeof(float) * DK);
        m = m0[bh];
      } else {
        std::fill_n(C, DK * DV, 0.0f);
        std::fill_n(n, DK, 0.0f);
      }
      for (int64_t t = 0; t < S; ++t) {
        if (saved && t % kRecurrentSegment == 0) {
          float* cp = saved + (bh * NSEG + t / kRecurrentSegment) * CP;
          std::memcpy(cp, C, sizeof(float) * DK * DV);
          std::memcpy(cp + DK * DV, n, sizeof(float) * DK);
          cp[DK * DV + DK] = m;
        }
        const int64_t r = bh * S + t;
        const StepGates gt = step_gates(fg[r], ig[r], m);
        step_forward(C, n, gt, s, q + r * DK, k + r * DK, v + r * DV, h + r * DV, num.data(), DK, DV, eps);
        m = gt.m;
      }
      m_last[bh] = m;
    }
  });
}

void rec_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0, float* dm0,
                  const float* saved, const float* dh, const float* dc_last, const float* dn_last, const float* q,
                  const float* k, const float* v, const float* ig, const float* fg, const MlstmDims& d, float eps) {
  const int64_t B = d.B, NH = d.NH, S = d.S, DK = d.DK, DV = d.DV, BH = B * NH;
  constexpr int64_t SEG = kRecurrentSegment;
  const int64_t NSEG = (S + SEG - 1) / SEG, CP = DK * DV + DK + 1;
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(DK)));
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    // states after every step of one segment (slot 0: the state entering it)
    std::vector<float> segC((SEG + 1) * DK * DV), segN((SEG + 1) * DK), num(DV), delta(DV), dCt(DV), u(DK);
    std::vector<StepGates> gts(SEG);
    std::vector<float> dC(DK * DV), dn(DK);
    for (int64_t bh = lo; bh < hi; ++bh) {
      for (int64_t x = 0; x < DK * DV; ++x) dC[x] = dc_last ? dc_last[bh * DK * DV + x] : 0.0f;
      for (int64_t j = 0; j < DK; ++j) dn[j] = dn_last ? dn_last[bh * DK + j] : 0.0f;
      for (int64_t sg = NSEG - 1; sg >= 0; --sg) {
        const int64_t t0 = sg * SEG, len = std::min(SEG, S - t0);
        const float* cp = saved + (bh * NSEG + sg) * CP;
        std::memcpy(segC.data(), cp, sizeof(float) * DK * DV);
        std::memcpy(segN.data(), cp + DK * DV, sizeof(float) * DK);
        float m = cp[DK * DV + DK];
        for (int64_t x = 0; x < len; ++x) {
          const int64_t r = bh * S + t0 + x;
          std::memcpy(segC.data() + (x + 1) * DK * DV, segC.data() + x * DK * DV, sizeof(float) * DK * DV);
          std::memcpy(segN.data() + (x + 1) * DK, segN.data() + x * DK, sizeof(float) * DK);
          gts[x] = step_gates(fg[r], ig[r], m);
          step_forward(segC.data() + (x + 1) * DK * DV, segN.data() + (x + 1) * DK, gts[x], s, q + r * DK,
                       k + r * DK, v + r * DV, nullptr, nullptr, DK, DV, eps);
          m = gts[x].m;
        }
        for (int64_t x = len - 1; x >= 0; --x) {
          const int64_t r = bh * S + t0 + x;
          const StepGates& gt = gts[x];
          const float* Ct = segC.data() + (x + 1) * DK * DV;
          const float* nt = segN.data() + (x + 1) * DK;
          const float* Cp = segC.data() + x * DK * DV;
          const float* np = segN.data() + x * DK;
          const float *qr = q + r * DK, *kr = k + r * DK, *vr = v + r * DV, *G = dh + r * DV;
          // num = C_tᵀ q, den = q·n_t, d = max(|den|, exp(−m_t))
          std::fill_n(num.data(), DV, 0.0f);
          float den = 0.0f;
          for (int64_t j = 0; j < DK; ++j) {
            const float qj = qr[j];
            const float* row = Ct + j * DV;
#pragma omp simd
            for (int64_t y = 0; y < DV; ++y) num[y] += qj * row[y];
            den += qj * nt[j];
          }
          const double floor_ = std::exp(-static_cast<double>(gt.m));
          const double a = std::fabs(static_cast<double>(den));
          const double dd = std::max(a, floor_);
          const float inv = static_cast<float>(1.0 / (dd + eps));
          // (omp simd: one vectorised path; a plain loop is versioned on the distance between the buffers, and its
          // scalar and vectorised copies round the in-order sum differently, so results would follow heap addresses)
          float gh = 0.0f;
#pragma omp simd reduction(+ : gh)
          for (int64_t y = 0; y < DV; ++y) {
            delta[y] = G[y] * inv;
            gh += G[y] * num[y] * inv;
          }
          const float rho = a > floor_ ? (den > 0 ? -gh * inv : gh * inv) : 0.0f;
          // per row j of C: dCtot = dC + q δᵀ; ∂q_j = C_t[j]·δ + ρ n_t[j]; u_j = dCtot[j]·v;
          // ∂v += (i' s k_j) dCtot[j]; ∂f' += dCtot[j]·C_{t-1}[j]; dC ← f' dCtot
          const float isk = gt.ip * s, fp = gt.fp;
          std::fill_n(dCt.data(), DV, 0.0f);
          double dfp = 0.0, dik = 0.0;
          for (int64_t j = 0; j < DK; ++j) {
            float* drow = dC.data() + j * DV;
            const float* crow = Ct + j * DV;
            const float* prow = Cp + j * DV;
            const float qj = qr[j], kj = isk * kr[j];
            float dqj = 0.0f, uj = 0.0f, fj = 0.0f;
#pragma omp simd reduction(+ : dqj, uj, fj)
            for (int64_t y = 0; y < DV; ++y) {
              const float tot = drow[y] + qj * delta[y];
              dqj += crow[y] * delta[y];
              uj += tot * vr[y];
              fj += tot * prow[y];
              dCt[y] += kj * tot;
              drow[y] = fp * tot;
            }
            const float dnt = dn[j] + rho * qj;
            dq[r * DK + j] = dqj + rho * nt[j];
            const float dkj = isk * (uj + dnt);
            dk[r * DK + j] = dkj;
            dik += static_cast<double>(kr[j]) * dkj;
            dfp += static_cast<double>(fj) + static_cast<double>(dnt) * np[j];
            dn[j] = fp * dnt;
          }
          for (int64_t y = 0; y < DV; ++y) dv[r * DV + y] = dCt[y];
          di[r] = static_cast<float>(dik);
          // f' = exp(logσ(f̃) + m_{t-1} − m_t): ∂f̃ = f' ∂f' σ(−f̃)
          df[r] = static_cast<float>(static_cast<double>(fp) * dfp * sigmoid_d(-static_cast<double>(fg[r])));
        }
      }
      // ∂m_0 = ⟨∂C_0, C_0⟩ + ⟨∂n_0, n_0⟩ with the state entering the sequence (checkpoint 0)
      const float* cp0 = saved + bh * NSEG * CP;
      double dm = 0.0;
      for (int64_t x = 0; x < DK * DV; ++x) dm += static_cast<double>(dC[x]) * cp0[x];
      for (int64_t j = 0; j < DK; ++j) dm += static_cast<double>(dn[j]) * cp0[DK * DV + j];
      if (dc0) std::memcpy(dc0 + bh * DK * DV, dC.data(), sizeof(float) * DK * DV);
      if (dn0) std::memcpy(dn0 + bh * DK, dn.data(), sizeof(float) * DK);
      if (dm0) dm0[bh] = static_cast<float>(dm);
    }
  });
}

mlstm_detail::Impl make_impl() { return {cw_forward, cw_backward, rec_forward, rec_backward}; }

}  // namespace
}  // namespace xlstm
