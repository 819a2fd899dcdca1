// Element loops of the optimizer kernels (see optim.h), compiled once per ISA: optim.cc (baseline x86-64 / other
// targets) and optim_avx2.cc (used at the AVX2 and AVX-512 levels). The loops are written so that every level
// computes bitwise the same values: the same float operations in the same order (the ISA file turns off FMA
// contraction), and sum_squares keeps kSumLanes fixed double partial sums whatever the vector width. Only the speed
// differs: AdamW's sqrt and divide are compute-bound on SSE2 (slower than streaming the data on one core).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/optim_math.h"

namespace xlstm {
namespace optim_detail {

// Elements [lo, hi): adamw_element (optim_math.h, shared with the CUDA twin) on each. The scalars are copied to a
// local so the compiler knows the stores to p, m, v cannot change them (the loop vectorises as before).
inline void adamw_range_impl(float* p, float* m, float* v, const float* g, int64_t lo, int64_t hi,
                             const AdamwScalars& s) {
  const AdamwScalars sl = s;
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) adamw_element(p[i], m[i], v[i], g[i], sl);
}

// SGD over elements [lo, hi) (optim.h), in double: each stored value rounded once, as the JS loop does.
struct SgdScalars {
  double lr, momentum, keep, wd;
  bool nesterov, first;
};
inline void sgd_range_impl(float* p, float* buf, const float* g, int64_t lo, int64_t hi, const SgdScalars& s) {
  const SgdScalars sl = s;
  if (sl.momentum == 0.0) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const double w = p[i];
      p[i] = static_cast<float>(w - sl.lr * (static_cast<double>(g[i]) + sl.wd * w));
    }
    return;
  }
#pragma omp simd
  for (int64_t i = lo; i < hi; ++i) {
    const double w = p[i];
    const double d = static_cast<double>(g[i]) + sl.wd * w;
    const double b = sl.first ? d : sl.momentum * static_cast<double>(buf[i]) + sl.keep * d;
    buf[i] = static_cast<float>(b);
    p[i] = static_cast<float>(w - sl.lr * (sl.nesterov ? d + sl.momentum * b : b));
  }
}

// sum over [a, b) of x^2 in double: lane k sums elements a + k, a + k + kSumLanes, ... (the ragged tail goes to
// lanes 0, 1, ...), then the lanes are added in order 0..kSumLanes-1. Independent lanes keep the adds from being
// latency-bound; the fixed lane count makes the result the same on every ISA.
constexpr int kSumLanes = 16;
inline double sum_squares_range_impl(const float* x, int64_t a, int64_t b) {
  double acc[kSumLanes] = {};
  int64_t i = a;
  for (; i + kSumLanes <= b; i += kSumLanes)
#pragma omp simd
    for (int k = 0; k < kSumLanes; ++k) acc[k] += static_cast<double>(x[i + k]) * static_cast<double>(x[i + k]);
  for (int k = 0; i < b; ++i, ++k) acc[k] += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  double s = 0.0;
  for (int k = 0; k < kSumLanes; ++k) s += acc[k];
  return s;
}

using AdamwRangeFn = void (*)(float*, float*, float*, const float*, int64_t, int64_t, const AdamwScalars&);
using SumSquaresRangeFn = double (*)(const float*, int64_t, int64_t);
using SgdRangeFn = void (*)(float*, float*, const float*, int64_t, int64_t, const SgdScalars&);

#if defined(XLSTM_X86)
void adamw_range_avx2(float* p, float* m, float* v, const float* g, int64_t lo, int64_t hi, const AdamwScalars& s);
double sum_squares_range_avx2(const float* x, int64_t a, int64_t b);
void sgd_range_avx2(float* p, float* buf, const float* g, int64_t lo, int64_t hi, const SgdScalars& s);
#endif

}  // namespace optim_detail
}  // namespace xlstm
