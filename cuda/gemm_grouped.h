// The grouped GEMM: bf16 operands on tensor cores (cuda/gemm_bf16.cu) or float32 on the SIMT cores
// (cuda/gemm_grouped.cu), for kernels that run many small products over a regular layout (the chunkwise mLSTM cell's
// composed forms: cuda/mlstm_bf16.cuh). Batches come in `groups` groups
// of `per_group`; batch (o, i) reads each operand at base + o·outer + i·inner, so a product per (head, chunk) reads
// position-major data ([bh][t][D], chunk i of head o) and per-chunk state slots alike. An operand may carry a
// position scale: the element of op(X) at (m, k) / (k, n) multiplied by scale[o·s_outer + i·s_inner + index], the
// index being k (scale_k) or the other one (before the bf16 kernel rounds it). A second segment (K2 > 0) adds a
// second product into the same accumulators: C = alpha (op(A) op(B) + op(A2) op(B2)) + beta C, each segment with its
// own operands and transposes (one pass over C where two products would write it, read it back and write it again).
// Internal to the CUDA layer.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bf16_math.h"

namespace xlstm {
namespace cuda {

struct GemmOperand {
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

struct GroupedGemm {
  bool ta = false, tb = false;
  int64_t groups = 0, per_group = 0, M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;  // beta == 0: C is not read
  GemmOperand a, b;
  bool ta2 = false, tb2 = false;  // the optional second segment (K2 > 0)
  int64_t K2 = 0;
  GemmOperand a2, b2;
  float* c = nullptr;
  int64_t ldc = 0, c_outer = 0, c_inner = 0;

  __host__ __device__ int segments() const { return K2 > 0 ? 2 : 1; }
  __host__ __device__ int64_t seg_K(int s) const { return s ? K2 : K; }
  __host__ __device__ bool seg_ta(int s) const { return s ? ta2 : ta; }
  __host__ __device__ bool seg_tb(int s) const { return s ? tb2 : tb; }
  __host__ __device__ const GemmOperand& seg_a(int s) const { return s ? a2 : a; }
  __host__ __device__ const GemmOperand& seg_b(int s) const { return s ? b2 : b; }
  __host__ __device__ float* c_base(int64_t bt) const { return c + GemmOperand::at(bt, per_group, c_outer, c_inner); }
};

// bf16 operands on tensor cores (cuda/gemm_bf16.cu): enqueues the products on `stream` (sm_80+). Throws
// std::invalid_argument for shapes the launch cannot cover.
void gemm_bf16_grouped(const GroupedGemm& g, void* stream);
// float32 operands and sums on the SIMT cores (cuda/gemm_grouped.cu; no TF32): the same products in float32, every
// output element's sum in k order (segment after segment), so its host replay gives the same bits.
void gemm_f32_grouped(const GroupedGemm& g, void* stream);
void gemm_f32_grouped_replay(const GroupedGemm& g);
// The host replay of that launch (no GPU): every block and thread stages its slots with the kernel's own code, each
// warp's quarter of the tile is accumulated from the staged (bf16-rounded, or with round false unrounded) slices in
// k order, and the epilogue writes C as the kernel does. The CUDA layer's host replays run their products with it.
void gemm_bf16_grouped_replay(const GroupedGemm& g, bool round = true);

// One block of a grouped product under tiling G (batch bt, tile origin row0 / col0): the staged value of each slot,
// segment by segment, the slices' order and the epilogue's writes. __host__ __device__: the kernels and their host
// replays run exactly this. G: BM, BN, BK, THREADS, A_LOADS, B_LOADS, a_slot, b_slot, c_slot.
template <class G>
struct GroupedBlock {
  const GroupedGemm& g;
  int64_t row0, col0;
  const float *A[2], *B[2], *sA[2], *sB[2];
  float* C;
  __host__ __device__ GroupedBlock(const GroupedGemm& grouped, int64_t bt, int64_t by, int64_t bx)
      : g(grouped), row0(by * G::BM), col0(bx * G::BN) {
    for (int s = 0; s < g.segments(); ++s) {
      A[s] = g.seg_a(s).base(bt, g.per_group), sA[s] = g.seg_a(s).scale_base(bt, g.per_group);
      B[s] = g.seg_b(s).base(bt, g.per_group), sB[s] = g.seg_b(s).scale_base(bt, g.per_group);
    }
    C = g.c_base(bt);
  }
  // slot l of thread t in segment s's slice from k0: op(A)[r][kk] of the tile (0 outside op(A))
  __host__ __device__ float a_stage(int s, int t, int l, int64_t k0, int* r, int* kk) const {
    const bool ta = g.seg_ta(s);
    G::a_slot(ta, t, l, r, kk);
    const int64_t gr = row0 + *r, gk = k0 + *kk;
    if (gr >= g.M || gk >= g.seg_K(s)) return 0.0f;
    const GemmOperand& o = g.seg_a(s);
    float v = ta ? A[s][gk * o.ld + gr] : A[s][gr * o.ld + gk];
    if (sA[s]) v *= sA[s][o.scale_k ? gk : gr];
    return v;
  }
  // slot l of thread t: op(B)[kk][c] of the tile (0 outside op(B))
  __host__ __device__ float b_stage(int s, int t, int l, int64_t k0, int* kk, int* c) const {
    const bool tb = g.seg_tb(s);
    G::b_slot(tb, t, l, kk, c);
    const int64_t gk = k0 + *kk, gc = col0 + *c;
    if (gk >= g.seg_K(s) || gc >= g.N) return 0.0f;
    const GemmOperand& o = g.seg_b(s);
    float v = tb ? B[s][gc * o.ld + gk] : B[s][gk * o.ld + gc];
    if (sB[s]) v *= sB[s][o.scale_k ? gk : gc];
    return v;
  }
  // the slice after (s, k0) in the kernel's order (segment by segment, BK deep; first: the first slice itself),
  // s == segments() past the last
  __host__ __device__ void next_slice(int* s, int64_t* k0, bool first) const {
    if (!first) *k0 += G::BK;
    while (*s < g.segments() && *k0 >= g.seg_K(*s)) ++*s, *k0 = 0;
  }
  // the epilogue's write of the tile's sum v at (r, c)
  __host__ __device__ void store_value(int r, int c, float v) const {
    const int64_t gr = row0 + r, gc = col0 + c;
    if (gr >= g.M || gc >= g.N) return;
    float* out = C + gr * g.ldc + gc;
    *out = g.beta == 0.f ? g.alpha * v : g.alpha * v + g.beta * *out;
  }
  // the epilogue's store l of thread t from the tile's sums (row stride ld)
  __host__ __device__ void store(int t, int l, const float* Cs, int ld) const {
    int r, c;
    G::c_slot(t, l, &r, &c);
    store_value(r, c, Cs[r * ld + c]);
  }
};

// A grouped product's launches under tiling G: the checks, alpha == 0 (C = beta C without reading A or B), and grids
// of at most 65535 batches each, launch(grid, run, first batch) enqueuing one. `entry` names the caller in errors.
template <class G, class Launch>
void launch_grouped(const GroupedGemm& g, const char* entry, Launch launch) {
  const int64_t batch = g.groups * g.per_group;
  if (batch <= 0 || g.M <= 0 || g.N <= 0) return;
  if (g.K < 0 || g.K2 < 0) throw std::invalid_argument(std::string(entry) + ": K must be >= 0");
  GroupedGemm run = g;
  if (g.alpha == 0.f) run.K = 0, run.K2 = 0;
  const int64_t gx = G::grid_x(g.N), gy = G::grid_y(g.M);
  if (gx > 0x7fffffff || gy > 65535)
    throw std::invalid_argument(std::string(entry) + ": M = " + std::to_string(g.M) + " needs more than 65535 row tiles");
  for (int64_t b0 = 0; b0 < batch; b0 += 65535)
    launch(dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(batch - b0 < 65535 ? batch - b0 : 65535)), run, b0);
}

// The host replay of a grouped product under tiling G: every block and thread stages its slots with GroupedBlock,
// the tile is accumulated from the staged values (bf16-rounded when `round`) in k order, slice after slice, and the
// epilogue writes C as the kernels do. The tile starts NaN but for the parts the threads / warps own (G::zero_owned),
// and the staging buffers NaN per slice, so a gap in either cover shows up in C.
template <class G>
void grouped_replay(const GroupedGemm& g, bool round) {
  const int64_t batch = g.groups * g.per_group;
  if (batch <= 0 || g.M <= 0 || g.N <= 0) return;
  GroupedGemm run = g;
  if (g.alpha == 0.f) run.K = 0, run.K2 = 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> As(G::BM * G::BK), Bs(G::BK * G::BN), acc(G::BM * G::BN);
  for (int64_t bt = 0; bt < batch; ++bt)
    for (int64_t by = 0; by < G::grid_y(g.M); ++by)
      for (int64_t bx = 0; bx < G::grid_x(g.N); ++bx) {
        const GroupedBlock<G> blk(run, bt, by, bx);
        std::fill(acc.begin(), acc.end(), nan);  // the threads' / warps' parts set to 0: a gap stays NaN
        G::zero_owned(acc.data());
        int s = 0;
        int64_t k0 = 0;
        for (blk.next_slice(&s, &k0, true); s < run.segments(); blk.next_slice(&s, &k0, false)) {
          std::fill(As.begin(), As.end(), nan);
          std::fill(Bs.begin(), Bs.end(), nan);
          for (int t = 0; t < G::THREADS; ++t) {
            for (int l = 0; l < G::A_LOADS; ++l) {
              int r, kk;
              const float v = blk.a_stage(s, t, l, k0, &r, &kk);
              As[r * G::BK + kk] = round ? bf16_math::widen(bf16_math::round(v)) : v;
            }
            for (int l = 0; l < G::B_LOADS; ++l) {
              int kk, c;
              const float v = blk.b_stage(s, t, l, k0, &kk, &c);
              Bs[kk * G::BN + c] = round ? bf16_math::widen(bf16_math::round(v)) : v;
            }
          }
          for (int r = 0; r < G::BM; ++r)
            for (int c = 0; c < G::BN; ++c) {
              float v = acc[r * G::BN + c];
              for (int kk = 0; kk < G::BK; ++kk) v = std::fma(As[r * G::BK + kk], Bs[kk * G::BN + c], v);
              acc[r * G::BN + c] = v;
            }
        }
        for (int t = 0; t < G::THREADS; ++t)
          for (int l = 0; l < G::C_STORES; ++l) blk.store(t, l, acc.data(), G::BN);
      }
}

}  // namespace cuda
}  // namespace xlstm
