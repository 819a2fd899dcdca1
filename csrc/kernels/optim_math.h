// AdamW per-call scalars and per-element update (see optim.h), shared by the CPU element loops (optim_impl.h, built
// for the baseline ISA and AVX2) and the CUDA twin (cuda/optim.cu): one definition of the arithmetic. Every float
// operation is rounded on its own: the CPU files build without FMA contraction (optim_avx2.cc turns it off), and
// on the GPU each operation is an explicit round-to-nearest intrinsic (__fmul_rn, __fadd_rn, __fsub_rn, __fdiv_rn,
// __fsqrt_rn), which nvcc never fuses, so the GPU computes bitwise the CPU's values. No CUDA headers.
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define XLSTM_OPT_FN __host__ __device__ __forceinline__
#else
#define XLSTM_OPT_FN inline
#endif

namespace xlstm {
namespace optim_detail {

// Per-call scalars of the AdamW update (computed in double by make_adamw_scalars, used in float).
struct AdamwScalars {
  float decay, step_size, inv_bc2_sqrt, b1, b2, a1, a2, e;
};

// torch.optim.AdamW's scalars for step t (1-based): decay = 1 - lr*wd, step_size = lr / (1 - b1^t),
// inv_bc2_sqrt = 1 / sqrt(1 - b2^t); host code (double pow/sqrt).
inline AdamwScalars make_adamw_scalars(double lr, double beta1, double beta2, double eps, double weight_decay,
                                       int64_t t) {
  AdamwScalars s;
  s.decay = static_cast<float>(1.0 - lr * weight_decay);
  s.step_size = static_cast<float>(lr / (1.0 - pow(beta1, static_cast<double>(t))));
  s.inv_bc2_sqrt = static_cast<float>(1.0 / sqrt(1.0 - pow(beta2, static_cast<double>(t))));
  s.b1 = static_cast<float>(beta1), s.b2 = static_cast<float>(beta2);
  s.a1 = static_cast<float>(1.0 - beta1), s.a2 = static_cast<float>(1.0 - beta2);
  s.e = static_cast<float>(eps);
  return s;
}

#if defined(__CUDA_ARCH__)
#define XLSTM_OPT_MUL(a, b) __fmul_rn((a), (b))
#define XLSTM_OPT_ADD(a, b) __fadd_rn((a), (b))
#define XLSTM_OPT_SUB(a, b) __fsub_rn((a), (b))
#define XLSTM_OPT_DIV(a, b) __fdiv_rn((a), (b))
#define XLSTM_OPT_SQRT(a) __fsqrt_rn(a)
#else
#define XLSTM_OPT_MUL(a, b) ((a) * (b))
#define XLSTM_OPT_ADD(a, b) ((a) + (b))
#define XLSTM_OPT_SUB(a, b) ((a) - (b))
#define XLSTM_OPT_DIV(a, b) ((a) / (b))
#define XLSTM_OPT_SQRT(a) sqrtf(a)
#endif

// One element: m = b1*m + a1*g; v = b2*v + (a2*g)*g; p = p*decay - (step_size*m) / (sqrt(v)*inv_bc2_sqrt + e).
XLSTM_OPT_FN void adamw_element(float& p, float& m, float& v, float g, const AdamwScalars& s) {
  const float mi = XLSTM_OPT_ADD(XLSTM_OPT_MUL(s.b1, m), XLSTM_OPT_MUL(s.a1, g));
  const float vi = XLSTM_OPT_ADD(XLSTM_OPT_MUL(s.b2, v), XLSTM_OPT_MUL(XLSTM_OPT_MUL(s.a2, g), g));
  m = mi;
  v = vi;
  const float denom = XLSTM_OPT_ADD(XLSTM_OPT_MUL(XLSTM_OPT_SQRT(vi), s.inv_bc2_sqrt), s.e);
  p = XLSTM_OPT_SUB(XLSTM_OPT_MUL(p, s.decay), XLSTM_OPT_DIV(XLSTM_OPT_MUL(s.step_size, mi), denom));
}

}  // namespace optim_detail
}  // namespace xlstm
