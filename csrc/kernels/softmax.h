// Softmax, log-softmax and cross-entropy over the last dimension (CPU kernels layer).
// Layouts: x, y, dx, dy are [rows, cols] row-major float32; logits [N, V]; targets [N] (int32 or int64).
// All rows are independent and run on the thread pool; each row uses the SIMD level's row primitives
// (nn_simd.h), numerically stable (the row max is subtracted before exp).
//
//   softmax:        y = exp(x - max) / sum exp(x - max)          backward: dx = y * (dy - <dy, y>)
//   log-softmax:    y = (x - max) - log sum exp(x - max)         backward: dx = dy - exp(y) * sum(dy)
//   cross-entropy:  loss[n] = (row_max[n] - x[n, t_n]) + log_sum[n]  with  logsumexp(x[n]) = row_max + log_sum;
//                   rows whose target equals ignore_index get loss 0 (and row_max = log_sum = 0).
//                   Saved for backward: row_max [N], log_sum [N] (two floats keep logits of 1e4 exact enough).
//                   backward: dlogits[n] = g[n] * (softmax(x[n]) - onehot(t_n)); 0 for ignored rows.
//                   g [N] is the per-row gradient (the caller folds the reduction in: 1/count for "mean").
// Targets are assumed valid (0 <= t < V or t == ignore_index); the binding checks them first.
// Every gradient is written with `=` (no accumulation).
#pragma once
#include <cstdint>

namespace xlstm {

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols);
void log_softmax_forward(float* y, const float* x, int64_t rows, int64_t cols);
void softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols);
void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols);

// Returns the number of rows whose target is not ignore_index.
template <class I>
int64_t cross_entropy_forward(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                              int64_t n, int64_t v, int64_t ignore_index);
template <class I>
void cross_entropy_backward(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                            const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index);

}  // namespace xlstm
