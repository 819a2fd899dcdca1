// GEMM with bfloat16 inputs and float32 accumulation on tensor cores, CUDA twin of gemm_bf16_batched in
// csrc/kernels/gemm.cc (the bfloat16 autocast of the ops: lib/cuda.ts autocast). C = alpha op(A) op(B) + beta C on
// float32 device operands, each element of A and B rounded to bfloat16 (round to nearest even) as it is staged in
// shared memory; products and sums in float32. Same arguments and semantics as gemm_batched (row-major, beta == 0
// does not read C, alpha == 0 or K == 0 only scales C, batch strides of 0 broadcast A or B). Needs sm_80+. The
// kernel runs the grouped form (gemm_grouped.h: batches in groups with two strides, optional per-position scales of an
// operand applied before the rounding, an optional second product into the same sums), which the chunkwise mLSTM
// cell's bf16 form composes; gemm_bf16_batched is its one-group, one-segment case. gemm_bf16_grouped_replay is its
// host replay: GroupedBlock (each slot's staged value, the epilogue's writes) is the kernel's own code; only the
// 16 x 16 x 16 products are the replay's (float32 sums of the staged values in k order).
//
// Kernel: 128 threads (4 warps) per 64 x 64 tile of C; each warp owns a 32 x 32 quarter as 2 x 2 wmma fragments of
// 16 x 16 x 16 (bf16 in, float32 accumulators). K is staged 32 at a time, each thread loading 4 vectors of 4
// consecutive floats per operand (one 16-byte load each where the operand is 16-byte aligned and the vector lies
// inside it; element by element at the edges), and stored as bf16 in the layout the operand has in memory: op(A)
// as As[64][32+8] or, transposed, AsT[32][64+8]; op(B) as Bs[32][64+8] or BsT[64][32+8] (padded rows keep the wmma
// loads 32-byte aligned and off one bank; wmma reads row- or column-major to match). Two slice buffers: the next
// slice's loads are in flight while the warps multiply the current one (one barrier per slice). Elements outside
// op(A) / op(B) load as 0. The accumulators go through Cs[64][64+4] (float32, over the slice buffers) and the block
// writes C with alpha / beta, bounds-checked. The same kernel also runs a wide tiling (Bf16TilingWide: 64 x 128 tiles
// of 8 warps, op(A) read once per 128 columns) for products of many such tiles, opt-in
// (set_gemm_bf16_wide) until it has been timed on a GPU; the tiling changes which block computes what, not the sums
// (the replay gives the same bits either way). Under the same opt-in, products of a few waves of tiles over a long K
// are cut along K (split_k_plan's long-K rule: G1's dR). All index arithmetic is in the __host__ __device__ helpers of
// Bf16TilingT and GroupedBlock (the replay stages through the same vector loads); gemm_bf16_tile_coverage runs them
// on the host to check that each shared slot is loaded once per slice, each vector is 4 consecutive elements in
// memory and in shared memory, the warps' parts tile the block and each C element is written once (test/20.gemm).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_grouped.h"
#include "gemm_staging.h"
#include "kernels/bf16_math.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

// A BM x BN tile of C per block of (BM / WM) x (BN / WN) warps, each warp a WM x WN part as (WM / 16) x (WN / 16)
// wmma fragments of 16 x 16 x 16; K slices of 32, staged 4 elements a load; MIN_BLOCKS resident blocks per SM the
// registers must allow (__launch_bounds__).
template <int BM_, int BN_, int WM_, int WN_, int MIN_BLOCKS_>
struct Bf16TilingT : GemmStagingVec4<BM_, BN_, 32, (BM_ / WM_) * (BN_ / WN_) * 32> {
  using Base = GemmStagingVec4<BM_, BN_, 32, (BM_ / WM_) * (BN_ / WN_) * 32>;
  using Base::A_LOADS;
  using Base::B_LOADS;
  using Base::BK;
  using Base::BM;
  using Base::BN;
  using Base::THREADS;
  static constexpr int WM = WM_, WN = WN_, FM = WM_ / 16, FN = WN_ / 16, WARPS_N = BN_ / WN_, MIN_BLOCKS = MIN_BLOCKS_;
  static_assert(BM_ % WM_ == 0 && BN_ % WN_ == 0 && WM_ % 16 == 0 && WN_ % 16 == 0, "warp parts of whole fragments");
  // shared row lengths (elements) by layout: op(A) row-major As[r][kk] (A as stored) or, for a transposed A,
  // column-major AsT[kk][r]; op(B) row-major Bs[kk][c] or, transposed, BsT[c][kk]. Either way a vector of 4
  // consecutive source elements lands as one 8-byte store, and wmma reads the layout it was written in.
  static constexpr int LDA = BK + 8, LDAT = BM + 8, LDB = BN + 8, LDBT = BK + 8, LDC = BN + 4;
  static constexpr int A_ELEMS = BM * LDA > BK * LDAT ? BM * LDA : BK * LDAT;  // one slice's op(A), either layout
  static constexpr int B_ELEMS = BK * LDB > BN * LDBT ? BK * LDB : BN * LDBT;
  static constexpr int C_STORES = BM * BN / THREADS;
  static constexpr int A_VECS = A_LOADS / 4, B_VECS = B_LOADS / 4;
  // shared memory: two slice buffers, the float32 tile Cs of the epilogue over them
  static constexpr int SLICE_BYTES = (A_ELEMS + B_ELEMS) * 2, C_BYTES = BM * LDC * 4;
  static constexpr int SMEM_BYTES = 2 * SLICE_BYTES > C_BYTES ? 2 * SLICE_BYTES : C_BYTES;
  static_assert(SMEM_BYTES <= 48 * 1024, "static shared memory");

  // Warp w's WM x WN part of the block tile.
  __host__ __device__ static void warp_origin(int w, int* r0, int* c0) {
    *r0 = (w / WARPS_N) * WM;
    *c0 = (w % WARPS_N) * WN;
  }
  // Offsets (elements) of op(A)[r][kk] and op(B)[kk][c] in their slice buffers under the segment's layout.
  __host__ __device__ static int a_offset(bool trans_a, int r, int kk) { return trans_a ? kk * LDAT + r : r * LDA + kk; }
  __host__ __device__ static int b_offset(bool trans_b, int kk, int c) { return trans_b ? c * LDBT + kk : kk * LDB + c; }
  // The host replay's tile: each warp's part set to 0 (the rest stays as it was, NaN).
  static void zero_owned(float* acc) {
    for (int w = 0; w < THREADS / 32; ++w) {
      int r0, c0;
      warp_origin(w, &r0, &c0);
      for (int r = r0; r < r0 + WM; ++r)
        for (int c = c0; c < c0 + WN; ++c) acc[r * BN + c] = 0.0f;
    }
  }
  // The l-th element of C thread t writes (from Cs).
  __host__ __device__ static void c_slot(int t, int l, int* r, int* c) {
    const int e = t + l * THREADS;
    *r = e / BN;
    *c = e % BN;
  }
};

// 64 x 64 tiles, 4 warps of 32 x 32 (2 x 2 fragments): any shape, the default.
using Bf16Tiling = Bf16TilingT<64, 64, 32, 32, 4>;
// 64 x 128 tiles, 8 warps of 32 x 32: the same per-warp work and registers (2 blocks of 8 warps per SM, as 4 of 4
// above), but the block reads op(A) once per 128 columns of C instead of 64: a quarter less operand traffic for the
// mLSTM's 64-row products at N 256-512 and the recurrences' dR. For products of many such tiles (use_wide), opt-in
// (set_gemm_bf16_wide) until it has been timed on a GPU. (4 warps of 32 x 64 spilled: 168 registers at 3 blocks.)
using Bf16TilingWide = Bf16TilingT<64, 128, 32, 32, 2>;

std::atomic<bool> bf16_wide{false};  // set_gemm_bf16_wide

// Whether a product runs on the wide tiles: opted in, N >= 128 with the 128-column tiles spanning at most 1/8 more
// columns than the 64-column ones (N 192 and 320 do not: 256 against 192, 384 against 320), and at least
// kWideBlocks of them (2 per SM of an H100 and more; such a launch is cut along K only by the long-K rule of
// split_k_plan, under the same opt-in). From the shape alone, so the host replays choose as the device launch does.
constexpr int64_t kWideBlocks = 256;
inline bool use_wide(const GroupedGemm& g) {
  using W = Bf16TilingWide;
  using S = Bf16Tiling;
  if (!bf16_wide.load()) return false;
  const int64_t wx = W::grid_x(g.N);
  return g.N >= W::BN && 8 * wx * W::BN <= 9 * S::grid_x(g.N) * S::BN && g.batches() * wx * W::grid_y(g.M) >= kWideBlocks;
}
// f(tiling{}) for the tiling product g launches with: launches, replays and the host queries pick it in one place
template <class F>
auto with_tiling(const GroupedGemm& g, F&& f) {
  return use_wide(g) ? f(Bf16TilingWide{}) : f(Bf16Tiling{});
}
// a product's shape alone (no operands), for the host queries of the choices
inline GroupedGemm shape_only(int64_t batch, int64_t M, int64_t N, int64_t K) {
  return grouped_from_batched(false, false, batch, M, N, K, 1.f, nullptr, 0, 0, nullptr, 0, 0, 0.f, nullptr, 0, 0);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
namespace wmma = nvcuda::wmma;

// One slice's operands, held in registers from its global loads until they are stored to shared memory.
template <class G>
struct Bf16Slice {
  float a[G::A_LOADS], b[G::B_LOADS];
};

template <class G>
__device__ __forceinline__ void load_slice(const GroupedBlock<G>& blk, int s, int64_t k0, int t, Bf16Slice<G>& x) {
  const typename GroupedBlock<G>::Seg seg = blk.seg(s);
#pragma unroll
  for (int q = 0; q < G::A_VECS; ++q) blk.a_stage_vec(seg, t, q, k0, &x.a[4 * q]);
#pragma unroll
  for (int q = 0; q < G::B_VECS; ++q) blk.b_stage_vec(seg, t, q, k0, &x.b[4 * q]);
}

template <class G>
__device__ __forceinline__ void store_slice(const GroupedGemm& g, int s, int t, const Bf16Slice<G>& x, __nv_bfloat16* As, __nv_bfloat16* Bs) {
  const bool ta = g.seg_ta(s), tb = g.seg_tb(s);
#pragma unroll
  for (int v = 0; v < G::A_VECS; ++v) {
    int r, kk;
    G::a_slot(ta, t, 4 * v, &r, &kk);
    store_bf16x4(As + G::a_offset(ta, r, kk), &x.a[4 * v]);
  }
#pragma unroll
  for (int v = 0; v < G::B_VECS; ++v) {
    int kk, c;
    G::b_slot(tb, t, 4 * v, &kk, &c);
    store_bf16x4(Bs + G::b_offset(tb, kk, c), &x.b[4 * v]);
  }
}

template <class G>
using Bf16Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>[G::FM][G::FN];

// The warp's WM x WN part of one slice: FM x FN fragments, k 16 at a time, in the layouts the slice was stored in.
template <class G, class LayoutA, class LayoutB>
__device__ __forceinline__ void mma_slice(const __nv_bfloat16* As, const __nv_bfloat16* Bs, int wr, int wc, Bf16Acc<G>& acc) {
  constexpr bool ta = std::is_same<LayoutA, wmma::col_major>::value, tb = std::is_same<LayoutB, wmma::col_major>::value;
#pragma unroll
  for (int kk = 0; kk < G::BK; kk += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, LayoutA> fa[G::FM];
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, LayoutB> fb[G::FN];
#pragma unroll
    for (int i = 0; i < G::FM; ++i) wmma::load_matrix_sync(fa[i], As + G::a_offset(ta, wr + 16 * i, kk), ta ? G::LDAT : G::LDA);
#pragma unroll
    for (int j = 0; j < G::FN; ++j) wmma::load_matrix_sync(fb[j], Bs + G::b_offset(tb, kk, wc + 16 * j), tb ? G::LDBT : G::LDB);
#pragma unroll
    for (int i = 0; i < G::FM; ++i)
#pragma unroll
      for (int j = 0; j < G::FN; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
  }
}
#endif

// The kernel under tiling G: block (blockIdx.x, blockIdx.y) of batch blockIdx.z + batch0, the segments' slices in
// turn. Two slice buffers in shared memory: while the warps multiply one, the next slice's global loads are in flight
// into registers, stored to the other buffer after the products (one barrier per slice). The float32 tile for the
// epilogue reuses the slice buffers.
template <class G>
__global__ void __launch_bounds__(G::THREADS, G::MIN_BLOCKS) gemm_bf16_tiled(GroupedGemm g, int64_t batch0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  __shared__ __align__(128) unsigned char smem[G::SMEM_BYTES];
  __nv_bfloat16* const buf = reinterpret_cast<__nv_bfloat16*>(smem);  // slice b: A at b·(A+B), B after it
  const GroupedBlock<G> blk(g, batch0 + blockIdx.z, blockIdx.y, blockIdx.x);
  const int t = threadIdx.x;
  int wr, wc;
  G::warp_origin(t / 32, &wr, &wc);
  Bf16Acc<G> acc;
#pragma unroll
  for (int i = 0; i < G::FM; ++i)
#pragma unroll
    for (int j = 0; j < G::FN; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  Bf16Slice<G> x;
  int s = 0, b = 0;
  int64_t k0 = 0;
  blk.next_slice(&s, &k0, true);
  if (s < g.segments()) {
    load_slice(blk, s, k0, t, x);
    store_slice(g, s, t, x, buf, buf + G::A_ELEMS);
  }
  __syncthreads();
  while (s < g.segments()) {
    int ns = s;
    int64_t nk = k0;
    blk.next_slice(&ns, &nk, false);
    if (ns < g.segments()) load_slice(blk, ns, nk, t, x);
    const __nv_bfloat16 *As = buf + b * (G::A_ELEMS + G::B_ELEMS), *Bs = As + G::A_ELEMS;
    const bool ta = g.seg_ta(s), tb = g.seg_tb(s);
    if (!ta && !tb) mma_slice<G, wmma::row_major, wmma::row_major>(As, Bs, wr, wc, acc);
    else if (ta && !tb) mma_slice<G, wmma::col_major, wmma::row_major>(As, Bs, wr, wc, acc);
    else if (!ta) mma_slice<G, wmma::row_major, wmma::col_major>(As, Bs, wr, wc, acc);
    else mma_slice<G, wmma::col_major, wmma::col_major>(As, Bs, wr, wc, acc);
    if (ns < g.segments()) {
      __nv_bfloat16* next = buf + (b ^ 1) * (G::A_ELEMS + G::B_ELEMS);
      store_slice(g, ns, t, x, next, next + G::A_ELEMS);
    }
    __syncthreads();
    b ^= 1, s = ns, k0 = nk;
  }
  float* Cs = reinterpret_cast<float*>(smem);  // every warp is past its last products (the barrier above)
#pragma unroll
  for (int i = 0; i < G::FM; ++i)
#pragma unroll
    for (int j = 0; j < G::FN; ++j)
      wmma::store_matrix_sync(&Cs[(wr + 16 * i) * G::LDC + wc + 16 * j], acc[i][j], G::LDC, wmma::mem_row_major);
  __syncthreads();
#pragma unroll 4
  for (int l = 0; l < G::C_STORES; ++l) blk.store(t, l, Cs, G::LDC);
#endif
}

// The long-K cut's block target under the opt-in "auto" choices (split_k_plan): 4 waves of tiling G's resident
// blocks on an H100's 132 SMs; 0 (no such cut) by default.
template <class G>
int64_t long_k_target() {
  return bf16_wide.load() ? int64_t{4} * 132 * G::MIN_BLOCKS : 0;
}

template <class G>
void launch_bf16(const GroupedGemm& g, void* stream) {
  const char* entry = "cuda::gemm_bf16_grouped";
  const cudaStream_t s = as_stream(stream);
  launch_grouped<G>(g, entry, stream, [&](dim3 grid, const GroupedGemm& run, int64_t b0) {
    gemm_bf16_tiled<G><<<grid, G::THREADS, 0, s>>>(run, b0);
    launched(entry);
  }, long_k_target<G>());
}

}  // namespace

void gemm_bf16_grouped(const GroupedGemm& g, void* stream) {
  with_tiling(g, [&](auto tiling) { launch_bf16<decltype(tiling)>(g, stream); });
}

void gemm_bf16_grouped_replay(const GroupedGemm& g, bool round) {
  with_tiling(g, [&](auto tiling) {
    using G = decltype(tiling);
    grouped_replay<G>(g, round, long_k_target<G>());
  });
}

bool set_gemm_bf16_wide(bool wide) {
  kernel_settings_changed();
  return bf16_wide.exchange(wide);
}

void gemm_bf16_tile(int64_t batch, int64_t M, int64_t N, int* rows, int* cols) {
  with_tiling(shape_only(batch, M, N, 0), [&](auto tiling) {
    *rows = decltype(tiling)::BM;
    *cols = decltype(tiling)::BN;
  });
}

void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c, void* stream) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K < 0) throw std::invalid_argument("cuda::gemm_bf16_batched: K must be >= 0");
  gemm_bf16_grouped(grouped_from_batched(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c), stream);
}

void gemm_bf16_batched_emulate(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                               float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb,
                               int64_t stride_b, float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K < 0) throw std::invalid_argument("cuda::gemm_bf16_batched_emulate: K must be >= 0");
  gemm_bf16_grouped_replay(grouped_from_batched(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c));
}

void gemm_split_k_plan(int64_t batch, int64_t M, int64_t N, int64_t K, bool bf16, int64_t* splits, int64_t* chunk) {
  const GroupedGemm g = shape_only(batch, M, N, K);
  const SplitK cut = !bf16 ? gemm_f32_grouped_split_k(g) : with_tiling(g, [&](auto tiling) {
    using G = decltype(tiling);
    return split_k_plan(g, G::BM, G::BN, G::BK, long_k_target<G>());
  });
  *splits = cut.splits;
  *chunk = cut.chunk;
}

namespace {
// Coverage of one tiling (see gemm_bf16_tile_coverage).
template <class G>
int64_t bf16_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int32_t* counts) {
  for (int64_t e = 0; e < M * N; ++e) counts[e] = 0;
  // wmma's leading dimensions: a multiple of 8 bf16 / 4 floats (16 bytes), rows of 16 then stay 32-byte aligned;
  // the second slice buffer and B's part of a buffer start 32-byte aligned too
  for (int ld : {G::LDA, G::LDAT, G::LDB, G::LDBT})
    if (ld % 8 || (16 * ld * 2) % 32) return -1;
  if (G::LDC % 4 || (16 * G::LDC * 4) % 32 || (G::A_ELEMS * 2) % 32 || ((G::A_ELEMS + G::B_ELEMS) * 2) % 32) return -1;
  if (M <= 0 || N <= 0) return 0;
  // C: every (block, thread, store slot) that passes the kernel's bounds check
  for (int64_t by = 0; by < G::grid_y(M); ++by)
    for (int64_t bx = 0; bx < G::grid_x(N); ++bx)
      for (int t = 0; t < G::THREADS; ++t)
        for (int l = 0; l < G::C_STORES; ++l) {
          int r, c;
          G::c_slot(t, l, &r, &c);
          const int64_t gr = by * G::BM + r, gc = bx * G::BN + c;
          if (r < 0 || r >= G::BM || c < 0 || c >= G::BN) return -1;
          if (gr < M && gc < N) ++counts[gr * N + gc];
        }
  int64_t bad = 0;
  // staging: each As / Bs slot of a slice loaded by exactly one (thread, l); the warps' quarters tile the block
  int a_seen[G::BM][G::BK] = {}, b_seen[G::BK][G::BN] = {}, c_seen[G::BM][G::BN] = {};
  // and in the slice buffer's layout, every slot at its own offset inside the buffer; a vector's 4 slots consecutive
  // in memory (along A's / B's contiguous dimension, from a multiple of 4) and in the buffer (one 8-byte store)
  std::vector<int> a_at(G::A_ELEMS), b_at(G::B_ELEMS);
  for (int t = 0; t < G::THREADS; ++t) {
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk, r0, kk0;
      G::a_slot(trans_a, t, l, &r, &kk);
      G::a_slot(trans_a, t, l - l % 4, &r0, &kk0);
      if (r < 0 || r >= G::BM || kk < 0 || kk >= G::BK) return -1;
      ++a_seen[r][kk];
      const int at = G::a_offset(trans_a, r, kk), j = l % 4;
      if (at < 0 || at >= G::A_ELEMS) return -1;
      ++a_at[at];
      const bool along = trans_a ? (kk == kk0 && r == r0 + j) : (r == r0 && kk == kk0 + j);
      bad += !along || (trans_a ? r0 : kk0) % 4 != 0 || at != G::a_offset(trans_a, r0, kk0) + j || (at - j) % 4 != 0;
    }
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c, kk0, c0;
      G::b_slot(trans_b, t, l, &kk, &c);
      G::b_slot(trans_b, t, l - l % 4, &kk0, &c0);
      if (kk < 0 || kk >= G::BK || c < 0 || c >= G::BN) return -1;
      ++b_seen[kk][c];
      const int at = G::b_offset(trans_b, kk, c), j = l % 4;
      if (at < 0 || at >= G::B_ELEMS) return -1;
      ++b_at[at];
      const bool along = trans_b ? (c == c0 && kk == kk0 + j) : (kk == kk0 && c == c0 + j);
      bad += !along || (trans_b ? kk0 : c0) % 4 != 0 || at != G::b_offset(trans_b, kk0, c0) + j || (at - j) % 4 != 0;
    }
  }
  for (int v : a_at) bad += v > 1;
  for (int v : b_at) bad += v > 1;
  for (int w = 0; w < G::THREADS / 32; ++w) {
    int r0, c0;
    G::warp_origin(w, &r0, &c0);
    for (int r = r0; r < r0 + G::WM; ++r)
      for (int c = c0; c < c0 + G::WN; ++c) {
        if (r >= G::BM || c >= G::BN) return -1;
        ++c_seen[r][c];
      }
  }
  for (auto& row : a_seen)
    for (int v : row) bad += v != 1;
  for (auto& row : b_seen)
    for (int v : row) bad += v != 1;
  for (auto& row : c_seen)
    for (int v : row) bad += v != 1;
  return bad;
}
}  // namespace

int64_t gemm_bf16_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int32_t* counts) {
  // the tiling a one-batch product of this shape launches with (use_wide)
  return with_tiling(shape_only(1, M, N, 0), [&](auto tiling) { return bf16_tile_coverage<decltype(tiling)>(trans_a, trans_b, M, N, counts); });
}

}  // namespace cuda
}  // namespace xlstm
