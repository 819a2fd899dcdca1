// Block-diagonal linear map (see headwise.h): each block is a GEMM on strided views of x and y, so no data is
// rearranged; the blocked GEMM does the work. In the backward, GEMMs too small for gemm() to thread (the sLSTM's
// 64x64 gate blocks at a few thousand rows) run as parallel pool tasks instead, one GEMM or row slab per task. The
// forward keeps one GEMM per block: the same row-slab tasks there were faster alone (0.22 vs 0.30 ms at 2048 rows,
// 4 blocks of 64x64) but slower inside the W2 training step (2.8 vs 1.7 ms for its 4 calls, the first one slow).
#include "kernels/headwise.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/gemm.h"
#include "kernels/threadpool.h"

namespace xlstm {
#ifdef XLSTM_X86
namespace headwise_detail {  // headwise_avx512.cc: 4x4 blocks
void hw4_forward_avx512(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows,
                        int64_t NB);
void hw4_backward_dx_avx512(float* dx, bool accumulate, const float* dy, int64_t ldy, const float* W, int64_t rows,
                            int64_t NB);
void hw4_backward_dw_avx512(float* dW, float* dbias, const float* dy, int64_t ldy, const float* x, int64_t rows,
                            int64_t NB);
}  // namespace headwise_detail
#endif

namespace {

// 4x4 blocks in groups of four fill a zmm exactly (headwise_avx512.cc).
bool use_hw4(int64_t NB, int64_t I, int64_t O) {
#ifdef XLSTM_X86
  return I == 4 && O == 4 && NB % 4 == 0 && simd_level() == SimdLevel::AVX512;
#else
  (void)NB, (void)I, (void)O;
  return false;
#endif
}

// Blocks of at most this many weights (e.g. the mLSTM's 4x4 q/k/v blocks) run as direct loops: a GEMM call per
// tiny block would spend everything on packing and dispatch.
constexpr int64_t kSmallBlock = 256;

// gemm() runs a product below this many flops on one thread (gemm.cc kParallelFlops).
constexpr double kGemmParallelFlops = 2.0e7;

// Backward of large blocks: per-block GEMMs that gemm() does not thread (or many blocks) run as pool tasks instead.
bool use_tasks(int64_t rows, int64_t NB, int64_t I, int64_t O) {
  const double flops = 2.0 * static_cast<double>(rows) * static_cast<double>(I * O);
  return flops < kGemmParallelFlops || NB >= 2 * num_threads();
}

// Fixed row slabs (from `rows` alone) for the row-parallel dx tasks: about kSlabRows rows each.
constexpr int64_t kSlabRows = 256;
int64_t num_slabs(int64_t rows) { return std::max<int64_t>(1, (rows + kSlabRows - 1) / kSlabRows); }
int64_t slab_begin(int64_t rows, int64_t s) { return rows * s / num_slabs(rows); }

void small_forward(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows, int64_t NB,
                   int64_t I, int64_t O) {
  parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const float* xr = x + r * NB * I;
      float* yr = y + r * ldy;
      for (int64_t hb = 0; hb < NB; ++hb)
        for (int64_t o = 0; o < O; ++o) {
          const float* w = W + (hb * O + o) * I;
          float s = bias ? bias[hb * O + o] : 0.0f;
          for (int64_t d = 0; d < I; ++d) s += xr[hb * I + d] * w[d];
          yr[hb * O + o] = s;
        }
    }
  });
}

void small_backward(float* dx, bool accumulate_dx, float* dW, float* dbias, const float* dy, int64_t ldy, const float* x,
                    const float* W, int64_t rows, int64_t NB, int64_t I, int64_t O) {
  if (dx) {
    parallel_for(rows, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const float* g = dy + r * ldy;
        float* dxr = dx + r * NB * I;
        for (int64_t hb = 0; hb < NB; ++hb)
          for (int64_t d = 0; d < I; ++d) {
            float s = accumulate_dx ? dxr[hb * I + d] : 0.0f;
            for (int64_t o = 0; o < O; ++o) s += g[hb * O + o] * W[(hb * O + o) * I + d];
            dxr[hb * I + d] = s;
          }
      }
    });
  }
  if (!dW && !dbias) return;
  // partial sums over row chunks, then one reduction (no races, deterministic for a given thread count)
  const int64_t chunks = std::min<int64_t>(std::max<int64_t>(1, rows / 256), 4 * num_threads());
  const int64_t wn = NB * O * I, bn = NB * O;
  std::vector<double> part(static_cast<size_t>(chunks * (wn + bn)), 0.0);
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ch = lo; ch < hi; ++ch) {
      double* pw = part.data() + ch * (wn + bn);
      double* pb = pw + wn;
      const int64_t r0 = rows * ch / chunks, r1 = rows * (ch + 1) / chunks;
      for (int64_t r = r0; r < r1; ++r) {
        const float* g = dy + r * ldy;
        const float* xr = x + r * NB * I;
        for (int64_t hb = 0; hb < NB; ++hb)
          for (int64_t o = 0; o < O; ++o) {
            const double gv = g[hb * O + o];
            pb[hb * O + o] += gv;
            double* w = pw + (hb * O + o) * I;
            for (int64_t d = 0; d < I; ++d) w[d] += gv * xr[hb * I + d];
          }
      }
    }
  });
  for (int64_t i = 0; i < wn + bn; ++i) {
    double s = 0;
    for (int64_t ch = 0; ch < chunks; ++ch) s += part[ch * (wn + bn) + i];
    if (i < wn) {
      if (dW) dW[i] = static_cast<float>(s);
    } else if (dbias) {
      dbias[i - wn] = static_cast<float>(s);
    }
  }
}

}  // namespace

void headwise_linear_forward(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows,
                             int64_t NB, int64_t I, int64_t O) {
#ifdef XLSTM_X86
  if (use_hw4(NB, I, O)) return headwise_detail::hw4_forward_avx512(y, ldy, x, W, bias, rows, NB);
#endif
  if (I * O <= kSmallBlock) return small_forward(y, ldy, x, W, bias, rows, NB, I, O);
  for (int64_t hb = 0; hb < NB; ++hb)
    gemm(false, true, rows, O, I, 1.0f, x + hb * I, NB * I, W + hb * O * I, I, 0.0f, y + hb * O, ldy);
  if (bias) {
    parallel_for(rows, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r)
        for (int64_t c = 0; c < NB * O; ++c) y[r * ldy + c] += bias[c];
    });
  }
}

void headwise_linear_backward(float* dx, bool accumulate_dx, float* dW, float* dbias, const float* dy, int64_t ldy,
                              const float* x, const float* W, int64_t rows, int64_t NB, int64_t I, int64_t O) {
#ifdef XLSTM_X86
  if (use_hw4(NB, I, O)) {
    if (dx) headwise_detail::hw4_backward_dx_avx512(dx, accumulate_dx, dy, ldy, W, rows, NB);
    if (dW || dbias) headwise_detail::hw4_backward_dw_avx512(dW, dbias, dy, ldy, x, rows, NB);
    return;
  }
#endif
  if (I * O <= kSmallBlock) return small_backward(dx, accumulate_dx, dW, dbias, dy, ldy, x, W, rows, NB, I, O);
  // NB dW GEMMs, the dx GEMMs and the bias column sums. When one GEMM is too small for gemm() to use threads (or
  // there are plenty of blocks), they become pool tasks, each GEMM on one thread: a task per block's dW, one per slab
  // of rows for dx (all blocks: each thread writes its own rows, pages included), one per block's bias columns.
  // gemm()'s arithmetic for an element of C depends on neither the thread nor the row slab, so the result does not
  // depend on the thread count (and equals the one-GEMM-per-block path).
  const int64_t cols = NB * O;
  auto dx_rows = [&](int64_t r0, int64_t r1) {
    for (int64_t hb = 0; hb < NB; ++hb)
      gemm(false, false, r1 - r0, I, O, 1.0f, dy + r0 * ldy + hb * O, ldy, W + hb * O * I, I,
           accumulate_dx ? 1.0f : 0.0f, dx + r0 * NB * I + hb * I, NB * I);
  };
  auto dw_block = [&](int64_t hb) {
    gemm(true, false, O, I, rows, 1.0f, dy + hb * O, ldy, x + hb * I, NB * I, 0.0f, dW + hb * O * I, I);
  };
  auto bias_cols = [&](int64_t lo, int64_t hi) {  // double sums over all rows, column by column range
    std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = lo; c < hi; ++c) acc[c - lo] += dy[r * ldy + c];
    for (int64_t c = lo; c < hi; ++c) dbias[c] = static_cast<float>(acc[c - lo]);
  };
  if (use_tasks(rows, NB, I, O)) {
    // tasks: [0, n_dw) dW of block t, then the dx row slabs, then one bias task per block (its O columns)
    const int64_t n_dw = dW ? NB : 0, n_dx = dx ? num_slabs(rows) : 0, n_b = dbias ? NB : 0;
    parallel_for(n_dw + n_dx + n_b, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t t = lo; t < hi; ++t) {
        if (t < n_dw) {
          dw_block(t);
        } else if (t < n_dw + n_dx) {
          const int64_t sl = t - n_dw;
          dx_rows(slab_begin(rows, sl), slab_begin(rows, sl + 1));
        } else {
          const int64_t hb = t - n_dw - n_dx;
          bias_cols(hb * O, (hb + 1) * O);
        }
      }
    });
    return;
  }
  if (dx) dx_rows(0, rows);
  for (int64_t hb = 0; hb < NB; ++hb) {
    if (dW) dw_block(hb);
  }
  if (dbias) parallel_for(cols, 64, bias_cols);
}

}  // namespace xlstm
