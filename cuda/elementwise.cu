// CUDA twin of csrc/kernels/elementwise.cc: elementwise unary ops (activations, affine), binary ops with NumPy
// broadcasting, and their backward, on device memory. The per-element math is csrc/kernels/elementwise_math.h,
// the very same __host__ __device__ functions the CPU kernels run, so the CPU tests check this math too and the
// CPU<->CUDA comparison in test/20.elementwise only has to cover the launch and indexing code.
//
// Layouts as on the CPU (elementwise.h): dense row-major float32; binary outputs in the broadcast shape, inputs
// read through a BroadcastPlan (strides 0 on broadcast axes); gradients written with "=", binary gradients in
// the output shape. One thread per element in a grid-stride loop, the op a template parameter.
// Device entries only enqueue on `stream` (a cudaStream_t; null = default stream); *_host entries copy in, run,
// copy out and synchronise. CUDA errors throw std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/elementwise_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

constexpr int kThreads = 256;

template <UnaryOp OP>
__global__ void unary_kernel(float* out, const float* x, float a, float b, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    out[i] = ew::unary_forward<OP>(x[i], a, b);
}

template <UnaryOp OP>
__global__ void unary_backward_kernel(float* dx, const float* x, const float* y, const float* dy, float a, int64_t n) {
  const int reads = ew::unary_backward_reads(OP);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    dx[i] = ew::unary_backward<OP>((reads & ew::kReadsX) ? x[i] : 0.0f, (reads & ew::kReadsY) ? y[i] : 0.0f, dy[i], a);
}

template <BinaryOp OP>
__global__ void binary_kernel(float* out, const float* a, const float* b, BroadcastPlan p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t ao, bo;
    ew::broadcast_offsets(p, i, &ao, &bo);
    out[i] = ew::binary_forward<OP>(a[ao], b[bo]);
  }
}

template <BinaryOp OP>
__global__ void binary_backward_kernel(float* da, float* db, const float* a, const float* b, const float* dy,
                                       BroadcastPlan p) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < p.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t ao, bo;
    ew::broadcast_offsets(p, i, &ao, &bo);
    float ga, gb;
    ew::binary_backward<OP>(a[ao], b[bo], dy[i], &ga, &gb);
    if (da) da[i] = ga;
    if (db) db[i] = gb;
  }
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void elementwise_unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n, void* stream) {
  if (n <= 0) return;
  ew::dispatch_unary(op, [&](auto k) {
    unary_kernel<decltype(k)::value><<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(out, x, a, b, n);
  });
  launched("elementwise_unary");
}

void elementwise_unary_backward(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                int64_t n, void* stream) {
  if (n <= 0) return;
  ew::dispatch_unary(op, [&](auto k) {
    unary_backward_kernel<decltype(k)::value>
        <<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(dx, x, y, dy, a, n);
  });
  launched("elementwise_unary_backward");
}

void elementwise_binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan,
                        void* stream) {
  if (plan.numel <= 0) return;
  ew::dispatch_binary(op, [&](auto k) {
    binary_kernel<decltype(k)::value>
        <<<grid_for(plan.numel, kThreads), kThreads, 0, as_stream(stream)>>>(out, a, b, plan);
  });
  launched("elementwise_binary");
}

void elementwise_binary_backward(BinaryOp op, float* da, float* db, const float* a, const float* b, const float* dy,
                                 const BroadcastPlan& plan, void* stream) {
  if (plan.numel <= 0 || (!da && !db)) return;
  ew::dispatch_binary(op, [&](auto k) {
    binary_backward_kernel<decltype(k)::value>
        <<<grid_for(plan.numel, kThreads), kThreads, 0, as_stream(stream)>>>(da, db, a, b, dy, plan);
  });
  launched("elementwise_binary_backward");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void elementwise_unary_host(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
  const char* entry = "elementwise_unary";
  if (n <= 0) return;
  DeviceBuffer<float> dx(x, n, entry), dout(n, entry);
  elementwise_unary(op, dout.p, dx.p, a, b, n, nullptr);
  device_sync(entry);
  dout.download(out, entry);
}

void elementwise_unary_backward_host(UnaryOp op, float* dx, const float* x, const float* y, const float* dy, float a,
                                     int64_t n) {
  const char* entry = "elementwise_unary_backward";
  if (n <= 0) return;
  const int reads = ew::unary_backward_reads(op);
  DeviceBuffer<float> d_x((reads & ew::kReadsX) ? x : nullptr, n, entry);
  DeviceBuffer<float> d_y((reads & ew::kReadsY) ? y : nullptr, n, entry), d_dy(dy, n, entry), d_dx(n, entry);
  elementwise_unary_backward(op, d_dx.p, d_x.p, d_y.p, d_dy.p, a, n, nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
}

void elementwise_binary_host(BinaryOp op, float* out, const float* a, int64_t a_len, const float* b, int64_t b_len,
                             const BroadcastPlan& plan) {
  const char* entry = "elementwise_binary";
  if (plan.numel <= 0) return;
  DeviceBuffer<float> d_a(a, a_len, entry), d_b(b, b_len, entry), d_out(plan.numel, entry);
  elementwise_binary(op, d_out.p, d_a.p, d_b.p, plan, nullptr);
  device_sync(entry);
  d_out.download(out, entry);
}

void elementwise_binary_backward_host(BinaryOp op, float* da, float* db, const float* a, int64_t a_len,
                                      const float* b, int64_t b_len, const float* dy, const BroadcastPlan& plan) {
  const char* entry = "elementwise_binary_backward";
  if (plan.numel <= 0 || (!da && !db)) return;
  DeviceBuffer<float> d_a(a, a_len, entry), d_b(b, b_len, entry), d_dy(dy, plan.numel, entry);
  DeviceBuffer<float> d_da(da ? plan.numel : 0, entry), d_db(db ? plan.numel : 0, entry);
  elementwise_binary_backward(op, d_da.p, d_db.p, d_a.p, d_b.p, d_dy.p, plan, nullptr);
  device_sync(entry);
  d_da.download(da, entry);
  d_db.download(db, entry);
}

}  // namespace cuda
}  // namespace xlstm
