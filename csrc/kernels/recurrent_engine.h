// The sequence loops behind recurrent.h, written once and compiled per ISA (recurrent.cc: portable flags,
// recurrent_avx2.cc, recurrent_avx512.cc): the compiler vectorises the blocked loops for each target.
// Everything has internal linkage (anonymous namespace) so the per-ISA copies never merge at link time.
//
// Work split: heads are independent (block-diagonal R) and so are batch rows, so one task owns one head and a
// block of batch rows (task_rows) for the WHOLE sequence: no synchronisation per time step. Within a task the
// recurrent product for all its rows shares each load of R (register tiles of kGroup rows x kKC columns).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/aligned_vector.h"
#ifdef __AVX512F__
#include "kernels/bf16_pairs.h"
#endif
#include "kernels/recurrent.h"
#include "kernels/recurrent_cells.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

// Rows sharing each load of R in the register tile (kGroup rows x kKC columns of accumulators: 16 zmm / ymm).
#ifdef __AVX512F__
constexpr int kGroup = 8;
#else
constexpr int kGroup = 4;
#endif
constexpr int kKC = 32;

// Batch rows per task: as many as still give every thread a task, so that each (head's) R streams through the cache
// once per step for as many rows as possible (at most kMaxRows). Every row's arithmetic is the same for any split,
// so results do not depend on it (or on the thread count).
constexpr int64_t kMaxRows = 32;
inline int64_t task_rows(int64_t B, int64_t NH) {
  const int64_t blocks_per_head = std::max<int64_t>(1, (num_threads() + NH - 1) / NH);
  return std::max<int64_t>(1, std::min(kMaxRows, (B + blocks_per_head - 1) / blocks_per_head));
}
// row buffers are padded to whole groups (the padding rows are computed and dropped)
inline int64_t padded_rows(int64_t rows) { return (rows + kGroup - 1) / kGroup * kGroup; }

// The per-step product out[bb][0:Dout] = in[bb][0:Din] · W (Din x Dout) of a task's rows. W is either plain
// row-major (ld = Dout) or "sliced": each kKC-column slice stored contiguously (slice cb at W + cb·Din·kKC, rows kKC
// apart), which keeps the slice's Din rows in distinct cache sets (a plain row stride of 4·Dout bytes, a power of two
// for the usual sizes, maps them all onto a few L1 sets and the slice falls out of L1 between row groups).
struct StepMatrix {
  const float* w;
  bool sliced;
};

// out[bb][c0 : c0+KC] for the kGroup rows at in / out (row strides Din / Dout), bb < nb stored; wc: the slice's first
// column, ldw its row stride.
template <int KC>
inline void matvec_group(int nb, int64_t Din, int64_t Dout, const float* in, const float* wc, int64_t ldw, float* out,
                         int64_t c0) {
  float acc[kGroup][KC];
  for (int bb = 0; bb < kGroup; ++bb)
    for (int k = 0; k < KC; ++k) acc[bb][k] = 0.0f;
  for (int64_t j = 0; j < Din; ++j) {
    const float* row = wc + j * ldw;
    for (int bb = 0; bb < kGroup; ++bb) {
      const float hv = in[bb * Din + j];
#pragma omp simd
      for (int k = 0; k < KC; ++k) acc[bb][k] += hv * row[k];
    }
  }
  for (int bb = 0; bb < nb; ++bb)
    for (int k = 0; k < KC; ++k) out[bb * Dout + c0 + k] = acc[bb][k];
}

// out = in · W for rows bb < nb (in holds padded_rows(nb) rows). Column slice outside, row groups inside: a slice is
// read from memory once per step and from L1 for the other groups.
inline void matvec_rows(int nb, int64_t Din, int64_t Dout, const float* in, StepMatrix W, float* out) {
  if (W.sliced) {
    for (int64_t c0 = 0; c0 < Dout; c0 += kKC)
      for (int g0 = 0; g0 < nb; g0 += kGroup)
        matvec_group<kKC>(std::min(kGroup, nb - g0), Din, Dout, in + g0 * Din, W.w + c0 * Din, kKC, out + g0 * Dout, c0);
    return;
  }
  if (Dout % 16 == 0) {
    for (int64_t c0 = 0; c0 < Dout; c0 += 16)
      for (int g0 = 0; g0 < nb; g0 += kGroup)
        matvec_group<16>(std::min(kGroup, nb - g0), Din, Dout, in + g0 * Din, W.w + c0, Dout, out + g0 * Dout, c0);
    return;
  }
  for (int bb = 0; bb < nb; ++bb) {
    float* rr = out + bb * Dout;
    for (int64_t k = 0; k < Dout; ++k) rr[k] = 0.0f;
    for (int64_t j = 0; j < Din; ++j) {
      const float hv = in[bb * Din + j];
      const float* row = W.w + j * Dout;
#pragma omp simd
      for (int64_t k = 0; k < Dout; ++k) rr[k] += hv * row[k];
    }
  }
}

// The step matrices of all heads, prepared once per call (the pool hands tasks out one at a time, so per-task
// copies would be redone for every block of rows): forward W = R[hd] (DH x G), backward W = R[hd]ᵀ (G x DH: dh =
// Σ_k R[j][k] dp[k] as accumulations over k, independent accumulators, no horizontal sums on the step-to-step
// critical path). Built from `src` [NH, ...] holding each head's W as it is (Din x Dout) or transposed (Dout x Din;
// R's two layouts, recurrent.h). Sliced when the output width is a multiple of kKC; else plain (a W given as it is
// is then read in place).
class StepMatrices {
 public:
  StepMatrices(const float* src, int64_t NH, int64_t Din, int64_t Dout, bool src_transposed) : per_head_(Din * Dout) {
    sliced_ = Dout % kKC == 0;
    if (!sliced_ && !src_transposed) {
      base_ = src;
      return;
    }
    buf_.resize(static_cast<size_t>(NH * Din * Dout));
    base_ = buf_.data();
    // element (j, k) of a head's W (j < Din, k < Dout) goes to k/kKC·Din·kKC + j·kKC + k%kKC (sliced) or j·Dout + k
    const bool sliced = sliced_;
    float* buf = buf_.data();
    auto at = [=](int64_t j, int64_t k) { return sliced ? (k / kKC) * Din * kKC + j * kKC + k % kKC : j * Dout + k; };
    if (!src_transposed) {
      // each row of W copied slice by slice (contiguous runs of kKC)
      parallel_for(NH * Din, 16, [&](int64_t lo, int64_t hi) {
        for (int64_t it = lo; it < hi; ++it) {
          const int64_t hd = it / Din, j = it % Din;
          const float* row = src + hd * Din * Dout + j * Dout;
          float* Wh = buf + hd * Din * Dout;
          for (int64_t k0 = 0; k0 < Dout; k0 += kKC) std::copy_n(row + k0, kKC, Wh + at(j, k0));
        }
      });
      return;
    }
    // W = src[hd]ᵀ in 16 x 16 tiles: a tile's 16 rows of src read contiguously, its transpose written as 16 runs of
    // 16 consecutive k (contiguous in both layouts: kKC is a multiple of 16). Tasks: (head, 64 rows of W).
    static_assert(kKC % 16 == 0, "a 16-run of k must stay within one slice");
    constexpr int64_t kJ = 64, kT = 16;
    const int64_t jb = (Din + kJ - 1) / kJ;
    parallel_for(NH * jb, 1, [&](int64_t lo, int64_t hi) {
      float t[kT][kT];
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t hd = it / jb, j0 = (it % jb) * kJ, j1 = std::min(Din, j0 + kJ);
        const float* sh = src + hd * Din * Dout;  // src[hd] (Dout x Din)
        float* Wh = buf + hd * Din * Dout;
        for (int64_t k0 = 0; k0 < Dout; k0 += kT) {
          const int64_t nk = std::min(kT, Dout - k0);
          for (int64_t jj = j0; jj < j1; jj += kT) {
            const int64_t nj = std::min(kT, j1 - jj);
            for (int64_t a = 0; a < nk; ++a)
              for (int64_t b = 0; b < nj; ++b) t[b][a] = sh[(k0 + a) * Din + jj + b];
            for (int64_t b = 0; b < nj; ++b) std::copy_n(t[b], nk, Wh + at(jj + b, k0));
          }
        }
      }
    });
  }
  StepMatrix head(int64_t hd) const { return StepMatrix{base_ + hd * per_head_, sliced_}; }

 private:
  AlignedFloats buf_;  // 64-byte aligned: each kKC-wide row of a slice is two whole cache lines
  const float* base_ = nullptr;
  bool sliced_ = false;
  int64_t per_head_;
};

#ifdef __AVX512F__
// ---- bf16 step products (RecurrentDims::bf16; the AVX-512 build only, run where vdpbf16ps is) ------------------
// A head's W (Din x Dout) rounded to bf16 pairs along Din and sliced by kKC columns: slice cb holds Din/2 rows of kKC
// dwords, dword (q, k) = pair(W[2q][cb·kKC + k], W[2q + 1][cb·kKC + k]). Din and Dout are multiples of 32.
class StepMatricesBf16 {
 public:
  StepMatricesBf16(const float* src, int64_t NH, int64_t Din, int64_t Dout, bool src_transposed)
      : per_head_(Din / 2 * Dout), buf_(static_cast<size_t>(NH * Din / 2 * Dout)) {
    const int64_t slices = Dout / kKC, Din2 = Din / 2;
    uint32_t* buf = buf_.data();
    parallel_for(NH * slices, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t hd = it / slices, c0 = (it % slices) * kKC;
        uint32_t* dst = buf + hd * Din2 * Dout + c0 * Din2;
        const float* sh = src + hd * Din * Dout;
        if (src_transposed)  // src[hd] is W's transpose (Dout x Din): its rows c0.. are the slice's columns
          bf16_pairs::round_pairs_transposed(dst, kKC, sh + c0 * Din, nullptr, Din, kKC, Din, 0, kKC / 16);
        else
          bf16_pairs::round_pairs_across(dst, kKC, sh + c0, Dout, Din, kKC, 0, Din2);
      }
    });
  }
  const uint32_t* head(int64_t hd) const { return buf_.data() + hd * per_head_; }

 private:
  int64_t per_head_;
  std::vector<uint32_t, CacheAlignedAllocator<uint32_t, false>> buf_;
};

// in rows [0, nb) (Din floats, rows ld apart) rounded into pairs at out (Din/2 dwords a row)
inline void round_rows(int nb, int64_t Din, const float* in, int64_t ld, uint32_t* out) {
  bf16_pairs::round_pairs_along(out, Din / 2, in, ld, Din, 0, nb);
}

// out[bb][0:Dout] = in[bb] · W for rows bb < nb: the pairs of a task's rows (in holds padded_rows(nb) rows of Din2
// dwords; padding rows are computed and dropped) times a StepMatricesBf16 head; kGroup rows x kKC columns of float32
// accumulators, one vdpbf16ps per (row, 16 columns, pair).
XLSTM_PAIRS_TARGET inline void matvec_rows_bf16(int nb, int64_t Din2, int64_t Dout, const uint32_t* in,
                                                const uint32_t* W, float* out) {
  static_assert(kKC == 32, "two zmm of columns per row");
  for (int64_t c0 = 0; c0 < Dout; c0 += kKC) {
    const uint32_t* wc = W + c0 * Din2;
    for (int g0 = 0; g0 < nb; g0 += kGroup) {
      __m512 acc[kGroup][2];
      for (int bb = 0; bb < kGroup; ++bb) acc[bb][0] = acc[bb][1] = _mm512_setzero_ps();
      const uint32_t* ig = in + g0 * Din2;
      for (int64_t q = 0; q < Din2; ++q) {
        const __m512bh w0 = (__m512bh)_mm512_load_si512(wc + q * kKC);
        const __m512bh w1 = (__m512bh)_mm512_load_si512(wc + q * kKC + 16);
        for (int bb = 0; bb < kGroup; ++bb) {
          const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(ig[bb * Din2 + q]));
          acc[bb][0] = _mm512_dpbf16_ps(acc[bb][0], a, w0);
          acc[bb][1] = _mm512_dpbf16_ps(acc[bb][1], a, w1);
        }
      }
      for (int bb = 0; bb < std::min(kGroup, nb - g0); ++bb) {
        _mm512_storeu_ps(out + (g0 + bb) * Dout + c0, acc[bb][0]);
        _mm512_storeu_ps(out + (g0 + bb) * Dout + c0 + 16, acc[bb][1]);
      }
    }
  }
}
#endif

// Prefetch n floats starting at p (one request per 64-byte line). The per-step inputs of a task are pieces of DH
// floats spread over rows S*4H floats apart, which the hardware prefetcher does not follow. The loops issue a row's
// requests for the next step right after that row's cell update, spread over the step, not all rows' at once: a
// burst of thousands of requests (32 rows x 8 pieces x 16 lines at W6) waits on the L1's few miss buffers. On a
// Sapphire Rapids core (2026-11-27) that made the sLSTM at DH 64 (B 8, S 512) 5-15 % faster forward and backward,
// the LSTM at DH 256 (W6's) as fast as before.
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
  const int64_t rows = task_rows(B, NH), row_blocks = (B + rows - 1) / rows, pad = padded_rows(rows);
  const int64_t sS = S * B * H;  // stride between state components in `states`
  const StepMatrices W(d.bf16 ? nullptr : R, d.bf16 ? 0 : NH, DH, G, d.r_transposed);  // W = R[hd]
#ifdef __AVX512F__
  const StepMatricesBf16 Wb(R, d.bf16 ? NH : 0, DH, G, d.r_transposed);
#endif
  parallel_for(NH * row_blocks, 1, [&](int64_t lo, int64_t hi) {
    AlignedFloats hprev(pad * DH, 0.0f), r(pad * G), zero(DH, 0.0f);
    std::vector<uint32_t, CacheAlignedAllocator<uint32_t>> hpairs(d.bf16 ? pad * DH / 2 : 0);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t hd = task / row_blocks, b0 = (task % row_blocks) * rows;
      const int nb = static_cast<int>(std::min<int64_t>(rows, B - b0));
      const StepMatrix Wh = d.bf16 ? StepMatrix{nullptr, false} : W.head(hd);
      for (int64_t t = 0; t < S; ++t) {
        // previous state component s of row b, this head's DH units (contiguous)
        auto prev = [&](int s, int64_t b) -> const float* {
          if (t == 0) return state0 ? state0 + (s * B + b) * H + hd * DH : zero.data();
          return states + s * sS + ((t - 1) * B + b) * H + hd * DH;
        };
#ifdef __AVX512F__
        if (d.bf16) {
          for (int bb = 0; bb < nb; ++bb) round_rows(1, DH, prev(0, b0 + bb), DH, hpairs.data() + bb * DH / 2);
          matvec_rows_bf16(nb, DH / 2, G, hpairs.data(), Wb.head(hd), r.data());
        } else
#endif
        {
          for (int bb = 0; bb < nb; ++bb) std::copy_n(prev(0, b0 + bb), DH, hprev.data() + bb * DH);
          matvec_rows(nb, DH, G, hprev.data(), Wh, r.data());
        }
        for (int bb = 0; bb < nb; ++bb) {
          const int64_t b = b0 + bb;
          if (t + 1 < S)  // this row's inputs of the next step (see prefetch_floats)
            for (int g = 0; g < 4; ++g) {
              const int64_t off = (b * S + t + 1) * 4 * H + g * H + hd * DH;
              prefetch_floats(x + off, DH, false);
              prefetch_floats(gates + off, DH, true);
            }
          const float* xr = x + (b * S + t) * 4 * H + hd * DH;
          const float* br = bias + hd * DH;
          float* gr = gates + (b * S + t) * 4 * H + hd * DH;  // gate g of unit k at gr[g*H + k]
          const float* rr = r.data() + bb * G;
          // gate g's pre-activation of unit k: p = x + (h_{t-1} R)[g*DH + k] + bias
          auto pre = [&](int g, int64_t k) { return xr[g * H + k] + rr[g * DH + k] + br[g * H + k]; };
          float* yr = y + (b * S + t) * H + hd * DH;
          float* st = states + (t * B + b) * H + hd * DH;  // component s at st + s*sS
          if constexpr (NS == 4) {
            // the sLSTM saves the pre-activations
            for (int g = 0; g < 4; ++g) {
#pragma omp simd
              for (int64_t k = 0; k < DH; ++k) gr[g * H + k] = pre(g, k);
            }
            const float *pi = gr, *pf = gr + H, *pz = gr + 2 * H, *po = gr + 3 * H;
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
            // the LSTM saves its gate activations (recurrent_cells.h); the pre-activations stay in registers
            const float* c0 = prev(1, b);
            float *hs = st, *cs = st + sS, *ai = gr, *af = gr + H, *az = gr + 2 * H, *ao = gr + 3 * H;
#pragma omp simd
            for (int64_t k = 0; k < DH; ++k) {
              float h, c, i, f, z, o;
              Cell::forward_act(pre(0, k), pre(1, k), pre(2, k), pre(3, k), c0[k], &h, &c, &i, &f, &z, &o);
              hs[k] = h;
              cs[k] = c;
              yr[k] = h;
              ai[k] = i;
              af[k] = f;
              az[k] = z;
              ao[k] = o;
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
  const int64_t rows = task_rows(B, NH), row_blocks = (B + rows - 1) / rows, pad = padded_rows(rows);
  const int64_t sS = S * B * H;
  const StepMatrices WT(d.bf16 ? nullptr : R, d.bf16 ? 0 : NH, G, DH, !d.r_transposed);  // W = R[hd]ᵀ
#ifdef __AVX512F__
  const StepMatricesBf16 WTb(R, d.bf16 ? NH : 0, G, DH, !d.r_transposed);
#endif
  parallel_for(NH * row_blocks, 1, [&](int64_t lo, int64_t hi) {
    AlignedFloats dh(pad * DH), dc(pad * DH), dn(pad * DH), dp(pad * G, 0.0f), zero(DH, 0.0f);
    std::vector<uint32_t, CacheAlignedAllocator<uint32_t>> dppairs(d.bf16 ? pad * G / 2 : 0);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t hd = task / row_blocks, b0 = (task % row_blocks) * rows;
      const int nb = static_cast<int>(std::min<int64_t>(rows, B - b0));
      const StepMatrix WTh = d.bf16 ? StepMatrix{nullptr, false} : WT.head(hd);
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
        for (int bb = 0; bb < nb; ++bb) {
          const int64_t b = b0 + bb;
          if (t > 0) {  // this row's inputs of the next step back (see prefetch_floats)
            for (int g = 0; g < 4; ++g) {
              const int64_t off = (b * S + t - 1) * 4 * H + g * H + hd * DH;
              prefetch_floats(gates + off, DH, false);
              prefetch_floats(dx + off, DH, true);
            }
            prefetch_floats(dy + (b * S + t - 1) * H + hd * DH, DH, false);
          }
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
#ifdef __AVX512F__
        if (d.bf16) {
          round_rows(nb, G, dp.data(), G, dppairs.data());
          matvec_rows_bf16(nb, G / 2, DH, dppairs.data(), WTb.head(hd), dh.data());
          continue;
        }
#endif
        matvec_rows(nb, G, DH, dp.data(), WTh, dh.data());
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
