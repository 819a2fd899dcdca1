// Host-side helpers of the nn CUDA twins (cuda/norm.cu, cuda/softmax.cu, cuda/embedding.cu): error checks that
// throw std::runtime_error("<entry>: <what>: <cudaGetErrorString>"), device buffers freed on every path, and the
// copies of the *_host entries. Only for .cu files (needs cuda_runtime.h).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace xlstm {
namespace cuda {
namespace nnh {

inline void check(cudaError_t err, const char* entry, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so later calls start clean
    throw std::runtime_error(std::string(entry) + ": " + what + ": " + cudaGetErrorString(err));
  }
}

// n elements of T on the current device (none when n <= 0 or the host array is absent).
template <class T>
struct Buf {
  T* p = nullptr;
  Buf(int64_t n, const char* entry) {
    if (n > 0) check(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)), entry, "cudaMalloc");
  }
  // A copy of host array h (nullptr stays nullptr: an absent optional argument).
  Buf(const T* h, int64_t n, const char* entry) {
    if (!h || n <= 0) return;
    check(cudaMalloc(&p, static_cast<size_t>(n) * sizeof(T)), entry, "cudaMalloc");
    check(cudaMemcpy(p, h, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice), entry, "cudaMemcpy to device");
  }
  ~Buf() {
    if (p) cudaFree(p);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  void to_host(T* h, int64_t n, const char* entry) const {
    if (h && p && n > 0)
      check(cudaMemcpy(h, p, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost), entry, "cudaMemcpy to host");
  }
};

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

}  // namespace nnh
}  // namespace cuda
}  // namespace xlstm
