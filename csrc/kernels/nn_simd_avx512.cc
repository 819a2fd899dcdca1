// AVX-512 (F/BW/VL/DQ) instantiation of the nn row primitives (see nn_simd.h); compiled with -mavx512* and only
// called when simd_level() says the CPU has them.
// GCC 12 reports -W(maybe-)uninitialized inside its own AVX-512 headers (_mm512_undefined_* operands, GCC bug
// 105593, fixed in GCC 13); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include "kernels/nn_simd_impl.h"

namespace xlstm {

const NnKernels& nn_kernels_avx512() {
  static const NnKernels k = make_nn_kernels<Avx512T>("avx512");
  return k;
}

}  // namespace xlstm
