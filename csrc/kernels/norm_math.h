// Per-vector math of the layer-norm kernels for the CUDA twin (cuda/norm.cu), as __host__ __device__ functions
// over the lanes of row_launch.h (each lane folds elements l, l + tpr, ...; the caller reduces the lane values,
// then each lane writes its elements). Formulas of the CPU kernel (norm.h, nn_simd_impl.h):
//   mean = (float)(sum x / d) (sum in double);  var = sum (x - mean)^2 / d (double, around the float mean);
//   rstd = (float)(1 / sqrt(var + eps));  xhat = (x - mean) * rstd;  y = b ? fma(xhat, gamma, b) : xhat * gamma,
//   gamma = 1 + w (residual), w, or 1;  backward g = dy * gamma, dx = ((g - mean(g)) - xhat * mean(g xhat)) * rstd,
//   dw = sum over rows of dy * xhat, db = sum over rows of dy.
// The CPU kernel keeps its SIMD row primitives (sums in vector lanes, another order); the host replay entries
// (cuda::layer_norm_*_emulate) run these functions and test/21 compares them with the CPU kernel.
#pragma once
#include "kernels/row_launch.h"

namespace xlstm {
namespace nrm {

XLSTM_ROW_FN float gamma_at(const float* w, int64_t j, bool residual) {
  return w ? (residual ? w[j] + 1.f : w[j]) : 1.f;
}
XLSTM_ROW_FN float xhat(float x, float mean, float rstd) { return (x - mean) * rstd; }
XLSTM_ROW_FN float mean_of(double sum, int64_t d) { return static_cast<float>(sum / static_cast<double>(d)); }
XLSTM_ROW_FN float rstd_of(double sumsq, int64_t d, float eps) {
  return static_cast<float>(1.0 / sqrt(sumsq / static_cast<double>(d) + static_cast<double>(eps)));
}
XLSTM_ROW_FN float fwd_value(float x, float mean, float rstd, float gamma, const float* b, int64_t j) {
  const float xh = xhat(x, mean, rstd);
  return b ? fmaf(xh, gamma, b[j]) : xh * gamma;
}
XLSTM_ROW_FN float bwd_value(float g, float mg, float xh, float mgx, float rstd) { return ((g - mg) - xh * mgx) * rstd; }

XLSTM_ROW_FN double lane_sum(const float* x, int64_t d, int lane, int tpr) {
  double s = 0;
  for (int64_t j = lane; j < d; j += tpr) s += static_cast<double>(x[j]);
  return s;
}
XLSTM_ROW_FN double lane_sq_dev(const float* x, float mean, int64_t d, int lane, int tpr) {
  double s = 0;
  for (int64_t j = lane; j < d; j += tpr) {
    const float t = x[j] - mean;
    s += static_cast<double>(t * t);
  }
  return s;
}
// sum of g = dy * gamma (*sg) and of g * xhat (*sgx) over the lane's elements.
XLSTM_ROW_FN void lane_bwd_sums(double* sg, double* sgx, const float* dy, const float* x, const float* w, float mean,
                                float rstd, int64_t d, bool residual, int lane, int tpr) {
  double a = 0, b = 0;
  for (int64_t j = lane; j < d; j += tpr) {
    const float g = dy[j] * gamma_at(w, j, residual);
    a += static_cast<double>(g);
    b += static_cast<double>(g * xhat(x[j], mean, rstd));
  }
  *sg = a;
  *sgx = b;
}

template <class S>
XLSTM_ROW_FN void fwd_write(S y, const float* x, const float* w, const float* b, float mean, float rstd, int64_t d,
                            bool residual, int lane, int tpr) {
  for (int64_t j = lane; j < d; j += tpr) y.put(j, fwd_value(x[j], mean, rstd, gamma_at(w, j, residual), b, j));
}
template <class S>
XLSTM_ROW_FN void bwd_write(S dx, const float* dy, const float* x, const float* w, float mean, float rstd, float mg,
                            float mgx, int64_t d, bool residual, int lane, int tpr) {
  for (int64_t j = lane; j < d; j += tpr)
    dx.put(j, bwd_value(dy[j] * gamma_at(w, j, residual), mg, xhat(x[j], mean, rstd), mgx, rstd));
}

// dw/db: a fixed partition of the rows into `blocks` chunks (from rows alone): each (chunk, column) partial sum
// is taken in double over its rows in order, then the chunk partials are added in chunk order.
struct ParamPartition {
  int64_t blocks, per;
};
XLSTM_ROW_FN ParamPartition param_partition(int64_t rows) {
  ParamPartition p;
  p.blocks = (rows + 31) / 32;
  if (p.blocks < 1) p.blocks = 1;
  if (p.blocks > 128) p.blocks = 128;
  p.per = (rows + p.blocks - 1) / p.blocks;
  return p;
}
// Partial sums of chunk k for column c of groups * dim (group c / dim).
XLSTM_ROW_FN void param_partial(double* pw, double* pb, const float* dy, const float* x, const float* mean,
                                const float* rstd, int64_t rows, int64_t groups, int64_t dim, int64_t k, int64_t per,
                                int64_t c) {
  const int64_t gd = groups * dim, g = c / dim;
  const int64_t r1 = (k + 1) * per < rows ? (k + 1) * per : rows;
  double a = 0, b = 0;
  for (int64_t r = k * per; r < r1; ++r) {
    const int64_t i = r * groups + g;
    const float d = dy[r * gd + c];
    a += static_cast<double>(d * xhat(x[r * gd + c], mean[i], rstd[i]));
    b += static_cast<double>(d);
  }
  *pw = a;
  *pb = b;
}

}  // namespace nrm
}  // namespace xlstm
