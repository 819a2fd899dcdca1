// AVX2 + FMA instantiation of the nn row primitives (see nn_simd.h); compiled with -mavx2 -mfma and only called
// when simd_level() says the CPU has them.
#include "kernels/nn_simd_impl.h"

namespace xlstm {

const NnKernels& nn_kernels_avx2() {
  static const NnKernels k = make_nn_kernels<Avx2T>("avx2");
  return k;
}

}  // namespace xlstm
