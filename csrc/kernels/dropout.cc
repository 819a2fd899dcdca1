// Dropout with Philox4x32-10 masks (see dropout.h). The generator and the keep decision are kernels/philox.h,
// shared with the CUDA twin (cuda/dropout.cu) so both draw bit-identical masks. At the AVX-512 level the forward runs
// 16 blocks at a time in dropout_avx512.cc (the same bits), and the backward 16 elements at a time; what is left over
// runs here.
#include "kernels/dropout.h"

#include <cmath>

#include "kernels/cpu_features.h"
#include "kernels/philox.h"
#include "kernels/threadpool.h"

namespace xlstm {

void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
  philox::philox4x32_10(out, counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
}

float dropout_scale(double p) { return p >= 1.0 ? 0.f : static_cast<float>(1.0 / (1.0 - p)); }

void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1) {
  const uint32_t threshold = philox::dropout_threshold(p);
  const float scale = dropout_scale(p);
  const int64_t blocks = (n + 3) / 4;
  const bool vec = use_avx512();
  parallel_for(blocks, 4096, [&](int64_t lo, int64_t hi) {
    int64_t j = lo;
#if defined(XLSTM_X86)
    if (vec) j = dropout_detail::forward_blocks_avx512(y, mask, x, n, lo, hi, threshold, scale, key0, key1);
#endif
    for (; j < hi; ++j) {
      uint32_t r[4];
      philox::dropout_block(r, j, key0, key1);
      for (int64_t q = 0; q < 4 && 4 * j + q < n; ++q) {
        const int64_t i = 4 * j + q;
        const bool keep = philox::dropout_keep(r[q], threshold);
        mask[i] = keep ? 1 : 0;
        y[i] = keep ? x[i] * scale : 0.f;
      }
    }
  });
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale) {
  const bool vec = use_avx512();
  parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
    int64_t i = lo;
#if defined(XLSTM_X86)
    if (vec) i = dropout_detail::backward_avx512(dx, dy, mask, lo, hi, scale);
#endif
    for (; i < hi; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.f;
  });
}

}  // namespace xlstm
