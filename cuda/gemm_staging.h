// Which elements of op(A) and op(B) each thread of a GEMM block stages into shared memory per K slice (CUDA kernels
// layer), shared by the float32 kernel (gemm.cu) and the bf16 tensor-core kernel (gemm_bf16.cu). __host__
// __device__, so the kernels' host coverage checks run exactly this mapping.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace xlstm {
namespace cuda {

// Whether rows of `ld` floats from `base` keep every 4-aligned group of a row 16-byte aligned.
__host__ __device__ inline bool aligned_float4(const float* base, int64_t ld) {
  return (reinterpret_cast<uintptr_t>(base) & 15) == 0 && ld % 4 == 0;
}
// out[0..3] = p[0..3]: one 16-byte load on the device (p 16-byte aligned), four on the host replays.
__host__ __device__ inline void load_float4(const float* p, float* out) {
#ifdef __CUDA_ARCH__
  const float4 x = __ldg(reinterpret_cast<const float4*>(p));
  out[0] = x.x, out[1] = x.y, out[2] = x.z, out[3] = x.w;
#else
  for (int j = 0; j < 4; ++j) out[j] = p[j];
#endif
}
// A vector of 4 of an operand X seen as rows x K (op(A), or op(B) transposed), from (gr, gk): rows gr .. gr + 3 at
// depth gk when X is stored depth-major (trans: X[k * ld + r]), else depths gk .. gk + 3 of row gr (X[r * ld + k]);
// 0 outside rows x K. One 16-byte load where all four lie inside and `aligned` (aligned_float4 of X and ld).
__host__ __device__ inline void load_vec4(const float* X, int64_t ld, bool trans, int64_t rows, int64_t K, bool aligned,
                                          int64_t gr, int64_t gk, float* out) {
  if (aligned && (trans ? gr + 4 <= rows && gk < K : gr < rows && gk + 4 <= K))
    return load_float4(trans ? X + gk * ld + gr : X + gr * ld + gk, out);
  for (int j = 0; j < 4; ++j) {
    const int64_t r = gr + (trans ? j : 0), k = gk + (trans ? 0 : j);
    out[j] = r < rows && k < K ? (trans ? X[k * ld + r] : X[r * ld + k]) : 0.f;
  }
}
// p[0..3] = v[0..3]: one 16-byte store on the device (p 16-byte aligned), four on the host replays.
__host__ __device__ inline void store_float4(float* p, const float* v) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
#else
  for (int j = 0; j < 4; ++j) p[j] = v[j];
#endif
}
#ifdef __CUDACC__
// v[0..3] rounded to bf16 (nearest even) as one 8-byte store at dst (8-byte aligned)
__device__ __forceinline__ void store_bf16x4(__nv_bfloat16* dst, const float* v) {
  __nv_bfloat162 lo = __floats2bfloat162_rn(v[0], v[1]), hi = __floats2bfloat162_rn(v[2], v[3]);
  uint2 packed;
  packed.x = *reinterpret_cast<unsigned*>(&lo);
  packed.y = *reinterpret_cast<unsigned*>(&hi);
  *reinterpret_cast<uint2*>(dst) = packed;
}
#endif

// A block of THREADS threads computing a BM x BN tile of C from BK-deep slices.
template <int BM_, int BN_, int BK_, int THREADS_>
struct GemmStaging {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, THREADS = THREADS_;
  static constexpr int A_LOADS = BM * BK / THREADS, B_LOADS = BK * BN / THREADS;  // elements per thread per slice
  static constexpr int VEC = 1;  // elements staged per load (GemmStagingVec4: 4)

  // Grid for an M x N product: x over column tiles, y over row tiles.
  __host__ __device__ static int64_t grid_x(int64_t N) { return (N + BN - 1) / BN; }
  __host__ __device__ static int64_t grid_y(int64_t M) { return (M + BM - 1) / BM; }

  // The l-th op(A) element thread t stages per slice: row r < BM of the tile, k offset kk < BK. Without transpose
  // A is M x K row-major (consecutive threads walk k); with it A is K x M (consecutive threads walk rows).
  __host__ __device__ static void a_slot(bool trans_a, int t, int l, int* r, int* kk) {
    const int idx = t + l * THREADS;
    if (trans_a) {
      *r = idx % BM;
      *kk = idx / BM;
    } else {
      *r = idx / BK;
      *kk = idx % BK;
    }
  }
  // The l-th op(B) element thread t stages per slice: k offset kk < BK, column c < BN. Without transpose B is K x N
  // (consecutive threads walk columns); with it B is N x K (consecutive threads walk k).
  __host__ __device__ static void b_slot(bool trans_b, int t, int l, int* kk, int* c) {
    const int idx = t + l * THREADS;
    if (trans_b) {
      *kk = idx % BK;
      *c = idx / BK;
    } else {
      *kk = idx / BN;
      *c = idx % BN;
    }
  }
};

// The same staging in groups of 4: the l-th element of a thread is element l % 4 of its vector l / 4, and a vector's
// 4 elements are consecutive along the operand's contiguous dimension in memory (k for A, rows of op(A) for a
// transposed A; columns for B, k for a transposed B) and start at a multiple of 4 there, so a kernel can stage them
// with one 16-byte load (GroupedBlock::a_stage_vec). Consecutive threads take consecutive vectors.
template <int BM_, int BN_, int BK_, int THREADS_>
struct GemmStagingVec4 : GemmStaging<BM_, BN_, BK_, THREADS_> {
  using Base = GemmStaging<BM_, BN_, BK_, THREADS_>;
  using Base::BK;
  using Base::BM;
  using Base::BN;
  using Base::THREADS;
  static constexpr int VEC = 4;
  static_assert(BM % 4 == 0 && BN % 4 == 0 && BK % 4 == 0 && Base::A_LOADS % 4 == 0 && Base::B_LOADS % 4 == 0,
                "whole vectors of 4 per thread");
  __host__ __device__ static void a_slot(bool trans_a, int t, int l, int* r, int* kk) {
    const int idx = t + (l / 4) * THREADS, j = l % 4;
    if (trans_a) {
      *r = (idx % (BM / 4)) * 4 + j;
      *kk = idx / (BM / 4);
    } else {
      *r = idx / (BK / 4);
      *kk = (idx % (BK / 4)) * 4 + j;
    }
  }
  __host__ __device__ static void b_slot(bool trans_b, int t, int l, int* kk, int* c) {
    const int idx = t + (l / 4) * THREADS, j = l % 4;
    if (trans_b) {
      *kk = (idx % (BK / 4)) * 4 + j;
      *c = idx / (BK / 4);
    } else {
      *kk = idx / (BN / 4);
      *c = (idx % (BN / 4)) * 4 + j;
    }
  }
};

}  // namespace cuda
}  // namespace xlstm
