// Which elements of op(A) and op(B) each thread of a GEMM block stages into shared memory per K slice (CUDA kernels
// layer), shared by the float32 kernel (gemm.cu) and the bf16 tensor-core kernel (gemm_bf16.cu). __host__
// __device__, so the kernels' host coverage checks run exactly this mapping.
#pragma once
#include <cstdint>

namespace xlstm {
namespace cuda {

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
