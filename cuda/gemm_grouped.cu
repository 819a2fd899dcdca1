// The grouped GEMM of cuda/gemm_grouped.h in float32 on the SIMT cores (no TF32): the products of the chunkwise
// mLSTM cell's composed float32 form (cuda/mlstm_bf16.cuh with float32 products; the default for heads of DK·DV >= 2^16:
// cuda::set_mlstm_form).
// Kernel: 256 threads per 64 x 64 tile of C, each a 4 x 4 register tile (rows 4·(t / 16) + i, columns 4·(t % 16) +
// j); K staged 16 at a time, op(A) transposed into As[kk][r] and op(B) as Bs[kk][c], so a thread reads its 4 rows
// and 4 columns of a k step as two float4 loads; per output element the sum runs k by k in order (segment after
// segment) with fmaf, which is what the host replay (grouped_replay, the same staging code) computes: the same bits.
#include <cuda_runtime.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_grouped.h"
#include "gemm_staging.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

struct F32Tiling : GemmStaging<64, 64, 16, 256> {
  static constexpr int TM = 4, TN = 4, TX = BN / TN;  // register tile, threads along a row of the tile
  static constexpr int C_STORES = TM * TN;
  static_assert(THREADS == (BM / TM) * (BN / TN), "one 4 x 4 register tile per thread");
  // element l of thread t's register tile
  __host__ __device__ static void c_slot(int t, int l, int* r, int* c) {
    *r = (t / TX) * TM + l / TN;
    *c = (t % TX) * TN + l % TN;
  }
  // the host replay's tile: every thread owns its register tile
  static void zero_owned(float* acc) {
    for (int t = 0; t < THREADS; ++t)
      for (int l = 0; l < C_STORES; ++l) {
        int r, c;
        c_slot(t, l, &r, &c);
        acc[r * BN + c] = 0.0f;
      }
  }
};

__global__ void __launch_bounds__(F32Tiling::THREADS) gemm_f32_grouped_tiled(GroupedGemm g, int64_t batch0) {
  using G = F32Tiling;
  __shared__ __align__(16) float As[G::BK][G::BM];  // op(A) transposed: As[kk][r]
  __shared__ __align__(16) float Bs[G::BK][G::BN];
  const GroupedBlock<G> blk(g, batch0 + blockIdx.z, blockIdx.y, blockIdx.x);
  const int t = threadIdx.x, r0 = (t / G::TX) * G::TM, c0 = (t % G::TX) * G::TN;
  float acc[G::TM][G::TN] = {};
  int s = 0;
  int64_t k0 = 0;
  for (blk.next_slice(&s, &k0, true); s < g.segments(); blk.next_slice(&s, &k0, false)) {
    const auto seg = blk.seg(s);
#pragma unroll
    for (int l = 0; l < G::A_LOADS; ++l) {
      int r, kk;
      const float v = blk.a_stage(seg, t, l, k0, &r, &kk);
      As[kk][r] = v;
    }
#pragma unroll
    for (int l = 0; l < G::B_LOADS; ++l) {
      int kk, c;
      const float v = blk.b_stage(seg, t, l, k0, &kk, &c);
      Bs[kk][c] = v;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < G::BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&As[kk][r0]);
      const float4 b = *reinterpret_cast<const float4*>(&Bs[kk][c0]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < G::TM; ++i)
#pragma unroll
        for (int j = 0; j < G::TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int l = 0; l < G::C_STORES; ++l) {
    int r, c;
    G::c_slot(t, l, &r, &c);
    blk.store_value(r, c, acc[l / G::TN][l % G::TN]);
  }
}

// Split K's last pass: a thread per C element of every batch adds the ranges' sums in order (split_sum_element).
__global__ void gemm_split_sum_kernel(GroupedGemm g, const float* __restrict__ sums, int64_t total) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= total) return;
  const int64_t plane = g.M * g.N, bt = e / plane, rc = e % plane;
  split_sum_element(g, sums, bt, rc / g.N, rc % g.N);
}

std::atomic<bool> split_k_on{true};  // cuda::set_gemm_split_k

}  // namespace

bool gemm_split_k_enabled() { return split_k_on.load(std::memory_order_relaxed); }
bool set_gemm_split_k(bool enabled) { return split_k_on.exchange(enabled); }

void gemm_split_sum(const GroupedGemm& g, const float* sums, void* stream) {
  const int64_t total = g.batches() * g.M * g.N;
  if (total <= 0) return;
  gemm_split_sum_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, as_stream(stream)>>>(g, sums, total);
  launched("cuda::gemm_split_sum");
}

void gemm_split_sum_replay(const GroupedGemm& g, const float* sums) {
  for (int64_t bt = 0; bt < g.batches(); ++bt)
    for (int64_t r = 0; r < g.M; ++r)
      for (int64_t c = 0; c < g.N; ++c) split_sum_element(g, sums, bt, r, c);
}

void gemm_f32_grouped(const GroupedGemm& g, void* stream) {
  const char* entry = "cuda::gemm_f32_grouped";
  const cudaStream_t s = as_stream(stream);
  launch_grouped<F32Tiling>(g, entry, stream, [&](dim3 grid, const GroupedGemm& run, int64_t b0) {
    gemm_f32_grouped_tiled<<<grid, F32Tiling::THREADS, 0, s>>>(run, b0);
    launched(entry);
  });
}

void gemm_f32_grouped_replay(const GroupedGemm& g) { grouped_replay<F32Tiling>(g, false); }

SplitK gemm_f32_grouped_split_k(const GroupedGemm& g) { return split_k_plan(g, F32Tiling::BM, F32Tiling::BN, F32Tiling::BK); }

}  // namespace cuda
}  // namespace xlstm
