// CUDA kernels layer: run-time device detection. The runtime is linked statically, so on a machine without a
// driver cudaGetDeviceCount fails cleanly and we report why instead of failing to load.
#include <cuda_runtime.h>

#include <mutex>

#include "cuda_api.h"
#include "host_emulation.h"

namespace xlstm {
namespace cuda {

bool compiled() { return true; }

int device_count(std::string* reason) {
  if (emu::enabled()) {
    if (reason) reason->clear();
    return 1;
  }
  static std::once_flag once;
  static int count = 0;
  static std::string why;
  std::call_once(once, [] {
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      why = std::string("CUDA runtime: ") + cudaGetErrorString(err);
      count = 0;
      cudaGetLastError();  // clear the sticky error so later calls start clean
    } else if (count == 0) {
      why = "no CUDA device found";
    }
  });
  if (reason) *reason = why;
  return count;
}

DeviceInfo device_info(int index) {
  DeviceInfo d;
  if (emu::enabled()) {
    d.name = emu::device_name();
    d.major = 8;
    d.total_memory = emu::capacity();
    d.multiprocessors = 1;
    return d;
  }
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, index) == cudaSuccess) {
    d.name = p.name;
    d.major = p.major;
    d.minor = p.minor;
    d.total_memory = p.totalGlobalMem;
    d.multiprocessors = p.multiProcessorCount;
  }
  return d;
}

}  // namespace cuda
}  // namespace xlstm
