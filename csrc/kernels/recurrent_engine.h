// The sequence loops behind recurrent.h, written once and compiled per ISA (recurrent.cc: portable flags,
// recurrent_avx2.cc, recurrent_avx512.cc): the compiler vectorises the blocked loops for each target.
// Everything has internal linkage (anonymous namespace) so the per-ISA copies never merge at link time.
//
// Work split: heads are independent (block-diagonal R) and so are batch rows, so one task owns one head and a
// block of up to kRows batch rows for the WHOLE sequence: no synchronisation per time step. Within a task the
// recurrent product for all its rows shares each load of R (register-blocked over rows and 16..64 columns).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/recurrent.h"
#include "kernels/recurrent_cells.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

constexpr int kRows = 4;  // batch rows per task

// r[bb][0:G] = hprev[bb][0:DH] · Rh (DH x G), for bb < nb. Columns in blocks of KC so the accumulators stay
// in registers; G is a multiple of 4 (G = 4*DH).
template <int KC>
inline void matvec_rows_kc(int nb, int64_t DH, int64_t G, const float* hprev, const float* Rh, float* r) {
  for (int64_t c0 = 0; c0 < G; c0 += KC) {
    float acc[kRows][KC];
    for (int bb = 0; bb < kRows; ++bb)
      for (int k = 0; k < KC; ++k) acc[bb][k] = 0.0f;
    for (int64_t j = 0; j < DH; ++j) {
      const float* row = Rh + j * G + c0;
      for (int bb = 0; bb < kRows; ++bb) {
        const float hv = hprev[bb * DH + j];
#pragma omp simd
        for (int k = 0; k < KC; ++k) acc[bb][k] += hv * row[k];
      }
    }
    for (int bb = 0; bb < nb; ++bb)
      for (int k = 0; k < KC; ++k) r[bb * G + c0 + k] = acc[bb][k];
  }
}

inline void matvec_rows(int nb, int64_t DH, int64_t G, const float* hprev, const float* Rh, float* r) {
  if (G % 64 == 0) return matvec_rows_kc<64>(nb, DH, G, hprev, Rh, r);
  if (G % 32 == 0) return matvec_rows_kc<32>(nb, DH, G, hprev, Rh, r);
  if (G % 16 == 0) return matvec_rows_kc<16>(nb, DH, G, hprev, Rh, r);
  for (int bb = 0; bb < nb; ++bb) {
    float* rr = r + bb * G;
    for (int64_t k = 0; k < G; ++k) rr[k] = 0.0f;
    for (int64_t j = 0; j < DH; ++j) {
      const float hv = hprev[bb * DH + j];
      const float* row = Rh + j * G;
#pragma omp simd
      for (int64_t k = 0; k < G; ++k) rr[k] += hv * row[k];
    }
  }
}

// dh[bb][j] = Σ_k Rh[j][k] dp[bb][k]  (Rᵀ·dp per head, XLSTM_SPEC §2.4), computed as an accumulation over k
// with the transposed kernel RTh [G][DH], so the accumulators are independent (no horizontal reductions on the
// step-to-step critical path).
inline void matvec_t_rows(int nb, int64_t DH, int64_t G, const float* dp, const float* RTh, float* dh) {
  matvec_rows(nb, G, DH, dp, RTh, dh);
}

// RT[hd][k][j] = R[hd][j][k] for R [NH, DH, G]: 16 x 16 tiles (a cache line of each row / column per tile), the
// (head, 16-row block of RT) pairs split over the pool.
inline void transpose_heads(float* RT, const float* R, int64_t NH, int64_t DH, int64_t G) {
  constexpr int64_t kT = 16;
  const int64_t kb = (G + kT - 1) / kT;
  parallel_for(NH * kb, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t hd = it / kb, k0 = (it % kb) * kT, k1 = std::min(G, k0 + kT);
      const float* Rh = R + hd * DH * G;
      float* RTh = RT + hd * G * DH;
      for (int64_t j0 = 0; j0 < DH; j0 += kT) {
        const int64_t j1 = std::min(DH, j0 + kT);
        for (int64_t k = k0; k < k1; ++k)
          for (int64_t j = j0; j < j1; ++j) RTh[k * DH + j] = Rh[j * G + k];
      }
    }
  });
}

// Prefetch n floats starting at p (one request per 64-byte line). The per-step inputs of a task are 256-byte
// pieces spread over rows S*4H floats apart, which the hardware prefetcher does not follow.
inline void prefetch_floats(const float* p, int64_t n, bool write) {
  for (int64_t i = 0; i < n; i += 16) {
    if (write) __builtin_prefetch(p + i, 1, 3);
    else __builtin_prefetch(p + i, 0, 3);
  }
}

// Pointers for one whole-sequence call; `ns` = number of state components.
struct SeqIO {
  int64_t B, S, NH, DH, H, G;
  int ns;
  int64_t state_stride_s() const { return S * B * H; }  // between state components in `states`
  int64_t state0_stride_s() const { return B * H; }
};

// Forward over all steps for one cell type.
template <class Cell>
void forward_seq(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                 const float* bias, const RecurrentDims& d) {
  const int64_t B = d.B, S = d.S, NH = d.NH, DH = d.DH, H = NH * DH, G = 4 * DH;
  constexpr int NS = Cell::kStates;
  const int64_t row_blocks = (B + kRows - 1) / kRows;
  const int64_t sS = S * B * H;  // stride between state components in `states`
  parallel_for(NH * row_blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> hprev(kRows * DH, 0.0f), r(kRows * G), zero(DH, 0.0f);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t hd = task / row_blocks, b0 = (task % row_blocks) * kRows;
      const int nb = static_cast<int>(std::min<int64_t>(kRows, B - b0));
      const float* Rh = R + hd * DH * G;
      for (int64_t t = 0; t < S; ++t) {
        // previous state component s of row b, this head's DH units (contiguous)
        auto prev = [&](int s, int64_t b) -> const float* {
          if (t == 0) return state0 ? state0 + (s * B + b) * H + hd * DH : zero.data();
          return states + s * sS + ((t - 1) * B + b) * H + hd * DH;
        };
        for (int bb = 0; bb < nb; ++bb) std::copy_n(prev(0, b0 + bb), DH, hprev.data() + bb * DH);
        if (t + 1 < S)
          for (int bb = 0; bb < nb; ++bb)
            for (int g = 0; g < 4; ++g) {
              const int64_t off = ((b0 + bb) * S + t + 1) * 4 * H + g * H + hd * DH;
              prefetch_floats(x + off, DH, false);
              prefetch_floats(gates + off, DH, true);
            }
        matvec_rows(nb, DH, G, hprev.data(), Rh, r.data());
        for (int bb = 0; bb < nb; ++bb) {
          const int64_t b = b0 + bb;
          const float* xr = x + (b * S + t) * 4 * H + hd * DH;
          const float* br = bias + hd * DH;
          float* gr = gates + (b * S + t) * 4 * H + hd * DH;  // gate g of unit k at gr[g*H + k]
          const float* rr = r.data() + bb * G;
          for (int g = 0; g < 4; ++g) {
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) gr[g * H + k] = xr[g * H + k] + rr[g * DH + k] + br[g * H + k];
          }
          float* yr = y + (b * S + t) * H + hd * DH;
          float* st = states + (t * B + b) * H + hd * DH;  // component s at st + s*sS
          const float *pi = gr, *pf = gr + H, *pz = gr + 2 * H, *po = gr + 3 * H;
          if constexpr (NS == 4) {
            const float *c0 = prev(1, b), *n0 = prev(2, b), *m0 = prev(3, b);
            float *hs = st, *cs = st + sS, *ns = st + 2 * sS, *ms = st + 3 * sS;
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) {
              float h, c, n, m;
              Cell::forward(pi[k], pf[k], pz[k], po[k], c0[k], n0[k], m0[k], &h, &c, &n, &m);
              hs[k] = h;
              cs[k] = c;
              ns[k] = n;
              ms[k] = m;
              yr[k] = h;
            }
          } else {
            const float* c0 = prev(1, b);
            float *hs = st, *cs = st + sS;
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) {
              float h, c;
              Cell::forward(pi[k], pf[k], pz[k], po[k], c0[k], &h, &c);
              hs[k] = h;
              cs[k] = c;
              yr[k] = h;
            }
          }
        }
      }
    }
  });
}

// The sequential part of backward: dx (= the pre-activation gradients) and dstate0. dR and dbias are reduced
// from dx afterwards by the caller (one GEMM per head and gate, see recurrent.cc).
template <class Cell>
void backward_seq(float* dx, float* dstate0, const float* gates, const float* states, const float* dy,
                  const float* dstate_final, const float* state0, const float* R, const RecurrentDims& d,
                  bool exact_m0_grad) {
  const int64_t B = d.B, S = d.S, NH = d.NH, DH = d.DH, H = NH * DH, G = 4 * DH;
  constexpr int NS = Cell::kStates;
  const int64_t row_blocks = (B + kRows - 1) / kRows;
  const int64_t sS = S * B * H;
  // RT[hd][k][j] = R[hd][j][k], once per call for every task (the pool hands tasks out one at a time, so a per-task
  // copy would redo it for every block of rows), in 16 x 16 tiles
  std::vector<float> RT(static_cast<size_t>(NH * G * DH));
  transpose_heads(RT.data(), R, NH, DH, G);
  parallel_for(NH * row_blocks, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> dh(kRows * DH), dc(kRows * DH), dn(kRows * DH), dp(kRows * G), zero(DH, 0.0f);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t hd = task / row_blocks, b0 = (task % row_blocks) * kRows;
      const int nb = static_cast<int>(std::min<int64_t>(kRows, B - b0));
      const float* RTh = RT.data() + hd * G * DH;
      for (int bb = 0; bb < nb; ++bb)
        for (int64_t k = 0; k < DH; ++k) {
          const int64_t i = (b0 + bb) * H + hd * DH + k;
          dh[bb * DH + k] = dstate_final ? dstate_final[i] : 0.0f;
          dc[bb * DH + k] = dstate_final ? dstate_final[B * H + i] : 0.0f;
          dn[bb * DH + k] = (NS == 4 && dstate_final) ? dstate_final[2 * B * H + i] : 0.0f;
        }
      for (int64_t t = S - 1; t >= 0; --t) {
        auto prev = [&](int s, int64_t b) -> const float* {
          if (t == 0) return state0 ? state0 + (s * B + b) * H + hd * DH : zero.data();
          return states + s * sS + ((t - 1) * B + b) * H + hd * DH;
        };
        if (t > 0)
          for (int bb = 0; bb < nb; ++bb) {
            const int64_t b = b0 + bb;
            for (int g = 0; g < 4; ++g) {
              const int64_t off = (b * S + t - 1) * 4 * H + g * H + hd * DH;
              prefetch_floats(gates + off, DH, false);
              prefetch_floats(dx + off, DH, true);
            }
            prefetch_floats(dy + (b * S + t - 1) * H + hd * DH, DH, false);
          }
        for (int bb = 0; bb < nb; ++bb) {
          const int64_t b = b0 + bb;
          const float* gr = gates + (b * S + t) * 4 * H + hd * DH;
          const float* st = states + (t * B + b) * H + hd * DH;
          const float* dyr = dy + (b * S + t) * H + hd * DH;
          float* dxr = dx + (b * S + t) * 4 * H + hd * DH;
          float* dpr = dp.data() + bb * G;
          float *dhr = dh.data() + bb * DH, *dcr = dc.data() + bb * DH, *dnr = dn.data() + bb * DH;
          const float *pi = gr, *pf = gr + H, *pz = gr + 2 * H, *po = gr + 3 * H;
          if constexpr (NS == 4) {
            const float *c0 = prev(1, b), *n0 = prev(2, b), *m0 = prev(3, b);
            const float *h1 = st, *c1 = st + sS, *n1 = st + 2 * sS, *m1 = st + 3 * sS;
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) {
              float dpi, dpf, dpz, dpo, dck = dcr[k], dnk = dnr[k];
              Cell::backward(pi[k], pf[k], pz[k], po[k], c0[k], n0[k], m0[k], c1[k], n1[k], m1[k], h1[k],
                             dyr[k] + dhr[k], &dck, &dnk, &dpi, &dpf, &dpz, &dpo);
              dcr[k] = dck;
              dnr[k] = dnk;
              dpr[k] = dpi;
              dpr[DH + k] = dpf;
              dpr[2 * DH + k] = dpz;
              dpr[3 * DH + k] = dpo;
            }
          } else {
            const float* c0 = prev(1, b);
            const float* c1 = st + sS;
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) {
              float dpi, dpf, dpz, dpo, dck = dcr[k];
              Cell::backward(pi[k], pf[k], pz[k], po[k], c0[k], c1[k], dyr[k] + dhr[k], &dck, &dpi, &dpf, &dpz, &dpo);
              dcr[k] = dck;
              dpr[k] = dpi;
              dpr[DH + k] = dpf;
              dpr[2 * DH + k] = dpz;
              dpr[3 * DH + k] = dpo;
            }
          }
          for (int g = 0; g < 4; ++g) std::copy_n(dpr + g * DH, DH, dxr + g * H);
        }
        matvec_t_rows(nb, DH, G, dp.data(), RTh, dh.data());
      }
      if (dstate0) {
        for (int bb = 0; bb < nb; ++bb)
          for (int64_t k = 0; k < DH; ++k) {
            const int64_t i = (b0 + bb) * H + hd * DH + k;
            dstate0[i] = dh[bb * DH + k];
            dstate0[B * H + i] = dc[bb * DH + k];
            if constexpr (NS == 4) {
              dstate0[2 * B * H + i] = dn[bb * DH + k];
              // ∂m_0: 0 in the CUDA convention; the exact value scales c_0 and n_0 (XLSTM_SPEC §2.4).
              const float c0 = state0 ? state0[B * H + i] : 0.0f, n0 = state0 ? state0[2 * B * H + i] : 0.0f;
              dstate0[3 * B * H + i] = exact_m0_grad ? dc[bb * DH + k] * c0 + dn[bb * DH + k] * n0 : 0.0f;
            }
          }
      }
    }
  });
}

inline recurrent_detail::Impl make_impl() {
  return recurrent_detail::Impl{&forward_seq<SlstmCell>, &backward_seq<SlstmCell>, &forward_seq<LstmCell>,
                                &backward_seq<LstmCell>};
}

}  // namespace
}  // namespace xlstm
