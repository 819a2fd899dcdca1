// The split-head launch of the sLSTM / LSTM recurrences (included by cuda/recurrent.cu, inside its anonymous
// namespace: it uses RecLaunch, FwdArgs, BwdArgs and the cells). The rows launch there gives a block one head and <= 4
// batch rows, so a model with few heads and a small batch (G1: one head of 768 units, B 16) runs on 4 blocks of a
// 132-SM GPU, each streaming its head's whole R every step. Here the head's units are split over P blocks that run
// at the same time (a cooperative launch) and meet at a grid barrier once per step, as in FlashRNN:
//   block (head hd, part p) owns units [u0, u0+nu) of the head and their 4·nu gate columns k = g·DH + u, for ALL
//   batch rows; its R columns stay in shared memory for the whole sequence (forward: transposed, [4nu][DH] with a
//   padded stride, for float4 loads along j; backward: [DH][4nu] with a padded row stride, float4 loads along k).
//   forward, step t: (0) stage h_{t-1} [B][DH] of the head (written by every block at t-1: read through L2) into
//     shared memory; (1) a thread per (pair of rows, own column) computes p = x + h_{t-1}·R[:, k] + bias (j = 0..DH-1 in
//     order: the rows launch's and the CPU's sum) or, in the lane form (DH <= 768, 4nu <= 32: the kernel
//     rec_split_forward_kernel<Cell, M> with M > 0), each warp keeps R[j, c] of its columns for j = lane + 32i in registers, the lanes'
//     partial sums meet in shared memory and a thread per (row, column) adds them in lane order; (2) a thread per
//     (row, own unit) runs the cell, writes y, states, gates; grid barrier.
//   backward, step t (reverse): (A) a thread per (row, own unit) runs the cell backward with ∂h = dy + Σ_q
//     part_q[b][u] (the partial recurrent gradients every block q of the head wrote at step t+1, summed in q order;
//     dstate_final at t = S-1), writes dx and keeps dp [B][4nu], ∂c, ∂n in shared memory; (B) a thread per
//     (pair of rows, unit j of the head) writes this block's partial Σ_{own k} R[j, k] dp[k] into part (double-buffered by
//     step parity, so step t's writes never meet step t+1's reads) or, in the lane form (4nu <= 32, DH <= 768: the
//     kernel rec_split_backward_kernel<Cell, J> with J > 0), a thread per unit j keeps R[j, own k] in registers and
//     reads only dp (the same sums bit for bit); grid barrier. dR / dbias: the rows launch's deterministic passes, after.
// No atomics: results are deterministic. The phase bodies are __host__ __device__ (SplitFwd / SplitBwd), so the
// host replay (recurrent.cu's *_emulate entries) runs the same code block by block, phase by phase, step by step.
#pragma once

#include <cstring>

constexpr int kSplitThreads = 256;
constexpr int64_t kSplitMaxB = 64;  // batch rows a split block holds (h_{t-1} of the head in shared memory)
constexpr int kSplitBatch = 16;     // loads a thread keeps in flight when it reads other blocks' results (L2)
constexpr int kSplitSumBatch = 32;  // the same for the backward's sums of the P partials (the step's critical path)
// The forward's "lane" form of the gate products (SplitFwd::lane_*): R in registers, j split over a warp's lanes
constexpr int kLaneWarps = kSplitThreads / 32;  // 8
constexpr int kLaneCols = 4;                     // own columns per warp at most: the lane form needs 4nu <= 32
constexpr int kLaneRowChunk = 16;                // rows whose lane partials are staged in shared memory at once
constexpr int kLaneRowGroup = 4;                 // rows accumulated together (each R register used 4 times per load)
constexpr int kLaneRedStride = 33;               // one output's 32 lane partials, padded (conflict-free both ways)
constexpr int kLaneStageBatch = 8;               // the lane form's loads in flight in stage_phase (registers: R's)

// The backward's lane form (SplitBwd::lane_*): thread tid keeps R[j][own columns] for j = tid + 256 jj (jj < J) in
// registers, so the partial products read only dp (broadcast) from shared memory
constexpr int kLaneBwdCols = 32;                 // own columns at most (4nu <= 32)

// The bf16 tensor-core form (recurrent_tc.cuh): each warp's output tiles are staged through shared memory rows of
// kTcScratchLd floats (a multiple of 4: wmma's float leading dimension)
constexpr int64_t kTcScratchLd = 20;

// rows of R per thread (J) of the backward's lane form, 0 where it does not apply
inline int lane_rows_bwd(int64_t DH, int64_t nu) {
  if (4 * nu > kLaneBwdCols) return 0;
  for (int J : {1, 2, 3})
    if (DH <= int64_t{kSplitThreads} * J) return J;
  return 0;
}

// j slots per lane (j = lane + 32 i, i < M) of the lane form for head size DH and nu units per block; 0 where it
// does not apply (then the gate products read R from shared memory). The kernel is instantiated for these M.
inline int lane_slots(int64_t DH, int64_t nu) {
  if (4 * nu > kLaneWarps * kLaneCols) return 0;
  for (int M : {8, 16, 24})  // M = 32 (R's 128 registers) spills: DH > 768 reads R from shared memory
    if (DH <= 32 * M) return M;
  return 0;
}

struct SplitLaunch {
  RecLaunch L;
  int64_t P;       // blocks per head
  int64_t nu;      // units per block (the last block of a head may own fewer)
  int64_t blocks;  // NH * P
  bool vec4;       // forward: h_{t-1} staged as float4 (DH and H multiples of 4, states / state0 16-byte aligned)
  int lane_m;      // forward: the lane form's j slots per lane (R in registers), 0: R in shared memory
  int lane_j;      // backward: the lane form's rows of R per thread (registers), 0: R in shared memory
  int tc;          // the bf16 tensor-core form (recurrent_tc.cuh): own gate columns padded to 16·tc (1 or 2), 0: not it
  bool gather = false;  // the tc backward's exchange: false, partial ∂h (reduce-scatter); true, dp (all-gather:
                        // recurrent_gather.cuh)
  // ---- block -> (head, first unit, units owned)
  __host__ __device__ void block_units(int64_t blk, int64_t* hd, int64_t* u0, int64_t* n) const {
    *hd = blk / P;
    *u0 = (blk - *hd * P) * nu;
    const int64_t left = L.DH - *u0;
    *n = left < nu ? (left > 0 ? left : 0) : nu;
  }
  // own column c in [0, 4n) -> head column k = g*DH + u0 + c % n
  __host__ __device__ int64_t head_col(int64_t u0, int64_t n, int64_t c) const { return (c / n) * L.DH + u0 + c % n; }
  // backward: R row j of the own columns at Rs[j][c], row stride ldr: a multiple of 4 with ldr/4 odd (a quarter
  // warp's float4 loads of consecutive rows hit distinct banks)
  __host__ __device__ int64_t ldr() const { return nu % 2 ? 4 * nu : 4 * nu + 4; }
  // forward: own column c of R at Rt[c][j], row stride ldj ≡ 4 (mod 32) floats (a quarter warp's float4 loads of
  // consecutive columns hit distinct banks); h_{t-1} rows at stride ldh (float4-aligned)
  __host__ __device__ int64_t ldj() const { return (L.DH + 31) / 32 * 32 + 4; }
  __host__ __device__ int64_t ldh() const { return (L.DH + 3) / 4 * 4; }
  // shared memory (floats), the float4-read parts at multiples of 4 floats: forward: Rt [4nu][ldj], hprev
  // [B][ldh], pre [B][4nu], own units' carried states (c, n, m) [3][B][nu]; backward: R columns [DH][ldr], dp [B][4nu], dc, dn [B][nu]
  __host__ __device__ int64_t rt_floats() const { return 4 * nu * ldj(); }
  __host__ __device__ int64_t r_floats() const { return L.DH * ldr(); }
  // lane form: no Rt; the lane partials red [kLaneWarps][kLaneRowChunk * kLaneCols][kLaneRedStride] at the end
  __host__ __device__ int64_t red_floats() const { return int64_t{kLaneWarps} * kLaneRowChunk * kLaneCols * kLaneRedStride; }
  __host__ __device__ int64_t fwd_floats() const {
    if (tc) return tc_halves_floats(tc_fwd_halves()) + tc_red_floats() + L.B * 4 * nu + 3 * L.B * nu;
    return (lane_m ? red_floats() : rt_floats()) + L.B * ldh() + L.B * 4 * nu + 3 * L.B * nu;
  }
  __host__ __device__ int64_t bwd_r_floats() const { return lane_j ? 0 : r_floats(); }  // the lane form: R in registers
  __host__ __device__ int64_t bwd_floats() const {
    if (tc && gather) return tc_halves_floats(tc_bwd_halves()) + gather_red_floats() + 2 * L.B * nu;
    if (tc) return tc_halves_floats(tc_bwd_halves()) + tc_scratch_floats() + 2 * L.B * nu;
    return bwd_r_floats() + L.B * 4 * nu + 2 * L.B * nu;
  }
  // ---- the tc form's shared memory: bf16 arrays first (each a multiple of 16 halves: wmma's 32-byte pointers), then
  // floats. Forward: R's own columns rs [16·kt][ldrs], h_{t-1} hb [16·mt][ldhb] (bf16); the warps' partial sums red
  // [8][16·mt][ldred], pre, carried (floats). Backward: rs, dp db [16·mt][lddp] (bf16); per-warp output tiles
  // scratch [8][16][kTcScratchLd], dc, dn (floats). Leading dimensions: multiples of 8 halves / 4 floats (wmma), +8 / +4
  // off a multiple of 32 banks.
  // the tc backward's sums of the other blocks' partials: each item's P partials in R contiguous ranges, a thread per
  // (range, item), the ranges' sums then added in order (tc_sum_phase): fewer dependent L2 round trips on each step's
  // critical path where the items leave threads idle (G1: 96 items per block of 256 threads, R = 2). R: the largest
  // power of two <= 8 with R·B·nu <= kSplitThreads and R <= P.
  __host__ __device__ int64_t tc_sum_parts() const {
    int64_t r = 1;
    while (r < 8 && 2 * r * L.B * nu <= kSplitThreads && 2 * r <= P) r *= 2;
    return r;
  }
  __host__ __device__ int64_t tc_kt() const { return (L.DH + 15) / 16; }  // 16-unit tiles of the head's j
  __host__ __device__ int64_t tc_mt() const { return (L.B + 15) / 16; }   // 16-row tiles of the batch
  __host__ __device__ int64_t tc_wp() const { return 16 * int64_t{tc}; }   // own columns, padded
  __host__ __device__ int64_t ldrs() const { return tc_wp() + 8; }
  __host__ __device__ int64_t ldhb() const { return 16 * tc_kt() + 8; }
  __host__ __device__ int64_t ldred() const { return tc_wp() + 4; }
  __host__ __device__ int64_t lddp() const { return tc_wp() + 8; }
  __host__ __device__ int64_t rs_halves() const { return 16 * tc_kt() * ldrs(); }
  __host__ __device__ int64_t tc_fwd_halves() const { return rs_halves() + 16 * tc_mt() * ldhb(); }
  __host__ __device__ int64_t tc_bwd_halves() const { return gather ? gather_halves() : rs_halves() + 16 * tc_mt() * lddp(); }
  // the gather backward (recurrent_gather.cuh): R's rows of the own units over all 4DH head columns rg [16·ut][ldg],
  // the gathered dp of the head dg [16·mt][ldg] (bf16), the warps' partial sums red [8][16·mt][16·ut + 4] (floats)
  __host__ __device__ int64_t tc_ut() const { return (nu + 15) / 16; }          // 16-unit tiles of the own units
  __host__ __device__ int64_t gather_kt() const { return (4 * L.DH + 15) / 16; }  // 16-column tiles of the head's 4DH
  __host__ __device__ int64_t ldg() const { return 16 * gather_kt() + 8; }
  __host__ __device__ int64_t ldgred() const { return 16 * tc_ut() + 4; }
  __host__ __device__ int64_t gather_halves() const { return 16 * (tc_ut() + tc_mt()) * ldg(); }
  __host__ __device__ int64_t gather_red_floats() const { return 8 * 16 * tc_mt() * ldgred(); }
  // ---- the tensor-core forms' wmma operand tiles: offsets (halves into the bf16 arrays, floats into the float arrays)
  // that the kernels pass to load_matrix_sync / store_matrix_sync, the arrays' bases in the block's shared memory,
  // and the host check of wmma's rules on them (tc_wmma_errors: 32-byte aligned tiles, leading dimensions multiples of
  // 8 halves / 4 floats, every tile inside its array)
  __host__ __device__ int64_t hb_base() const { return rs_halves(); }                                  // forward
  __host__ __device__ int64_t db_base() const { return gather ? 16 * tc_ut() * ldg() : rs_halves(); }  // backward
  // the 16 x 16 tile (r, c) of a row-major array with leading dimension ld (the kernels call it with their hoisted ld
  // where the named helpers below cost registers: the tc backward's register form sits at 255)
  __host__ __device__ static int64_t tile16(int64_t r, int64_t c, int64_t ld) { return r * 16 * ld + c * 16; }
  __host__ __device__ int64_t hb_tile(int64_t mt, int64_t kt) const { return tile16(mt, kt, ldhb()); }
  __host__ __device__ int64_t rs_tile(int64_t kt, int64_t c) const { return tile16(kt, c, ldrs()); }
  __host__ __device__ int64_t red_tile(int64_t wp, int64_t mt, int64_t c) const { return (wp * 16 * tc_mt() + mt * 16) * ldred() + c * 16; }
  __host__ __device__ int64_t db_tile(int64_t mt, int64_t c) const { return tile16(mt, c, lddp()); }
  __host__ __device__ static int64_t scratch_tile(int64_t wp) { return wp * 16 * kTcScratchLd; }
  __host__ __device__ int64_t dg_tile(int64_t mt, int64_t kt) const { return tile16(mt, kt, ldg()); }
  __host__ __device__ int64_t rg_tile(int64_t ut, int64_t kt) const { return tile16(ut, kt, ldg()); }
  __host__ __device__ int64_t gred_tile(int64_t wp, int64_t mt, int64_t ut) const { return (wp * 16 * tc_mt() + mt * 16) * ldgred() + ut * 16; }
  // the exchange buffer of dp (bf16): dpx[buf][b][hd][k], k < 4DH the head's columns, buf = t & 1
  __host__ __device__ int64_t dpx_off(int64_t buf, int64_t b, int64_t h, int64_t k) const { return ((buf * L.B + b) * L.NH + h) * 4 * L.DH + k; }
  int64_t dpx_halves() const { return 2 * L.B * L.NH * 4 * L.DH; }
  __host__ __device__ static int64_t tc_halves_floats(int64_t h) { return (h / 2 + 7) / 8 * 8; }
  __host__ __device__ int64_t tc_red_floats() const { return 8 * 16 * tc_mt() * ldred(); }
  __host__ __device__ int64_t tc_scratch_floats() const { return 8 * 16 * kTcScratchLd; }
  // partial recurrent gradients: part[buf][blk][b][j], buf = t & 1
  __host__ __device__ int64_t part_off(int64_t buf, int64_t blk, int64_t b, int64_t j) const {
    return ((buf * blocks + blk) * L.B + b) * L.DH + j;
  }
  int64_t part_floats() const { return 2 * blocks * L.B * L.DH; }
};

// P blocks per head for `capacity` co-resident blocks: as many as fit (at most one per unit), units spread evenly.
inline bool split_plan(const RecLaunch& L, int64_t capacity, SplitLaunch* s) {
  if (L.B > kSplitMaxB) return false;
  const int64_t per_head = capacity / L.NH;
  if (per_head < 2) return false;
  s->L = L;
  s->nu = (L.DH + std::min(per_head, L.DH) - 1) / std::min(per_head, L.DH);
  s->P = (L.DH + s->nu - 1) / s->nu;
  s->blocks = L.NH * s->P;
  s->vec4 = L.DH % 4 == 0 && L.H % 4 == 0;  // the device launch also needs 16-byte aligned states / state0
  s->lane_m = 0;                             // the forward's launch decides (lane_slots)
  s->lane_j = 0;                             // the backward's launch decides (lane_rows_bwd)
  s->tc = 0;                                 // the bf16 form's launches decide (tc_tiles)
  return s->P >= 2;
}

// L2-coherent load of data other blocks wrote before the last grid barrier (L1 is not coherent across SMs).
__host__ __device__ __forceinline__ float load_l2(const float* p) {
#ifdef __CUDA_ARCH__
  return __ldcg(p);
#else
  return *p;
#endif
}

// 16 bytes from shared memory as a float4 (p 16-byte aligned; on the host a memcpy, so the replay's compiler sees
// the float stores it reads)
__host__ __device__ __forceinline__ float4 load4(const float* p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const float4*>(p);
#else
  float4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}

// acc0 += Σ x0[j]·r[j] and acc1 += Σ x1[j]·r[j] over j < n (a multiple of 4; r, x0, x1 16-byte aligned shared
// memory), each one fmaf chain in j order, four j per float4 load
__host__ __device__ __forceinline__ void dot2_vec4(const float* r, const float* x0, const float* x1, int64_t n, float& acc0,
                                                   float& acc1) {
  for (int64_t j = 0; j < n; j += 4) {
    const float4 rv = load4(r + j), a = load4(x0 + j), b = load4(x1 + j);
    acc0 = fmaf(a.x, rv.x, acc0);
    acc1 = fmaf(b.x, rv.x, acc1);
    acc0 = fmaf(a.y, rv.y, acc0);
    acc1 = fmaf(b.y, rv.y, acc1);
    acc0 = fmaf(a.z, rv.z, acc0);
    acc1 = fmaf(b.z, rv.z, acc1);
    acc0 = fmaf(a.w, rv.w, acc0);
    acc1 = fmaf(b.w, rv.w, acc1);
  }
}

// 16 bytes of global memory as a float4: other blocks' results of this kernel through L2 (l2), or read-only input
__host__ __device__ __forceinline__ float4 load4_global(const float* p, bool l2) {
#ifdef __CUDA_ARCH__
  return l2 ? __ldcg(reinterpret_cast<const float4*>(p)) : *reinterpret_cast<const float4*>(p);
#else
  (void)l2;
  return load4(p);
#endif
}
__host__ __device__ __forceinline__ void store4(float* p, float4 v) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<float4*>(p) = v;
#else
  std::memcpy(p, &v, sizeof v);
#endif
}

// A thread's items i = tid, tid + nt, ... of an [outer][inner] index space as (outer o, inner in), advanced without
// a division per item (64-bit divisions were a third of the forward step's instructions)
struct StridedItems {
  int64_t o, in, inner, qa, ra;
  __host__ __device__ StridedItems(int tid, int nt, int64_t inner_) : inner(inner_) {
    o = tid / inner;
    in = tid - o * inner;
    qa = nt / inner;
    ra = nt - qa * inner;
  }
  __host__ __device__ void next() {
    in += ra;
    o += qa;
    if (in >= inner) {
      in -= inner;
      ++o;
    }
  }
};

// A block's columns of its head's R [DH][G] into shared memory Rt [4nu][ldj] (own column c, source unit j at
// c*ldj + j), for the forward's float4 dot products along j.
__host__ __device__ inline void stage_r_transposed(const SplitLaunch& S, const float* R, int64_t hd, int64_t u0, int64_t n, float* Rt,
                                                   int tid, int nt) {
  const int64_t DH = S.L.DH, G = S.L.G, ldj = S.ldj();
  const float* Rg = R + hd * DH * G;
  for (int64_t i = tid; i < DH * 4 * n; i += nt) {
    const int64_t j = i / (4 * n), c = i % (4 * n);
    Rt[c * ldj + j] = Rg[j * G + S.head_col(u0, n, c)];
  }
}

// A block's columns of its head's R [DH][G] into shared memory Rs [DH][ldr] (own column c at position c).
__host__ __device__ inline void stage_r_columns(const SplitLaunch& S, const float* R, int64_t hd, int64_t u0, int64_t n, float* Rs,
                                                int tid, int nt) {
  const int64_t DH = S.L.DH, G = S.L.G;
  const float* Rg = R + hd * DH * G;
  for (int64_t i = tid; i < DH * 4 * n; i += nt) {
    const int64_t j = i / (4 * n), c = i % (4 * n);
    Rs[j * S.ldr() + c] = Rg[j * G + S.head_col(u0, n, c)];
  }
}

template <class Cell>
struct SplitFwd {
  static constexpr int NS = Cell::kStates;
  SplitLaunch S;
  FwdArgs a;
  int64_t hd, u0, n;
  float *Rt, *red, *hprev, *pre, *carried;
  uint16_t *rs = nullptr, *hb = nullptr;  // the tc form's bf16 arrays (smb: on the device the start of shared memory)
  __host__ __device__ SplitFwd(const SplitLaunch& s, const FwdArgs& args, int64_t blk, float* sm, uint16_t* smb = nullptr)
      : S(s), a(args) {
    S.block_units(blk, &hd, &u0, &n);
    if (S.tc) {  // the bf16 tensor-core form: R and h_{t-1} as bf16, red its warps' partial sums
      rs = smb;
      hb = smb + S.hb_base();
      Rt = hprev = nullptr;
      red = sm;
      pre = sm + S.tc_red_floats();
      carried = pre + S.L.B * 4 * S.nu;
      return;
    }
    // the lane form keeps R in registers: red (its partials) takes Rt's place
    Rt = S.lane_m ? nullptr : sm;
    red = S.lane_m ? sm : nullptr;
    hprev = sm + (S.lane_m ? S.red_floats() : S.rt_floats());
    pre = hprev + S.L.B * S.ldh();
    carried = pre + S.L.B * 4 * S.nu;
  }
  // own unit lu's state s (1..NS-1) of row b entering the current step: this block wrote it at the step before
  // (shared memory; state0 or 0 at t = 0), so the cell needs no round trip to L2 for it
  __host__ __device__ float& carried_state(int s, int64_t b, int64_t lu) const { return carried[((s - 1) * S.L.B + b) * S.nu + lu]; }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    if (t > 0) return load_l2(a.states + S.L.state_off(s, hd, t - 1, b, u));
    return a.state0 ? a.state0[S.L.state0_off(s, hd, b, u)] : 0.0f;
  }
  __host__ __device__ void init(int tid, int nt) const {
    if (!S.lane_m && !S.tc) stage_r_transposed(S, a.R, hd, u0, n, Rt, tid, nt);
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, lu = i % n;
      for (int s = 1; s < NS; ++s) carried_state(s, b, lu) = prev(s, 0, b, u0 + lu);
    }
  }
  // h_{t-1} value(s) into the staged rows: floats (hprev), or in the tc form bf16 (hb, rounded to nearest even)
  __host__ __device__ void put_h(int32_t off, float v) const {
    if (S.tc) hb[off] = bf16_math::round(v);
    else hprev[off] = v;
  }
  __host__ __device__ void put_h4(int32_t off, float4 v) const {
    if (!S.tc) return store4(hprev + off, v);
    hb[off] = bf16_math::round(v.x);
    hb[off + 1] = bf16_math::round(v.y);
    hb[off + 2] = bf16_math::round(v.z);
    hb[off + 3] = bf16_math::round(v.w);
  }
  // (0) h_{t-1} of the whole head, kSplitBatch loads in flight per thread (they come from L2: loaded one at a time,
  // each store to shared memory waiting for its load, the stage took a third of the step)
  template <int Batch = kSplitBatch>
  __host__ __device__ void stage_phase(int64_t t, int tid, int nt) const {
    const int64_t ldh = S.tc ? S.ldhb() : S.ldh();
    if (S.vec4) {  // four units per load: one round trip to L2 per thread for G1's 16 x 768
      for (StridedItems it(tid, nt, S.L.DH / 4); it.o < S.L.B;) {
        float4 v[Batch];
        int32_t dst[Batch];  // shared-memory offsets (< 2^31 floats)
        for (int q = 0; q < Batch; ++q) {
          const bool ok = it.o < S.L.B;
          const int64_t u = 4 * it.in;
          if (!ok) v[q] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          else if (t > 0) v[q] = load4_global(a.states + S.L.state_off(0, hd, t - 1, it.o, u), true);
          else v[q] = a.state0 ? load4_global(a.state0 + S.L.state0_off(0, hd, it.o, u), false) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          dst[q] = ok ? static_cast<int32_t>(it.o * ldh + u) : -1;
          it.next();
        }
        for (int q = 0; q < Batch; ++q)
          if (dst[q] >= 0) put_h4(dst[q], v[q]);
      }
      return;
    }
    for (StridedItems it(tid, nt, S.L.DH); it.o < S.L.B;) {
      float v[Batch];
      int32_t dst[Batch];  // shared-memory offsets (< 2^31 floats)
      for (int q = 0; q < Batch; ++q) {
        const bool ok = it.o < S.L.B;
        v[q] = ok ? prev(0, t, it.o, it.in) : 0.0f;
        dst[q] = ok ? static_cast<int32_t>(it.o * ldh + it.in) : -1;
        it.next();
      }
      for (int q = 0; q < Batch; ++q)
        if (dst[q] >= 0) put_h(dst[q], v[q]);
    }
  }
  // (1) own gate columns, a thread per (pair of rows, column): each R element read from shared memory serves both
  // rows' sums (each still one fmaf chain over j in order), read four j at a time (float4: a third of the loads)
  __host__ __device__ void gates_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = S.L.DH, w = 4 * n, pairs = (S.L.B + 1) / 2, ldh = S.ldh(), DH4 = DH / 4 * 4;
    for (int64_t i = tid; i < pairs * w; i += nt) {
      const int64_t b = 2 * (i / w), c = i % w, k = S.head_col(u0, n, c);
      const bool two = b + 1 < S.L.B;
      const float* h0 = hprev + b * ldh;
      const float* h1 = two ? h0 + ldh : h0;
      const float* rc = Rt + c * S.ldj();
      float acc0 = 0.0f, acc1 = 0.0f;
      dot2_vec4(rc, h0, h1, DH4, acc0, acc1);
      for (int64_t j = DH4; j < DH; ++j) {
        acc0 = fmaf(h0[j], rc[j], acc0);
        acc1 = fmaf(h1[j], rc[j], acc1);
      }
      for (int64_t q = 0; q < (two ? 2 : 1); ++q) {
        const int64_t off = S.L.x_off(hd, b + q, t, k);
        const float p = a.x[off] + (q ? acc1 : acc0) + a.bias[S.L.gate_col(hd, k)];
        if constexpr (NS == 4) a.gates[off] = p;  // the LSTM saves its activations instead (cell_phase)
        pre[(b + q) * w + c] = p;
      }
    }
  }
  // ---- (1) in the lane form: warp wp owns columns c = wp + 8 cc (cc < kLaneCols, c < 4n); its lane l keeps
  // R[j][c] for j = l + 32 i (i < M) in registers r[cc * M + i] for the whole sequence (0 outside the head / the
  // block's columns). Per chunk of kLaneRowChunk rows: (1a) each lane's partial Σ_i h[b][l + 32 i]·R[l + 32 i][c]
  // (i in order) for its rows and columns into red; (1b) a thread per (row, column) adds the 32 lane partials in lane
  // order and writes p = x + sum + bias as gates_phase does. The sums differ from the CPU's j order (tolerance).
  template <int M>
  __host__ __device__ void lane_init(int tid, float* r) const {
    const int wp = tid / 32, l = tid % 32;
    const float* Rg = a.R + hd * S.L.DH * S.L.G;
    XLSTM_UNROLL for (int cc = 0; cc < kLaneCols; ++cc) {
      const int64_t c = wp + kLaneWarps * cc;
      XLSTM_UNROLL for (int i = 0; i < M; ++i) {
        const int64_t j = l + 32 * i;
        r[cc * M + i] = c < 4 * n && j < S.L.DH ? Rg[j * S.L.G + S.head_col(u0, n, c)] : 0.0f;
      }
    }
  }
  template <int M>
  __host__ __device__ void lane_partials(int64_t b0, int rows, int tid, const float* r) const {
    const int wp = tid / 32, l = tid % 32;
    const int64_t ldh = S.ldh();
    float* rw = red + int64_t{wp} * kLaneRowChunk * kLaneCols * kLaneRedStride;
    for (int g = 0; g < rows; g += kLaneRowGroup) {
      float acc[kLaneRowGroup * kLaneCols];
      XLSTM_UNROLL for (int q = 0; q < kLaneRowGroup * kLaneCols; ++q) acc[q] = 0.0f;
      XLSTM_UNROLL for (int i = 0; i < M; ++i) {
        const int64_t j = l + 32 * i;
        float hv[kLaneRowGroup];
        XLSTM_UNROLL for (int q = 0; q < kLaneRowGroup; ++q) hv[q] = j < S.L.DH && g + q < rows ? hprev[(b0 + g + q) * ldh + j] : 0.0f;
        XLSTM_UNROLL for (int q = 0; q < kLaneRowGroup; ++q)
          XLSTM_UNROLL for (int cc = 0; cc < kLaneCols; ++cc) acc[q * kLaneCols + cc] = fmaf(hv[q], r[cc * M + i], acc[q * kLaneCols + cc]);
      }
      XLSTM_UNROLL for (int q = 0; q < kLaneRowGroup; ++q)
        XLSTM_UNROLL for (int cc = 0; cc < kLaneCols; ++cc)
          if (g + q < rows) rw[((g + q) * kLaneCols + cc) * kLaneRedStride + l] = acc[q * kLaneCols + cc];
    }
  }
  __host__ __device__ void lane_outputs(int64_t t, int64_t b0, int rows, int tid) const {
    const int wp = tid / 32, l = tid % 32;
    const int64_t w = 4 * n;
    const float* rw = red + int64_t{wp} * kLaneRowChunk * kLaneCols * kLaneRedStride;
    for (int o = l; o < rows * kLaneCols; o += 32) {
      const int q = o / kLaneCols, cc = o % kLaneCols;
      const int64_t c = wp + kLaneWarps * cc, b = b0 + q;
      if (c >= w) continue;
      float sum = 0.0f;
      for (int s = 0; s < 32; ++s) sum += rw[o * kLaneRedStride + s];
      const int64_t k = S.head_col(u0, n, c), off = S.L.x_off(hd, b, t, k);
      const float p = a.x[off] + sum + a.bias[S.L.gate_col(hd, k)];
      if constexpr (NS == 4) a.gates[off] = p;  // the LSTM saves its activations instead (cell_phase)
      pre[b * w + c] = p;
    }
  }
  // (2) own units: the cell (Hx: the tc form, which also writes h_t as bf16 into its exchange buffer a.hx)
  template <bool Hx = false>
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    const int64_t w = 4 * n;
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, lu = i % n, u = u0 + lu;
      const float* pr = pre + b * w;
      float h;
      if constexpr (NS == 4) {
        float c, nn, m;
        Cell::forward(pr[lu], pr[n + lu], pr[2 * n + lu], pr[3 * n + lu], carried_state(1, b, lu), carried_state(2, b, lu), carried_state(3, b, lu), &h, &c, &nn, &m);
        carried_state(1, b, lu) = c;
        carried_state(2, b, lu) = nn;
        carried_state(3, b, lu) = m;
        a.states[S.L.state_off(1, hd, t, b, u)] = c;
        a.states[S.L.state_off(2, hd, t, b, u)] = nn;
        a.states[S.L.state_off(3, hd, t, b, u)] = m;
      } else {
        const int64_t DH = S.L.DH;
        float c, gi, gf, gz, go;
        Cell::forward_act(pr[lu], pr[n + lu], pr[2 * n + lu], pr[3 * n + lu], carried_state(1, b, lu), &h, &c, &gi, &gf, &gz, &go);
        carried_state(1, b, lu) = c;
        a.states[S.L.state_off(1, hd, t, b, u)] = c;
        a.gates[S.L.x_off(hd, b, t, u)] = gi;
        a.gates[S.L.x_off(hd, b, t, DH + u)] = gf;
        a.gates[S.L.x_off(hd, b, t, 2 * DH + u)] = gz;
        a.gates[S.L.x_off(hd, b, t, 3 * DH + u)] = go;
      }
      a.states[S.L.state_off(0, hd, t, b, u)] = h;
      a.y[S.L.y_off(hd, b, t, u)] = h;
      if constexpr (Hx) a.hx[((t & 1) * S.L.B + b) * S.L.H + hd * S.L.DH + u] = bf16_math::round(h);
    }
  }
};

template <class Cell>
struct SplitBwd {
  static constexpr int NS = Cell::kStates;
  SplitLaunch S;
  BwdArgs a;
  float* part;
  int64_t blk, hd, u0, n;
  float *Rs, *dp, *dc, *dn;
  uint16_t *rs = nullptr, *db = nullptr;  // the tc form's bf16 arrays (smb: on the device the start of shared memory)
  float* scratch = nullptr;               // the tc form's per-warp output tiles
  __host__ __device__ SplitBwd(const SplitLaunch& s, const BwdArgs& args, float* part_, int64_t b, float* sm, uint16_t* smb = nullptr)
      : S(s), a(args), part(part_), blk(b) {
    S.block_units(blk, &hd, &u0, &n);
    if (S.tc) {  // the bf16 tensor-core form: R's own columns and dp as bf16 (gather: R's own rows, the head's dp)
      rs = smb;
      db = smb + S.db_base();
      Rs = dp = nullptr;
      scratch = sm;
      dc = sm + (S.gather ? S.gather_red_floats() : S.tc_scratch_floats());
      dn = dc + S.L.B * S.nu;
      return;
    }
    Rs = S.lane_j ? nullptr : sm;
    dp = sm + S.bwd_r_floats();
    dc = dp + S.L.B * 4 * S.nu;
    dn = dc + S.L.B * S.nu;
  }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    return S.L.prev_state(a.states, a.state0, s, hd, t, b, u);
  }
  // the recurrent part of ∂h for (row b, unit u) entering step t: dstate_final at t = S-1, else the partials of t+1
  template <int Batch = kSplitSumBatch>
  __host__ __device__ float dh_rec(int64_t t, int64_t b, int64_t u) const {
    if (t == S.L.S - 1) return a.dfinal ? a.dfinal[S.L.state0_off(0, hd, b, u)] : 0.0f;
    return sum_partials<Batch>((t + 1) & 1, b, u);
  }
  // Σ_q part[buf][block q of the head][b][u] over q in [q_begin, q_end) (default: every block), q in order;
  // kSplitSumBatch loads in flight (one at a time, the P loads from L2 dominated the backward step)
  template <int Batch = kSplitSumBatch>
  __host__ __device__ float sum_partials(int64_t buf, int64_t b, int64_t u, int64_t q_begin = 0, int64_t q_end = -1) const {
    if (q_end < 0) q_end = S.P;
    float acc = 0.0f;
    for (int64_t q0 = q_begin; q0 < q_end; q0 += Batch) {
      float v[Batch];
      for (int q = 0; q < Batch; ++q) v[q] = q0 + q < q_end ? load_l2(part + S.part_off(buf, hd * S.P + q0 + q, b, u)) : 0.0f;
      for (int q = 0; q < Batch; ++q)
        if (q0 + q < q_end) acc += v[q];
    }
    return acc;
  }
  // the gather form: (row b, own unit lu)'s recurrent ∂h, the 8 warps' partial products in warp order
  __host__ __device__ float gather_summed(int64_t b, int64_t lu) const {
    float acc = 0.0f;
    for (int wp = 0; wp < 8; ++wp) acc += scratch[S.gred_tile(wp, 0, 0) + b * S.ldgred() + lu];
    return acc;
  }
  // the tc form: item i's recurrent ∂h from the sum phase's range sums (scratch[p·items + i], p in order)
  __host__ __device__ float tc_summed(int64_t i) const {
    const int64_t items = S.L.B * n, R = S.tc_sum_parts();
    float acc = 0.0f;
    for (int64_t p = 0; p < R; ++p) acc += scratch[p * items + i];
    return acc;
  }
  __host__ __device__ void init(int tid, int nt) const {
    if (!S.lane_j && !S.tc) stage_r_columns(S, a.R, hd, u0, n, Rs, tid, nt);
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, u = u0 + i % n;
      dc[i] = a.dfinal ? a.dfinal[S.L.state0_off(1, hd, b, u)] : 0.0f;
      dn[i] = (NS == 4 && a.dfinal) ? a.dfinal[S.L.state0_off(2, hd, b, u)] : 0.0f;
    }
  }
  // The inputs of own item i's (row b = i / n, unit u = u0 + i % n) cell backward at step t that come from the call's
  // inputs, not from other blocks: gate pre-activations / activations, dy, the states at t and t-1. ItemLoad reads
  // each where the cell backward uses it (cell_phase); ItemIn holds them read ahead (item_in: the tc form loads them
  // before the grid barrier that precedes step t).
  struct ItemLoad {
    const SplitBwd* g;
    int64_t t, b, u;
    __host__ __device__ float gate(int q) const { return g->a.gates[g->S.L.x_off(g->hd, b, t, q * g->S.L.DH + u)]; }
    __host__ __device__ float dy() const { return g->a.dy[g->S.L.y_off(g->hd, b, t, u)]; }
    __host__ __device__ float state(int s) const { return g->a.states[g->S.L.state_off(s, g->hd, t, b, u)]; }  // at t
    __host__ __device__ float prev(int s) const { return g->prev(s, t, b, u); }                                   // at t-1
  };
  struct ItemIn {
    float p[4], dy_, st[4], pr[4];
    __host__ __device__ float gate(int q) const { return p[q]; }
    __host__ __device__ float dy() const { return dy_; }
    __host__ __device__ float state(int s) const { return st[s]; }
    __host__ __device__ float prev(int s) const { return pr[s]; }
  };
  __host__ __device__ ItemIn item_in(int64_t t, int64_t i) const {
    const ItemLoad l{this, t, i / n, u0 + i % n};
    ItemIn v;
    for (int q = 0; q < 4; ++q) v.p[q] = l.gate(q);
    v.dy_ = l.dy();
    v.st[0] = v.pr[0] = 0.0f;  // h: the sLSTM's own at t; neither is read otherwise
    for (int s = 1; s < NS; ++s) v.st[s] = l.state(s), v.pr[s] = l.prev(s);
    if constexpr (NS == 4) v.st[0] = l.state(0);
    for (int s = NS; s < 4; ++s) v.st[s] = v.pr[s] = 0.0f;
    return v;
  }
  // (A) own units: the cell backward (SumBatch: the loads of other blocks' partials in flight; fewer in the tc form,
  // whose R fragments hold 64 registers)
  template <int SumBatch = kSplitSumBatch>
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    for (int64_t i = tid; i < S.L.B * n; i += nt) cell_item<SumBatch>(t, i, ItemLoad{this, t, i / n, u0 + i % n});
  }
  // item i's cell backward at step t from its inputs v (ItemLoad / ItemIn) and ∂h = dy + the partials of t + 1
  // (Gather: the gather form's, S.gather; a template argument so the other kernels carry none of its code: the tc
  // kernel's register form spilled with it)
  template <int SumBatch = kSplitSumBatch, bool Gather = false, class In>
  __host__ __device__ void cell_item(int64_t t, int64_t i, const In& v) const {
    const int64_t DH = S.L.DH, w = 4 * n, b = i / n, lu = i % n, u = u0 + lu;
    const float pi = v.gate(0), pf = v.gate(1), pz = v.gate(2), po = v.gate(3);
    // tc: tc_sum_phase's range sums; gather: the warps' partial products (gather_summed)
    const float gh = v.dy() + (S.tc && t + 1 < S.L.S ? (Gather ? gather_summed(b, lu) : tc_summed(i)) : dh_rec<SumBatch>(t, b, u));
    const float c1 = v.state(1);
    float dpi, dpf, dpz, dpo, dck = dc[i];
    if constexpr (NS == 4) {
      float dnk = dn[i];
      Cell::backward(pi, pf, pz, po, v.prev(1), v.prev(2), v.prev(3), c1, v.state(2), v.state(3), v.state(0), gh, &dck, &dnk, &dpi, &dpf, &dpz, &dpo);
      dn[i] = dnk;
    } else {
      Cell::backward(pi, pf, pz, po, v.prev(1), c1, gh, &dck, &dpi, &dpf, &dpz, &dpo);
    }
    dc[i] = dck;
    if (Gather) {  // the head's columns g·DH + u of row b in the exchange buffer, rounded (recurrent_gather.cuh)
      uint16_t* d = a.dpx + S.dpx_off(t & 1, b, hd, u);
      d[0] = bf16_math::round(dpi);
      d[DH] = bf16_math::round(dpf);
      d[2 * DH] = bf16_math::round(dpz);
      d[3 * DH] = bf16_math::round(dpo);
    } else if (S.tc) {  // own column g·n + lu of row b, rounded for the tensor-core products
      uint16_t* d = db + b * S.lddp();
      d[lu] = bf16_math::round(dpi);
      d[n + lu] = bf16_math::round(dpf);
      d[2 * n + lu] = bf16_math::round(dpz);
      d[3 * n + lu] = bf16_math::round(dpo);
    } else {
      float* d = dp + b * w;
      d[lu] = dpi;
      d[n + lu] = dpf;
      d[2 * n + lu] = dpz;
      d[3 * n + lu] = dpo;
    }
    a.dx[S.L.x_off(hd, b, t, u)] = dpi;
    a.dx[S.L.x_off(hd, b, t, DH + u)] = dpf;
    a.dx[S.L.x_off(hd, b, t, 2 * DH + u)] = dpz;
    a.dx[S.L.x_off(hd, b, t, 3 * DH + u)] = dpo;
    if (a.dx_tb) {  // the tc form: dx time-major too, for its dR GEMM (recurrent_tc.cuh)
      float* tb = a.dx_tb + (t * S.L.B + b) * 4 * S.L.H;
      tb[S.L.gate_col(hd, u)] = dpi;
      tb[S.L.gate_col(hd, DH + u)] = dpf;
      tb[S.L.gate_col(hd, 2 * DH + u)] = dpz;
      tb[S.L.gate_col(hd, 3 * DH + u)] = dpo;
    }
  }
  // (B) this block's share of ∂h_{t-1}[b][j] for every unit j of the head
  // (a thread per (pair of rows, unit j): each R element serves both rows, each sum one fmaf chain over c in order)
  __host__ __device__ void partial_phase(int64_t t, int tid, int nt) const {
    const int64_t w = 4 * n, pairs = (S.L.B + 1) / 2;
    for (StridedItems it(tid, nt, S.L.DH); it.o < pairs; it.next()) {
      const int64_t b = 2 * it.o, j = it.in;
      const bool two = b + 1 < S.L.B;
      const float* d0 = dp + b * w;
      const float* d1 = two ? d0 + w : d0;
      const float* r = Rs + j * S.ldr();
      float acc0 = 0.0f, acc1 = 0.0f;
      dot2_vec4(r, d0, d1, w, acc0, acc1);  // w = 4n
      part[S.part_off(t & 1, blk, b, j)] = acc0;
      if (two) part[S.part_off(t & 1, blk, b + 1, j)] = acc1;
    }
  }
  // ---- (B) in the lane form: thread tid keeps R[j][c] for j = tid + 256 jj (jj < J) and its block's columns c < 4n in
  // registers r[jj * kLaneBwdCols + c] for the whole sequence; per row b it loads dp[b] (a broadcast) once and
  // writes the J partials Σ_c R[j][c]·dp[b][c] (c in order, one fmaf chain: partial_phase's sums bit for bit)
  template <int J>
  __host__ __device__ void lane_init(int tid, float* r) const {
    const float* Rg = a.R + hd * S.L.DH * S.L.G;
    XLSTM_UNROLL for (int jj = 0; jj < J; ++jj) {
      const int64_t j = tid + int64_t{kSplitThreads} * jj;
      XLSTM_UNROLL for (int c = 0; c < kLaneBwdCols; ++c)
        r[jj * kLaneBwdCols + c] = j < S.L.DH && c < 4 * n ? Rg[j * S.L.G + S.head_col(u0, n, c)] : 0.0f;
    }
  }
  template <int J>
  __host__ __device__ void lane_partial_phase(int64_t t, int tid, const float* r) const {
    const int w = static_cast<int>(4 * n);
    for (int64_t b = 0; b < S.L.B; ++b) {
      float dv[kLaneBwdCols];
      XLSTM_UNROLL for (int c4 = 0; c4 < kLaneBwdCols; c4 += 4) {
        const float4 v = c4 < w ? load4(dp + b * w + c4) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);  // w = 4n
        dv[c4] = v.x;
        dv[c4 + 1] = v.y;
        dv[c4 + 2] = v.z;
        dv[c4 + 3] = v.w;
      }
      XLSTM_UNROLL for (int jj = 0; jj < J; ++jj) {
        const int64_t j = tid + int64_t{kSplitThreads} * jj;
        if (j >= S.L.DH) continue;
        float acc = 0.0f;
        XLSTM_UNROLL for (int c = 0; c < kLaneBwdCols; ++c)
          if (c < w) acc = fmaf(dv[c], r[jj * kLaneBwdCols + c], acc);
        part[S.part_off(t & 1, blk, b, j)] = acc;
      }
    }
  }
  // dstate0 from the carried cotangents after step 0 (∂h: the partials of step 0; gather: the warps' products of
  // step 0's dp, which the gather kernel computes after its last step)
  __host__ __device__ void final_phase(int tid, int nt) const {
    if (!a.dstate0) return;
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, u = u0 + i % n;
      a.dstate0[S.L.state0_off(0, hd, b, u)] = S.gather ? gather_summed(b, i % n) : sum_partials(0, b, u);
      a.dstate0[S.L.state0_off(1, hd, b, u)] = dc[i];
      if (NS == 4) {
        a.dstate0[S.L.state0_off(2, hd, b, u)] = dn[i];
        const float c0 = a.state0 ? a.state0[S.L.state0_off(1, hd, b, u)] : 0.0f;
        const float n0 = a.state0 ? a.state0[S.L.state0_off(2, hd, b, u)] : 0.0f;
        a.dstate0[S.L.state0_off(3, hd, b, u)] = a.exact_m0_grad ? dc[i] * c0 + dn[i] * n0 : 0.0f;
      }
    }
  }
};

// The forward; M > 0: the lane form of the gate products with M j slots per lane (S.lane_m == M), M = 0: R read from
// shared memory (gates_phase).
template <class Cell, int M>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_forward_kernel(FwdArgs a, SplitLaunch S) {
  extern __shared__ float4 smem4[];  // float4: the base 16-byte aligned for the float4 loads
  float* smem = reinterpret_cast<float*>(smem4);
  namespace cg = cooperative_groups;
  cg::grid_group grid = cg::this_grid();
  const SplitFwd<Cell> blk(S, a, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  float r[kLaneCols * (M > 0 ? M : 1)];  // the lane form's R (registers)
  blk.init(tid, nt);
  if constexpr (M > 0) blk.template lane_init<M>(tid, r);
  for (int64_t t = 0; t < S.L.S; ++t) {
    if constexpr (M > 0) {
      blk.template stage_phase<kLaneStageBatch>(t, tid, nt);
      __syncthreads();
      for (int64_t b0 = 0; b0 < S.L.B; b0 += kLaneRowChunk) {
        const int rows = static_cast<int>(S.L.B - b0 < kLaneRowChunk ? S.L.B - b0 : kLaneRowChunk);
        blk.template lane_partials<M>(b0, rows, tid, r);
        __syncthreads();
        blk.lane_outputs(t, b0, rows, tid);
        __syncthreads();
      }
    } else {
      blk.stage_phase(t, tid, nt);
      __syncthreads();
      blk.gates_phase(t, tid, nt);
      __syncthreads();
    }
    blk.cell_phase(t, tid, nt);
    __threadfence();
    grid.sync();
  }
}

// The backward; J > 0: the lane form of the partial products with J rows of R per thread (S.lane_j == J), J = 0: R
// read from shared memory (partial_phase).
template <class Cell, int J>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_backward_kernel(BwdArgs a, SplitLaunch S, float* part) {
  extern __shared__ float4 smem4b[];  // float4: the base 16-byte aligned for the float4 loads
  float* smem = reinterpret_cast<float*>(smem4b);
  namespace cg = cooperative_groups;
  cg::grid_group grid = cg::this_grid();
  const SplitBwd<Cell> blk(S, a, part, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  float r[kLaneBwdCols * (J > 0 ? J : 1)];  // the lane form's R (registers)
  blk.init(tid, nt);
  if constexpr (J > 0) blk.template lane_init<J>(tid, r);
  __syncthreads();
  for (int64_t t = S.L.S - 1; t >= 0; --t) {
    blk.cell_phase(t, tid, nt);
    __syncthreads();
    if constexpr (J > 0) blk.template lane_partial_phase<J>(t, tid, r);
    else blk.partial_phase(t, tid, nt);
    __threadfence();
    grid.sync();
  }
  blk.final_phase(tid, nt);
}

// Host replay of the split launches: every step, every block, each phase for all of its threads (the grid barrier:
// all blocks finish a step before any starts the next); each block's shared memory persists over the steps, NaN at
// the start.
template <class Cell, int M>
void split_forward_replay_m(const SplitLaunch& S, const FwdArgs& a) {
  std::vector<float> sm(static_cast<size_t>(S.blocks * S.fwd_floats()), __builtin_nanf(""));
  const int nt = kSplitThreads;
  std::vector<SplitFwd<Cell>> blocks;
  for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, b, sm.data() + b * S.fwd_floats());
  // the lane form's registers: every thread's r of every block
  std::vector<float> regs(M ? static_cast<size_t>(S.blocks * nt * kLaneCols * M) : 0);
  const auto r_of = [&](int64_t b, int tid) { return regs.data() + (b * nt + tid) * kLaneCols * M; };
  for (int64_t b = 0; b < S.blocks; ++b)
    for (int tid = 0; tid < nt; ++tid) {
      blocks[b].init(tid, nt);
      if constexpr (M > 0) blocks[b].template lane_init<M>(tid, r_of(b, tid));
    }
  for (int64_t t = 0; t < S.L.S; ++t)
    for (int64_t b = 0; b < S.blocks; ++b) {
      const SplitFwd<Cell>& blk = blocks[b];
      for (int tid = 0; tid < nt; ++tid) {
        if constexpr (M > 0) blk.template stage_phase<kLaneStageBatch>(t, tid, nt);
        else blk.stage_phase(t, tid, nt);
      }
      if constexpr (M > 0) {
        for (int64_t b0 = 0; b0 < S.L.B; b0 += kLaneRowChunk) {
          const int rows = static_cast<int>(std::min<int64_t>(S.L.B - b0, kLaneRowChunk));
          for (int tid = 0; tid < nt; ++tid) blk.template lane_partials<M>(b0, rows, tid, r_of(b, tid));
          for (int tid = 0; tid < nt; ++tid) blk.lane_outputs(t, b0, rows, tid);
        }
      } else {
        for (int tid = 0; tid < nt; ++tid) blk.gates_phase(t, tid, nt);
      }
      for (int tid = 0; tid < nt; ++tid) blk.cell_phase(t, tid, nt);
    }
}

template <class Cell>
void split_forward_replay(const SplitLaunch& S, const FwdArgs& a) {
  switch (S.lane_m) {
    case 8: return split_forward_replay_m<Cell, 8>(S, a);
    case 16: return split_forward_replay_m<Cell, 16>(S, a);
    case 24: return split_forward_replay_m<Cell, 24>(S, a);
    default: return split_forward_replay_m<Cell, 0>(S, a);
  }
}

template <class Cell, int J>
void split_backward_replay_j(const SplitLaunch& S, const BwdArgs& a) {
  std::vector<float> sm(static_cast<size_t>(S.blocks * S.bwd_floats()), __builtin_nanf(""));
  std::vector<float> part(static_cast<size_t>(S.part_floats()), __builtin_nanf(""));
  const int nt = kSplitThreads;
  std::vector<SplitBwd<Cell>> blocks;
  for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, part.data(), b, sm.data() + b * S.bwd_floats());
  // the lane form's registers: every thread's r of every block
  std::vector<float> regs(J ? static_cast<size_t>(S.blocks * nt * kLaneBwdCols * J) : 0);
  const auto r_of = [&](int64_t b, int tid) { return regs.data() + (b * nt + tid) * kLaneBwdCols * J; };
  for (int64_t b = 0; b < S.blocks; ++b)
    for (int tid = 0; tid < nt; ++tid) {
      blocks[b].init(tid, nt);
      if constexpr (J > 0) blocks[b].template lane_init<J>(tid, r_of(b, tid));
    }
  for (int64_t t = S.L.S - 1; t >= 0; --t)
    for (int64_t b = 0; b < S.blocks; ++b) {
      for (int tid = 0; tid < nt; ++tid) blocks[b].cell_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) {
        if constexpr (J > 0) blocks[b].template lane_partial_phase<J>(t, tid, r_of(b, tid));
        else blocks[b].partial_phase(t, tid, nt);
      }
    }
  for (auto& blk : blocks)
    for (int tid = 0; tid < nt; ++tid) blk.final_phase(tid, nt);
}

template <class Cell>
void split_backward_replay(const SplitLaunch& S, const BwdArgs& a) {
  switch (S.lane_j) {
    case 1: return split_backward_replay_j<Cell, 1>(S, a);
    case 2: return split_backward_replay_j<Cell, 2>(S, a);
    case 3: return split_backward_replay_j<Cell, 3>(S, a);
    default: return split_backward_replay_j<Cell, 0>(S, a);
  }
}
