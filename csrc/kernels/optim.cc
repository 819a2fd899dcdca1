// Optimizer kernels (CPU kernels layer): see optim.h. Plain loops the compiler vectorises (-O3, -fopenmp-simd),
// split over the thread pool; these are memory-bound streams (AdamW reads 4 and writes 3 floats per element), so
// no ISA-specific variant is needed.
#include "kernels/optim.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/threadpool.h"

namespace xlstm {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per chunk worth a thread hand-off
}

void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t) {
  const float decay = static_cast<float>(1.0 - lr * weight_decay);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, static_cast<double>(t))));
  const float inv_bc2_sqrt = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(beta2, static_cast<double>(t))));
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2);
  const float a1 = static_cast<float>(1.0 - beta1), a2 = static_cast<float>(1.0 - beta2);
  const float e = static_cast<float>(eps);
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      const float gi = g[i];
      const float mi = b1 * m[i] + a1 * gi;
      const float vi = b2 * v[i] + a2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step_size * mi / (std::sqrt(vi) * inv_bc2_sqrt + e);
    }
  });
}

double sum_squares(const float* x, int64_t n) {
  const int64_t chunks = (n + kGrain - 1) / kGrain;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const int64_t a = c * kGrain, b = std::min(n, a + kGrain);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = a; i < b; ++i) s += static_cast<double>(x[i]) * x[i];
      part[static_cast<size_t>(c)] = s;
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
