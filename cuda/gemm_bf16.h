// The grouped form of the bf16 tensor-core GEMM (cuda/gemm_bf16.cu), for kernels that run many small products over
// a regular layout (the chunkwise mLSTM cell under autocast: cuda/mlstm_bf16.cuh). Batches come in `groups` groups
// of `per_group`; batch (o, i) reads each operand at base + o·outer + i·inner, so a product per (head, chunk) reads
// position-major data ([bh][t][D], chunk i of head o) and per-chunk state slots alike. An operand may carry a
// position scale: the element of op(X) at (m, k) / (k, n) multiplied by scale[o·s_outer + i·s_inner + index], the
// index being k (scale_k) or the other one, before it is rounded to bfloat16. A second segment (K2 > 0) adds a
// second product into the same accumulators: C = alpha (op(A) op(B) + op(A2) op(B2)) + beta C, each segment with its
// own operands and transposes (one pass over C where two products would write it, read it back and write it again).
// Internal to the CUDA layer.
#pragma once
#include <cstdint>

namespace xlstm {
namespace cuda {

struct Bf16Operand {
  const float* p = nullptr;
  int64_t ld = 0, outer = 0, inner = 0;
  const float* scale = nullptr;  // optional
  int64_t s_outer = 0, s_inner = 0;
  bool scale_k = true;  // scale indexed by the reduction index k, else by op(X)'s row (A) / column (B)

  __host__ __device__ static int64_t at(int64_t b, int64_t per, int64_t outer, int64_t inner) {
    return (b / per) * outer + (b % per) * inner;
  }
  // batch b's base and scale base
  __host__ __device__ const float* base(int64_t b, int64_t per) const { return p + at(b, per, outer, inner); }
  __host__ __device__ const float* scale_base(int64_t b, int64_t per) const {
    return scale ? scale + at(b, per, s_outer, s_inner) : nullptr;
  }
};

struct Bf16Grouped {
  bool ta = false, tb = false;
  int64_t groups = 0, per_group = 0, M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;  // beta == 0: C is not read
  Bf16Operand a, b;
  bool ta2 = false, tb2 = false;  // the optional second segment (K2 > 0)
  int64_t K2 = 0;
  Bf16Operand a2, b2;
  float* c = nullptr;
  int64_t ldc = 0, c_outer = 0, c_inner = 0;

  __host__ __device__ int segments() const { return K2 > 0 ? 2 : 1; }
  __host__ __device__ int64_t seg_K(int s) const { return s ? K2 : K; }
  __host__ __device__ bool seg_ta(int s) const { return s ? ta2 : ta; }
  __host__ __device__ bool seg_tb(int s) const { return s ? tb2 : tb; }
  __host__ __device__ const Bf16Operand& seg_a(int s) const { return s ? a2 : a; }
  __host__ __device__ const Bf16Operand& seg_b(int s) const { return s ? b2 : b; }
  __host__ __device__ float* c_base(int64_t bt) const { return c + Bf16Operand::at(bt, per_group, c_outer, c_inner); }
};

// Enqueues the products on `stream` (sm_80+). Throws std::invalid_argument for shapes the launch cannot cover.
void gemm_bf16_grouped(const Bf16Grouped& g, void* stream);
// The host replay of that launch (no GPU): every block and thread stages its slots with the kernel's own code, each
// warp's quarter of the tile is accumulated from the staged (bf16-rounded, or with round false unrounded) slices in
// k order, and the epilogue writes C as the kernel does. The CUDA layer's host replays run their products with it.
void gemm_bf16_grouped_replay(const Bf16Grouped& g, bool round = true);

}  // namespace cuda
}  // namespace xlstm
