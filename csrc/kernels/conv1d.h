// Depthwise causal 1-D convolution, XLSTM_SPEC §5.2 (the reference's CausalConv1d: torch Conv1d with
// groups = F, left zero-padding K - 1), CPU kernels layer.
// Layouts: x, y, dx, dy [B, S, F] row-major; weight [F, 1, K] (= [F, K]); bias [F] or null.
//   y[b, t, f] = bias[f] + sum_{j<K} weight[f, j] * x[b, t - (K-1) + j, f]     (x at negative times = 0)
// so weight[f, K-1] multiplies the current step. Backward:
//   dx[b, s, f] = sum_j weight[f, j] * dy[b, s + K-1 - j, f]   (terms with time >= S dropped)
//   dweight[f, j] = sum_{b,t} dy[b, t, f] * x[b, t - (K-1) + j, f],  dbias[f] = sum_{b,t} dy[b, t, f]
// Rows (b, t) run on the thread pool, vectorised over F. dweight/dbias use per-block partial sums over a fixed row
// partition (independent of the thread count) reduced in double. Gradients are written with `=`; dx, dweight and
// dbias may each be null (not computed).
#pragma once
#include <cstdint>

namespace xlstm {

void causal_conv1d_forward(float* y, const float* x, const float* weight, const float* bias, int64_t b, int64_t s,
                           int64_t f, int64_t k);

void causal_conv1d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, int64_t b, int64_t s, int64_t f, int64_t k);

}  // namespace xlstm
