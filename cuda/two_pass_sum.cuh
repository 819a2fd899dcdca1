// The two-pass float64 sum of a float32 array on the device (CUDA kernels layer), shared by sum_all (reduce.cu) and
// sum_squares (optim.cu): pass 1 gives each of `blocks` blocks a chunk (rd::sum_pass_plan, reduce_math.h), pass 2
// adds the block partials in one block; both combine by the same shared-memory tree, so the result does not depend
// on timing. SQUARE sums x² instead of x.
#pragma once
#include <cuda_runtime.h>

#include "cuda_host_util.h"
#include "kernels/reduce_math.h"

namespace xlstm {
namespace cuda {
namespace two_pass {
namespace {  // each .cu that includes this gets its own kernels (no cross-file symbols)

// Block tree sum of doubles over rd::kSumThreads threads (every thread gets the result).
__device__ inline double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = rd::kSumThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

template <bool SQUARE>
__global__ void __launch_bounds__(rd::kSumThreads)
    pass1(const float* __restrict__ x, int64_t n, int64_t chunk, double* __restrict__ partial) {
  __shared__ double sh[rd::kSumThreads];
  const int64_t lo = blockIdx.x * chunk, hi = min(n, lo + chunk);
  double acc = 0.0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += rd::kSumThreads) {
    const double d = static_cast<double>(x[i]);
    acc += SQUARE ? d * d : d;
  }
  const double s = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(rd::kSumThreads)
    pass2(const double* __restrict__ partial, int64_t blocks, double* __restrict__ out) {
  __shared__ double sh[rd::kSumThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < blocks; i += rd::kSumThreads) acc += partial[i];
  const double s = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = s;
}

// *out (a device double) = Σ x[i] (or Σ x[i]² with SQUARE) over n floats, enqueued on `stream`; 0 for n <= 0.
template <bool SQUARE>
void sum(double* out, const float* x, int64_t n, void* stream, const char* entry) {
  const cudaStream_t s = hostutil::as_stream(stream);
  if (n <= 0) {
    hostutil::check(cudaMemsetAsync(out, 0, sizeof(double), s), entry, "cudaMemsetAsync");
    return;
  }
  int64_t blocks, chunk;
  rd::sum_pass_plan(n, &blocks, &chunk);
  hostutil::StreamScratch<double> partial(blocks, s, entry);
  pass1<SQUARE><<<static_cast<unsigned>(blocks), rd::kSumThreads, 0, s>>>(x, n, chunk, partial.p);
  hostutil::check(cudaGetLastError(), entry, "pass 1 launch");
  pass2<<<1, rd::kSumThreads, 0, s>>>(partial.p, blocks, out);
  hostutil::check(cudaGetLastError(), entry, "pass 2 launch");
}

}  // namespace
}  // namespace two_pass
}  // namespace cuda
}  // namespace xlstm
