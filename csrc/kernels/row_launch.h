// Launch geometry and cross-thread reductions of the row kernels of the CUDA twins of norm.cc and softmax.cc
// (cuda/norm.cu, cuda/softmax.cu), written once as __host__ __device__ code so the host can replay a whole launch
// (the *_emulate entries: every block, every thread, the very same reduction order) on machines without a GPU.
//
// Geometry: blocks of 256 threads; every row (a softmax row, a cross-entropy row, a layer-norm (row, group)
// vector) is owned by `tpr` consecutive threads of one block: tpr = 32 (one warp, 8 rows per block) when the row
// has <= 1024 elements, else tpr = 256 (the whole block). The grid is capped; pass k of block b handles rows
// (k * grid + b) * rows_per_block + t / tpr. Lane l of a row reads/writes its elements l, l + tpr, l + 2 tpr, ...
// Reductions: a butterfly (xor 16, 8, 4, 2, 1) inside each warp, so every lane ends with the bitwise same value
// (a + b == b + a in IEEE arithmetic); with tpr = 256 lane 0 of each warp stores its warp's value to shared
// memory and every thread folds the 8 warp values in warp order. host_row_reduce() replays exactly this order.
#pragma once
#include <math.h>
#include <stdint.h>

#include <type_traits>

#if defined(__CUDACC__)
#define XLSTM_ROW_HD __host__ __device__ __forceinline__
#else
#define XLSTM_ROW_HD inline
#endif
#define XLSTM_ROW_FN static XLSTM_ROW_HD

namespace xlstm {
namespace rows {

constexpr int kThreads = 256;  // threads per block of every row kernel
constexpr int kWarp = 32;
constexpr int kWarps = kThreads / kWarp;
constexpr int64_t kMaxGrid = 65535;  // blocks; more rows take more passes

struct RowLaunch {
  int tpr;             // threads per row: 32 or 256
  int rows_per_block;  // 256 / tpr
  int64_t grid;        // blocks
  int64_t passes;      // rows handled by a block's row slot
};

XLSTM_ROW_FN RowLaunch row_launch(int64_t rows, int64_t cols) {
  RowLaunch l;
  l.tpr = cols <= 1024 ? kWarp : kThreads;
  l.rows_per_block = kThreads / l.tpr;
  const int64_t need = (rows + l.rows_per_block - 1) / l.rows_per_block;
  l.grid = need < 1 ? 1 : (need > kMaxGrid ? kMaxGrid : need);
  const int64_t per_pass = l.grid * l.rows_per_block;
  l.passes = (rows + per_pass - 1) / per_pass;
  return l;
}

// The row of thread t of block b on pass k (>= rows: the slot idles on this pass).
XLSTM_ROW_FN int64_t row_of(const RowLaunch& l, int64_t block, int t, int64_t pass) {
  return (pass * l.grid + block) * l.rows_per_block + t / l.tpr;
}
XLSTM_ROW_FN int lane_of(const RowLaunch& l, int t) { return t % l.tpr; }

struct SumOp {
  template <class T>
  XLSTM_ROW_FN T apply(T a, T b) { return a + b; }
};
struct MaxOp {
  XLSTM_ROW_FN float apply(float a, float b) { return fmaxf(a, b); }
};

// Host replay of the device reduction over the tpr values v[0..tpr) of one row (see the header comment).
template <class Op, class T>
T host_row_reduce(const T* v, int tpr) {
  T warp_val[kWarps];
  for (int w = 0; w < tpr / kWarp; ++w) {
    T lane[kWarp];
    for (int i = 0; i < kWarp; ++i) lane[i] = v[w * kWarp + i];
    for (int o = kWarp / 2; o > 0; o >>= 1) {
      T next[kWarp];
      for (int i = 0; i < kWarp; ++i) next[i] = Op::apply(lane[i], lane[i ^ o]);
      for (int i = 0; i < kWarp; ++i) lane[i] = next[i];
    }
    warp_val[w] = lane[0];
  }
  if (tpr == kWarp) return warp_val[0];
  T s = warp_val[0];
  for (int w = 1; w < kWarps; ++w) s = Op::apply(s, warp_val[w]);
  return s;
}

#if defined(__CUDACC__)
// Device reduction over the tpr threads of a row; every thread of the row gets the result. `smem` holds kWarps
// values; with TPR = 256 the call contains __syncthreads(), so the whole block must make it (block-uniform rows).
template <int TPR, class Op, class T>
__device__ __forceinline__ T row_reduce(T v, T* smem) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (TPR == kWarp) return v;
  __syncthreads();  // earlier readers of smem are done
  if ((threadIdx.x & (kWarp - 1)) == 0) smem[threadIdx.x / kWarp] = v;
  __syncthreads();
  T s = smem[0];
#pragma unroll
  for (int w = 1; w < kWarps; ++w) s = Op::apply(s, smem[w]);
  return s;
}
#endif

// Stores used by the shared row bodies: the device store, and the host replay's store that also counts writes.
struct PlainStore {
  float* p;
  XLSTM_ROW_HD PlainStore at(int64_t off) const { return PlainStore{p + off}; }
  XLSTM_ROW_HD void put(int64_t i, float v) const { p[i] = v; }
  XLSTM_ROW_HD void add(int64_t i, float v) const { p[i] += v; }
  XLSTM_ROW_HD float get(int64_t i) const { return p[i]; }
};
// Counts put() (the one write that initialises an element); add() updates an element already written.
struct CountingStore {
  float* p;
  int32_t* writes;  // one counter per element of p
  XLSTM_ROW_HD CountingStore at(int64_t off) const { return CountingStore{p + off, writes + off}; }
  XLSTM_ROW_HD void put(int64_t i, float v) const {
    p[i] = v;
    ++writes[i];
  }
  XLSTM_ROW_HD void add(int64_t i, float v) const { p[i] += v; }
  XLSTM_ROW_HD float get(int64_t i) const { return p[i]; }
};

// Host side of the launches. with_tpr: runs f(std::integral_constant<int, TPR>) for the launch's threads per row
// (the kernels' template argument). replay_rows: body(r) for every row the launch's (pass, block, row slot) visits,
// in launch order (the *_emulate entries); replay_reduce below: a row reduction as the device does it.
template <class F>
inline void with_tpr(const RowLaunch& l, F&& f) {
  if (l.tpr == kWarp) f(std::integral_constant<int, kWarp>{});
  else f(std::integral_constant<int, kThreads>{});
}
template <class F>
inline void replay_rows(const RowLaunch& l, int64_t nrows, F&& body) {
  for (int64_t pass = 0; pass < l.passes; ++pass)
    for (int64_t b = 0; b < l.grid; ++b)
      for (int slot = 0; slot < l.rows_per_block; ++slot) {
        const int64_t r = row_of(l, b, slot * l.tpr, pass);
        if (r < nrows) body(r);
      }
}
// The row-reduced value of f(lane) over the row's lanes, in the device's order.
template <class Op, class T, class F>
inline T replay_reduce(const RowLaunch& l, F&& f) {
  T v[kThreads];
  for (int lane = 0; lane < l.tpr; ++lane) v[lane] = f(lane);
  return host_row_reduce<Op>(v, l.tpr);
}

}  // namespace rows
}  // namespace xlstm
