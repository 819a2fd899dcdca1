// CUDA twin of csrc/kernels/dropout.cc: dropout with Philox4x32-10 counter-based masks on device memory. The
// generator and the keep rule are csrc/kernels/philox.h, the very functions the CPU kernel runs, so for the same
// (key0, key1) the GPU draws bit-identical masks and outputs (y = x * scale is one float multiply on both sides).
// forward: one thread per Philox block j (elements 4j .. 4j+3), grid-stride; backward: one thread per element.
// Layouts as dropout.h (flat arrays of n elements, mask uint8). Device entries enqueue on `stream` (null =
// default); *_host entries copy in, run, copy out, synchronise. Errors: std::runtime_error("<entry>: ...").
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda_api.h"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace xlstm {
namespace cuda {
namespace {

constexpr int kThreads = 256;

void check(cudaError_t err, const char* entry, const char* what) {
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string(entry) + ": " + what + ": " + cudaGetErrorString(err));
  }
}

unsigned grid_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(std::min<int64_t>(std::max<int64_t>(b, 1), 65535 * 16));
}

__global__ void dropout_forward_kernel(float* __restrict__ y, uint8_t* __restrict__ mask, const float* __restrict__ x,
                                       int64_t n, uint32_t threshold, float scale, uint32_t key0, uint32_t key1) {
  const int64_t blocks = (n + 3) / 4;
  for (int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; j < blocks;
       j += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    uint32_t r[4];
    philox::dropout_block(r, j, key0, key1);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const int64_t i = 4 * j + q;
      if (i < n) {
        const bool keep = philox::dropout_keep(r[q], threshold);
        mask[i] = keep ? 1 : 0;
        y[i] = keep ? x[i] * scale : 0.f;
      }
    }
  }
}

__global__ void dropout_backward_kernel(float* __restrict__ dx, const float* __restrict__ dy,
                                        const uint8_t* __restrict__ mask, int64_t n, float scale) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    dx[i] = mask[i] ? dy[i] * scale : 0.f;
}

struct DeviceBytes {
  void* p = nullptr;
  DeviceBytes(size_t bytes, const char* entry) {
    if (bytes) check(cudaMalloc(&p, bytes), entry, "cudaMalloc");
  }
  ~DeviceBytes() {
    if (p) cudaFree(p);
  }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
};

void copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* entry) {
  if (bytes) check(cudaMemcpy(dst, src, bytes, kind), entry, kind == cudaMemcpyHostToDevice ? "cudaMemcpy to device" : "cudaMemcpy to host");
}

}  // namespace

void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1,
                     void* stream) {
  if (n <= 0) return;
  dropout_forward_kernel<<<grid_for((n + 3) / 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      y, mask, x, n, philox::dropout_threshold(p), dropout_scale(p), key0, key1);
  check(cudaGetLastError(), "dropout_forward", "kernel launch");
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale, void* stream) {
  if (n <= 0) return;
  dropout_backward_kernel<<<grid_for(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(dx, dy, mask, n, scale);
  check(cudaGetLastError(), "dropout_backward", "kernel launch");
}

void dropout_forward_host(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0,
                          uint32_t key1) {
  const char* entry = "dropout_forward";
  if (n <= 0) return;
  const size_t fb = static_cast<size_t>(n) * sizeof(float);
  DeviceBytes d_y(fb, entry), d_m(static_cast<size_t>(n), entry), d_x(fb, entry);
  copy(d_x.p, x, fb, cudaMemcpyHostToDevice, entry);
  dropout_forward(static_cast<float*>(d_y.p), static_cast<uint8_t*>(d_m.p), static_cast<const float*>(d_x.p), n, p,
                  key0, key1, nullptr);
  check(cudaDeviceSynchronize(), entry, "kernel");
  copy(y, d_y.p, fb, cudaMemcpyDeviceToHost, entry);
  copy(mask, d_m.p, static_cast<size_t>(n), cudaMemcpyDeviceToHost, entry);
}

void dropout_backward_host(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale) {
  const char* entry = "dropout_backward";
  if (n <= 0) return;
  const size_t fb = static_cast<size_t>(n) * sizeof(float);
  DeviceBytes d_dx(fb, entry), d_dy(fb, entry), d_m(static_cast<size_t>(n), entry);
  copy(d_dy.p, dy, fb, cudaMemcpyHostToDevice, entry);
  copy(d_m.p, mask, static_cast<size_t>(n), cudaMemcpyHostToDevice, entry);
  dropout_backward(static_cast<float*>(d_dx.p), static_cast<const float*>(d_dy.p), static_cast<const uint8_t*>(d_m.p),
                   n, scale, nullptr);
  check(cudaDeviceSynchronize(), entry, "kernel");
  copy(dx, d_dx.p, fb, cudaMemcpyDeviceToHost, entry);
}

}  // namespace cuda
}  // namespace xlstm
