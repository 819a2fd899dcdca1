// The mLSTM algorithms behind mlstm.h (XLSTM_SPEC §4.3–§4.6), written once and compiled per ISA (mlstm.cc:
// portable flags, mlstm_avx2.cc, mlstm_avx512.cc): the compiler vectorises the pointwise loops for each target,
// and every GEMM-shaped tile goes through xlstm::gemm (which dispatches on the SIMD level itself).
// Everything has internal linkage (anonymous namespace) so the per-ISA copies never merge at link time.
//
// Chunkwise form, per (b, h), chunk c of length l holding positions t0 .. t0+l-1 (in-chunk index τ, σ):
//   φ = logσ(f̃) (double), b_τ = Σ_{r≤τ} φ (in-chunk inclusive cumsum), g = b_{l-1},
//   a_τ = Σ_{r>τ} φ + ĩ_τ (suffix sum, §11.1), w_σ = ĩ_σ − b_σ,
//   M_τ = max(m_c, max_{σ≤τ} w_σ)  so that  μ_τ = b_τ + M_τ  and  D̃_τσ − μ_τ = w_σ − M_τ,  β_τ = exp(m_c − M_τ).
// Gate sums, maxima and exponents are formed in double and rounded once, so the L×L exponentials
// E_τσ = exp(w_σ − M_τ) are accurate to float rounding even when |b| is large (long single chunks).
//
// Work split (schedules in the chunkwise section below): per (b, h) the inter-chunk recurrence of (C, n, m) is sequential over
// chunks (one DK×DV×l GEMM per chunk), the intra-chunk part is QKᵀ, P·V, βQ·C_c (three GEMMs); the backward runs
// the reverse recurrence of the state cotangents Λ_c (one GEMM per chunk) and recomputes the L×L tiles for the five
// gradient products, then a suffix sum gives ∂f̃. The recurrent form runs one task per (b, h) over all steps.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/fast_math.h"
#include "kernels/gemm.h"
#include "kernels/mlstm.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

using mlstm_detail::SavedLayout;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// logσ(x) = min(x, 0) − log1p(e^{−|x|})  (XLSTM_SPEC §1), in double
inline double logsig_d(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }
// σ(x), stable for both signs
inline double sigmoid_d(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
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
    double acc = 0.0;
    for (int64_t t = 0; t < l; ++t) {
      phi[t] = logsig_d(f[t]);
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

// E_τσ = exp(w_σ − M_τ) for σ ≤ τ, 0 above the diagonal (l × l, row stride l).
inline void fill_decay(float* E, const double* w, const double* M, int64_t l) {
  for (int64_t t = 0; t < l; ++t) {
    float* row = E + t * l;
    const double Mt = M[t];
#pragma omp simd
    for (int64_t s = 0; s <= t; ++s) row[s] = fm_exp(static_cast<float>(w[s] - Mt));
    for (int64_t s = t + 1; s < l; ++s) row[s] = 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chunkwise form (XLSTM_SPEC §4.5 forward, §4.6 backward), as per-chunk steps shared by two schedules:
//   fused (every thread owns whole heads: B*NH is a multiple of the thread count or much larger): one pass per
//          (b, h) over the chunks, forward in order and backward in reverse, so each chunk's q/k/v tiles are used
//          while they are in cache and the backward keeps only the current Λ (no per-chunk Λ buffer);
//   split  (fewer heads than threads): the sequential recurrences per (b, h) first, then every (b, h, chunk) in
//          parallel from the saved chunk states / Λ_c.
// Both schedules run the same per-chunk code in the same order per chunk, so they give identical bits.

struct CwCtx {
  int64_t S, DK, DV, L, NC, W;
  SavedLayout lay;
  float s, eps;
  const float *q, *k, *v, *ig, *fg;
  float* saved;
  CwCtx(const MlstmDims& d, int64_t L_, float eps_, const float* q_, const float* k_, const float* v_, const float* i_,
        const float* f_, float* saved_)
      : S(d.S), DK(d.DK), DV(d.DV), L(std::min(L_, d.S)), NC(mlstm_num_chunks(d.S, L_)), W(0), lay{NC, d.DK, d.DV, d.S},
        s(static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.DK)))), eps(eps_), q(q_), k(k_), v(v_), ig(i_),
        fg(f_), saved(saved_) {
    W = lay.size();
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

struct CwScratch {
  ChunkGates cg;
  std::vector<float> P, E, Om, rows_k, rows_v, delta, rho, beta, alpha;
  std::vector<double> r;
  CwScratch(const CwCtx& x, bool backward) {
    const int64_t L = x.L;
    cg.resize(L);
    P.resize(L * L);
    if (backward) {
      E.resize(L * L);
      Om.resize(L * L);
      delta.resize(L * x.DV);
      rho.resize(L);
      alpha.resize(L);
      r.resize(L);
    }
    rows_k.resize(L * x.DK);
    rows_v.resize(L * x.DV);
    beta.resize(L);
  }
};

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
void fw_state_step(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c);
  const ChunkGates& cg = w.cg;
  float* Ms = x.m(bh);
  const double mc = Ms[c];
  const bool has = std::isfinite(mc);
  double amax = kNegInf;
  for (int64_t t = 0; t < l; ++t) amax = std::max(amax, cg.a[t]);
  const float mn = static_cast<float>(has ? std::max(cg.g + mc, amax) : amax);
  const float gamma = has ? static_cast<float>(std::exp(cg.g + mc - mn)) : 0.0f;
  const float* K = x.K(bh, c);
  float* Ks = w.rows_k.data();
  for (int64_t t = 0; t < l; ++t) {
    const float al = x.s * static_cast<float>(std::exp(cg.a[t] - static_cast<double>(mn)));
    const float* kr = K + t * DK;
    float* dst = Ks + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) dst[j] = al * kr[j];
  }
  const float* Cc = x.C(bh, c);
  float* Cn = x.C(bh, c + 1);
#pragma omp simd
  for (int64_t e = 0; e < DK * DV; ++e) Cn[e] = gamma * Cc[e];
  gemm(true, false, DK, DV, l, 1.0f, Ks, DK, x.V(bh, c), DV, 1.0f, Cn, DV);
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
  for (int64_t t = 0; t < l; ++t) {
    mu[t] = static_cast<float>(cg.b[t] + cg.M[t]);
    w.beta[t] = has ? static_cast<float>(std::exp(mc - cg.M[t])) : 0.0f;
  }
  gemm(false, true, l, l, DK, x.s, Q, DK, K, DK, 0.0f, P, l);
  for (int64_t t = 0; t < l; ++t) {
    float* row = P + t * l;
    const double Mt = cg.M[t];
    const double* wv = cg.w.data();
    float rs = 0.0f;
#pragma omp simd reduction(+ : rs)
    for (int64_t e = 0; e <= t; ++e) {
      const float p = row[e] * fm_exp(static_cast<float>(wv[e] - Mt));
      row[e] = p;
      rs += p;
    }
    for (int64_t e = t + 1; e < l; ++e) row[e] = 0.0f;
    den[t] = rs;
  }
  gemm(false, false, l, DV, l, 1.0f, P, l, V, DV, 0.0f, Hc, DV);
  if (has) {
    const float* nc = x.n(bh, c);
    float* Qb = w.rows_k.data();
    for (int64_t t = 0; t < l; ++t) {
      const float bt = w.beta[t];
      const float* qr = Q + t * DK;
      float* dst = Qb + t * DK;
      float qn = 0.0f;
#pragma omp simd reduction(+ : qn)
      for (int64_t j = 0; j < DK; ++j) {
        dst[j] = bt * qr[j];
        qn += dst[j] * nc[j];
      }
      den[t] += qn;
    }
    gemm(false, false, l, DV, DK, 1.0f, Qb, DK, x.C(bh, c), DV, 1.0f, Hc, DV);
  }
  for (int64_t t = 0; t < l; ++t) {
    const double dd = std::max(std::fabs(static_cast<double>(den[t])), std::exp(-static_cast<double>(mu[t])));
    const float inv = static_cast<float>(1.0 / (dd + x.eps));
    float* hr = Hc + t * DV;
#pragma omp simd
    for (int64_t e = 0; e < DV; ++e) hr[e] *= inv;
  }
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
  auto recurrence = [&](int64_t bh, CwScratch& w, bool outputs) {
    fw_init_state(x, bh, c0, n0, m0, empty_init);
    double F = 0.0;  // Σ of every φ: the log-decay of the zero-state term
    for (int64_t c = 0; c < NC; ++c) {
      const double mc = x.m(bh)[c];
      x.gates(w.cg, bh, c, std::isfinite(mc), mc);
      F += w.cg.g;
      if (outputs) fw_chunk_out(x, w, bh, c, h);
      fw_state_step(x, w, bh, c);
    }
    fw_finish(x, bh, F, empty_init, c_last, n_last, m_last);
  };
  if (fused_schedule(BH)) {
    parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
      CwScratch w(x, false);
      for (int64_t bh = lo; bh < hi; ++bh) recurrence(bh, w, true);
    });
    return;
  }
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    CwScratch w(x, false);
    for (int64_t bh = lo; bh < hi; ++bh) recurrence(bh, w, false);
  });
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    CwScratch w(x, false);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      const double mc = x.m(bh)[c];
      x.gates(w.cg, bh, c, std::isfinite(mc), mc);
      fw_chunk_out(x, w, bh, c, h);
    }
  });
}

// ---- backward steps

// δ_τ = G_τ / (d_τ + ε) (l × DV) and ρ_τ = −sgn(den_τ) (G_τ·h_τ) / (d_τ + ε) where |den_τ| > exp(−μ_τ), else 0
// (XLSTM_SPEC §4.6, exact mode).
inline void output_cotangents(float* delta, float* rho, const float* G, const float* H, const float* mu,
                              const float* den, int64_t l, int64_t DV, float eps) {
  for (int64_t t = 0; t < l; ++t) {
    const double floor_ = std::exp(-static_cast<double>(mu[t]));
    const double a = std::fabs(static_cast<double>(den[t]));
    const double dd = std::max(a, floor_);
    const float inv = static_cast<float>(1.0 / (dd + eps));
    const float* gr = G + t * DV;
    const float* hr = H + t * DV;
    float* dr = delta + t * DV;
    float gh = 0.0f;
#pragma omp simd reduction(+ : gh)
    for (int64_t e = 0; e < DV; ++e) {
      dr[e] = gr[e] * inv;
      gh += gr[e] * hr[e];
    }
    rho[t] = a > floor_ ? (den[t] > 0 ? -gh * inv : gh * inv) : 0.0f;
  }
}

// Per-chunk quantities of the backward: gates with M, β, δ, ρ.
void bw_prepare(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, const float* h, const float* dh) {
  const int64_t l = x.len(c), t0 = c * x.L;
  const double mc = x.m(bh)[c];
  const bool has = std::isfinite(mc);
  x.gates(w.cg, bh, c, has, mc);
  for (int64_t t = 0; t < l; ++t) w.beta[t] = has ? static_cast<float>(std::exp(mc - w.cg.M[t])) : 0.0f;
  output_cotangents(w.delta.data(), w.rho.data(), dh + (bh * x.S + t0) * x.DV, h + (bh * x.S + t0) * x.DV,
                    x.mu(bh) + t0, x.den(bh) + t0, l, x.DV, x.eps);
}

// Λ_c = γ_c Λ_{c+1} + (β ⊙ Q_c)ᵀ [δ_c | ρ_c]; in and out may be the same buffers.
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
  float* Qb = w.rows_k.data();
  for (int64_t j = 0; j < DK; ++j) LNout[j] = gamma * LNin[j];
  for (int64_t t = 0; t < l; ++t) {
    const float bt = w.beta[t], rt = w.rho[t];
    const float* qr = Q + t * DK;
    float* qb = Qb + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) {
      qb[j] = bt * qr[j];
      LNout[j] += qb[j] * rt;
    }
  }
#pragma omp simd
  for (int64_t e = 0; e < DK * DV; ++e) LCout[e] = gamma * LCin[e];
  gemm(true, false, DK, DV, l, 1.0f, Qb, DK, w.delta.data(), DV, 1.0f, LCout, DV);
}

// ∂q, ∂k, ∂v, ∂ĩ of chunk c from the recomputed L×L tiles and Λ_{c+1} = [LC | LN]; w.r[τ] = q·∂q − k·∂k.
void bw_chunk_grads(const CwCtx& x, CwScratch& w, int64_t bh, int64_t c, const float* LC, const float* LN,
                    float* dq, float* dk, float* dv, float* di) {
  const int64_t DK = x.DK, DV = x.DV, l = x.len(c), t0 = c * x.L;
  const ChunkGates& cg = w.cg;
  const float* Ms = x.m(bh);
  const double mc = Ms[c], mn = Ms[c + 1];
  const bool has = std::isfinite(mc);
  const float *Q = x.Q(bh, c), *K = x.K(bh, c), *V = x.V(bh, c);
  float* dQ = dq + (bh * x.S + t0) * DK;
  float* dK = dk + (bh * x.S + t0) * DK;
  float* dV = dv + (bh * x.S + t0) * DV;
  float *P = w.P.data(), *E = w.E.data(), *Om = w.Om.data();
  const float* delta = w.delta.data();
  fill_decay(E, cg.w.data(), cg.M.data(), l);
  // P = s (Q Kᵀ) ⊙ E
  gemm(false, true, l, l, DK, x.s, Q, DK, K, DK, 0.0f, P, l);
#pragma omp simd
  for (int64_t e = 0; e < l * l; ++e) P[e] *= E[e];
  // Ω = (δ Vᵀ + ρ 1ᵀ) ⊙ E
  gemm(false, true, l, l, DV, 1.0f, delta, DV, V, DV, 0.0f, Om, l);
  for (int64_t t = 0; t < l; ++t) {
    float* row = Om + t * l;
    const float* er = E + t * l;
    const float rt = w.rho[t];
#pragma omp simd
    for (int64_t e = 0; e < l; ++e) row[e] = (row[e] + rt) * er[e];
  }
  // ∂q = s Ω K + β ⊙ (δ C_cᵀ + ρ n_cᵀ)
  gemm(false, false, l, DK, l, x.s, Om, l, K, DK, 0.0f, dQ, DK);
  if (has) {
    float* db = w.rows_v.data();
    for (int64_t t = 0; t < l; ++t) {
      const float bt = w.beta[t];
      const float* dr = delta + t * DV;
      float* dst = db + t * DV;
#pragma omp simd
      for (int64_t e = 0; e < DV; ++e) dst[e] = bt * dr[e];
    }
    gemm(false, true, l, DK, DV, 1.0f, db, DV, x.C(bh, c), DV, 1.0f, dQ, DK);
    const float* nc = x.n(bh, c);
    for (int64_t t = 0; t < l; ++t) {
      const float br = w.beta[t] * w.rho[t];
      float* dst = dQ + t * DK;
#pragma omp simd
      for (int64_t j = 0; j < DK; ++j) dst[j] += br * nc[j];
    }
  }
  // s α_σ with α_σ = exp(a_σ − m_{c+1})
  for (int64_t t = 0; t < l; ++t) w.alpha[t] = x.s * static_cast<float>(std::exp(cg.a[t] - mn));
  // ∂k = s Ωᵀ Q + (s α ⊙ V) Λᶜᵀ + s α Λⁿ
  gemm(true, false, l, DK, l, x.s, Om, l, Q, DK, 0.0f, dK, DK);
  float* Va = w.rows_v.data();
  for (int64_t t = 0; t < l; ++t) {
    const float at = w.alpha[t];
    const float* vr = V + t * DV;
    float* dst = Va + t * DV;
#pragma omp simd
    for (int64_t e = 0; e < DV; ++e) dst[e] = at * vr[e];
  }
  gemm(false, true, l, DK, DV, 1.0f, Va, DV, LC, DV, 1.0f, dK, DK);
  for (int64_t t = 0; t < l; ++t) {
    const float at = w.alpha[t];
    float* dst = dK + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) dst[j] += at * LN[j];
  }
  // ∂v = Pᵀ δ + (s α ⊙ K) Λᶜ
  gemm(true, false, l, DV, l, 1.0f, P, l, delta, DV, 0.0f, dV, DV);
  float* Ka = w.rows_k.data();
  for (int64_t t = 0; t < l; ++t) {
    const float at = w.alpha[t];
    const float* kr = K + t * DK;
    float* dst = Ka + t * DK;
#pragma omp simd
    for (int64_t j = 0; j < DK; ++j) dst[j] = at * kr[j];
  }
  gemm(false, false, l, DV, DK, 1.0f, Ka, DK, LC, DV, 1.0f, dV, DV);
  // ∂ĩ = k·∂k; q·∂q − k·∂k for the forget-gate suffix sums
  for (int64_t t = 0; t < l; ++t) {
    const float *qr = Q + t * DK, *kr = K + t * DK, *dqr = dQ + t * DK, *dkr = dK + t * DK;
    double a = 0.0, b = 0.0;
    for (int64_t j = 0; j < DK; ++j) {
      a += static_cast<double>(qr[j]) * dqr[j];
      b += static_cast<double>(kr[j]) * dkr[j];
    }
    di[bh * x.S + t0 + t] = static_cast<float>(b);
    w.r[t] = a - b;
  }
}

// Λ_NC from the final-state cotangents (rescaled from m_last to the internal stabiliser);
// returns ⟨∂C_last, C_last⟩ + ⟨∂n_last, n_last⟩.
double bw_init_lambda(const CwCtx& x, int64_t bh, const float* dc_last, const float* dn_last, float* LC, float* LN) {
  const int64_t DK = x.DK, DV = x.DV, NC = x.NC;
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
  const float* C0 = x.C(bh, 0);
  const float* N0 = x.n(bh, 0);
  double dm = 0.0;
  for (int64_t e = 0; e < DK * DV; ++e) dm += static_cast<double>(L0C[e]) * C0[e];
  for (int64_t j = 0; j < DK; ++j) dm += static_cast<double>(L0N[j]) * N0[j];
  if (dc0) std::memcpy(dc0 + bh * DK * DV, L0C, sizeof(float) * DK * DV);
  if (dn0) std::memcpy(dn0 + bh * DK, L0N, sizeof(float) * DK);
  if (dm0) dm0[bh] = std::isfinite(static_cast<double>(x.m(bh)[0])) ? static_cast<float>(dm) : 0.0f;
}

void cw_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0, float* dm0,
                 const float* saved, const float* h, const float* dh, const float* dc_last, const float* dn_last,
                 const float* q, const float* k, const float* v, const float* ig, const float* fg, const MlstmDims& d,
                 int64_t L, float eps) {
  // the backward only reads `saved`; CwCtx hands out mutable pointers for the forward's sake
  const CwCtx x(d, L, eps, q, k, v, ig, fg, const_cast<float*>(saved));
  const int64_t BH = d.B * d.NH, NC = x.NC, S = d.S, DK = d.DK, DV = d.DV;
  auto dfgate = [&](int64_t bh, int64_t t, double acc) {
    df[bh * S + t] = static_cast<float>(acc * sigmoid_d(-static_cast<double>(fg[bh * S + t])));
  };
  if (fused_schedule(BH)) {
    parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
      CwScratch w(x, true);
      std::vector<float> LC(DK * DV), LN(DK);
      for (int64_t bh = lo; bh < hi; ++bh) {
        // ∂f̃_t = σ(−f̃_t) (Σ_{u≥t} (q_u·∂q_u − k_u·∂k_u) + ⟨Λ_NC, C'_NC⟩), accumulated in reverse
        double acc = bw_init_lambda(x, bh, dc_last, dn_last, LC.data(), LN.data());
        for (int64_t c = NC - 1; c >= 0; --c) {
          bw_prepare(x, w, bh, c, h, dh);
          bw_chunk_grads(x, w, bh, c, LC.data(), LN.data(), dq, dk, dv, di);  // with Λ_{c+1}
          for (int64_t t = x.len(c) - 1; t >= 0; --t) {
            acc += w.r[t];
            dfgate(bh, c * L + t, acc);
          }
          bw_lambda_step(x, w, bh, c, LC.data(), LN.data(), LC.data(), LN.data());  // Λ_c
        }
        bw_finish(x, bh, LC.data(), LN.data(), dc0, dn0, dm0);
      }
    });
    return;
  }
  // split: (A) Λ_c for every chunk, (B) every chunk in parallel, (C) the suffix sums
  std::vector<float> lamC(static_cast<size_t>(BH * NC * DK * DV)), lamN(static_cast<size_t>(BH * NC * DK));
  std::vector<double> rsum(static_cast<size_t>(BH * S)), cterm(static_cast<size_t>(BH));
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    CwScratch w(x, true);
    std::vector<float> L0C(DK * DV), L0N(DK);
    for (int64_t bh = lo; bh < hi; ++bh) {
      // slot c holds Λ_{c+1}
      float* LC = lamC.data() + bh * NC * DK * DV;
      float* LN = lamN.data() + bh * NC * DK;
      cterm[bh] = bw_init_lambda(x, bh, dc_last, dn_last, LC + (NC - 1) * DK * DV, LN + (NC - 1) * DK);
      for (int64_t c = NC - 1; c >= 0; --c) {
        bw_prepare(x, w, bh, c, h, dh);
        bw_lambda_step(x, w, bh, c, LC + c * DK * DV, LN + c * DK, c > 0 ? LC + (c - 1) * DK * DV : L0C.data(),
                       c > 0 ? LN + (c - 1) * DK : L0N.data());
      }
      bw_finish(x, bh, L0C.data(), L0N.data(), dc0, dn0, dm0);
    }
  });
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    CwScratch w(x, true);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      bw_prepare(x, w, bh, c, h, dh);
      bw_chunk_grads(x, w, bh, c, lamC.data() + task * DK * DV, lamN.data() + task * DK, dq, dk, dv, di);
      std::copy_n(w.r.data(), x.len(c), rsum.data() + bh * S + c * L);
    }
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

struct StepGates {
  float fp, ip, m;  // f' = exp(logσ(f̃) + m_{t-1} − m_t), i' = exp(ĩ − m_t), m_t
};

inline StepGates step_gates(float fpre, float ipre, float mprev) {
  const double lf = logsig_d(fpre) + static_cast<double>(mprev);
  const float m = static_cast<float>(std::max(lf, static_cast<double>(ipre)));
  return {static_cast<float>(std::exp(lf - m)), static_cast<float>(std::exp(static_cast<double>(ipre) - m)), m};
}

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
          float gh = 0.0f;
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
