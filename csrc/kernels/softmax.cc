// Softmax, log-softmax and fused cross-entropy (see softmax.h): rows on the thread pool, each row through the
// SIMD level's primitives in nn_simd.h.
#include "kernels/softmax.h"

#include "kernels/nn_simd.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

// Rows per hand-off: about 16k elements of work per chunk.
int64_t row_grain(int64_t cols) { return cols >= 16384 ? 1 : 16384 / (cols > 0 ? cols : 1); }

}  // namespace

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols) {
  const NnKernels& k = nn_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) k.softmax_row(y + r * cols, x + r * cols, cols);
  });
}

void log_softmax_forward(float* y, const float* x, int64_t rows, int64_t cols) {
  const NnKernels& k = nn_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) k.log_softmax_row(y + r * cols, x + r * cols, cols);
  });
}

void softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols) {
  const NnKernels& k = nn_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) k.softmax_bwd_row(dx + r * cols, y + r * cols, dy + r * cols, cols);
  });
}

void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols) {
  const NnKernels& k = nn_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) k.log_softmax_bwd_row(dx + r * cols, y + r * cols, dy + r * cols, cols);
  });
}

template <class I>
int64_t cross_entropy_forward(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                              int64_t n, int64_t v, int64_t ignore_index) {
  const NnKernels& k = nn_kernels();
  parallel_for(n, row_grain(v), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const int64_t t = static_cast<int64_t>(targets[r]);
      if (t == ignore_index) {
        loss[r] = row_max[r] = log_sum[r] = 0.f;
        continue;
      }
      const float* x = logits + r * v;
      k.logsumexp_row(&row_max[r], &log_sum[r], x, v);
      // (max - x_t) is exact for nearby values; adding log_sum last keeps large logits accurate.
      loss[r] = static_cast<float>(static_cast<double>(row_max[r] - x[t]) + static_cast<double>(log_sum[r]));
    }
  });
  int64_t count = 0;
  for (int64_t r = 0; r < n; ++r) count += static_cast<int64_t>(targets[r]) != ignore_index;
  return count;
}

template <class I>
void cross_entropy_backward(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                            const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index) {
  const NnKernels& k = nn_kernels();
  parallel_for(n, row_grain(v), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      float* dx = dlogits + r * v;
      const int64_t t = static_cast<int64_t>(targets[r]);
      if (t == ignore_index) {
        for (int64_t j = 0; j < v; ++j) dx[j] = 0.f;
        continue;
      }
      k.softmax_scaled_row(dx, logits + r * v, row_max[r], log_sum[r], g[r], v);
      dx[t] -= g[r];
    }
  });
}

template int64_t cross_entropy_forward<int32_t>(float*, float*, float*, const float*, const int32_t*, int64_t,
                                                int64_t, int64_t);
template int64_t cross_entropy_forward<int64_t>(float*, float*, float*, const float*, const int64_t*, int64_t,
                                                int64_t, int64_t);
template void cross_entropy_backward<int32_t>(float*, const float*, const float*, const float*, const int32_t*,
                                              const float*, int64_t, int64_t, int64_t);
template void cross_entropy_backward<int64_t>(float*, const float*, const float*, const float*, const int64_t*,
                                              const float*, int64_t, int64_t, int64_t);

}  // namespace xlstm
