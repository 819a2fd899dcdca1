// The fused mLSTM layer's pointwise parts (mlstm_layer_engine.h) compiled with AVX2 flags (CMake adds them by
// file name).
#include "kernels/mlstm_layer_engine.h"

namespace xlstm {
namespace mlstm_layer_detail {

const Pointwise& pointwise_avx2() {
  static const Pointwise impl = make_pointwise();
  return impl;
}

}  // namespace mlstm_layer_detail
}  // namespace xlstm
