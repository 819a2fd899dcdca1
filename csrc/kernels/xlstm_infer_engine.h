// The per-token program behind xlstm_infer.h, written once and compiled per ISA (xlstm_infer.cc: portable flags,
// xlstm_infer_avx2.cc, xlstm_infer_avx512.cc); the compiler vectorises the `omp simd` loops and
// lowers the GCC/Clang vector-extension code to each target's registers.
// Everything has internal linkage (anonymous namespace) so the per-ISA copies never merge at link time.
// Before including, a file defines XLSTM_INFER_VW (floats per SIMD register: 16 for AVX-512, 8 for AVX2, 4 for the
// portable SSE/NEON build) and XLSTM_INFER_NB (rows per register block of the dense products), sized so the
// accumulators fit the register file. The hot loops use GCC vector extensions of that width, so their
// accumulators live in registers on every target.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>

#include "kernels/fast_math.h"
#include "kernels/recurrent_cells.h"
#include "kernels/threadpool.h"
#include "kernels/xlstm_infer.h"

#ifndef XLSTM_INFER_VW
#error "define XLSTM_INFER_VW and XLSTM_INFER_NB before including xlstm_infer_engine.h"
#endif

namespace xlstm {
namespace {

constexpr int kVW = XLSTM_INFER_VW;   // floats per vector register
constexpr int kCW = 4 * kVW;           // columns of a panel per register pass (4 registers per row)
constexpr int kNB = XLSTM_INFER_NB;
static_assert(kInferPanel % kCW == 0, "a panel must split into whole register passes");

// may_alias: like the compilers' own intrinsic types, these views read and write plain float arrays
typedef float vecf __attribute__((vector_size(kVW * sizeof(float)), __may_alias__));
typedef float vecf_u __attribute__((vector_size(kVW * sizeof(float)), __may_alias__, aligned(4)));  // unaligned

inline vecf vload(const float* p) { return *reinterpret_cast<const vecf_u*>(p); }
inline void vstore(float* p, vecf v) { *reinterpret_cast<vecf_u*>(p) = v; }
inline vecf vbroadcast(float x) { return vecf{} + x; }
inline float hsum(vecf v) {
  float s = 0.0f;
  for (int i = 0; i < kVW; ++i) s += v[i];
  return s;
}

inline void infer_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One thread's walk through the phases of a call (see the header comment of xlstm_infer.h).
struct Team {
  InferPhaseCounter* c;
  int64_t p = 0;
  template <class F>
  void phase(int64_t n, F&& fn) {
    InferPhaseCounter& pc = c[p++];
    for (;;) {
      const int64_t i = pc.claim.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) break;
      fn(i);
      pc.done.fetch_add(1, std::memory_order_release);
    }
    // the items still running are being computed by another thread right now: wait for them (spin ~20 us, then
    // yield: on oversubscribed cores that thread may have been descheduled in the middle of its item)
    for (int spins = 0; pc.done.load(std::memory_order_acquire) < n; ++spins) {
      if (spins < 512) infer_relax();
      else std::this_thread::yield();
    }
  }
};

// ---------------------------------------------------------------------------------------------------------------
// Row primitives

inline float silu(float x) { return x / (1.0f + fm_exp(-x)); }

// y = (x − mean)/sqrt(var + eps) · gamma over n elements (biased variance; XLSTM_SPEC §5.3). y may alias x.
inline void layer_norm(float* y, const float* x, const float* gamma, int64_t n, float eps = 1e-5f) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(n);
  float sq = 0.0f;
#pragma omp simd reduction(+ : sq)
  for (int64_t i = 0; i < n; ++i) {
    const float d = x[i] - mean;
    sq += d * d;
  }
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  if (gamma) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd * gamma[i];
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * rstd;
  }
}

inline float dot(const float* a, const float* b, int64_t n) {
  vecf s0 = vecf{}, s1 = vecf{}, s2 = vecf{}, s3 = vecf{};
  int64_t i = 0;
  for (; i + 4 * kVW <= n; i += 4 * kVW) {
    s0 += vload(a + i) * vload(b + i);
    s1 += vload(a + i + kVW) * vload(b + i + kVW);
    s2 += vload(a + i + 2 * kVW) * vload(b + i + 2 * kVW);
    s3 += vload(a + i + 3 * kVW) * vload(b + i + 3 * kVW);
  }
  for (; i + kVW <= n; i += kVW) s0 += vload(a + i) * vload(b + i);
  float s = hsum((s0 + s1) + (s2 + s3));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// acc[0:N] += Σ_d x[d] · W[d][0:N]  (W row-major [K][N]); columns in register blocks of 8 vectors
inline void vecmat_acc(float* acc, const float* x, const float* W, int64_t K, int64_t N) {
  int64_t c0 = 0;
  for (; c0 + 8 * kVW <= N; c0 += 8 * kVW) {
    vecf a[8];
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) a[q] = vload(acc + c0 + q * kVW);
    for (int64_t d = 0; d < K; ++d) {
      const vecf xv = vbroadcast(x[d]);
      const float* w = W + d * N + c0;
#pragma GCC unroll 8
      for (int q = 0; q < 8; ++q) a[q] += xv * vload(w + q * kVW);
    }
#pragma GCC unroll 8
    for (int q = 0; q < 8; ++q) vstore(acc + c0 + q * kVW, a[q]);
  }
  for (; c0 + kVW <= N; c0 += kVW) {
    vecf a = vload(acc + c0);
    for (int64_t d = 0; d < K; ++d) a += vbroadcast(x[d]) * vload(W + d * N + c0);
    vstore(acc + c0, a);
  }
  for (; c0 < N; ++c0) {
    float a = acc[c0];
    for (int64_t d = 0; d < K; ++d) a += x[d] * W[d * N + c0];
    acc[c0] = a;
  }
}

typedef int32_t veci __attribute__((vector_size(kVW * sizeof(int32_t))));

// r[l] = x[mask[l]]
inline vecf permute(vecf x, veci mask) {
#if defined(__clang__)
  vecf r;
  for (int l = 0; l < kVW; ++l) r[l] = x[mask[l]];
  return r;
#else
  return __builtin_shuffle(x, mask);
#endif
}

// Lane permutations for headwise(): lane l of masks[d] reads lane (l / Bq)*Bq + d, i.e. input d of its block.
struct HeadwiseMasks {
  veci m[kVW];
  explicit HeadwiseMasks(int64_t Bq) {
    if (Bq > kVW || kVW % Bq) return;
    for (int64_t d = 0; d < Bq; ++d)
      for (int l = 0; l < kVW; ++l) m[d][l] = static_cast<int32_t>((l / Bq) * Bq + d);
  }
};

// Block-diagonal projection (XLSTM_SPEC §5.1) for channels [c0, c1) (c0 a multiple of Bq; indices absolute):
// y[c] = b[c] + Σ_d x[(c/Bq)*Bq + d] · Wx[d][c], with Wx[d][c] = W[c/Bq][c%Bq][d] (the expanded layout, ld = row
// stride of Wx). When Bq divides the vector width, a vector of outputs takes its inputs by lane permutations.
inline void headwise(float* y, const float* x, const float* Wx, int64_t ld, const float* b, int64_t c0, int64_t c1,
                     int64_t Bq, const HeadwiseMasks& hm) {
  int64_t c = c0;
  if (Bq <= kVW && kVW % Bq == 0) {
    for (; c + kVW <= c1; c += kVW) {
      const vecf xv = vload(x + c);
      vecf acc = b ? vload(b + c) : vecf{};
      for (int64_t d = 0; d < Bq; ++d) acc += permute(xv, hm.m[d]) * vload(Wx + d * ld + c);
      vstore(y + c, acc);
    }
  }
  for (; c < c1; ++c) {
    float acc = b ? b[c] : 0.0f;
    const int64_t base = (c / Bq) * Bq;
    for (int64_t d = 0; d < Bq; ++d) acc += x[base + d] * Wx[d * ld + c];
    y[c] = acc;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Dense projections on the packed panels

// Y[b][c0 + j] (=, or += with accumulate) Σ_i X[b][i] · panel[i][j] (+ bias[j]) for NB rows and the ncols valid
// columns of one panel, in register passes of kCW columns.
template <int NB>
inline void dense_rows(float* Y, int64_t ldy, const float* X, int64_t ldx, const float* panel, const float* bias,
                       int64_t in, int ncols, bool accumulate) {
  for (int c0 = 0; c0 < ncols; c0 += kCW) {
    vecf a[NB][4];
#pragma GCC unroll 8
    for (int b = 0; b < NB; ++b) a[b][0] = a[b][1] = a[b][2] = a[b][3] = vecf{};
    const float* pc = panel + c0;  // 64-byte aligned: panels are kInferPanel floats wide
    for (int64_t i = 0; i < in; ++i) {
      const vecf* pr = reinterpret_cast<const vecf*>(pc + i * kInferPanel);
      const vecf w0 = pr[0], w1 = pr[1], w2 = pr[2], w3 = pr[3];
#pragma GCC unroll 8
      for (int b = 0; b < NB; ++b) {
        const vecf xv = vbroadcast(X[b * ldx + i]);
        a[b][0] += xv * w0;
        a[b][1] += xv * w1;
        a[b][2] += xv * w2;
        a[b][3] += xv * w3;
      }
    }
    const int nc = std::min(kCW, ncols - c0);
    for (int b = 0; b < NB; ++b) {
      float* y = Y + b * ldy + c0;
      if (bias)
        for (int q = 0; q < 4; ++q) a[b][q] += vload(bias + c0 + q * kVW);
      if (nc == kCW) {
        for (int q = 0; q < 4; ++q) vstore(y + q * kVW, accumulate ? vload(y + q * kVW) + a[b][q] : a[b][q]);
      } else {
        float tmp[kCW];
        for (int q = 0; q < 4; ++q) vstore(tmp + q * kVW, a[b][q]);
        for (int j = 0; j < nc; ++j) y[j] = accumulate ? y[j] + tmp[j] : tmp[j];
      }
    }
  }
}

// Rows [r0, r1) of Y (ldy) against panel p of D.
inline void dense_item(const InferDense& D, float* Y, int64_t ldy, const float* X, int64_t ldx, int64_t r0, int64_t r1,
                       int64_t p, bool accumulate) {
  const float* panel = D.w.p + p * D.in * kInferPanel;
  const float* bias = D.b.p ? D.b.p + p * kInferPanel : nullptr;
  const int ncols = static_cast<int>(std::min<int64_t>(kInferPanel, D.out - p * kInferPanel));
  float* Yp = Y + p * kInferPanel;
  int64_t r = r0;
  for (; r + kNB <= r1; r += kNB)
    dense_rows<kNB>(Yp + r * ldy, ldy, X + r * ldx, ldx, panel, bias, D.in, ncols, accumulate);
  for (; r < r1; ++r) dense_rows<1>(Yp + r * ldy, ldy, X + r * ldx, ldx, panel, bias, D.in, ncols, accumulate);
}

constexpr int64_t kRowGroup = 16;  // rows per dense item

// Y [M, D.out] (ldy) = or += X [M, D.in] (ldx) · Wᵀ (+ b); items = panels × row groups.
inline void dense_phase(Team& tm, const InferDense& D, float* Y, int64_t ldy, const float* X, int64_t ldx, int64_t M,
                        bool accumulate) {
  const int64_t groups = (M + kRowGroup - 1) / kRowGroup;
  tm.phase(D.panels * groups, [&](int64_t i) {
    const int64_t p = i / groups, g = i % groups;
    dense_item(D, Y, ldy, X, ldx, g * kRowGroup, std::min(M, (g + 1) * kRowGroup), p, accumulate);
  });
}

constexpr int64_t kNormRows = 8;  // rows per layer-norm item

inline void norm_phase(Team& tm, float* Y, const float* X, const float* gamma, int64_t M, int64_t E) {
  tm.phase((M + kNormRows - 1) / kNormRows, [&](int64_t i) {
    for (int64_t r = i * kNormRows; r < std::min(M, (i + 1) * kNormRows); ++r) layer_norm(Y + r * E, X + r * E, gamma, E);
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Depthwise causal conv step over channels [c0, c1) (XLSTM_SPEC §5.2, step semantics): shift the window [K][F]
// one step towards the past, write x into the last slot, y = bias + Σ_j window[j] · w[j]; out = SiLU(y).
inline void conv_step_silu(float* out, float* win, const float* x, const float* wT, const float* bias, int64_t K,
                           int64_t F, int64_t c0, int64_t c1) {
  for (int64_t j = 0; j + 1 < K; ++j) {
    float* dst = win + j * F;
    const float* src = win + (j + 1) * F;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) dst[c] = src[c];
  }
  float* last = win + (K - 1) * F;
#pragma omp simd
  for (int64_t c = c0; c < c1; ++c) last[c] = x[c];
#pragma omp simd
  for (int64_t c = c0; c < c1; ++c) out[c] = bias[c];
  for (int64_t j = 0; j < K; ++j) {
    const float* wj = wT + j * F;
    const float* xj = win + j * F;
#pragma omp simd
    for (int64_t c = c0; c < c1; ++c) out[c] += xj[c] * wj[c];
  }
#pragma omp simd
  for (int64_t c = c0; c < c1; ++c) out[c] = silu(out[c]);
}

constexpr int kU = kVW >= 16 ? 4 : 2;  // positions per pass over the mLSTM memory C (register budget)

// One pass over the memory C [DH][DH] (rows = key dim) for U consecutive positions u: C ← fp[u]·C + kk[u] v[u]ᵀ,
// then num[u] = Cᵀ q[u] (XLSTM_SPEC §4.3; kk[u] = i'·k/√DH). Each 2-vector column block of C is loaded and stored
// once for all U positions, with the U numerators in registers.
template <int U>
inline void mlstm_pass(float* C, int64_t DH, const float* const* kk, const float* const* q, const float* const* v,
                       const float* fp, float* const* num) {
  if (DH % (2 * kVW) == 0) {
    for (int64_t xb = 0; xb < DH; xb += 2 * kVW) {
      vecf acc[U][2], vv[U][2];
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        acc[u][0] = acc[u][1] = vecf{};
        vv[u][0] = vload(v[u] + xb);
        vv[u][1] = vload(v[u] + xb + kVW);
      }
      for (int64_t j = 0; j < DH; ++j) {
        float* row = C + j * DH + xb;
        vecf c0 = vload(row), c1 = vload(row + kVW);
#pragma GCC unroll 4
        for (int u = 0; u < U; ++u) {
          const vecf f = vbroadcast(fp[u]), kb = vbroadcast(kk[u][j]), qb = vbroadcast(q[u][j]);
          c0 = f * c0 + kb * vv[u][0];
          c1 = f * c1 + kb * vv[u][1];
          acc[u][0] += qb * c0;
          acc[u][1] += qb * c1;
        }
        vstore(row, c0);
        vstore(row + kVW, c1);
      }
#pragma GCC unroll 4
      for (int u = 0; u < U; ++u) {
        vstore(num[u] + xb, acc[u][0]);
        vstore(num[u] + xb + kVW, acc[u][1]);
      }
    }
    return;
  }
  for (int u = 0; u < U; ++u) {
    float* nu = num[u];
    const float* vu = v[u];
    const float f = fp[u];
#pragma omp simd
    for (int64_t x = 0; x < DH; ++x) nu[x] = 0.0f;
    for (int64_t j = 0; j < DH; ++j) {
      float* row = C + j * DH;
      const float kj = kk[u][j], qj = q[u][j];
#pragma omp simd
      for (int64_t x = 0; x < DH; ++x) {
        row[x] = f * row[x] + kj * vu[x];
        nu[x] += qj * row[x];
      }
    }
  }
}

// logσ(x) in double, as the mLSTM kernels' gate math (mlstm_engine.h)
inline double infer_logsig_d(double x) { return std::min(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }

// ---------------------------------------------------------------------------------------------------------------
// Blocks. Rows are r = b*T + t (batch row b, position t of this chunk).

void mlstm_block(Team& tm, InferSession& s, InferBlock& L, int64_t T) {
  const int64_t B = s.B, E = s.E, M = B * T, Di = L.Di, NH = L.NH, DH = L.DH, K = L.K, Bq = L.Bq;
  float *X = s.x.p, *XN = s.xn.p, *UP = s.up.p, *U = s.u.p, *XC = s.xc.p, *HG = s.hg.p;
  norm_phase(tm, XN, X, L.norm.p, M, E);
  dense_phase(tm, L.up, UP, 2 * Di, XN, E, M, false);  // [xm | z]
  // conv + SiLU and the q/k/v projections, per batch row and channel chunk (aligned to the q/k/v blocks)
  const int64_t CH = Bq * std::max<int64_t>(1, 64 / Bq), nch = (Di + CH - 1) / CH;
  const HeadwiseMasks hm(Bq);
  tm.phase(B * nch, [&](int64_t i) {
    const int64_t b = i / nch, c0 = (i % nch) * CH, c1 = std::min(Di, c0 + CH);
    float* win = L.conv_state.p + b * K * Di;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = b * T + t;
      const float* xm = UP + r * 2 * Di;
      float* xc = XC + r * Di;
      conv_step_silu(xc, win, xm, L.conv_w.p, L.conv_b.p, K, Di, c0, c1);
      float* u = U + r * 3 * Di;  // concat(q, k, v)
      headwise(u, xc, L.qw.p, Di, L.qb.p, c0, c1, Bq, hm);
      headwise(u + Di, xc, L.kw.p, Di, L.kb.p, c0, c1, Bq, hm);
      headwise(u + 2 * Di, xm, L.vw.p, Di, L.vb.p, c0, c1, Bq, hm);
    }
  });
  // the cell (XLSTM_SPEC §4.3), outnorm, skip and output gate, per (batch row, head) over the chunk's positions,
  // kU positions per pass over C (the gates do not depend on C, so their scalar recursion runs first)
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(DH)));
  tm.phase(B * NH, [&](int64_t i) {
    const int64_t b = i / NH, h = i % NH, bh = b * NH + h;
    float* C = L.c.p + bh * DH * DH;
    float* n = L.n.p + bh * DH;
    float m = L.m.p[bh];
    float* kkbuf = s.tmp.p + i * kU * DH;
    for (int64_t t0 = 0; t0 < T; t0 += kU) {
      const int nu = static_cast<int>(std::min<int64_t>(kU, T - t0));
      float fp[kU], mt[kU], den[kU];
      const float *q[kU], *v[kU], *kk[kU];
      float* num[kU];
      for (int u = 0; u < nu; ++u) {
        const int64_t r = b * T + t0 + u;
        const float* ur = U + r * 3 * Di;
        const float ipre = dot(ur, L.gw.p + h * 3 * Di, 3 * Di) + L.gb.p[h];
        const float fpre = dot(ur, L.gw.p + (NH + h) * 3 * Di, 3 * Di) + L.gb.p[NH + h];
        // m_t = max(logσ(f̃) + m_{t−1}, ĩ); f' = exp(logσ(f̃) + m_{t−1} − m_t); i' = exp(ĩ − m_t)
        const double lf = infer_logsig_d(fpre) + static_cast<double>(m);
        m = mt[u] = static_cast<float>(std::max(lf, static_cast<double>(ipre)));
        fp[u] = static_cast<float>(std::exp(lf - mt[u]));
        const float isk = static_cast<float>(std::exp(static_cast<double>(ipre) - mt[u])) * scale;
        const float* k = ur + Di + h * DH;
        float* kku = kkbuf + u * DH;
#pragma omp simd
        for (int64_t j = 0; j < DH; ++j) kku[j] = isk * k[j];
        kk[u] = kku;
        q[u] = ur + h * DH;
        v[u] = ur + 2 * Di + h * DH;
        num[u] = HG + r * Di + h * DH;
      }
      // C ← f' C + (i' k/√DH) vᵀ and num = Cᵀq for each position in turn
      switch (nu) {
        case 1: mlstm_pass<1>(C, DH, kk, q, v, fp, num); break;
        case 2: mlstm_pass<2>(C, DH, kk, q, v, fp, num); break;
        case 3: mlstm_pass<3>(C, DH, kk, q, v, fp, num); break;
        default: mlstm_pass<4>(C, DH, kk, q, v, fp, num); break;
      }
      for (int u = 0; u < nu; ++u) {  // n ← f' n + i' k/√DH, den = q·n
        float d = 0.0f;
        for (int64_t j = 0; j < DH; ++j) {
          n[j] = fp[u] * n[j] + kk[u][j];
          d += q[u][j] * n[j];
        }
        den[u] = d;
      }
      for (int u = 0; u < nu; ++u) {
        const int64_t r = b * T + t0 + u;
        float* hr = num[u];
        // h = Cᵀq / (max(|q·n|, exp(−m)) + ε)
        const double dd = std::max(std::fabs(static_cast<double>(den[u])), std::exp(-static_cast<double>(mt[u])));
        const float inv = static_cast<float>(1.0 / (dd + 1e-6));
#pragma omp simd
        for (int64_t x = 0; x < DH; ++x) hr[x] *= inv;
        layer_norm(hr, hr, L.outnorm.p + h * DH, DH);
        const float* xc = XC + r * Di + h * DH;
        const float* z = UP + r * 2 * Di + Di + h * DH;
        const float* skip = L.skip.p + h * DH;
#pragma omp simd
        for (int64_t x = 0; x < DH; ++x) hr[x] = (hr[x] + skip[x] * xc[x]) * silu(z[x]);
      }
    }
    L.m.p[bh] = m;
  });
  dense_phase(tm, L.down, X, E, HG, Di, M, true);  // x += proj_down h
}

void slstm_block(Team& tm, InferSession& s, InferBlock& L, int64_t T) {
  const int64_t B = s.B, E = s.E, M = B * T, NH = L.NH, DH = L.DH, K = L.K;
  float *X = s.x.p, *XN = s.xn.p;
  norm_phase(tm, XN, X, L.norm.p, M, E);
  // everything of the layer stays within one head: conv channels, the block-diagonal gate projections, R
  tm.phase(B * NH, [&](int64_t i) {
    const int64_t b = i / NH, h = i % NH;
    float* xc = s.tmp.p + i * 5 * DH;  // [DH] conv output, then [4DH] pre-activations
    float* acc = xc + DH;
    const float* Wc = L.wc.p + h * DH * 2 * DH;
    const float* Wn = L.wn.p + h * DH * 2 * DH;
    const float* Rh = L.R.p + h * DH * 4 * DH;
    const float* bh = L.bias.p + h * 4 * DH;
    const int64_t BE = B * E, off = b * E + h * DH;
    float* sh = L.state.p + off;  // component s at sh + s*BE
    for (int64_t t = 0; t < T; ++t) {
      const int64_t r = b * T + t;
      const float* xn = XN + r * E + h * DH;
      const float* xin = xn;
      if (K > 0) {
        // channels [h*DH, (h+1)*DH) of the window; conv_step_silu indexes absolute channels
        conv_step_silu(xc - h * DH, L.conv_state.p + b * K * E, XN + r * E, L.conv_w.p, L.conv_b.p, K, E, h * DH,
                       (h + 1) * DH);
        xin = xc;
      }
      // pre-activations (gate-major within the head: i, f, z, o): β + [i f](xc) + [z o](xn) + R h_{t−1}
      std::memcpy(acc, bh, sizeof(float) * 4 * DH);
      vecmat_acc(acc, xin, Wc, DH, 2 * DH);
      vecmat_acc(acc + 2 * DH, xn, Wn, DH, 2 * DH);
      vecmat_acc(acc, sh, Rh, DH, 4 * DH);
      const float *pi = acc, *pf = acc + DH, *pz = acc + 2 * DH, *po = acc + 3 * DH;
      if (!L.lstm) {
        float *hs = sh, *cs = sh + BE, *ns = sh + 2 * BE, *ms = sh + 3 * BE;
#pragma omp simd
        for (int64_t k = 0; k < DH; ++k) {
          float hv, cv, nv, mv;
          SlstmCell::forward(pi[k], pf[k], pz[k], po[k], cs[k], ns[k], ms[k], &hv, &cv, &nv, &mv);
          hs[k] = hv;
          cs[k] = cv;
          ns[k] = nv;
          ms[k] = mv;
        }
      } else {
        float *hs = sh, *cs = sh + BE;
#pragma omp simd
        for (int64_t k = 0; k < DH; ++k) {
          float hv, cv;
          LstmCell::forward(pi[k], pf[k], pz[k], po[k], cs[k], &hv, &cv);
          hs[k] = hv;
          cs[k] = cv;
        }
      }
      // group norm of this head's output, then the residual
      layer_norm(acc, sh, L.gn.p ? L.gn.p + h * DH : nullptr, DH);
      float* xr = X + r * E + h * DH;
#pragma omp simd
      for (int64_t k = 0; k < DH; ++k) xr[k] += acc[k];
    }
  });
}

// erfc(z) with fractional error below ~1e-6 (Numerical Recipes' erfcc, Chebyshev fit), branch-free so the GELU
// loop vectorises; the Tensor path's erfcf differs by far less than the 1e-4 parity tolerance.
inline float erfc_fast(float z) {
  const float a = fabsf(z);
  const float t = 1.0f / (1.0f + 0.5f * a);
  float p = 0.17087277f;
  p = fmaf(p, t, -0.82215223f);
  p = fmaf(p, t, 1.48851587f);
  p = fmaf(p, t, -1.13520398f);
  p = fmaf(p, t, 0.27886807f);
  p = fmaf(p, t, -0.18628806f);
  p = fmaf(p, t, 0.09678418f);
  p = fmaf(p, t, 0.37409196f);
  p = fmaf(p, t, 1.00002368f);
  p = fmaf(p, t, -1.26551223f);
  const float r = t * fm_exp(p - a * a);
  return z >= 0.0f ? r : 2.0f - r;
}

// g[c] = act(a[c]) · u[c] for c in [c0, c1) (XLSTM_SPEC §5.5; GELU in its exact erf form)
inline void gated_act(float* g, const float* a, const float* u, int64_t c0, int64_t c1, InferAct act) {
  switch (act) {
    case InferAct::Gelu:
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = a[c] * (0.5f * erfc_fast(-a[c] * 0.70710678118654752f)) * u[c];
      break;
    case InferAct::Relu:
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = (a[c] > 0.0f ? a[c] : 0.0f) * u[c];
      break;
    case InferAct::Relu2:
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = (a[c] > 0.0f ? a[c] * a[c] : 0.0f) * u[c];
      break;
    case InferAct::Sigmoid:
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = u[c] / (1.0f + fm_exp(-a[c]));
      break;
    case InferAct::Swish:
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = silu(a[c]) * u[c];
      break;
    case InferAct::Selu: {
      const float alpha = 1.6732632423543772f, lambda = 1.0507009873554805f;
#pragma omp simd
      for (int64_t c = c0; c < c1; ++c) g[c] = lambda * (a[c] > 0.0f ? a[c] : alpha * (fm_exp(a[c]) - 1.0f)) * u[c];
      break;
    }
  }
}

void ffn(Team& tm, InferSession& s, InferBlock& L, int64_t T) {
  const int64_t M = s.B * T, E = s.E, P = L.P;
  float *X = s.x.p, *XN = s.xn.p, *UP = s.up.p, *G = s.hg.p;
  norm_phase(tm, XN, X, L.ffn_norm.p, M, E);
  dense_phase(tm, L.ffn_up, UP, 2 * P, XN, E, M, false);  // [a | u]
  constexpr int64_t kCols = 256;
  const int64_t nc = (P + kCols - 1) / kCols;
  tm.phase(M * nc, [&](int64_t i) {
    const int64_t r = i / nc, c0 = (i % nc) * kCols, c1 = std::min(P, c0 + kCols);
    const float* a = UP + r * 2 * P;
    gated_act(G + r * P, a, a + P, c0, c1, L.act);
  });
  dense_phase(tm, L.ffn_down, X, E, G, P, M, true);
}

// The whole chunk: embedding, blocks, and (when logits != nullptr) the post norm and lm_head of the last position.
void program(Team& tm, InferSession& s, float* logits, const int32_t* tokens, int64_t S, int64_t t0, int64_t T) {
  const int64_t B = s.B, E = s.E, M = B * T;
  tm.phase((M + kNormRows - 1) / kNormRows, [&](int64_t i) {
    for (int64_t r = i * kNormRows; r < std::min(M, (i + 1) * kNormRows); ++r) {
      const int64_t b = r / T, t = r % T;
      std::memcpy(s.x.p + r * E, s.emb.p + static_cast<int64_t>(tokens[b * S + t0 + t]) * E, sizeof(float) * E);
    }
  });
  for (InferBlock& L : s.blocks) {
    if (L.slstm) slstm_block(tm, s, L, T);
    else mlstm_block(tm, s, L, T);
    if (L.has_ffn) ffn(tm, s, L, T);
  }
  if (!logits) return;
  tm.phase(B, [&](int64_t b) {
    const float* xr = s.x.p + (b * T + T - 1) * E;
    if (s.post) layer_norm(s.xf.p + b * E, xr, s.post_norm.p, E);
    else std::memcpy(s.xf.p + b * E, xr, sizeof(float) * E);
  });
  dense_phase(tm, s.head, logits, s.V, s.xf.p, E, B, false);
}

void run_chunk(InferSession& s, float* logits, const int32_t* tokens, int64_t S, int64_t t0, int64_t T) {
  for (int64_t i = 0; i < s.num_phases; ++i) {
    s.counters[i].claim.store(0, std::memory_order_relaxed);
    s.counters[i].done.store(0, std::memory_order_relaxed);
  }
  auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) {
      Team tm{s.counters.get()};
      program(tm, s, logits, tokens, S, t0, T);
    }
  };
  const int threads = num_threads();
  if (threads <= 1) body(0, 1);
  else parallel_for(threads, 1, body);
}

inline infer_detail::Impl make_infer_impl() { return infer_detail::Impl{&run_chunk}; }

}  // namespace
}  // namespace xlstm
