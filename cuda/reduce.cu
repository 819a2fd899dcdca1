// CUDA twin of csrc/kernels/reduce.cc: sum / mean / max (with argmax) of a dense row-major float32 tensor over any
// set of axes, their backward, and sum_all (the float64 sum of a whole array), on device memory. Same contract as
// reduce.h: out over the kept axes, argmax = flat index into x of the first maximum (NaN counts as the largest),
// empty reductions give sum 0, mean NaN, max NaN with argmax -1; gradients written with "=".
//
// Plan and launch mapping are the __host__ __device__ functions of csrc/kernels/reduce_math.h (three modes: a
// thread, a 256-thread block or a 32 x 8 column block per output; long reductions split into pieces combined in
// order by a second kernel), which reduce_coverage() runs on the host to check that every x element is read once,
// for the right output, and every output written once. Sums accumulate in double (one rounding at the end), max
// uses a total order, and every combine is a fixed tree: results never depend on timing or the device.
// Backward: one thread per x element: sum/mean gather dy through the CPU's own broadcast plan (make_strided_plan)
// and per-element op (ew::binary_forward), max writes dy[o] where argmax[o] is this element (the CUDA binding
// checks that argmax[o] lies in output o's reduction set, as reduce_axes produces it).
// Device entries enqueue on `stream` (a cudaStream_t; null = default); scratch for the pieces is stream-ordered
// (cudaMallocAsync). *_host entries copy in, run, copy out, synchronise. Errors: std::runtime_error("<entry>: ...").
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/reduce_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using rd::MaxAcc;
using rd::Mode;
using rd::Plan;

struct SumP {
  using Acc = double;
  __device__ static Acc init() { return 0.0; }
  __device__ static void add(Acc& a, float v, int64_t) { a += static_cast<double>(v); }
  __device__ static void combine(Acc& a, const Acc& b) { a += b; }
  __device__ static void put(float* out, int64_t*, int64_t o, const Acc& a, bool mean, int64_t count) {
    out[o] = static_cast<float>(mean ? a / static_cast<double>(count) : a);
  }
};

struct MaxP {
  using Acc = MaxAcc;
  __device__ static Acc init() { return {__int_as_float(0x7fc00000), -1}; }
  __device__ static void add(Acc& a, float v, int64_t i) {
    const MaxAcc c{v, i};
    if (rd::max_beats(c, a)) a = c;
  }
  __device__ static void combine(Acc& a, const Acc& b) {
    if (rd::max_beats(b, a)) a = b;
  }
  __device__ static void put(float* out, int64_t* argmax, int64_t o, const Acc& a, bool, int64_t) {
    out[o] = a.v;
    if (argmax) argmax[o] = a.i;
  }
};

// One launch of the plan's mode: grid (p.grid_x, p.pieces), block 256 (Serial, Block) or 32 x 8 (Columns).
template <class P, Mode M>
__global__ void __launch_bounds__(256) reduce_kernel(Plan p, const float* __restrict__ x, float* __restrict__ out,
                                                     int64_t* __restrict__ argmax, typename P::Acc* partial,
                                                     bool mean) {
  using Acc = typename P::Acc;
  __shared__ Acc sh[256];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * blockDim.x + tx;
  int64_t o_in, q_first, q_step;
  rd::thread_role(p, tx, ty, &o_in, &q_first, &q_step);
  const int64_t piece = blockIdx.y;
  int64_t q0, q1;
  rd::piece_range(p, piece, &q0, &q1);
  const int64_t per = rd::outputs_per_block(p);
  for (int64_t base = blockIdx.x * per; base < p.out_n; base += static_cast<int64_t>(gridDim.x) * per) {
    const int64_t o = base + o_in;
    Acc acc = P::init();
    if (o < p.out_n) {
      const int64_t ko = rd::axes_offset(p.kept, o);
      for (int64_t q = q0 + q_first; q < q1; q += q_step) {
        const int64_t off = ko + rd::axes_offset(p.red, q);
        P::add(acc, x[off], off);
      }
    }
    bool writer = o < p.out_n;
    if (M == Mode::Block) {
      sh[tid] = acc;
      __syncthreads();
      for (int s = rd::kBlockThreads / 2; s > 0; s >>= 1) {
        if (tid < s) P::combine(sh[tid], sh[tid + s]);
        __syncthreads();
      }
      acc = sh[0];
      writer = writer && tid == 0;
      __syncthreads();
    } else if (M == Mode::Columns) {
      sh[tid] = acc;
      __syncthreads();
      for (int s = rd::kColsY / 2; s > 0; s >>= 1) {
        if (ty < s) P::combine(sh[tid], sh[tid + s * rd::kColsX]);
        __syncthreads();
      }
      acc = sh[tx];
      writer = writer && ty == 0;
      __syncthreads();
    }
    if (writer) {
      if (p.pieces == 1) P::put(out, argmax, o, acc, mean, p.count);
      else partial[o * p.pieces + piece] = acc;
    }
  }
}

// out[o] from the pieces' partials, added in piece order.
template <class P>
__global__ void combine_kernel(Plan p, float* __restrict__ out, int64_t* __restrict__ argmax,
                               const typename P::Acc* __restrict__ partial, bool mean) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < p.out_n;
       o += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    typename P::Acc acc = partial[o * p.pieces];
    for (int64_t pc = 1; pc < p.pieces; ++pc) P::combine(acc, partial[o * p.pieces + pc]);
    P::put(out, argmax, o, acc, mean, p.count);
  }
}

// Empty reduction (x == null: fill) or nothing reduced (copy, argmax = own index).
__global__ void fill_copy_kernel(float* out, int64_t* argmax, const float* x, int64_t n, float fill) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    out[i] = x ? x[i] : fill;
    if (argmax) argmax[i] = x ? i : -1;
  }
}

template <BinaryOp OP>
__global__ void broadcast_grad_kernel(float* dx, const float* dy, float divisor, BroadcastPlan plan) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < plan.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t o, unused;
    ew::broadcast_offsets(plan, i, &o, &unused);
    dx[i] = ew::binary_forward<OP>(dy[o], divisor);
  }
}

__global__ void max_grad_kernel(float* dx, const float* dy, const int64_t* argmax, BroadcastPlan plan) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < plan.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    int64_t o, unused;
    ew::broadcast_offsets(plan, i, &o, &unused);
    dx[i] = argmax[o] == i ? 0.0f + dy[o] : 0.0f;  // 0 + dy as the CPU's "+=" into zeros (-0 becomes +0)
  }
}

// Block tree sum of doubles over 256 threads (thread 0 gets the result).
__device__ double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = rd::kSumThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  return sh[0];
}

__global__ void __launch_bounds__(rd::kSumThreads) sum_pass1(const float* __restrict__ x, int64_t n, int64_t chunk,
                                                             double* __restrict__ partial) {
  __shared__ double sh[rd::kSumThreads];
  const int64_t lo = blockIdx.x * chunk, hi = min(n, lo + chunk);
  double acc = 0.0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += rd::kSumThreads) acc += static_cast<double>(x[i]);
  const double s = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void __launch_bounds__(rd::kSumThreads) sum_pass2(const double* __restrict__ partial, int64_t blocks,
                                                             double* __restrict__ out) {
  __shared__ double sh[rd::kSumThreads];
  double acc = 0.0;
  for (int64_t i = threadIdx.x; i < blocks; i += rd::kSumThreads) acc += partial[i];
  const double s = block_sum(acc, sh);
  if (threadIdx.x == 0) *out = s;
}

template <class P>
void launch_reduce(const Plan& p, const float* x, float* out, int64_t* argmax, bool mean, cudaStream_t s,
                   const char* entry) {
  using Acc = typename P::Acc;
  StreamScratch<Acc> scratch(p.pieces > 1 ? p.out_n * p.pieces : 0, s, entry);
  Acc* partial = scratch.p;
  const dim3 grid(static_cast<unsigned>(p.grid_x), static_cast<unsigned>(p.pieces));
  switch (p.mode) {
    case Mode::Serial:
      reduce_kernel<P, Mode::Serial><<<grid, dim3(rd::kBlockThreads), 0, s>>>(p, x, out, argmax, partial, mean);
      break;
    case Mode::Block:
      reduce_kernel<P, Mode::Block><<<grid, dim3(rd::kBlockThreads), 0, s>>>(p, x, out, argmax, partial, mean);
      break;
    case Mode::Columns:
      reduce_kernel<P, Mode::Columns><<<grid, dim3(rd::kColsX, rd::kColsY), 0, s>>>(p, x, out, argmax, partial, mean);
      break;
  }
  check(cudaGetLastError(), entry, "reduce kernel launch");
  if (p.pieces > 1) {
    combine_kernel<P><<<grid_for(p.out_n, 256), 256, 0, s>>>(p, out, argmax, partial, mean);
    check(cudaGetLastError(), entry, "combine kernel launch");
  }
}

void sizes_of(int ndim, const int64_t* shape, const uint8_t* reduced, int64_t* n, int64_t* out_n, int64_t* count) {
  *n = 1, *out_n = 1, *count = 1;
  for (int d = 0; d < ndim; ++d) {
    *n *= shape[d];
    (reduced[d] ? *count : *out_n) *= shape[d];
  }
}

bool nothing_reduced(int ndim, const int64_t* shape, const uint8_t* reduced) {
  for (int d = 0; d < ndim; ++d)
    if (reduced[d] && shape[d] != 1) return false;
  return true;
}

BroadcastPlan backward_plan(int ndim, const int64_t* shape, const uint8_t* reduced) {
  std::vector<int64_t> a_stride(ndim), b_stride(ndim, 0);
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; --d) {
    a_stride[d] = reduced[d] ? 0 : s;
    if (!reduced[d]) s *= shape[d];
  }
  return make_strided_plan(ndim, shape, a_stride.data(), b_stride.data());
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced, void* stream) {
  const char* entry = "reduce_axes";
  const cudaStream_t s = as_stream(stream);
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (out_n == 0) return;
  if (op != ReduceOp::Max) argmax = nullptr;
  if (count == 0 || nothing_reduced(ndim, shape, reduced)) {
    const float fill = op == ReduceOp::Sum ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    fill_copy_kernel<<<grid_for(out_n, 256), 256, 0, s>>>(out, argmax, count == 0 ? nullptr : x, out_n, fill);
    check(cudaGetLastError(), entry, "fill kernel launch");
    return;
  }
  const Plan p = rd::make_plan(ndim, shape, reduced);
  if (op == ReduceOp::Max) launch_reduce<MaxP>(p, x, out, argmax, false, s, entry);
  else launch_reduce<SumP>(p, x, out, nullptr, op == ReduceOp::Mean, s, entry);
}

void reduce_axes_backward(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                          const int64_t* shape, const uint8_t* reduced, void* stream) {
  const char* entry = "reduce_axes_backward";
  const cudaStream_t s = as_stream(stream);
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (n == 0) return;
  const BroadcastPlan plan = backward_plan(ndim, shape, reduced);
  if (op == ReduceOp::Max) {
    max_grad_kernel<<<grid_for(n, 256), 256, 0, s>>>(dx, dy, argmax, plan);
  } else if (op == ReduceOp::Mean) {
    broadcast_grad_kernel<BinaryOp::Div><<<grid_for(n, 256), 256, 0, s>>>(dx, dy, static_cast<float>(count), plan);
  } else {
    broadcast_grad_kernel<BinaryOp::Mul><<<grid_for(n, 256), 256, 0, s>>>(dx, dy, 1.0f, plan);
  }
  launched(entry);
}

void sum_all(double* out, const float* x, int64_t n, void* stream) {
  const char* entry = "sum_all";
  const cudaStream_t s = as_stream(stream);
  if (n <= 0) {
    check(cudaMemsetAsync(out, 0, sizeof(double), s), entry, "cudaMemsetAsync");
    return;
  }
  int64_t blocks, chunk;
  rd::sum_pass_plan(n, &blocks, &chunk);
  StreamScratch<double> scratch(blocks, s, entry);
  double* partial = scratch.p;
  sum_pass1<<<static_cast<unsigned>(blocks), rd::kSumThreads, 0, s>>>(x, n, chunk, partial);
  check(cudaGetLastError(), entry, "pass 1 launch");
  sum_pass2<<<1, rd::kSumThreads, 0, s>>>(partial, blocks, out);
  check(cudaGetLastError(), entry, "pass 2 launch");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void reduce_axes_host(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                      const uint8_t* reduced) {
  const char* entry = "reduce_axes";
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (out_n == 0) return;
  if (op != ReduceOp::Max) argmax = nullptr;
  DeviceBuffer<float> d_x(x, n, entry), d_out(out_n, entry);
  DeviceBuffer<int64_t> d_arg(argmax ? out_n : 0, entry);
  reduce_axes(op, d_out.p, d_arg.p, d_x.p, ndim, shape, reduced, nullptr);
  device_sync(entry);
  d_out.download(out, entry);
  d_arg.download(argmax, entry);
}

void reduce_axes_backward_host(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                               const int64_t* shape, const uint8_t* reduced) {
  const char* entry = "reduce_axes_backward";
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (n == 0) return;
  DeviceBuffer<float> d_dx(n, entry), d_dy(dy, out_n, entry);
  DeviceBuffer<int64_t> d_arg(op == ReduceOp::Max ? argmax : nullptr, out_n, entry);
  reduce_axes_backward(op, d_dx.p, d_dy.p, d_arg.p, ndim, shape, reduced, nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
}

double sum_all_host(const float* x, int64_t n) {
  const char* entry = "sum_all";
  DeviceBuffer<float> d_x(x, n, entry);
  DeviceBuffer<double> d_out(1, entry);
  sum_all(d_out.p, d_x.p, n, nullptr);
  device_sync(entry);
  double r = 0;
  d_out.download(&r, entry);
  return r;
}

// ---- host coverage of the launch mapping -------------------------------------------------------------------------

int64_t reduce_coverage(int ndim, const int64_t* shape, const uint8_t* reduced, int32_t* reads, int* mode,
                        int64_t* pieces) {
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  for (int64_t i = 0; i < n; ++i) reads[i] = 0;
  *mode = -1;
  *pieces = 0;
  if (out_n == 0 || count == 0 || nothing_reduced(ndim, shape, reduced)) return 0;  // fill / copy kernels
  const Plan p = rd::make_plan(ndim, shape, reduced);
  *mode = static_cast<int>(p.mode);
  *pieces = p.pieces;
  // Output index of x element i, computed independently from the unmerged shape.
  auto out_of = [&](int64_t i) {
    int64_t o = 0, mul = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t c = i % shape[d];
      i /= shape[d];
      if (!reduced[d]) {
        o += c * mul;
        mul *= shape[d];
      }
    }
    return o;
  };
  int64_t bad = 0;
  std::vector<int32_t> slot_writes(static_cast<size_t>(out_n * p.pieces), 0);
  const int bx_threads = p.mode == Mode::Columns ? rd::kColsX : rd::kBlockThreads;
  const int by_threads = p.mode == Mode::Columns ? rd::kColsY : 1;
  const int64_t per = rd::outputs_per_block(p);
  for (int64_t piece = 0; piece < p.pieces; ++piece) {
    int64_t q0, q1;
    rd::piece_range(p, piece, &q0, &q1);
    for (int64_t bx = 0; bx < p.grid_x; ++bx)
      for (int64_t base = bx * per; base < p.out_n; base += p.grid_x * per)
        for (int ty = 0; ty < by_threads; ++ty)
          for (int tx = 0; tx < bx_threads; ++tx) {
            int64_t o_in, q_first, q_step;
            rd::thread_role(p, tx, ty, &o_in, &q_first, &q_step);
            const int64_t o = base + o_in;
            if (o >= p.out_n) continue;
            const int64_t ko = rd::axes_offset(p.kept, o);
            for (int64_t q = q0 + q_first; q < q1; q += q_step) {
              const int64_t off = ko + rd::axes_offset(p.red, q);
              if (off < 0 || off >= n) {
                ++bad;
                continue;
              }
              ++reads[off];
              if (out_of(off) != o) ++bad;
            }
            const bool writer = p.mode == Mode::Serial || (p.mode == Mode::Block ? tx == 0 : ty == 0);
            if (writer) ++slot_writes[static_cast<size_t>(o * p.pieces + piece)];
          }
  }
  for (int32_t w : slot_writes) bad += w != 1;
  return bad;
}

int64_t sum_pass_coverage(int64_t n, int32_t* reads) {
  for (int64_t i = 0; i < n; ++i) reads[i] = 0;
  if (n <= 0) return 0;
  int64_t blocks, chunk, bad = 0;
  rd::sum_pass_plan(n, &blocks, &chunk);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t lo = b * chunk, hi = std::min(n, lo + chunk);
    for (int t = 0; t < rd::kSumThreads; ++t)
      for (int64_t i = lo + t; i < hi; i += rd::kSumThreads) ++reads[i];
  }
  if (blocks > rd::kSumMaxBlocks) ++bad;
  return bad;
}

}  // namespace cuda
}  // namespace xlstm
