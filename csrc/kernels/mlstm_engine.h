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
// Work split. Forward: (A) per (b, h), the inter-chunk recurrence of (C, n, m), sequential over chunks, one
// DK×DV×l GEMM per chunk, every chunk's entering state saved; (B) per (b, h, chunk), the intra-chunk outputs
// (QKᵀ, P·V, βQ·C_c: three GEMMs). Backward: (A) per (b, h), the reverse recurrence of the state cotangents
// Λ_c (one GEMM per chunk); (B) per (b, h, chunk), the L×L tiles recomputed and the five gradient products;
// (C) per (b, h), the suffix sum giving ∂f̃. The recurrent form runs one task per (b, h) over all steps.
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
// Chunkwise forward (XLSTM_SPEC §4.5)

void cw_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q, const float* k,
                const float* v, const float* ig, const float* fg, const float* c0, const float* n0, const float* m0,
                const MlstmDims& d, int64_t L, float eps, bool parallel_init) {
  const int64_t B = d.B, NH = d.NH, S = d.S, DK = d.DK, DV = d.DV, BH = B * NH;
  const int64_t NC = mlstm_num_chunks(S, L);
  const SavedLayout lay{NC, DK, DV, S};
  const int64_t W = lay.size();
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(DK)));
  const bool empty_init = parallel_init && c0 == nullptr;

  // (A) inter-chunk recurrence, per (b, h)
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    ChunkGates cg;
    cg.resize(L);
    std::vector<float> Ks(L * DK);
    for (int64_t bh = lo; bh < hi; ++bh) {
      float* sv = saved + bh * W;
      float *Cs = sv + lay.c_off(), *Ns = sv + lay.n_off(), *Ms = sv + lay.m_off();
      if (c0) {
        std::memcpy(Cs, c0 + bh * DK * DV, sizeof(float) * DK * DV);
        std::memcpy(Ns, n0 + bh * DK, sizeof(float) * DK);
        Ms[0] = m0[bh];
      } else {
        std::fill_n(Cs, DK * DV, 0.0f);
        std::fill_n(Ns, DK, 0.0f);
        Ms[0] = empty_init ? -std::numeric_limits<float>::infinity() : 0.0f;
      }
      const float* kb = k + bh * S * DK;
      const float* vb = v + bh * S * DV;
      double F = 0.0;  // Σ of every φ: the log-decay of the zero-state term (m_0 = 0 convention)
      for (int64_t c = 0; c < NC; ++c) {
        const int64_t t0 = c * L, l = chunk_len(S, L, c);
        const double mc = Ms[c];
        const bool has = std::isfinite(mc);
        cg.compute(fg + bh * S + t0, ig + bh * S + t0, l, false, 0.0);
        F += cg.g;
        double amax = kNegInf;
        for (int64_t t = 0; t < l; ++t) amax = std::max(amax, cg.a[t]);
        // m_{c+1} = max(g_c + m_c, max_τ a_τ); γ_c = exp(g_c + m_c − m_{c+1})
        const float mn = static_cast<float>(has ? std::max(cg.g + mc, amax) : amax);
        const float gamma = has ? static_cast<float>(std::exp(cg.g + mc - mn)) : 0.0f;
        // Ks_τ = s·α_τ·k_τ with α_τ = exp(a_τ − m_{c+1})
        for (int64_t t = 0; t < l; ++t) {
          const float al = s * static_cast<float>(std::exp(cg.a[t] - static_cast<double>(mn)));
          const float* kr = kb + (t0 + t) * DK;
          float* dst = Ks.data() + t * DK;
#pragma omp simd
          for (int64_t j = 0; j < DK; ++j) dst[j] = al * kr[j];
        }
        // C_{c+1} = γ C_c + Ksᵀ V ;  n_{c+1} = γ n_c + Σ_τ Ks_τ
        const float* Cc = Cs + c * DK * DV;
        float* Cn = Cs + (c + 1) * DK * DV;
#pragma omp simd
        for (int64_t x = 0; x < DK * DV; ++x) Cn[x] = gamma * Cc[x];
        gemm(true, false, DK, DV, l, 1.0f, Ks.data(), DK, vb + t0 * DV, DV, 1.0f, Cn, DV);
        const float* nc = Ns + c * DK;
        float* nn = Ns + (c + 1) * DK;
        for (int64_t j = 0; j < DK; ++j) nn[j] = gamma * nc[j];
        for (int64_t t = 0; t < l; ++t) {
          const float* kr = Ks.data() + t * DK;
#pragma omp simd
          for (int64_t j = 0; j < DK; ++j) nn[j] += kr[j];
        }
        Ms[c + 1] = mn;
      }
      // final state, in the m_0 = 0 convention also after a parallel-semantics run
      const float mint = Ms[NC];
      const float mout = empty_init ? static_cast<float>(std::max(static_cast<double>(mint), F)) : mint;
      const float scale = static_cast<float>(std::exp(static_cast<double>(mint) - mout));
      Ms[NC + 1] = mout;
      const float* Cf = Cs + NC * DK * DV;
      const float* nf = Ns + NC * DK;
      float* cl = c_last + bh * DK * DV;
#pragma omp simd
      for (int64_t x = 0; x < DK * DV; ++x) cl[x] = scale * Cf[x];
      for (int64_t j = 0; j < DK; ++j) n_last[bh * DK + j] = scale * nf[j];
      m_last[bh] = mout;
    }
  });

  // (B) intra-chunk outputs, per (b, h, chunk)
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    ChunkGates cg;
    cg.resize(L);
    std::vector<float> P(L * L), Qb(L * DK), beta(L);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      const int64_t t0 = c * L, l = chunk_len(S, L, c);
      const float* sv = saved + bh * W;
      const float* Cc = sv + lay.c_off() + c * DK * DV;
      const float* nc = sv + lay.n_off() + c * DK;
      const double mc = sv[lay.m_off() + c];
      const bool has = std::isfinite(mc);
      float* mu = saved + bh * W + lay.mu_off() + t0;
      float* den = saved + bh * W + lay.den_off() + t0;
      const float* Q = q + (bh * S + t0) * DK;
      const float* K = k + (bh * S + t0) * DK;
      const float* V = v + (bh * S + t0) * DV;
      float* Hc = h + (bh * S + t0) * DV;
      cg.compute(fg + bh * S + t0, ig + bh * S + t0, l, has, mc);
      for (int64_t t = 0; t < l; ++t) {
        mu[t] = static_cast<float>(cg.b[t] + cg.M[t]);
        beta[t] = has ? static_cast<float>(std::exp(mc - cg.M[t])) : 0.0f;
      }
      // P = s (Q Kᵀ) ⊙ E (causal); den_τ = β_τ q_τ·n_c + Σ_σ P_τσ
      gemm(false, true, l, l, DK, s, Q, DK, K, DK, 0.0f, P.data(), l);
      for (int64_t t = 0; t < l; ++t) {
        float* row = P.data() + t * l;
        const double Mt = cg.M[t];
        const double* w = cg.w.data();
        float rs = 0.0f;
#pragma omp simd reduction(+ : rs)
        for (int64_t x = 0; x <= t; ++x) {
          const float p = row[x] * fm_exp(static_cast<float>(w[x] - Mt));
          row[x] = p;
          rs += p;
        }
        for (int64_t x = t + 1; x < l; ++x) row[x] = 0.0f;
        den[t] = rs;
      }
      // num = P V + (β ⊙ Q) C_c
      gemm(false, false, l, DV, l, 1.0f, P.data(), l, V, DV, 0.0f, Hc, DV);
      if (has) {
        for (int64_t t = 0; t < l; ++t) {
          const float bt = beta[t];
          const float* qr = Q + t * DK;
          float* dst = Qb.data() + t * DK;
          float qn = 0.0f;
#pragma omp simd reduction(+ : qn)
          for (int64_t j = 0; j < DK; ++j) {
            dst[j] = bt * qr[j];
            qn += dst[j] * nc[j];
          }
          den[t] += qn;
        }
        gemm(false, false, l, DV, DK, 1.0f, Qb.data(), DK, Cc, DV, 1.0f, Hc, DV);
      }
      // h = num / (max(|den|, exp(−μ)) + ε)
      for (int64_t t = 0; t < l; ++t) {
        const double dd = std::max(std::fabs(static_cast<double>(den[t])), std::exp(-static_cast<double>(mu[t])));
        const float inv = static_cast<float>(1.0 / (dd + eps));
        float* hr = Hc + t * DV;
#pragma omp simd
        for (int64_t x = 0; x < DV; ++x) hr[x] *= inv;
      }
    }
  });
}

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
    for (int64_t x = 0; x < DV; ++x) {
      dr[x] = gr[x] * inv;
      gh += gr[x] * hr[x];
    }
    rho[t] = a > floor_ ? (den[t] > 0 ? -gh * inv : gh * inv) : 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Chunkwise backward (XLSTM_SPEC §4.6)

void cw_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0, float* dm0,
                 const float* saved, const float* h, const float* dh, const float* dc_last, const float* dn_last,
                 const float* q, const float* k, const float* v, const float* ig, const float* fg, const MlstmDims& d,
                 int64_t L, float eps) {  // parallel_init is recorded in saved's m_c (−inf)
  const int64_t B = d.B, NH = d.NH, S = d.S, DK = d.DK, DV = d.DV, BH = B * NH;
  const int64_t NC = mlstm_num_chunks(S, L);
  const SavedLayout lay{NC, DK, DV, S};
  const int64_t W = lay.size();
  const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(DK)));
  // lamC/lamN slot c = Λ_{c+1} = [∂C_{c+1} | ∂n_{c+1}] (internal stabiliser of the state leaving chunk c)
  std::vector<float> lamC(static_cast<size_t>(BH * NC * DK * DV)), lamN(static_cast<size_t>(BH * NC * DK));
  std::vector<double> rsum(static_cast<size_t>(BH * S));  // q·∂q − k·∂k per position
  std::vector<double> cterm(static_cast<size_t>(BH), 0.0);  // ⟨∂C_last, C_last⟩ + ⟨∂n_last, n_last⟩

  // (A) reverse inter-chunk recurrence Λ_c = γ_c Λ_{c+1} + (β ⊙ Q_c)ᵀ [δ_c | ρ_c]
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    ChunkGates cg;
    cg.resize(L);
    std::vector<float> Qb(L * DK), delta(L * DV), rho(L), L0C(DK * DV), L0N(DK);
    for (int64_t bh = lo; bh < hi; ++bh) {
      const float* sv = saved + bh * W;
      const float* Ms = sv + lay.m_off();
      float* LC = lamC.data() + bh * NC * DK * DV;
      float* LN = lamN.data() + bh * NC * DK;
      // Λ_NC: the final-state cotangent, rescaled from the returned stabiliser m_last to the internal one
      const float fac = static_cast<float>(std::exp(static_cast<double>(Ms[NC]) - Ms[NC + 1]));
      float* top = LC + (NC - 1) * DK * DV;
      float* topn = LN + (NC - 1) * DK;
      double ct = 0.0;
      const float* Cf = sv + lay.c_off() + NC * DK * DV;
      const float* nf = sv + lay.n_off() + NC * DK;
      for (int64_t x = 0; x < DK * DV; ++x) {
        top[x] = dc_last ? fac * dc_last[bh * DK * DV + x] : 0.0f;
        ct += static_cast<double>(top[x]) * Cf[x];
      }
      for (int64_t j = 0; j < DK; ++j) {
        topn[j] = dn_last ? fac * dn_last[bh * DK + j] : 0.0f;
        ct += static_cast<double>(topn[j]) * nf[j];
      }
      cterm[bh] = ct;
      for (int64_t c = NC - 1; c >= 0; --c) {
        const int64_t t0 = c * L, l = chunk_len(S, L, c);
        const double mc = Ms[c];
        const bool has = std::isfinite(mc);
        float* dstC = c > 0 ? LC + (c - 1) * DK * DV : L0C.data();
        float* dstN = c > 0 ? LN + (c - 1) * DK : L0N.data();
        const float* srcC = LC + c * DK * DV;
        const float* srcN = LN + c * DK;
        if (!has) {  // no state enters this chunk (parallel semantics, first chunk): Λ_c is not needed
          std::fill_n(dstC, DK * DV, 0.0f);
          std::fill_n(dstN, DK, 0.0f);
          continue;
        }
        cg.compute(fg + bh * S + t0, ig + bh * S + t0, l, true, mc);
        const float gamma = static_cast<float>(std::exp(cg.g + mc - static_cast<double>(Ms[c + 1])));
        output_cotangents(delta.data(), rho.data(), dh + (bh * S + t0) * DV, h + (bh * S + t0) * DV,
                          sv + lay.mu_off() + t0, sv + lay.den_off() + t0, l, DV, eps);
        const float* Q = q + (bh * S + t0) * DK;
        for (int64_t j = 0; j < DK; ++j) dstN[j] = gamma * srcN[j];
        for (int64_t t = 0; t < l; ++t) {
          const float bt = static_cast<float>(std::exp(mc - cg.M[t]));
          const float* qr = Q + t * DK;
          float* qb = Qb.data() + t * DK;
          const float rt = rho[t];
#pragma omp simd
          for (int64_t j = 0; j < DK; ++j) {
            qb[j] = bt * qr[j];
            dstN[j] += qb[j] * rt;
          }
        }
#pragma omp simd
        for (int64_t x = 0; x < DK * DV; ++x) dstC[x] = gamma * srcC[x];
        gemm(true, false, DK, DV, l, 1.0f, Qb.data(), DK, delta.data(), DV, 1.0f, dstC, DV);
      }
      // initial state: ∂C_0 = Λ_0[:, :DV], ∂n_0 = Λ_0[:, DV], ∂m_0 = ⟨∂C_0, C_0⟩ + ⟨∂n_0, n_0⟩
      const float* C0 = sv + lay.c_off();
      const float* N0 = sv + lay.n_off();
      double dm = 0.0;
      for (int64_t x = 0; x < DK * DV; ++x) dm += static_cast<double>(L0C[x]) * C0[x];
      for (int64_t j = 0; j < DK; ++j) dm += static_cast<double>(L0N[j]) * N0[j];
      if (dc0) std::memcpy(dc0 + bh * DK * DV, L0C.data(), sizeof(float) * DK * DV);
      if (dn0) std::memcpy(dn0 + bh * DK, L0N.data(), sizeof(float) * DK);
      if (dm0) dm0[bh] = std::isfinite(static_cast<double>(Ms[0])) ? static_cast<float>(dm) : 0.0f;
    }
  });

  // (B) per chunk: recompute the L×L tiles, then ∂q, ∂k, ∂v, ∂ĩ
  parallel_for(BH * NC, 1, [&](int64_t lo, int64_t hi) {
    ChunkGates cg;
    cg.resize(L);
    std::vector<float> P(L * L), E(L * L), Om(L * L), delta(L * DV), rho(L), beta(L), tmp(L * std::max(DK, DV));
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t bh = task / NC, c = task % NC;
      const int64_t t0 = c * L, l = chunk_len(S, L, c);
      const float* sv = saved + bh * W;
      const float* Cc = sv + lay.c_off() + c * DK * DV;
      const float* nc = sv + lay.n_off() + c * DK;
      const double mc = sv[lay.m_off() + c];
      const double mn = sv[lay.m_off() + c + 1];
      const bool has = std::isfinite(mc);
      const float* LC = lamC.data() + (bh * NC + c) * DK * DV;  // Λ_{c+1}
      const float* LN = lamN.data() + (bh * NC + c) * DK;
      const float* Q = q + (bh * S + t0) * DK;
      const float* K = k + (bh * S + t0) * DK;
      const float* V = v + (bh * S + t0) * DV;
      float* dQ = dq + (bh * S + t0) * DK;
      float* dK = dk + (bh * S + t0) * DK;
      float* dV = dv + (bh * S + t0) * DV;
      cg.compute(fg + bh * S + t0, ig + bh * S + t0, l, has, mc);
      for (int64_t t = 0; t < l; ++t) beta[t] = has ? static_cast<float>(std::exp(mc - cg.M[t])) : 0.0f;
      output_cotangents(delta.data(), rho.data(), dh + (bh * S + t0) * DV, h + (bh * S + t0) * DV,
                        sv + lay.mu_off() + t0, sv + lay.den_off() + t0, l, DV, eps);
      fill_decay(E.data(), cg.w.data(), cg.M.data(), l);
      // P = s (Q Kᵀ) ⊙ E
      gemm(false, true, l, l, DK, s, Q, DK, K, DK, 0.0f, P.data(), l);
#pragma omp simd
      for (int64_t x = 0; x < l * l; ++x) P[x] *= E[x];
      // Ω = (δ Vᵀ + ρ 1ᵀ) ⊙ E
      gemm(false, true, l, l, DV, 1.0f, delta.data(), DV, V, DV, 0.0f, Om.data(), l);
      for (int64_t t = 0; t < l; ++t) {
        float* row = Om.data() + t * l;
        const float* er = E.data() + t * l;
        const float rt = rho[t];
#pragma omp simd
        for (int64_t x = 0; x < l; ++x) row[x] = (row[x] + rt) * er[x];
      }
      // ∂q = s Ω K + β ⊙ (δ C_cᵀ + ρ n_cᵀ)
      gemm(false, false, l, DK, l, s, Om.data(), l, K, DK, 0.0f, dQ, DK);
      if (has) {
        for (int64_t t = 0; t < l; ++t) {
          const float bt = beta[t];
          const float* dr = delta.data() + t * DV;
          float* dst = tmp.data() + t * DV;
#pragma omp simd
          for (int64_t x = 0; x < DV; ++x) dst[x] = bt * dr[x];
        }
        gemm(false, true, l, DK, DV, 1.0f, tmp.data(), DV, Cc, DV, 1.0f, dQ, DK);
        for (int64_t t = 0; t < l; ++t) {
          const float br = beta[t] * rho[t];
          float* dst = dQ + t * DK;
#pragma omp simd
          for (int64_t j = 0; j < DK; ++j) dst[j] += br * nc[j];
        }
      }
      // α_σ = exp(a_σ − m_{c+1}) (scaled by s below)
      std::vector<float>& alpha = beta;  // β is no longer needed
      for (int64_t t = 0; t < l; ++t) alpha[t] = s * static_cast<float>(std::exp(cg.a[t] - mn));
      // ∂k = s Ωᵀ Q + (s α ⊙ V) Λᶜᵀ + s α Λⁿ
      gemm(true, false, l, DK, l, s, Om.data(), l, Q, DK, 0.0f, dK, DK);
      for (int64_t t = 0; t < l; ++t) {
        const float at = alpha[t];
        const float* vr = V + t * DV;
        float* dst = tmp.data() + t * DV;
#pragma omp simd
        for (int64_t x = 0; x < DV; ++x) dst[x] = at * vr[x];
      }
      gemm(false, true, l, DK, DV, 1.0f, tmp.data(), DV, LC, DV, 1.0f, dK, DK);
      for (int64_t t = 0; t < l; ++t) {
        const float at = alpha[t];
        float* dst = dK + t * DK;
#pragma omp simd
        for (int64_t j = 0; j < DK; ++j) dst[j] += at * LN[j];
      }
      // ∂v = Pᵀ δ + (s α ⊙ K) Λᶜ
      gemm(true, false, l, DV, l, 1.0f, P.data(), l, delta.data(), DV, 0.0f, dV, DV);
      for (int64_t t = 0; t < l; ++t) {
        const float at = alpha[t];
        const float* kr = K + t * DK;
        float* dst = tmp.data() + t * DK;
#pragma omp simd
        for (int64_t j = 0; j < DK; ++j) dst[j] = at * kr[j];
      }
      gemm(false, false, l, DV, DK, 1.0f, tmp.data(), DK, LC, DV, 1.0f, dV, DV);
      // ∂ĩ = k·∂k; q·∂q − k·∂k for the forget-gate suffix sums
      for (int64_t t = 0; t < l; ++t) {
        const float *qr = Q + t * DK, *kr = K + t * DK, *dqr = dQ + t * DK, *dkr = dK + t * DK;
        double a = 0.0, bsum = 0.0;
        for (int64_t j = 0; j < DK; ++j) {
          a += static_cast<double>(qr[j]) * dqr[j];
          bsum += static_cast<double>(kr[j]) * dkr[j];
        }
        di[bh * S + t0 + t] = static_cast<float>(bsum);
        rsum[bh * S + t0 + t] = a - bsum;
      }
    }
  });

  // (C) ∂f̃_t = σ(−f̃_t) (Σ_{u≥t} (q_u·∂q_u − k_u·∂k_u) + ⟨Λ_NC, C'_NC⟩)
  parallel_for(BH, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t bh = lo; bh < hi; ++bh) {
      double acc = cterm[bh];
      for (int64_t t = S - 1; t >= 0; --t) {
        acc += rsum[bh * S + t];
        df[bh * S + t] = static_cast<float>(acc * sigmoid_d(-static_cast<double>(fg[bh * S + t])));
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
