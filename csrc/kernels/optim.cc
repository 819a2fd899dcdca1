// Optimizer kernels (CPU kernels layer): see optim.h. Memory-bound streams (AdamW reads 4 and writes 3 floats per
// element, SGD with momentum 3 and 2) split over the thread pool in fixed chunks. The element loops (optim_impl.h) are also compiled for AVX2
// (optim_avx2.cc): on the baseline ISA AdamW's sqrt/divide, not the memory, bound it. Every level computes bitwise
// the same values. The AVX-512 level uses the AVX2 loops: measured on AMD EPYC at 2.6M parameters, the 512-bit
// AdamW loop was slower than the 256-bit one (1.8 vs 1.2 ms, 1 thread).
#include "kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/optim_impl.h"
#include "kernels/threadpool.h"

namespace xlstm {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per chunk worth a thread hand-off

using namespace optim_detail;

void adamw_range_scalar(float* p, float* m, float* v, const float* g, int64_t lo, int64_t hi, const AdamwScalars& s) {
  adamw_range_impl(p, m, v, g, lo, hi, s);
}
double sum_squares_range_scalar(const float* x, int64_t a, int64_t b) { return sum_squares_range_impl(x, a, b); }
void sgd_range_scalar(float* p, float* buf, const float* g, int64_t lo, int64_t hi, const SgdScalars& s) {
  sgd_range_impl(p, buf, g, lo, hi, s);
}

AdamwRangeFn pick_adamw() {
#ifdef XLSTM_X86
  switch (simd_level()) {
    case SimdLevel::AVX512:
    case SimdLevel::AVX2: return adamw_range_avx2;
    default: break;
  }
#endif
  return adamw_range_scalar;
}

SgdRangeFn pick_sgd() {
#ifdef XLSTM_X86
  switch (simd_level()) {
    case SimdLevel::AVX512:
    case SimdLevel::AVX2: return sgd_range_avx2;
    default: break;
  }
#endif
  return sgd_range_scalar;
}

SumSquaresRangeFn pick_sum_squares() {
#ifdef XLSTM_X86
  switch (simd_level()) {
    case SimdLevel::AVX512:
    case SimdLevel::AVX2: return sum_squares_range_avx2;
    default: break;
  }
#endif
  return sum_squares_range_scalar;
}
}  // namespace

void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t) {
  const AdamwScalars s = make_adamw_scalars(lr, beta1, beta2, eps, weight_decay, t);
  const AdamwRangeFn fn = pick_adamw();
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p, m, v, g, lo, hi, s); });
}

void sgd_step(float* p, float* buf, const float* g, int64_t n, double lr, double momentum, double dampening,
              double weight_decay, bool nesterov, bool first) {
  const SgdScalars s{lr, momentum, 1.0 - dampening, weight_decay, nesterov, first};
  const SgdRangeFn fn = pick_sgd();
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p, buf, g, lo, hi, s); });
}

double sum_squares(const float* x, int64_t n) {
  const int64_t chunks = (n + kGrain - 1) / kGrain;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  const SumSquaresRangeFn fn = pick_sum_squares();
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t a = c * kGrain, b = std::min(n, a + kGrain);
      part[static_cast<size_t>(c)] = fn(x, a, b);
    }
  });
  double s = 0.0;
  for (double v : part) s += v;
  return s;
}

void scale_inplace(float* x, int64_t n, float alpha) {
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) x[i] *= alpha;
  });
}

}  // namespace xlstm
