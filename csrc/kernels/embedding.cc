// Embedding forward (row gather) and backward (race-free scatter-add), see embedding.h.
#include "kernels/embedding.h"

#include <algorithm>
#include <cstring>

#include "kernels/threadpool.h"

namespace xlstm {

template <class I>
void embedding_forward(float* out, const float* weight, const I* indices, int64_t n, int64_t e) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(e, 1));
  parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i)
      std::memcpy(out + i * e, weight + static_cast<int64_t>(indices[i]) * e, static_cast<size_t>(e) * sizeof(float));
  });
}

template <class I>
void embedding_backward(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e) {
  parallel_for(v, std::max<int64_t>(1, 65536 / std::max<int64_t>(e, 1)), [&](int64_t lo, int64_t hi) {
    std::fill(dweight + lo * e, dweight + hi * e, 0.f);
  });
  if (n == 0 || e == 0) return;
  constexpr int64_t kCols = 16;  // one 64-byte line per block: no false sharing between threads
  const int64_t col_blocks = (e + kCols - 1) / kCols;
  const int64_t threads = num_threads();
  if (col_blocks >= 2 * threads || v < 2 * threads) {
    // Column blocks: every thread scans all indices for its own columns.
    parallel_for(col_blocks, 1, [&](int64_t lo, int64_t hi) {
      const int64_t c0 = lo * kCols, c1 = std::min(e, hi * kCols);
      for (int64_t i = 0; i < n; ++i) {
        float* dst = dweight + static_cast<int64_t>(indices[i]) * e;
        const float* src = dout + i * e;
        for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
      }
    });
  } else {
    // Vocabulary ranges: every thread scans all indices and adds the rows it owns.
    const int64_t parts = std::min(v, 4 * threads);
    const int64_t per = (v + parts - 1) / parts;
    parallel_for(parts, 1, [&](int64_t lo, int64_t hi) {
      const int64_t v0 = lo * per, v1 = std::min(v, hi * per);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t row = static_cast<int64_t>(indices[i]);
        if (row < v0 || row >= v1) continue;
        float* dst = dweight + row * e;
        const float* src = dout + i * e;
        for (int64_t c = 0; c < e; ++c) dst[c] += src[c];
      }
    });
  }
}

template void embedding_forward<int32_t>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding_forward<int64_t>(float*, const float*, const int64_t*, int64_t, int64_t);
template void embedding_backward<int32_t>(float*, const float*, const int32_t*, int64_t, int64_t, int64_t);
template void embedding_backward<int64_t>(float*, const float*, const int64_t*, int64_t, int64_t, int64_t);

}  // namespace xlstm
