// Row primitives shared by the neural-network kernels (softmax.cc, norm.cc, conv1d.cc), one table per SIMD level
// (CPU kernels layer). The scalar table is built in nn_simd.cc, the AVX2 and AVX-512 tables in nn_simd_avx2.cc /
// nn_simd_avx512.cc from the same templates (nn_simd_impl.h); nn_kernels() picks the table for simd_level() at
// call time, so setSimdLevel() switches every nn kernel at once.
//
// All rows are contiguous float32. Sums over a row are accumulated in SIMD lanes per block of 1024 elements and
// the block sums in double, so accuracy does not degrade with long rows (vocabularies of 50k+). exp() in the
// SIMD paths is a Cephes-style polynomial (max error ~2 ulp on the range used here, inputs <= 0); the scalar
// path uses std::exp.
#pragma once
#include <cstdint>

namespace xlstm {

struct NnKernels {
  const char* level;
  // ---- softmax family (softmax.cc), one row of n elements
  // y = exp(x - max x) / sum exp(x - max x)
  void (*softmax_row)(float* y, const float* x, int64_t n);
  // y = (x - max x) - log sum exp(x - max x)
  void (*log_softmax_row)(float* y, const float* x, int64_t n);
  // dx = y * (dy - <dy, y>)    (y = softmax output)
  void (*softmax_bwd_row)(float* dx, const float* y, const float* dy, int64_t n);
  // dx = dy - exp(y) * sum(dy)    (y = log-softmax output)
  void (*log_softmax_bwd_row)(float* dx, const float* y, const float* dy, int64_t n);
  // *row_max = max x, *log_sum = log sum exp(x - max x), so logsumexp(x) = row_max + log_sum
  void (*logsumexp_row)(float* row_max, float* log_sum, const float* x, int64_t n);
  // dx = g * exp((x - row_max) - log_sum)    (softmax times g, for cross-entropy's backward)
  void (*softmax_scaled_row)(float* dx, const float* x, float row_max, float log_sum, float g, int64_t n);

  // ---- layer norm over one group of d elements (norm.cc); see norm.h for the formulas
  // gamma = w (residual false), 1 + w (residual true), or 1 (w null); b may be null.
  void (*norm_fwd_row)(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t d, float eps, bool residual);
  // dx (=) for one group; dw += dy * xhat and db += dy when non-null (partial sums owned by the caller).
  void (*norm_bwd_row)(float* dx, float* dw, float* db, const float* dy, const float* x, float mean, float rstd,
                       const float* w, int64_t d, bool residual);

  // ---- elementwise helpers (conv1d.cc)
  // acc += a * b
  void (*fma_row)(float* acc, const float* a, const float* b, int64_t n);
  // acc += a
  void (*add_row)(float* acc, const float* a, int64_t n);
};

const NnKernels& nn_kernels_scalar();
#if defined(XLSTM_X86)
const NnKernels& nn_kernels_avx2();
const NnKernels& nn_kernels_avx512();
#endif
// The table for the current simd_level().
const NnKernels& nn_kernels();

}  // namespace xlstm
