// CPU-only builds: the answers of cuda/cuda_api.h when the addon was compiled without a CUDA compiler.
// (With CUDA, cuda/*.cu define these and this file compiles to nothing.)
#ifndef XLSTM_WITH_CUDA
#include "cuda_api.h"

#include <stdexcept>  // gemm block

namespace xlstm {
namespace cuda {

bool compiled() { return false; }

int device_count(std::string* reason) {
  if (reason) *reason = "this xlstm binary was built without CUDA (no CUDA compiler was found at build time)";
  return 0;
}

DeviceInfo device_info(int) { return DeviceInfo{}; }

// ---- gemm [gemm-block]: every entry throws (the binding turns it into a JS Error)
static void gemm_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void gemm(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float, float*,
          int64_t, void*) {
  gemm_absent("cuda::gemm");
}
void gemm_batched(bool, bool, int64_t, int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                  const float*, int64_t, int64_t, float, float*, int64_t, int64_t, void*) {
  gemm_absent("cuda::gemm_batched");
}
void gemm_host(bool, bool, int64_t, int64_t, int64_t, float, const float*, const float*, float, float*) {
  gemm_absent("cuda::gemm_host");
}
int64_t gemm_tile_coverage(bool, bool, int64_t, int64_t, int64_t, int32_t*) {
  gemm_absent("cuda::gemm_tile_coverage");
  return 0;
}
// ---- end gemm

}  // namespace cuda
}  // namespace xlstm
#endif

// ---- elementwise [elementwise-block]: every entry throws (the binding turns it into a JS Error)
#ifndef XLSTM_WITH_CUDA
#include <stdexcept>
#include <string>
namespace xlstm {
namespace cuda {
static void elementwise_absent(const char* fn) {
  throw std::runtime_error(std::string(fn) + ": this xlstm binary was built without CUDA");
}
void elementwise_unary(UnaryOp, float*, const float*, float, float, int64_t, void*) {
  elementwise_absent("cuda::elementwise_unary");
}
void elementwise_unary_backward(UnaryOp, float*, const float*, const float*, const float*, float, int64_t, void*) {
  elementwise_absent("cuda::elementwise_unary_backward");
}
void elementwise_binary(BinaryOp, float*, const float*, const float*, const BroadcastPlan&, void*) {
  elementwise_absent("cuda::elementwise_binary");
}
void elementwise_binary_backward(BinaryOp, float*, float*, const float*, const float*, const float*,
                                 const BroadcastPlan&, void*) {
  elementwise_absent("cuda::elementwise_binary_backward");
}
void elementwise_unary_host(UnaryOp, float*, const float*, float, float, int64_t) {
  elementwise_absent("cuda::elementwise_unary_host");
}
void elementwise_unary_backward_host(UnaryOp, float*, const float*, const float*, const float*, float, int64_t) {
  elementwise_absent("cuda::elementwise_unary_backward_host");
}
void elementwise_binary_host(BinaryOp, float*, const float*, int64_t, const float*, int64_t, const BroadcastPlan&) {
  elementwise_absent("cuda::elementwise_binary_host");
}
void elementwise_binary_backward_host(BinaryOp, float*, float*, const float*, int64_t, const float*, int64_t,
                                      const float*, const BroadcastPlan&) {
  elementwise_absent("cuda::elementwise_binary_backward_host");
}
}  // namespace cuda
}  // namespace xlstm
#endif
// ---- end elementwise
