// CUDA twin of csrc/kernels/norm.cc: layer norm / per-head (grouped) layer norm forward and backward on device
// memory, same names, argument order and semantics as norm.h plus a trailing stream (cudaStream_t; null =
// default stream). x, y, dx, dy [rows, groups, dim]; weight, bias, dweight, dbias [groups * dim] or null;
// mean, rstd [rows, groups]. Every gradient is written with `=`.
//
// Forward and dx: one (row, group) vector per warp (dim <= 1024) or per 256-thread block (csrc/kernels/
// row_launch.h), math in csrc/kernels/norm_math.h. dweight/dbias are deterministic without atomics: a fixed
// partition of the rows into chunks (from `rows` alone), one thread per (chunk, column) summing its rows in order
// in double into a workspace (cudaMallocAsync on the stream), then one thread per column adding the chunk
// partials in chunk order. The *_emulate entries replay every launch on the host with the same functions and
// count the writes of every output element (test/21). Errors throw std::runtime_error("<entry>: <what>: ...").
#include <cuda_runtime.h>

#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/norm_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
using rows::kThreads;
using rows::RowLaunch;
using rows::SumOp;

constexpr int64_t kMaxColBlocks = 65535;

// Column handled by thread t of block b on pass k of the dw/db kernels (>= gd: idle).
__host__ __device__ inline int64_t param_col(int64_t grid, int64_t b, int t, int64_t pass) {
  return (pass * grid + b) * kThreads + t;
}
int64_t param_grid(int64_t gd) {
  const int64_t g = (gd + kThreads - 1) / kThreads;
  return g < 1 ? 1 : (g > kMaxColBlocks ? kMaxColBlocks : g);
}
int64_t param_passes(int64_t gd, int64_t grid) { return (gd + grid * kThreads - 1) / (grid * kThreads); }

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    norm_forward_kernel(float* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd,
                        const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                        int64_t nvec, int64_t groups, int64_t dim, float eps, bool residual, RowLaunch l) {
  __shared__ double dsm[rows::kWarps];
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t i = rows::row_of(l, blockIdx.x, t, pass);
    if (i >= nvec) continue;  // warp- or block-uniform
    const int64_t g = i % groups;
    const float* xr = x + i * dim;
    const float m = nrm::mean_of(rows::row_reduce<TPR, SumOp>(nrm::lane_sum(xr, dim, lane, TPR), dsm), dim);
    const float rs = nrm::rstd_of(rows::row_reduce<TPR, SumOp>(nrm::lane_sq_dev(xr, m, dim, lane, TPR), dsm), dim, eps);
    if (lane == 0) {
      mean[i] = m;
      rstd[i] = rs;
    }
    nrm::fwd_write(rows::PlainStore{y + i * dim}, xr, w ? w + g * dim : nullptr, b ? b + g * dim : nullptr, m, rs, dim,
                   residual, lane, TPR);
  }
}

template <int TPR>
__global__ void __launch_bounds__(kThreads)
    norm_backward_dx_kernel(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ x,
                            const float* __restrict__ mean, const float* __restrict__ rstd, const float* __restrict__ w,
                            int64_t nvec, int64_t groups, int64_t dim, bool residual, RowLaunch l) {
  __shared__ double dsm[rows::kWarps];
  const int t = threadIdx.x, lane = rows::lane_of(l, t);
  for (int64_t pass = 0; pass < l.passes; ++pass) {
    const int64_t i = rows::row_of(l, blockIdx.x, t, pass);
    if (i >= nvec) continue;
    const float* wg = w ? w + (i % groups) * dim : nullptr;
    const float *xr = x + i * dim, *dyr = dy + i * dim;
    const float m = mean[i], rs = rstd[i];
    double sg, sgx;
    nrm::lane_bwd_sums(&sg, &sgx, dyr, xr, wg, m, rs, dim, residual, lane, TPR);
    const float mg = static_cast<float>(rows::row_reduce<TPR, SumOp>(sg, dsm) / static_cast<double>(dim));
    const float mgx = static_cast<float>(rows::row_reduce<TPR, SumOp>(sgx, dsm) / static_cast<double>(dim));
    nrm::bwd_write(rows::PlainStore{dx + i * dim}, dyr, xr, wg, m, rs, mg, mgx, dim, residual, lane, TPR);
  }
}

// Partials pw/pb [chunks, gd] (either may be null).
__global__ void __launch_bounds__(kThreads)
    norm_param_partial_kernel(double* __restrict__ pw, double* __restrict__ pb, const float* __restrict__ dy,
                              const float* __restrict__ x, const float* __restrict__ mean,
                              const float* __restrict__ rstd, int64_t nrows, int64_t groups, int64_t dim, int64_t per,
                              int64_t passes) {
  const int64_t gd = groups * dim, k = blockIdx.y;
  for (int64_t pass = 0; pass < passes; ++pass) {
    const int64_t c = param_col(gridDim.x, blockIdx.x, threadIdx.x, pass);
    if (c >= gd) continue;
    double a, b;
    nrm::param_partial(&a, &b, dy, x, mean, rstd, nrows, groups, dim, k, per, c);
    if (pw) pw[k * gd + c] = a;
    if (pb) pb[k * gd + c] = b;
  }
}

__global__ void __launch_bounds__(kThreads)
    norm_param_final_kernel(float* __restrict__ dw, float* __restrict__ db, const double* __restrict__ pw,
                            const double* __restrict__ pb, int64_t gd, int64_t chunks, int64_t passes) {
  for (int64_t pass = 0; pass < passes; ++pass) {
    const int64_t c = param_col(gridDim.x, blockIdx.x, threadIdx.x, pass);
    if (c >= gd) continue;
    double a = 0, b = 0;
    for (int64_t k = 0; k < chunks; ++k) {
      if (pw) a += pw[k * gd + c];
      if (pb) b += pb[k * gd + c];
    }
    if (dw) dw[c] = static_cast<float>(a);
    if (db) db[c] = static_cast<float>(b);
  }
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                        int64_t rows, int64_t groups, int64_t dim, float eps, bool residual, void* stream) {
  const int64_t nvec = rows * groups;
  if (nvec <= 0 || dim <= 0) return;
  const RowLaunch l = rows::row_launch(nvec, dim);
  rows::with_tpr(l, [&](auto k) {
    norm_forward_kernel<decltype(k)::value><<<static_cast<unsigned>(l.grid), kThreads, 0, as_stream(stream)>>>(
        y, mean, rstd, x, w, b, nvec, groups, dim, eps, residual, l);
  });
  launched("layer_norm_forward");
}

void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim, bool residual,
                         void* stream) {
  const char* entry = "layer_norm_backward";
  const int64_t nvec = rows * groups, gd = groups * dim;
  if (gd <= 0) return;
  const cudaStream_t s = as_stream(stream);
  if (nvec > 0) {
    const RowLaunch l = rows::row_launch(nvec, dim);
    rows::with_tpr(l, [&](auto k) {
      norm_backward_dx_kernel<decltype(k)::value><<<static_cast<unsigned>(l.grid), kThreads, 0, s>>>(
          dx, dy, x, mean, rstd, w, nvec, groups, dim, residual, l);
    });
    check(cudaGetLastError(), entry, "kernel launch (dx)");
  }
  if (!dw && !db) return;
  const nrm::ParamPartition part = nrm::param_partition(rows);
  const int64_t grid = param_grid(gd), passes = param_passes(gd, grid);
  StreamScratch<double> pw(dw ? part.blocks * gd : 0, s, entry), pb(db ? part.blocks * gd : 0, s, entry);
  norm_param_partial_kernel<<<dim3(static_cast<unsigned>(grid), static_cast<unsigned>(part.blocks)), kThreads, 0, s>>>(
      pw.p, pb.p, dy, x, mean, rstd, rows, groups, dim, part.per, passes);
  check(cudaGetLastError(), entry, "kernel launch (dweight/dbias partials)");
  norm_param_final_kernel<<<static_cast<unsigned>(grid), kThreads, 0, s>>>(dw, db, pw.p, pb.p, gd, part.blocks, passes);
  check(cudaGetLastError(), entry, "kernel launch (dweight/dbias)");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void layer_norm_forward_host(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                             int64_t rows, int64_t groups, int64_t dim, float eps, bool residual) {
  const char* entry = "layer_norm_forward";
  const int64_t n = rows * groups * dim, rg = rows * groups, gd = groups * dim;
  if (n <= 0) return;
  DeviceBuffer<float> d_x(x, n, entry), d_w(w, gd, entry), d_b(b, gd, entry);
  DeviceBuffer<float> d_y(n, entry), d_mean(rg, entry), d_rstd(rg, entry);
  layer_norm_forward(d_y.p, d_mean.p, d_rstd.p, d_x.p, d_w.p, d_b.p, rows, groups, dim, eps, residual, nullptr);
  device_sync(entry);
  d_y.download(y, entry);
  d_mean.download(mean, entry);
  d_rstd.download(rstd, entry);
}

void layer_norm_backward_host(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                              const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim,
                              bool residual) {
  const char* entry = "layer_norm_backward";
  const int64_t n = rows * groups * dim, rg = rows * groups, gd = groups * dim;
  if (gd <= 0) return;
  DeviceBuffer<float> d_dy(dy, n, entry), d_x(x, n, entry), d_mean(mean, rg, entry), d_rstd(rstd, rg, entry);
  DeviceBuffer<float> d_w(w, gd, entry), d_dx(n, entry), d_dw(dw ? gd : 0, entry), d_db(db ? gd : 0, entry);
  layer_norm_backward(d_dx.p, d_dw.p, d_db.p, d_dy.p, d_x.p, d_mean.p, d_rstd.p, d_w.p, rows, groups, dim, residual,
                      nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
  d_dw.download(dw, entry);
  d_db.download(db, entry);
}

// ---- host replay entries ---------------------------------------------------------------------------------------

void layer_norm_forward_emulate(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                                int64_t rows, int64_t groups, int64_t dim, float eps, bool residual, int32_t* writes) {
  const int64_t nvec = rows * groups, n = nvec * dim;
  if (nvec <= 0 || dim <= 0) return;
  const RowLaunch l = rows::row_launch(nvec, dim);
  // writes: [y | mean | rstd]
  const rows::CountingStore sm{mean, writes + n}, sr{rstd, writes + n + nvec};
  rows::replay_rows(l, nvec, [&](int64_t i) {
    const int64_t g = i % groups;
    const float* xr = x + i * dim;
    const float m = nrm::mean_of(
        rows::replay_reduce<SumOp, double>(l, [&](int lane) { return nrm::lane_sum(xr, dim, lane, l.tpr); }), dim);
    const float rs = nrm::rstd_of(
        rows::replay_reduce<SumOp, double>(l, [&](int lane) { return nrm::lane_sq_dev(xr, m, dim, lane, l.tpr); }),
        dim, eps);
    sm.put(i, m);
    sr.put(i, rs);
    for (int lane = 0; lane < l.tpr; ++lane)
      nrm::fwd_write(rows::CountingStore{y + i * dim, writes + i * dim}, xr, w ? w + g * dim : nullptr,
                     b ? b + g * dim : nullptr, m, rs, dim, residual, lane, l.tpr);
  });
}

void layer_norm_backward_emulate(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                                 const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim,
                                 bool residual, int32_t* writes) {
  const int64_t nvec = rows * groups, n = nvec * dim, gd = groups * dim;
  if (gd <= 0) return;
  // writes: [dx | dweight (when given) | dbias (when given)]
  int32_t* wdw = writes + n;
  int32_t* wdb = writes + n + (dw ? gd : 0);
  if (nvec > 0) {
    const RowLaunch l = rows::row_launch(nvec, dim);
    rows::replay_rows(l, nvec, [&](int64_t i) {
      const float* wg = w ? w + (i % groups) * dim : nullptr;
      const float *xr = x + i * dim, *dyr = dy + i * dim;
      const float m = mean[i], rs = rstd[i];
      std::vector<double> sg(l.tpr), sgx(l.tpr);
      for (int lane = 0; lane < l.tpr; ++lane)
        nrm::lane_bwd_sums(&sg[lane], &sgx[lane], dyr, xr, wg, m, rs, dim, residual, lane, l.tpr);
      const float mg = static_cast<float>(rows::host_row_reduce<SumOp>(sg.data(), l.tpr) / static_cast<double>(dim));
      const float mgx = static_cast<float>(rows::host_row_reduce<SumOp>(sgx.data(), l.tpr) / static_cast<double>(dim));
      for (int lane = 0; lane < l.tpr; ++lane)
        nrm::bwd_write(rows::CountingStore{dx + i * dim, writes + i * dim}, dyr, xr, wg, m, rs, mg, mgx, dim, residual,
                       lane, l.tpr);
    });
  }
  if (!dw && !db) return;
  const nrm::ParamPartition part = nrm::param_partition(rows);
  const int64_t grid = param_grid(gd), passes = param_passes(gd, grid);
  std::vector<double> pw(static_cast<size_t>(part.blocks * gd)), pb(static_cast<size_t>(part.blocks * gd));
  std::vector<int32_t> pwrites(static_cast<size_t>(part.blocks * gd), 0);
  for (int64_t k = 0; k < part.blocks; ++k)
    for (int64_t bx = 0; bx < grid; ++bx)
      for (int t = 0; t < kThreads; ++t)
        for (int64_t pass = 0; pass < passes; ++pass) {
          const int64_t c = param_col(grid, bx, t, pass);
          if (c >= gd) continue;
          nrm::param_partial(&pw[k * gd + c], &pb[k * gd + c], dy, x, mean, rstd, rows, groups, dim, k, part.per, c);
          ++pwrites[k * gd + c];
        }
  for (int32_t v : pwrites)
    if (v != 1) return;  // a partial not written exactly once: leave dw/db unwritten, the write counts show it
  for (int64_t bx = 0; bx < grid; ++bx)
    for (int t = 0; t < kThreads; ++t)
      for (int64_t pass = 0; pass < passes; ++pass) {
        const int64_t c = param_col(grid, bx, t, pass);
        if (c >= gd) continue;
        double a = 0, bsum = 0;
        for (int64_t k = 0; k < part.blocks; ++k) {
          a += pw[k * gd + c];
          bsum += pb[k * gd + c];
        }
        if (dw) rows::CountingStore{dw, wdw}.put(c, static_cast<float>(a));
        if (db) rows::CountingStore{db, wdb}.put(c, static_cast<float>(bsum));
      }
}

}  // namespace cuda
}  // namespace xlstm
