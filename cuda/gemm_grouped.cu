// The grouped GEMM of cuda/gemm_grouped.h in float32 on the SIMT cores (no TF32): the products of the chunkwise
// mLSTM cell's composed float32 form (cuda/mlstm_bf16.cuh with float32 products; the default for heads of DK·DV >= 2^16:
// cuda::set_mlstm_form).
// Kernel: 256 threads per 64 x 64 tile of C, each a 4 x 4 register tile (rows 4·(t / 16) + i, columns 4·(t % 16) +
// j); K staged 16 at a time, each thread one vector of 4 consecutive floats per operand (a 16-byte load where
// aligned and inside the operand: GroupedBlock::a_stage_vec), op(A) transposed into As[kk][r] and op(B) as Bs[kk][c],
// so a thread reads its 4 rows and 4 columns of a k step as two float4 loads; two slice buffers keep the next
// slice's loads in flight during the products; per output element the sum runs k by k in order (segment after
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

struct F32Tiling : GemmStagingVec4<64, 64, 16, 256> {  // one vector of 4 per operand per thread per slice
  static constexpr int TM = 4, TN = 4, TX = BN / TN;  // register tile, threads along a row of the tile
  static constexpr int C_STORES = TM * TN;
  static constexpr int LDS = BM + 4;  // shared row length of As[kk][r] and Bs[kk][c]: a vector along k lands 2-way
  static_assert(THREADS == (BM / TM) * (BN / TN), "one 4 x 4 register tile per thread");
  static_assert(BM == BN && A_LOADS == 4 && B_LOADS == 4, "one vector per operand per thread per slice");
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

// Thread t's vector (4 values from GroupedBlock::a_stage_vec / b_stage_vec) into S[kk][x] (op(A) transposed, or op(B)):
// one 16-byte store where the vector runs along x, four where it runs along k.
__device__ __forceinline__ void store_f32_vec(float (*S)[F32Tiling::LDS], bool along_k, int kk, int x, const float* v) {
  if (along_k) {
#pragma unroll
    for (int j = 0; j < 4; ++j) S[kk + j][x] = v[j];
  } else {
    *reinterpret_cast<float4*>(&S[kk][x]) = make_float4(v[0], v[1], v[2], v[3]);
  }
}

// Two slice buffers: the next slice's loads are in flight while the block multiplies the current one (one barrier
// per slice); each output element's sum still runs k by k in order.
__global__ void __launch_bounds__(F32Tiling::THREADS) gemm_f32_grouped_tiled(GroupedGemm g, int64_t batch0) {
  using G = F32Tiling;
  __shared__ __align__(16) float As[2][G::BK][G::LDS];  // op(A) transposed: As[kk][r]
  __shared__ __align__(16) float Bs[2][G::BK][G::LDS];
  const GroupedBlock<G> blk(g, batch0 + blockIdx.z, blockIdx.y, blockIdx.x);
  const int t = threadIdx.x, r0 = (t / G::TX) * G::TM, c0 = (t % G::TX) * G::TN;
  float acc[G::TM][G::TN] = {};
  float xa[4], xb[4];
  auto load = [&](int s, int64_t k0) {
    const auto seg = blk.seg(s);
    blk.a_stage_vec(seg, t, 0, k0, xa);
    blk.b_stage_vec(seg, t, 0, k0, xb);
  };
  auto store = [&](int s, int buf) {
    const bool ta = g.seg_ta(s), tb = g.seg_tb(s);
    int r, kk, c;
    G::a_slot(ta, t, 0, &r, &kk);
    store_f32_vec(As[buf], !ta, kk, r, xa);
    G::b_slot(tb, t, 0, &kk, &c);
    store_f32_vec(Bs[buf], tb, kk, c, xb);
  };
  int s = 0, buf = 0;
  int64_t k0 = 0;
  blk.next_slice(&s, &k0, true);
  if (s < g.segments()) load(s, k0), store(s, 0);
  __syncthreads();
  while (s < g.segments()) {
    int ns = s;
    int64_t nk = k0;
    blk.next_slice(&ns, &nk, false);
    if (ns < g.segments()) load(ns, nk);
#pragma unroll
    for (int kk = 0; kk < G::BK; ++kk) {
      const float4 a = *reinterpret_cast<const float4*>(&As[buf][kk][r0]);
      const float4 b = *reinterpret_cast<const float4*>(&Bs[buf][kk][c0]);
      const float av[4] = {a.x, a.y, a.z, a.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < G::TM; ++i)
#pragma unroll
        for (int j = 0; j < G::TN; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (ns < g.segments()) store(ns, buf ^ 1);
    __syncthreads();
    buf ^= 1, s = ns, k0 = nk;
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
bool set_gemm_split_k(bool enabled) {
  kernel_settings_changed();
  return split_k_on.exchange(enabled);
}

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
