// The fused inference program (xlstm_infer_engine.h) compiled with AVX-512 flags (CMake adds them by file name):
// dense panels in register passes of 64 columns (4 zmm) for up to 4 rows at once.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off
#define XLSTM_INFER_VW 16
#define XLSTM_INFER_NB 4
#include "kernels/xlstm_infer_engine.h"

namespace xlstm {
namespace infer_detail {

const Impl& impl_avx512() {
  static const Impl impl = make_infer_impl();
  return impl;
}

}  // namespace infer_detail
}  // namespace xlstm
