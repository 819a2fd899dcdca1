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
// Kernel bodies are __host__ __device__ functions (step_partial / tree_level / step_put, combine_output,
// fill_copy_elem, broadcast_grad_elem, max_grad_elem) that the *_emulate entries replay on the host: every block and
// grid-stride step, each phase for all threads before the next, shared memory and scratch as host arrays, counting
// the writes of every output element (test/21; the device-buffer entries use them under XLSTM_CUDA_EMULATE).
// Device entries enqueue on `stream` (a cudaStream_t; null = default); scratch for the pieces is stream-ordered
// (cudaMallocAsync). *_host entries copy in, run, copy out, synchronise. Errors: std::runtime_error("<entry>: ...").
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "two_pass_sum.cuh"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/reduce_math.h"
#include "kernels/row_launch.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using rd::MaxAcc;
using rd::Mode;
using rd::Plan;

#define XLSTM_RK __host__ __device__ __forceinline__

XLSTM_RK float quiet_nan() {
#ifdef __CUDA_ARCH__
  return __int_as_float(0x7fc00000);
#else
  return std::numeric_limits<float>::quiet_NaN();
#endif
}

// Where the kernels put their results: out (and argmax, may be null) as plain stores on the device; the host replay
// also counts the writes of every element (w_out, w_arg: one counter per output element).
struct PlainOut {
  float* __restrict__ out;
  int64_t* __restrict__ argmax;
  XLSTM_RK void put(int64_t o, float v) const { out[o] = v; }
  XLSTM_RK void put_arg(int64_t o, int64_t i) const {
    if (argmax) argmax[o] = i;
  }
};
struct CountingOut {
  float* out;
  int64_t* argmax;
  int32_t* w_out;
  int32_t* w_arg;
  XLSTM_RK void put(int64_t o, float v) const {
    out[o] = v;
    ++w_out[o];
  }
  XLSTM_RK void put_arg(int64_t o, int64_t i) const {
    if (!argmax) return;
    argmax[o] = i;
    ++w_arg[o];
  }
};

struct SumP {
  using Acc = double;
  XLSTM_RK static Acc init() { return 0.0; }
  XLSTM_RK static void add(Acc& a, float v, int64_t) { a += static_cast<double>(v); }
  XLSTM_RK static void combine(Acc& a, const Acc& b) { a += b; }
  template <class Out>
  XLSTM_RK static void put(const Out& s, int64_t o, const Acc& a, bool mean, int64_t count) {
    s.put(o, static_cast<float>(mean ? a / static_cast<double>(count) : a));
  }
};

struct MaxP {
  using Acc = MaxAcc;
  XLSTM_RK static Acc init() { return {quiet_nan(), -1}; }
  XLSTM_RK static void add(Acc& a, float v, int64_t i) {
    const MaxAcc c{v, i};
    if (rd::max_beats(c, a)) a = c;
  }
  XLSTM_RK static void combine(Acc& a, const Acc& b) {
    if (rd::max_beats(b, a)) a = b;
  }
  template <class Out>
  XLSTM_RK static void put(const Out& s, int64_t o, const Acc& a, bool, int64_t) {
    s.put(o, a.v);
    s.put_arg(o, a.i);
  }
};

// ---- kernel bodies, shared by the kernels and the host replay ----------------------------------------------------
// One step of a reduce_kernel block (outputs base.. of piece `piece`, reduction range [q0, q1)) is three phases
// separated by __syncthreads: every thread's partial (step_partial, then stored to shared memory), the tree levels
// (tree_level, s = half the width down to 1), and the write (step_put). Thread id tid = ty * width + tx.
template <Mode M>
XLSTM_RK int block_width() { return M == Mode::Columns ? rd::kColsX : rd::kBlockThreads; }
template <Mode M>
XLSTM_RK int tree_first() { return M == Mode::Columns ? rd::kColsY / 2 : rd::kBlockThreads / 2; }

// Thread (tx, ty)'s partial of output *o = base + its slot, over its share of [q0, q1).
template <class P>
XLSTM_RK typename P::Acc step_partial(const Plan& p, const float* __restrict__ x, int64_t base, int64_t q0, int64_t q1,
                                      int tx, int ty, int64_t* o) {
  int64_t o_in, q_first, q_step;
  rd::thread_role(p, tx, ty, &o_in, &q_first, &q_step);
  *o = base + o_in;
  typename P::Acc acc = P::init();
  if (*o < p.out_n) {
    const int64_t ko = rd::axes_offset(p.kept, *o);
    for (int64_t q = q0 + q_first; q < q1; q += q_step) {
      const int64_t off = ko + rd::axes_offset(p.red, q);
      P::add(acc, x[off], off);
    }
  }
  return acc;
}

// Tree level s (Block: over tid, Columns: over ty within each column).
template <class P, Mode M>
XLSTM_RK void tree_level(typename P::Acc* sh, int tx, int ty, int s) {
  const int tid = ty * block_width<M>() + tx;
  if (M == Mode::Block) {
    if (tid < s) P::combine(sh[tid], sh[tid + s]);
  } else if (ty < s) {
    P::combine(sh[tid], sh[tid + s * rd::kColsX]);
  }
}

// The step's result: own partial (Serial) or the tree's (thread 0 / row 0), to out or to the piece's partial slot.
template <class P, Mode M, class Out>
XLSTM_RK void step_put(const Plan& p, const Out& out, typename P::Acc* partial, typename P::Acc acc,
                       const typename P::Acc* sh, int64_t o, int64_t piece, int tx, int ty, bool mean) {
  bool writer = o < p.out_n;
  if (M == Mode::Block) {
    acc = sh[0];
    writer = writer && tx == 0 && ty == 0;
  } else if (M == Mode::Columns) {
    acc = sh[tx];
    writer = writer && ty == 0;
  }
  if (writer) {
    if (p.pieces == 1) P::put(out, o, acc, mean, p.count);
    else partial[o * p.pieces + piece] = acc;
  }
}

// out[o] from the pieces' partials, added in piece order.
template <class P, class Out>
XLSTM_RK void combine_output(const Plan& p, const Out& out, const typename P::Acc* __restrict__ partial, int64_t o,
                             bool mean) {
  typename P::Acc acc = partial[o * p.pieces];
  for (int64_t pc = 1; pc < p.pieces; ++pc) P::combine(acc, partial[o * p.pieces + pc]);
  P::put(out, o, acc, mean, p.count);
}

// Empty reduction (x == null: fill) or nothing reduced (copy, argmax = own index).
template <class Out>
XLSTM_RK void fill_copy_elem(const Out& out, const float* x, int64_t i, float fill) {
  out.put(i, x ? x[i] : fill);
  out.put_arg(i, x ? i : -1);
}

template <BinaryOp OP, class Store>
XLSTM_RK void broadcast_grad_elem(const Store& dx, const float* __restrict__ dy, float divisor,
                                  const BroadcastPlan& plan, int64_t i) {
  int64_t o, unused;
  ew::broadcast_offsets(plan, i, &o, &unused);
  dx.put(i, ew::binary_forward<OP>(dy[o], divisor));
}

template <class Store>
XLSTM_RK void max_grad_elem(const Store& dx, const float* __restrict__ dy, const int64_t* __restrict__ argmax,
                            const BroadcastPlan& plan, int64_t i) {
  int64_t o, unused;
  ew::broadcast_offsets(plan, i, &o, &unused);
  dx.put(i, argmax[o] == i ? 0.0f + dy[o] : 0.0f);  // 0 + dy as the CPU's "+=" into zeros (-0 becomes +0)
}

// ---- kernels -----------------------------------------------------------------------------------------------------

// One launch of the plan's mode: grid (p.grid_x, p.pieces), block 256 (Serial, Block) or 32 x 8 (Columns).
template <class P, Mode M>
__global__ void __launch_bounds__(256) reduce_kernel(Plan p, const float* __restrict__ x, float* __restrict__ out,
                                                     int64_t* __restrict__ argmax, typename P::Acc* partial,
                                                     bool mean) {
  using Acc = typename P::Acc;
  __shared__ Acc sh[256];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * block_width<M>() + tx;
  const int64_t piece = blockIdx.y;
  int64_t q0, q1;
  rd::piece_range(p, piece, &q0, &q1);
  const PlainOut dst{out, argmax};
  const int64_t per = rd::outputs_per_block(p);
  for (int64_t base = blockIdx.x * per; base < p.out_n; base += static_cast<int64_t>(gridDim.x) * per) {
    int64_t o;
    const Acc acc = step_partial<P>(p, x, base, q0, q1, tx, ty, &o);
    if (M != Mode::Serial) {
      sh[tid] = acc;
      __syncthreads();
      for (int s = tree_first<M>(); s > 0; s >>= 1) {
        tree_level<P, M>(sh, tx, ty, s);
        __syncthreads();
      }
    }
    step_put<P, M>(p, dst, partial, acc, sh, o, piece, tx, ty, mean);
    if (M != Mode::Serial) __syncthreads();
  }
}

template <class P>
__global__ void combine_kernel(Plan p, float* __restrict__ out, int64_t* __restrict__ argmax,
                               const typename P::Acc* __restrict__ partial, bool mean) {
  const PlainOut dst{out, argmax};
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < p.out_n;
       o += static_cast<int64_t>(blockDim.x) * gridDim.x)
    combine_output<P>(p, dst, partial, o, mean);
}

__global__ void fill_copy_kernel(float* out, int64_t* argmax, const float* x, int64_t n, float fill) {
  const PlainOut dst{out, argmax};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    fill_copy_elem(dst, x, i, fill);
}

template <BinaryOp OP>
__global__ void broadcast_grad_kernel(float* dx, const float* dy, float divisor, BroadcastPlan plan) {
  const rows::PlainStore dst{dx};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < plan.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    broadcast_grad_elem<OP>(dst, dy, divisor, plan, i);
}

__global__ void max_grad_kernel(float* dx, const float* dy, const int64_t* argmax, BroadcastPlan plan) {
  const rows::PlainStore dst{dx};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < plan.numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    max_grad_elem(dst, dy, argmax, plan, i);
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
  two_pass::sum<false>(out, x, n, stream, "sum_all");
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

// ---- host replay entries ---------------------------------------------------------------------------------------
// The launches replayed on the host with the kernels' own bodies: every block (x, piece) and grid-stride step, each
// phase for every thread before the next one (what __syncthreads guarantees), shared memory a host array, the pieces'
// partials a host scratch array; writes count every write of out / argmax / dx.

namespace {

// Every (block, thread) of a 1-d grid-stride launch of grid_for(n, threads) blocks, in block and thread order.
template <class F>
void replay_grid_stride(int64_t n, int threads, F&& f) {
  const int64_t total = static_cast<int64_t>(grid_for(n, threads)) * threads;
  for (int64_t t = 0; t < total; ++t)
    for (int64_t i = t; i < n; i += total) f(i);
}

template <class P, Mode M>
void replay_reduce(const Plan& p, const float* x, const CountingOut& dst, bool mean) {
  using Acc = typename P::Acc;
  std::vector<Acc> partial(static_cast<size_t>(p.pieces > 1 ? p.out_n * p.pieces : 0), P::init());
  const int bx = block_width<M>(), by = M == Mode::Columns ? rd::kColsY : 1;
  std::vector<Acc> sh(rd::kBlockThreads), acc(rd::kBlockThreads);
  std::vector<int64_t> o(rd::kBlockThreads);
  const int64_t per = rd::outputs_per_block(p);
  for (int64_t piece = 0; piece < p.pieces; ++piece) {
    int64_t q0, q1;
    rd::piece_range(p, piece, &q0, &q1);
    for (int64_t blk = 0; blk < p.grid_x; ++blk)
      for (int64_t base = blk * per; base < p.out_n; base += p.grid_x * per) {
        std::fill(sh.begin(), sh.end(), P::init());
        for (int ty = 0; ty < by; ++ty)
          for (int tx = 0; tx < bx; ++tx) {
            const int tid = ty * bx + tx;
            acc[tid] = step_partial<P>(p, x, base, q0, q1, tx, ty, &o[tid]);
            if (M != Mode::Serial) sh[tid] = acc[tid];
          }
        if (M != Mode::Serial)
          for (int s = tree_first<M>(); s > 0; s >>= 1)
            for (int ty = 0; ty < by; ++ty)
              for (int tx = 0; tx < bx; ++tx) tree_level<P, M>(sh.data(), tx, ty, s);
        for (int ty = 0; ty < by; ++ty)
          for (int tx = 0; tx < bx; ++tx) {
            const int tid = ty * bx + tx;
            step_put<P, M>(p, dst, partial.data(), acc[tid], sh.data(), o[tid], piece, tx, ty, mean);
          }
      }
  }
  if (p.pieces > 1)
    replay_grid_stride(p.out_n, 256, [&](int64_t oo) { combine_output<P>(p, dst, partial.data(), oo, mean); });
}

template <class P>
void replay_plan(const Plan& p, const float* x, const CountingOut& dst, bool mean) {
  switch (p.mode) {
    case Mode::Serial: replay_reduce<P, Mode::Serial>(p, x, dst, mean); break;
    case Mode::Block: replay_reduce<P, Mode::Block>(p, x, dst, mean); break;
    case Mode::Columns: replay_reduce<P, Mode::Columns>(p, x, dst, mean); break;
  }
}

}  // namespace

void reduce_axes_emulate(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                         const uint8_t* reduced, int32_t* writes) {
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (out_n == 0) return;
  if (op != ReduceOp::Max) argmax = nullptr;
  const CountingOut dst{out, argmax, writes, writes + out_n};
  if (count == 0 || nothing_reduced(ndim, shape, reduced)) {
    const float fill = op == ReduceOp::Sum ? 0.0f : std::numeric_limits<float>::quiet_NaN();
    const float* src = count == 0 ? nullptr : x;
    replay_grid_stride(out_n, 256, [&](int64_t i) { fill_copy_elem(dst, src, i, fill); });
    return;
  }
  const Plan p = rd::make_plan(ndim, shape, reduced);
  if (op == ReduceOp::Max) replay_plan<MaxP>(p, x, dst, false);
  else replay_plan<SumP>(p, x, dst, op == ReduceOp::Mean);
}

void reduce_axes_backward_emulate(ReduceOp op, float* dx, const float* dy, const int64_t* argmax, int ndim,
                                  const int64_t* shape, const uint8_t* reduced, int32_t* writes) {
  int64_t n, out_n, count;
  sizes_of(ndim, shape, reduced, &n, &out_n, &count);
  if (n == 0) return;
  const BroadcastPlan plan = backward_plan(ndim, shape, reduced);
  const rows::CountingStore dst{dx, writes};
  if (op == ReduceOp::Max) {
    replay_grid_stride(n, 256, [&](int64_t i) { max_grad_elem(dst, dy, argmax, plan, i); });
  } else if (op == ReduceOp::Mean) {
    const float c = static_cast<float>(count);
    replay_grid_stride(n, 256, [&](int64_t i) { broadcast_grad_elem<BinaryOp::Div>(dst, dy, c, plan, i); });
  } else {
    replay_grid_stride(n, 256, [&](int64_t i) { broadcast_grad_elem<BinaryOp::Mul>(dst, dy, 1.0f, plan, i); });
  }
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
