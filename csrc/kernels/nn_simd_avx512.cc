// AVX-512 (F/BW/VL/DQ) instantiation of the nn row primitives (see nn_simd.h); compiled with -mavx512* and only
// called when simd_level() says the CPU has them.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off
#include "kernels/nn_simd_impl.h"

namespace xlstm {

const NnKernels& nn_kernels_avx512() {
  static const NnKernels k = make_nn_kernels<Avx512T>("avx512");
  return k;
}

}  // namespace xlstm
