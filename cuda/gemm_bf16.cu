// GEMM with bfloat16 inputs and float32 accumulation on tensor cores, CUDA twin of gemm_bf16_batched in
// csrc/kernels/gemm.cc (the bfloat16 autocast of the ops: lib/cuda.ts autocast). C = alpha op(A) op(B) + beta C on
// float32 device operands, each element of A and B rounded to bfloat16 (round to nearest even) as it is staged in
// shared memory; products and sums in float32. Same arguments and semantics as gemm_batched (row-major, beta == 0
// does not read C, alpha == 0 or K == 0 only scales C, batch strides of 0 broadcast A or B). Needs sm_80+. The
// kernel runs the grouped form (gemm_grouped.h: batches in groups with two strides, optional per-position scales of an
// operand applied before the rounding, an optional second product into the same sums), which the chunkwise mLSTM
// cell's bf16 form composes; gemm_bf16_batched is its one-group, one-segment case. gemm_bf16_grouped_replay is its
// host replay: Bf16Block (each slot's staged value, the epilogue's writes) is the kernel's own code; only the
// 16 x 16 x 16 products are the replay's (float32 sums of the staged values in k order).
//
// Kernel: 128 threads (4 warps) per 64 x 64 tile of C; each warp owns a 32 x 32 quarter as 2 x 2 wmma fragments of
// 16 x 16 x 16 (bf16 in, float32 accumulators). K is staged 32 at a time as As[64][32+8] and Bs[32][64+8] (bf16;
// padded rows keep the wmma loads 32-byte aligned and off one bank). Elements outside op(A) / op(B) load as 0. The
// accumulators go through Cs[64][64+4] (float32, shared) and the block writes C with alpha / beta, bounds-checked.
// All index arithmetic is in the __host__ __device__ helpers of Bf16Tiling; gemm_bf16_tile_coverage runs them on
// the host to check that each shared slot is loaded once per slice and each C element written once (test/20.gemm).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
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

struct Bf16Tiling : GemmStaging<64, 64, 32, 128> {  // 64 x 64 C tile, K slices of 32 (As[r][kk], Bs[kk][c])
  static constexpr int WARP_TILE = 32;
  static constexpr int LDA = BK + 8, LDB = BN + 8, LDC = BN + 4;  // shared row lengths (elements)
  static constexpr int C_STORES = BM * BN / THREADS;

  // Warp w's 32 x 32 quarter of the block tile.
  __host__ __device__ static void warp_origin(int w, int* r0, int* c0) {
    *r0 = (w / 2) * WARP_TILE;
    *c0 = (w % 2) * WARP_TILE;
  }
  // The host replay's tile: each warp's quarter set to 0 (the rest stays as it was, NaN).
  static void zero_owned(float* acc) {
    for (int w = 0; w < THREADS / 32; ++w) {
      int r0, c0;
      warp_origin(w, &r0, &c0);
      for (int r = r0; r < r0 + WARP_TILE; ++r)
        for (int c = c0; c < c0 + WARP_TILE; ++c) acc[r * BN + c] = 0.0f;
    }
  }
  // The l-th element of C thread t writes (from Cs).
  __host__ __device__ static void c_slot(int t, int l, int* r, int* c) {
    const int e = t + l * THREADS;
    *r = e / BN;
    *c = e % BN;
  }
};

using Bf16Block = GroupedBlock<Bf16Tiling>;

// The kernel: block (blockIdx.x, blockIdx.y) of batch blockIdx.z + batch0, the segments' slices in turn.
__global__ void __launch_bounds__(Bf16Tiling::THREADS, 4) gemm_bf16_tiled(GroupedGemm g, int64_t batch0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using G = Bf16Tiling;
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) __nv_bfloat16 As[G::BM][G::LDA];
  __shared__ __align__(32) __nv_bfloat16 Bs[G::BK][G::LDB];
  __shared__ __align__(32) float Cs[G::BM][G::LDC];
  const Bf16Block blk(g, batch0 + blockIdx.z, blockIdx.y, blockIdx.x);
  const int t = threadIdx.x;
  int wr, wc;
  G::warp_origin(t / 32, &wr, &wc);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  // the slices of every segment in turn (Bf16Block::next_slice's order)
  int s = 0;
  int64_t k0 = 0;
  for (blk.next_slice(&s, &k0, true); s < g.segments(); blk.next_slice(&s, &k0, false)) {
#pragma unroll 4
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk;
      const float v = blk.a_stage(s, t, l, k0, &r, &kk);
      As[r][kk] = __float2bfloat16_rn(v);
    }
#pragma unroll 4
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c;
      const float v = blk.b_stage(s, t, l, k0, &kk, &c);
      Bs[kk][c] = __float2bfloat16_rn(v);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < G::BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &As[wr + 16 * i][kk], G::LDA);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &Bs[kk][wc + 16 * j], G::LDB);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wr + 16 * i][wc + 16 * j], acc[i][j], G::LDC, wmma::mem_row_major);
  __syncthreads();
#pragma unroll 4
  for (int l = 0; l < G::C_STORES; ++l) blk.store(t, l, &Cs[0][0], G::LDC);
#endif
}

}  // namespace

void gemm_bf16_grouped(const GroupedGemm& g, void* stream) {
  const char* entry = "cuda::gemm_bf16_grouped";
  const cudaStream_t s = as_stream(stream);
  launch_grouped<Bf16Tiling>(g, entry, stream, [&](dim3 grid, const GroupedGemm& run, int64_t b0) {
    gemm_bf16_tiled<<<grid, Bf16Tiling::THREADS, 0, s>>>(run, b0);
    launched(entry);
  });
}

void gemm_bf16_grouped_replay(const GroupedGemm& g, bool round) { grouped_replay<Bf16Tiling>(g, round); }

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
  const GroupedGemm g = grouped_from_batched(false, false, batch, M, N, K, 1.f, nullptr, 0, 0, nullptr, 0, 0, 0.f, nullptr, 0, 0);
  const SplitK cut = bf16 ? split_k_plan(g, Bf16Tiling::BM, Bf16Tiling::BN, Bf16Tiling::BK) : gemm_f32_grouped_split_k(g);
  *splits = cut.splits;
  *chunk = cut.chunk;
}

int64_t gemm_bf16_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int32_t* counts) {
  using G = Bf16Tiling;
  for (int64_t e = 0; e < M * N; ++e) counts[e] = 0;
  // wmma's leading dimensions: a multiple of 8 bf16 / 4 floats (16 bytes), rows of 16 then stay 32-byte aligned
  if (G::LDA % 8 || G::LDB % 8 || G::LDC % 4 || (16 * G::LDA * 2) % 32 || (16 * G::LDB * 2) % 32 || (16 * G::LDC * 4) % 32)
    return -1;
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
  for (int t = 0; t < G::THREADS; ++t) {
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk;
      G::a_slot(trans_a, t, l, &r, &kk);
      if (r < 0 || r >= G::BM || kk < 0 || kk >= G::BK) return -1;
      ++a_seen[r][kk];
    }
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c;
      G::b_slot(trans_b, t, l, &kk, &c);
      if (kk < 0 || kk >= G::BK || c < 0 || c >= G::BN) return -1;
      ++b_seen[kk][c];
    }
  }
  for (int w = 0; w < G::THREADS / 32; ++w) {
    int r0, c0;
    G::warp_origin(w, &r0, &c0);
    for (int r = r0; r < r0 + G::WARP_TILE; ++r)
      for (int c = c0; c < c0 + G::WARP_TILE; ++c) {
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

}  // namespace cuda
}  // namespace xlstm
