// The grouped form of the bf16 tensor-core GEMM (cuda/gemm_bf16.cu), for kernels that run many small products over
// a regular layout (the chunkwise mLSTM cell under autocast: cuda/mlstm_bf16.cuh). Batches come in `groups` groups
// of `per_group`; batch (o, i) reads each operand at base + o·outer + i·inner, so a product per (head, chunk) reads
// position-major data ([bh][t][D], chunk i of head o) and per-chunk state slots alike. An operand may carry a
// position scale: the element of op(X) at (m, k) / (k, n) multiplied by scale[o·s_outer + i·s_inner + index], the
// index being k (scale_k) or the other one, before it is rounded to bfloat16. Internal to the CUDA layer.
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
};

struct Bf16Grouped {
  bool ta = false, tb = false;
  int64_t groups = 0, per_group = 0, M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;  // beta == 0: C is not read
  Bf16Operand a, b;
  float* c = nullptr;
  int64_t ldc = 0, c_outer = 0, c_inner = 0;

  __host__ __device__ static int64_t at(int64_t b, int64_t per, int64_t outer, int64_t inner) {
    return (b / per) * outer + (b % per) * inner;
  }
  // batch b's op(A)[m][k] and op(B)[k][n] before rounding (in range), and its C element
  __host__ __device__ float a_val(int64_t bt, int64_t m, int64_t k) const {
    const float* A = a.p + at(bt, per_group, a.outer, a.inner);
    float v = ta ? A[k * a.ld + m] : A[m * a.ld + k];
    if (a.scale) v *= a.scale[at(bt, per_group, a.s_outer, a.s_inner) + (a.scale_k ? k : m)];
    return v;
  }
  __host__ __device__ float b_val(int64_t bt, int64_t k, int64_t n) const {
    const float* B = b.p + at(bt, per_group, b.outer, b.inner);
    float v = tb ? B[n * b.ld + k] : B[k * b.ld + n];
    if (b.scale) v *= b.scale[at(bt, per_group, b.s_outer, b.s_inner) + (b.scale_k ? k : n)];
    return v;
  }
  __host__ __device__ float* c_at(int64_t bt, int64_t m, int64_t n) const {
    return c + at(bt, per_group, c_outer, c_inner) + m * ldc + n;
  }
};

// Enqueues the products on `stream` (sm_80+). Throws std::invalid_argument for shapes the launch cannot cover.
void gemm_bf16_grouped(const Bf16Grouped& g, void* stream);
// The same products on host arrays (every element of op(A) / op(B) rounded to bfloat16 after its scale, float32
// sums in k order): the reference the CUDA layer's host replays use in place of the tensor-core kernel. round false
// skips the rounding (float32 products: lets a test check a composition of these products against float32 kernels).
void gemm_bf16_grouped_host(const Bf16Grouped& g, bool round = true);

}  // namespace cuda
}  // namespace xlstm
