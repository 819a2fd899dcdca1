// Dropout with Philox4x32-10 masks (see dropout.h).
#include "kernels/dropout.h"

#include <cmath>

#include "kernels/threadpool.h"

namespace xlstm {

void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

float dropout_scale(double p) { return p >= 1.0 ? 0.f : static_cast<float>(1.0 / (1.0 - p)); }

void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1) {
  const uint32_t threshold = p <= 0 ? 0u : p >= 1 ? (1u << 24) : static_cast<uint32_t>(std::ceil(p * 16777216.0));
  const float scale = dropout_scale(p);
  const uint32_t key[2] = {key0, key1};
  const int64_t blocks = (n + 3) / 4;
  parallel_for(blocks, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t j = lo; j < hi; ++j) {
      const uint32_t ctr[4] = {static_cast<uint32_t>(j), static_cast<uint32_t>(static_cast<uint64_t>(j) >> 32), 0u, 0u};
      uint32_t r[4];
      philox4x32_10(r, ctr, key);
      for (int64_t q = 0; q < 4 && 4 * j + q < n; ++q) {
        const int64_t i = 4 * j + q;
        const bool keep = (r[q] >> 8) >= threshold;
        mask[i] = keep ? 1 : 0;
        y[i] = keep ? x[i] * scale : 0.f;
      }
    }
  });
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale) {
  parallel_for(n, 16384, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) dx[i] = mask[i] ? dy[i] * scale : 0.f;
  });
}

}  // namespace xlstm
