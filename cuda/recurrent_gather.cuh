// The "gather" exchange of the bf16 tensor-core backward of the split-head sLSTM / LSTM recurrences (included by
// cuda/recurrent.cu after recurrent_tc.cuh, inside its anonymous namespace; opt-in: cuda::set_recurrent_exchange).
// The tc backward of recurrent_tc.cuh exchanges partial sums: every block multiplies its own gate columns' dp into a
// partial ∂h_{t-1} of ALL the head's units (B x DH floats written per block per step) and every block then sums the
// P partials of its own units (a reduce-scatter: the writes must land before the grid barrier, the sums wait on them
// after it). Here the blocks exchange dp instead (an all-gather, as the forward exchanges h):
//   block (head hd, units [u0, u0+n)) keeps R's ROWS of its own units over all 4DH head columns as bf16 (rg
//   [16·ut][ldg], pads 0), and at step t (reverse):
//   (0) stages the head's dp of step t+1 (every block wrote its own columns, bf16, into the exchange buffer dpx before
//       the last grid barrier) into dg [16·mt][ldg] (bf16, pads 0);
//   (1) ∂h_t's recurrent part for its own units, Σ_k dg[b][k]·rg[j][k] over the head's 4DH columns, on tensor cores:
//       warp wp takes the k-tiles kt = wp, wp + 8, ... (one float32 accumulator per 16 x 16 output tile) and stores
//       it to red[wp]; the cell phase adds the 8 warps' partials in warp order (SplitBwd::gather_summed);
//   (2) the cell backward of its items (SplitBwd::cell_item: dx, dx_tb for dR, ∂c, ∂n), writing its dp rounded to bf16
//       into dpx[t & 1] (the head's columns g·DH + u); grid barrier.
//   After step 0 one more (0) + (1) gives ∂h_{-1} for dstate0 (SplitBwd::final_phase).
// Per step a block writes B x 4n bf16 values and reads B x 4DH (G1: 768 B and 98 KB) where the partials form writes
// B x DH floats and reads P x B x n (49 KB each): the same bytes read, almost none written, and all of a block's reads
// independent (8 loads of 16 bytes in flight per thread), none of them dependent adds. dR / dbias as the tc form's.
// The sums differ from the partials form's only in order (bf16 x bf16 products are exact in float32; here each
// warp's k-tiles in one accumulator, then the warps in order). Host replay: split_gather_backward_replay, the same
// phase functions with the 16 x 16 x 16 products as loops (tc_host_mma), shared memory and dpx NaN-filled.
#pragma once

// R's rows of the block's own units over the head's 4DH columns into rg as bf16 (rows jj >= n and columns >= 4DH: 0),
// and dg all 0 (its pad rows and columns stay 0; gather_stage fills the rest each step)
template <class Cell>
__host__ __device__ inline void gather_init(const SplitBwd<Cell>& g, int tid, int nt) {
  const SplitLaunch& S = g.S;
  const int64_t G = S.L.G, ld = S.ldg(), rows = 16 * S.tc_ut();
  const float* Rg = g.a.R + g.hd * S.L.DH * G;
  for (int64_t i = tid; i < rows * ld; i += nt) {
    const int64_t jj = i / ld, k = i % ld;
    g.rs[i] = jj < g.n && k < G ? bf16_math::round(Rg[(g.u0 + jj) * G + k]) : uint16_t{0};
  }
  for (int64_t i = tid; i < 16 * S.tc_mt() * ld; i += nt) g.db[i] = 0;
}

// (0) the head's dp of the step that wrote buffer `buf` into dg (tc_stage_rows: 8 columns per 16-byte load where 4DH
// is a multiple of 8)
template <class Cell>
__host__ __device__ inline void gather_stage(const SplitBwd<Cell>& g, int64_t buf, int tid, int nt) {
  const SplitLaunch& S = g.S;
  tc_stage_rows(g.db, S.ldg(), g.a.dpx + S.dpx_off(buf, 0, g.hd, 0), S.L.NH * S.L.G, S.L.B, S.L.G, tid, nt);
}

// The block's own products on the host: warp wp's accumulators over its k-tiles in order (tc_host_mma: each output
// one fma chain over a tile's 16 k), stored to red[wp] as the kernel's store_matrix_sync does
template <class Cell>
void gather_products_replay(const SplitBwd<Cell>& g) {
  const SplitLaunch& S = g.S;
  const int64_t KT = S.gather_kt(), MT = S.tc_mt(), UT = S.tc_ut(), ld = S.ldg(), ldr = S.ldgred();
  std::vector<float> acc(256), frag(256);
  for (int wp = 0; wp < kTcWarps; ++wp)
    for (int64_t mt = 0; mt < MT; ++mt)
      for (int64_t ut = 0; ut < UT; ++ut) {
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t kt = wp; kt < KT; kt += kTcWarps) {
          for (int k = 0; k < 16; ++k)  // op(B)[k][q] = R[j = 16·ut + q][16·kt + k] (column-major rg)
            for (int q = 0; q < 16; ++q) frag[k * 16 + q] = bf16_math::widen(g.rs[S.rg_tile(ut, kt) + q * ld + k]);
          tc_host_mma(acc.data(), g.db + S.dg_tile(mt, kt), ld, frag.data());
        }
        for (int r = 0; r < 16; ++r)
          for (int q = 0; q < 16; ++q) g.scratch[S.gred_tile(wp, mt, ut) + r * ldr + q] = acc[r * 16 + q];
      }
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
// (1) on the device: warp wp's 16 x 16 output tiles (row tile mt, unit tile ut), its k-tiles kt = wp, wp + 8, ... in
// one float32 accumulator, stored to red[wp]
template <class Cell>
__device__ void gather_products(const SplitBwd<Cell>& g, int wp) {
  namespace wmma = nvcuda::wmma;
  const SplitLaunch& S = g.S;
  const int64_t KT = S.gather_kt(), MT = S.tc_mt(), UT = S.tc_ut(), ld = S.ldg(), ldr = S.ldgred();
  const __nv_bfloat16* rg = reinterpret_cast<const __nv_bfloat16*>(g.rs);
  const __nv_bfloat16* dg = reinterpret_cast<const __nv_bfloat16*>(g.db);
  for (int64_t mt = 0; mt < MT; ++mt)
    for (int64_t ut = 0; ut < UT; ++ut) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.0f);
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;  // op(B)[k][j] = rg[j][k]
      for (int64_t kt = wp; kt < KT; kt += kTcWarps) {
        wmma::load_matrix_sync(fa, dg + S.dg_tile(mt, kt), static_cast<unsigned>(ld));
        wmma::load_matrix_sync(fb, rg + S.rg_tile(ut, kt), static_cast<unsigned>(ld));
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(g.scratch + S.gred_tile(wp, mt, ut), acc, static_cast<unsigned>(ldr), wmma::mem_row_major);
    }
}
#endif

template <class Cell>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_gather_backward_kernel(BwdArgs a, SplitLaunch S) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  namespace cg = cooperative_groups;
  extern __shared__ __align__(32) float4 smem_gather[];
  uint16_t* smb = reinterpret_cast<uint16_t*>(smem_gather);
  float* smf = reinterpret_cast<float*>(smem_gather) + SplitLaunch::tc_halves_floats(S.tc_bwd_halves());
  cg::grid_group grid = cg::this_grid();
  const SplitBwd<Cell> blk(S, a, nullptr, blockIdx.x, smf, smb);
  const int tid = threadIdx.x, nt = blockDim.x, wp = tid / 32;
  blk.init(tid, nt);
  gather_init(blk, tid, nt);
  __syncthreads();
  // item tid's inputs for the next step, loaded before the barrier that precedes it (SplitBwd::item_in)
  const int64_t items = S.L.B * blk.n;
  typename SplitBwd<Cell>::ItemIn nxt{};
  if (tid < items) nxt = blk.item_in(S.L.S - 1, tid);
  for (int64_t t = S.L.S - 1; t >= 0; --t) {
    if (t + 1 < S.L.S) {
      gather_stage(blk, (t + 1) & 1, tid, nt);
      __syncthreads();
      gather_products(blk, wp);
      __syncthreads();
    }
    tc_cell_phase<Cell, true>(blk, t, tid, nt, nxt);
    if (t > 0 && tid < items) nxt = blk.item_in(t - 1, tid);
    __threadfence();
    grid.sync();
  }
  gather_stage(blk, 0, tid, nt);  // step 0's dp: ∂h_{-1}
  __syncthreads();
  gather_products(blk, wp);
  __syncthreads();
  blk.final_phase(tid, nt);
#endif
}

// The gather kernel where it applies (the tc form's units per block), nullptr elsewhere.
template <class Cell>
void* gather_backward_kernel(const SplitLaunch& S) {
  return S.tc && S.gather ? reinterpret_cast<void*>(rec_split_gather_backward_kernel<Cell>) : nullptr;
}

// The blocks as TcBwdReplayBlocks sets them up, the exchange buffer 0x7fc0 (NaN) too (dpx is double-buffered by step
// parity).
template <class Cell>
void split_gather_backward_replay(const SplitLaunch& S, const BwdArgs& args) {
  const int nt = kSplitThreads;
  std::vector<uint16_t> dpx(static_cast<size_t>(S.dpx_halves()), kBf16Nan);
  BwdArgs a = args;
  a.dpx = dpx.data();
  TcBwdReplayBlocks<Cell> rb(S, a, nullptr, [](const SplitBwd<Cell>& g, int tid, int n) { gather_init(g, tid, n); });
  for (int64_t t = S.L.S - 1; t >= 0; --t)
    for (int64_t b = 0; b < S.blocks; ++b) {
      const SplitBwd<Cell>& blk = rb.blocks[b];
      if (t + 1 < S.L.S) {
        for (int tid = 0; tid < nt; ++tid) gather_stage(blk, (t + 1) & 1, tid, nt);
        gather_products_replay(blk);
      }
      for (int tid = 0; tid < nt; ++tid) tc_cell_phase<Cell, true>(blk, t, tid, nt, rb.nxt[b * nt + tid]);
      rb.prefetch(b, t);
    }
  for (auto& blk : rb.blocks) {
    for (int tid = 0; tid < nt; ++tid) gather_stage(blk, 0, tid, nt);
    gather_products_replay(blk);
    for (int tid = 0; tid < nt; ++tid) blk.final_phase(tid, nt);
  }
}
