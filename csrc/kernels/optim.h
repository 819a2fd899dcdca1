// Optimizer kernels (CPU kernels layer): the AdamW and SGD updates and the sum of squares used by global-norm
// clipping.
// Flat float32 buffers of n elements; threads split [0, n) in contiguous chunks (each element is independent, so
// results do not depend on the thread count; sum_squares adds per-chunk float64 partials in chunk order). The
// element loops run at the current simd_level() (optim_impl.h) and give bitwise the same results at every level.
#pragma once
#include <cstdint>

namespace xlstm {

// torch.optim.AdamW for one parameter at step t (1-based), in place:
//   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// Scalars are computed in double; per-element arithmetic in float after the moments (as the JS fallback).
void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t);

// torch.optim.SGD for one parameter, in place, every element computed in double and rounded once per stored value
// (bitwise the JS loop of lib/optim/sgd.ts):
//   d = g + wd*p;  b = first ? d : momentum*buf + (1-dampening)*d  (buf = b);  p -= lr * (nesterov ? d + momentum*b : b)
// with momentum 0: p -= lr * d (buf unused, may be null).
void sgd_step(float* p, float* buf, const float* g, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first);

// sum_i x[i]^2 in double (for the global gradient norm).
double sum_squares(const float* x, int64_t n);

// x *= alpha, in place.
void scale_inplace(float* x, int64_t n, float alpha);

}  // namespace xlstm
