// CUDA kernels layer: the plain C++ interface of everything in cuda/*.cu, callable from the binding without
// CUDA headers. When the addon is built without CUDA, csrc/kernels/cuda_absent.cc answers instead: no devices,
// with the reason, and every kernel entry throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace xlstm {
namespace cuda {

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;
  size_t total_memory = 0;
  int multiprocessors = 0;
};

// True when this binary contains CUDA kernels.
bool compiled();
// Number of usable devices; 0 with `reason` filled in (no driver, no device, built without CUDA, ...).
int device_count(std::string* reason);
DeviceInfo device_info(int index);

}  // namespace cuda
}  // namespace xlstm
