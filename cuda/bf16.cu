// CUDA twin of csrc/kernels/bf16.cc: bfloat16 weights for inference on device memory, same names, argument order and
// semantics as bf16.h plus a trailing stream (cudaStream_t; null = default stream). W [out, in] and embedding tables
// [V, e] are bfloat16 bits; x, y, bias float32; accumulation float32.
//
// bf16_linear, y = x Wᵀ (+ bias), two launches by the number of rows:
//   rows <= 8 (decode, small batches: memory-bound on W): the GEMV of bf16_math.h, a warp per output, W read once
//              with 16-byte loads and widened in registers, x from the cache; the 32 lane sums by the xor butterfly.
//   rows > 8   (prefill: compute-bound): W widened to float32 a slab of outputs at a time (at most 64 MiB of scratch
//              from the caching allocator) and multiplied by the float32 GEMM (cuda/gemm.cu), or, with round_x, by the
//              bf16 tensor-core GEMM (cuda/gemm_bf16.cu, which rounds x to bf16: the CPU's round_x numerics); the
//              bias added after.
// bf16_linear_parts: the GEMV (rows <= 8) over up to 4 weight buffers whose outputs sit side by side (a projection
//              kept as separate parts): the output index picks the part (bf16_math::gemv_part), the rest as above.
// The *_emulate entries replay the launches on the host with the same functions (bf16_math.h, the GEMMs' replay /
// CPU twin) and count writes per output element; bf16_gemv_coverage checks the GEMV's output map (test/21.bf16).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/bf16_math.h"

namespace xlstm {
// The CPU twin of gemm_bf16.cu (csrc/kernels/gemm.h, whose GCC pragmas nvcc does not take): the replay's round_x path.
void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c);
}  // namespace xlstm

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using namespace bf16_math;

constexpr int kThreads = 256;
constexpr int64_t kScratchFloats = int64_t(1) << 24;  // 64 MiB of widened W per slab

// ps is __grid_constant__: it is indexed by the run-time part, and a by-value parameter indexed so is otherwise
// copied to a local stack frame (144 bytes, every thread; ptxas reports it as "stack frame")
__global__ void __launch_bounds__(kGemvWarps * kWarpLanes)
    bf16_gemv_kernel(float* __restrict__ y, const float* __restrict__ x, const __grid_constant__ GemvParts ps, GemvPlan p,
                     bool round_x) {
  const int warp = threadIdx.x / kWarpLanes, lane = threadIdx.x % kWarpLanes;
  for (int64_t pass = 0; pass < p.passes; ++pass) {
    const int64_t o = gemv_output(p, blockIdx.x, warp, pass);
    if (o >= p.out) break;  // the same for the whole warp
    const int i = gemv_part(ps, o);
    const int64_t row = o - ps.start[i];
    float acc[kGemvMaxRows];
    gemv_lane(acc, p, x, ps.w[i] + row * p.in, lane, round_x);
#pragma unroll
    for (int r = 0; r < kGemvMaxRows; ++r)
#pragma unroll
      for (int m = kWarpLanes / 2; m >= 1; m >>= 1) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], m);
    if (lane == 0) {
      const float b = ps.b[i] ? ps.b[i][row] : 0.f;
      for (int r = 0; r < p.rows; ++r) y[r * p.out + o] = acc[r] + b;
    }
  }
}

__global__ void __launch_bounds__(kThreads) bf16_widen_kernel(float* __restrict__ out, const uint16_t* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    out[i] = widen(x[i]);
}

__global__ void __launch_bounds__(kThreads)
    add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t n, int64_t out) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    y[i] += bias[i % out];
}

template <class I>
__global__ void __launch_bounds__(kThreads)
    bf16_embedding_kernel(float* __restrict__ out, const uint16_t* __restrict__ w, const I* __restrict__ indices,
                          int64_t ne, int64_t e) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < ne; k += static_cast<int64_t>(blockDim.x) * gridDim.x)
    out[k] = widen(w[static_cast<int64_t>(indices[k / e]) * e + k % e]);
}

// Output rows of W per slab of the GEMM path.
int64_t slab_rows(int64_t in, int64_t out) { return std::max<int64_t>(1, std::min(out, kScratchFloats / std::max<int64_t>(in, 1))); }

GemvParts one_part(const uint16_t* w, const float* bias, int64_t out) {
  GemvParts ps{};
  ps.w[0] = w, ps.b[0] = bias, ps.start[0] = 0, ps.start[1] = out, ps.n = 1;
  return ps;
}

// whether every part's W starts 16-byte aligned (the GEMV's vector loads)
bool parts_aligned(const GemvParts& ps) {
  for (int i = 0; i < ps.n; ++i)
    if (reinterpret_cast<uintptr_t>(ps.w[i]) & 15) return false;
  return true;
}

void check_parts(const GemvParts& ps, int64_t rows, const char* entry) {
  if (const char* why = gemv_parts_error(ps, rows)) throw std::invalid_argument(std::string(entry) + ": needs " + why);
}

// The GEMV's launch replayed on the host: every (block, warp, pass) and lane with the kernel's functions.
void gemv_replay(float* y, const float* x, const GemvParts& ps, int64_t rows, int64_t in, bool round_x, int32_t* writes) {
  const int64_t out = ps.start[ps.n];
  const GemvPlan p = gemv_plan(rows, in, out, parts_aligned(ps));
  std::vector<float> lanes(static_cast<size_t>(kWarpLanes) * kGemvMaxRows), next(lanes.size());
  for (int64_t block = 0; block < p.grid; ++block)
    for (int warp = 0; warp < kGemvWarps; ++warp)
      for (int64_t pass = 0; pass < p.passes; ++pass) {
        const int64_t o = gemv_output(p, block, warp, pass);
        if (o >= p.out) break;
        const int i = gemv_part(ps, o);
        const int64_t row = o - ps.start[i];
        for (int lane = 0; lane < kWarpLanes; ++lane)
          gemv_lane(*reinterpret_cast<float(*)[kGemvMaxRows]>(&lanes[static_cast<size_t>(lane) * kGemvMaxRows]), p, x,
                    ps.w[i] + row * in, lane, round_x);
        for (int m = kWarpLanes / 2; m >= 1; m >>= 1) {  // __shfl_xor_sync: lane l adds lane l ^ m's value
          for (int lane = 0; lane < kWarpLanes; ++lane)
            for (int r = 0; r < kGemvMaxRows; ++r)
              next[lane * kGemvMaxRows + r] = lanes[lane * kGemvMaxRows + r] + lanes[(lane ^ m) * kGemvMaxRows + r];
          lanes.swap(next);
        }
        const float b = ps.b[i] ? ps.b[i][row] : 0.f;
        for (int r = 0; r < rows; ++r) {
          y[r * out + o] = lanes[r] + b;
          if (writes) ++writes[r * out + o];
        }
      }
}

void gemv_launch(float* y, const float* x, const GemvParts& ps, int64_t rows, int64_t in, bool round_x, cudaStream_t s,
                 const char* entry) {
  const GemvPlan p = gemv_plan(rows, in, ps.start[ps.n], parts_aligned(ps));
  bf16_gemv_kernel<<<static_cast<unsigned>(p.grid), kGemvWarps * kWarpLanes, 0, s>>>(y, x, ps, p, round_x);
  launched(entry);
}

}  // namespace

void bf16_to_f32(float* out, const uint16_t* x, int64_t n, void* stream) {
  if (n <= 0) return;
  bf16_widen_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(out, x, n);
  launched("bf16_to_f32");
}

void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in, int64_t out,
                 bool round_x, void* stream) {
  const char* entry = "bf16_linear";
  if (rows <= 0 || out <= 0) return;
  const cudaStream_t s = as_stream(stream);
  if (rows <= kGemvMaxRows) return gemv_launch(y, x, one_part(w, bias, out), rows, in, round_x, s, entry);
  const int64_t slab = slab_rows(in, out);
  StreamScratch<float> wf(slab * in, s, entry);
  for (int64_t o0 = 0; o0 < out; o0 += slab) {
    const int64_t n = std::min(slab, out - o0);
    bf16_to_f32(wf.p, w + o0 * in, n * in, stream);
    if (round_x) gemm_bf16_batched(false, true, 1, rows, n, in, 1.f, x, in, 0, wf.p, in, 0, 0.f, y + o0, out, 0, stream);
    else gemm_batched(false, true, 1, rows, n, in, 1.f, x, in, 0, wf.p, in, 0, 0.f, y + o0, out, 0, stream);
  }
  if (bias) {
    add_bias_kernel<<<grid_for(rows * out, kThreads), kThreads, 0, s>>>(y, bias, rows * out, out);
    launched(entry);
  }
}

void bf16_linear_emulate(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                         int64_t out, bool round_x, int32_t* writes) {
  if (rows <= 0 || out <= 0) return;
  if (rows <= kGemvMaxRows) return gemv_replay(y, x, one_part(w, bias, out), rows, in, round_x, writes);
  const int64_t slab = slab_rows(in, out);
  std::vector<float> wf(static_cast<size_t>(slab * in));
  for (int64_t o0 = 0; o0 < out; o0 += slab) {
    const int64_t n = std::min(slab, out - o0);
    for (int64_t i = 0; i < n * in; ++i) wf[i] = widen(w[o0 * in + i]);
    if (round_x) xlstm::gemm_bf16_batched(false, true, 1, rows, n, in, 1.f, x, in, 0, wf.data(), in, 0, 0.f, y + o0, out, 0);
    else gemm_batched_emulate(false, true, 1, rows, n, in, 1.f, x, in, 0, wf.data(), in, 0, 0.f, y + o0, out, 0);
  }
  for (int64_t i = 0; i < rows * out; ++i) {
    if (bias) y[i] += bias[i % out];
    if (writes) ++writes[i];
  }
}

void bf16_linear_parts(float* y, const float* x, const GemvParts& ps, int64_t rows, int64_t in, bool round_x, void* stream) {
  const char* entry = "bf16_linear_parts";
  check_parts(ps, rows, entry);
  if (rows <= 0 || ps.start[ps.n] <= 0) return;
  gemv_launch(y, x, ps, rows, in, round_x, as_stream(stream), entry);
}

void bf16_linear_parts_emulate(float* y, const float* x, const GemvParts& ps, int64_t rows, int64_t in, bool round_x,
                               int32_t* writes) {
  check_parts(ps, rows, "bf16_linear_parts_emulate");
  if (rows <= 0 || ps.start[ps.n] <= 0) return;
  gemv_replay(y, x, ps, rows, in, round_x, writes);
}

int64_t bf16_gemv_coverage(int64_t rows, int64_t in, int64_t out, int32_t* counts) {
  if (rows <= 0 || out <= 0) return 0;
  const GemvPlan p = gemv_plan(std::min<int64_t>(rows, kGemvMaxRows), in, out);
  for (int64_t block = 0; block < p.grid; ++block)
    for (int warp = 0; warp < kGemvWarps; ++warp)
      for (int64_t pass = 0; pass < p.passes; ++pass) {
        const int64_t o = gemv_output(p, block, warp, pass);
        if (o >= p.out) break;
        for (int64_t r = 0; r < p.rows; ++r) ++counts[r * out + o];
      }
  return p.grid;
}

template <class I>
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e, void* stream) {
  const int64_t ne = n * e;
  if (ne <= 0) return;
  bf16_embedding_kernel<I><<<grid_for(ne, kThreads), kThreads, 0, as_stream(stream)>>>(out, weight, indices, ne, e);
  launched("bf16_embedding");
}

template <class I>
void bf16_embedding_emulate(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e, int32_t* writes) {
  const int64_t ne = n * e;
  if (ne <= 0) return;
  const int64_t grid = grid_for(ne, kThreads), stride = grid * kThreads;
  for (int64_t b = 0; b < grid; ++b)
    for (int t = 0; t < kThreads; ++t)
      for (int64_t k = b * kThreads + t; k < ne; k += stride) {  // the kernel's grid-stride loop
        out[k] = widen(weight[static_cast<int64_t>(indices[k / e]) * e + k % e]);
        ++writes[k];
      }
}

template void bf16_embedding<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t, void*);
template void bf16_embedding<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t, void*);
template void bf16_embedding_emulate<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t, int32_t*);
template void bf16_embedding_emulate<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t, int32_t*);

}  // namespace cuda
}  // namespace xlstm
