// Scalar instantiation of the nn row primitives and the run-time dispatch (see nn_simd.h).
#include "kernels/nn_simd.h"

#include "kernels/cpu_features.h"
#include "kernels/nn_simd_impl.h"

namespace xlstm {

const NnKernels& nn_kernels_scalar() {
  static const NnKernels k = make_nn_kernels<ScalarT>("scalar");
  return k;
}

const NnKernels& nn_kernels() {
#if defined(XLSTM_X86)
  switch (simd_level()) {
    case SimdLevel::AVX512: return nn_kernels_avx512();
    case SimdLevel::AVX2: return nn_kernels_avx2();
    default: break;
  }
#endif
  return nn_kernels_scalar();
}

}  // namespace xlstm
