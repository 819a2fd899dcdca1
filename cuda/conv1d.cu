// CUDA twin of csrc/kernels/conv1d.cc: depthwise causal conv1d forward and backward on device memory, same layouts
// and contract as conv1d.h (x, y, dx, dy [B, S, F]; weight [F, K]; bias [F] or null; gradients written with "=",
// dx / dweight / dbias each optional).
//
// forward, dx: one thread per element (r, c) of y / dx (grid-stride), the taps added in the CPU's order as fused
//   multiply-adds from bias (or 0): the CPU's fma_row contracts to the same FMAs at the AVX2 / AVX-512 levels.
// dweight, dbias: deterministic, no atomics. Pass 1: one thread per (row block, tap j or bias, channel c) sums its
//   block's rows in order into a float partial (the CPU's per-block partials, same row partition:
//   conv1d_math::wgrad_blocks); pass 2: one thread per (c, j) / c adds the block partials in block order in double
//   and rounds once, as the CPU does.
// Tap ranges and the row partition are csrc/kernels/conv1d_math.h (shared with the CPU); the thread -> element maps
// are the __host__ __device__ helpers below, which causal_conv1d_coverage() runs on the host; the kernel bodies are
// __host__ __device__ too (forward_elem, dx_elem, wgrad_partial_item, wgrad_final_elem), and the *_emulate entries
// replay every launch with them on the host, counting the writes of every output element.
// Device entries enqueue on `stream` (null = default); scratch is stream-ordered (cudaMallocAsync). *_host entries
// copy in, run, copy out, synchronise. Errors: std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
#include <cuda_runtime.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "kernels/conv1d_math.h"
#include "kernels/row_launch.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;
namespace cm = conv1d_math;

constexpr int kThreads = 256;

// Element i of y / dx -> row r = (b, t) and channel c.
__host__ __device__ inline void element_of(int64_t i, int64_t s, int64_t f, int64_t* r, int64_t* t, int64_t* c) {
  *r = i / f;
  *c = i - *r * f;
  *t = *r % s;
}
// Pass-1 work item w of the weight gradient -> (row block, tap j in [0, K]: K = bias, channel c); the partial it
// writes is part[blk * (K + 1) * F + j * F + c].
__host__ __device__ inline void wgrad_item(int64_t w, int64_t f, int64_t k, int64_t* blk, int64_t* j, int64_t* c) {
  *c = w % f;
  const int64_t rest = w / f;
  *j = rest % (k + 1);
  *blk = rest / (k + 1);
}

// ---- kernel bodies, shared by the kernels and the host replay (Store: rows::PlainStore on the device, the replay's
// rows::CountingStore counting writes; a store with a null p is an absent output) -------------------------------

template <class Store>
__host__ __device__ __forceinline__ void forward_elem(const Store& y, const float* __restrict__ x,
                                                      const float* __restrict__ w, const float* __restrict__ bias,
                                                      int64_t i, int64_t s, int64_t f, int64_t k) {
  int64_t r, t, c;
  element_of(i, s, f, &r, &t, &c);
  float acc = bias ? bias[c] : 0.0f;
  for (int64_t j = cm::first_tap(t, k); j < k; ++j) acc = fmaf(w[c * k + j], x[(r - (k - 1) + j) * f + c], acc);
  y.put(i, acc);
}

template <class Store>
__host__ __device__ __forceinline__ void dx_elem(const Store& dx, const float* __restrict__ dy,
                                                 const float* __restrict__ w, int64_t i, int64_t s, int64_t f,
                                                 int64_t k) {
  int64_t r, t, c;
  element_of(i, s, f, &r, &t, &c);
  float acc = 0.0f;
  for (int64_t j = cm::first_tap_dx(t, s, k); j < k; ++j) acc = fmaf(w[c * k + j], dy[(r + (k - 1) - j) * f + c], acc);
  dx.put(i, acc);
}

// Pass 1 item `it`: part[blk, j, c] = sum over the block's rows (in order) of dy * x (j < K) or dy (j == K, bias).
__host__ __device__ __forceinline__ void wgrad_partial_item(float* __restrict__ part, const float* __restrict__ dy,
                                                            const float* __restrict__ x, int64_t it, int64_t rows,
                                                            int64_t per, int64_t s, int64_t f, int64_t k, bool want_w,
                                                            bool want_b) {
  int64_t blk, j, c;
  wgrad_item(it, f, k, &blk, &j, &c);
  if (j == k ? !want_b : !want_w) return;
  const int64_t r1 = rows < (blk + 1) * per ? rows : (blk + 1) * per;
  float acc = 0.0f;
  if (j == k) {
    for (int64_t r = blk * per; r < r1; ++r) acc += dy[r * f + c];
  } else {
    for (int64_t r = blk * per; r < r1; ++r)
      if (j >= cm::first_tap(r % s, k)) acc = fmaf(dy[r * f + c], x[(r - (k - 1) + j) * f + c], acc);
  }
  part[it] = acc;
}

// Pass 2 element e = (j, c): dweight[c, j] / dbias[c] = sum over blocks (in order, double) of the partials.
template <class Store>
__host__ __device__ __forceinline__ void wgrad_final_elem(const Store& dweight, const Store& dbias,
                                                          const float* __restrict__ part, int64_t e, int64_t nblk,
                                                          int64_t f, int64_t k) {
  const int64_t outs = (k + 1) * f;
  const int64_t j = e / f, c = e - j * f;
  if (j == k ? !dbias.p : !dweight.p) return;
  double acc = 0.0;
  for (int64_t blk = 0; blk < nblk; ++blk) acc += part[blk * outs + e];
  if (j == k) dbias.put(c, static_cast<float>(acc));
  else dweight.put(c * k + j, static_cast<float>(acc));
}

// ---- kernels (grid-stride loops over the bodies above) -----------------------------------------------------------

__global__ void conv_forward_kernel(float* __restrict__ y, const float* __restrict__ x, const float* __restrict__ w,
                                    const float* __restrict__ bias, int64_t n, int64_t s, int64_t f, int64_t k) {
  const rows::PlainStore dst{y};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    forward_elem(dst, x, w, bias, i, s, f, k);
}

__global__ void conv_dx_kernel(float* __restrict__ dx, const float* __restrict__ dy, const float* __restrict__ w,
                               int64_t n, int64_t s, int64_t f, int64_t k) {
  const rows::PlainStore dst{dx};
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x)
    dx_elem(dst, dy, w, i, s, f, k);
}

__global__ void conv_wgrad_partial_kernel(float* __restrict__ part, const float* __restrict__ dy,
                                          const float* __restrict__ x, int64_t items, int64_t rows, int64_t per,
                                          int64_t s, int64_t f, int64_t k, bool want_w, bool want_b) {
  for (int64_t it = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; it < items;
       it += static_cast<int64_t>(blockDim.x) * gridDim.x)
    wgrad_partial_item(part, dy, x, it, rows, per, s, f, k, want_w, want_b);
}

__global__ void conv_wgrad_final_kernel(float* __restrict__ dweight, float* __restrict__ dbias,
                                        const float* __restrict__ part, int64_t nblk, int64_t f, int64_t k) {
  const int64_t outs = (k + 1) * f;
  const rows::PlainStore dw{dweight}, db{dbias};
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < outs;
       e += static_cast<int64_t>(blockDim.x) * gridDim.x)
    wgrad_final_elem(dw, db, part, e, nblk, f, k);
}

// Every (block, thread) of a 1-d grid-stride launch of grid_for(n, kThreads) blocks, in block and thread order.
template <class F>
void replay_grid_stride(int64_t n, F&& f) {
  const int64_t total = static_cast<int64_t>(grid_for(n, kThreads)) * kThreads;
  for (int64_t t = 0; t < total; ++t)
    for (int64_t i = t; i < n; i += total) f(i);
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

void causal_conv1d_forward(float* y, const float* x, const float* weight, const float* bias, int64_t b, int64_t s,
                           int64_t f, int64_t k, void* stream) {
  const int64_t n = b * s * f;
  if (n <= 0) return;
  conv_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, as_stream(stream)>>>(y, x, weight, bias, n, s, f, k);
  launched("causal_conv1d_forward");
}

void causal_conv1d_backward(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                            const float* weight, int64_t b, int64_t s, int64_t f, int64_t k, void* stream) {
  const char* entry = "causal_conv1d_backward";
  const cudaStream_t st = as_stream(stream);
  const int64_t rows = b * s, n = rows * f;
  if (dx && n > 0) {
    conv_dx_kernel<<<grid_for(n, kThreads), kThreads, 0, st>>>(dx, dy, weight, n, s, f, k);
    check(cudaGetLastError(), entry, "dx kernel launch");
  }
  if (!dweight && !dbias) return;
  const int64_t nblk = cm::wgrad_blocks(rows), per = cm::wgrad_rows_per_block(rows, nblk);
  const int64_t items = nblk * (k + 1) * f;
  StreamScratch<float> part(items, st, entry);
  conv_wgrad_partial_kernel<<<grid_for(items, kThreads), kThreads, 0, st>>>(part.p, dy, x, items, rows, per, s, f, k,
                                                                            dweight != nullptr, dbias != nullptr);
  check(cudaGetLastError(), entry, "weight-gradient kernel launch");
  conv_wgrad_final_kernel<<<grid_for((k + 1) * f, kThreads), kThreads, 0, st>>>(dweight, dbias, part.p, nblk, f, k);
  check(cudaGetLastError(), entry, "weight-gradient sum kernel launch");
}

// ---- host entries ----------------------------------------------------------------------------------------------

void causal_conv1d_forward_host(float* y, const float* x, const float* weight, const float* bias, int64_t b,
                                int64_t s, int64_t f, int64_t k) {
  const char* entry = "causal_conv1d_forward";
  const int64_t n = b * s * f;
  if (n <= 0) return;
  DeviceBuffer<float> d_y(n, entry), d_x(x, n, entry), d_w(weight, f * k, entry), d_b(bias, f, entry);
  causal_conv1d_forward(d_y.p, d_x.p, d_w.p, d_b.p, b, s, f, k, nullptr);
  device_sync(entry);
  d_y.download(y, entry);
}

void causal_conv1d_backward_host(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                 const float* weight, int64_t b, int64_t s, int64_t f, int64_t k) {
  const char* entry = "causal_conv1d_backward";
  const int64_t n = b * s * f;
  if (!dx && !dweight && !dbias) return;
  DeviceBuffer<float> d_dx(dx ? n : 0, entry), d_dw(dweight ? f * k : 0, entry), d_db(dbias ? f : 0, entry);
  DeviceBuffer<float> d_dy(dy, n, entry), d_x(dweight ? x : nullptr, n, entry);
  DeviceBuffer<float> d_w(dx ? weight : nullptr, f * k, entry);
  causal_conv1d_backward(d_dx.get_if(dx), d_dw.get_if(dweight), d_db.get_if(dbias), d_dy.p, d_x.p, d_w.p, b, s, f, k,
                         nullptr);
  device_sync(entry);
  d_dx.download(dx, entry);
  d_dw.download(dweight, entry);
  d_db.download(dbias, entry);
}

// ---- host replay entries ---------------------------------------------------------------------------------------
// The launches replayed on the host with the kernels' bodies (every block and thread of each grid-stride launch, in
// launch order; pass 1's partials a host scratch array filled with NaN, so a partial pass 2 reads unwritten shows);
// writes counts the writes of every element of y / dx, dweight, dbias (given ones, concatenated in that order).

void causal_conv1d_forward_emulate(float* y, const float* x, const float* weight, const float* bias, int64_t b,
                                   int64_t s, int64_t f, int64_t k, int32_t* writes) {
  const int64_t n = b * s * f;
  if (n <= 0) return;
  const rows::CountingStore dst{y, writes};
  replay_grid_stride(n, [&](int64_t i) { forward_elem(dst, x, weight, bias, i, s, f, k); });
}

void causal_conv1d_backward_emulate(float* dx, float* dweight, float* dbias, const float* dy, const float* x,
                                    const float* weight, int64_t b, int64_t s, int64_t f, int64_t k,
                                    int32_t* writes) {
  const int64_t rows = b * s, n = rows * f;
  int32_t* w_dx = writes;
  int32_t* w_dw = w_dx + (dx ? n : 0);
  int32_t* w_db = w_dw + (dweight ? f * k : 0);
  if (dx && n > 0) {
    const rows::CountingStore dst{dx, w_dx};
    replay_grid_stride(n, [&](int64_t i) { dx_elem(dst, dy, weight, i, s, f, k); });
  }
  if (!dweight && !dbias) return;
  const int64_t nblk = cm::wgrad_blocks(rows), per = cm::wgrad_rows_per_block(rows, nblk);
  const int64_t items = nblk * (k + 1) * f;
  std::vector<float> part(static_cast<size_t>(items), std::numeric_limits<float>::quiet_NaN());
  replay_grid_stride(items, [&](int64_t it) {
    wgrad_partial_item(part.data(), dy, x, it, rows, per, s, f, k, dweight != nullptr, dbias != nullptr);
  });
  const rows::CountingStore dw{dweight, w_dw}, db{dbias, w_db};
  replay_grid_stride((k + 1) * f, [&](int64_t e) { wgrad_final_elem(dw, db, part.data(), e, nblk, f, k); });
}

// ---- host coverage of the thread -> element maps -----------------------------------------------------------------

int64_t causal_conv1d_coverage(int64_t b, int64_t s, int64_t f, int64_t k, int32_t* y_writes, int32_t* dweight_terms,
                               int32_t* dbias_terms) {
  const int64_t rows = b * s, n = rows * f;
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) y_writes[i] = 0;
  for (int64_t i = 0; i < f * k; ++i) dweight_terms[i] = 0;
  for (int64_t i = 0; i < f; ++i) dbias_terms[i] = 0;
  // forward / dx: the grid-stride loop over elements (one write each)
  const int64_t threads = static_cast<int64_t>(grid_for(n, kThreads)) * kThreads;
  for (int64_t tid = 0; tid < threads; ++tid)
    for (int64_t i = tid; i < n; i += threads) {
      int64_t r, t, c;
      element_of(i, s, f, &r, &t, &c);
      if (r * f + c != i || t < 0 || t >= s || c < 0 || c >= f) ++bad;
      else ++y_writes[i];
    }
  // weight / bias gradients: every pass-1 item once, and each term (row r, tap j, channel c) in exactly the item of
  // r's block; pass 2 reads each block's partial once.
  const int64_t nblk = cm::wgrad_blocks(rows), per = cm::wgrad_rows_per_block(rows, nblk);
  const int64_t items = nblk * (k + 1) * f;
  std::vector<int32_t> item_seen(static_cast<size_t>(items), 0);
  for (int64_t it = 0; it < items; ++it) {
    int64_t blk, j, c;
    wgrad_item(it, f, k, &blk, &j, &c);
    if (blk < 0 || blk >= nblk || j < 0 || j > k || c < 0 || c >= f || (blk * (k + 1) + j) * f + c != it) {
      ++bad;
      continue;
    }
    ++item_seen[static_cast<size_t>(it)];
    for (int64_t r = blk * per; r < std::min(rows, (blk + 1) * per); ++r) {
      if (j == k) ++dbias_terms[c];
      else if (j >= cm::first_tap(r % s, k)) ++dweight_terms[c * k + j];
    }
  }
  for (int32_t v : item_seen) bad += v != 1;
  if (nblk * per < rows) ++bad;  // rows past the last block would be dropped
  return bad;
}

}  // namespace cuda
}  // namespace xlstm
