// CUDA twin of csrc/kernels/embedding.cc: embedding lookup and its deterministic scatter-add backward on device
// memory, same names, argument order and semantics as embedding.h plus a trailing stream (cudaStream_t; null =
// default stream). weight, dweight [V, E]; indices [N] int32 or int64 (assumed in [0, V): the binding checks);
// out, dout [N, E]. The index maps are in csrc/kernels/embedding_math.h: the backward needs no atomics, every
// dweight element is summed by one thread in index order (bitwise equal to the CPU kernel). The *_emulate
// entries replay every launch on the host with the same maps and count writes per element (test/21).
#include <cuda_runtime.h>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/embedding_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using rows::kThreads;

template <class I>
__global__ void __launch_bounds__(kThreads)
    embedding_forward_kernel(float* __restrict__ out, const float* __restrict__ weight, const I* __restrict__ indices,
                             int64_t ne, int64_t e) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < ne;
       k += static_cast<int64_t>(blockDim.x) * gridDim.x)
    out[k] = weight[static_cast<int64_t>(indices[k / e]) * e + k % e];
}

template <class I>
__global__ void __launch_bounds__(kThreads)
    embedding_backward_kernel(float* __restrict__ dweight, const float* __restrict__ dout,
                              const I* __restrict__ indices, int64_t n, int64_t v, int64_t e, emb::BwdPlan p) {
  const int t = threadIdx.x;
  for (int64_t pass = 0; pass < p.passes; ++pass) {
    const int64_t u = emb::unit_of(p, blockIdx.x, t, pass);
    if (u < p.units) emb::bwd_unit(rows::PlainStore{dweight}, dout, indices, n, v, e, p, u, t % rows::kWarp);
  }
}

}  // namespace

template <class I>
void embedding_forward(float* out, const float* weight, const I* indices, int64_t n, int64_t e, void* stream) {
  const int64_t ne = n * e;
  if (ne <= 0) return;
  embedding_forward_kernel<I><<<static_cast<unsigned>(emb::fwd_grid(ne)), kThreads, 0, as_stream(stream)>>>(
      out, weight, indices, ne, e);
  launched("embedding_forward");
}

template <class I>
void embedding_backward(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e,
                        void* stream) {
  if (v <= 0 || e <= 0) return;
  const emb::BwdPlan p = emb::bwd_plan(v, e);
  embedding_backward_kernel<I><<<static_cast<unsigned>(p.grid), kThreads, 0, as_stream(stream)>>>(
      dweight, dout, indices, n, v, e, p);
  launched("embedding_backward");
}

template <class I>
void embedding_forward_host(float* out, const float* weight, const I* indices, int64_t n, int64_t v, int64_t e) {
  const char* entry = "embedding_forward";
  if (n * e <= 0) return;
  DeviceBuffer<float> d_w(weight, v * e, entry), d_out(n * e, entry);
  DeviceBuffer<I> d_i(indices, n, entry);
  embedding_forward(d_out.p, d_w.p, d_i.p, n, e, nullptr);
  device_sync(entry);
  d_out.download(out, entry);
}

template <class I>
void embedding_backward_host(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e) {
  const char* entry = "embedding_backward";
  if (v * e <= 0) return;
  DeviceBuffer<float> d_dout(dout, n * e, entry), d_dw(v * e, entry);
  DeviceBuffer<I> d_i(indices, n, entry);
  embedding_backward(d_dw.p, d_dout.p, d_i.p, n, v, e, nullptr);
  device_sync(entry);
  d_dw.download(dweight, entry);
}

template <class I>
void embedding_forward_emulate(float* out, const float* weight, const I* indices, int64_t n, int64_t e,
                               int32_t* writes) {
  const int64_t ne = n * e;
  if (ne <= 0) return;
  const int64_t grid = emb::fwd_grid(ne), stride = grid * kThreads;
  for (int64_t b = 0; b < grid; ++b)
    for (int t = 0; t < kThreads; ++t)
      for (int64_t k = b * kThreads + t; k < ne; k += stride) {  // the kernel's grid-stride loop
        out[k] = weight[static_cast<int64_t>(indices[k / e]) * e + k % e];
        ++writes[k];
      }
}

template <class I>
void embedding_backward_emulate(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e,
                                int32_t* writes) {
  if (v <= 0 || e <= 0) return;
  const emb::BwdPlan p = emb::bwd_plan(v, e);
  for (int64_t b = 0; b < p.grid; ++b)
    for (int t = 0; t < kThreads; ++t)
      for (int64_t pass = 0; pass < p.passes; ++pass) {
        const int64_t u = emb::unit_of(p, b, t, pass);
        if (u < p.units) emb::bwd_unit(rows::CountingStore{dweight, writes}, dout, indices, n, v, e, p, u, t % rows::kWarp);
      }
}

#define XLSTM_EMB_INSTANTIATE(I)                                                                                     \
  template void embedding_forward<I>(float*, const float*, const I*, int64_t, int64_t, void*);                       \
  template void embedding_backward<I>(float*, const float*, const I*, int64_t, int64_t, int64_t, void*);             \
  template void embedding_forward_host<I>(float*, const float*, const I*, int64_t, int64_t, int64_t);                \
  template void embedding_backward_host<I>(float*, const float*, const I*, int64_t, int64_t, int64_t);               \
  template void embedding_forward_emulate<I>(float*, const float*, const I*, int64_t, int64_t, int32_t*);            \
  template void embedding_backward_emulate<I>(float*, const float*, const I*, int64_t, int64_t, int64_t, int32_t*);
XLSTM_EMB_INSTANTIATE(int32_t)
XLSTM_EMB_INSTANTIATE(int64_t)
#undef XLSTM_EMB_INSTANTIATE

}  // namespace cuda
}  // namespace xlstm
