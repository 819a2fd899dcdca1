// The fused inference program (xlstm_infer_engine.h) compiled with AVX-512 flags (CMake adds them by file name):
// dense panels in register passes of 64 columns (4 zmm) for up to 4 rows at once.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 bug 105593 in its own AVX-512 headers
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
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
