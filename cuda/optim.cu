// CUDA twin of csrc/kernels/optim.cc: the AdamW update, the sum of squares (global-norm clipping) and x *= alpha on
// device memory, same contract as optim.h.
// adamw_step: one thread per element running optim_detail::adamw_element (csrc/kernels/optim_math.h), the function
//   the CPU loops run, with every float operation an explicit round-to-nearest intrinsic on the device (no FMA
//   contraction), and the per-call scalars from the same make_adamw_scalars: bitwise the CPU's p, m, v.
// sum_squares: deterministic two-pass reduction in double (the partition of reduce_math.h's sum_pass_plan, fixed
//   shared-memory trees; the device entry writes the double to device memory); equals the CPU's double sum up to
//   the summation order (a relative difference of order n * 2^-53).
// scale_inplace: one thread per element, x * alpha (one float multiply, as the CPU).
// Device entries enqueue on `stream` (null = default); *_host entries copy in, run, copy out, synchronise.
// Errors: std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/optim_math.h"
#include "kernels/reduce_math.h"
#include "two_pass_sum.cuh"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using optim_detail::AdamwScalars;
constexpr int kThreads = 256;

__global__ void adamw_kernel(float* __restrict__ p, float* __restrict__ m, float* __restrict__ v,
                             const float* __restrict__ g, int64_t n, AdamwScalars s) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    optim_detail::adamw_element(pi, mi, vi, g[i], s);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void scale_kernel(float* __restrict__ x, int64_t n, float alpha) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    x[i] = __fmul_rn(x[i], alpha);
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void adamw_step(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, int64_t t, void* stream) {
  if (n <= 0) return;
  const AdamwScalars s = optim_detail::make_adamw_scalars(lr, beta1, beta2, eps, weight_decay, t);
  adamw_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(p, m, v, g, n, s);
  launched("adamw_step");
}

void sum_squares(double* out, const float* x, int64_t n, void* stream) {
  two_pass::sum<true>(out, x, n, stream, "sum_squares");
}

void scale_inplace(float* x, int64_t n, float alpha, void* stream) {
  if (n <= 0) return;
  scale_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(x, n, alpha);
  launched("scale_inplace");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void adamw_step_host(float* p, float* m, float* v, const float* g, int64_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, int64_t t) {
  const char* entry = "adamw_step";
  if (n <= 0) return;
  DeviceBuffer<float> d_p(p, n, entry), d_m(m, n, entry), d_v(v, n, entry), d_g(g, n, entry);
  adamw_step(d_p.p, d_m.p, d_v.p, d_g.p, n, lr, beta1, beta2, eps, weight_decay, t, nullptr);
  device_sync(entry);
  d_p.download(p, entry);
  d_m.download(m, entry);
  d_v.download(v, entry);
}

double sum_squares_host(const float* x, int64_t n) {
  const char* entry = "sum_squares";
  DeviceBuffer<float> d_x(x, n, entry);
  DeviceBuffer<double> d_out(1, entry);
  sum_squares(d_out.p, d_x.p, n, nullptr);
  device_sync(entry);
  double r = 0;
  d_out.download(&r, entry);
  return r;
}

void scale_inplace_host(float* x, int64_t n, float alpha) {
  const char* entry = "scale_inplace";
  if (n <= 0) return;
  DeviceBuffer<float> d_x(x, n, entry);
  scale_inplace(d_x.p, n, alpha, nullptr);
  device_sync(entry);
  d_x.download(x, entry);
}

}  // namespace cuda
}  // namespace xlstm
