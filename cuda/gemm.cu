// GEMM, CUDA twin of csrc/kernels/gemm.cc (CUDA kernels layer): C = alpha * op(A) * op(B) + beta * C, row-major
// float32 on device pointers, same argument order and semantics (beta == 0 does not read C; alpha == 0 or K == 0
// only scales C by beta; batched strides of 0 broadcast A or B).
//
// Kernel: classic shared-memory tiling, in two sizes. A block of 16 x 16 threads computes a 64 x 64 tile of C (each
// thread a 4 x 4 register tile) or, for launches large enough to fill the GPU with them, a 128 x 64 tile (8 x 4 per
// thread: more FMAs per shared-memory read), each thread's elements at rows ty + 16 i and columns tx + 16 j (so a
// warp's stores are coalesced). For each 16-deep slice of K the block stages op(A) and op(B) in shared memory, each
// thread vectors of 4 consecutive floats along the operand's contiguous dimension (one 16-byte load where aligned and
// inside the operand, element by element at the edges; one 16-byte shared store where the vector runs along the
// shared row), through two slice buffers: the next slice's loads are in flight while the block multiplies the
// current one (one barrier per slice). Every C element is one fmaf chain over k in order, whatever the tile: the two give identical bits. All
// index arithmetic lives in the __host__ __device__ helpers of GemmTilingT, which gemm_tile_coverage() runs on the
// host to check that every C element is written exactly once and every shared-memory slot is loaded exactly once
// (test/20.gemm), and the host replay (gemm_batched_emulate) runs the kernel's own phases with the launch's tiling.
// set_gemm_f32_tiled(false) runs every product on the grouped float32 kernel instead (gemm_grouped.cu: the same fmaf
// chains, so the same bits, with 16-byte staging and the next slice's loads in flight), for A/B measurements: on an
// H100 the G3 training step ran 8 % slower that way (112k -> 103k tokens/s), so these kernels stay the default (that
// A/B predates their own 16-byte staging and in-flight slice, which has not run on a GPU yet).
// Products of few tiles over a long K (split_k_plan in gemm_grouped.h: weight gradients, single rows) always go to
// the grouped kernel's split-K form (its replay likewise).
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_grouped.h"
#include "gemm_staging.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

// A block of 16 x 16 threads computing a BM x BN tile of C, each thread a TM x TN register tile at rows
// ty + 16 i and columns tx + 16 j (a warp's stores coalesced), from BK-deep K slices staged in shared memory.
template <int BM_, int BN_, int BK_, int MIN_BLOCKS_>
struct GemmTilingT : GemmStagingVec4<BM_, BN_, BK_, 256> {  // As[kk][r], Bs[kk][c]
  static constexpr int MIN_BLOCKS = MIN_BLOCKS_;  // resident blocks per SM the registers must allow (<= 128 each at 2)
  using Base = GemmStagingVec4<BM_, BN_, BK_, 256>;
  static constexpr int TX = 16, TY = 16;                      // threads per block (x: columns, y: rows)
  static constexpr int TM = BM_ / TY, TN = BN_ / TX;          // register tile per thread
  static_assert(TX * TY == Base::THREADS, "one thread per (tx, ty)");

  // Element (i, j) of thread (tx, ty)'s register tile -> position in C.
  __host__ __device__ static void c_element(int64_t bx, int64_t by, int tx, int ty, int i, int j, int64_t* row,
                                            int64_t* col) {
    *row = by * BM_ + ty + i * TY;
    *col = bx * BN_ + tx + j * TX;
  }
};
using GemmTiling = GemmTilingT<64, 64, 16, 1>;      // 4 x 4 per thread: any shape
using GemmTilingBig = GemmTilingT<128, 64, 16, 1>;  // 8 x 4 per thread: a third more FMAs per shared-memory read

// The tiling a launch uses: the 128 x 64 tiles once they alone give the GPU enough blocks (>= 128: about one per SM
// of an H100), the 64 x 64 ones otherwise. Both add the K terms of a C element in the same order (one fmaf each, k
// ascending), so the choice never changes a result.
inline bool use_big_tiles(int64_t batch, int64_t M, int64_t N) {
  return M >= GemmTilingBig::BM && N >= GemmTilingBig::BN && batch * GemmTilingBig::grid_x(N) * GemmTilingBig::grid_y(M) >= 128;
}

std::atomic<bool> f32_tiled{true};  // set_gemm_f32_tiled

// One product of the launch (the batch offsets applied).
struct GemmOperands {
  int64_t M, N, K;
  float alpha, beta;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
};

// A block's shared memory for one K slice: op(A) transposed and op(B), padded rows (16-byte multiples).
template <class G>
struct __align__(16) GemmShared {
  float As[G::BK][G::BM + 4];
  float Bs[G::BK][G::BN + 4];
};

// One slice's staged values of a thread, from its global loads to its shared stores.
template <class G>
struct GemmSlice {
  float a[G::A_LOADS], b[G::B_LOADS];
};

// The kernel's phases, shared by the kernel and its host replay (gemm_batched_emulate). Phase 1a: thread t loads its
// vectors of the slice starting at k0 (0 outside op(A) / op(B)); one 16-byte load where a vector lies inside the
// operand and the operand keeps it aligned (tiles and slices start at multiples of 4), else element by element.
template <class G, bool TA, bool TB>
__host__ __device__ __forceinline__ void gemm_load(const GemmOperands& g, int64_t bx, int64_t by, int64_t k0, int t,
                                                   GemmSlice<G>& x) {
  const int64_t row0 = by * G::BM, col0 = bx * G::BN;
  const bool a4 = aligned_float4(g.A, g.lda), b4 = aligned_float4(g.B, g.ldb);
#pragma unroll
  for (int q = 0; q < G::A_LOADS / 4; ++q) {
    int r, kk;
    G::a_slot(TA, t, 4 * q, &r, &kk);
    load_vec4(g.A, g.lda, TA, g.M, g.K, a4, row0 + r, k0 + kk, &x.a[4 * q]);
  }
#pragma unroll
  for (int q = 0; q < G::B_LOADS / 4; ++q) {  // op(B) transposed: N rows of K, stored depth-major unless TB
    int kk, c;
    G::b_slot(TB, t, 4 * q, &kk, &c);
    load_vec4(g.B, g.ldb, !TB, g.N, g.K, b4, col0 + c, k0 + kk, &x.b[4 * q]);
  }
}

// Phase 1b: thread t stores its loaded vectors into the slice buffer: op(A) transposed (As[kk][r]) and op(B)
// (Bs[kk][c]); a vector along the shared row (a transposed A's rows, B's columns) as one 16-byte store.
template <class G, bool TA, bool TB>
__host__ __device__ __forceinline__ void gemm_put(int t, const GemmSlice<G>& x, GemmShared<G>& s) {
#pragma unroll
  for (int q = 0; q < G::A_LOADS / 4; ++q) {
    int r, kk;
    G::a_slot(TA, t, 4 * q, &r, &kk);
    if (TA) {
      store_float4(&s.As[kk][r], &x.a[4 * q]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) s.As[kk + j][r] = x.a[4 * q + j];
    }
  }
#pragma unroll
  for (int q = 0; q < G::B_LOADS / 4; ++q) {
    int kk, c;
    G::b_slot(TB, t, 4 * q, &kk, &c);
    if (!TB) {
      store_float4(&s.Bs[kk][c], &x.b[4 * q]);
    } else {
#pragma unroll
      for (int j = 0; j < 4; ++j) s.Bs[kk + j][c] = x.b[4 * q + j];
    }
  }
}

// Phase 2: thread (tx, ty) adds the slice's products to its register tile, k in order (one FMA each).
template <class G>
__host__ __device__ __forceinline__ void gemm_accumulate(const GemmShared<G>& s, int tx, int ty, float (&acc)[G::TM][G::TN]) {
#pragma unroll
  for (int kk = 0; kk < G::BK; ++kk) {
    float a[G::TM], bb[G::TN];
#pragma unroll
    for (int i = 0; i < G::TM; ++i) a[i] = s.As[kk][ty + i * G::TY];
#pragma unroll
    for (int j = 0; j < G::TN; ++j) bb[j] = s.Bs[kk][tx + j * G::TX];
#pragma unroll
    for (int i = 0; i < G::TM; ++i)
#pragma unroll
      for (int j = 0; j < G::TN; ++j) acc[i][j] = fmaf(a[i], bb[j], acc[i][j]);
  }
}

// Phase 3: thread (tx, ty) writes its register tile: C = alpha acc (+ beta C; C not read when beta == 0).
template <class G>
__host__ __device__ __forceinline__ void gemm_store(const GemmOperands& g, int64_t bx, int64_t by, int tx, int ty,
                                                    const float (&acc)[G::TM][G::TN]) {
#pragma unroll
  for (int i = 0; i < G::TM; ++i)
#pragma unroll
    for (int j = 0; j < G::TN; ++j) {
      int64_t row, col;
      G::c_element(bx, by, tx, ty, i, j, &row, &col);
      if (row < g.M && col < g.N) {
        float* c = g.C + row * g.ldc + col;
        *c = g.beta == 0.f ? g.alpha * acc[i][j] : g.alpha * acc[i][j] + g.beta * *c;
      }
    }
}

template <class G, bool TA, bool TB>
__global__ void __launch_bounds__(G::THREADS, G::MIN_BLOCKS)
    sgemm_tiled(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                int64_t stride_a, const float* __restrict__ B, int64_t ldb, int64_t stride_b, float beta,
                float* __restrict__ C, int64_t ldc, int64_t stride_c, int64_t batch0) {
  __shared__ GemmShared<G> s[2];
  const int64_t b = batch0 + blockIdx.z;
  const GemmOperands g{M, N, K, alpha, beta, A + b * stride_a, lda, B + b * stride_b, ldb, C + b * stride_c, ldc};
  const int tx = threadIdx.x, ty = threadIdx.y, t = ty * G::TX + tx;
  const int64_t bx = blockIdx.x, by = blockIdx.y;
  float acc[G::TM][G::TN];
#pragma unroll
  for (int i = 0; i < G::TM; ++i)
#pragma unroll
    for (int j = 0; j < G::TN; ++j) acc[i][j] = 0.f;
  GemmSlice<G> x;
  if (K > 0) {
    gemm_load<G, TA, TB>(g, bx, by, 0, t, x);
    gemm_put<G, TA, TB>(t, x, s[0]);
  }
  __syncthreads();
  int buf = 0;
  for (int64_t k0 = 0; k0 < K; k0 += G::BK) {
    const bool more = k0 + G::BK < K;
    if (more) gemm_load<G, TA, TB>(g, bx, by, k0 + G::BK, t, x);
    gemm_accumulate<G>(s[buf], tx, ty, acc);
    if (more) gemm_put<G, TA, TB>(t, x, s[buf ^ 1]);
    __syncthreads();
    buf ^= 1;
  }
  gemm_store<G>(g, bx, by, tx, ty, acc);
}

// The host replay of one launch, template-dispatched on the transposes: every block, each phase for all threads.
template <class G, bool TA, bool TB>
void replay_batched(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                    int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                    int64_t ldc, int64_t stride_c) {
  std::vector<GemmShared<G>> shared(1);
  std::vector<float> acc(static_cast<size_t>(G::THREADS) * G::TM * G::TN);
  auto tile = [&](int t) -> float(&)[G::TM][G::TN] { return *reinterpret_cast<float(*)[G::TM][G::TN]>(&acc[static_cast<size_t>(t) * G::TM * G::TN]); };
  for (int64_t b = 0; b < batch; ++b) {
    const GemmOperands g{M, N, K, alpha, beta, A + b * stride_a, lda, B + b * stride_b, ldb, C + b * stride_c, ldc};
    for (int64_t by = 0; by < G::grid_y(M); ++by)
      for (int64_t bx = 0; bx < G::grid_x(N); ++bx) {
        std::fill(acc.begin(), acc.end(), 0.f);
        for (int64_t k0 = 0; k0 < K; k0 += G::BK) {
          std::fill(&shared[0].As[0][0], &shared[0].As[0][0] + sizeof(GemmShared<G>) / sizeof(float), std::nanf(""));
          for (int t = 0; t < G::THREADS; ++t) {
            GemmSlice<G> x;
            gemm_load<G, TA, TB>(g, bx, by, k0, t, x);
            gemm_put<G, TA, TB>(t, x, shared[0]);
          }
          for (int t = 0; t < G::THREADS; ++t) gemm_accumulate<G>(shared[0], t % G::TX, t / G::TX, tile(t));
        }
        for (int t = 0; t < G::THREADS; ++t) gemm_store<G>(g, bx, by, t % G::TX, t / G::TX, tile(t));
      }
  }
}

template <class G>
void launch_tiled(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
                  int64_t ldc, int64_t stride_c, void* stream) {
  const int64_t gx = G::grid_x(N), gy = G::grid_y(M);
  if (gx > 0x7fffffff || gy > 65535)
    throw std::invalid_argument("cuda::gemm: M = " + std::to_string(M) + " needs more than 65535 row tiles");
  const dim3 block(G::TX, G::TY);
  const cudaStream_t s = as_stream(stream);
  for (int64_t b0 = 0; b0 < batch; b0 += 65535) {
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy),
                    static_cast<unsigned>(batch - b0 < 65535 ? batch - b0 : 65535));
    if (ta && tb)
      sgemm_tiled<G, true, true><<<grid, block, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, b0);
    else if (ta)
      sgemm_tiled<G, true, false><<<grid, block, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, b0);
    else if (tb)
      sgemm_tiled<G, false, true><<<grid, block, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, b0);
    else
      sgemm_tiled<G, false, false><<<grid, block, 0, s>>>(M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, b0);
    check(cudaGetLastError(), "cuda::gemm", "sgemm_tiled launch");
  }
}

void launch(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C,
            int64_t ldc, int64_t stride_c, void* stream) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K < 0) throw std::invalid_argument("cuda::gemm: K must be >= 0");
  // alpha == 0: C = beta C without reading A or B (as in the CPU twin and BLAS)
  const int64_t k_eff = alpha == 0.f ? 0 : K;
  // few tiles over a long K (weight gradients, single rows): the grouped kernel's split-K form fills the GPU
  const GroupedGemm grouped = grouped_from_batched(ta, tb, batch, M, N, k_eff, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  if (!f32_tiled.load(std::memory_order_relaxed) || gemm_f32_grouped_split_k(grouped).splits > 1) return gemm_f32_grouped(grouped, stream);
  if (use_big_tiles(batch, M, N))
    launch_tiled<GemmTilingBig>(ta, tb, batch, M, N, k_eff, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, stream);
  else
    launch_tiled<GemmTiling>(ta, tb, batch, M, N, k_eff, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c, stream);
}

// The host replay with the launch's tiling.
template <bool TA, bool TB>
void replay_launch(int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                   int64_t stride_c) {
  if (use_big_tiles(batch, M, N))
    replay_batched<GemmTilingBig, TA, TB>(batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  else
    replay_batched<GemmTiling, TA, TB>(batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
}

// Coverage of one tiling (see gemm_tile_coverage).
template <class G>
int64_t tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int32_t* counts) {
  const int64_t gx = G::grid_x(N), gy = G::grid_y(M);
  // C: every (block, thread, register slot) that passes the kernel's bounds check
  for (int64_t by = 0; by < gy; ++by)
    for (int64_t bx = 0; bx < gx; ++bx)
      for (int ty = 0; ty < G::TY; ++ty)
        for (int tx = 0; tx < G::TX; ++tx)
          for (int i = 0; i < G::TM; ++i)
            for (int j = 0; j < G::TN; ++j) {
              int64_t row, col;
              G::c_element(bx, by, tx, ty, i, j, &row, &col);
              if (row >= 0 && row < M && col >= 0 && col < N) ++counts[row * N + col];
            }
  // Shared-memory staging: within one K slice each As / Bs slot must be written by exactly one (thread, l). The
  // mapping is the same for every block and slice, so one pass over the block's threads checks the whole launch.
  int64_t bad = 0;
  std::vector<int> as(G::BK * G::BM, 0), bs(G::BK * G::BN, 0);
  for (int t = 0; t < G::THREADS; ++t) {
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk;
      G::a_slot(trans_a, t, l, &r, &kk);
      if (r < 0 || r >= G::BM || kk < 0 || kk >= G::BK) ++bad;
      else ++as[kk * G::BM + r];
    }
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c;
      G::b_slot(trans_b, t, l, &kk, &c);
      if (c < 0 || c >= G::BN || kk < 0 || kk >= G::BK) ++bad;
      else ++bs[kk * G::BN + c];
    }
  }
  for (int v : as) bad += v != 1;
  for (int v : bs) bad += v != 1;
  return bad;
}

}  // namespace

bool set_gemm_f32_tiled(bool tiled) {
  kernel_settings_changed();
  return f32_tiled.exchange(tiled);
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, void* stream) {
  launch(trans_a, trans_b, 1, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, stream);
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c, void* stream) {
  launch(trans_a, trans_b, batch, M, N, K, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c,
         stream);
}

void gemm_batched_emulate(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                          const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                          float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K < 0) throw std::invalid_argument("cuda::gemm_batched_emulate: K must be >= 0");
  const int64_t k = alpha == 0.f ? 0 : K;
  const GroupedGemm grouped = grouped_from_batched(trans_a, trans_b, batch, M, N, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  if (!f32_tiled.load(std::memory_order_relaxed) || gemm_f32_grouped_split_k(grouped).splits > 1) return gemm_f32_grouped_replay(grouped);
  if (trans_a && trans_b) replay_launch<true, true>(batch, M, N, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  else if (trans_a) replay_launch<true, false>(batch, M, N, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  else if (trans_b) replay_launch<false, true>(batch, M, N, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
  else replay_launch<false, false>(batch, M, N, k, alpha, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c);
}

void gemm_host(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C) {
  std::string why;
  if (device_count(&why) == 0) throw std::runtime_error("cuda::gemm_host: " + why);
  const char* entry = "cuda::gemm_host";
  check(cudaSetDevice(0), entry, "cudaSetDevice");
  DeviceBuffer<float> dA(A, M * K, entry), dB(B, K * N, entry), dC(C, M * N, entry);
  gemm(trans_a, trans_b, M, N, K, alpha, dA.p, trans_a ? M : K, dB.p, trans_b ? K : N, beta, dC.p, N, nullptr);
  check(cudaDeviceSynchronize(), entry, "sgemm_tiled");
  dC.download(C, entry);
}

int64_t gemm_tile_coverage(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int32_t* counts) {
  for (int64_t e = 0; e < M * N; ++e) counts[e] = 0;
  if (M <= 0 || N <= 0) return 0;
  (void)K;
  return use_big_tiles(1, M, N) ? tile_coverage<GemmTilingBig>(trans_a, trans_b, M, N, counts)
                                : tile_coverage<GemmTiling>(trans_a, trans_b, M, N, counts);
}

}  // namespace cuda
}  // namespace xlstm
