// Index math of the depthwise causal conv1d (see conv1d.h), shared by the CPU kernel (csrc/kernels/conv1d.cc) and
// its CUDA twin (cuda/conv1d.cu): the first tap of each row and the fixed row partition of the weight/bias
// gradients (the partial sums per block of rows, added in block order in double), so both reduce in the same
// order. C++ under a host compiler, __host__ __device__ under nvcc. No CUDA headers.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define XLSTM_CONV_FN __host__ __device__ __forceinline__
#else
#define XLSTM_CONV_FN inline
#endif

namespace xlstm {
namespace conv1d_math {

// Forward and weight gradient at time t: taps j >= first_tap(t, k) read x at time t - (K-1) + j >= 0.
XLSTM_CONV_FN int64_t first_tap(int64_t t, int64_t k) { return k - 1 - t > 0 ? k - 1 - t : 0; }
// dx at time t: taps j >= first_tap_dx(t, s, k) read dy at time t + (K-1) - j < S.
XLSTM_CONV_FN int64_t first_tap_dx(int64_t t, int64_t s, int64_t k) { return t + k - s > 0 ? t + k - s : 0; }

// Weight/bias gradients: rows [0, rows) cut into wgrad_blocks(rows) blocks of wgrad_rows_per_block rows each
// (the last one shorter), depending only on the shape.
XLSTM_CONV_FN int64_t wgrad_blocks(int64_t rows) {
  const int64_t b = (rows + 7) / 8;
  return b < 1 ? 1 : b > 64 ? 64 : b;
}
XLSTM_CONV_FN int64_t wgrad_rows_per_block(int64_t rows, int64_t nblk) { return (rows + nblk - 1) / nblk; }

}  // namespace conv1d_math
}  // namespace xlstm
