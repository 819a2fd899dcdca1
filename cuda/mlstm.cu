// CUDA twin of csrc/kernels/mlstm.cc: the mLSTM cell (XLSTM_SPEC §4), chunkwise form (§4.5 forward, §4.6 backward)
// and recurrent step form (§4.3), on device memory. Same names, argument order, layouts, state convention,
// stabilisers, ε and `saved` contents as the CPU kernels (csrc/kernels/mlstm.h); the gate / stabiliser math is
// csrc/kernels/mlstm_math.h (the functions the CPU runs: logσ, the step gates, the normaliser) and the float
// exponentials are fast_math.h's fm_exp, the CPU's exp_f. Only summation orders differ from the CPU.
//
// Chunkwise forward (Geo: per (b, h) "bh", chunk c of length l, positions t0 = c·L ..):
//   gates_chunk   thread per (bh, c): φ = logσ(f̃), b (cumsum), w = ĩ − b, a (suffix sum + ĩ), prefix max of w,
//                 g = b_{l−1}, max a  (double, sequential in the CPU's order)
//   fwd_seq       thread per bh: m_{c+1} = max(g + m_c, max a), γ_c, F = Σ g; m_last (m_0 = 0 convention)
//   fwd_pos       thread per position: μ, β = exp(m_c − M), s·α = s·exp(a − m_{c+1})
//   fwd_state     C_{c+1} = γ C_c + Σ_τ (sα_τ k_τ) v_τᵀ over the chunks in order (each element evolves on its own):
//                 C by a block per (bh, 64 x 64 tile) with the chunk's k / v slices staged in shared memory (fwd_state_
//                 tile), n by a thread per element; saved C_c, n_c; c_last, n_last
//   tile<FWD_H>   block per (bh, c, 16-row tile, 64-column tile) of h: P = s (Q Kᵀ) ⊙ E in 16 x 32 tiles through
//                 shared memory (causal tiles only), h = (P V + β Q C_c) / (max(|den|, exp(−μ)) + ε), den saved
// Chunkwise backward:
//   gates_chunk, bwd_seq (γ_c from the saved m), bwd_pos (warp per position: β, sα, 1/normaliser, ρ),
//   bwd_lambda    Λ = [Λᶜ | Λⁿ]: Λ_c = γ_c Λ_{c+1} + Q_cᵀ (β ⊙ [δ | ρ]) in reverse (Λᶜ by a block per 64 x 64 tile with
//                 the chunk's slices in shared memory, Λⁿ by a thread per element); every Λ_{c+1} kept (one slot per
//                 chunk), Λ_0 -> dc0, dn0
//   bwd_reduce    block per bh: ⟨Λ_NC, C_NC⟩ and dm0 = ⟨Λ_0, C_0⟩, fixed-order tree
//   tile<DQ/DK/DV> the three gradient products of each chunk (Ω' K + β δ C_cᵀ + β ρ n_cᵀ; Ω'ᵀ Q + sα V Λᶜᵀ + sα Λⁿᵀ;
//                 Pᵀ δ + sα K Λᶜ), one block per output tile, the L x L weights recomputed per tile
//   bwd_dots      warp per position: ∂ĩ = k·∂k, r = q·∂q − k·∂k (double, fixed lane tree)
//   bwd_df        ∂f̃_t = σ(−f̃_t)(⟨Λ_NC, C_NC⟩ + Σ_{u≥t} r_u): a thread per (bh, chunk) sums its chunk's r in
//                 reverse (bwd_df_sum), then a thread per (bh, chunk) starts from ⟨Λ_NC, C_NC⟩ plus the later chunks'
//                 sums (last first) and walks its positions in reverse (the suffix sums regrouped by chunk in
//                 double: a thread per bh walking all S positions was G2's slowest launch)
// Recurrent (per bh the gates depend on m only, and every element of C and n evolves on its own):
//   rec_gates (thread per bh: f', i', m_t), rec_n (block per bh: n_t, den_t = q·n by a fixed tree),
//   rec_c (thread per (bh, column x): C[:, x] and num_t[x] = C_tᵀ q; h); the backward recomputes these from the
//   saved segment checkpoints, then rec_rows (thread per (bh, j): ∂q, ∂k and the ∂f' terms of row j, recomputing
//   the segment's rows of C), rec_cols (thread per (bh, x): ∂v), rec_dots (thread per position: ∂ĩ, ∂f̃).
// No float atomics anywhere: every output element has exactly one writer (checked on the host by mlstm_coverage,
// which replays the launches' __host__ __device__ index maps) and every sum runs in a fixed order.
// Device entries only enqueue on `stream` (a cudaStream_t; nullptr = default stream; scratch is stream-ordered,
// cudaMallocAsync); *_host entries copy in, run, copy out and synchronise. CUDA errors throw
// std::runtime_error("<entry>: <what>: <cudaGetErrorString>").
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_grouped.h"
#include "kernels/bf16_math.h"
#include "kernels/fast_math.h"
#include "kernels/mlstm.h"
#include "kernels/mlstm_math.h"
#include "kernels/row_launch.h"

namespace xlstm {
namespace cuda {
namespace {

using hostutil::check;
using hostutil::DeviceBuffer;
using hostutil::device_sync;
using hostutil::launched;
using hostutil::StreamScratch;
using mlstm_detail::SavedLayout;
namespace mm = mlstm_math;

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // grid-stride loops beyond this

// ---- geometry: the index maps every kernel and mlstm_coverage share -------------------------------------------

struct Geo {
  int64_t BH, S, DK, DV, L, NC, W;  // W: floats of `saved` per bh
  float s, eps;
};

Geo make_geo(const MlstmDims& d, int64_t chunk, float eps) {
  Geo g;
  g.BH = d.B * d.NH;
  g.S = d.S;
  g.DK = d.DK;
  g.DV = d.DV;
  g.L = std::min(chunk, d.S);
  g.NC = mlstm_num_chunks(d.S, chunk);
  g.W = SavedLayout{g.NC, d.DK, d.DV, d.S}.size();
  g.s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.DK)));
  g.eps = eps;
  return g;
}

__host__ __device__ inline int64_t chunk_len(const Geo& g, int64_t c) {
  const int64_t r = g.S - c * g.L;
  return r < g.L ? r : g.L;
}
// offsets inside one bh block of `saved` (SavedLayout)
__host__ __device__ inline int64_t sv_C(const Geo& g, int64_t c) { return c * g.DK * g.DV; }
__host__ __device__ inline int64_t sv_n(const Geo& g, int64_t c) { return (g.NC + 1) * g.DK * g.DV + c * g.DK; }
__host__ __device__ inline int64_t sv_m(const Geo& g) { return (g.NC + 1) * g.DK * (g.DV + 1); }
__host__ __device__ inline int64_t sv_mu(const Geo& g) { return sv_m(g) + g.NC + 2; }
__host__ __device__ inline int64_t sv_den(const Geo& g) { return sv_mu(g) + g.S; }
// element e of the state [C | n] (DK·DV + DK) of chunk c inside the saved block
__host__ __device__ inline int64_t sv_state(const Geo& g, int64_t c, int64_t e) {
  return e < g.DK * g.DV ? sv_C(g, c) + e : sv_n(g, c) + (e - g.DK * g.DV);
}
__host__ __device__ inline int64_t state_elems(const Geo& g) { return g.DK * g.DV + g.DK; }

// M_τ = max(m_c, max_{σ≤τ} w_σ) (m_c only when a state enters the chunk), as the CPU's running max
__host__ __device__ inline double row_M(bool has, double mc, double wpre) { return has ? (mc < wpre ? wpre : mc) : wpre; }
__host__ __device__ inline bool finite_f(float x) { return x - x == 0.0f; }

// The L x L tile kernel: block = 16 rows x 16 column threads, each thread 4 outputs of a 64-column tile.
struct Tile {
  static constexpr int RT = 16, CT = 32, PT = 32, XT = 64, TX = 16, XI = XT / TX;
  static constexpr int THREADS = RT * TX;
  // Chunks up to PCOLS long keep a row tile's whole weight matrix (RT x l: P or Ω) in shared memory, so one block
  // computes it once and then every XT-wide output tile from it (the "all columns" form); longer chunks take one
  // block per output tile, each recomputing the weights (XLSTM_SPEC §4.5: the weights' dot products are the larger
  // part of the work when Dout > XT, e.g. ×8 at DHv 512).
  static constexpr int PCOLS = 128;
  __host__ __device__ static bool all_cols(const Geo& g) { return g.L <= PCOLS; }
  __host__ __device__ static int64_t row_tiles(const Geo& g) { return (g.L + RT - 1) / RT; }
  __host__ __device__ static int64_t col_tiles(int64_t Dout) { return (Dout + XT - 1) / XT; }
  // output tiles per block, and blocks per launch
  __host__ __device__ static int64_t block_col_tiles(const Geo& g, int64_t Dout) { return all_cols(g) ? col_tiles(Dout) : 1; }
  __host__ __device__ static int64_t blocks(const Geo& g, int64_t Dout) {
    return g.BH * g.NC * row_tiles(g) * (all_cols(g) ? 1 : col_tiles(Dout));
  }
  // block id -> (bh, chunk, row tile, first column tile)
  __host__ __device__ static void decode(const Geo& g, int64_t Dout, int64_t bid, int64_t* bh, int64_t* c, int64_t* rt,
                                         int64_t* xt) {
    const int64_t nx = all_cols(g) ? 1 : col_tiles(Dout), nr = row_tiles(g);
    *xt = bid % nx;
    bid /= nx;
    *rt = bid % nr;
    bid /= nr;
    *c = bid % g.NC;
    *bh = bid / g.NC;
  }
  // output i of thread tid: row (in the chunk) and column; false when outside the chunk / the output width
  __host__ __device__ static bool out_elem(const Geo& g, int64_t Dout, int64_t c, int64_t rt, int64_t xt, int tid, int i,
                                           int64_t* row, int64_t* col) {
    *row = rt * RT + tid / TX;
    *col = xt * XT + tid % TX + i * TX;
    return *row < chunk_len(g, c) && *col < Dout;
  }
  // shared staging: the k-th slot thread tid loads of a rows x cols tile (slots row-major)
  __host__ __device__ static void slot(int tid, int k, int cols, int* r, int* cc) {
    const int idx = tid + k * THREADS;
    *r = idx / cols;
    *cc = idx % cols;
  }
};

// Warp-per-position kernels: 8 warps per block.
constexpr int kWarps = kThreads / 32;

unsigned grid_for(int64_t n, int64_t per_block) { return hostutil::grid_for(n, per_block, kMaxBlocks); }

__device__ inline double warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ inline float warp_sum_f(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// ---- kernel bodies ---------------------------------------------------------------------------------------------
// Every kernel's work is __host__ __device__ code: a per-item function for the grid-stride kernels (one thread, or
// one warp lane, per item) and, for the kernels with __syncthreads, per-phase functions taking the thread index.
// The __global__ kernels only loop over their items / phases; the *_emulate entries (end of the file) run the very
// same functions on the host, every block in turn, each phase by all its threads before the next (what
// __syncthreads guarantees), warp sums as the shuffle butterfly (rows::host_row_reduce), shared memory a host array
// filled with NaN at each block's start.
#define XLSTM_MLSTM_HD __host__ __device__ __forceinline__
#define XLSTM_GRID_STRIDE(var, n)                                                                      \
  for (int64_t var = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; var < (n); \
       var += static_cast<int64_t>(blockDim.x) * gridDim.x)

// ---- chunkwise: gates -----------------------------------------------------------------------------------------

// Per position: gw = w, gp = prefix max of w (in the chunk), ga = a, gb = b; per chunk: gc[2c] = g, gc[2c+1] = max a.
XLSTM_MLSTM_HD void gates_chunk_item(const Geo& g, const float* __restrict__ fg, const float* __restrict__ ig,
                                     double* gw, double* gp, double* ga, double* gb, double* gc, int64_t task) {
  const int64_t bh = task / g.NC, c = task % g.NC, l = chunk_len(g, c);
  const int64_t p0 = bh * g.S + c * g.L;
  double acc = 0.0, run = -INFINITY;
  for (int64_t t = 0; t < l; ++t) {
    acc += mm::logsig_v(static_cast<double>(fg[p0 + t]));
    const double w = static_cast<double>(ig[p0 + t]) - acc;
    gb[p0 + t] = acc;
    gw[p0 + t] = w;
    run = run < w ? w : run;
    gp[p0 + t] = run;
  }
  gc[2 * task] = acc;
  double suf = 0.0, amax = -INFINITY;
  for (int64_t t = l - 1; t >= 0; --t) {
    const double a = suf + static_cast<double>(ig[p0 + t]);
    ga[p0 + t] = a;
    amax = amax < a ? a : amax;
    suf += mm::logsig_v(static_cast<double>(fg[p0 + t]));  // φ_t again (cheaper than storing it)
  }
  gc[2 * task + 1] = amax;
}
__global__ void gates_chunk_kernel(Geo g, const float* __restrict__ fg, const float* __restrict__ ig, double* gw,
                                   double* gp, double* ga, double* gb, double* gc) {
  XLSTM_GRID_STRIDE(task, g.BH * g.NC) gates_chunk_item(g, fg, ig, gw, gp, ga, gb, gc, task);
}

// m_c for every chunk (saved), γ_c, and the final stabiliser (m_0 = 0 convention, XLSTM_SPEC §4.7).
XLSTM_MLSTM_HD void fwd_seq_item(const Geo& g, const double* __restrict__ gc, const float* __restrict__ m0,
                                 bool empty_init, float* saved, float* gamma, float* scale, float* m_last, int64_t bh) {
  float* Ms = saved + bh * g.W + sv_m(g);
  Ms[0] = m0 ? m0[bh] : (empty_init ? -INFINITY : 0.0f);
  double F = 0.0;
  for (int64_t c = 0; c < g.NC; ++c) {
    const double mc = Ms[c];
    const bool has = finite_f(Ms[c]);
    const double gg = gc[2 * (bh * g.NC + c)], amax = gc[2 * (bh * g.NC + c) + 1];
    const double cand = gg + mc;
    const float mn = static_cast<float>(has ? (cand < amax ? amax : cand) : amax);
    gamma[bh * g.NC + c] = has ? static_cast<float>(exp(gg + mc - static_cast<double>(mn))) : 0.0f;
    F += gg;
    Ms[c + 1] = mn;
  }
  const float mint = Ms[g.NC];
  const double mi = static_cast<double>(mint);
  const float mout = empty_init ? static_cast<float>(mi < F ? F : mi) : mint;
  scale[bh] = static_cast<float>(exp(mi - static_cast<double>(mout)));
  Ms[g.NC + 1] = mout;
  m_last[bh] = mout;
}
__global__ void fwd_seq_kernel(Geo g, const double* __restrict__ gc, const float* __restrict__ m0, bool empty_init,
                               float* saved, float* gamma, float* scale, float* m_last) {
  XLSTM_GRID_STRIDE(bh, g.BH) fwd_seq_item(g, gc, m0, empty_init, saved, gamma, scale, m_last, bh);
}

// γ_c from the saved stabilisers (the backward).
XLSTM_MLSTM_HD void bwd_seq_item(const Geo& g, const double* __restrict__ gc, const float* __restrict__ saved,
                                 float* gamma, int64_t task) {
  const int64_t bh = task / g.NC, c = task % g.NC;
  const float* Ms = saved + bh * g.W + sv_m(g);
  gamma[task] = finite_f(Ms[c]) ? static_cast<float>(exp(gc[2 * task] + static_cast<double>(Ms[c]) - static_cast<double>(Ms[c + 1]))) : 0.0f;
}
__global__ void bwd_seq_kernel(Geo g, const double* __restrict__ gc, const float* __restrict__ saved, float* gamma) {
  XLSTM_GRID_STRIDE(task, g.BH * g.NC) bwd_seq_item(g, gc, saved, gamma, task);
}

// μ (saved), β, sα per position.
XLSTM_MLSTM_HD void fwd_pos_item(const Geo& g, const double* __restrict__ gp, const double* __restrict__ ga,
                                 const double* __restrict__ gb, float* saved, float* beta, float* alpha, int64_t p) {
  const int64_t bh = p / g.S, t = p % g.S, c = t / g.L;
  float* sv = saved + bh * g.W;
  const float* Ms = sv + sv_m(g);
  const bool has = finite_f(Ms[c]);
  const double mc = Ms[c];
  const double M = row_M(has, mc, gp[p]);
  sv[sv_mu(g) + t] = static_cast<float>(gb[p] + M);
  beta[p] = has ? fm_exp(static_cast<float>(mc - M)) : 0.0f;
  alpha[p] = g.s * fm_exp(static_cast<float>(ga[p] - static_cast<double>(Ms[c + 1])));
}
__global__ void fwd_pos_kernel(Geo g, const double* __restrict__ gp, const double* __restrict__ ga,
                               const double* __restrict__ gb, float* saved, float* beta, float* alpha) {
  XLSTM_GRID_STRIDE(p, g.BH * g.S) fwd_pos_item(g, gp, ga, gb, saved, beta, alpha, p);
}

// ---- chunkwise forward: inter-chunk states ----------------------------------------------------------------------

// The n part of the inter-chunk states, n_{c+1} = Σ_{t in c} α_t k_t + γ_c n_c, in two passes so that the long walk
// over the sequence is spread over many threads: (1) an item per (bh, chunk c, j): the chunk's sum from 0 over its
// positions in order into nsum [BH][NC][DK]; (2) an item per (bh, j): the walk over the chunks, n_{c+1} = s_c +
// γ_c n_c, writing every state slot and n_last = scale · n_NC. (A thread per (bh, j) walking all S positions kept
// G2's BH·DK = 2,048 threads, 8 blocks, busy for ~0.9 ms each way.)
XLSTM_MLSTM_HD void fwd_n_sum_item(const Geo& g, const float* __restrict__ k, const float* __restrict__ alpha,
                                   float* nsum, int64_t idx) {
  const int64_t j = idx % g.DK, bc = idx / g.DK, c = bc % g.NC, bh = bc / g.NC;
  const int64_t l = chunk_len(g, c), p0 = bh * g.S + c * g.L;
  float s = 0.0f;
  for (int64_t t = 0; t < l; ++t) s += alpha[p0 + t] * k[(p0 + t) * g.DK + j];
  nsum[idx] = s;
}
XLSTM_MLSTM_HD void fwd_n_walk_item(const Geo& g, const float* __restrict__ nsum, const float* __restrict__ gamma,
                                    const float* __restrict__ scale, const float* __restrict__ n0, float* saved,
                                    float* n_last, int64_t idx) {
  const int64_t bh = idx / g.DK, j = idx % g.DK, e = g.DK * g.DV + j;
  float* sv = saved + bh * g.W;
  float val = n0 ? n0[bh * g.DK + j] : 0.0f;
  sv[sv_state(g, 0, e)] = val;
  for (int64_t c = 0; c < g.NC; ++c) {
    const float gm = gamma[bh * g.NC + c], sc = nsum[(bh * g.NC + c) * g.DK + j];
    val = sc + gm * val;
    sv[sv_state(g, c + 1, e)] = val;
  }
  n_last[bh * g.DK + j] = scale[bh] * val;
}
// The C part of the inter-chunk states as a tiled product (fwd_n_* above keep the n part): a block per (bh,
// 64 x 64 tile of C) walks the chunks in order, each K slice of 16 positions staged in shared memory as
// Ks[t][j] = α_t k_t[j] and Vs[t][x] = v_t[x]; each thread owns a register tile and per element the sum over the
// chunk's positions in order (one fmaf each), then
// C_{c+1} = acc + γ_c C_c (512 threads, 2 x 4 each: rows ty + 32 i, columns tx + 16 j). Every
// K / V element is read from global memory once per block instead of once per thread.
struct StateTile {
  static constexpr int TJ = 64, TXC = 64, BT = 16, TX = 16, TY = 32, TM = TJ / TY, TN = TXC / TX, THREADS = TX * TY;
  static constexpr int LOADS = BT * TJ / THREADS;  // per operand per slice
  __host__ __device__ static int64_t j_tiles(const Geo& g) { return (g.DK + TJ - 1) / TJ; }
  __host__ __device__ static int64_t x_tiles(const Geo& g) { return (g.DV + TXC - 1) / TXC; }
  __host__ __device__ static int64_t blocks(const Geo& g) { return g.BH * j_tiles(g) * x_tiles(g); }
  __host__ __device__ static void decode(const Geo& g, int64_t bid, int64_t* bh, int64_t* j0, int64_t* x0) {
    const int64_t nx = x_tiles(g), nj = j_tiles(g);
    *x0 = (bid % nx) * TXC;
    bid /= nx;
    *j0 = (bid % nj) * TJ;
    *bh = bid / nj;
  }
  // slot l of thread tid in a slice: position t < BT, column (j or x) within the tile
  __host__ __device__ static void slot(int tid, int l, int* t, int* col) {
    const int idx = tid + l * THREADS;
    *t = idx / TJ;
    *col = idx % TJ;
  }
};
struct StateShared {
  float Ks[StateTile::BT][StateTile::TJ + 4];
  float Vs[StateTile::BT][StateTile::TXC + 4];
};

// A slice's terms for thread (tx, ty): the staged positions of chunk c from t0 in order (only those inside the
// chunk: the same terms as the n part's sums), one fmaf each.
__host__ __device__ inline void state_tile_accumulate(const Geo& g, int64_t c, int64_t t0, int tx, int ty, const StateShared& sh,
                                                      float (&acc)[StateTile::TM][StateTile::TN]) {
  const int64_t l = chunk_len(g, c);
  const int n = static_cast<int>(l - t0 < StateTile::BT ? l - t0 : StateTile::BT);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj)
        acc[i][jj] = fmaf(sh.Ks[t][ty + i * StateTile::TY], sh.Vs[t][tx + jj * StateTile::TX], acc[i][jj]);
}

struct StateTileArgs {
  Geo g;
  const float *k, *v, *alpha, *gamma, *scale, *c0;
  float *saved, *c_last;
};

// one thread's part of a block: phases called by the kernel (with __syncthreads between) and by the host replay
struct StateTileBlock {
  const StateTileArgs& a;
  int64_t bh, j0, x0;
  __host__ __device__ StateTileBlock(const StateTileArgs& args, int64_t bid) : a(args) { StateTile::decode(a.g, bid, &bh, &j0, &x0); }
  __host__ __device__ bool elem(int tx, int ty, int i, int jj, int64_t* j, int64_t* x) const {
    *j = j0 + ty + i * StateTile::TY;
    *x = x0 + tx + jj * StateTile::TX;
    return *j < a.g.DK && *x < a.g.DV;
  }
  // C_0 (the entering state, or 0) into val and saved slot 0
  __host__ __device__ void init(int tx, int ty, float (&val)[StateTile::TM][StateTile::TN]) const {
    const int64_t DKV = a.g.DK * a.g.DV;
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t j, x;
        val[i][jj] = 0.0f;
        if (!elem(tx, ty, i, jj, &j, &x)) continue;
        const int64_t e = j * a.g.DV + x;
        val[i][jj] = a.c0 ? a.c0[bh * DKV + e] : 0.0f;
        a.saved[bh * a.g.W + sv_state(a.g, 0, e)] = val[i][jj];
      }
  }
  // stage positions [t0, t0 + BT) of chunk c (zeros past its end / the tile's edge)
  __host__ __device__ void stage(int64_t c, int64_t t0, int tid, StateShared& sh) const {
    const int64_t l = chunk_len(a.g, c), p0 = bh * a.g.S + c * a.g.L;
    for (int q = 0; q < StateTile::LOADS; ++q) {
      int t, col;
      StateTile::slot(tid, q, &t, &col);
      const bool in_t = t0 + t < l;
      const int64_t p = p0 + t0 + t;
      sh.Ks[t][col] = (in_t && j0 + col < a.g.DK) ? a.alpha[p] * a.k[p * a.g.DK + j0 + col] : 0.0f;
      sh.Vs[t][col] = (in_t && x0 + col < a.g.DV) ? a.v[p * a.g.DV + x0 + col] : 0.0f;
    }
  }
  // C_{c+1} = acc + γ_c C_c into val and saved slot c+1
  __host__ __device__ void finish_chunk(int64_t c, int tx, int ty, const float (&acc)[StateTile::TM][StateTile::TN],
                                        float (&val)[StateTile::TM][StateTile::TN]) const {
    const float gm = a.gamma[bh * a.g.NC + c];
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t j, x;
        if (!elem(tx, ty, i, jj, &j, &x)) continue;
        val[i][jj] = gm != 0.0f ? acc[i][jj] + gm * val[i][jj] : acc[i][jj];
        a.saved[bh * a.g.W + sv_state(a.g, c + 1, j * a.g.DV + x)] = val[i][jj];
      }
  }
  __host__ __device__ void finish(int tx, int ty, const float (&val)[StateTile::TM][StateTile::TN]) const {
    const int64_t DKV = a.g.DK * a.g.DV;
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t j, x;
        if (elem(tx, ty, i, jj, &j, &x)) a.c_last[bh * DKV + j * a.g.DV + x] = a.scale[bh] * val[i][jj];
      }
  }
};


// the n part of the states (fwd_n_sum_item, then fwd_n_walk_item)
__global__ void fwd_n_sum_kernel(Geo g, const float* __restrict__ k, const float* __restrict__ alpha, float* nsum) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.NC * g.DK) fwd_n_sum_item(g, k, alpha, nsum, idx);
}
__global__ void fwd_n_walk_kernel(Geo g, const float* __restrict__ nsum, const float* __restrict__ gamma,
                                  const float* __restrict__ scale, const float* __restrict__ n0, float* saved,
                                  float* n_last) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.DK) fwd_n_walk_item(g, nsum, gamma, scale, n0, saved, n_last, idx);
}

// ---- the L x L tile kernel (forward h and the three backward products) -------------------------------------------

enum TileMode { kFwdH = 0, kDQ = 1, kDK = 2, kDV = 3 };

struct TileArgs {
  Geo g;
  const float *q, *k, *v, *dh;
  const double *gw, *gp;  // w and its in-chunk prefix max per position
  const float* saved;     // m, μ, C_c, n_c
  const float *beta, *alpha, *inv, *rho;
  const float* lam;  // slot c: Λ_{c+1} = [Λᶜ (DK x DV) | Λⁿ (DK)] per (bh, c)
  bool lam_last_zero;
  float* out;
  float* saved_out;  // the forward writes den here
};

// The block's shared memory.
struct TileShared {
  float rowv[Tile::RT][Tile::PT + 1];
  float colv[Tile::CT][Tile::PT + 1];
  float Wt[Tile::RT][Tile::CT + 1];
  float P[Tile::RT][Tile::PCOLS + 1];  // the all-columns form: the row tile's weights, columns from cbeg()
  float Ys[Tile::CT][Tile::XT];
  double rowd[Tile::RT], cold[Tile::CT];  // M_τ or w_σ of rows / columns
  float rowf[Tile::RT][3], colf[Tile::CT][2];
  float den_s[Tile::RT];
};

// One block of the tile kernel (block id bid), as phases; tile_kernel below runs them with __syncthreads in between.
// Per-tile form: row_consts; per 32-column block cb: col_consts, per 32-wide dot slice p0: stage | dots, then
// weights + ys | accum (+ den_add); per slice p0 of the inter-chunk term: stage_extra | accum_extra; den_phase | output.
// All-columns form: row_consts; per cb: col_consts, stage | dots, weights into P | den_add; then for each output tile
// (set_xt): per cb: col_consts + ys | accum from P; the inter-chunk term; den_phase | output. The same sums in the same
// order either way.
// Rows of the block are τ (FWD_H, DQ) or σ (DK, DV); columns the other index, causal σ ≤ τ.
template <int MODE>
struct TileBlock {
  using T = Tile;
  static constexpr bool kRowsTau = MODE == kFwdH || MODE == kDQ;
  const TileArgs& A;
  TileShared& sh;
  int64_t bh, c, rt, xt, l, r0, x0, pc;
  const float* sv;
  bool has;
  double mc;

  XLSTM_MLSTM_HD static int64_t dout(const Geo& g) { return (MODE == kFwdH || MODE == kDV) ? g.DV : g.DK; }
  // length of the weight dot products
  XLSTM_MLSTM_HD static int64_t dd(const Geo& g) { return (MODE == kFwdH || MODE == kDV) ? g.DK : g.DV; }
  // length of the row vectors of the inter-chunk term
  XLSTM_MLSTM_HD static int64_t dx(const Geo& g) { return (MODE == kFwdH || MODE == kDV) ? g.DK : g.DV; }

  XLSTM_MLSTM_HD TileBlock(const TileArgs& a, TileShared& s, int64_t bid) : A(a), sh(s) {
    const Geo& g = A.g;
    T::decode(g, dout(g), bid, &bh, &c, &rt, &xt);
    l = chunk_len(g, c), r0 = rt * T::RT, x0 = xt * T::XT;
    pc = bh * g.S + c * g.L;  // position of the chunk's first row
    sv = A.saved + bh * g.W;
    const float* Ms = sv + sv_m(g);
    has = finite_f(Ms[c]);
    mc = Ms[c];
  }
  // the all-columns form: the output tile the next phases work on
  XLSTM_MLSTM_HD void set_xt(int64_t x) { xt = x, x0 = x * T::XT; }
  // where the weights of column block cb live: Wt (per-tile form) or P from column cb - cbeg() (all-columns form)
  XLSTM_MLSTM_HD float* wts(bool all, int64_t cb, int64_t* ld) const {
    *ld = all ? T::PCOLS + 1 : T::CT + 1;
    return all ? &sh.P[0][cb - cbeg()] : &sh.Wt[0][0];
  }
  XLSTM_MLSTM_HD bool active() const { return r0 < l; }  // uniform over the block
  // causal column range
  XLSTM_MLSTM_HD int64_t cbeg() const { return kRowsTau ? 0 : r0; }
  XLSTM_MLSTM_HD int64_t cend() const { return kRowsTau ? (r0 + T::RT < l ? r0 + T::RT : l) : l; }
  // the inter-chunk term: row vectors times C_c (FWD_H, DQ) or Λ_{c+1} (DK, DV)
  XLSTM_MLSTM_HD bool extra() const { return kRowsTau ? has : !(A.lam_last_zero && c == A.g.NC - 1); }
  XLSTM_MLSTM_HD const float* mat() const {
    return kRowsTau ? sv + sv_C(A.g, c) : A.lam + (bh * A.g.NC + c) * state_elems(A.g);
  }

  // per-row constants
  XLSTM_MLSTM_HD void row_consts(int tid) const {
    if (tid < T::RT) {
      const int64_t r = r0 + tid;
      if (r < l) {
        const int64_t p = pc + r;
        if (kRowsTau) sh.rowd[tid] = row_M(has, mc, A.gp[p]);
        else sh.rowd[tid] = A.gw[p];
        if (MODE == kDQ) sh.rowf[tid][0] = A.inv[p], sh.rowf[tid][1] = A.rho[p], sh.rowf[tid][2] = A.beta[p];
        if (MODE == kDK || MODE == kDV) sh.rowf[tid][0] = A.alpha[p];
        if (MODE == kFwdH) sh.rowf[tid][2] = A.beta[p];
      }
      sh.den_s[tid] = 0.0f;
    }
  }
  XLSTM_MLSTM_HD void col_consts(int64_t cb, int tid) const {
    if (tid < T::CT) {
      const int64_t cc = cb + tid;
      if (cc < l) {
        const int64_t p = pc + cc;
        if (kRowsTau) sh.cold[tid] = A.gw[p];
        else sh.cold[tid] = row_M(has, mc, A.gp[p]);
        if (MODE == kDK || MODE == kDV) sh.colf[tid][0] = A.inv ? A.inv[p] : 0.0f;
        if (MODE == kDK) sh.colf[tid][1] = A.rho[p];
      }
    }
  }
  // the row vector element `col` of row `row` (< l) of the weight dots / the inter-chunk term
  XLSTM_MLSTM_HD float row_vec(int64_t row, int64_t col) const {
    const Geo& g = A.g;
    const int64_t p = pc + row;
    if (MODE == kFwdH) return A.q[p * g.DK + col];
    if (MODE == kDQ) return A.dh[p * g.DV + col] * A.inv[p];
    if (MODE == kDK) return A.v[p * g.DV + col];
    return A.k[p * g.DK + col];
  }
  // weight dots: entries e = tid + k·256 of the RT x CT tile; stage the slice p0 of rows and columns
  // the slice p0 of the block's row vectors (length D) into rowv
  XLSTM_MLSTM_HD void stage_rows(int64_t p0, int64_t D, int tid) const {
    for (int kk = 0; kk < T::RT * T::PT / T::THREADS; ++kk) {
      int r, pp;
      T::slot(tid, kk, T::PT, &r, &pp);
      const int64_t row = r0 + r, col = p0 + pp;
      sh.rowv[r][pp] = row < l && col < D ? row_vec(row, col) : 0.0f;
    }
  }
  XLSTM_MLSTM_HD void stage(int64_t cb, int64_t p0, int tid) const {
    const Geo& g = A.g;
    const int64_t Dd = dd(g);
    stage_rows(p0, Dd, tid);
    for (int kk = 0; kk < T::CT * T::PT / T::THREADS; ++kk) {
      int r, pp;
      T::slot(tid, kk, T::PT, &r, &pp);
      const int64_t cc = cb + r, col = p0 + pp;
      float val = 0.0f;
      if (cc < l && col < Dd) {
        const int64_t p = pc + cc;
        if (MODE == kFwdH) val = A.k[p * g.DK + col];
        else if (MODE == kDQ) val = A.v[p * g.DV + col];
        else if (MODE == kDK) val = A.dh[p * g.DV + col] * A.inv[p];
        else val = A.q[p * g.DK + col];
      }
      sh.colv[r][pp] = val;
    }
  }
  XLSTM_MLSTM_HD void dots(int tid, float* dot) const {
    for (int kk = 0; kk < 2; ++kk) {
      int r, cc;
      T::slot(tid, kk, T::CT, &r, &cc);
      float a = dot[kk];
      for (int pp = 0; pp < T::PT; ++pp) a += sh.rowv[r][pp] * sh.colv[cc][pp];
      dot[kk] = a;
    }
  }
  // weights: P = s (q·k) E or Ω' = s ((δ·v) + ρ_τ) E, 0 outside the causal triangle, into W (row stride ld)
  XLSTM_MLSTM_HD void weights(int64_t cb, int tid, const float* dot, float* W, int64_t ld) const {
    const Geo& g = A.g;
    for (int kk = 0; kk < 2; ++kk) {
      int r, cc;
      T::slot(tid, kk, T::CT, &r, &cc);
      const int64_t row = r0 + r, col = cb + cc;
      const int64_t tau = kRowsTau ? row : col, sig = kRowsTau ? col : row;
      float wv = 0.0f;
      if (row < l && col < l && sig <= tau) {
        const double M = kRowsTau ? sh.rowd[r] : sh.cold[cc];
        const double w = kRowsTau ? sh.cold[cc] : sh.rowd[r];
        const float ex = fm_exp(static_cast<float>(w - M));
        if (MODE == kFwdH || MODE == kDV) wv = (g.s * dot[kk]) * ex;
        else wv = g.s * ((dot[kk] + (MODE == kDQ ? sh.rowf[r][1] : sh.colf[cc][1])) * ex);
      }
      W[r * ld + cc] = wv;
    }
  }
  // the column block's output rows (V, K, Q or δ: the XT columns of the current output tile)
  XLSTM_MLSTM_HD void ys(int64_t cb, int tid) const {
    const Geo& g = A.g;
    const int64_t Dout = dout(g);
    for (int kk = 0; kk < T::CT * T::XT / T::THREADS; ++kk) {
      int r, xx;
      T::slot(tid, kk, T::XT, &r, &xx);
      const int64_t cc = cb + r, col = x0 + xx;
      float val = 0.0f;
      if (cc < l && col < Dout) {
        const int64_t p = pc + cc;
        if (MODE == kFwdH) val = A.v[p * g.DV + col];
        else if (MODE == kDQ) val = A.k[p * g.DK + col];
        else if (MODE == kDK) val = A.q[p * g.DK + col];
        else val = A.dh[p * g.DV + col] * sh.colf[r][0];
      }
      sh.Ys[r][xx] = val;
    }
  }
  // FWD_H: the column block's share of the rows' den (Σ_σ P_τσ)
  XLSTM_MLSTM_HD void den_add(int tid, const float* W, int64_t ld) const {
    if (MODE == kFwdH && tid < T::RT) {
      float rs = sh.den_s[tid];
      for (int cc = 0; cc < T::CT; ++cc) rs += W[tid * ld + cc];
      sh.den_s[tid] = rs;
    }
  }
  XLSTM_MLSTM_HD void accum(int tid, float* acc, const float* W, int64_t ld) const {
    const int ty = tid / T::TX, tx = tid % T::TX;
    for (int cc = 0; cc < T::CT; ++cc) {
      const float wv = W[ty * ld + cc];
      for (int i = 0; i < T::XI; ++i) acc[i] += wv * sh.Ys[cc][tx + i * T::TX];
    }
  }
  XLSTM_MLSTM_HD void stage_extra(int64_t p0, int tid) const {
    const Geo& g = A.g;
    const int64_t Dx = dx(g), Dout = dout(g);
    const float* m = mat();
    stage_rows(p0, Dx, tid);
    // mat(p, x): C_c[p][x] (FWD_H), C_c[x][p] (DQ), Λᶜ[x][p] (DK), Λᶜ[p][x] (DV)
    for (int kk = 0; kk < T::PT * T::XT / T::THREADS; ++kk) {
      int pp, xx;
      T::slot(tid, kk, T::XT, &pp, &xx);
      const int64_t pr = p0 + pp, col = x0 + xx;
      float val = 0.0f;
      if (pr < Dx && col < Dout) val = (MODE == kFwdH || MODE == kDV) ? m[pr * g.DV + col] : m[col * g.DV + pr];
      sh.Ys[pp][xx] = val;
    }
  }
  XLSTM_MLSTM_HD void accum_extra(int tid, float* acc2) const {
    const int ty = tid / T::TX, tx = tid % T::TX;
    for (int pp = 0; pp < T::PT; ++pp) {
      const float a = sh.rowv[ty][pp];
      for (int i = 0; i < T::XI; ++i) acc2[i] += a * sh.Ys[pp][tx + i * T::TX];
    }
  }
  // FWD_H: den = Σ P + β q·n_c, then the normaliser
  XLSTM_MLSTM_HD void den_phase(int tid) const {
    const Geo& g = A.g;
    if (MODE == kFwdH && tid < T::RT && r0 + tid < l) {
      const int64_t p = pc + r0 + tid;
      float den = sh.den_s[tid];
      if (has) {
        const float* nc = sv + sv_n(g, c);
        const float bt = sh.rowf[tid][2];
        float qn = 0.0f;
        for (int64_t j = 0; j < g.DK; ++j) qn += (bt * A.q[p * g.DK + j]) * nc[j];
        den += qn;
      }
      const float mu = sv[sv_mu(g) + (p - bh * g.S)];
      sh.rowf[tid][0] = mm::norm_inv(den, mu, g.eps, nullptr);
      if (xt == 0) A.saved_out[bh * g.W + sv_den(g) + (p - bh * g.S)] = den;
    }
  }
  XLSTM_MLSTM_HD void output(int tid, const float* acc, const float* acc2) const {
    const Geo& g = A.g;
    const int ty = tid / T::TX;
    const bool ex = extra();
    const int64_t Dout = dout(g);
    for (int i = 0; i < T::XI; ++i) {
      int64_t row, col;
      if (!T::out_elem(g, Dout, c, rt, xt, tid, i, &row, &col)) continue;
      const int64_t p = pc + row;
      float o;
      if (MODE == kFwdH) {
        o = (ex ? acc[i] + sh.rowf[ty][2] * acc2[i] : acc[i]) * sh.rowf[ty][0];
        A.out[p * g.DV + col] = o;
      } else if (MODE == kDQ) {
        o = acc[i];
        if (ex) o += sh.rowf[ty][2] * acc2[i] + (sh.rowf[ty][2] * sh.rowf[ty][1]) * sv[sv_n(g, c) + col];
        A.out[p * g.DK + col] = o;
      } else if (MODE == kDK) {
        o = acc[i];
        if (ex) o += sh.rowf[ty][0] * acc2[i] + sh.rowf[ty][0] * mat()[g.DK * g.DV + col];
        A.out[p * g.DK + col] = o;
      } else {
        o = ex ? acc[i] + sh.rowf[ty][0] * acc2[i] : acc[i];
        A.out[p * g.DV + col] = o;
      }
    }
  }
};

// Column block cb's weights into W (row stride ld): the dot products over 32-wide slices staged in shared memory,
// then the weights (the column constants are in shared memory already)
template <int MODE>
__device__ void tile_weights(const TileBlock<MODE>& b, int64_t cb, int tid, float* W, int64_t ld) {
  float dot[2] = {0.0f, 0.0f};
  for (int64_t p0 = 0; p0 < TileBlock<MODE>::dd(b.A.g); p0 += Tile::PT) {
    __syncthreads();
    b.stage(cb, p0, tid);
    __syncthreads();
    b.dots(tid, dot);
  }
  b.weights(cb, tid, dot, W, ld);
}

template <int MODE>
__global__ void __launch_bounds__(Tile::THREADS, 2) tile_kernel(TileArgs A) {
  using T = Tile;
  using B = TileBlock<MODE>;
  __shared__ TileShared sh;
  const int tid = threadIdx.x;
  const bool all = T::all_cols(A.g);
  const int64_t nx = T::block_col_tiles(A.g, B::dout(A.g));
  for (int64_t bid = blockIdx.x; bid < T::blocks(A.g, B::dout(A.g)); bid += gridDim.x) {
    B b(A, sh, bid);
    if (!b.active()) continue;
    b.row_consts(tid);
    int64_t ld;
    if (all) {  // the row tile's weights, once
      for (int64_t cb = b.cbeg(); cb < b.cend(); cb += T::CT) {
        __syncthreads();
        b.col_consts(cb, tid);
        float* W = b.wts(true, cb, &ld);
        tile_weights(b, cb, tid, W, ld);
        __syncthreads();
        b.den_add(tid, W, ld);
      }
    }
    for (int64_t xi = 0; xi < nx; ++xi) {
      if (all) b.set_xt(xi);
      float acc[T::XI];
      for (int i = 0; i < T::XI; ++i) acc[i] = 0.0f;
      for (int64_t cb = b.cbeg(); cb < b.cend(); cb += T::CT) {
        __syncthreads();
        b.col_consts(cb, tid);
        __syncthreads();  // ys (and weights) read the column constants
        float* W = b.wts(all, cb, &ld);
        if (!all) tile_weights(b, cb, tid, W, ld);
        b.ys(cb, tid);
        __syncthreads();
        if (!all) b.den_add(tid, W, ld);
        b.accum(tid, acc, W, ld);
      }
      float acc2[T::XI];
      for (int i = 0; i < T::XI; ++i) acc2[i] = 0.0f;
      if (b.extra()) {
        for (int64_t p0 = 0; p0 < B::dx(A.g); p0 += T::PT) {
          __syncthreads();
          b.stage_extra(p0, tid);
          __syncthreads();
          b.accum_extra(tid, acc2);
        }
      }
      __syncthreads();
      b.den_phase(tid);
      __syncthreads();
      b.output(tid, acc, acc2);
    }
    __syncthreads();  // the next block item overwrites the per-row constants
  }
}

// ---- chunkwise backward ---------------------------------------------------------------------------------------

// Warp per position: β, sα (with m_{c+1}), 1/normaliser and ρ (XLSTM_SPEC §4.6, exact mode). Lane `lane`'s part of
// G·h, then (lane 0, with the warp's sum) the outputs.
XLSTM_MLSTM_HD float bwd_pos_part(const Geo& g, const float* __restrict__ h, const float* __restrict__ dh, int64_t p,
                                  int lane) {
  float gh = 0.0f;
  for (int64_t x = lane; x < g.DV; x += 32) gh += dh[p * g.DV + x] * h[p * g.DV + x];  // G·h
  return gh;
}
XLSTM_MLSTM_HD void bwd_pos_finish(const Geo& g, const double* __restrict__ gp, const double* __restrict__ ga,
                                   const float* __restrict__ saved, float* beta, float* alpha, float* inv, float* rho,
                                   int64_t p, float gh) {
  const int64_t bh = p / g.S, t = p % g.S, c = t / g.L;
  const float* sv = saved + bh * g.W;
  const float* Ms = sv + sv_m(g);
  const bool has = finite_f(Ms[c]);
  const double mc = Ms[c];
  const double M = row_M(has, mc, gp[p]);
  bool above = false;
  const float iv = mm::norm_inv(sv[sv_den(g) + t], sv[sv_mu(g) + t], g.eps, &above);
  const float den = sv[sv_den(g) + t];
  beta[p] = has ? fm_exp(static_cast<float>(mc - M)) : 0.0f;
  alpha[p] = g.s * fm_exp(static_cast<float>(ga[p] - static_cast<double>(Ms[c + 1])));
  inv[p] = iv;
  rho[p] = above ? (den > 0 ? -gh * iv : gh * iv) : 0.0f;
}
__global__ void bwd_pos_kernel(Geo g, const double* __restrict__ gp, const double* __restrict__ ga,
                               const float* __restrict__ saved, const float* __restrict__ h,
                               const float* __restrict__ dh, float* beta, float* alpha, float* inv, float* rho) {
  const int lane = threadIdx.x % 32;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; p < g.BH * g.S;
       p += static_cast<int64_t>(kWarps) * gridDim.x) {
    const float gh = warp_sum_f(bwd_pos_part(g, h, dh, p, lane));
    if (lane == 0) bwd_pos_finish(g, gp, ga, saved, beta, alpha, inv, rho, p, gh);
  }
}

// Λ in reverse; lam slot c holds Λ_{c+1}; lam0 = Λ_0.
// Λⁿ in the forward's two passes: (1) an item per (bh, chunk c, j): Σ_{t in c} (β_t ρ_t) q_t[j] from 0, positions
// in order, into nsum; (2) an item per (bh, j): the reverse walk from the carried Λⁿ entering the last chunk (dn_last
// scaled by exp(m_NC − m_{NC+1})), Λ_c = s_c + γ_c Λ_{c+1}, reset to 0 where m_c is not finite (the Λᶜ tile's form),
// into lam slots c − 1, lam0 and dn0.
XLSTM_MLSTM_HD void bwd_n_sum_item(const Geo& g, const float* __restrict__ q, const float* __restrict__ beta,
                                   const float* __restrict__ rho, float* nsum, int64_t idx) {
  const int64_t j = idx % g.DK, bc = idx / g.DK, c = bc % g.NC, bh = bc / g.NC;
  const int64_t l = chunk_len(g, c), p0 = bh * g.S + c * g.L;
  float s = 0.0f;
  for (int64_t t = 0; t < l; ++t) s += (beta[p0 + t] * rho[p0 + t]) * q[(p0 + t) * g.DK + j];
  nsum[idx] = s;
}
XLSTM_MLSTM_HD void bwd_n_walk_item(const Geo& g, const float* __restrict__ nsum, const float* __restrict__ saved,
                                    const float* __restrict__ gamma, const float* __restrict__ dn_last, float* lam,
                                    float* lam0, float* dn0, int64_t idx) {
  const int64_t E = state_elems(g), bh = idx / g.DK, j = idx % g.DK, e = g.DK * g.DV + j;
  const float* Ms = saved + bh * g.W + sv_m(g);
  float val = 0.0f;
  if (dn_last)
    val = static_cast<float>(exp(static_cast<double>(Ms[g.NC]) - static_cast<double>(Ms[g.NC + 1]))) * dn_last[bh * g.DK + j];
  lam[(bh * g.NC + g.NC - 1) * E + e] = val;
  for (int64_t c = g.NC - 1; c >= 0; --c) {
    val = finite_f(Ms[c]) ? nsum[(bh * g.NC + c) * g.DK + j] + gamma[bh * g.NC + c] * val : 0.0f;
    if (c > 0) lam[(bh * g.NC + c - 1) * E + e] = val;
  }
  lam0[bh * E + e] = val;
  if (dn0) dn0[bh * g.DK + j] = val;
}

// One step of a block's fixed-order tree over red[0 .. 2o): thread tid < o adds slot tid + o.
template <class V>
XLSTM_MLSTM_HD void tree_step(V* red, int tid, int o) {
  if (tid < o) red[tid] += red[tid + o];
}

// The Λᶜ part of bwd_lambda as a tiled product (bwd_n_* keep Λⁿ): a block per (bh, 64 x 64 tile of Λᶜ)
// walks the chunks in reverse, each slice of 16 positions staged as Ks[t][j] = q_t[j], Vs[t][x] = β_t (δ_t[x] inv_t);
// per element Λ_c = Σ_t q ⊙ (β δ inv) (positions in order, one fmaf each) + γ_c Λ_{c+1}, reset to 0 where m_c is not
// finite, with bwd_n_walk_item's slot writes (lam, lam0, dc0). StateTile's geometry (512 threads, 2 x 4 each).
struct LambdaTileArgs {
  Geo g;
  const float *q, *dh, *saved, *beta, *inv, *gamma, *dc_last;
  float *lam, *lam0, *dc0;
};

struct LambdaTileBlock {
  const LambdaTileArgs& a;
  int64_t bh, j0, x0;
  __host__ __device__ LambdaTileBlock(const LambdaTileArgs& args, int64_t bid) : a(args) { StateTile::decode(a.g, bid, &bh, &j0, &x0); }
  __host__ __device__ bool elem(int tx, int ty, int i, int jj, int64_t* e) const {
    const int64_t j = j0 + ty + i * StateTile::TY, x = x0 + tx + jj * StateTile::TX;
    *e = j * a.g.DV + x;
    return j < a.g.DK && x < a.g.DV;
  }
  __host__ __device__ float ms(int64_t c) const { return a.saved[bh * a.g.W + sv_m(a.g) + c]; }
  // the carried Λ entering the last chunk (dc_last scaled as bwd_n_walk_item scales dn_last) into val and lam slot NC-1
  __host__ __device__ void init(int tx, int ty, float (&val)[StateTile::TM][StateTile::TN]) const {
    const int64_t E = state_elems(a.g), DKV = a.g.DK * a.g.DV;
    const float fac = a.dc_last ? static_cast<float>(exp(static_cast<double>(ms(a.g.NC)) - static_cast<double>(ms(a.g.NC + 1)))) : 0.0f;
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t e;
        val[i][jj] = 0.0f;
        if (!elem(tx, ty, i, jj, &e)) continue;
        val[i][jj] = a.dc_last ? fac * a.dc_last[bh * DKV + e] : 0.0f;
        a.lam[(bh * a.g.NC + a.g.NC - 1) * E + e] = val[i][jj];
      }
  }
  __host__ __device__ void stage(int64_t c, int64_t t0, int tid, StateShared& sh) const {
    const int64_t l = chunk_len(a.g, c), p0 = bh * a.g.S + c * a.g.L;
    for (int q = 0; q < StateTile::LOADS; ++q) {
      int t, col;
      StateTile::slot(tid, q, &t, &col);
      const bool in_t = t0 + t < l;
      const int64_t p = p0 + t0 + t;
      sh.Ks[t][col] = (in_t && j0 + col < a.g.DK) ? a.q[p * a.g.DK + j0 + col] : 0.0f;
      sh.Vs[t][col] = (in_t && x0 + col < a.g.DV) ? a.beta[p] * (a.dh[p * a.g.DV + x0 + col] * a.inv[p]) : 0.0f;
    }
  }
  // Λ_c = acc + γ_c Λ_{c+1} (0 where m_c is not finite) into val and lam slot c-1 (c > 0)
  __host__ __device__ void finish_chunk(int64_t c, int tx, int ty, const float (&acc)[StateTile::TM][StateTile::TN],
                                        float (&val)[StateTile::TM][StateTile::TN]) const {
    const int64_t E = state_elems(a.g);
    const bool live = finite_f(ms(c));
    const float gm = a.gamma[bh * a.g.NC + c];
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t e;
        if (!elem(tx, ty, i, jj, &e)) continue;
        val[i][jj] = live ? acc[i][jj] + gm * val[i][jj] : 0.0f;
        if (c > 0) a.lam[(bh * a.g.NC + c - 1) * E + e] = val[i][jj];
      }
  }
  __host__ __device__ void finish(int tx, int ty, const float (&val)[StateTile::TM][StateTile::TN]) const {
    const int64_t E = state_elems(a.g), DKV = a.g.DK * a.g.DV;
    for (int i = 0; i < StateTile::TM; ++i)
      for (int jj = 0; jj < StateTile::TN; ++jj) {
        int64_t e;
        if (!elem(tx, ty, i, jj, &e)) continue;
        a.lam0[bh * E + e] = val[i][jj];
        if (a.dc0) a.dc0[bh * DKV + e] = val[i][jj];
      }
  }
};


// Both tiled state kernels (fwd_state_tile: Block = StateTileBlock, chunks in order; bwd_lambda_tile: LambdaTileBlock,
// in reverse): per block, each chunk's slices staged and accumulated, then the chunk's state written.
template <class Block, class Args>
__global__ void __launch_bounds__(StateTile::THREADS) state_tile_kernel(Args a, bool reverse) {
  __shared__ StateShared sh;
  const int tx = threadIdx.x % StateTile::TX, ty = threadIdx.x / StateTile::TX, tid = threadIdx.x;
  for (int64_t bid = blockIdx.x; bid < StateTile::blocks(a.g); bid += gridDim.x) {
    const Block b(a, bid);
    float val[StateTile::TM][StateTile::TN], acc[StateTile::TM][StateTile::TN];
    b.init(tx, ty, val);
    for (int64_t s = 0; s < a.g.NC; ++s) {
      const int64_t c = reverse ? a.g.NC - 1 - s : s;
      for (int i = 0; i < StateTile::TM; ++i)
        for (int jj = 0; jj < StateTile::TN; ++jj) acc[i][jj] = 0.0f;
      for (int64_t t0 = 0; t0 < chunk_len(a.g, c); t0 += StateTile::BT) {
        b.stage(c, t0, tid, sh);
        __syncthreads();
        state_tile_accumulate(a.g, c, t0, tx, ty, sh, acc);
        __syncthreads();
      }
      b.finish_chunk(c, tx, ty, acc, val);
    }
    b.finish(tx, ty, val);
  }
}

// Λⁿ (bwd_n_sum_item, then bwd_n_walk_item)
__global__ void bwd_n_sum_kernel(Geo g, const float* __restrict__ q, const float* __restrict__ beta,
                                 const float* __restrict__ rho, float* nsum) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.NC * g.DK) bwd_n_sum_item(g, q, beta, rho, nsum, idx);
}
__global__ void bwd_n_walk_kernel(Geo g, const float* __restrict__ nsum, const float* __restrict__ saved,
                                  const float* __restrict__ gamma, const float* __restrict__ dn_last, float* lam,
                                  float* lam0, float* dn0) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.DK) bwd_n_walk_item(g, nsum, saved, gamma, dn_last, lam, lam0, dn0, idx);
}

// Block per bh: ct[bh] = ⟨Λ_NC, state_NC⟩ (0 without final-state cotangents) and dm0 = ⟨Λ_0, state_0⟩: thread
// tid's parts into red0 / red1, the tree, thread 0 stores.
XLSTM_MLSTM_HD void bwd_reduce_part(const Geo& g, const float* __restrict__ saved, const float* __restrict__ lam,
                                    const float* __restrict__ lam0, bool final_terms, int64_t bh, int tid,
                                    double* red0, double* red1) {
  const int64_t E = state_elems(g);
  const float* sv = saved + bh * g.W;
  const float* lN = lam + (bh * g.NC + g.NC - 1) * E;
  const float* l0 = lam0 + bh * E;
  double a = 0.0, b = 0.0;
  for (int64_t e = tid; e < E; e += kThreads) {
    if (final_terms) a += static_cast<double>(lN[e]) * sv[sv_state(g, g.NC, e)];
    b += static_cast<double>(l0[e]) * sv[sv_state(g, 0, e)];
  }
  red0[tid] = a;
  red1[tid] = b;
}
XLSTM_MLSTM_HD void bwd_reduce_finish(const Geo& g, const float* __restrict__ saved, int64_t bh, const double* red0,
                                      const double* red1, double* ct, float* dm0) {
  ct[bh] = red0[0];
  if (dm0) dm0[bh] = finite_f(saved[bh * g.W + sv_m(g)]) ? static_cast<float>(red1[0]) : 0.0f;
}
__global__ void __launch_bounds__(kThreads) bwd_reduce_kernel(Geo g, const float* __restrict__ saved,
                                                              const float* __restrict__ lam,
                                                              const float* __restrict__ lam0, bool final_terms,
                                                              double* ct, float* dm0) {
  __shared__ double red[2][kThreads];
  const int tid = threadIdx.x;
  for (int64_t bh = blockIdx.x; bh < g.BH; bh += gridDim.x) {
    bwd_reduce_part(g, saved, lam, lam0, final_terms, bh, tid, red[0], red[1]);
    __syncthreads();
    for (int o = kThreads / 2; o > 0; o >>= 1) {
      tree_step(red[0], tid, o);
      tree_step(red[1], tid, o);
      __syncthreads();
    }
    if (tid == 0) bwd_reduce_finish(g, saved, bh, red[0], red[1], ct, dm0);
    __syncthreads();
  }
}

// Warp per position: ∂ĩ = k·∂k, r = q·∂q − k·∂k (lane parts, then lane 0 with the warp's sums).
XLSTM_MLSTM_HD void bwd_dots_part(const Geo& g, const float* __restrict__ q, const float* __restrict__ k,
                                  const float* __restrict__ dq, const float* __restrict__ dk, int64_t p, int lane,
                                  double* pa, double* pb) {
  double a = 0.0, b = 0.0;
  for (int64_t j = lane; j < g.DK; j += 32) {
    a += static_cast<double>(q[p * g.DK + j]) * dq[p * g.DK + j];
    b += static_cast<double>(k[p * g.DK + j]) * dk[p * g.DK + j];
  }
  *pa = a;
  *pb = b;
}
XLSTM_MLSTM_HD void bwd_dots_finish(int64_t p, double a, double b, float* di, double* r) {
  di[p] = static_cast<float>(b);
  r[p] = a - b;
}
__global__ void bwd_dots_kernel(Geo g, const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ dq, const float* __restrict__ dk, float* di, double* r) {
  const int lane = threadIdx.x % 32;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; p < g.BH * g.S;
       p += static_cast<int64_t>(kWarps) * gridDim.x) {
    double a, b;
    bwd_dots_part(g, q, k, dq, dk, p, lane, &a, &b);
    a = warp_sum_d(a);
    b = warp_sum_d(b);
    if (lane == 0) bwd_dots_finish(p, a, b, di, r);
  }
}

// chunk c of bh's sum of r, positions in reverse
XLSTM_MLSTM_HD void bwd_df_sum_item(const Geo& g, const double* __restrict__ r, double* csum, int64_t task) {
  const int64_t bh = task / g.NC, c = task % g.NC, p0 = bh * g.S + c * g.L;
  double acc = 0.0;
  for (int64_t t = chunk_len(g, c) - 1; t >= 0; --t) acc += r[p0 + t];
  csum[task] = acc;
}
XLSTM_MLSTM_HD void bwd_df_item(const Geo& g, const float* __restrict__ fg, const double* __restrict__ r,
                                const double* __restrict__ ct, const double* __restrict__ csum, float* df, int64_t task) {
  const int64_t bh = task / g.NC, c = task % g.NC, p0 = bh * g.S + c * g.L;
  double acc = ct[bh];
  for (int64_t u = g.NC - 1; u > c; --u) acc += csum[bh * g.NC + u];
  for (int64_t t = chunk_len(g, c) - 1; t >= 0; --t) {
    const int64_t p = p0 + t;
    acc += r[p];
    df[p] = static_cast<float>(acc * static_cast<double>(1.0f / (1.0f + fm_exp(fg[p]))));
  }
}
__global__ void bwd_df_sum_kernel(Geo g, const double* __restrict__ r, double* csum) {
  XLSTM_GRID_STRIDE(task, g.BH * g.NC) bwd_df_sum_item(g, r, csum, task);
}
__global__ void bwd_df_kernel(Geo g, const float* __restrict__ fg, const double* __restrict__ r,
                              const double* __restrict__ ct, const double* __restrict__ csum, float* df) {
  XLSTM_GRID_STRIDE(task, g.BH * g.NC) bwd_df_item(g, fg, r, ct, csum, df, task);
}

// ---- recurrent form -------------------------------------------------------------------------------------------

struct RecGeo {
  int64_t BH, S, DK, DV, NSEG, CP;
  float s, eps;
};
RecGeo make_rec(const MlstmDims& d, float eps) {
  RecGeo g;
  g.BH = d.B * d.NH;
  g.S = d.S;
  g.DK = d.DK;
  g.DV = d.DV;
  g.NSEG = (d.S + kRecurrentSegment - 1) / kRecurrentSegment;
  g.CP = d.DK * d.DV + d.DK + 1;
  g.s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d.DK)));
  g.eps = eps;
  return g;
}
__host__ __device__ inline int64_t rec_cp(const RecGeo& g, int64_t bh, int64_t t) {
  return (bh * g.NSEG + t / kRecurrentSegment) * g.CP;
}

// Thread per bh: gates[3p..3p+2] = f', i', m_t. restore: m from the checkpoints (backward); else m0 / 0 and the
// checkpoints' m written when saved != null, m_last.
XLSTM_MLSTM_HD void rec_gates_item(const RecGeo& g, const float* __restrict__ fg, const float* __restrict__ ig,
                                   const float* __restrict__ m0, float* saved, bool restore, float* gates,
                                   float* m_last, int64_t bh) {
  float m = m0 ? m0[bh] : 0.0f;
  for (int64_t t = 0; t < g.S; ++t) {
    if (t % kRecurrentSegment == 0) {
      float* cm = saved ? saved + rec_cp(g, bh, t) + g.DK * g.DV + g.DK : nullptr;
      if (restore) m = *cm;
      else if (cm) *cm = m;
    }
    const int64_t p = bh * g.S + t;
    const mm::StepGates gt = mm::step_gates(fg[p], ig[p], m);
    gates[3 * p] = gt.fp;
    gates[3 * p + 1] = gt.ip;
    gates[3 * p + 2] = gt.m;
    m = gt.m;
  }
  if (m_last) m_last[bh] = m;
}
__global__ void rec_gates_kernel(RecGeo g, const float* __restrict__ fg, const float* __restrict__ ig,
                                 const float* __restrict__ m0, float* saved, bool restore, float* gates, float* m_last) {
  XLSTM_GRID_STRIDE(bh, g.BH) rec_gates_item(g, fg, ig, m0, saved, restore, gates, m_last, bh);
}

// Block per bh: n_t (in nbuf, DK per bh) and den_t = q_t·n_t by a fixed tree. rec_n_init: thread tid's elements
// of n_0; rec_n_step: step t of thread tid's elements, returning its part of q·n.
XLSTM_MLSTM_HD void rec_n_init(const RecGeo& g, const float* __restrict__ n0, float* nbuf, int64_t bh, int tid) {
  float* n = nbuf + bh * g.DK;
  for (int64_t j = tid; j < g.DK; j += kThreads) n[j] = n0 ? n0[bh * g.DK + j] : 0.0f;
}
XLSTM_MLSTM_HD float rec_n_step(const RecGeo& g, const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ gates, float* saved, bool restore, float* nbuf, int64_t bh,
                                int64_t t, int tid) {
  float* n = nbuf + bh * g.DK;
  const int64_t p = bh * g.S + t;
  const float fp = gates[3 * p], isk = gates[3 * p + 1] * g.s;
  float part = 0.0f;
  for (int64_t j = tid; j < g.DK; j += kThreads) {
    if (t % kRecurrentSegment == 0) {
      float* cn = saved ? saved + rec_cp(g, bh, t) + g.DK * g.DV + j : nullptr;
      if (restore) n[j] = *cn;
      else if (cn) *cn = n[j];
    }
    const float nj = fp * n[j] + isk * k[p * g.DK + j];
    n[j] = nj;
    part += q[p * g.DK + j] * nj;
  }
  return part;
}
__global__ void __launch_bounds__(kThreads) rec_n_kernel(RecGeo g, const float* __restrict__ q,
                                                         const float* __restrict__ k, const float* __restrict__ gates,
                                                         const float* __restrict__ n0, float* saved, bool restore,
                                                         float* nbuf, float* den) {
  __shared__ float red[kThreads];
  const int tid = threadIdx.x;
  for (int64_t bh = blockIdx.x; bh < g.BH; bh += gridDim.x) {
    rec_n_init(g, n0, nbuf, bh, tid);
    for (int64_t t = 0; t < g.S; ++t) {
      red[tid] = rec_n_step(g, q, k, gates, saved, restore, nbuf, bh, t, tid);
      __syncthreads();
      for (int o = kThreads / 2; o > 0; o >>= 1) {
        tree_step(red, tid, o);
        __syncthreads();
      }
      if (tid == 0) den[bh * g.S + t] = red[0];
      __syncthreads();
    }
  }
}

// 1 / (max(|den|, exp(−m)) + ε) as the CPU's recurrent form (floor always in double)
__host__ __device__ inline float rec_inv(float den, float m, float eps, bool* above) {
  const double floor_ = exp(-static_cast<double>(m));
  const double a = fabs(static_cast<double>(den));
  if (above) *above = a > floor_;
  return static_cast<float>(1.0 / ((a < floor_ ? floor_ : a) + eps));
}

// Thread per (bh, column x): C[:, x] (cbuf, [bh][j][x]), num_t[x] = C_tᵀ q; forward: h = num · inv, checkpoints
// written; restore (backward): C from the checkpoints, num stored in `num`.
XLSTM_MLSTM_HD void rec_c_item(const RecGeo& g, const float* __restrict__ q, const float* __restrict__ k,
                               const float* __restrict__ v, const float* __restrict__ gates,
                               const float* __restrict__ den, const float* __restrict__ c0, float* saved,
                               bool restore, float* cbuf, float* h, float* num, int64_t idx) {
  const int64_t DKV = g.DK * g.DV;
  const int64_t bh = idx / g.DV, x = idx % g.DV;
  float* C = cbuf + bh * DKV + x;
  for (int64_t j = 0; j < g.DK; ++j) C[j * g.DV] = c0 ? c0[bh * DKV + j * g.DV + x] : 0.0f;
  for (int64_t t = 0; t < g.S; ++t) {
    const int64_t p = bh * g.S + t;
    if (t % kRecurrentSegment == 0 && saved) {
      float* cc = saved + rec_cp(g, bh, t) + x;
      for (int64_t j = 0; j < g.DK; ++j) {
        if (restore) C[j * g.DV] = cc[j * g.DV];
        else cc[j * g.DV] = C[j * g.DV];
      }
    }
    const float fp = gates[3 * p], isk = gates[3 * p + 1] * g.s, vx = v[p * g.DV + x];
    float acc = 0.0f;
    for (int64_t j = 0; j < g.DK; ++j) {
      const float cj = fp * C[j * g.DV] + (isk * k[p * g.DK + j]) * vx;
      C[j * g.DV] = cj;
      acc += q[p * g.DK + j] * cj;
    }
    if (restore) num[p * g.DV + x] = acc;
    else h[p * g.DV + x] = acc * rec_inv(den[p], gates[3 * p + 2], g.eps, nullptr);
  }
}
__global__ void rec_c_kernel(RecGeo g, const float* __restrict__ q, const float* __restrict__ k,
                             const float* __restrict__ v, const float* __restrict__ gates,
                             const float* __restrict__ den, const float* __restrict__ c0, float* saved, bool restore,
                             float* cbuf, float* h, float* num) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.DV) rec_c_item(g, q, k, v, gates, den, c0, saved, restore, cbuf, h, num, idx);
}

// Warp per position (backward): inv, ρ from num and den (lane parts of G·h, then lane 0).
XLSTM_MLSTM_HD float rec_rho_part(const RecGeo& g, const float* __restrict__ gates, const float* __restrict__ den,
                                  const float* __restrict__ num, const float* __restrict__ dh, int64_t p, int lane) {
  const float iv = rec_inv(den[p], gates[3 * p + 2], g.eps, nullptr);
  float gh = 0.0f;
  for (int64_t x = lane; x < g.DV; x += 32) gh += dh[p * g.DV + x] * num[p * g.DV + x] * iv;
  return gh;
}
XLSTM_MLSTM_HD void rec_rho_finish(const RecGeo& g, const float* __restrict__ gates, const float* __restrict__ den,
                                   float* inv, float* rho, int64_t p, float gh) {
  bool above = false;
  const float iv = rec_inv(den[p], gates[3 * p + 2], g.eps, &above);
  inv[p] = iv;
  rho[p] = above ? (den[p] > 0 ? -gh * iv : gh * iv) : 0.0f;
}
__global__ void rec_rho_kernel(RecGeo g, const float* __restrict__ gates, const float* __restrict__ den,
                               const float* __restrict__ num, const float* __restrict__ dh, float* inv, float* rho) {
  const int lane = threadIdx.x % 32;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; p < g.BH * g.S;
       p += static_cast<int64_t>(kWarps) * gridDim.x) {
    const float gh = warp_sum_f(rec_rho_part(g, gates, den, num, dh, p, lane));
    if (lane == 0) rec_rho_finish(g, gates, den, inv, rho, p, gh);
  }
}

// Thread per (bh, row j): reverse over segments, recomputing the segment's rows C_t[j, :] (seg: (SEG+1) x DV per
// thread, [bh][s][x][j]) from the checkpoint; dC row in dcb ([bh][x][j]). Writes ∂q, ∂k of row j, the ∂f' term
// pf[p·DK + j] = (C_t-cotangent · C_{t−1})_j + ∂n_t[j] n_{t−1}[j], dc0 / dn0, and dmp[bh·DK + j] (row j's ∂m_0).
XLSTM_MLSTM_HD void rec_rows_item(const RecGeo& g, const float* __restrict__ q, const float* __restrict__ k,
                                  const float* __restrict__ v, const float* __restrict__ dh,
                                  const float* __restrict__ gates, const float* __restrict__ inv,
                                  const float* __restrict__ rho, const float* __restrict__ saved,
                                  const float* __restrict__ dc_last, const float* __restrict__ dn_last, float* seg,
                                  float* dcb, float* dq, float* dk, double* pf, float* dc0, float* dn0, double* dmp,
                                  int64_t idx) {
  constexpr int64_t SEG = kRecurrentSegment;
  const int64_t DKV = g.DK * g.DV;
  const int64_t bh = idx / g.DK, j = idx % g.DK;
  float* sg = seg + bh * (SEG + 1) * DKV + j;  // element (s, x) at sg[(s·DV + x)·DK]
  float* dC = dcb + bh * DKV + j;              // element x at dC[x·DK]
  for (int64_t x = 0; x < g.DV; ++x) dC[x * g.DK] = dc_last ? dc_last[bh * DKV + j * g.DV + x] : 0.0f;
  float dn = dn_last ? dn_last[bh * g.DK + j] : 0.0f;
  float nseg[SEG + 1];
  for (int64_t sgi = g.NSEG - 1; sgi >= 0; --sgi) {
    const int64_t t0 = sgi * SEG, len = g.S - t0 < SEG ? g.S - t0 : SEG;
    const float* cp = saved + (bh * g.NSEG + sgi) * g.CP;
    for (int64_t x = 0; x < g.DV; ++x) sg[x * g.DK] = cp[j * g.DV + x];
    nseg[0] = cp[DKV + j];
#pragma unroll 1
    for (int xs = 0; xs < SEG; ++xs) {
      if (xs >= len) break;
      const int64_t p = bh * g.S + t0 + xs;
      const float fp = gates[3 * p], kj = gates[3 * p + 1] * g.s * k[p * g.DK + j];
      float* prev = sg + xs * g.DV * g.DK;
      float* next = prev + g.DV * g.DK;
#pragma unroll 1
      for (int64_t x = 0; x < g.DV; ++x) next[x * g.DK] = fp * prev[x * g.DK] + kj * v[p * g.DV + x];
      nseg[xs + 1] = fp * nseg[xs] + kj;
    }
#pragma unroll 1
    for (int xs = SEG - 1; xs >= 0; --xs) {
      if (xs >= len) continue;
      const int64_t p = bh * g.S + t0 + xs;
      const float fp = gates[3 * p], isk = gates[3 * p + 1] * g.s, iv = inv[p], rh = rho[p];
      const float qj = q[p * g.DK + j];
      const float* Ct = sg + (xs + 1) * g.DV * g.DK;
      const float* Cp = sg + xs * g.DV * g.DK;
      float dqj = 0.0f, uj = 0.0f, fj = 0.0f;
#pragma unroll 1
      for (int64_t x = 0; x < g.DV; ++x) {
        const float delta = dh[p * g.DV + x] * iv;
        const float tot = dC[x * g.DK] + qj * delta;
        dqj += Ct[x * g.DK] * delta;
        uj += tot * v[p * g.DV + x];
        fj += tot * Cp[x * g.DK];
        dC[x * g.DK] = fp * tot;
      }
      const float dnt = dn + rh * qj;
      dq[p * g.DK + j] = dqj + rh * nseg[xs + 1];
      dk[p * g.DK + j] = isk * (uj + dnt);
      pf[p * g.DK + j] = static_cast<double>(fj) + static_cast<double>(dnt) * nseg[xs];
      dn = fp * dnt;
    }
  }
  const float* cp0 = saved + bh * g.NSEG * g.CP;
  double dm = 0.0;
  for (int64_t x = 0; x < g.DV; ++x) {
    const float d = dC[x * g.DK];
    dm += static_cast<double>(d) * cp0[j * g.DV + x];
    if (dc0) dc0[bh * DKV + j * g.DV + x] = d;
  }
  dm += static_cast<double>(dn) * cp0[DKV + j];
  if (dn0) dn0[bh * g.DK + j] = dn;
  dmp[idx] = dm;
}
__global__ void __launch_bounds__(kThreads, 2) rec_rows_kernel(RecGeo g, const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ v, const float* __restrict__ dh,
                                const float* __restrict__ gates, const float* __restrict__ inv,
                                const float* __restrict__ rho, const float* __restrict__ saved,
                                const float* __restrict__ dc_last, const float* __restrict__ dn_last, float* seg,
                                float* dcb, float* dq, float* dk, double* pf, float* dc0, float* dn0, double* dmp) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.DK)
  rec_rows_item(g, q, k, v, dh, gates, inv, rho, saved, dc_last, dn_last, seg, dcb, dq, dk, pf, dc0, dn0, dmp, idx);
}

// Thread per (bh, column x): ∂v_t[x] = Σ_j (i' s k_j) (∂C_t[j][x] + q_j δ_x), ∂C in dcb ([bh][j][x]).
XLSTM_MLSTM_HD void rec_cols_item(const RecGeo& g, const float* __restrict__ q, const float* __restrict__ k,
                                  const float* __restrict__ dh, const float* __restrict__ gates,
                                  const float* __restrict__ inv, const float* __restrict__ dc_last, float* dcb,
                                  float* dv, int64_t idx) {
  const int64_t DKV = g.DK * g.DV;
  const int64_t bh = idx / g.DV, x = idx % g.DV;
  float* dC = dcb + bh * DKV + x;
  for (int64_t j = 0; j < g.DK; ++j) dC[j * g.DV] = dc_last ? dc_last[bh * DKV + j * g.DV + x] : 0.0f;
  for (int64_t t = g.S - 1; t >= 0; --t) {
    const int64_t p = bh * g.S + t;
    const float fp = gates[3 * p], isk = gates[3 * p + 1] * g.s, delta = dh[p * g.DV + x] * inv[p];
    float acc = 0.0f;
    for (int64_t j = 0; j < g.DK; ++j) {
      const float tot = dC[j * g.DV] + q[p * g.DK + j] * delta;
      acc += (isk * k[p * g.DK + j]) * tot;
      dC[j * g.DV] = fp * tot;
    }
    dv[p * g.DV + x] = acc;
  }
}
__global__ void rec_cols_kernel(RecGeo g, const float* __restrict__ q, const float* __restrict__ k,
                                const float* __restrict__ dh, const float* __restrict__ gates,
                                const float* __restrict__ inv, const float* __restrict__ dc_last, float* dcb,
                                float* dv) {
  XLSTM_GRID_STRIDE(idx, g.BH * g.DV) rec_cols_item(g, q, k, dh, gates, inv, dc_last, dcb, dv, idx);
}

// Thread per position: ∂ĩ = Σ_j k_j ∂k_j, ∂f̃ = f' Σ_j pf_j σ(−f̃) (j in order, as the CPU).
XLSTM_MLSTM_HD void rec_dots_item(const RecGeo& g, const float* __restrict__ k, const float* __restrict__ dk,
                                  const double* __restrict__ pf, const float* __restrict__ gates,
                                  const float* __restrict__ fg, float* di, float* df, int64_t p) {
  double a = 0.0, b = 0.0;
  for (int64_t j = 0; j < g.DK; ++j) {
    a += static_cast<double>(k[p * g.DK + j]) * dk[p * g.DK + j];
    b += pf[p * g.DK + j];
  }
  di[p] = static_cast<float>(a);
  df[p] = static_cast<float>(static_cast<double>(gates[3 * p]) * b * mm::sigmoid_d(-static_cast<double>(fg[p])));
}
__global__ void rec_dots_kernel(RecGeo g, const float* __restrict__ k, const float* __restrict__ dk,
                                const double* __restrict__ pf, const float* __restrict__ gates,
                                const float* __restrict__ fg, float* di, float* df) {
  XLSTM_GRID_STRIDE(p, g.BH * g.S) rec_dots_item(g, k, dk, pf, gates, fg, di, df, p);
}

XLSTM_MLSTM_HD void rec_dm0_item(const RecGeo& g, const double* __restrict__ dmp, float* dm0, int64_t bh) {
  double dm = 0.0;
  for (int64_t j = 0; j < g.DK; ++j) dm += dmp[bh * g.DK + j];
  dm0[bh] = static_cast<float>(dm);
}
__global__ void rec_dm0_kernel(RecGeo g, const double* __restrict__ dmp, float* dm0) {
  XLSTM_GRID_STRIDE(bh, g.BH) rec_dm0_item(g, dmp, dm0, bh);
}

// ---- launch helpers ---------------------------------------------------------------------------------------------

template <int MODE>
void launch_tile(const TileArgs& a, int64_t Dout, cudaStream_t st, const char* entry) {
  tile_kernel<MODE><<<grid_for(Tile::blocks(a.g, Dout), 1), Tile::THREADS, 0, st>>>(a);
  launched(entry);
}

struct GateBufs {
  StreamScratch<double> w, p, a, b, c;
  GateBufs(const Geo& g, cudaStream_t st, const char* entry)
      : w(g.BH * g.S, st, entry), p(g.BH * g.S, st, entry), a(g.BH * g.S, st, entry), b(g.BH * g.S, st, entry),
        c(2 * g.BH * g.NC, st, entry) {}
};

void launch_gates(const Geo& g, const float* fg, const float* ig, GateBufs& gb, cudaStream_t st, const char* entry) {
  gates_chunk_kernel<<<grid_for(g.BH * g.NC, kThreads), kThreads, 0, st>>>(g, fg, ig, gb.w.p, gb.p.p, gb.a.p, gb.b.p, gb.c.p);
  launched(entry);
}

// Which float32 chunkwise form runs (cuda::set_mlstm_form): 0 the tiled kernels, 1 the composed form (the bf16 form's
// products as float32 grouped GEMMs on the SIMT cores), 2 (default) by the state size: composed from DK·DV >= 2^16.
// Measured on an H100 (forward + backward, chunk 64; `xlstm bench --device cuda --workload G2-forms`): DK = DV = 64
// and 128 are 1-20 % faster tiled, 256 x 512 heads 16-19 % faster composed; 2^16 lies between.
std::atomic<int> g_mlstm_form{2};
constexpr int64_t kComposedMinState = int64_t{1} << 16;
// whether a float32 (bf16 false) or bf16 chunkwise launch of geometry g runs the composed form
bool composed_form(const Geo& g, bool bf16) {
  const int form = g_mlstm_form.load(std::memory_order_relaxed);
  return bf16 || form == 1 || (form == 2 && g.DK * g.DV >= kComposedMinState);
}

// How the composed forms (bf16, and float32 composed) compute the inter-chunk states (cuda::set_mlstm_states): 0
// (default) the state kernels' walk over the chunks, 1 every chunk's product as one grouped GEMM, then an
// elementwise scan (StateScan in mlstm_bf16.cuh; opt-in until timed on a GPU).
std::atomic<int> g_mlstm_states{0};
bool scan_states_on() { return g_mlstm_states.load(std::memory_order_relaxed) == 1; }

// How the bf16 form computes the intra-chunk parts (cuda::set_mlstm_intra): 0 (default) as grouped products
// (composed_h: S, the weights, the normaliser, h; composed_grads: dq, dk, dv), 1 fused, a kernel per output with a
// block per (chunk, 64-row tile) (mlstm_fused.cuh; chunks up to 256; opt-in until timed on a GPU).
std::atomic<int> g_mlstm_intra{0};

#include "mlstm_bf16.cuh"
#include "mlstm_fused.cuh"

// whether a bf16 launch of geometry g runs the fused intra-chunk kernels (chunks up to kFusedMaxChunk)
bool fused_intra_on(bool bf16, const Geo& g) { return bf16 && g_mlstm_intra.load(std::memory_order_relaxed) == 1 && fused_fits(g); }

// The composed forms' forward after the states and backward after Λ: the intra-chunk parts fused (bf16, opt-in) or
// as products.
template <class Exec>
void forward_h(const Exec& ex, const Bf16FwdArgs& a) {
  if (fused_intra_on(ex.bf16, a.g)) fused_h(ex, a);
  else composed_h(ex, a);
}
template <class Exec>
void backward_grads(const Exec& ex, const Bf16BwdArgs& a) {
  if (fused_intra_on(ex.bf16, a.g)) fused_grads(ex, a);
  else composed_grads(ex, a);
}

// The float32 gradient tiles' arguments (tile<DQ / DK / DV>), from the backward's arrays; `out` set per launch.
TileArgs grad_tile_args(const Bf16BwdArgs& b, bool lam_last_zero) {
  TileArgs a{};
  a.g = b.g;
  a.q = b.q, a.k = b.k, a.v = b.v, a.dh = b.dh;
  a.gw = b.gw, a.gp = b.gp;
  a.saved = b.saved;
  a.beta = b.beta, a.alpha = b.alpha, a.inv = b.inv, a.rho = b.rho;
  a.lam = b.lam;
  a.lam_last_zero = lam_last_zero;
  return a;
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

namespace {
// bf16: the products on tensor cores (mlstm_bf16.cuh) in place of the float32 tiled kernels
void chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                       const float* k, const float* v, const float* i, const float* f, const float* c0,
                       const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                       bool parallel_init, bool bf16, void* stream) {
  const char* entry = bf16 ? "mlstm_chunkwise_forward_bf16" : "mlstm_chunkwise_forward";
  const Geo g = make_geo(d, chunk, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const cudaStream_t st = hostutil::as_stream(stream);
  StreamScratch<float> own(saved ? 0 : g.BH * g.W, st, entry);
  if (!saved) saved = own.p;
  GateBufs gb(g, st, entry);
  StreamScratch<float> gamma(g.BH * g.NC, st, entry), scale(g.BH, st, entry), beta(g.BH * g.S, st, entry),
      alpha(g.BH * g.S, st, entry);
  const bool empty_init = parallel_init && c0 == nullptr;
  launch_gates(g, f, i, gb, st, entry);
  fwd_seq_kernel<<<grid_for(g.BH, kThreads), kThreads, 0, st>>>(g, gb.c.p, c0 ? m0 : nullptr, empty_init, saved,
                                                                  gamma.p, scale.p, m_last);
  launched(entry);
  fwd_pos_kernel<<<grid_for(g.BH * g.S, kThreads), kThreads, 0, st>>>(g, gb.p.p, gb.a.p, gb.b.p, saved, beta.p, alpha.p);
  launched(entry);
  {
    StreamScratch<float> nsum(g.BH * g.NC * g.DK, st, entry);
    fwd_n_sum_kernel<<<grid_for(g.BH * g.NC * g.DK, kThreads), kThreads, 0, st>>>(g, k, alpha.p, nsum.p);
    launched(entry);
    fwd_n_walk_kernel<<<grid_for(g.BH * g.DK, kThreads), kThreads, 0, st>>>(g, nsum.p, gamma.p, scale.p,
                                                                           c0 ? n0 : nullptr, saved, n_last);
    launched(entry);
  }
  const bool composed = composed_form(g, bf16), products = composed && !fused_intra_on(bf16, g);
  StreamScratch<float> ll(products ? g.BH * g.NC * g.L * g.L : 0, st, entry), inv(products ? g.BH * g.S : 0, st, entry),
      ib(products ? g.BH * g.S : 0, st, entry);
  const DeviceExec ex{st, entry, bf16};
  const Bf16FwdArgs fa{g, q, k, v, alpha.p, beta.p, gamma.p, scale.p, c0, gb.w.p, gb.p.p, saved, c_last, h, ll.p, inv.p, ib.p};
  if (composed && scan_states_on()) {
    scan_states(ex, fa);
  } else if (bf16) {
    bf16_states(ex, fa);
  } else {
    const StateTileArgs sa{g, k, v, alpha.p, gamma.p, scale.p, c0, saved, c_last};
    state_tile_kernel<StateTileBlock, StateTileArgs><<<static_cast<unsigned>(std::min<int64_t>(StateTile::blocks(g), kMaxBlocks)), StateTile::THREADS, 0, st>>>(sa, false);
    launched(entry);
  }
  if (composed) {
    forward_h(ex, fa);
    return;
  }
  TileArgs a{};
  a.g = g;
  a.q = q, a.k = k, a.v = v, a.dh = nullptr;
  a.gw = gb.w.p, a.gp = gb.p.p;
  a.saved = saved, a.saved_out = saved;
  a.beta = beta.p, a.alpha = alpha.p;
  a.out = h;
  launch_tile<kFwdH>(a, g.DV, st, entry);
}

void chunkwise_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0, float* dm0,
                        const float* saved, const float* h, const float* dh, const float* dc_last, const float* dn_last,
                        const float* q, const float* k, const float* v, const float* i, const float* f,
                        const MlstmDims& d, int64_t chunk, float eps, bool bf16, void* stream) {
  const char* entry = bf16 ? "mlstm_chunkwise_backward_bf16" : "mlstm_chunkwise_backward";
  const Geo g = make_geo(d, chunk, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const cudaStream_t st = hostutil::as_stream(stream);
  const int64_t E = state_elems(g);
  GateBufs gb(g, st, entry);
  StreamScratch<float> gamma(g.BH * g.NC, st, entry), beta(g.BH * g.S, st, entry), alpha(g.BH * g.S, st, entry),
      inv(g.BH * g.S, st, entry), rho(g.BH * g.S, st, entry), lam(g.BH * g.NC * E, st, entry), lam0(g.BH * E, st, entry);
  StreamScratch<double> ct(g.BH, st, entry), r(g.BH * g.S, st, entry);
  launch_gates(g, f, i, gb, st, entry);
  bwd_seq_kernel<<<grid_for(g.BH * g.NC, kThreads), kThreads, 0, st>>>(g, gb.c.p, saved, gamma.p);
  launched(entry);
  bwd_pos_kernel<<<grid_for(g.BH * g.S, kWarps), kThreads, 0, st>>>(g, gb.p.p, gb.a.p, saved, h, dh, beta.p, alpha.p,
                                                                     inv.p, rho.p);
  launched(entry);
  {
    StreamScratch<float> nsum(g.BH * g.NC * g.DK, st, entry);
    bwd_n_sum_kernel<<<grid_for(g.BH * g.NC * g.DK, kThreads), kThreads, 0, st>>>(g, q, beta.p, rho.p, nsum.p);
    launched(entry);
    bwd_n_walk_kernel<<<grid_for(g.BH * g.DK, kThreads), kThreads, 0, st>>>(g, nsum.p, saved, gamma.p, dn_last, lam.p,
                                                                           lam0.p, dn0);
    launched(entry);
  }
  const bool composed = composed_form(g, bf16);
  const bool products = composed && !fused_intra_on(bf16, g);
  StreamScratch<float> ll(products ? g.BH * g.NC * g.L * g.L : 0, st, entry), ib(composed ? g.BH * g.S : 0, st, entry);
  const Bf16BwdArgs ba{g, q, k, v, dh, saved, alpha.p, beta.p, inv.p, rho.p, gamma.p, dc_last, gb.w.p, gb.p.p,
                       lam.p, lam0.p, dc0, dq, dk, dv, ll.p, ib.p};
  const DeviceExec ex{st, entry, bf16};
  if (composed) composed_scales(ex, ba);
  if (composed && scan_states_on()) {
    scan_lambda(ex, ba);
  } else if (bf16) {
    bf16_lambda(ex, ba);
  } else {
    const LambdaTileArgs la{g, q, dh, saved, beta.p, inv.p, gamma.p, dc_last, lam.p, lam0.p, dc0};
    state_tile_kernel<LambdaTileBlock, LambdaTileArgs><<<static_cast<unsigned>(std::min<int64_t>(StateTile::blocks(g), kMaxBlocks)), StateTile::THREADS, 0, st>>>(la, true);
    launched(entry);
  }
  bwd_reduce_kernel<<<grid_for(g.BH, 1), kThreads, 0, st>>>(g, saved, lam.p, lam0.p, dc_last || dn_last, ct.p, dm0);
  launched(entry);
  if (composed) {
    backward_grads(ex, ba);
  } else {
    TileArgs a = grad_tile_args(ba, !dc_last && !dn_last);
    a.out = dq;
    launch_tile<kDQ>(a, g.DK, st, entry);
    a.out = dk;
    launch_tile<kDK>(a, g.DK, st, entry);
    a.out = dv;
    launch_tile<kDV>(a, g.DV, st, entry);
  }
  bwd_dots_kernel<<<grid_for(g.BH * g.S, kWarps), kThreads, 0, st>>>(g, q, k, dq, dk, di, r.p);
  launched(entry);
  StreamScratch<double> csum(g.BH * g.NC, st, entry);
  bwd_df_sum_kernel<<<grid_for(g.BH * g.NC, kThreads), kThreads, 0, st>>>(g, r.p, csum.p);
  launched(entry);
  bwd_df_kernel<<<grid_for(g.BH * g.NC, kThreads), kThreads, 0, st>>>(g, f, r.p, ct.p, csum.p, df);
  launched(entry);
}
}  // namespace

int set_mlstm_states(int form) {
  if (form < 0 || form > 1) throw std::invalid_argument("set_mlstm_states: form must be 0 (walk) or 1 (scan)");
  kernel_settings_changed();
  return g_mlstm_states.exchange(form);
}

int set_mlstm_intra(int form) {
  if (form < 0 || form > 1) throw std::invalid_argument("set_mlstm_intra: form must be 0 (products) or 1 (fused)");
  kernel_settings_changed();
  return g_mlstm_intra.exchange(form);
}

int set_mlstm_form(int form) {
  if (form < 0 || form > 2) throw std::invalid_argument("set_mlstm_form: form must be 0 (tiles), 1 (composed) or 2 (auto)");
  kernel_settings_changed();
  return g_mlstm_form.exchange(form);
}

void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init, void* stream) {
  chunkwise_forward(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, chunk, eps, parallel_init, false, stream);
}
void mlstm_chunkwise_forward_bf16(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                                  bool parallel_init, void* stream) {
  chunkwise_forward(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, chunk, eps, parallel_init, true, stream);
}
void mlstm_chunkwise_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* h, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, int64_t chunk, float eps, void* stream) {
  chunkwise_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, h, dh, dc_last, dn_last, q, k, v, i, f, d, chunk, eps, false, stream);
}
void mlstm_chunkwise_backward_bf16(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* h, const float* dh,
                                   const float* dc_last, const float* dn_last, const float* q, const float* k,
                                   const float* v, const float* i, const float* f, const MlstmDims& d, int64_t chunk,
                                   float eps, void* stream) {
  chunkwise_backward(dq, dk, dv, di, df, dc0, dn0, dm0, saved, h, dh, dc_last, dn_last, q, k, v, i, f, d, chunk, eps, true, stream);
}

void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps, void* stream) {
  const char* entry = "mlstm_recurrent_forward";
  const RecGeo g = make_rec(d, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const cudaStream_t st = hostutil::as_stream(stream);
  StreamScratch<float> gates(3 * g.BH * g.S, st, entry), den(g.BH * g.S, st, entry);
  const bool st0 = c0 != nullptr;
  rec_gates_kernel<<<grid_for(g.BH, kThreads), kThreads, 0, st>>>(g, f, i, st0 ? m0 : nullptr, saved, false, gates.p, m_last);
  launched(entry);
  rec_n_kernel<<<grid_for(g.BH, 1), kThreads, 0, st>>>(g, q, k, gates.p, st0 ? n0 : nullptr, saved, false, n_last, den.p);
  launched(entry);
  rec_c_kernel<<<grid_for(g.BH * g.DV, kThreads), kThreads, 0, st>>>(g, q, k, v, gates.p, den.p, c0, saved, false,
                                                                     c_last, h, nullptr);
  launched(entry);
}

void mlstm_recurrent_backward(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                              float* dm0, const float* saved, const float* dh, const float* dc_last,
                              const float* dn_last, const float* q, const float* k, const float* v, const float* i,
                              const float* f, const MlstmDims& d, float eps, void* stream) {
  const char* entry = "mlstm_recurrent_backward";
  const RecGeo g = make_rec(d, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const cudaStream_t st = hostutil::as_stream(stream);
  const int64_t DKV = g.DK * g.DV;
  StreamScratch<float> gates(3 * g.BH * g.S, st, entry), den(g.BH * g.S, st, entry), nb(g.BH * g.DK, st, entry),
      cb(g.BH * DKV, st, entry), num(g.BH * g.S * g.DV, st, entry), inv(g.BH * g.S, st, entry),
      rho(g.BH * g.S, st, entry), seg(g.BH * (kRecurrentSegment + 1) * DKV, st, entry), dcb(g.BH * DKV, st, entry);
  StreamScratch<double> pf(g.BH * g.S * g.DK, st, entry), dmp(g.BH * g.DK, st, entry);
  float* sv = const_cast<float*>(saved);  // restore mode only reads it
  rec_gates_kernel<<<grid_for(g.BH, kThreads), kThreads, 0, st>>>(g, f, i, nullptr, sv, true, gates.p, nullptr);
  launched(entry);
  rec_n_kernel<<<grid_for(g.BH, 1), kThreads, 0, st>>>(g, q, k, gates.p, nullptr, sv, true, nb.p, den.p);
  launched(entry);
  rec_c_kernel<<<grid_for(g.BH * g.DV, kThreads), kThreads, 0, st>>>(g, q, k, v, gates.p, den.p, nullptr, sv, true,
                                                                     cb.p, nullptr, num.p);
  launched(entry);
  rec_rho_kernel<<<grid_for(g.BH * g.S, kWarps), kThreads, 0, st>>>(g, gates.p, den.p, num.p, dh, inv.p, rho.p);
  launched(entry);
  rec_rows_kernel<<<grid_for(g.BH * g.DK, kThreads), kThreads, 0, st>>>(g, q, k, v, dh, gates.p, inv.p, rho.p, saved,
                                                                        dc_last, dn_last, seg.p, dcb.p, dq, dk, pf.p,
                                                                        dc0, dn0, dmp.p);
  launched(entry);
  rec_cols_kernel<<<grid_for(g.BH * g.DV, kThreads), kThreads, 0, st>>>(g, q, k, dh, gates.p, inv.p, dc_last, cb.p, dv);
  launched(entry);
  rec_dots_kernel<<<grid_for(g.BH * g.S, kThreads), kThreads, 0, st>>>(g, k, dk, pf.p, gates.p, f, di, df);
  launched(entry);
  if (dm0) {
    rec_dm0_kernel<<<grid_for(g.BH, kThreads), kThreads, 0, st>>>(g, dmp.p, dm0);
    launched(entry);
  }
}

// ---- host entries ----------------------------------------------------------------------------------------------

namespace {
struct HostSizes {
  int64_t qk, vh, gate, cs, ns, ms;
  explicit HostSizes(const MlstmDims& d)
      : qk(d.B * d.NH * d.S * d.DK), vh(d.B * d.NH * d.S * d.DV), gate(d.B * d.NH * d.S), cs(d.B * d.NH * d.DK * d.DV),
        ns(d.B * d.NH * d.DK), ms(d.B * d.NH) {}
};

// A forward host entry's device arrays: the inputs copied in (the state only with c0), the outputs (saved only
// when asked for, `saved_n` floats); finish() synchronises and copies the outputs back.
struct FwdHost {
  HostSizes z;
  DeviceBuffer<float> h, cl, nl, ml, sv, q, k, v, i, f, c0, n0, m0;
  FwdHost(const MlstmDims& d, int64_t saved_n, const float* hq, const float* hk, const float* hv, const float* hi,
          const float* hf, const float* hc0, const float* hn0, const float* hm0, const char* entry)
      : z(d), h(z.vh, entry), cl(z.cs, entry), nl(z.ns, entry), ml(z.ms, entry), sv(saved_n, entry),
        q(hq, z.qk, entry), k(hk, z.qk, entry), v(hv, z.vh, entry), i(hi, z.gate, entry), f(hf, z.gate, entry),
        c0(hc0, z.cs, entry), n0(hc0 ? hn0 : nullptr, z.ns, entry), m0(hc0 ? hm0 : nullptr, z.ms, entry) {}
  void finish(float* hh, float* c_last, float* n_last, float* m_last, float* saved, const char* entry) const {
    device_sync(entry);
    h.download(hh, entry), cl.download(c_last, entry), nl.download(n_last, entry), ml.download(m_last, entry);
    sv.download(saved, entry);
  }
};

// A backward host entry's device arrays: the inputs copied in (h only for the chunkwise form), the gradients
// (dc0, dn0, dm0 only when asked for); finish() synchronises and copies the gradients back.
struct BwdHost {
  HostSizes z;
  DeviceBuffer<float> dq, dk, dv, di, df, dc0, dn0, dm0, sv, h, dh, dcl, dnl, q, k, v, i, f;
  BwdHost(const MlstmDims& d, int64_t saved_n, bool want_dc0, bool want_dn0, bool want_dm0, const float* hsaved,
          const float* hh, const float* hdh, const float* hdcl, const float* hdnl, const float* hq, const float* hk,
          const float* hv, const float* hi, const float* hf, const char* entry)
      : z(d), dq(z.qk, entry), dk(z.qk, entry), dv(z.vh, entry), di(z.gate, entry), df(z.gate, entry),
        dc0(want_dc0 ? z.cs : 0, entry), dn0(want_dn0 ? z.ns : 0, entry), dm0(want_dm0 ? z.ms : 0, entry),
        sv(hsaved, saved_n, entry), h(hh, z.vh, entry), dh(hdh, z.vh, entry), dcl(hdcl, z.cs, entry),
        dnl(hdnl, z.ns, entry), q(hq, z.qk, entry), k(hk, z.qk, entry), v(hv, z.vh, entry), i(hi, z.gate, entry),
        f(hf, z.gate, entry) {}
  void finish(float* hdq, float* hdk, float* hdv, float* hdi, float* hdf, float* hdc0, float* hdn0, float* hdm0,
              const char* entry) const {
    device_sync(entry);
    dq.download(hdq, entry), dk.download(hdk, entry), dv.download(hdv, entry), di.download(hdi, entry);
    df.download(hdf, entry), dc0.download(hdc0, entry), dn0.download(hdn0, entry), dm0.download(hdm0, entry);
  }
};
}  // namespace

void mlstm_chunkwise_forward_host(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                                  bool parallel_init, bool bf16) {
  const char* entry = bf16 ? "mlstm_chunkwise_forward_bf16" : "mlstm_chunkwise_forward";
  const FwdHost b(d, saved ? mlstm_chunkwise_saved_size(d, chunk) : 0, q, k, v, i, f, c0, n0, m0, entry);
  chunkwise_forward(b.h.p, b.cl.p, b.nl.p, b.ml.p, b.sv.p, b.q.p, b.k.p, b.v.p, b.i.p, b.f.p, b.c0.p, b.n0.p, b.m0.p, d,
                    chunk, eps, parallel_init, bf16, nullptr);
  b.finish(h, c_last, n_last, m_last, saved, entry);
}

void mlstm_chunkwise_backward_host(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* h, const float* dh,
                                   const float* dc_last, const float* dn_last, const float* q, const float* k,
                                   const float* v, const float* i, const float* f, const MlstmDims& d, int64_t chunk,
                                   float eps, bool bf16) {
  const char* entry = bf16 ? "mlstm_chunkwise_backward_bf16" : "mlstm_chunkwise_backward";
  const BwdHost b(d, mlstm_chunkwise_saved_size(d, chunk), dc0, dn0, dm0, saved, h, dh, dc_last, dn_last, q, k, v, i,
                  f, entry);
  chunkwise_backward(b.dq.p, b.dk.p, b.dv.p, b.di.p, b.df.p, b.dc0.p, b.dn0.p, b.dm0.p, b.sv.p, b.h.p, b.dh.p, b.dcl.p,
                     b.dnl.p, b.q.p, b.k.p, b.v.p, b.i.p, b.f.p, d, chunk, eps, bf16, nullptr);
  b.finish(dq, dk, dv, di, df, dc0, dn0, dm0, entry);
}

void mlstm_recurrent_forward_host(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                                  const float* k, const float* v, const float* i, const float* f, const float* c0,
                                  const float* n0, const float* m0, const MlstmDims& d, float eps) {
  const char* entry = "mlstm_recurrent_forward";
  const FwdHost b(d, saved ? mlstm_recurrent_saved_size(d) : 0, q, k, v, i, f, c0, n0, m0, entry);
  mlstm_recurrent_forward(b.h.p, b.cl.p, b.nl.p, b.ml.p, b.sv.p, b.q.p, b.k.p, b.v.p, b.i.p, b.f.p, b.c0.p, b.n0.p,
                          b.m0.p, d, eps, nullptr);
  b.finish(h, c_last, n_last, m_last, saved, entry);
}

void mlstm_recurrent_backward_host(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                   float* dm0, const float* saved, const float* dh, const float* dc_last,
                                   const float* dn_last, const float* q, const float* k, const float* v,
                                   const float* i, const float* f, const MlstmDims& d, float eps) {
  const char* entry = "mlstm_recurrent_backward";
  const BwdHost b(d, mlstm_recurrent_saved_size(d), dc0, dn0, dm0, saved, nullptr, dh, dc_last, dn_last, q, k, v, i, f,
                  entry);
  mlstm_recurrent_backward(b.dq.p, b.dk.p, b.dv.p, b.di.p, b.df.p, b.dc0.p, b.dn0.p, b.dm0.p, b.sv.p, b.dh.p, b.dcl.p,
                           b.dnl.p, b.q.p, b.k.p, b.v.p, b.i.p, b.f.p, d, eps, nullptr);
  b.finish(dq, dk, dv, di, df, dc0, dn0, dm0, entry);
}

// ---- host coverage of the launches' write maps ------------------------------------------------------------------

namespace {
// Replays a launch of grid_for(n, per-block items) blocks of kThreads threads over n items, as the kernels walk
// them: a thread per item (grid-stride), a warp per item (lane passed on), or a block per item (fn once per block).
enum class Per { Thread, Warp, Block };
template <class F>
void each_item(int64_t n, Per per, F fn) {
  const int64_t per_block = per == Per::Thread ? kThreads : per == Per::Warp ? kWarps : 1;
  const int64_t grid = grid_for(n, per_block);
  for (int64_t b = 0; b < grid; ++b)
    for (int t = 0; t < kThreads; ++t) {
      if (per == Per::Block && t != 0) continue;
      const int64_t first = per == Per::Thread ? b * kThreads + t : per == Per::Warp ? b * kWarps + t / 32 : b;
      for (int64_t it = first; it < n; it += grid * per_block) fn(it, per == Per::Warp ? t % 32 : t);
    }
}

// Host replay of the tiled state kernels (fwd_state_tile: chunks in order; bwd_lambda_tile: in reverse): every
// block, each phase for all threads (shared memory NaN-filled per slice).
template <class Block, class Args>
void state_tiles_emulate(const Args& a, bool reverse) {
  constexpr int NT = StateTile::THREADS, TM = StateTile::TM, TN = StateTile::TN;
  std::vector<StateShared> sh(1);
  std::vector<float> val(static_cast<size_t>(NT) * TM * TN), acc(val.size());
  auto tile = [](std::vector<float>& v, int t) -> float(&)[TM][TN] { return *reinterpret_cast<float(*)[TM][TN]>(&v[static_cast<size_t>(t) * TM * TN]); };
  for (int64_t bid = 0; bid < StateTile::blocks(a.g); ++bid) {
    const Block b(a, bid);
    for (int t = 0; t < NT; ++t) b.init(t % StateTile::TX, t / StateTile::TX, tile(val, t));
    for (int64_t s = 0; s < a.g.NC; ++s) {
      const int64_t c = reverse ? a.g.NC - 1 - s : s;
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t t0 = 0; t0 < chunk_len(a.g, c); t0 += StateTile::BT) {
        std::fill(&sh[0].Ks[0][0], &sh[0].Ks[0][0] + sizeof(StateShared) / sizeof(float), std::nanf(""));
        for (int t = 0; t < NT; ++t) b.stage(c, t0, t, sh[0]);
        for (int t = 0; t < NT; ++t) state_tile_accumulate(a.g, c, t0, t % StateTile::TX, t / StateTile::TX, sh[0], tile(acc, t));
      }
      for (int t = 0; t < NT; ++t) b.finish_chunk(c, t % StateTile::TX, t / StateTile::TX, tile(acc, t), tile(val, t));
    }
    for (int t = 0; t < NT; ++t) b.finish(t % StateTile::TX, t / StateTile::TX, tile(val, t));
  }
}
void state_tile_emulate(const StateTileArgs& a) { state_tiles_emulate<StateTileBlock>(a, false); }
void lambda_tile_emulate(const LambdaTileArgs& a) { state_tiles_emulate<LambdaTileBlock>(a, true); }

struct Counter {
  std::vector<int32_t> c;
  explicit Counter(int64_t n) : c(static_cast<size_t>(n), 0) {}
  void hit(int64_t e) {
    if (e >= 0 && e < static_cast<int64_t>(c.size())) ++c[static_cast<size_t>(e)];
    else ++out_of_range;
  }
  int64_t out_of_range = 0;
  int64_t bad() const {
    int64_t b = out_of_range;
    for (int32_t v : c) b += v != 1;
    return b;
  }
};

// Tile-kernel outputs of one mode: every (block, thread, slot) that passes the kernel's checks.
void tile_cover(const Geo& g, int64_t Dout, Counter& out, int64_t row_len, Counter* den) {
  const int64_t nb = Tile::blocks(g, Dout), grid = grid_for(nb, 1), nx = Tile::block_col_tiles(g, Dout);
  for (int64_t b = 0; b < grid; ++b)
    for (int64_t bid = b; bid < nb; bid += grid)
    for (int64_t xi = 0; xi < nx; ++xi) {
      int64_t bh, c, rt, xt;
      Tile::decode(g, Dout, bid, &bh, &c, &rt, &xt);
      if (Tile::all_cols(g)) xt = xi;
      const int64_t l = chunk_len(g, c);
      if (rt * Tile::RT >= l) continue;
      for (int tid = 0; tid < Tile::THREADS; ++tid) {
        for (int i = 0; i < Tile::XI; ++i) {
          int64_t row, col;
          if (Tile::out_elem(g, Dout, c, rt, xt, tid, i, &row, &col)) out.hit((bh * g.S + c * g.L + row) * row_len + col);
        }
        if (den && tid < Tile::RT && rt * Tile::RT + tid < l && xt == 0)
          den->hit(bh * g.W + sv_den(g) + c * g.L + rt * Tile::RT + tid);
      }
    }
}

// Shared-memory staging: each slot of each staged tile written by exactly one (thread, k).
int64_t slot_cover() {
  int64_t bad = 0;
  auto one = [&](int rows, int cols) {
    std::vector<int> n(static_cast<size_t>(rows * cols), 0);
    for (int tid = 0; tid < Tile::THREADS; ++tid)
      for (int k = 0; k < rows * cols / Tile::THREADS; ++k) {
        int r, c;
        Tile::slot(tid, k, cols, &r, &c);
        if (r < 0 || r >= rows || c < 0 || c >= cols) ++bad;
        else ++n[static_cast<size_t>(r * cols + c)];
      }
    for (int v : n) bad += v != 1;
  };
  one(Tile::RT, Tile::PT);
  one(Tile::CT, Tile::PT);
  one(Tile::RT, Tile::CT);  // the weight entries (2 per thread)
  one(Tile::CT, Tile::XT);
  one(Tile::PT, Tile::XT);
  // every output slot of a block exactly once
  std::vector<int> o(Tile::RT * Tile::XT, 0);
  for (int tid = 0; tid < Tile::THREADS; ++tid)
    for (int i = 0; i < Tile::XI; ++i) ++o[static_cast<size_t>((tid / Tile::TX) * Tile::XT + tid % Tile::TX + i * Tile::TX)];
  for (int v : o) bad += v != 1;
  return bad;
}
}  // namespace

int64_t mlstm_coverage(const MlstmDims& d, int64_t chunk, int64_t* bad) {
  const Geo g = make_geo(d, chunk, 0.0f);
  const RecGeo rg = make_rec(d, 0.0f);
  const HostSizes z(d);
  const int64_t E = state_elems(g), DKV = g.DK * g.DV;
  // chunkwise forward: h, c_last, n_last, m_last, saved
  {
    Counter h(z.vh), cl(z.cs), nl(z.ns), ml(z.ms), sv(g.BH * g.W);
    each_item(g.BH, Per::Thread, [&](int64_t bh, int) {  // fwd_seq
      for (int64_t c = 0; c <= g.NC + 1; ++c) sv.hit(bh * g.W + sv_m(g) + c);
      ml.hit(bh);
    });
    each_item(g.BH * g.S, Per::Thread, [&](int64_t p, int) {  // fwd_pos
      sv.hit((p / g.S) * g.W + sv_mu(g) + p % g.S);
    });
    each_item(g.BH * g.DK, Per::Thread, [&](int64_t idx, int) {  // fwd_n_walk
      const int64_t bh = idx / g.DK, e = DKV + idx % g.DK;
      for (int64_t c = 0; c <= g.NC; ++c) sv.hit(bh * g.W + sv_state(g, c, e));
      nl.hit(bh * g.DK + e - DKV);
    });
    {  // fwd_state_tile: every (block, thread, register slot) inside C; the staging slots of a slice once each
      const StateTileArgs sa{g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
      for (int64_t bid = 0; bid < StateTile::blocks(g); ++bid) {
        const StateTileBlock b(sa, bid);
        for (int t = 0; t < StateTile::THREADS; ++t)
          for (int i = 0; i < StateTile::TM; ++i)
            for (int jj = 0; jj < StateTile::TN; ++jj) {
              int64_t j, x;
              if (!b.elem(t % StateTile::TX, t / StateTile::TX, i, jj, &j, &x)) continue;
              for (int64_t c = 0; c <= g.NC; ++c) sv.hit(b.bh * g.W + sv_state(g, c, j * g.DV + x));
              cl.hit(b.bh * DKV + j * g.DV + x);
            }
      }
      std::vector<int> slots(StateTile::BT * StateTile::TJ, 0);
      for (int t = 0; t < StateTile::THREADS; ++t)
        for (int q = 0; q < StateTile::LOADS; ++q) {
          int tt, col;
          StateTile::slot(t, q, &tt, &col);
          if (tt >= 0 && tt < StateTile::BT && col >= 0 && col < StateTile::TJ) ++slots[tt * StateTile::TJ + col];
        }
      for (int n : slots)
        if (n != 1) sv.hit(-1);  // a staging slot not loaded exactly once: counted as a bad write
    }
    tile_cover(g, g.DV, h, g.DV, &sv);
    bad[0] = h.bad(), bad[1] = cl.bad(), bad[2] = nl.bad(), bad[3] = ml.bad(), bad[4] = sv.bad();
  }
  // chunkwise backward: dq, dk, dv, di, df, dc0, dn0, dm0
  {
    Counter dq(z.qk), dk(z.qk), dv(z.vh), di(z.gate), df(z.gate), dc0(z.cs), dn0(z.ns), dm0(z.ms);
    each_item(g.BH * g.DK, Per::Thread, [&](int64_t idx, int) { dn0.hit(idx); });  // bwd_n_walk
    {  // bwd_lambda_tile: every (block, thread, register slot) inside Λᶜ writes its dc0 element once
      const LambdaTileArgs la{g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr};
      for (int64_t bid = 0; bid < StateTile::blocks(g); ++bid) {
        const LambdaTileBlock b(la, bid);
        for (int t = 0; t < StateTile::THREADS; ++t)
          for (int i = 0; i < StateTile::TM; ++i)
            for (int jj = 0; jj < StateTile::TN; ++jj) {
              int64_t e;
              if (b.elem(t % StateTile::TX, t / StateTile::TX, i, jj, &e)) dc0.hit(b.bh * DKV + e);
            }
      }
    }
    each_item(g.BH, Per::Block, [&](int64_t bh, int) { dm0.hit(bh); });  // bwd_reduce (thread 0)
    tile_cover(g, g.DK, dq, g.DK, nullptr);
    tile_cover(g, g.DK, dk, g.DK, nullptr);
    tile_cover(g, g.DV, dv, g.DV, nullptr);
    each_item(g.BH * g.S, Per::Warp, [&](int64_t p, int lane) {  // bwd_dots (lane 0)
      if (lane == 0) di.hit(p);
    });
    each_item(g.BH * g.NC, Per::Thread, [&](int64_t task, int) {  // bwd_df
      const int64_t bh = task / g.NC, c = task % g.NC;
      for (int64_t t = chunk_len(g, c) - 1; t >= 0; --t) df.hit(bh * g.S + c * g.L + t);
    });
    bad[5] = dq.bad(), bad[6] = dk.bad(), bad[7] = dv.bad(), bad[8] = di.bad(), bad[9] = df.bad();
    bad[10] = dc0.bad(), bad[11] = dn0.bad(), bad[12] = dm0.bad();
  }
  // recurrent forward: h, c_last, n_last, m_last, saved
  {
    Counter h(z.vh), cl(z.cs), nl(z.ns), ml(z.ms), sv(mlstm_recurrent_saved_size(d));
    each_item(rg.BH, Per::Thread, [&](int64_t bh, int) {  // rec_gates
      for (int64_t t = 0; t < rg.S; t += kRecurrentSegment) sv.hit(rec_cp(rg, bh, t) + DKV + rg.DK);
      ml.hit(bh);
    });
    each_item(rg.BH, Per::Block, [&](int64_t bh, int) {  // rec_n: the block's threads over j
      for (int tid = 0; tid < kThreads; ++tid)
        for (int64_t j = tid; j < rg.DK; j += kThreads) {
          for (int64_t t = 0; t < rg.S; t += kRecurrentSegment) sv.hit(rec_cp(rg, bh, t) + DKV + j);
          nl.hit(bh * rg.DK + j);
        }
    });
    each_item(rg.BH * rg.DV, Per::Thread, [&](int64_t idx, int) {  // rec_c
      const int64_t bh = idx / rg.DV, x = idx % rg.DV;
      for (int64_t j = 0; j < rg.DK; ++j) {
        for (int64_t t = 0; t < rg.S; t += kRecurrentSegment) sv.hit(rec_cp(rg, bh, t) + x + j * rg.DV);
        cl.hit(bh * DKV + j * rg.DV + x);
      }
      for (int64_t t = 0; t < rg.S; ++t) h.hit((bh * rg.S + t) * rg.DV + x);
    });
    bad[13] = h.bad(), bad[14] = cl.bad(), bad[15] = nl.bad(), bad[16] = ml.bad(), bad[17] = sv.bad();
  }
  // recurrent backward: dq, dk, dv, di, df, dc0, dn0, dm0
  {
    Counter dq(z.qk), dk(z.qk), dv(z.vh), di(z.gate), df(z.gate), dc0(z.cs), dn0(z.ns), dm0(z.ms);
    each_item(rg.BH * rg.DK, Per::Thread, [&](int64_t idx, int) {  // rec_rows
      const int64_t bh = idx / rg.DK, j = idx % rg.DK;
      for (int64_t t = 0; t < rg.S; ++t) {
        dq.hit((bh * rg.S + t) * rg.DK + j);
        dk.hit((bh * rg.S + t) * rg.DK + j);
      }
      for (int64_t x = 0; x < rg.DV; ++x) dc0.hit(bh * DKV + j * rg.DV + x);
      dn0.hit(idx);
    });
    each_item(rg.BH * rg.DV, Per::Thread, [&](int64_t idx, int) {  // rec_cols
      for (int64_t t = 0; t < rg.S; ++t) dv.hit(((idx / rg.DV) * rg.S + t) * rg.DV + idx % rg.DV);
    });
    each_item(rg.BH * rg.S, Per::Thread, [&](int64_t p, int) {  // rec_dots
      di.hit(p);
      df.hit(p);
    });
    each_item(rg.BH, Per::Thread, [&](int64_t bh, int) { dm0.hit(bh); });  // rec_dm0
    bad[18] = dq.bad(), bad[19] = dk.bad(), bad[20] = dv.bad(), bad[21] = di.bad(), bad[22] = df.bad();
    bad[23] = dc0.bad(), bad[24] = dn0.bad(), bad[25] = dm0.bad();
  }
  bad[26] = slot_cover();
  {  // the fused bf16 kernels (mlstm_fused.cuh): h and den, dq, dk, dv; their staging / output slots once each
    std::vector<float> probe(static_cast<size_t>(g.BH * g.W), 0.0f);  // m finite: every block's inter-chunk path
    Counter h(z.vh), den(g.BH * g.S), dq(z.qk), dk(z.qk), dv(z.vh);
    const auto hit = [](Counter& k) { return [&k](int64_t i) { k.hit(i); }; };
    fused_cover<Fused::H>(g, probe.data(), hit(h), [&](int64_t i) { den.hit((i / g.W) * g.S + i % g.W - sv_den(g)); });
    const auto no_den = [&](int64_t) { den.hit(-1); };
    fused_cover<Fused::DQ>(g, probe.data(), hit(dq), no_den);
    fused_cover<Fused::DK>(g, probe.data(), hit(dk), no_den);
    fused_cover<Fused::DV>(g, probe.data(), hit(dv), no_den);
    using FT = FusedTile;
    int64_t slots = 0;
    // (rows, cols, transposed): the X / Y slices, the state and Z slices (and the transposed state's), the output halves
    for (const auto& [rows, cols, tr] : {std::tuple<int, int, bool>{FT::BQ, FT::BK, false}, {FT::BK, FT::BV, false},
                                         {FT::BK, FT::BV, true}, {FT::BQ, FT::BV / 2, false}}) {
      std::vector<int> n(static_cast<size_t>(rows * cols), 0);
      for (int tid = 0; tid < FT::THREADS; ++tid)
        for (int v = 0; v < rows * cols / (4 * FT::THREADS); ++v) {
          int r, col;
          if (tr) FT::vec_t(tid, v, &r, &col);
          else FT::vec(tid, v, cols, &r, &col);
          for (int e = 0; e < 4; ++e) {
            const int rr = tr ? r + e : r, cc = tr ? col : col + e;
            if (rr < 0 || rr >= rows || cc < 0 || cc >= cols) ++slots;
            else ++n[static_cast<size_t>(rr * cols + cc)];
          }
        }
      for (int x : n) slots += x != 1;
    }
    bad[27] = h.bad() + den.bad() + slots, bad[28] = dq.bad(), bad[29] = dk.bad(), bad[30] = dv.bad();
  }
  int64_t total = 0;
  for (int e = 0; e < kMlstmCoverageOutputs; ++e) total += bad[e];
  return total;
}


// ---- host replays of the launches (no GPU needed) ----------------------------------------------------------------
// The kernels' own __host__ __device__ code run on host arrays: each launch of the device entry in turn, every
// block in launch order, each phase by all of the block's threads before the next (what __syncthreads
// guarantees), warp sums as the shuffle butterfly (rows::host_row_reduce: lane i adds lane i ^ o, the device's
// order), block trees as the kernels' tree_step. Shared memory and the scratch the device entries take from
// cudaMallocAsync are host arrays filled with NaN (all bits set), so a read of anything not written first shows
// up in the results. Same arguments as the device entries without the stream.

namespace {
template <class V>
std::vector<V> nan_vec(int64_t n) {
  std::vector<V> v(static_cast<size_t>(n > 0 ? n : 0));
  if (!v.empty()) std::memset(v.data(), 0xff, v.size() * sizeof(V));
  return v;
}

// A warp-per-item launch of grid_for(n, kWarps) blocks: fn(p) for each item in launch order (block, warp, pass).
template <class F>
void each_warp_item(int64_t n, F fn) {
  const int64_t grid = grid_for(n, kWarps);
  for (int64_t b = 0; b < grid; ++b)
    for (int w = 0; w < kWarps; ++w)
      for (int64_t p = b * kWarps + w; p < n; p += grid * kWarps) fn(p);
}
// The warp's butterfly sum of part(lane) over its 32 lanes.
template <class V, class F>
V warp_reduce(F part) {
  V v[32];
  for (int lane = 0; lane < 32; ++lane) v[lane] = part(lane);
  return rows::host_row_reduce<rows::SumOp>(v, 32);
}
// A block-per-item launch of grid_for(n, 1) blocks: fn(item) for each block's items in launch order.
template <class F>
void each_block_item(int64_t n, F fn) {
  const int64_t grid = grid_for(n, 1);
  for (int64_t b = 0; b < grid; ++b)
    for (int64_t it = b; it < n; it += grid) fn(it);
}

template <int MODE>
void tile_emulate(const TileArgs& A) {
  using T = Tile;
  using Blk = TileBlock<MODE>;
  const int64_t nb = T::blocks(A.g, Blk::dout(A.g)), grid = grid_for(nb, 1);
  const bool all = T::all_cols(A.g);
  const int64_t nx = T::block_col_tiles(A.g, Blk::dout(A.g));
  std::vector<TileShared> shv(1);
  TileShared& sh = shv[0];
  std::vector<float> acc(T::THREADS * T::XI), acc2(T::THREADS * T::XI), dot(T::THREADS * 2);
  auto weights_of = [&](const Blk& b, int64_t cb) {  // col_consts done: the dots, then the weights into W
    std::fill(dot.begin(), dot.end(), 0.0f);
    for (int64_t p0 = 0; p0 < Blk::dd(A.g); p0 += T::PT) {
      for (int tid = 0; tid < T::THREADS; ++tid) b.stage(cb, p0, tid);
      for (int tid = 0; tid < T::THREADS; ++tid) b.dots(tid, &dot[static_cast<size_t>(tid) * 2]);
    }
    int64_t ld;
    float* W = b.wts(all, cb, &ld);
    for (int tid = 0; tid < T::THREADS; ++tid) b.weights(cb, tid, &dot[static_cast<size_t>(tid) * 2], W, ld);
  };
  for (int64_t blk = 0; blk < grid; ++blk) {
    std::memset(&sh, 0xff, sizeof(TileShared));
    for (int64_t bid = blk; bid < nb; bid += grid) {
      Blk b(A, sh, bid);
      if (!b.active()) continue;
      for (int tid = 0; tid < T::THREADS; ++tid) b.row_consts(tid);
      int64_t ld;
      if (all) {
        for (int64_t cb = b.cbeg(); cb < b.cend(); cb += T::CT) {
          for (int tid = 0; tid < T::THREADS; ++tid) b.col_consts(cb, tid);
          weights_of(b, cb);
          const float* W = b.wts(true, cb, &ld);
          for (int tid = 0; tid < T::THREADS; ++tid) b.den_add(tid, W, ld);
        }
      }
      for (int64_t xi = 0; xi < nx; ++xi) {
        if (all) b.set_xt(xi);
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t cb = b.cbeg(); cb < b.cend(); cb += T::CT) {
          for (int tid = 0; tid < T::THREADS; ++tid) b.col_consts(cb, tid);
          if (!all) weights_of(b, cb);
          for (int tid = 0; tid < T::THREADS; ++tid) b.ys(cb, tid);
          const float* W = b.wts(all, cb, &ld);
          if (!all)
            for (int tid = 0; tid < T::THREADS; ++tid) b.den_add(tid, W, ld);
          for (int tid = 0; tid < T::THREADS; ++tid) b.accum(tid, &acc[static_cast<size_t>(tid) * T::XI], W, ld);
        }
        std::fill(acc2.begin(), acc2.end(), 0.0f);
        if (b.extra()) {
          for (int64_t p0 = 0; p0 < Blk::dx(A.g); p0 += T::PT) {
            for (int tid = 0; tid < T::THREADS; ++tid) b.stage_extra(p0, tid);
            for (int tid = 0; tid < T::THREADS; ++tid) b.accum_extra(tid, &acc2[static_cast<size_t>(tid) * T::XI]);
          }
        }
        for (int tid = 0; tid < T::THREADS; ++tid) b.den_phase(tid);
        for (int tid = 0; tid < T::THREADS; ++tid)
          b.output(tid, &acc[static_cast<size_t>(tid) * T::XI], &acc2[static_cast<size_t>(tid) * T::XI]);
      }
    }
  }
}

struct GateVecs {
  std::vector<double> w, p, a, b, c;
  explicit GateVecs(const Geo& g)
      : w(nan_vec<double>(g.BH * g.S)), p(nan_vec<double>(g.BH * g.S)), a(nan_vec<double>(g.BH * g.S)),
        b(nan_vec<double>(g.BH * g.S)), c(nan_vec<double>(2 * g.BH * g.NC)) {}
};
void gates_emulate(const Geo& g, const float* fg, const float* ig, GateVecs& gb) {
  each_item(g.BH * g.NC, Per::Thread, [&](int64_t task, int) {
    gates_chunk_item(g, fg, ig, gb.w.data(), gb.p.data(), gb.a.data(), gb.b.data(), gb.c.data(), task);
  });
}

// rec_n_kernel's launch: per block item, each step's phases (thread parts, the tree, thread 0's store).
void rec_n_emulate(const RecGeo& g, const float* q, const float* k, const float* gates, const float* n0,
                   float* saved, bool restore, float* nbuf, float* den) {
  std::vector<float> red = nan_vec<float>(kThreads);
  each_block_item(g.BH, [&](int64_t bh) {
    for (int tid = 0; tid < kThreads; ++tid) rec_n_init(g, n0, nbuf, bh, tid);
    for (int64_t t = 0; t < g.S; ++t) {
      for (int tid = 0; tid < kThreads; ++tid) red[tid] = rec_n_step(g, q, k, gates, saved, restore, nbuf, bh, t, tid);
      for (int o = kThreads / 2; o > 0; o >>= 1)
        for (int tid = 0; tid < kThreads; ++tid) tree_step(red.data(), tid, o);
      den[bh * g.S + t] = red[0];
    }
  });
}
}  // namespace

void mlstm_chunkwise_forward_emulate(float* h, float* c_last, float* n_last, float* m_last, float* saved,
                                     const float* q, const float* k, const float* v, const float* i, const float* f,
                                     const float* c0, const float* n0, const float* m0, const MlstmDims& d,
                                     int64_t chunk, float eps, bool parallel_init, int bf16) {
  const Geo g = make_geo(d, chunk, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  std::vector<float> own = nan_vec<float>(saved ? 0 : g.BH * g.W);
  if (!saved) saved = own.data();
  GateVecs gb(g);
  std::vector<float> gamma = nan_vec<float>(g.BH * g.NC), scale = nan_vec<float>(g.BH),
                     beta = nan_vec<float>(g.BH * g.S), alpha = nan_vec<float>(g.BH * g.S);
  const bool empty_init = parallel_init && c0 == nullptr;
  gates_emulate(g, f, i, gb);
  each_item(g.BH, Per::Thread, [&](int64_t bh, int) {
    fwd_seq_item(g, gb.c.data(), c0 ? m0 : nullptr, empty_init, saved, gamma.data(), scale.data(), m_last, bh);
  });
  each_item(g.BH * g.S, Per::Thread, [&](int64_t p, int) {
    fwd_pos_item(g, gb.p.data(), gb.a.data(), gb.b.data(), saved, beta.data(), alpha.data(), p);
  });
  {
    std::vector<float> nsum = nan_vec<float>(g.BH * g.NC * g.DK);
    each_item(g.BH * g.NC * g.DK, Per::Thread, [&](int64_t idx, int) { fwd_n_sum_item(g, k, alpha.data(), nsum.data(), idx); });
    each_item(g.BH * g.DK, Per::Thread, [&](int64_t idx, int) {
      fwd_n_walk_item(g, nsum.data(), gamma.data(), scale.data(), c0 ? n0 : nullptr, saved, n_last, idx);
    });
  }
  const bool composed = composed_form(g, bf16), products = composed && !fused_intra_on(bf16 != 0, g);
  std::vector<float> ll = nan_vec<float>(products ? g.BH * g.NC * g.L * g.L : 0), inv = nan_vec<float>(products ? g.BH * g.S : 0),
                     ib = nan_vec<float>(products ? g.BH * g.S : 0);
  const HostExec ex{bf16 != 0, bf16 == 1};
  const Bf16FwdArgs fa{g, q, k, v, alpha.data(), beta.data(), gamma.data(), scale.data(), c0, gb.w.data(), gb.p.data(),
                       saved, c_last, h, ll.data(), inv.data(), ib.data()};
  if (composed && scan_states_on()) scan_states(ex, fa);
  else if (bf16) bf16_states(ex, fa);
  else state_tile_emulate(StateTileArgs{g, k, v, alpha.data(), gamma.data(), scale.data(), c0, saved, c_last});
  if (composed) {
    forward_h(ex, fa);
    return;
  }
  TileArgs a{};
  a.g = g;
  a.q = q, a.k = k, a.v = v, a.dh = nullptr;
  a.gw = gb.w.data(), a.gp = gb.p.data();
  a.saved = saved, a.saved_out = saved;
  a.beta = beta.data(), a.alpha = alpha.data();
  a.out = h;
  tile_emulate<kFwdH>(a);
}

void mlstm_chunkwise_backward_emulate(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                      float* dm0, const float* saved, const float* h, const float* dh,
                                      const float* dc_last, const float* dn_last, const float* q, const float* k,
                                      const float* v, const float* i, const float* f, const MlstmDims& d,
                                      int64_t chunk, float eps, int bf16) {
  const Geo g = make_geo(d, chunk, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const int64_t E = state_elems(g);
  GateVecs gb(g);
  std::vector<float> gamma = nan_vec<float>(g.BH * g.NC), beta = nan_vec<float>(g.BH * g.S),
                     alpha = nan_vec<float>(g.BH * g.S), inv = nan_vec<float>(g.BH * g.S),
                     rho = nan_vec<float>(g.BH * g.S), lam = nan_vec<float>(g.BH * g.NC * E),
                     lam0 = nan_vec<float>(g.BH * E);
  std::vector<double> ct = nan_vec<double>(g.BH), r = nan_vec<double>(g.BH * g.S);
  gates_emulate(g, f, i, gb);
  each_item(g.BH * g.NC, Per::Thread, [&](int64_t task, int) { bwd_seq_item(g, gb.c.data(), saved, gamma.data(), task); });
  each_warp_item(g.BH * g.S, [&](int64_t p) {
    const float gh = warp_reduce<float>([&](int lane) { return bwd_pos_part(g, h, dh, p, lane); });
    bwd_pos_finish(g, gb.p.data(), gb.a.data(), saved, beta.data(), alpha.data(), inv.data(), rho.data(), p, gh);
  });
  {
    std::vector<float> nsum = nan_vec<float>(g.BH * g.NC * g.DK);
    each_item(g.BH * g.NC * g.DK, Per::Thread, [&](int64_t idx, int) {
      bwd_n_sum_item(g, q, beta.data(), rho.data(), nsum.data(), idx);
    });
    each_item(g.BH * g.DK, Per::Thread, [&](int64_t idx, int) {
      bwd_n_walk_item(g, nsum.data(), saved, gamma.data(), dn_last, lam.data(), lam0.data(), dn0, idx);
    });
  }
  const bool composed = composed_form(g, bf16);
  const bool products = composed && !fused_intra_on(bf16 != 0, g);
  std::vector<float> ll = nan_vec<float>(products ? g.BH * g.NC * g.L * g.L : 0), ib = nan_vec<float>(composed ? g.BH * g.S : 0);
  const Bf16BwdArgs ba{g, q, k, v, dh, saved, alpha.data(), beta.data(), inv.data(), rho.data(), gamma.data(), dc_last,
                       gb.w.data(), gb.p.data(), lam.data(), lam0.data(), dc0, dq, dk, dv, ll.data(), ib.data()};
  const HostExec ex{bf16 != 0, bf16 == 1};
  if (composed) composed_scales(ex, ba);
  if (composed && scan_states_on()) scan_lambda(ex, ba);
  else if (bf16) bf16_lambda(ex, ba);
  else lambda_tile_emulate(LambdaTileArgs{g, q, dh, saved, beta.data(), inv.data(), gamma.data(), dc_last, lam.data(), lam0.data(), dc0});
  {
    std::vector<double> red0 = nan_vec<double>(kThreads), red1 = nan_vec<double>(kThreads);
    const bool final_terms = dc_last || dn_last;
    each_block_item(g.BH, [&](int64_t bh) {
      for (int tid = 0; tid < kThreads; ++tid)
        bwd_reduce_part(g, saved, lam.data(), lam0.data(), final_terms, bh, tid, red0.data(), red1.data());
      for (int o = kThreads / 2; o > 0; o >>= 1)
        for (int tid = 0; tid < kThreads; ++tid) tree_step(red0.data(), tid, o), tree_step(red1.data(), tid, o);
      bwd_reduce_finish(g, saved, bh, red0.data(), red1.data(), ct.data(), dm0);
    });
  }
  if (composed) {
    backward_grads(ex, ba);
  } else {
    TileArgs a = grad_tile_args(ba, !dc_last && !dn_last);
    a.out = dq;
    tile_emulate<kDQ>(a);
    a.out = dk;
    tile_emulate<kDK>(a);
    a.out = dv;
    tile_emulate<kDV>(a);
  }
  each_warp_item(g.BH * g.S, [&](int64_t p) {
    double pa[32], pb[32];
    for (int lane = 0; lane < 32; ++lane) bwd_dots_part(g, q, k, dq, dk, p, lane, &pa[lane], &pb[lane]);
    bwd_dots_finish(p, rows::host_row_reduce<rows::SumOp>(pa, 32), rows::host_row_reduce<rows::SumOp>(pb, 32), di,
                    r.data());
  });
  std::vector<double> csum = nan_vec<double>(g.BH * g.NC);
  each_item(g.BH * g.NC, Per::Thread, [&](int64_t task, int) { bwd_df_sum_item(g, r.data(), csum.data(), task); });
  each_item(g.BH * g.NC, Per::Thread, [&](int64_t task, int) { bwd_df_item(g, f, r.data(), ct.data(), csum.data(), df, task); });
}

void mlstm_recurrent_forward_emulate(float* h, float* c_last, float* n_last, float* m_last, float* saved,
                                     const float* q, const float* k, const float* v, const float* i, const float* f,
                                     const float* c0, const float* n0, const float* m0, const MlstmDims& d,
                                     float eps) {
  const RecGeo g = make_rec(d, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  std::vector<float> gates = nan_vec<float>(3 * g.BH * g.S), den = nan_vec<float>(g.BH * g.S);
  const bool st0 = c0 != nullptr;
  each_item(g.BH, Per::Thread, [&](int64_t bh, int) {
    rec_gates_item(g, f, i, st0 ? m0 : nullptr, saved, false, gates.data(), m_last, bh);
  });
  rec_n_emulate(g, q, k, gates.data(), st0 ? n0 : nullptr, saved, false, n_last, den.data());
  each_item(g.BH * g.DV, Per::Thread, [&](int64_t idx, int) {
    rec_c_item(g, q, k, v, gates.data(), den.data(), c0, saved, false, c_last, h, nullptr, idx);
  });
}

void mlstm_recurrent_backward_emulate(float* dq, float* dk, float* dv, float* di, float* df, float* dc0, float* dn0,
                                      float* dm0, const float* saved, const float* dh, const float* dc_last,
                                      const float* dn_last, const float* q, const float* k, const float* v,
                                      const float* i, const float* f, const MlstmDims& d, float eps) {
  const RecGeo g = make_rec(d, eps);
  if (g.BH <= 0 || g.S <= 0) return;
  const int64_t DKV = g.DK * g.DV;
  std::vector<float> gates = nan_vec<float>(3 * g.BH * g.S), den = nan_vec<float>(g.BH * g.S),
                     nb = nan_vec<float>(g.BH * g.DK), cb = nan_vec<float>(g.BH * DKV),
                     num = nan_vec<float>(g.BH * g.S * g.DV), inv = nan_vec<float>(g.BH * g.S),
                     rho = nan_vec<float>(g.BH * g.S), seg = nan_vec<float>(g.BH * (kRecurrentSegment + 1) * DKV),
                     dcb = nan_vec<float>(g.BH * DKV);
  std::vector<double> pf = nan_vec<double>(g.BH * g.S * g.DK), dmp = nan_vec<double>(g.BH * g.DK);
  float* sv = const_cast<float*>(saved);  // restore mode only reads it
  each_item(g.BH, Per::Thread, [&](int64_t bh, int) {
    rec_gates_item(g, f, i, nullptr, sv, true, gates.data(), nullptr, bh);
  });
  rec_n_emulate(g, q, k, gates.data(), nullptr, sv, true, nb.data(), den.data());
  each_item(g.BH * g.DV, Per::Thread, [&](int64_t idx, int) {
    rec_c_item(g, q, k, v, gates.data(), den.data(), nullptr, sv, true, cb.data(), nullptr, num.data(), idx);
  });
  each_warp_item(g.BH * g.S, [&](int64_t p) {
    const float gh = warp_reduce<float>([&](int lane) { return rec_rho_part(g, gates.data(), den.data(), num.data(), dh, p, lane); });
    rec_rho_finish(g, gates.data(), den.data(), inv.data(), rho.data(), p, gh);
  });
  each_item(g.BH * g.DK, Per::Thread, [&](int64_t idx, int) {
    rec_rows_item(g, q, k, v, dh, gates.data(), inv.data(), rho.data(), saved, dc_last, dn_last, seg.data(),
                  dcb.data(), dq, dk, pf.data(), dc0, dn0, dmp.data(), idx);
  });
  each_item(g.BH * g.DV, Per::Thread, [&](int64_t idx, int) {
    rec_cols_item(g, q, k, dh, gates.data(), inv.data(), dc_last, cb.data(), dv, idx);
  });
  each_item(g.BH * g.S, Per::Thread, [&](int64_t p, int) {
    rec_dots_item(g, k, dk, pf.data(), gates.data(), f, di, df, p);
  });
  if (dm0) each_item(g.BH, Per::Thread, [&](int64_t bh, int) { rec_dm0_item(g, dmp.data(), dm0, bh); });
}

}  // namespace cuda
}  // namespace xlstm
