// CPU-only builds: the answers of cuda/cuda_api.h when the addon was compiled without a CUDA compiler.
// (With CUDA, cuda/*.cu define these and this file compiles to nothing.)
#ifndef XLSTM_WITH_CUDA
#include "cuda_api.h"

namespace xlstm {
namespace cuda {

bool compiled() { return false; }

int device_count(std::string* reason) {
  if (reason) *reason = "this xlstm binary was built without CUDA (no CUDA compiler was found at build time)";
  return 0;
}

DeviceInfo device_info(int) { return DeviceInfo{}; }

}  // namespace cuda
}  // namespace xlstm
#endif
