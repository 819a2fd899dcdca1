// CUDA twin of csrc/kernels/dropout.cc: dropout with Philox4x32-10 counter-based masks on device memory. The
// generator and the keep rule are csrc/kernels/philox.h, the very functions the CPU kernel runs, so for the same
// (key0, key1) the GPU draws bit-identical masks and outputs (y = x * scale is one float multiply on both sides).
// forward: one thread per Philox block j (elements 4j .. 4j+3), grid-stride; backward: one thread per element.
// Layouts as dropout.h (flat arrays of n elements, mask uint8). Device entries enqueue on `stream` (null =
// default); *_host entries copy in, run, copy out, synchronise. Errors: std::runtime_error("<entry>: ...").
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/dropout.h"
#include "kernels/philox.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

constexpr int kThreads = 256;

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

}  // namespace

void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1,
                     void* stream) {
  if (n <= 0) return;
  dropout_forward_kernel<<<grid_for((n + 3) / 4, kThreads), kThreads, 0, as_stream(stream)>>>(
      y, mask, x, n, philox::dropout_threshold(p), dropout_scale(p), key0, key1);
  launched("dropout_forward");
}

void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale, void* stream) {
  if (n <= 0) return;
  dropout_backward_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(dx, dy, mask, n, scale);
  launched("dropout_backward");
}

void dropout_forward_host(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0,
                          uint32_t key1) {
  const char* entry = "dropout_forward";
  if (n <= 0) return;
  DeviceBuffer<float> d_y(n, entry), d_x(x, n, entry);
  DeviceBuffer<uint8_t> d_m(n, entry);
  dropout_forward(d_y.p, d_m.p, d_x.p, n, p, key0, key1, nullptr);
  device_sync(entry);
  d_y.download(y, entry);
  d_m.download(mask, entry);
}

void dropout_backward_host(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale) {
  const char* entry = "dropout_backward";
  if (n <= 0) return;
  DeviceBuffer<float> d_dx(n, entry), d_dy(dy, n, entry);
  DeviceBuffer<uint8_t> d_m(mask, n, entry);
  dropout_backward(d_dx.p, d_dy.p, d_m.p, n, scale, nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
}

}  // namespace cuda
}  // namespace xlstm
