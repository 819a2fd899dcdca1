// The grouped GEMM: bf16 operands on tensor cores (cuda/gemm_bf16.cu) or float32 on the SIMT cores
// (cuda/gemm_grouped.cu), for kernels that run many small products over a regular layout (the chunkwise mLSTM cell's
// composed forms: cuda/mlstm_bf16.cuh). Batches come in `groups` groups
// of `per_group`; batch (o, i) reads each operand at base + o·outer + i·inner, so a product per (head, chunk) reads
// position-major data ([bh][t][D], chunk i of head o) and per-chunk state slots alike. An operand may carry a
// position scale: the element of op(X) at (m, k) / (k, n) multiplied by scale[o·s_outer + i·s_inner + index], the
// index being k (scale_k) or the other one (before the bf16 kernel rounds it). A second segment (K2 > 0) adds a
// second product into the same accumulators: C = alpha (op(A) op(B) + op(A2) op(B2)) + beta C, each segment with its
// own operands and transposes (one pass over C where two products would write it, read it back and write it again).
// Split K: a one-segment product whose tiles alone leave the GPU mostly idle (weight gradients: small M x N, K = all
// rows of a batch; decode's single rows) is cut along K into k_splits ranges of k_chunk (a multiple of the tiling's
// BK); each (batch, range) block writes its plain sum into scratch, and gemm_split_sum adds the ranges in order and
// applies alpha / beta (split_k_plan picks the cut from the shape alone, so the host replays cut the same way).
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

#include "cuda_host_util.h"
#include "gemm_staging.h"
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
  // split K (one segment only): block z of the launch is batch z / k_splits, K range z % k_splits of k_chunk; its
  // sums go to split_out[z][M][N] unscaled (gemm_split_sum finishes C)
  int64_t k_splits = 1, k_chunk = 0;
  float* split_out = nullptr;

  __host__ __device__ int segments() const { return K2 > 0 ? 2 : 1; }
  __host__ __device__ int64_t seg_K(int s) const { return s ? K2 : K; }
  __host__ __device__ bool seg_ta(int s) const { return s ? ta2 : ta; }
  __host__ __device__ bool seg_tb(int s) const { return s ? tb2 : tb; }
  __host__ __device__ float* c_base(int64_t bt) const { return c + GemmOperand::at(bt, per_group, c_outer, c_inner); }
  __host__ __device__ int64_t batches() const { return groups * per_group; }
};

// The split-K cut of a product under a tiling of BM x BN tiles and BK-deep slices: none (1) unless it is one
// segment whose tiles number under half of kTargetBlocks and K holds at least two kMinChunk ranges; then enough
// ranges to launch about kTargetBlocks blocks, each at least kMinChunk deep (a multiple of BK), at most kMaxSplits,
// and scratch of at most kMaxScratch floats. With a long_k_target (the bf16 GEMM's opt-in "auto" choices: a few
// waves of its tiles on an H100), a one-segment product of more tiles but fewer than long_k_target over a K of at
// least kLongK is cut too, into enough ranges of at least kLongChunk to launch about long_k_target blocks (scratch up
// to kMaxLongScratch): the recurrences' dR (G1: 288 wide tiles over K 16,368) otherwise runs 1.09 waves, the last
// 24 blocks alone for a whole K. From the shape alone, so a host replay cuts as the device launch does.
// Off (set_gemm_split_k(false), for A/B measurements): no product is cut.
struct SplitK {
  int64_t splits = 1, chunk = 0;
};
bool gemm_split_k_enabled();  // gemm_grouped.cu
inline SplitK split_k_plan(const GroupedGemm& g, int BM, int BN, int BK, int64_t long_k_target = 0) {
  constexpr int64_t kTargetBlocks = 512, kMinChunk = 128, kMaxSplits = 16, kMaxScratch = int64_t{1} << 23;
  constexpr int64_t kLongK = 4096, kLongChunk = 1024, kMaxLongScratch = int64_t{1} << 24;
  SplitK p;
  if (!gemm_split_k_enabled()) return p;
  const int64_t blocks = g.batches() * ((g.M + BM - 1) / BM) * ((g.N + BN - 1) / BN);
  const int64_t out = std::max<int64_t>(g.batches() * g.M * g.N, 1);
  if (g.K2 > 0 || blocks <= 0 || kMinChunk % BK || kLongChunk % BK) return p;
  int64_t s = 1;
  if (blocks < kTargetBlocks / 2 && g.K >= 2 * kMinChunk)
    s = std::min({(kTargetBlocks + blocks - 1) / blocks, g.K / kMinChunk, kMaxSplits, kMaxScratch / out});
  else if (blocks >= kTargetBlocks / 2 && blocks < long_k_target && g.K >= kLongK)
    s = std::min({(long_k_target + blocks - 1) / blocks, g.K / kLongChunk, kMaxSplits, kMaxLongScratch / out});
  if (s < 2) return p;
  const int64_t chunk = ((g.K + s - 1) / s + BK - 1) / BK * BK;
  p.splits = (g.K + chunk - 1) / chunk;
  p.chunk = chunk;
  return p.splits < 2 ? SplitK{} : p;
}

// C's element (r, c) of batch bt from the split sums (range after range, in order): alpha sum + beta C (C not read
// when beta == 0), as the tiles' epilogue writes an unsplit sum. The device pass and its replay run this.
__host__ __device__ inline void split_sum_element(const GroupedGemm& g, const float* sums, int64_t bt, int64_t r, int64_t c) {
  const int64_t plane = g.M * g.N;
  const float* p = sums + bt * g.k_splits * plane + r * g.N + c;
  float v = p[0];
  for (int64_t s = 1; s < g.k_splits; ++s) v += p[s * plane];
  float* out = g.c_base(bt) + r * g.ldc + c;
  *out = g.beta == 0.f ? g.alpha * v : g.alpha * v + g.beta * *out;
}
// gemm_grouped.cu: that pass over every C element (a thread each) on `stream`, and its host replay
void gemm_split_sum(const GroupedGemm& g, const float* sums, void* stream);
void gemm_split_sum_replay(const GroupedGemm& g, const float* sums);

// gemm_bf16_batched's / gemm_batched's arguments as the grouped form (one group, one segment)
inline GroupedGemm grouped_from_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K,
                                        float alpha, const float* A, int64_t lda, int64_t stride_a, const float* B,
                                        int64_t ldb, int64_t stride_b, float beta, float* C, int64_t ldc,
                                        int64_t stride_c) {
  GroupedGemm g;
  g.ta = trans_a, g.tb = trans_b;
  g.groups = 1, g.per_group = batch, g.M = M, g.N = N, g.K = K, g.alpha = alpha, g.beta = beta;
  g.a.p = A, g.a.ld = lda, g.a.inner = stride_a;
  g.b.p = B, g.b.ld = ldb, g.b.inner = stride_b;
  g.c = C, g.ldc = ldc, g.c_inner = stride_c;
  return g;
}

// bf16 operands on tensor cores (cuda/gemm_bf16.cu): enqueues the products on `stream` (sm_80+). Throws
// std::invalid_argument for shapes the launch cannot cover.
void gemm_bf16_grouped(const GroupedGemm& g, void* stream);
// float32 operands and sums on the SIMT cores (cuda/gemm_grouped.cu; no TF32): the same products in float32, every
// output element's sum in k order (segment after segment), so its host replay gives the same bits.
void gemm_f32_grouped(const GroupedGemm& g, void* stream);
void gemm_f32_grouped_replay(const GroupedGemm& g);
// the cut gemm_f32_grouped makes of g along K (split_k_plan under its tiling): the plain float32 GEMM (gemm.cu) hands
// products it cuts to it
SplitK gemm_f32_grouped_split_k(const GroupedGemm& g);
// The host replay of that launch (no GPU): every block and thread stages its slots with the kernel's own code, each
// warp's quarter of the tile is accumulated from the staged (bf16-rounded, or with round false unrounded) slices in
// k order, and the epilogue writes C as the kernel does. The CUDA layer's host replays run their products with it.
void gemm_bf16_grouped_replay(const GroupedGemm& g, bool round = true);

// One block of a grouped product under tiling G (batch bt, tile origin row0 / col0): the staged value of each slot,
// segment by segment, the slices' order and the epilogue's writes. __host__ __device__: the kernels and their host
// replays run exactly this. G: BM, BN, BK, THREADS, A_LOADS, B_LOADS, VEC, a_slot, b_slot, c_slot.
// A segment's operands are picked field by field (seg), never through a reference or array indexed by the runtime
// segment: that would make the compiler copy the whole kernel parameter into local memory and read every operand
// field from there.
template <class G>
struct GroupedBlock {
  const GroupedGemm& g;
  int64_t row0, col0;
  int64_t bt, k_begin = 0, k_end = 0;  // the block's batch; its K range when split (else 0, 0: every slice)
  int64_t bo, bi;                      // bt's group and index in it
  float* C;
  // segment s's operands for this block's batch: bases, scales (null: none), leading dimensions, depth, transposes
  struct Seg {
    const float *a, *b, *sa, *sb;
    int64_t lda, ldb, K;
    bool ta, tb, a_scale_k, b_scale_k;
  };
  // block z of the launch's batches (times the K ranges when split), tile (by, bx)
  __host__ __device__ GroupedBlock(const GroupedGemm& grouped, int64_t z, int64_t by, int64_t bx)
      : g(grouped), row0(by * G::BM), col0(bx * G::BN), bt(z / grouped.k_splits) {
    if (g.k_splits > 1) {
      k_begin = (z % g.k_splits) * g.k_chunk;
      k_end = k_begin + g.k_chunk < g.K ? k_begin + g.k_chunk : g.K;
    }
    bo = bt / g.per_group, bi = bt % g.per_group;
    C = g.c + bo * g.c_outer + bi * g.c_inner;
  }
  __host__ __device__ const float* at(const GemmOperand& o) const { return o.p + bo * o.outer + bi * o.inner; }
  __host__ __device__ const float* scale_at(const GemmOperand& o) const {
    return o.scale ? o.scale + bo * o.s_outer + bi * o.s_inner : nullptr;
  }
  __host__ __device__ Seg seg(int s) const {
    Seg v;
    if (s) {
      v.a = at(g.a2), v.b = at(g.b2), v.sa = scale_at(g.a2), v.sb = scale_at(g.b2);
      v.lda = g.a2.ld, v.ldb = g.b2.ld, v.K = g.K2, v.ta = g.ta2, v.tb = g.tb2;
      v.a_scale_k = g.a2.scale_k, v.b_scale_k = g.b2.scale_k;
    } else {
      v.a = at(g.a), v.b = at(g.b), v.sa = scale_at(g.a), v.sb = scale_at(g.b);
      v.lda = g.a.ld, v.ldb = g.b.ld, v.K = g.K, v.ta = g.ta, v.tb = g.tb;
      v.a_scale_k = g.a.scale_k, v.b_scale_k = g.b.scale_k;
    }
    return v;
  }
  // Thread t's vector q (slots 4q .. 4q + 3 of a GemmStagingVec4 tiling: 4 elements consecutive in memory) of
  // segment v's slice from k0: op(A)[r][kk] of the tile, 0 outside op(A) (load_vec4: one 16-byte load where all
  // four lie inside and aligned), times the position scale where inside.
  __host__ __device__ void a_stage_vec(const Seg& v, int t, int q, int64_t k0, float* out) const {
    int r, kk;
    G::a_slot(v.ta, t, 4 * q, &r, &kk);
    const int64_t gr = row0 + r, gk = k0 + kk;
    load_vec4(v.a, v.lda, v.ta, g.M, v.K, aligned_float4(v.a, v.lda), gr, gk, out);
    if (v.sa)
      for (int j = 0; j < 4; ++j) {
        const int64_t er = gr + (v.ta ? j : 0), ek = gk + (v.ta ? 0 : j);
        if (er < g.M && ek < v.K) out[j] *= v.sa[v.a_scale_k ? ek : er];
      }
  }
  // the same for op(B) (seen transposed: N rows of K, stored depth-major unless tb): 4 elements consecutive along
  // B's rows (columns of op(B)), or along k when transposed
  __host__ __device__ void b_stage_vec(const Seg& v, int t, int q, int64_t k0, float* out) const {
    int kk, c;
    G::b_slot(v.tb, t, 4 * q, &kk, &c);
    const int64_t gk = k0 + kk, gc = col0 + c;
    load_vec4(v.b, v.ldb, !v.tb, g.N, v.K, aligned_float4(v.b, v.ldb), gc, gk, out);
    if (v.sb)
      for (int j = 0; j < 4; ++j) {
        const int64_t ec = gc + (v.tb ? 0 : j), ek = gk + (v.tb ? j : 0);
        if (ec < g.N && ek < v.K) out[j] *= v.sb[v.b_scale_k ? ek : ec];
      }
  }
  // the slice after (s, k0) in the kernel's order (segment by segment, BK deep; first: the first slice itself),
  // s == segments() past the last; split: the block's K range only (its end is K or a multiple of BK, so no slice
  // reaches into the next range)
  __host__ __device__ void next_slice(int* s, int64_t* k0, bool first) const {
    if (g.k_splits > 1) {
      *k0 = first ? k_begin : *k0 + G::BK;
      if (*k0 >= k_end) *s = g.segments();
      return;
    }
    if (!first) *k0 += G::BK;
    while (*s < g.segments() && *k0 >= g.seg_K(*s)) ++*s, *k0 = 0;
  }
  // the epilogue's write of the tile's sum v at (r, c) (split: the plain sum into the block's scratch plane)
  __host__ __device__ void store_value(int r, int c, float v) const {
    const int64_t gr = row0 + r, gc = col0 + c;
    if (gr >= g.M || gc >= g.N) return;
    if (g.k_splits > 1) {
      g.split_out[((bt * g.k_splits + k_begin / g.k_chunk) * g.M + gr) * g.N + gc] = v;
      return;
    }
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

// A grouped product's launches under tiling G: the checks, alpha == 0 (C = beta C without reading A or B), the
// split-K cut (split_k_plan: scratch for the ranges' sums, then gemm_split_sum) and grids of at most 65535 blocks
// along z each, launch(grid, run, first z) enqueuing one. `entry` names the caller in errors.
template <class G, class Launch>
void launch_grouped(const GroupedGemm& g, const char* entry, void* stream, Launch launch, int64_t long_k_target = 0) {
  const int64_t batch = g.batches();
  if (batch <= 0 || g.M <= 0 || g.N <= 0) return;
  if (g.K < 0 || g.K2 < 0) throw std::invalid_argument(std::string(entry) + ": K must be >= 0");
  GroupedGemm run = g;
  if (g.alpha == 0.f) run.K = 0, run.K2 = 0;
  const int64_t gx = G::grid_x(g.N), gy = G::grid_y(g.M);
  if (gx > 0x7fffffff || gy > 65535)
    throw std::invalid_argument(std::string(entry) + ": M = " + std::to_string(g.M) + " needs more than 65535 row tiles");
  const SplitK cut = split_k_plan(run, G::BM, G::BN, G::BK, long_k_target);
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  hostutil::StreamScratch<float> sums(cut.splits > 1 ? batch * cut.splits * g.M * g.N : 0, st, entry);
  run.k_splits = cut.splits, run.k_chunk = cut.chunk, run.split_out = sums.p;
  const int64_t blocks_z = batch * cut.splits;
  for (int64_t z0 = 0; z0 < blocks_z; z0 += 65535)
    launch(dim3(static_cast<unsigned>(gx), static_cast<unsigned>(gy), static_cast<unsigned>(blocks_z - z0 < 65535 ? blocks_z - z0 : 65535)), run, z0);
  if (cut.splits > 1) gemm_split_sum(run, sums.p, stream);
}

// The host replay of a grouped product under tiling G: every block and thread stages its slots with GroupedBlock,
// the tile is accumulated from the staged values (bf16-rounded when `round`) in k order, slice after slice, and the
// epilogue writes C as the kernels do. The tile starts NaN but for the parts the threads / warps own (G::zero_owned),
// and the staging buffers NaN per slice, so a gap in either cover shows up in C.
template <class G>
void grouped_replay(const GroupedGemm& g, bool round, int64_t long_k_target = 0) {
  const int64_t batch = g.groups * g.per_group;
  if (batch <= 0 || g.M <= 0 || g.N <= 0) return;
  GroupedGemm run = g;
  if (g.alpha == 0.f) run.K = 0, run.K2 = 0;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const SplitK cut = split_k_plan(run, G::BM, G::BN, G::BK, long_k_target);
  std::vector<float> sums(cut.splits > 1 ? batch * cut.splits * g.M * g.N : 0, nan);  // NaN: an unwritten sum shows
  run.k_splits = cut.splits, run.k_chunk = cut.chunk, run.split_out = sums.data();
  std::vector<float> As(G::BM * G::BK), Bs(G::BK * G::BN), acc(G::BM * G::BN);
  for (int64_t z = 0; z < batch * cut.splits; ++z)
    for (int64_t by = 0; by < G::grid_y(g.M); ++by)
      for (int64_t bx = 0; bx < G::grid_x(g.N); ++bx) {
        const GroupedBlock<G> blk(run, z, by, bx);
        std::fill(acc.begin(), acc.end(), nan);  // the threads' / warps' parts set to 0: a gap stays NaN
        G::zero_owned(acc.data());
        int s = 0;
        int64_t k0 = 0;
        for (blk.next_slice(&s, &k0, true); s < run.segments(); blk.next_slice(&s, &k0, false)) {
          std::fill(As.begin(), As.end(), nan);
          std::fill(Bs.begin(), Bs.end(), nan);
          const auto seg = blk.seg(s);
          for (int t = 0; t < G::THREADS; ++t) {
            // the kernel's staging, vector by vector through a_stage_vec / b_stage_vec
            static_assert(G::VEC == 4, "grouped tilings stage vectors of 4 (GemmStagingVec4)");
            float av[G::A_LOADS], bv[G::B_LOADS];
            int r, kk, c;
            for (int l = 0; l < G::A_LOADS; l += 4) blk.a_stage_vec(seg, t, l / 4, k0, &av[l]);
            for (int l = 0; l < G::B_LOADS; l += 4) blk.b_stage_vec(seg, t, l / 4, k0, &bv[l]);
            for (int l = 0; l < G::A_LOADS; ++l) {
              G::a_slot(run.seg_ta(s), t, l, &r, &kk);
              As[r * G::BK + kk] = round ? bf16_math::widen(bf16_math::round(av[l])) : av[l];
            }
            for (int l = 0; l < G::B_LOADS; ++l) {
              G::b_slot(run.seg_tb(s), t, l, &kk, &c);
              Bs[kk * G::BN + c] = round ? bf16_math::widen(bf16_math::round(bv[l])) : bv[l];
            }
          }
          // (rows / columns past C's edge: staged, never stored; not summed, which only saves host time)
          for (int r = 0; r < G::BM && blk.row0 + r < g.M; ++r)
            for (int c = 0; c < G::BN && blk.col0 + c < g.N; ++c) {
              float v = acc[r * G::BN + c];
              for (int kk = 0; kk < G::BK; ++kk) v = std::fma(As[r * G::BK + kk], Bs[kk * G::BN + c], v);
              acc[r * G::BN + c] = v;
            }
        }
        for (int t = 0; t < G::THREADS; ++t)
          for (int l = 0; l < G::C_STORES; ++l) blk.store(t, l, acc.data(), G::BN);
      }
  if (cut.splits > 1) gemm_split_sum_replay(run, sums.data());
}

}  // namespace cuda
}  // namespace xlstm
