// Layer norm over the last dimension, optionally per group (per head), CPU kernels layer.
// XLSTM_SPEC §5.3 (LayerNorm, "residual weight") and §5.4 (MultiHeadLayerNorm = per-head LayerNorm).
//
// Layouts: x, y, dx, dy are [rows, groups, dim] row-major; each (row, group) vector of `dim` elements is
// normalised on its own (groups = 1 is a plain LayerNorm over the last dim; groups = NH, dim = DH is the
// reference's MultiHeadLayerNorm on [B*S, NH, DH]). weight w and bias b are [groups * dim] (head-major), or null.
//   mean = sum(x) / dim,  var = sum((x - mean)^2) / dim (biased),  rstd = 1 / sqrt(var + eps)
//   xhat = (x - mean) * rstd,  y = xhat * gamma + b,  gamma = 1 + w (residual), w (not residual) or 1 (no w)
// Saved for backward: mean and rstd, [rows, groups].
// Backward (per group, g = dy * gamma): dx = (g - mean(g) - xhat * mean(g * xhat)) * rstd,
//   dw = sum over rows of dy * xhat, db = sum over rows of dy (the residual form has the same dw).
// All gradients are written with `=`; dw and db may be null (not computed). The row sums for dw/db use a fixed
// partition of the rows (independent of the thread count), so results are bitwise reproducible.
#pragma once
#include <cstdint>

namespace xlstm {

void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                        int64_t rows, int64_t groups, int64_t dim, float eps, bool residual);

void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim, bool residual);

}  // namespace xlstm
