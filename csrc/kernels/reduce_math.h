// Plan, launch mapping and combine rules of the CUDA reductions (cuda/reduce.cu, the twin of csrc/kernels/reduce.cc;
// see reduce.h for the contract), as __host__ __device__ functions so that the host coverage check
// (cuda::reduce_coverage, run by test/21.cuda-misc-kernels on machines without a GPU) walks exactly the
// blocks/threads/elements the kernels visit. Also the two-pass partition of cuda::sum_all and cuda::sum_squares.
// Plain C++ under a host compiler, __host__ __device__ under nvcc. No CUDA headers.
//
// Plan: size-1 axes dropped, neighbouring axes of the same kind merged (as the CPU does); x[offset(o, q)] with o the
// output index (row-major over the kept axes = the layout of out) and q the reduction index (row-major over the
// reduced axes): offset = kept.offset(o) + red.offset(q). x offsets grow with q, so "smallest q" = "first in
// row-major order", the CPU's tie rule for max.
// Launch modes:
//   Serial   (count <= kSerialMax)    one thread per output, q = 0..count-1 in order;
//   Block    (innermost axis reduced) one 256-thread block per (output, piece); thread t takes q = q0 + t, + 256 ...;
//   Columns  (innermost axis kept)    32 x 8 blocks: tx = 32 consecutive outputs (coalesced), ty = q0 + ty, + 8 ...
// Per-thread partials are combined by a fixed shared-memory tree, so results do not depend on timing. Long
// reductions are cut into `pieces` pieces (shape-dependent only) whose results go to a scratch buffer
// partial[o * pieces + piece], added in piece order by a second kernel.
// Sums accumulate in double and round once (like the CPU; the order differs, so the double sum may differ in its
// last bits and the float result very rarely by one ulp). Max uses a total order (NaN > numbers, then value, then
// smaller index), so any combine order gives the CPU's argmax.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__)
#define XLSTM_RD_FN __host__ __device__ __forceinline__
#else
#define XLSTM_RD_FN inline
#endif

namespace xlstm {
namespace rd {

constexpr int kMaxDims = 16;
constexpr int64_t kSerialMax = 32;   // reductions at most this long: one thread per output
constexpr int64_t kPiece = 8192;     // reduction elements per piece (longer reductions are split)
constexpr int64_t kMaxPieces = 64;
constexpr int kBlockThreads = 256;   // Block mode
constexpr int kColsX = 32, kColsY = 8;  // Columns mode
constexpr int64_t kMaxGrid = 65535;  // blocks along x; kernels loop over the rest

struct Axes {
  int n = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
};

// x offset of the idx-th combination of the axes (row-major over them).
XLSTM_RD_FN int64_t axes_offset(const Axes& a, int64_t idx) {
  int64_t off = 0;
  for (int d = a.n - 1; d >= 0; --d) {
    off += (idx % a.size[d]) * a.stride[d];
    idx /= a.size[d];
  }
  return off;
}

enum class Mode : int { Serial = 0, Block = 1, Columns = 2 };

struct Plan {
  Axes kept, red;
  int64_t out_n = 1, count = 1;
  bool inner_reduced = false;
  Mode mode = Mode::Serial;
  int64_t pieces = 1, piece_len = 0;
  int64_t grid_x = 1;
};

// Merge the axes and pick the launch. Requires out_n > 0, count > 0 and at least one reduced axis of size > 1.
inline Plan make_plan(int ndim, const int64_t* shape, const uint8_t* reduced) {
  Plan p;
  int64_t size[kMaxDims];
  bool red[kMaxDims];
  int m = 0;
  for (int d = 0; d < ndim; ++d) {
    (reduced[d] ? p.count : p.out_n) *= shape[d];
    if (shape[d] == 1) continue;
    const bool r = reduced[d] != 0;
    if (m > 0 && red[m - 1] == r) size[m - 1] *= shape[d];
    else {
      size[m] = shape[d];
      red[m] = r;
      ++m;
    }
  }
  int64_t stride = 1;
  int nk = 0, nr = 0;
  for (int d = 0; d < m; ++d) (red[d] ? nr : nk)++;
  for (int d = m - 1; d >= 0; --d) {
    Axes& A = red[d] ? p.red : p.kept;
    const int slot = red[d] ? --nr : --nk;
    A.size[slot] = size[d];
    A.stride[slot] = stride;
    stride *= size[d];
  }
  for (int d = 0; d < m; ++d) (red[d] ? p.red.n : p.kept.n)++;
  p.inner_reduced = m > 0 && red[m - 1];
  p.mode = p.count <= kSerialMax ? Mode::Serial : p.inner_reduced ? Mode::Block : Mode::Columns;
  if (p.mode != Mode::Serial) {
    const int64_t want = (p.count + kPiece - 1) / kPiece;
    p.pieces = want < kMaxPieces ? want : kMaxPieces;
  }
  p.piece_len = (p.count + p.pieces - 1) / p.pieces;
  const int64_t per_block = p.mode == Mode::Serial ? kBlockThreads : p.mode == Mode::Block ? 1 : kColsX;
  const int64_t g = (p.out_n + per_block - 1) / per_block;
  p.grid_x = g < kMaxGrid ? g : kMaxGrid;
  return p;
}

// Outputs handled per step of a block's grid-stride loop, and the reduction range of a piece.
XLSTM_RD_FN int64_t outputs_per_block(const Plan& p) {
  return p.mode == Mode::Serial ? kBlockThreads : p.mode == Mode::Block ? 1 : kColsX;
}
XLSTM_RD_FN void piece_range(const Plan& p, int64_t piece, int64_t* q0, int64_t* q1) {
  *q0 = piece * p.piece_len;
  const int64_t e = *q0 + p.piece_len;
  *q1 = e < p.count ? e : p.count;
}
// Thread (tx, ty) of a block: its output within the block's current group of outputs, its first reduction index
// (relative to the piece) and its step.
XLSTM_RD_FN void thread_role(const Plan& p, int tx, int ty, int64_t* o_in_group, int64_t* q_first, int64_t* q_step) {
  switch (p.mode) {
    case Mode::Serial: *o_in_group = tx; *q_first = 0; *q_step = 1; break;
    case Mode::Block: *o_in_group = 0; *q_first = tx; *q_step = kBlockThreads; break;
    default: *o_in_group = tx; *q_first = ty; *q_step = kColsY; break;
  }
}
XLSTM_RD_FN int64_t x_offset(const Plan& p, int64_t o, int64_t q) {
  return axes_offset(p.kept, o) + axes_offset(p.red, q);
}

// Max with argmax: a beats b? NaN beats numbers, then the larger value, then the smaller index; an empty slot
// (i < 0) loses to anything.
struct MaxAcc {
  float v;
  int64_t i;
};
XLSTM_RD_FN bool max_beats(const MaxAcc& a, const MaxAcc& b) {
  if (a.i < 0) return false;
  if (b.i < 0) return true;
  const bool an = a.v != a.v, bn = b.v != b.v;
  if (an != bn) return an;
  if (!an && a.v != b.v) return a.v > b.v;
  return a.i < b.i;
}

// Two-pass sums (sum_all, sum_squares): pass 1 runs `blocks` blocks of kSumThreads threads, block b over
// [b * chunk, min(n, (b + 1) * chunk)) with thread t at b * chunk + t, + kSumThreads ...; pass 2 is one block adding
// the block partials (thread t: partials t, t + kSumThreads, ...). Both combine by a fixed shared-memory tree.
constexpr int kSumThreads = 256;
constexpr int64_t kSumChunk = 16384;
constexpr int64_t kSumMaxBlocks = 1024;
XLSTM_RD_FN void sum_pass_plan(int64_t n, int64_t* blocks, int64_t* chunk) {
  int64_t b = (n + kSumChunk - 1) / kSumChunk;
  b = b < 1 ? 1 : b > kSumMaxBlocks ? kSumMaxBlocks : b;
  *blocks = b;
  *chunk = (n + b - 1) / b;
}

}  // namespace rd
}  // namespace xlstm
