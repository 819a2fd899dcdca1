// Host-side helpers shared by the CUDA kernel files (cuda/*.cu): the one error check, device buffers freed on every
// path (with the copies of the *_host entries), stream-ordered scratch, grid sizes of the grid-stride kernels, and
// the launch / synchronise checks. Errors throw std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
// Header-only and only for .cu files (needs cuda_runtime.h); nothing here launches a kernel.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "cuda_api.h"

namespace xlstm {
namespace cuda {
namespace hostutil {

// Throws std::runtime_error("<entry>: <what>: <cudaGetErrorString(err)>") unless err is cudaSuccess.
inline void check(cudaError_t err, const char* entry, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so later calls start clean
    throw std::runtime_error(std::string(entry) + ": " + what + ": " + cudaGetErrorString(err));
  }
}

// After a launch: the launch error, if any ("<entry>: kernel launch: ...").
inline void launched(const char* entry) { check(cudaGetLastError(), entry, "kernel launch"); }

// *_host entries after their kernels: waits for the device ("<entry>: kernel: ...").
inline void device_sync(const char* entry) { check(cudaDeviceSynchronize(), entry, "kernel"); }

inline cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// Lets `kernel` launch with up to `bytes` of dynamic shared memory (cudaFuncAttributeMaxDynamicSharedMemorySize). The
// attribute belongs to the kernel, not to one launch, and GPU work also runs on worker threads: so it is only ever
// raised, under a lock, never lowered, and a launch on another thread that was set up for more keeps its limit
// between its own set and its launch. Raising it again is skipped (one host call less per launch).
inline void raise_smem_limit(const void* kernel, int64_t bytes, const char* entry) {
  static std::mutex mu;
  static std::unordered_map<const void*, int64_t> limits;
  std::lock_guard<std::mutex> lock(mu);
  int64_t& cur = limits[kernel];
  if (bytes <= cur) return;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)), entry,
        "cudaFuncSetAttribute (dynamic shared memory)");
  cur = bytes;
}

// Blocks of `per_block` threads (or items) for n items of a grid-stride loop: at least 1, at most max_blocks.
constexpr int64_t kMaxGridBlocks = int64_t(65535) * 16;
inline unsigned grid_for(int64_t n, int64_t per_block, int64_t max_blocks = kMaxGridBlocks) {
  const int64_t b = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(b, 1), max_blocks));
}

// n elements of T on the current device (none when n <= 0), freed on every path. The host entries' copies:
// DeviceBuffer(h, n) holds a copy of host array h (none when h is null: an absent optional argument stays null),
// download(h) copies the n elements back to h (nothing when h is null).
template <class T>
struct DeviceBuffer {
  T* p = nullptr;
  int64_t n = 0;
  DeviceBuffer(int64_t count, const char* entry) {
    if (count > 0) {
      check(cudaMalloc(reinterpret_cast<void**>(&p), static_cast<size_t>(count) * sizeof(T)), entry, "cudaMalloc");
      n = count;
    }
  }
  DeviceBuffer(const T* h, int64_t count, const char* entry) : DeviceBuffer(h ? count : 0, entry) {
    upload(h, entry);
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const T* h, const char* entry) {
    if (n > 0 && h)
      check(cudaMemcpy(p, h, static_cast<size_t>(n) * sizeof(T), cudaMemcpyHostToDevice), entry,
            "cudaMemcpy to device");
  }
  void download(T* h, const char* entry) const {
    if (n > 0 && h)
      check(cudaMemcpy(h, p, static_cast<size_t>(n) * sizeof(T), cudaMemcpyDeviceToHost), entry, "cudaMemcpy to host");
  }
  // The device copy where the host array is present, else null (optional arguments).
  T* get_if(const void* host) const { return host ? p : nullptr; }
};

// Stream-ordered scratch of n elements of T (none when n <= 0), given back when it goes out of scope (after the
// kernels enqueued before it), on every path: from the package's caching allocator for work on the package stream,
// else (the *_host test entries) cudaMallocAsync / cudaFreeAsync on `stream`.
template <class T>
struct StreamScratch {
  T* p = nullptr;
  cudaStream_t s;
  bool cached = false;  // from the package's caching allocator (work on its stream) rather than cudaMallocAsync
  StreamScratch(int64_t n, cudaStream_t stream, const char* entry) : s(stream) {
    if (n <= 0) return;
    const size_t bytes = static_cast<size_t>(n) * sizeof(T);
    if (s != nullptr && s == static_cast<cudaStream_t>(cuda::stream())) {
      // the package stream: all its work is ordered, so the block may go back to the cache as soon as this
      // entry has enqueued its kernels (and it counts in memoryStats and out-of-memory handling)
      p = static_cast<T*>(cuda::device_malloc(bytes));
      cached = true;
    } else {
      check(cudaMallocAsync(reinterpret_cast<void**>(&p), bytes, s), entry, "cudaMallocAsync");
    }
  }
  ~StreamScratch() {
    if (!p) return;
    if (cached) cuda::device_free(p);
    else cudaFreeAsync(p, s);
  }
  StreamScratch(const StreamScratch&) = delete;
  StreamScratch& operator=(const StreamScratch&) = delete;
};

}  // namespace hostutil
}  // namespace cuda
}  // namespace xlstm
