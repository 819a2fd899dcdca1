// The mLSTM kernels (mlstm_engine.h) compiled with AVX-512 flags (CMake adds them by file name).
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off
#include "kernels/mlstm_engine.h"

namespace xlstm {
namespace mlstm_detail {

const Impl& impl_avx512() {
  static const Impl impl = make_impl();
  return impl;
}

}  // namespace mlstm_detail
}  // namespace xlstm
