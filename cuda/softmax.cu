// CUDA twin of csrc/kernels/softmax.cc: softmax, log-softmax, their backward, and fused cross-entropy forward /
// backward (int32 or int64 targets, ignore_index rows give loss 0 and zero gradients), on device memory. Same
// names, argument order and semantics as softmax.h, plus a trailing stream (cudaStream_t; null = default stream).
//
// Layouts as on the CPU: x, y, dx, dy [rows, cols] row-major float32; logits [N, V]; targets [N]. Geometry and
// reductions: csrc/kernels/row_launch.h (a warp per row of <= 1024 elements, else a 256-thread block per row;
// butterfly reductions in double for sums). The per-row math is csrc/kernels/softmax_math.h. The *_emulate
// entries replay a launch on the host (every block, every thread, the same reduction order) with those same
// functions, counting the writes of every output element; test/21 compares them with the CPU kernels and checks
// every element is written exactly once. Device entries only enqueue; *_host entries copy in, run, copy out and
// synchronise. CUDA errors throw std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/softmax_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using rows::kThreads;
using rows::MaxOp;
using rows::RowLaunch;
using rows::SumOp;

template <int TPR, bool LOG>
__global__ void __launch_bounds__(kThreads)
    rowwise_forward_kernel(float* __restrict__ y, const float* __restrict__ x, int64_t nrows, int64_t cols, RowLaunch l) {
  __shared__ float fsm[rows::kWarps];
  __shared__ double dsm[rows::kWarps];
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t r = rows::row_of(l, blockIdx.x, t, pass);
    if (r >= nrows) continue;  // warp-uniform (TPR 32) or block-uniform (TPR 256)
    const float* xr = x + r * cols;
    const float m = rows::row_reduce<TPR, MaxOp>(smx::lane_max(xr, cols, lane, TPR), fsm);
    const double s = rows::row_reduce<TPR, SumOp>(smx::lane_exp_sum(xr, m, cols, lane, TPR), dsm);
    const rows::PlainStore yr{y + r * cols};
    if (LOG) smx::log_softmax_write(yr, xr, m, static_cast<float>(log(s)), cols, lane, TPR);
    else smx::softmax_write(yr, xr, m, static_cast<float>(1.0 / s), cols, lane, TPR);
  }
}

template <int TPR, bool LOG>
__global__ void __launch_bounds__(kThreads)
    rowwise_backward_kernel(float* __restrict__ dx, const float* __restrict__ y, const float* __restrict__ dy,
                            int64_t nrows, int64_t cols, RowLaunch l) {
  __shared__ double dsm[rows::kWarps];
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t r = rows::row_of(l, blockIdx.x, t, pass);
    if (r >= nrows) continue;
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    const double part = LOG ? smx::lane_sum(dyr, cols, lane, TPR) : smx::lane_dot(dyr, yr, cols, lane, TPR);
    const float s = static_cast<float>(rows::row_reduce<TPR, SumOp>(part, dsm));
    const rows::PlainStore dxr{dx + r * cols};
    if (LOG) smx::log_softmax_bwd_write(dxr, yr, dyr, s, cols, lane, TPR);
    else smx::softmax_bwd_write(dxr, yr, dyr, s, cols, lane, TPR);
  }
}

template <int TPR, class I>
__global__ void __launch_bounds__(kThreads)
    ce_forward_kernel(float* __restrict__ loss, float* __restrict__ row_max, float* __restrict__ log_sum,
                      const float* __restrict__ logits, const I* __restrict__ targets, int64_t n, int64_t v,
                      int64_t ignore_index, unsigned long long* count, RowLaunch l) {
  __shared__ float fsm[rows::kWarps];
  __shared__ double dsm[rows::kWarps];
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t r = rows::row_of(l, blockIdx.x, t, pass);
    if (r >= n) continue;
    const int64_t tg = static_cast<int64_t>(targets[r]);
    if (tg == ignore_index) {  // row-uniform
      if (lane == 0) loss[r] = row_max[r] = log_sum[r] = 0.f;
      continue;
    }
    const float* xr = logits + r * v;
    const float m = rows::row_reduce<TPR, MaxOp>(smx::lane_max(xr, v, lane, TPR), fsm);
    const double s = rows::row_reduce<TPR, SumOp>(smx::lane_exp_sum(xr, m, v, lane, TPR), dsm);
    if (lane == 0) {
      const float ls = static_cast<float>(log(s));
      row_max[r] = m;
      log_sum[r] = ls;
      loss[r] = smx::ce_loss(m, xr[tg], ls);
      if (count) atomicAdd(count, 1ull);  // integer: order-independent
    }
  }
}

template <int TPR, class I>
__global__ void __launch_bounds__(kThreads)
    ce_backward_kernel(float* __restrict__ dlogits, const float* __restrict__ logits, const float* __restrict__ row_max,
                       const float* __restrict__ log_sum, const I* __restrict__ targets, const float* __restrict__ g,
                       int64_t n, int64_t v, int64_t ignore_index, RowLaunch l) {
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t r = rows::row_of(l, blockIdx.x, t, pass);
    if (r >= n) continue;
    const int64_t tg = static_cast<int64_t>(targets[r]);
    const bool ignored = tg == ignore_index;
    smx::ce_grad_write(rows::PlainStore{dlogits + r * v}, logits + r * v, ignored ? 0.f : row_max[r],
                       ignored ? 0.f : log_sum[r], ignored ? 0.f : g[r], ignored ? -1 : tg, v, lane, TPR);
  }
}

template <bool LOG>
void rowwise_forward(const char* entry, float* y, const float* x, int64_t nrows, int64_t cols, void* stream) {
  if (nrows <= 0 || cols <= 0) return;
  const RowLaunch l = rows::row_launch(nrows, cols);
  rows::with_tpr(l, [&](auto k) {
    rowwise_forward_kernel<decltype(k)::value, LOG>
        <<<static_cast<unsigned>(l.grid), kThreads, 0, as_stream(stream)>>>(y, x, nrows, cols, l);
  });
  launched(entry);
}

template <bool LOG>
void rowwise_backward(const char* entry, float* dx, const float* y, const float* dy, int64_t nrows, int64_t cols,
                      void* stream) {
  if (nrows <= 0 || cols <= 0) return;
  const RowLaunch l = rows::row_launch(nrows, cols);
  rows::with_tpr(l, [&](auto k) {
    rowwise_backward_kernel<decltype(k)::value, LOG>
        <<<static_cast<unsigned>(l.grid), kThreads, 0, as_stream(stream)>>>(dx, y, dy, nrows, cols, l);
  });
  launched(entry);
}

template <bool LOG>
void rowwise_forward_host(const char* entry, float* y, const float* x, int64_t nrows, int64_t cols) {
  const int64_t n = nrows * cols;
  if (n <= 0) return;
  DeviceBuffer<float> dx(x, n, entry), dy(n, entry);
  rowwise_forward<LOG>(entry, dy.p, dx.p, nrows, cols, nullptr);
  device_sync(entry);
  dy.download(y, entry);
}

template <bool LOG>
void rowwise_backward_host(const char* entry, float* dx, const float* y, const float* dy, int64_t nrows, int64_t cols) {
  const int64_t n = nrows * cols;
  if (n <= 0) return;
  DeviceBuffer<float> d_y(y, n, entry), d_dy(dy, n, entry), d_dx(n, entry);
  rowwise_backward<LOG>(entry, d_dx.p, d_y.p, d_dy.p, nrows, cols, nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, void* stream) {
  rowwise_forward<false>("softmax_forward", y, x, rows, cols, stream);
}
void log_softmax_forward(float* y, const float* x, int64_t rows, int64_t cols, void* stream) {
  rowwise_forward<true>("log_softmax_forward", y, x, rows, cols, stream);
}
void softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols, void* stream) {
  rowwise_backward<false>("softmax_backward", dx, y, dy, rows, cols, stream);
}
void log_softmax_backward(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols, void* stream) {
  rowwise_backward<true>("log_softmax_backward", dx, y, dy, rows, cols, stream);
}

template <class I>
void cross_entropy_forward(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                           int64_t n, int64_t v, int64_t ignore_index, int64_t* count, void* stream) {
  const char* entry = "cross_entropy_forward";
  if (count) check(cudaMemsetAsync(count, 0, sizeof(int64_t), as_stream(stream)), entry, "cudaMemsetAsync");
  if (n <= 0 || v <= 0) return;
  const RowLaunch l = rows::row_launch(n, v);
  rows::with_tpr(l, [&](auto k) {
    ce_forward_kernel<decltype(k)::value, I><<<static_cast<unsigned>(l.grid), kThreads, 0, as_stream(stream)>>>(
        loss, row_max, log_sum, logits, targets, n, v, ignore_index, reinterpret_cast<unsigned long long*>(count), l);
  });
  launched(entry);
}

template <class I>
void cross_entropy_backward(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                            const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index,
                            void* stream) {
  if (n <= 0 || v <= 0) return;
  const RowLaunch l = rows::row_launch(n, v);
  rows::with_tpr(l, [&](auto k) {
    ce_backward_kernel<decltype(k)::value, I><<<static_cast<unsigned>(l.grid), kThreads, 0, as_stream(stream)>>>(
        dlogits, logits, row_max, log_sum, targets, g, n, v, ignore_index, l);
  });
  launched("cross_entropy_backward");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void softmax_forward_host(float* y, const float* x, int64_t rows, int64_t cols) {
  rowwise_forward_host<false>("softmax_forward", y, x, rows, cols);
}
void log_softmax_forward_host(float* y, const float* x, int64_t rows, int64_t cols) {
  rowwise_forward_host<true>("log_softmax_forward", y, x, rows, cols);
}
void softmax_backward_host(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols) {
  rowwise_backward_host<false>("softmax_backward", dx, y, dy, rows, cols);
}
void log_softmax_backward_host(float* dx, const float* y, const float* dy, int64_t rows, int64_t cols) {
  rowwise_backward_host<true>("log_softmax_backward", dx, y, dy, rows, cols);
}

template <class I>
int64_t cross_entropy_forward_host(float* loss, float* row_max, float* log_sum, const float* logits, const I* targets,
                                   int64_t n, int64_t v, int64_t ignore_index) {
  const char* entry = "cross_entropy_forward";
  if (n <= 0) return 0;
  DeviceBuffer<float> d_x(logits, n * v, entry), d_loss(n, entry), d_max(n, entry), d_ls(n, entry);
  DeviceBuffer<I> d_t(targets, n, entry);
  DeviceBuffer<int64_t> d_count(1, entry);
  cross_entropy_forward(d_loss.p, d_max.p, d_ls.p, d_x.p, d_t.p, n, v, ignore_index, d_count.p, nullptr);
  device_sync(entry);
  d_loss.download(loss, entry);
  d_max.download(row_max, entry);
  d_ls.download(log_sum, entry);
  int64_t count = 0;
  d_count.download(&count, entry);
  return count;
}

template <class I>
void cross_entropy_backward_host(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                                 const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index) {
  const char* entry = "cross_entropy_backward";
  if (n <= 0) return;
  DeviceBuffer<float> d_x(logits, n * v, entry), d_max(row_max, n, entry), d_ls(log_sum, n, entry), d_g(g, n, entry);
  DeviceBuffer<float> d_dx(n * v, entry);
  DeviceBuffer<I> d_t(targets, n, entry);
  cross_entropy_backward(d_dx.p, d_x.p, d_max.p, d_ls.p, d_t.p, d_g.p, n, v, ignore_index, nullptr);
  device_sync(entry);
  d_dx.download(dlogits, entry);
}

// ---- host replay entries ---------------------------------------------------------------------------------------

void softmax_emulate(bool log_softmax, float* y, const float* x, int64_t nrows, int64_t cols, int32_t* writes) {
  if (nrows <= 0 || cols <= 0) return;
  const RowLaunch l = rows::row_launch(nrows, cols);
  rows::replay_rows(l, nrows, [&](int64_t r) {
    const float* xr = x + r * cols;
    const float m =
        rows::replay_reduce<MaxOp, float>(l, [&](int lane) { return smx::lane_max(xr, cols, lane, l.tpr); });
    const double s =
        rows::replay_reduce<SumOp, double>(l, [&](int lane) { return smx::lane_exp_sum(xr, m, cols, lane, l.tpr); });
    const rows::CountingStore yr{y + r * cols, writes + r * cols};
    for (int lane = 0; lane < l.tpr; ++lane) {
      if (log_softmax) smx::log_softmax_write(yr, xr, m, static_cast<float>(std::log(s)), cols, lane, l.tpr);
      else smx::softmax_write(yr, xr, m, static_cast<float>(1.0 / s), cols, lane, l.tpr);
    }
  });
}

void softmax_backward_emulate(bool log_softmax, float* dx, const float* y, const float* dy, int64_t nrows,
                              int64_t cols, int32_t* writes) {
  if (nrows <= 0 || cols <= 0) return;
  const RowLaunch l = rows::row_launch(nrows, cols);
  rows::replay_rows(l, nrows, [&](int64_t r) {
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    const float s = static_cast<float>(rows::replay_reduce<SumOp, double>(l, [&](int lane) {
      return log_softmax ? smx::lane_sum(dyr, cols, lane, l.tpr) : smx::lane_dot(dyr, yr, cols, lane, l.tpr);
    }));
    const rows::CountingStore dxr{dx + r * cols, writes + r * cols};
    for (int lane = 0; lane < l.tpr; ++lane) {
      if (log_softmax) smx::log_softmax_bwd_write(dxr, yr, dyr, s, cols, lane, l.tpr);
      else smx::softmax_bwd_write(dxr, yr, dyr, s, cols, lane, l.tpr);
    }
  });
}

template <class I>
int64_t cross_entropy_forward_emulate(float* loss, float* row_max, float* log_sum, const float* logits,
                                      const I* targets, int64_t n, int64_t v, int64_t ignore_index, int32_t* writes) {
  if (n <= 0 || v <= 0) return 0;
  const RowLaunch l = rows::row_launch(n, v);
  // writes: [loss | rowMax | logSum], n counters each
  const rows::CountingStore sl{loss, writes}, sm{row_max, writes + n}, ss{log_sum, writes + 2 * n};
  int64_t count = 0;
  rows::replay_rows(l, n, [&](int64_t r) {
    const int64_t tg = static_cast<int64_t>(targets[r]);
    if (tg == ignore_index) {
      sl.put(r, 0.f);
      sm.put(r, 0.f);
      ss.put(r, 0.f);
      return;
    }
    const float* xr = logits + r * v;
    const float m = rows::replay_reduce<MaxOp, float>(l, [&](int lane) { return smx::lane_max(xr, v, lane, l.tpr); });
    const double s =
        rows::replay_reduce<SumOp, double>(l, [&](int lane) { return smx::lane_exp_sum(xr, m, v, lane, l.tpr); });
    const float ls = static_cast<float>(std::log(s));
    sm.put(r, m);
    ss.put(r, ls);
    sl.put(r, smx::ce_loss(m, xr[tg], ls));
    ++count;
  });
  return count;
}

template <class I>
void cross_entropy_backward_emulate(float* dlogits, const float* logits, const float* row_max, const float* log_sum,
                                    const I* targets, const float* g, int64_t n, int64_t v, int64_t ignore_index,
                                    int32_t* writes) {
  if (n <= 0 || v <= 0) return;
  const RowLaunch l = rows::row_launch(n, v);
  rows::replay_rows(l, n, [&](int64_t r) {
    const int64_t tg = static_cast<int64_t>(targets[r]);
    const bool ignored = tg == ignore_index;
    const rows::CountingStore dxr{dlogits + r * v, writes + r * v};
    for (int lane = 0; lane < l.tpr; ++lane)
      smx::ce_grad_write(dxr, logits + r * v, ignored ? 0.f : row_max[r], ignored ? 0.f : log_sum[r],
                         ignored ? 0.f : g[r], ignored ? -1 : tg, v, lane, l.tpr);
  });
}

#define XLSTM_CE_INSTANTIATE(I)                                                                                     \
  template void cross_entropy_forward<I>(float*, float*, float*, const float*, const I*, int64_t, int64_t, int64_t, \
                                         int64_t*, void*);                                                          \
  template void cross_entropy_backward<I>(float*, const float*, const float*, const float*, const I*, const float*, \
                                          int64_t, int64_t, int64_t, void*);                                        \
  template int64_t cross_entropy_forward_host<I>(float*, float*, float*, const float*, const I*, int64_t, int64_t,  \
                                                 int64_t);                                                          \
  template void cross_entropy_backward_host<I>(float*, const float*, const float*, const float*, const I*,          \
                                               const float*, int64_t, int64_t, int64_t);                            \
  template int64_t cross_entropy_forward_emulate<I>(float*, float*, float*, const float*, const I*, int64_t,        \
                                                    int64_t, int64_t, int32_t*);                                    \
  template void cross_entropy_backward_emulate<I>(float*, const float*, const float*, const float*, const I*,       \
                                                  const float*, int64_t, int64_t, int64_t, int32_t*);
XLSTM_CE_INSTANTIATE(int32_t)
XLSTM_CE_INSTANTIATE(int64_t)
#undef XLSTM_CE_INSTANTIATE

}  // namespace cuda
}  // namespace xlstm
