// The fused inference program (xlstm_infer_engine.h) compiled with AVX2/FMA flags (CMake adds them by file name):
// dense panels in register passes of 32 columns (4 ymm) for up to 3 rows at once.
#define XLSTM_INFER_VW 8
#define XLSTM_INFER_NB 3
#include "kernels/xlstm_infer_engine.h"

namespace xlstm {
namespace infer_detail {

const Impl& impl_avx2() {
  static const Impl impl = make_infer_impl();
  return impl;
}

}  // namespace infer_detail
}  // namespace xlstm
