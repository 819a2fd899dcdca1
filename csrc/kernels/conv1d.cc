// Depthwise causal conv1d forward/backward (see conv1d.h). Tap ranges and the gradient row partition are
// kernels/conv1d_math.h, shared with the CUDA twin (cuda/conv1d.cu).
// The weight is transposed to [K, F] once per call so each tap is a contiguous FMA over the F channels (nn_simd.h's
// fma_row at the current SIMD level).
#include "kernels/conv1d.h"

#include <algorithm>
#include <vector>

#include "kernels/conv1d_math.h"
#include "kernels/nn_simd.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

std::vector<float> transpose_weight(const float* weight, int64_t f, int64_t k) {
  std::vector<float> wt(static_cast<size_t>(f * k));
  for (int64_t c = 0; c < f; ++c)
    for (int64_t j = 0; j < k; ++j) wt[j * f + c] = weight[c * k + j];
  return wt;
}

int64_t row_grain(int64_t f, int64_t k) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(f * k, 1)); }

}  // namespace

void causal_conv1d_forward(float* y, const float* x, const float* weight, const float* bias, int64_t b, int64_t s,
                           int64_t f, int64_t k) {
  const NnKernels& kn = nn_kernels();
  const std::vector<float> wt = transpose_weight(weight, f, k);
  parallel_for(b * s, row_grain(f, k), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t t = r % s;
      float* yr = y + r * f;
      if (bias) std::copy(bias, bias + f, yr);
      else std::fill(yr, yr + f, 0.f);
      for (int64_t j = conv1d_math::first_tap(t, k); j < k; ++j)
        kn.fma_row(yr, wt.data() + j * f, x + (r - (k - 1) + j) * f, f);  // time t - (K-1) + j >= 0
    }
  });
}

void causal_conv1d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, int64_t b, int64_t s, int64_t f, int64_t k) {
  const NnKernels& kn = nn_kernels();
  const int64_t rows = b * s;
  if (dx) {
    const std::vector<float> wt = transpose_weight(weight, f, k);
    parallel_for(rows, row_grain(f, k), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const int64_t t = r % s;
        float* dr = dx + r * f;
        std::fill(dr, dr + f, 0.f);
        // dy at time t + (K-1) - j < S  <=>  j > t + K - 1 - S
        for (int64_t j = conv1d_math::first_tap_dx(t, s, k); j < k; ++j)
          kn.fma_row(dr, wt.data() + j * f, dy + (r + (k - 1) - j) * f, f);
      }
    });
  }
  if (!dweight && !dbias) return;
  const int64_t kf = k * f;
  const int64_t nblk = conv1d_math::wgrad_blocks(rows);
  const int64_t per = conv1d_math::wgrad_rows_per_block(rows, nblk);
  std::vector<float> pw(dweight ? static_cast<size_t>(nblk * kf) : 0), pb(dbias ? static_cast<size_t>(nblk * f) : 0);
  parallel_for(nblk, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t blk = lo; blk < hi; ++blk) {
      float* bw = dweight ? pw.data() + blk * kf : nullptr;  // [K, F]
      float* bb = dbias ? pb.data() + blk * f : nullptr;
      if (bw) std::fill(bw, bw + kf, 0.f);
      if (bb) std::fill(bb, bb + f, 0.f);
      for (int64_t r = blk * per; r < std::min(rows, (blk + 1) * per); ++r) {
        const int64_t t = r % s;
        const float* dyr = dy + r * f;
        if (bb) kn.add_row(bb, dyr, f);
        if (bw)
          for (int64_t j = conv1d_math::first_tap(t, k); j < k; ++j)
            kn.fma_row(bw + j * f, dyr, x + (r - (k - 1) + j) * f, f);
      }
    }
  });
  parallel_for(f, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      if (dweight)
        for (int64_t j = 0; j < k; ++j) {
          double acc = 0;
          for (int64_t blk = 0; blk < nblk; ++blk) acc += pw[blk * kf + j * f + c];
          dweight[c * k + j] = static_cast<float>(acc);
        }
      if (dbias) {
        double acc = 0;
        for (int64_t blk = 0; blk < nblk; ++blk) acc += pb[blk * f + c];
        dbias[c] = static_cast<float>(acc);
      }
    }
  });
}

}  // namespace xlstm
