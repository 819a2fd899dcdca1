// The bf16 tensor-core form of the split-head sLSTM / LSTM recurrences, under the bf16 autocast (included by
// cuda/recurrent.cu after recurrent_split.cuh, inside its anonymous namespace). The launch, the grid barrier per step,
// the cells, the carried states and the backward's partial sums over a head's blocks are the split launch's
// (SplitFwd / SplitBwd with S.tc > 0); only the recurrent matrix products change, as in FlashRNN:
//   forward, step t: p[b][c] = x + Σ_j bf16(h_{t-1}[b][j])·bf16(R[j][k_c]) + bias for the block's own gate columns c.
//     h_{t-1} is staged as bf16 (hb: rows b padded to 16·mt, units j to 16·kt, the pads 0; from the exchange buffer
//     hx the blocks write h_t into as bf16 besides the float32 states: half the bytes); R's own columns are
//     staged once as bf16 (rs) and, where they fit (tc <= 2 column tiles, DH <= 1024: G1, the models' head sizes),
//     held in wmma matrix_b fragments (registers) for the whole sequence, else read from rs each step (any number of
//     units per block up to 32, head sizes as far as shared memory goes). Warp wp takes the j-tiles
//     kt = wp, wp + 8, ... for each of the tc column tiles; per row tile it multiplies its j-tiles into tc float32
//     accumulators (wmma 16x16x16) and stores them to red[wp]; a thread per (row, column) then adds the 8 warps'
//     partials in warp order: p = (x + sum) + bias, exactly as the lane form's outputs.
//   backward, step t: the cell backward rounds its dp to bf16 (db: [16·mt][16·tc], pads 0; dx stays float32); the
//     block's share of ∂h_{t-1}[b][j] = Σ_c bf16(R[j][k_c])·bf16(dp[b][c]) comes from fragments of R's own columns
//     transposed (warp wp: j-tiles jt = wp, wp + 8, ...; registers or rs as forward), one 16 x 16 output tile at a
//     time, staged through the warp's scratch into part, as the float32 split backward writes it; the cell phase also
//     writes dx time-major (dx_tb) for dR: one grouped tensor-core GEMM over all rows (tc_dr_gemm), dbias the
//     reduction kernel's column sums. Before the cell phase, the other blocks' partials of step t+1 are summed by up
//     to 8 threads per item over contiguous ranges of the blocks (tc_sum_phase), the ranges' sums added in order.
// A step's inputs that other blocks do not write (x forward: tc_prefetch_x; gates, dy, states backward: ItemIn) are
// loaded, for a thread's first items, before the grid barrier that precedes the step, so their latency overlaps it.
// Sums: float32 accumulators; every product of two bf16 values is exact in float32, so the device and the host replay
// differ only in the order the tensor cores add a tile's 16 products (the replay: k in order, one fma chain).
// Applies wherever the split launch does (B <= 64 rows: kSplitMaxB) with at most 32 units per block and the shared
// memory fits; elsewhere the bf16 request runs the float32 form (more precise, never less). Column tiles are padded to
// 1, 2, 4 or 8 (the instantiated kernels), the pad columns 0. Host replay: split_tc_{forward,backward}_replay, the
// same phase functions with the 16 x 16 x 16 products as loops over the staged bf16 values; bf16 shared memory and the
// exchange buffer NaN-filled (0x7fc0), so a pad the kernels fail to zero or a slot they fail to write shows up.
// (recurrent.cu includes <mma.h>, <cuda_bf16.h> and kernels/bf16_math.h for it.)
#pragma once

constexpr int kTcWarps = kSplitThreads / 32;  // 8
constexpr int kTcSlots = 8;                   // register form: j-tiles per warp (DH <= 16 * 8 * 8)
constexpr int kTcRegTiles = 2;                // register form: column tiles (R's fragments: 8 x 2 x 4 registers)
constexpr int kTcMaxTiles = 8;                // column tiles at most (4nu <= 128: 32 units per block)
constexpr uint16_t kBf16Nan = 0x7fc0;
constexpr int kTcSumBatch = 24;               // backward: other blocks' partials in flight (32 left the fragments too few registers)
static_assert(kTcWarps == 8, "the tc form's j-tiles kt = wp + 8i assume 8 warps");
#ifdef __CUDA_ARCH__
#define XLSTM_NO_UNROLL _Pragma("unroll 1")
#else
#define XLSTM_NO_UNROLL
#endif

// Column tiles of the tc form for nu units per block (1, 2, 4 or 8: the instantiated kernels), 0 where it does not apply.
inline int tc_tiles(int64_t nu) {
  const int64_t t = (4 * nu + 15) / 16;
  if (t > kTcMaxTiles) return 0;
  return t <= 2 ? static_cast<int>(t) : t <= 4 ? 4 : 8;
}
// Whether R's fragments stay in registers (else they are read from rs each step).
__host__ __device__ inline bool tc_in_registers(const SplitLaunch& S) { return S.tc <= kTcRegTiles && S.tc_kt() <= int64_t{kTcWarps} * kTcSlots; }

// The block's own R columns as bf16 into rs [16·kt][ldrs] (row j, own column c; pads j >= DH, c >= 4n: 0).
__host__ __device__ inline void tc_stage_r(const SplitLaunch& S, const float* R, int64_t hd, int64_t u0, int64_t n, uint16_t* rs,
                                           int tid, int nt) {
  const int64_t DH = S.L.DH, G = S.L.G, W = S.tc_wp(), rows = 16 * S.tc_kt(), ld = S.ldrs();
  const float* Rg = R + hd * DH * G;
  for (int64_t i = tid; i < rows * W; i += nt) {
    const int64_t j = i / W, c = i % W;
    rs[j * ld + c] = j < DH && c < 4 * n ? bf16_math::round(Rg[j * G + S.head_col(u0, n, c)]) : uint16_t{0};
  }
}

template <class Cell>
__host__ __device__ inline void tc_forward_init(const SplitFwd<Cell>& f, int tid, int nt) {
  tc_stage_r(f.S, f.a.R, f.hd, f.u0, f.n, f.rs, tid, nt);
  for (int64_t i = tid; i < 16 * f.S.tc_mt() * f.S.ldhb(); i += nt) f.hb[i] = 0;  // the pads stay 0; stage_phase fills the rest
}

// 16 bytes (8 bf16) of the exchange buffer through L2 (other blocks wrote them before the last grid barrier), and into
// shared memory; on the host memcpy
__host__ __device__ __forceinline__ uint4 tc_load8(const uint16_t* p) {
#ifdef __CUDA_ARCH__
  return __ldcg(reinterpret_cast<const uint4*>(p));
#else
  uint4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
#endif
}
__host__ __device__ __forceinline__ void tc_store8(uint16_t* p, uint4 v) {
#ifdef __CUDA_ARCH__
  *reinterpret_cast<uint4*>(p) = v;
#else
  std::memcpy(p, &v, sizeof v);
#endif
}
__host__ __device__ __forceinline__ uint16_t tc_load1(const uint16_t* p) {
#ifdef __CUDA_ARCH__
  return __ldcg(reinterpret_cast<const unsigned short*>(p));
#else
  return *p;
#endif
}

// `rows` rows of `cols` bf16 values from global memory (src, row stride `stride`: values other blocks wrote before the
// last grid barrier, read through L2) into shared memory (dst, leading dimension ld): 8 values per 16-byte load where
// cols and stride are multiples of 8 (src then 16-byte aligned), kTcStageBatch loads in flight per thread
constexpr int kTcStageBatch = 8;
__host__ __device__ inline void tc_stage_rows(uint16_t* dst, int64_t ld, const uint16_t* src, int64_t stride, int64_t rows, int64_t cols, int tid,
                                              int nt) {
  if (cols % 8 == 0 && stride % 8 == 0) {
    for (StridedItems it(tid, nt, cols / 8); it.o < rows;) {
      uint4 v[kTcStageBatch];
      int32_t at[kTcStageBatch];  // shared-memory offsets (halves)
      XLSTM_UNROLL for (int q = 0; q < kTcStageBatch; ++q) {
        const bool ok = it.o < rows;
        v[q] = ok ? tc_load8(src + it.o * stride + 8 * it.in) : make_uint4(0, 0, 0, 0);
        at[q] = ok ? static_cast<int32_t>(it.o * ld + 8 * it.in) : -1;
        it.next();
      }
      XLSTM_UNROLL for (int q = 0; q < kTcStageBatch; ++q)
        if (at[q] >= 0) tc_store8(dst + at[q], v[q]);
    }
    return;
  }
  for (StridedItems it(tid, nt, cols); it.o < rows; it.next()) dst[it.o * ld + it.in] = tc_load1(src + it.o * stride + it.in);
}

// (0) h_{t-1} of the whole head into hb as bf16: at t = 0 from state0 (stage_phase rounds it), later from the
// exchange buffer the blocks wrote at t-1 (a.hx, already rounded: half the bytes of the float32 states)
template <class Cell>
__host__ __device__ inline void tc_stage(const SplitFwd<Cell>& f, int64_t t, int tid, int nt) {
  if (t == 0) return f.template stage_phase<kLaneStageBatch>(t, tid, nt);
  const SplitLaunch& S = f.S;
  tc_stage_rows(f.hb, S.ldhb(), f.a.hx + ((t - 1) & 1) * S.L.B * S.L.H + f.hd * S.L.DH, S.L.H, S.L.B, S.L.DH, tid, nt);
}

// x of a thread's first kTcPrefetch output items at step t (items i = tid + q·nt < B·4n, as tc_outputs walks them),
// loaded before the grid barrier that precedes step t: their latency then overlaps the barrier instead of the step
// (q unrolled: xn stays in registers)
constexpr int kTcPrefetch = 4;
template <class Cell>
__host__ __device__ inline void tc_prefetch_x(const SplitFwd<Cell>& f, int64_t t, int tid, int nt, float* xn) {
  const int64_t w = 4 * f.n;
  XLSTM_UNROLL for (int q = 0; q < kTcPrefetch; ++q) {
    const int64_t i = tid + int64_t{q} * nt;
    if (i < f.S.L.B * w) xn[q] = f.a.x[f.S.L.x_off(f.hd, i / w, t, f.S.head_col(f.u0, f.n, i % w))];
  }
}

// output item i = (row b, own column c) of step t: p = (x + Σ_wp red[wp][b][c]) + bias, warps in order (the lane
// form's lane_outputs, 8 partials); x given (prefetched) or NaN: loaded here
template <class Cell>
__host__ __device__ inline void tc_output(const SplitFwd<Cell>& f, int64_t t, int64_t i, float x, bool have_x) {
  const SplitLaunch& S = f.S;
  const int64_t w = 4 * f.n, ld = S.ldred(), b = i / w, c = i % w;
  float sum = 0.0f;
  for (int wp = 0; wp < kTcWarps; ++wp) sum += f.red[S.red_tile(wp, 0, 0) + b * ld + c];
  const int64_t k = S.head_col(f.u0, f.n, c), off = S.L.x_off(f.hd, b, t, k);
  const float p = (have_x ? x : f.a.x[off]) + sum + f.a.bias[S.L.gate_col(f.hd, k)];
  if constexpr (Cell::kStates == 4) f.a.gates[off] = p;  // the LSTM saves its activations instead (cell_phase)
  f.pre[b * w + c] = p;
}

// The step's outputs of thread tid: its first kTcPrefetch items with x from xn (tc_prefetch_x), the rest loading x
template <class Cell>
__host__ __device__ inline void tc_outputs(const SplitFwd<Cell>& f, int64_t t, int tid, int nt, const float* xn) {
  const int64_t items = f.S.L.B * 4 * f.n;
  XLSTM_UNROLL for (int q = 0; q < kTcPrefetch; ++q) {
    const int64_t i = tid + int64_t{q} * nt;
    if (i < items) tc_output(f, t, i, xn[q], true);
  }
  for (int64_t i = tid + int64_t{kTcPrefetch} * nt; i < items; i += nt) tc_output(f, t, i, 0.0f, false);
}

// The backward's sums of the other blocks' partials of step t + 1 (t < S - 1), before the cell phase: slot
// e = p·items + i (thread tid takes e = tid, tid + nt, ...) is range p of the P partials of item i
// (SplitLaunch::tc_sum_parts ranges; consecutive threads, consecutive units: coalesced as before), written to
// scratch[e], which the products overwrite only after the cell phase has read it (SplitBwd::tc_summed; the barrier
// between them). R > 1 only where R·items <= nt; items beyond nt (R = 1) take a thread's further slots.
static_assert(kTcWarps * 16 * kTcScratchLd >= kSplitThreads && kTcWarps * 16 * kTcScratchLd >= kSplitMaxB * 4 * kTcMaxTiles,
              "the sum phase's range sums fit the scratch: R·items <= max(nt, B·nu), B <= kSplitMaxB, nu <= 4·kTcMaxTiles");
template <class Cell>
__host__ __device__ inline void tc_sum_phase(const SplitBwd<Cell>& g, int64_t t, int tid, int nt) {
  const int64_t items = g.S.L.B * g.n, R = g.S.tc_sum_parts(), Q = (g.S.P + R - 1) / R;
  if (t + 1 >= g.S.L.S) return;
  for (int64_t e = tid; e < items * R; e += nt) {
    const int64_t p = e / items, i = e % items, q0 = p * Q, q1 = q0 + Q < g.S.P ? q0 + Q : g.S.P;
    g.scratch[e] = g.template sum_partials<kTcSumBatch>((t + 1) & 1, i / g.n, g.u0 + i % g.n, q0, q1);
  }
}

// The backward's cell phase: item tid from its prefetched inputs, the thread's further items loading theirs
// (Gather: the gather form's, recurrent_gather.cuh)
template <class Cell, bool Gather = false>
__host__ __device__ inline void tc_cell_phase(const SplitBwd<Cell>& g, int64_t t, int tid, int nt, const typename SplitBwd<Cell>::ItemIn& first) {
  const int64_t items = g.S.L.B * g.n;
  if (tid < items) g.template cell_item<kTcSumBatch, Gather>(t, tid, first);
  for (int64_t i = tid + nt; i < items; i += nt) g.template cell_item<kTcSumBatch, Gather>(t, i, g.item_in(t, i));
}

template <class Cell>
__host__ __device__ inline void tc_backward_init(const SplitBwd<Cell>& g, int tid, int nt) {
  tc_stage_r(g.S, g.a.R, g.hd, g.u0, g.n, g.rs, tid, nt);
  for (int64_t i = tid; i < 16 * g.S.tc_mt() * g.S.lddp(); i += nt) g.db[i] = 0;  // the pads stay 0; cell_phase fills the rest
}

// A warp's 16 x 16 output tile (rows 16·mt.., units 16·jt..) from its scratch [16][kTcScratchLd] into part at step t
// (32-bit offsets within the tile: 16 rows of DH <= 65536 units)
template <class Cell>
__host__ __device__ inline void tc_part_store(const SplitBwd<Cell>& g, int64_t t, int64_t mt, int64_t jt, int lane, const float* scratch) {
  const int64_t b0 = 16 * mt, j0 = 16 * jt;
  const int rows = static_cast<int>(g.S.L.B - b0 < 16 ? g.S.L.B - b0 : 16), cols = static_cast<int>(g.S.L.DH - j0 < 16 ? g.S.L.DH - j0 : 16);
  const int ld = static_cast<int>(g.S.L.DH);
  float* dst = g.part + g.S.part_off(t & 1, g.blk, b0, j0);
  XLSTM_NO_UNROLL for (int e = lane; e < 256; e += 32) {  // (unrolled, it took the registers the fragments need)
    const int r = e / 16, cc = e % 16;
    if (r < rows && cc < cols) dst[r * ld + cc] = scratch[r * kTcScratchLd + cc];
  }
}

// ---- the kernels (sm_80+: bf16 wmma) -------------------------------------------------------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// The register form's fragments of R, loaded once: warp wp's j-tiles wp + 8i (i < kTcSlots, below `tiles`) of each
// column tile, from rs at (16·j-tile, 16·c) (Frag's layout: row-major forward, column-major backward's Rᵀ)
template <int NT, class Frag>
__device__ void tc_load_fragments(Frag (&fr)[kTcSlots][NT], const __nv_bfloat16* rs, int wp, int64_t tiles, int64_t ldrs) {
  XLSTM_UNROLL for (int i = 0; i < kTcSlots; ++i) {
    const int64_t jt = wp + kTcWarps * i;
    if (jt < tiles) {
      XLSTM_UNROLL for (int c = 0; c < NT; ++c) nvcuda::wmma::load_matrix_sync(fr[i][c], rs + SplitLaunch::tile16(jt, c, ldrs), static_cast<unsigned>(ldrs));
    }
  }
}
#endif

// RegR: R's fragments in registers (tc_in_registers), else from rs each step.
template <class Cell, int NT, bool RegR>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_tc_forward_kernel(FwdArgs a, SplitLaunch S) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  namespace cg = cooperative_groups;
  extern __shared__ __align__(32) float4 smem_tc_fwd[];
  uint16_t* smb = reinterpret_cast<uint16_t*>(smem_tc_fwd);
  float* smf = reinterpret_cast<float*>(smem_tc_fwd) + SplitLaunch::tc_halves_floats(S.tc_fwd_halves());
  cg::grid_group grid = cg::this_grid();
  const SplitFwd<Cell> blk(S, a, blockIdx.x, smf, smb);
  const int tid = threadIdx.x, nt = blockDim.x, wp = tid / 32;
  const int64_t KT = S.tc_kt(), MT = S.tc_mt(), ldrs = S.ldrs(), ldhb = S.ldhb(), ldred = S.ldred();
  const __nv_bfloat16* rs = reinterpret_cast<const __nv_bfloat16*>(blk.rs);
  const __nv_bfloat16* hb = reinterpret_cast<const __nv_bfloat16*>(blk.hb);
  blk.init(tid, nt);
  tc_forward_init(blk, tid, nt);
  __syncthreads();
  using FragR = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  FragR fr[RegR ? kTcSlots : 1][NT];
  if constexpr (RegR) tc_load_fragments<NT>(fr, rs, wp, KT, ldrs);
  float xn[kTcPrefetch];
  tc_prefetch_x(blk, 0, tid, nt, xn);
  for (int64_t t = 0; t < S.L.S; ++t) {
    tc_stage(blk, t, tid, nt);
    __syncthreads();
    for (int64_t mt = 0; mt < MT; ++mt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NT];
      XLSTM_UNROLL for (int c = 0; c < NT; ++c) wmma::fill_fragment(acc[c], 0.0f);
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fh;
      if constexpr (RegR) {
        XLSTM_UNROLL for (int i = 0; i < kTcSlots; ++i) {
          const int64_t kt = wp + kTcWarps * i;
          if (kt < KT) {
            wmma::load_matrix_sync(fh, hb + S.hb_tile(mt, kt), static_cast<unsigned>(ldhb));
            XLSTM_UNROLL for (int c = 0; c < NT; ++c) wmma::mma_sync(acc[c], fh, fr[i][c], acc[c]);
          }
        }
      } else {
        for (int64_t kt = wp; kt < KT; kt += kTcWarps) {  // the same j-tiles in the same order, R from rs
          wmma::load_matrix_sync(fh, hb + S.hb_tile(mt, kt), static_cast<unsigned>(ldhb));
          XLSTM_UNROLL for (int c = 0; c < NT; ++c) {
            wmma::load_matrix_sync(fr[0][c], rs + S.rs_tile(kt, c), static_cast<unsigned>(ldrs));
            wmma::mma_sync(acc[c], fh, fr[0][c], acc[c]);
          }
        }
      }
      XLSTM_UNROLL for (int c = 0; c < NT; ++c) {
        wmma::store_matrix_sync(blk.red + S.red_tile(wp, mt, c), acc[c], static_cast<unsigned>(ldred), wmma::mem_row_major);
      }
    }
    __syncthreads();
    tc_outputs(blk, t, tid, nt, xn);
    __syncthreads();
    blk.template cell_phase<true>(t, tid, nt);
    if (t + 1 < S.L.S) tc_prefetch_x(blk, t + 1, tid, nt, xn);
    __threadfence();
    grid.sync();
  }
#endif
}

template <class Cell, int NT, bool RegR>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_tc_backward_kernel(BwdArgs a, SplitLaunch S, float* part) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace wmma = nvcuda::wmma;
  namespace cg = cooperative_groups;
  extern __shared__ __align__(32) float4 smem_tc_bwd[];
  uint16_t* smb = reinterpret_cast<uint16_t*>(smem_tc_bwd);
  float* smf = reinterpret_cast<float*>(smem_tc_bwd) + SplitLaunch::tc_halves_floats(S.tc_bwd_halves());
  cg::grid_group grid = cg::this_grid();
  const SplitBwd<Cell> blk(S, a, part, blockIdx.x, smf, smb);
  const int tid = threadIdx.x, nt = blockDim.x, wp = tid / 32, lane = tid % 32;
  const int64_t JT = S.tc_kt(), MT = S.tc_mt(), ldrs = S.ldrs(), lddp = S.lddp();
  const __nv_bfloat16* rs = reinterpret_cast<const __nv_bfloat16*>(blk.rs);
  const __nv_bfloat16* db = reinterpret_cast<const __nv_bfloat16*>(blk.db);
  float* scratch = blk.scratch + SplitLaunch::scratch_tile(wp);
  blk.init(tid, nt);
  tc_backward_init(blk, tid, nt);
  __syncthreads();
  // op(B)[c][j] = R[j][k_c] = rs[j][c]: column-major with leading dimension ldrs
  using FragR = wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major>;
  FragR fr[RegR ? kTcSlots : 1][NT];
  if constexpr (RegR) tc_load_fragments<NT>(fr, rs, wp, JT, ldrs);
  // one 16 x 16 tile of this block's partial ∂h_{t-1}: rows of row tile mt, units of j-tile jt
  auto tile_out = [&](int64_t t, int64_t mt, int64_t jt, wmma::fragment<wmma::accumulator, 16, 16, 16, float>& acc) {
    wmma::store_matrix_sync(scratch, acc, static_cast<unsigned>(kTcScratchLd), wmma::mem_row_major);
    __syncwarp();
    tc_part_store(blk, t, mt, jt, lane, scratch);
    __syncwarp();
  };
  // item tid's inputs for the next step, loaded before the barrier that precedes it (SplitBwd::item_in)
  const int64_t items = S.L.B * blk.n;
  typename SplitBwd<Cell>::ItemIn nxt{};
  if (tid < items) nxt = blk.item_in(S.L.S - 1, tid);
  for (int64_t t = S.L.S - 1; t >= 0; --t) {
    tc_sum_phase(blk, t, tid, nt);
    __syncthreads();
    tc_cell_phase(blk, t, tid, nt, nxt);
    __syncthreads();
    for (int64_t mt = 0; mt < MT; ++mt) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fd[NT];
      XLSTM_UNROLL for (int c = 0; c < NT; ++c) wmma::load_matrix_sync(fd[c], db + SplitLaunch::tile16(mt, c, lddp), static_cast<unsigned>(lddp));
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      if constexpr (RegR) {
        XLSTM_UNROLL for (int i = 0; i < kTcSlots; ++i) {
          const int64_t jt = wp + kTcWarps * i;
          if (jt >= JT) continue;
          wmma::fill_fragment(acc, 0.0f);
          XLSTM_UNROLL for (int c = 0; c < NT; ++c) wmma::mma_sync(acc, fd[c], fr[i][c], acc);
          tile_out(t, mt, jt, acc);
        }
      } else {
        for (int64_t jt = wp; jt < JT; jt += kTcWarps) {  // the same tiles in the same order, R from rs
          wmma::fill_fragment(acc, 0.0f);
          XLSTM_UNROLL for (int c = 0; c < NT; ++c) {
            wmma::load_matrix_sync(fr[0][c], rs + SplitLaunch::tile16(jt, c, ldrs), static_cast<unsigned>(ldrs));
            wmma::mma_sync(acc, fd[c], fr[0][c], acc);
          }
          tile_out(t, mt, jt, acc);
        }
      }
    }
    if (t > 0 && tid < items) nxt = blk.item_in(t - 1, tid);
    __threadfence();
    grid.sync();
  }
  blk.final_phase(tid, nt);
#endif
}

// The kernel for S's column tiles and fragment placement, nullptr where the tc form does not apply.
template <class Cell>
void* tc_forward_kernel(const SplitLaunch& S) {
  const bool reg = tc_in_registers(S);
  switch (S.tc) {
    case 1: return reg ? reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 1, true>) : reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 1, false>);
    case 2: return reg ? reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 2, true>) : reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 2, false>);
    case 4: return reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 4, false>);
    case 8: return reinterpret_cast<void*>(rec_split_tc_forward_kernel<Cell, 8, false>);
    default: return nullptr;
  }
}
template <class Cell>
void* tc_backward_kernel(const SplitLaunch& S) {
  const bool reg = tc_in_registers(S);
  switch (S.tc) {
    case 1: return reg ? reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 1, true>) : reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 1, false>);
    case 2: return reg ? reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 2, true>) : reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 2, false>);
    case 4: return reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 4, false>);
    case 8: return reinterpret_cast<void*>(rec_split_tc_backward_kernel<Cell, 8, false>);
    default: return nullptr;
  }
}

// ---- parameter gradients of the tc form ---------------------------------------------------------------------------
// dR = Σ_{t,b} h_{t-1}[b]ᵀ dx[b][t] with bf16 operands and float32 sums, as the autocast's GEMMs compute a weight's
// gradient: one grouped tensor-core GEMM (cuda/gemm_bf16.cu), a product per (head, gate g),
// dR[hd][j][g·DH + u] = Σ_k h[k][hd·DH + j] · dx_tb[k + B][g·H + hd·DH + u] over the time-major rows k = (t-1)·B + b,
// t >= 1 (h_{t-1}: the states' h, rows H apart; dx_tb: dx in [S, B, 4H] order, which the sequence kernel writes
// beside dx), and, as a second segment, the rows t = 0 with h_{-1} from state0. dbias = Σ dx: the reduction kernel's
// float32 column sums (double accumulation) over the B·S rows of dx.
inline GroupedGemm tc_dr_gemm(const RecLaunch& L, float* dR, const float* dx_tb, const float* states, const float* state0) {
  GroupedGemm g;
  g.ta = true, g.tb = false;
  g.groups = L.NH, g.per_group = 4, g.M = L.DH, g.N = L.DH, g.K = (L.S - 1) * L.B;
  g.a.p = states, g.a.ld = L.H, g.a.outer = L.DH, g.a.inner = 0;                             // h_{t-1}, t = 1..S-1
  g.b.p = dx_tb + L.B * 4 * L.H, g.b.ld = 4 * L.H, g.b.outer = L.DH, g.b.inner = L.H;      // dx at t = 1..S-1
  if (state0) {
    g.K2 = L.B, g.ta2 = true, g.tb2 = false;
    g.a2.p = state0, g.a2.ld = L.H, g.a2.outer = L.DH, g.a2.inner = 0;
    g.b2.p = dx_tb, g.b2.ld = 4 * L.H, g.b2.outer = L.DH, g.b2.inner = L.H;
  }
  g.c = dR, g.ldc = 4 * L.DH, g.c_outer = L.DH * 4 * L.DH, g.c_inner = L.DH;
  return g;
}
struct TcBiasSum {  // dx as [B·S, 4H], summed over axis 0
  int64_t shape[2];
  uint8_t reduced[2] = {1, 0};
  explicit TcBiasSum(const RecLaunch& L) : shape{L.B * L.S, 4 * L.H} {}
};

// ---- host replay -----------------------------------------------------------------------------------------------------

// acc[16][16] += A·B for A 16 x 16 bf16 (row-major, leading dimension lda) and B 16 x 16 floats [k][n]: each output
// one fma chain over k in order
inline void tc_host_mma(float* acc, const uint16_t* A, int64_t lda, const float* B) {
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) {
      float v = acc[r * 16 + c];
      for (int k = 0; k < 16; ++k) v = std::fma(bf16_math::widen(A[r * lda + k]), B[k * 16 + c], v);
      acc[r * 16 + c] = v;
    }
}

// The matrix_b fragment a warp holds (or loads) for j-tile jt and column tile c: forward op(B)[k = j][n = c] =
// rs[j][c] (row-major), backward op(B)[k = c][n = j] = rs[j][c] (column-major), as 16 x 16 floats [k][n]
inline void tc_host_fragment(const SplitLaunch& S, const uint16_t* rs, int64_t jt, int64_t c, bool transposed, float* B) {
  for (int k = 0; k < 16; ++k)
    for (int q = 0; q < 16; ++q)
      B[k * 16 + q] = bf16_math::widen(transposed ? rs[S.rs_tile(jt, c) + q * S.ldrs() + k] : rs[S.rs_tile(jt, c) + k * S.ldrs() + q]);
}

// Per block: float shared memory NaN, bf16 shared memory 0x7fc0 (NaN), kept over the steps (the grid barrier: all
// blocks finish a step before any starts the next). Warp wp's products in its order: j-tiles kt = wp, wp + 8, ...
template <class Cell>
void split_tc_forward_replay(const SplitLaunch& S, const FwdArgs& a) {
  const int nt = kSplitThreads;
  const int64_t ff = S.fwd_floats() - SplitLaunch::tc_halves_floats(S.tc_fwd_halves()), hh = S.tc_fwd_halves();
  std::vector<float> sm(static_cast<size_t>(S.blocks * ff), __builtin_nanf(""));
  std::vector<uint16_t> smb(static_cast<size_t>(S.blocks * hh), kBf16Nan);
  std::vector<SplitFwd<Cell>> blocks;
  for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, b, sm.data() + b * ff, smb.data() + b * hh);
  const int64_t KT = S.tc_kt(), MT = S.tc_mt(), NT = S.tc, ldhb = S.ldhb(), ldred = S.ldred();
  // every thread's prefetched x (tc_prefetch_x: for step 0 at the start, for step t + 1 after step t's cell phase)
  std::vector<float> xn(static_cast<size_t>(S.blocks * nt * kTcPrefetch), __builtin_nanf(""));
  const auto xn_of = [&](int64_t b, int tid) { return xn.data() + (b * nt + tid) * kTcPrefetch; };
  for (int64_t b = 0; b < S.blocks; ++b) {
    for (int tid = 0; tid < nt; ++tid) blocks[b].init(tid, nt);
    for (int tid = 0; tid < nt; ++tid) tc_forward_init(blocks[b], tid, nt);
    for (int tid = 0; tid < nt; ++tid) tc_prefetch_x(blocks[b], 0, tid, nt, xn_of(b, tid));
  }
  std::vector<float> acc(static_cast<size_t>(NT * 256)), frag(256);
  for (int64_t t = 0; t < S.L.S; ++t)
    for (int64_t b = 0; b < S.blocks; ++b) {
      const SplitFwd<Cell>& blk = blocks[b];
      for (int tid = 0; tid < nt; ++tid) tc_stage(blk, t, tid, nt);
      for (int wp = 0; wp < kTcWarps; ++wp)
        for (int64_t mt = 0; mt < MT; ++mt) {
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t kt = wp; kt < KT; kt += kTcWarps)
            for (int64_t c = 0; c < NT; ++c) {
              tc_host_fragment(S, blk.rs, kt, c, false, frag.data());
              tc_host_mma(acc.data() + c * 256, blk.hb + S.hb_tile(mt, kt), ldhb, frag.data());
            }
          for (int64_t c = 0; c < NT; ++c)
            for (int r = 0; r < 16; ++r)
              for (int q = 0; q < 16; ++q) blk.red[S.red_tile(wp, mt, c) + r * ldred + q] = acc[c * 256 + r * 16 + q];
        }
      for (int tid = 0; tid < nt; ++tid) tc_outputs(blk, t, tid, nt, xn_of(b, tid));
      for (int tid = 0; tid < nt; ++tid) {
        blk.template cell_phase<true>(t, tid, nt);
        if (t + 1 < S.L.S) tc_prefetch_x(blk, t + 1, tid, nt, xn_of(b, tid));
      }
    }
}

// The backward replays' blocks (the tc and gather forms): per block its float shared memory NaN and its bf16 shared
// memory 0x7fc0 (NaN), kept over the steps (the grid barrier: all blocks finish a step before any starts the next);
// every block initialised by all its threads (SplitBwd::init, then the form's own init(block, tid, nt)); nxt, every
// thread's item inputs read ahead (for step S-1 here, for step t - 1 by prefetch after step t), as the kernels do.
template <class Cell>
struct TcBwdReplayBlocks {
  static constexpr int nt = kSplitThreads;
  std::vector<float> sm;
  std::vector<uint16_t> smb;
  std::vector<SplitBwd<Cell>> blocks;
  std::vector<typename SplitBwd<Cell>::ItemIn> nxt;
  template <class Init>
  TcBwdReplayBlocks(const SplitLaunch& S, const BwdArgs& a, float* part, Init form_init) {
    const int64_t ff = S.bwd_floats() - SplitLaunch::tc_halves_floats(S.tc_bwd_halves()), hh = S.tc_bwd_halves();
    sm.assign(static_cast<size_t>(S.blocks * ff), __builtin_nanf(""));
    smb.assign(static_cast<size_t>(S.blocks * hh), kBf16Nan);
    for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, part, b, sm.data() + b * ff, smb.data() + b * hh);
    nxt.resize(static_cast<size_t>(S.blocks * nt));
    for (int64_t b = 0; b < S.blocks; ++b) {
      for (int tid = 0; tid < nt; ++tid) blocks[b].init(tid, nt);
      for (int tid = 0; tid < nt; ++tid) form_init(blocks[b], tid, nt);
      for (int tid = 0; tid < nt; ++tid)
        if (tid < S.L.B * blocks[b].n) nxt[b * nt + tid] = blocks[b].item_in(S.L.S - 1, tid);
    }
  }
  TcBwdReplayBlocks(const TcBwdReplayBlocks&) = delete;  // the blocks point into sm / smb
  TcBwdReplayBlocks& operator=(const TcBwdReplayBlocks&) = delete;
  // block b's threads read their item inputs of step t - 1 ahead (after step t, t > 0)
  void prefetch(int64_t b, int64_t t) {
    for (int tid = 0; tid < nt; ++tid)
      if (t > 0 && tid < blocks[b].S.L.B * blocks[b].n) nxt[b * nt + tid] = blocks[b].item_in(t - 1, tid);
  }
};

template <class Cell>
void split_tc_backward_replay(const SplitLaunch& S, const BwdArgs& a) {
  const int nt = kSplitThreads;
  std::vector<float> part(static_cast<size_t>(S.part_floats()), __builtin_nanf(""));
  TcBwdReplayBlocks<Cell> rb(S, a, part.data(), [](const SplitBwd<Cell>& g, int tid, int n) { tc_backward_init(g, tid, n); });
  const std::vector<SplitBwd<Cell>>& blocks = rb.blocks;
  const int64_t JT = S.tc_kt(), MT = S.tc_mt(), NT = S.tc, lddp = S.lddp();
  std::vector<float> acc(256), frag(256);
  for (int64_t t = S.L.S - 1; t >= 0; --t)
    for (int64_t b = 0; b < S.blocks; ++b) {
      const SplitBwd<Cell>& blk = blocks[b];
      for (int tid = 0; tid < nt; ++tid) tc_sum_phase(blk, t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) tc_cell_phase(blk, t, tid, nt, rb.nxt[b * nt + tid]);
      for (int wp = 0; wp < kTcWarps; ++wp) {
        float* scratch = blk.scratch + SplitLaunch::scratch_tile(wp);
        for (int64_t mt = 0; mt < MT; ++mt)
          for (int64_t jt = wp; jt < JT; jt += kTcWarps) {
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t c = 0; c < NT; ++c) {
              tc_host_fragment(S, blk.rs, jt, c, true, frag.data());
              tc_host_mma(acc.data(), blk.db + S.db_tile(mt, c), lddp, frag.data());
            }
            for (int r = 0; r < 16; ++r)
              for (int q = 0; q < 16; ++q) scratch[r * kTcScratchLd + q] = acc[r * 16 + q];
            for (int lane = 0; lane < 32; ++lane) tc_part_store(blk, t, mt, jt, lane, scratch);
          }
      }
      rb.prefetch(b, t);
    }
  for (auto& blk : blocks)
    for (int tid = 0; tid < nt; ++tid) blk.final_phase(tid, nt);
}

// ---- host check of wmma's rules on the tensor-core forms' tiles ----------------------------------------------------
// Every pointer the kernels pass to load_matrix_sync / store_matrix_sync must be 32-byte aligned and every leading
// dimension a multiple of 16 bytes (8 halves, 4 floats), or wmma's behaviour is undefined: the host replays, which
// index plain arrays, cannot see that. Counts the violations, and the tiles reaching outside their arrays, of the
// forward's (fwd) or backward's tiles (S.gather: the gather kernel's) for plan S, offsets as the kernels take them
// (the SplitLaunch tile helpers) from the base of the block's shared memory (32-byte aligned: __align__(32)).
inline int64_t tc_wmma_errors(const SplitLaunch& S, bool fwd) {
  int64_t bad = 0;
  const int64_t halves = fwd ? S.tc_fwd_halves() : S.tc_bwd_halves();
  const int64_t fbase = SplitLaunch::tc_halves_floats(halves) * 4;  // the float arrays' first byte
  // a 16 x 16 tile at element offset `off` of an array at byte `base` with `esize`-byte elements, leading dimension
  // ld, inside [base, base + extent elements)
  const auto tile = [&](int64_t base, int64_t off, int64_t esize, int64_t ld, int64_t extent) {
    if ((base + off * esize) % 32 != 0 || (ld * esize) % 16 != 0 || off < 0 || off + 15 * ld + 15 >= extent) ++bad;
  };
  const int64_t MT = S.tc_mt();
  if (fwd) {
    const int64_t KT = S.tc_kt();
    for (int64_t kt = 0; kt < KT; ++kt) {
      for (int64_t mt = 0; mt < MT; ++mt) tile(2 * S.hb_base(), S.hb_tile(mt, kt), 2, S.ldhb(), 16 * MT * S.ldhb());
      for (int64_t c = 0; c < S.tc; ++c) tile(0, S.rs_tile(kt, c), 2, S.ldrs(), S.rs_halves());
    }
    for (int64_t wp = 0; wp < kTcWarps; ++wp)
      for (int64_t mt = 0; mt < MT; ++mt)
        for (int64_t c = 0; c < S.tc; ++c) tile(fbase, S.red_tile(wp, mt, c), 4, S.ldred(), S.tc_red_floats());
  } else if (S.gather) {
    const int64_t KT = S.gather_kt(), UT = S.tc_ut();
    for (int64_t kt = 0; kt < KT; ++kt) {
      for (int64_t mt = 0; mt < MT; ++mt) tile(2 * S.db_base(), S.dg_tile(mt, kt), 2, S.ldg(), 16 * MT * S.ldg());
      for (int64_t ut = 0; ut < UT; ++ut) tile(0, S.rg_tile(ut, kt), 2, S.ldg(), 16 * UT * S.ldg());
    }
    for (int64_t wp = 0; wp < kTcWarps; ++wp)
      for (int64_t mt = 0; mt < MT; ++mt)
        for (int64_t ut = 0; ut < UT; ++ut) tile(fbase, S.gred_tile(wp, mt, ut), 4, S.ldgred(), S.gather_red_floats());
    if (S.db_base() + 16 * MT * S.ldg() > halves) ++bad;  // dg inside the bf16 region
  } else {
    const int64_t JT = S.tc_kt();
    for (int64_t c = 0; c < S.tc; ++c) {
      for (int64_t mt = 0; mt < MT; ++mt) tile(2 * S.db_base(), S.db_tile(mt, c), 2, S.lddp(), 16 * MT * S.lddp());
      for (int64_t jt = 0; jt < JT; ++jt) tile(0, S.rs_tile(jt, c), 2, S.ldrs(), S.rs_halves());
    }
    for (int64_t wp = 0; wp < kTcWarps; ++wp) tile(fbase, SplitLaunch::scratch_tile(wp), 4, kTcScratchLd, S.tc_scratch_floats());
  }
  return bad;
}
