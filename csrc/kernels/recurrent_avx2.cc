// The fused recurrences (recurrent_engine.h) compiled with avx2 flags (CMake adds them by file name).
#include "kernels/recurrent_engine.h"

namespace xlstm {
namespace recurrent_detail {

const Impl& impl_avx2() {
  static const Impl impl = make_impl();
  return impl;
}

}  // namespace recurrent_detail
}  // namespace xlstm
