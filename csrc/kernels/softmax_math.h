// Per-row math of the softmax / log-softmax / cross-entropy kernels for the CUDA twin (cuda/softmax.cu), as
// __host__ __device__ functions over the lanes of row_launch.h: each lane folds its elements l, l + tpr, ...;
// the caller reduces the lane values (row_reduce on the device, host_row_reduce in the host replay) and then
// each lane writes its elements. The formulas are those of the CPU kernels (softmax.h, nn_simd_impl.h):
//   max m; sum s = sum exp(x - m) accumulated in double; softmax y = exp(x - m) * (float)(1 / s);
//   log-softmax y = (x - m) - (float)log s; softmax backward dx = y * (dy - (float)sum(dy * y));
//   log-softmax backward dx = dy - exp(y) * (float)sum(dy); cross-entropy loss = (double)(m - x_t) + log_sum,
//   its backward g * exp((x - m) - log_sum), minus g at the target.
// The CPU kernels are not rewritten on these (their SIMD row primitives sum in vector lanes, in another
// order); the host replay entries (cuda::*_emulate) run these functions and test/21 compares them with the CPU.
#pragma once
#include "kernels/row_launch.h"

namespace xlstm {
namespace smx {

XLSTM_ROW_FN float lane_max(const float* x, int64_t n, int lane, int tpr) {
  float m = -INFINITY;
  for (int64_t j = lane; j < n; j += tpr) m = fmaxf(m, x[j]);
  return m;
}
XLSTM_ROW_FN double lane_exp_sum(const float* x, float m, int64_t n, int lane, int tpr) {
  double s = 0;
  for (int64_t j = lane; j < n; j += tpr) s += static_cast<double>(expf(x[j] - m));
  return s;
}
XLSTM_ROW_FN double lane_sum(const float* a, int64_t n, int lane, int tpr) {
  double s = 0;
  for (int64_t j = lane; j < n; j += tpr) s += static_cast<double>(a[j]);
  return s;
}
XLSTM_ROW_FN double lane_dot(const float* a, const float* b, int64_t n, int lane, int tpr) {
  double s = 0;
  for (int64_t j = lane; j < n; j += tpr) s += static_cast<double>(a[j] * b[j]);
  return s;
}

XLSTM_ROW_FN float softmax_value(float x, float m, float inv) { return expf(x - m) * inv; }
XLSTM_ROW_FN float log_softmax_value(float x, float m, float ls) { return (x - m) - ls; }
XLSTM_ROW_FN float softmax_bwd_value(float y, float dy, float d) { return y * (dy - d); }
XLSTM_ROW_FN float log_softmax_bwd_value(float y, float dy, float s) { return dy - expf(y) * s; }
// (max - x_t) is exact for nearby values; adding log_sum last keeps large logits accurate (as the CPU kernel).
XLSTM_ROW_FN float ce_loss(float m, float xt, float ls) {
  return static_cast<float>(static_cast<double>(m - xt) + static_cast<double>(ls));
}
XLSTM_ROW_FN float ce_grad(float x, float m, float ls, float g, bool is_target) {
  const float v = g * expf((x - m) - ls);
  return is_target ? v - g : v;
}

// Lane bodies of the write phases (S: rows::PlainStore on the device, rows::CountingStore in the host replay).
template <class S>
XLSTM_ROW_FN void softmax_write(S y, const float* x, float m, float inv, int64_t n, int lane, int tpr) {
  for (int64_t j = lane; j < n; j += tpr) y.put(j, softmax_value(x[j], m, inv));
}
template <class S>
XLSTM_ROW_FN void log_softmax_write(S y, const float* x, float m, float ls, int64_t n, int lane, int tpr) {
  for (int64_t j = lane; j < n; j += tpr) y.put(j, log_softmax_value(x[j], m, ls));
}
template <class S>
XLSTM_ROW_FN void softmax_bwd_write(S dx, const float* y, const float* dy, float d, int64_t n, int lane, int tpr) {
  for (int64_t j = lane; j < n; j += tpr) dx.put(j, softmax_bwd_value(y[j], dy[j], d));
}
template <class S>
XLSTM_ROW_FN void log_softmax_bwd_write(S dx, const float* y, const float* dy, float s, int64_t n, int lane, int tpr) {
  for (int64_t j = lane; j < n; j += tpr) dx.put(j, log_softmax_bwd_value(y[j], dy[j], s));
}
// t < 0: the row is ignored (all zeros).
template <class S>
XLSTM_ROW_FN void ce_grad_write(S dx, const float* x, float m, float ls, float g, int64_t t, int64_t n, int lane,
                                int tpr) {
  for (int64_t j = lane; j < n; j += tpr) dx.put(j, t < 0 ? 0.f : ce_grad(x[j], m, ls, g, j == t));
}

}  // namespace smx
}  // namespace xlstm
