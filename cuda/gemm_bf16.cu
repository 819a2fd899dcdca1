// GEMM with bfloat16 inputs and float32 accumulation on tensor cores, CUDA twin of gemm_bf16_batched in
// csrc/kernels/gemm.cc (the bfloat16 autocast of the ops: lib/cuda.ts autocast). C = alpha op(A) op(B) + beta C on
// float32 device operands, each element of A and B rounded to bfloat16 (round to nearest even) as it is staged in
// shared memory; products and sums in float32. Same arguments and semantics as gemm_batched (row-major, beta == 0
// does not read C, alpha == 0 or K == 0 only scales C, batch strides of 0 broadcast A or B). Needs sm_80+. The
// kernel runs the grouped form (gemm_bf16.h: batches in groups with two strides, optional per-position scales of an
// operand applied before the rounding), which the chunkwise mLSTM cell's bf16 form composes; gemm_bf16_batched is
// its one-group case, and gemm_bf16_grouped_host the host reference the CUDA layer's host replays use.
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

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_bf16.h"
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
  // The l-th element of C thread t writes (from Cs).
  __host__ __device__ static void c_slot(int t, int l, int* r, int* c) {
    const int e = t + l * THREADS;
    *r = e / BN;
    *c = e % BN;
  }
};

// One block of the product: batch blockIdx.z + batch0 of g (its operands and scales through Bf16Grouped's maps).
template <bool TA, bool TB>
__global__ void __launch_bounds__(Bf16Tiling::THREADS, 4) gemm_bf16_tiled(Bf16Grouped g, int64_t batch0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using G = Bf16Tiling;
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) __nv_bfloat16 As[G::BM][G::LDA];
  __shared__ __align__(32) __nv_bfloat16 Bs[G::BK][G::LDB];
  __shared__ __align__(32) float Cs[G::BM][G::LDC];
  const int64_t b = batch0 + blockIdx.z;
  const int64_t M = g.M, N = g.N, K = g.K;
  const float* __restrict__ A = g.a.p + Bf16Grouped::at(b, g.per_group, g.a.outer, g.a.inner);
  const float* __restrict__ B = g.b.p + Bf16Grouped::at(b, g.per_group, g.b.outer, g.b.inner);
  const float* __restrict__ sA = g.a.scale ? g.a.scale + Bf16Grouped::at(b, g.per_group, g.a.s_outer, g.a.s_inner) : nullptr;
  const float* __restrict__ sB = g.b.scale ? g.b.scale + Bf16Grouped::at(b, g.per_group, g.b.s_outer, g.b.s_inner) : nullptr;
  float* __restrict__ C = g.c + Bf16Grouped::at(b, g.per_group, g.c_outer, g.c_inner);
  const int64_t lda = g.a.ld, ldb = g.b.ld, ldc = g.ldc;
  const int t = threadIdx.x, warp = t / 32;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * G::BM, col0 = static_cast<int64_t>(blockIdx.x) * G::BN;
  int wr, wc;
  G::warp_origin(warp, &wr, &wc);
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  for (int64_t k0 = 0; k0 < K; k0 += G::BK) {
#pragma unroll 4
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk;
      G::a_slot(TA, t, l, &r, &kk);
      const int64_t gr = row0 + r, gk = k0 + kk;
      float v = 0.0f;
      if (gr < M && gk < K) {
        v = TA ? A[gk * lda + gr] : A[gr * lda + gk];
        if (sA) v *= sA[g.a.scale_k ? gk : gr];
      }
      As[r][kk] = __float2bfloat16_rn(v);
    }
#pragma unroll 4
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c;
      G::b_slot(TB, t, l, &kk, &c);
      const int64_t gk = k0 + kk, gc = col0 + c;
      float v = 0.0f;
      if (gk < K && gc < N) {
        v = TB ? B[gc * ldb + gk] : B[gk * ldb + gc];
        if (sB) v *= sB[g.b.scale_k ? gk : gc];
      }
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
  const float alpha = g.alpha, beta = g.beta;
#pragma unroll 4
  for (int l = 0; l < G::C_STORES; ++l) {
    int r, c;
    G::c_slot(t, l, &r, &c);
    const int64_t gr = row0 + r, gc = col0 + c;
    if (gr < M && gc < N) {
      float* out = C + gr * ldc + gc;
      *out = beta == 0.f ? alpha * Cs[r][c] : alpha * Cs[r][c] + beta * *out;
    }
  }
#endif
}

}  // namespace

void gemm_bf16_grouped(const Bf16Grouped& g, void* stream) {
  using G = Bf16Tiling;
  const char* entry = "cuda::gemm_bf16_grouped";
  const int64_t batch = g.groups * g.per_group;
  if (batch <= 0 || g.M <= 0 || g.N <= 0) return;
  if (g.K < 0) throw std::invalid_argument("cuda::gemm_bf16_grouped: K must be >= 0");
  Bf16Grouped run = g;
  if (g.alpha == 0.f) run.K = 0;  // alpha == 0: C = beta C without reading A or B
  const int64_t gx = G::grid_x(g.N), gy = G::grid_y(g.M);
  if (gx > 0x7fffffff || gy > 65535)
    throw std::invalid_argument("cuda::gemm_bf16_grouped: M = " + std::to_string(g.M) + " needs more than 65535 row tiles");
  const cudaStream_t s = as_stream(stream);
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                    static_cast<unsigned>(batch - b0 < 65535 ? batch - b0 : 65535));
    const dim3 block(G::THREADS);
    if (g.ta && g.tb) gemm_bf16_tiled<true, true><<<grid, block, 0, s>>>(run, b0);
    else if (g.ta) gemm_bf16_tiled<true, false><<<grid, block, 0, s>>>(run, b0);
    else if (g.tb) gemm_bf16_tiled<false, true><<<grid, block, 0, s>>>(run, b0);
    else gemm_bf16_tiled<false, false><<<grid, block, 0, s>>>(run, b0);
    launched(entry);
  }
}

void gemm_bf16_grouped_host(const Bf16Grouped& g, bool round) {
  const int64_t batch = g.groups * g.per_group;
  const int64_t K = g.alpha == 0.f ? 0 : g.K;
  std::vector<float> a(static_cast<size_t>(g.M > 0 && K > 0 ? g.M * K : 0)), b(static_cast<size_t>(K > 0 && g.N > 0 ? K * g.N : 0));
  for (int64_t bt = 0; bt < batch; ++bt) {
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t k = 0; k < K; ++k) a[m * K + k] = round ? bf16_math::widen(bf16_math::round(g.a_val(bt, m, k))) : g.a_val(bt, m, k);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < g.N; ++n) b[k * g.N + n] = round ? bf16_math::widen(bf16_math::round(g.b_val(bt, k, n))) : g.b_val(bt, k, n);
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        float acc = 0.0f;
        for (int64_t k = 0; k < K; ++k) acc = std::fma(a[m * K + k], b[k * g.N + n], acc);
        float* out = g.c_at(bt, m, n);
        *out = g.beta == 0.f ? g.alpha * acc : g.alpha * acc + g.beta * *out;
      }
  }
}

void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c, void* stream) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K < 0) throw std::invalid_argument("cuda::gemm_bf16_batched: K must be >= 0");
  Bf16Grouped g;
  g.ta = trans_a, g.tb = trans_b;
  g.groups = 1, g.per_group = batch, g.M = M, g.N = N, g.K = K, g.alpha = alpha, g.beta = beta;
  g.a.p = A, g.a.ld = lda, g.a.inner = stride_a;
  g.b.p = B, g.b.ld = ldb, g.b.inner = stride_b;
  g.c = C, g.ldc = ldc, g.c_inner = stride_c;
  gemm_bf16_grouped(g, stream);
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
