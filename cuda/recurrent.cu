// CUDA twin of csrc/kernels/recurrent.cc: the whole-sequence sLSTM and classic LSTM recurrences and their BPTT
// backward (XLSTM_SPEC §2, §3; reference CUDA convention for ∂m_0), on device memory. Same functions, argument
// order, layouts and semantics as csrc/kernels/recurrent.h (x, gates, dx [B,S,4H]; R, dR [NH,DH,4DH]; bias,
// dbias [4H]; state0, dstate0, dstate_final [NS,B,H]; y, dy [B,S,H]; states [NS,S,B,H]); B, S, NH, DH >= 1.
// The pointwise cell math is SlstmCell / LstmCell of csrc/kernels/recurrent_cells.h, the very functions the CPU
// kernels run, so the CPU tests check that math and the CPU<->GPU comparison only has to cover the launch code.
//
// Work split (as on the CPU): heads are independent (block-diagonal R) and so are batch rows, so one thread block
// owns one head and `rows` (<= 4) batch rows for the WHOLE sequence and loops over time itself:
//   forward, per step: (1) one thread per (row, gate column k) computes p = x + h_{t-1}·R[:, k] + bias (dot product
//     over the head's DH units, in the CPU's order j = 0..DH-1) into `gates` and shared memory; (2) one thread per
//     (row, unit) runs the cell update and writes y, states and h_t (shared memory, the next step's input).
//   backward (sequential part), reverse time: (1) one thread per (row, unit) runs the cell backward on the carried
//     ∂h, ∂c, ∂n (shared memory) and writes dx (= the pre-activation gradients) to global memory and shared
//     memory; (2) one thread per (row, unit j) computes ∂h_{t-1}[j] = Σ_k R[j, k] dp[k] (k = 0..4DH-1 in order).
//   __syncthreads between phases. The head's R [DH, 4DH] is staged in (dynamic) shared memory with a padded row
//   stride 4DH+1 (no bank conflicts in either phase) when it fits the device's per-block limit, otherwise read from
//   global memory (L1/L2).
//   dR / dbias afterwards, deterministic without atomics (as the CPU, which reduces them from dx with a GEMM):
//   pass 1, one block per (row chunk, head, 64 x 64 tile of source unit j in [0, DH] x gate column k), each thread
//   4 x 4 of them, sums h_{t-1}[j]·dx[k] over its chunk's rows (b*S + t order, staged in shared memory) into float
//   partials (j = DH is the bias: the sum of dx); pass 2, one thread per dR / dbias element adds the chunk partials
//   in chunk order in double and rounds once.
// With few heads and a small batch that launch leaves most of the GPU idle (G1: 4 blocks); the split-head launch of
// recurrent_split.cuh (a head's units over many co-resident blocks, a grid barrier per step) takes over then
// (set_recurrent_launch picks either for tests and benchmarks).
// All thread -> (head, batch row, gate unit) maps and offsets are the __host__ __device__ helpers of RecLaunch,
// which recurrent_coverage() runs on the host over every block, thread and step of a launch. The kernel bodies are
// __host__ __device__ phase functions (FwdBlock, BwdBlock, PgTile, pg_final) that the *_emulate entries run on
// the host, phase by phase for every thread, so the kernels' arithmetic is tested without a GPU.
// Device entries only enqueue on `stream` (a cudaStream_t; null = default); backward's partials are stream-ordered
// scratch (cudaMallocAsync). *_host entries copy in, run, copy out and synchronise. Errors throw
// std::runtime_error("<entry>: <what>: <cudaGetErrorString>"); sizes the kernels cannot take (DH so large that the
// per-block state does not fit in shared memory) throw std::invalid_argument.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_api.h"
#include "cuda_host_util.h"
#include "gemm_grouped.h"
#include "kernels/bf16_math.h"
#include "kernels/recurrent.h"
#include "kernels/reduce.h"
#include "kernels/recurrent_cells.h"

namespace xlstm {
namespace cuda {
namespace {

using namespace hostutil;

constexpr int kMaxThreads = 512;   // threads per block of the sequence kernels
constexpr int kMaxRows = 4;        // batch rows per block (the CPU's kRows)
constexpr int kPgThreads = 256;    // threads per block of the parameter-gradient passes (pass 1: 16 x 16)
constexpr int kPgTile = 64;        // pass 1: a block's tile of 64 source units j x 64 gate columns k
constexpr int kPgSub = 4;          // pass 1: each thread's 4 x 4 outputs of the tile
constexpr int kPgRowStep = 16;     // pass 1: rows staged in shared memory per step
constexpr int kPgPer = kPgRowStep * kPgTile / kPgThreads;  // pass 1: slots of hs (and of ds) each thread stages
constexpr int64_t kPgTargetBlocks = 1024;  // pass-1 blocks aimed for (sets the row chunks)

// Launch geometry and index maps of one recurrence (sizes from RecurrentDims; NS = number of states).
struct RecLaunch {
  int64_t B, S, NH, DH, H, G;
  int rows;             // batch rows per block
  int64_t row_blocks;   // blocks per head
  int64_t blocks;       // NH * row_blocks, one 1-D grid
  int fwd_threads, bwd_threads;
  // parameter gradients
  int64_t pg_rows;      // B*S rows reduced over
  int64_t pg_elems;     // NH * (DH + 1) * G outputs (j = DH: the bias)
  int64_t pg_per;       // rows per chunk
  int64_t pg_chunks;    // chunks
  int64_t pg_jt, pg_kt; // pass-1 tiles per head along j (DH + 1, the bias row included) and along k

  // ---- block -> (head, first batch row, rows in this block)
  __host__ __device__ void block_task(int64_t blk, int64_t* hd, int64_t* b0, int* nb) const {
    *hd = blk / row_blocks;
    *b0 = (blk - *hd * row_blocks) * rows;
    const int64_t left = B - *b0;
    *nb = static_cast<int>(left < rows ? left : rows);
  }
  // ---- per-block work items (thread t takes items t, t + threads, ...): gate items i < nb*G -> (row bb, column k
  // = g*DH + u); unit items i < nb*DH -> (row bb, unit u)
  __host__ __device__ void gate_item(int64_t i, int* bb, int64_t* k) const {
    *bb = static_cast<int>(i / G);
    *k = i - *bb * G;
  }
  __host__ __device__ void unit_item(int64_t i, int* bb, int64_t* u) const {
    *bb = static_cast<int>(i / DH);
    *u = i - *bb * DH;
  }
  // ---- global offsets (head hd, batch row b, step t)
  // x / gates / dx [B,S,4H]: column k = g*DH + u of the head -> g*H + hd*DH + u
  __host__ __device__ int64_t gate_col(int64_t hd, int64_t k) const { return (k / DH) * H + hd * DH + k % DH; }
  __host__ __device__ int64_t x_off(int64_t hd, int64_t b, int64_t t, int64_t k) const {
    return (b * S + t) * 4 * H + gate_col(hd, k);
  }
  __host__ __device__ int64_t y_off(int64_t hd, int64_t b, int64_t t, int64_t u) const {
    return (b * S + t) * H + hd * DH + u;
  }
  // states [NS,S,B,H]
  __host__ __device__ int64_t state_off(int s, int64_t hd, int64_t t, int64_t b, int64_t u) const {
    return s * S * B * H + (t * B + b) * H + hd * DH + u;
  }
  // state0 / dstate0 / dstate_final [NS,B,H]
  __host__ __device__ int64_t state0_off(int s, int64_t hd, int64_t b, int64_t u) const {
    return (s * B + b) * H + hd * DH + u;
  }
  // ---- shared memory (floats): [R staged: DH*(G+1)] then the per-row vectors
  __host__ __device__ int64_t r_floats() const { return DH * (G + 1); }
  __host__ __device__ int64_t fwd_vec_floats() const { return rows * (DH + G); }       // hprev, pre
  __host__ __device__ int64_t bwd_vec_floats() const { return rows * (3 * DH + G); }   // dh, dc, dn, dp
  // ---- parameter gradients: pass-1 block -> (chunk, head, tile origin j0, k0); element e -> (head, source unit
  // j <= DH, column k); partial of (chunk, e) at chunk * pg_elems + e
  __host__ __device__ int64_t pg_blocks() const { return pg_chunks * NH * pg_jt * pg_kt; }
  __host__ __device__ void pg_block(int64_t blk, int64_t* chunk, int64_t* hd, int64_t* j0, int64_t* k0) const {
    *k0 = (blk % pg_kt) * kPgTile;
    int64_t rest = blk / pg_kt;
    *j0 = (rest % pg_jt) * kPgTile;
    rest /= pg_jt;
    *hd = rest % NH;
    *chunk = rest / NH;
  }
  __host__ __device__ int64_t pg_index(int64_t hd, int64_t j, int64_t k) const { return (hd * (DH + 1) + j) * G + k; }
  __host__ __device__ void pg_elem(int64_t e, int64_t* hd, int64_t* j, int64_t* k) const {
    *k = e % G;
    const int64_t rest = e / G;
    *j = rest % (DH + 1);
    *hd = rest / (DH + 1);
  }
  // output of element e: dR (j < DH) or dbias (j == DH)
  __host__ __device__ int64_t pg_out(int64_t hd, int64_t j, int64_t k) const {
    return j < DH ? (hd * DH + j) * G + k : gate_col(hd, k);
  }
  // ---- shared by the kernels' phases
  // state s of (head hd, row b, unit u) entering step t: states at t-1, state0 at t = 0 (absent: 0)
  __host__ __device__ float prev_state(const float* states, const float* state0, int s, int64_t hd, int64_t t, int64_t b,
                                       int64_t u) const {
    if (t > 0) return states[state_off(s, hd, t - 1, b, u)];
    return state0 ? state0[state0_off(s, hd, b, u)] : 0.0f;
  }
  // head hd's R [DH][G] into shared memory with the padded row stride G + 1, threads tid of nt
  __host__ __device__ void stage_r(const float* R, int64_t hd, float* sm, int tid, int nt) const {
    const float* Rg = R + hd * DH * G;
    for (int64_t i = tid; i < DH * G; i += nt) sm[(i / G) * (G + 1) + i % G] = Rg[i];
  }
};

int round_threads(int64_t items) {
  const int64_t t = (items + 31) / 32 * 32;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(t, 32), kMaxThreads));
}

RecLaunch make_launch(const RecurrentDims& d) {
  RecLaunch L;
  L.B = d.B;
  L.S = d.S;
  L.NH = d.NH;
  L.DH = d.DH;
  L.H = d.NH * d.DH;
  L.G = 4 * d.DH;
  // more rows per block share each read of R; with a very large DH one row keeps the state in shared memory
  L.rows = static_cast<int>(std::min<int64_t>(d.B, d.DH <= 1024 ? kMaxRows : 1));
  L.row_blocks = (d.B + L.rows - 1) / L.rows;
  L.blocks = d.NH * L.row_blocks;
  L.fwd_threads = round_threads(L.rows * L.G);
  L.bwd_threads = round_threads(L.rows * L.DH);
  L.pg_rows = d.B * d.S;
  L.pg_elems = d.NH * (d.DH + 1) * L.G;
  L.pg_jt = (d.DH + 1 + kPgTile - 1) / kPgTile;
  L.pg_kt = (L.G + kPgTile - 1) / kPgTile;
  // chunks: about kPgTargetBlocks pass-1 blocks, at least 64 rows per chunk
  const int64_t tiles = d.NH * L.pg_jt * L.pg_kt;
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>((L.pg_rows + 63) / 64, (kPgTargetBlocks + tiles - 1) / tiles));
  L.pg_per = (L.pg_rows + want - 1) / want;
  L.pg_chunks = (L.pg_rows + L.pg_per - 1) / L.pg_per;
  return L;
}

// ---- kernel bodies ---------------------------------------------------------------------------------------------
// Each kernel is a sequence of phases separated by __syncthreads; a phase is a __host__ __device__ member taking the
// thread index, so the *_emulate entries run the very same code on the host (every thread of a phase, then the next
// phase), with a host array standing in for shared memory.

struct FwdArgs {
  float *y, *states, *gates;
  const float *x, *state0, *R, *bias;
  uint16_t* hx = nullptr;  // the tc form: h_t as bf16 [2][B][H] by step parity, the blocks' exchange (recurrent_tc.cuh)
};

template <class Cell>
struct FwdBlock {
  static constexpr int NS = Cell::kStates;
  RecLaunch L;
  FwdArgs a;
  int64_t hd, b0;
  int nb;
  bool r_smem;
  float* sm;     // R staged (r_smem) then hprev [rows][DH], pre [rows][G]
  float* hprev;
  float* pre;
  const float* Rh;  // this head's R: staged (row stride G+1) or global (row stride G)
  int64_t ld;

  __host__ __device__ FwdBlock(const RecLaunch& l, const FwdArgs& args, bool rs, int64_t blk, float* smem)
      : L(l), a(args), r_smem(rs), sm(smem) {
    L.block_task(blk, &hd, &b0, &nb);
    hprev = sm + (r_smem ? L.r_floats() : 0);
    pre = hprev + L.rows * L.DH;
    Rh = r_smem ? sm : a.R + hd * L.DH * L.G;
    ld = r_smem ? L.G + 1 : L.G;
  }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    return L.prev_state(a.states, a.state0, s, hd, t, b, u);
  }
  // stage R, h_0
  __host__ __device__ void init(int tid, int nt) const {
    const int64_t DH = L.DH;
    if (r_smem) L.stage_r(a.R, hd, sm, tid, nt);
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t u;
      L.unit_item(i, &bb, &u);
      hprev[bb * DH + u] = prev(0, 0, b0 + bb, u);
    }
  }
  // (1) gate pre-activations p = (x + h_{t-1}·R[:, k]) + bias (saved by the sLSTM; the LSTM saves activations)
  __host__ __device__ void gates_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = L.DH, G = L.G;
    for (int64_t i = tid; i < nb * G; i += nt) {
      int bb;
      int64_t k;
      L.gate_item(i, &bb, &k);
      const float* hp = hprev + bb * DH;
      float acc = 0.0f;
      for (int64_t j = 0; j < DH; ++j) acc = fmaf(hp[j], Rh[j * ld + k], acc);
      const int64_t off = L.x_off(hd, b0 + bb, t, k);
      const float p = a.x[off] + acc + a.bias[L.gate_col(hd, k)];
      if constexpr (NS == 4) a.gates[off] = p;  // the LSTM saves its activations instead (cell_phase)
      pre[bb * G + k] = p;
    }
  }
  // (2) cell update: states, y, h_t
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = L.DH, G = L.G;
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t u;
      L.unit_item(i, &bb, &u);
      const int64_t b = b0 + bb;
      const float* pr = pre + bb * G;
      float h;
      if constexpr (NS == 4) {
        float c, n, m;
        Cell::forward(pr[u], pr[DH + u], pr[2 * DH + u], pr[3 * DH + u], prev(1, t, b, u), prev(2, t, b, u),
                      prev(3, t, b, u), &h, &c, &n, &m);
        a.states[L.state_off(1, hd, t, b, u)] = c;
        a.states[L.state_off(2, hd, t, b, u)] = n;
        a.states[L.state_off(3, hd, t, b, u)] = m;
      } else {
        float c, gi, gf, gz, go;
        Cell::forward_act(pr[u], pr[DH + u], pr[2 * DH + u], pr[3 * DH + u], prev(1, t, b, u), &h, &c, &gi, &gf, &gz,
                          &go);
        a.states[L.state_off(1, hd, t, b, u)] = c;
        a.gates[L.x_off(hd, b, t, u)] = gi;
        a.gates[L.x_off(hd, b, t, DH + u)] = gf;
        a.gates[L.x_off(hd, b, t, 2 * DH + u)] = gz;
        a.gates[L.x_off(hd, b, t, 3 * DH + u)] = go;
      }
      a.states[L.state_off(0, hd, t, b, u)] = h;
      a.y[L.y_off(hd, b, t, u)] = h;
      hprev[bb * DH + u] = h;
    }
  }
};

struct BwdArgs {
  float *dx, *dstate0;
  const float *gates, *states, *dy, *dfinal, *state0, *R;
  bool exact_m0_grad;
  float* dx_tb = nullptr;  // the tc form: dx also in [S, B, 4H] order (time-major, as states), for its dR GEMM
  uint16_t* dpx = nullptr;  // the gather form: the exchange buffer of dp as bf16 (SplitLaunch::dpx_off)
};

template <class Cell>
struct BwdBlock {
  static constexpr int NS = Cell::kStates;
  RecLaunch L;
  BwdArgs a;
  int64_t hd, b0;
  int nb;
  bool r_smem;
  float* sm;  // R staged (r_smem) then dh, dc, dn [rows][DH] (carried ∂h recurrent part, ∂c, ∂n), dp [rows][G]
  float *dh, *dc, *dn, *dp;
  const float* Rh;
  int64_t ld;

  __host__ __device__ BwdBlock(const RecLaunch& l, const BwdArgs& args, bool rs, int64_t blk, float* smem)
      : L(l), a(args), r_smem(rs), sm(smem) {
    L.block_task(blk, &hd, &b0, &nb);
    dh = sm + (r_smem ? L.r_floats() : 0);
    dc = dh + L.rows * L.DH;
    dn = dc + L.rows * L.DH;
    dp = dn + L.rows * L.DH;
    Rh = r_smem ? sm : a.R + hd * L.DH * L.G;
    ld = r_smem ? L.G + 1 : L.G;
  }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    return L.prev_state(a.states, a.state0, s, hd, t, b, u);
  }
  // stage R, the carried cotangents from dstate_final (its m part ignored)
  __host__ __device__ void init(int tid, int nt) const {
    const int64_t DH = L.DH;
    if (r_smem) L.stage_r(a.R, hd, sm, tid, nt);
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t u;
      L.unit_item(i, &bb, &u);
      const int64_t b = b0 + bb;
      dh[bb * DH + u] = a.dfinal ? a.dfinal[L.state0_off(0, hd, b, u)] : 0.0f;
      dc[bb * DH + u] = a.dfinal ? a.dfinal[L.state0_off(1, hd, b, u)] : 0.0f;
      dn[bb * DH + u] = (NS == 4 && a.dfinal) ? a.dfinal[L.state0_off(2, hd, b, u)] : 0.0f;
    }
  }
  // (1) cell backward: dx and dp of step t, carried ∂c, ∂n
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = L.DH, G = L.G;
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t u;
      L.unit_item(i, &bb, &u);
      const int64_t b = b0 + bb;
      const float pi = a.gates[L.x_off(hd, b, t, u)], pf = a.gates[L.x_off(hd, b, t, DH + u)];
      const float pz = a.gates[L.x_off(hd, b, t, 2 * DH + u)], po = a.gates[L.x_off(hd, b, t, 3 * DH + u)];
      const float gh = a.dy[L.y_off(hd, b, t, u)] + dh[bb * DH + u];
      const float c1 = a.states[L.state_off(1, hd, t, b, u)];
      float dpi, dpf, dpz, dpo, dck = dc[bb * DH + u];
      if constexpr (NS == 4) {
        float dnk = dn[bb * DH + u];
        Cell::backward(pi, pf, pz, po, prev(1, t, b, u), prev(2, t, b, u), prev(3, t, b, u), c1,
                       a.states[L.state_off(2, hd, t, b, u)], a.states[L.state_off(3, hd, t, b, u)],
                       a.states[L.state_off(0, hd, t, b, u)], gh, &dck, &dnk, &dpi, &dpf, &dpz, &dpo);
        dn[bb * DH + u] = dnk;
      } else {
        Cell::backward(pi, pf, pz, po, prev(1, t, b, u), c1, gh, &dck, &dpi, &dpf, &dpz, &dpo);
      }
      dc[bb * DH + u] = dck;
      float* dpr = dp + bb * G;
      dpr[u] = dpi;
      dpr[DH + u] = dpf;
      dpr[2 * DH + u] = dpz;
      dpr[3 * DH + u] = dpo;
      a.dx[L.x_off(hd, b, t, u)] = dpi;
      a.dx[L.x_off(hd, b, t, DH + u)] = dpf;
      a.dx[L.x_off(hd, b, t, 2 * DH + u)] = dpz;
      a.dx[L.x_off(hd, b, t, 3 * DH + u)] = dpo;
    }
  }
  // (2) ∂h_{t-1}[j] = Σ_k R[j, k] dp[k] (per head; the CPU's order k = 0..G-1)
  __host__ __device__ void matvec_phase(int tid, int nt) const {
    const int64_t DH = L.DH, G = L.G;
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t j;
      L.unit_item(i, &bb, &j);
      const float* dpr = dp + bb * G;
      const float* rr = Rh + j * ld;
      float acc = 0.0f;
      for (int64_t k = 0; k < G; ++k) acc = fmaf(dpr[k], rr[k], acc);
      dh[bb * DH + j] = acc;
    }
  }
  // dstate0 = the carried cotangents; ∂m_0 = 0 (reference CUDA convention) or δc⊙c_0 + δn⊙n_0 (XLSTM_SPEC §2.4)
  __host__ __device__ void final_phase(int tid, int nt) const {
    if (!a.dstate0) return;
    const int64_t DH = L.DH;
    for (int64_t i = tid; i < nb * DH; i += nt) {
      int bb;
      int64_t u;
      L.unit_item(i, &bb, &u);
      const int64_t b = b0 + bb;
      a.dstate0[L.state0_off(0, hd, b, u)] = dh[bb * DH + u];
      a.dstate0[L.state0_off(1, hd, b, u)] = dc[bb * DH + u];
      if (NS == 4) {
        a.dstate0[L.state0_off(2, hd, b, u)] = dn[bb * DH + u];
        const float c0 = a.state0 ? a.state0[L.state0_off(1, hd, b, u)] : 0.0f;
        const float n0 = a.state0 ? a.state0[L.state0_off(2, hd, b, u)] : 0.0f;
        a.dstate0[L.state0_off(3, hd, b, u)] = a.exact_m0_grad ? dc[bb * DH + u] * c0 + dn[bb * DH + u] * n0 : 0.0f;
      }
    }
  }
};

// Parameter gradients, pass 1, one block per (row chunk, head, tile of 64 source units j x 64 gate columns k): the
// partial of (j, k) = Σ over the chunk's rows r = b*S + t, in order, of h_{t-1}[b, hd*DH + j] · dx[b, t, column k]
// (j == DH, the bias: of 1 · dx, which fmaf adds exactly as a plain sum would). Rows are staged kPgRowStep at a time
// in shared memory (hs [rows][j], ds [rows][k]); thread (ty, tx) keeps the 4 x 4 sums of j = j0 + 4ty + i,
// k = k0 + 4tx + l in registers, each one fmaf chain over the rows in order; the next rows' loads go out before the
// current rows are summed (registers, then shared memory). A GEMM's data reuse, a plain loop's summation order.
#ifdef __CUDA_ARCH__
#define XLSTM_UNROLL _Pragma("unroll")
#else
#define XLSTM_UNROLL
#endif
struct PgTile {
  RecLaunch L;
  int64_t chunk, hd, j0, k0, r0, r1;
  float *hs, *ds;
  __host__ __device__ PgTile(const RecLaunch& l, int64_t blk, float* sm) : L(l) {
    L.pg_block(blk, &chunk, &hd, &j0, &k0);
    r0 = chunk * L.pg_per;
    r1 = r0 + L.pg_per < L.pg_rows ? r0 + L.pg_per : L.pg_rows;
    hs = sm;
    ds = sm + kPgRowStep * kPgTile;
  }
  // rows [r, r + nr) of the chunk, thread tid's kPgPer elements of hs / ds, into registers (j beyond the bias row,
  // k beyond G and rows beyond nr: 0, never summed or stored): fetched while the previous rows are summed
  __host__ __device__ void fetch(int64_t r, int nr, const float* dx, const float* states, const float* state0, int tid,
                                 float* hreg, float* dreg) const {
    const int64_t b0 = r / L.S, t0 = r - b0 * L.S;  // one division per step: row r + rr from (b0, t0)
    XLSTM_UNROLL for (int q = 0; q < kPgPer; ++q) {
      const int i = tid + q * kPgThreads, rr = i / kPgTile, c = i % kPgTile;
      float hv = 0.0f, dv = 0.0f;
      if (rr < nr) {
        int64_t b = b0, t = t0 + rr;
        while (t >= L.S) {
          t -= L.S;
          ++b;
        }
        const int64_t j = j0 + c, k = k0 + c;
        if (j < L.DH) hv = t > 0 ? states[L.state_off(0, hd, t - 1, b, j)] : (state0 ? state0[L.state0_off(0, hd, b, j)] : 0.0f);
        else if (j == L.DH) hv = 1.0f;
        if (k < L.G) dv = dx[L.x_off(hd, b, t, k)];
      }
      hreg[q] = hv;
      dreg[q] = dv;
    }
  }
  __host__ __device__ void put(int tid, const float* hreg, const float* dreg) const {
    XLSTM_UNROLL for (int q = 0; q < kPgPer; ++q) {
      hs[tid + q * kPgThreads] = hreg[q];
      ds[tid + q * kPgThreads] = dreg[q];
    }
  }
  // rows of the step starting at r (kPgRowStep, fewer at the chunk's end)
  __host__ __device__ int rows_at(int64_t r) const { return static_cast<int>(r1 - r < kPgRowStep ? r1 - r : kPgRowStep); }
  __host__ __device__ void accumulate(int nr, int tid, float* acc) const {
    const int ty = tid / (kPgTile / kPgSub), tx = tid % (kPgTile / kPgSub);
    for (int rr = 0; rr < nr; ++rr) {
      float hv[kPgSub], dv[kPgSub];
      XLSTM_UNROLL for (int i = 0; i < kPgSub; ++i) hv[i] = hs[rr * kPgTile + ty * kPgSub + i];
      XLSTM_UNROLL for (int l = 0; l < kPgSub; ++l) dv[l] = ds[rr * kPgTile + tx * kPgSub + l];
      XLSTM_UNROLL for (int i = 0; i < kPgSub; ++i)
        XLSTM_UNROLL for (int l = 0; l < kPgSub; ++l) acc[i * kPgSub + l] = fmaf(hv[i], dv[l], acc[i * kPgSub + l]);
    }
  }
  // (i, l) of thread tid -> partial index, or -1 outside the head's DH + 1 rows / G columns
  __host__ __device__ int64_t out_index(int tid, int i, int l) const {
    const int ty = tid / (kPgTile / kPgSub), tx = tid % (kPgTile / kPgSub);
    const int64_t j = j0 + ty * kPgSub + i, k = k0 + tx * kPgSub + l;
    return j <= L.DH && k < L.G ? chunk * L.pg_elems + L.pg_index(hd, j, k) : -1;
  }
  __host__ __device__ void store(int tid, const float* acc, float* part) const {
    XLSTM_UNROLL for (int i = 0; i < kPgSub; ++i)
      XLSTM_UNROLL for (int l = 0; l < kPgSub; ++l) {
        const int64_t o = out_index(tid, i, l);
        if (o >= 0) part[o] = acc[i * kPgSub + l];
      }
  }
};
static_assert((kPgTile / kPgSub) * (kPgTile / kPgSub) == kPgThreads, "pass 1: one thread per 4 x 4 sub-tile");
static_assert(kPgPer * kPgThreads == kPgRowStep * kPgTile, "pass 1: every thread stages kPgPer slots of hs and ds");

// Pass 2: dR / dbias element e = Σ over chunks (in order, double) of the partials, rounded once.
__host__ __device__ inline void pg_final(const RecLaunch& L, int64_t e, float* dR, float* dbias, const float* part) {
  int64_t hd, j, k;
  L.pg_elem(e, &hd, &j, &k);
  double acc = 0.0;
  for (int64_t c = 0; c < L.pg_chunks; ++c) acc += part[c * L.pg_elems + e];
  (j < L.DH ? dR : dbias)[L.pg_out(hd, j, k)] = static_cast<float>(acc);
}

// ---- kernels ---------------------------------------------------------------------------------------------------

template <class Cell>
__global__ void __launch_bounds__(kMaxThreads) rec_forward_kernel(FwdArgs a, RecLaunch L, bool r_smem) {
  extern __shared__ float smem[];
  const FwdBlock<Cell> blk(L, a, r_smem, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  blk.init(tid, nt);
  __syncthreads();
  for (int64_t t = 0; t < L.S; ++t) {
    blk.gates_phase(t, tid, nt);
    __syncthreads();
    blk.cell_phase(t, tid, nt);
    __syncthreads();
  }
}

template <class Cell>
__global__ void __launch_bounds__(kMaxThreads) rec_backward_kernel(BwdArgs a, RecLaunch L, bool r_smem) {
  extern __shared__ float smem[];
  const BwdBlock<Cell> blk(L, a, r_smem, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  blk.init(tid, nt);
  __syncthreads();
  for (int64_t t = L.S - 1; t >= 0; --t) {
    blk.cell_phase(t, tid, nt);
    __syncthreads();
    blk.matvec_phase(tid, nt);
    __syncthreads();
  }
  blk.final_phase(tid, nt);
}

__global__ void __launch_bounds__(kPgThreads, 2) rec_pg_partial_kernel(float* __restrict__ part, const float* __restrict__ dx,
                                                                   const float* __restrict__ states,
                                                                   const float* __restrict__ state0, RecLaunch L) {
  __shared__ float sm[2 * kPgRowStep * kPgTile];
  const PgTile tile(L, blockIdx.x, sm);
  float acc[kPgSub * kPgSub], hreg[kPgPer], dreg[kPgPer];
  XLSTM_UNROLL for (float& v : acc) v = 0.0f;
  const int tid = threadIdx.x;
  if (tile.r0 < tile.r1) tile.fetch(tile.r0, tile.rows_at(tile.r0), dx, states, state0, tid, hreg, dreg);
  for (int64_t r = tile.r0; r < tile.r1; r += kPgRowStep) {
    tile.put(tid, hreg, dreg);
    __syncthreads();
    if (r + kPgRowStep < tile.r1) tile.fetch(r + kPgRowStep, tile.rows_at(r + kPgRowStep), dx, states, state0, tid, hreg, dreg);
    tile.accumulate(tile.rows_at(r), tid, acc);
    __syncthreads();
  }
  tile.store(tid, acc, part);
}

__global__ void rec_pg_final_kernel(float* __restrict__ dR, float* __restrict__ dbias, const float* __restrict__ part,
                                    RecLaunch L) {
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < L.pg_elems;
       e += static_cast<int64_t>(blockDim.x) * gridDim.x)
    pg_final(L, e, dR, dbias, part);
}

// Host replay of pass 1: every block; per step, every thread's put of its fetched registers (the barrier), then
// every thread's fetch of the next rows and its sums; a block's shared memory NaN at the start.
inline void pg_partial_replay(const RecLaunch& L, float* part, const float* dx, const float* states, const float* state0) {
  std::vector<float> sm(2 * kPgRowStep * kPgTile);
  std::vector<float> acc(static_cast<size_t>(kPgThreads) * kPgSub * kPgSub), regs(2 * kPgThreads * kPgPer);
  for (int64_t blk = 0; blk < L.pg_blocks(); ++blk) {
    std::fill(sm.begin(), sm.end(), __builtin_nanf(""));
    std::fill(acc.begin(), acc.end(), 0.0f);
    const PgTile tile(L, blk, sm.data());
    float* h = regs.data();
    float* d = regs.data() + kPgThreads * kPgPer;
    if (tile.r0 < tile.r1)
      for (int tid = 0; tid < kPgThreads; ++tid) tile.fetch(tile.r0, tile.rows_at(tile.r0), dx, states, state0, tid, h + tid * kPgPer, d + tid * kPgPer);
    for (int64_t r = tile.r0; r < tile.r1; r += kPgRowStep) {
      for (int tid = 0; tid < kPgThreads; ++tid) tile.put(tid, h + tid * kPgPer, d + tid * kPgPer);
      for (int tid = 0; tid < kPgThreads; ++tid) {
        if (r + kPgRowStep < tile.r1) tile.fetch(r + kPgRowStep, tile.rows_at(r + kPgRowStep), dx, states, state0, tid, h + tid * kPgPer, d + tid * kPgPer);
        tile.accumulate(tile.rows_at(r), tid, acc.data() + tid * kPgSub * kPgSub);
      }
    }
    for (int tid = 0; tid < kPgThreads; ++tid) tile.store(tid, acc.data() + tid * kPgSub * kPgSub, part);
  }
}

#include "recurrent_split.cuh"
#include "recurrent_tc.cuh"
#include "recurrent_gather.cuh"

// ---- launch helpers --------------------------------------------------------------------------------------------

void require_dims(const RecurrentDims& d, const char* entry) {
  if (d.B < 1 || d.S < 1 || d.NH < 1 || d.DH < 1)
    throw std::invalid_argument(std::string(entry) + ": B, S, NH, DH must be >= 1 (got B=" + std::to_string(d.B) +
                                ", S=" + std::to_string(d.S) + ", NH=" + std::to_string(d.NH) +
                                ", DH=" + std::to_string(d.DH) + ")");
  if (d.NH * ((d.B + kMaxRows - 1) / kMaxRows) > 0x7fffffff)
    throw std::invalid_argument(std::string(entry) + ": NH * ceil(B/4) exceeds the grid limit");
}

// Shared memory of a block: R staged when the total fits `limit` bytes; *bytes = the dynamic shared memory to
// launch with. False when even the per-row vectors do not fit.
bool smem_plan(const RecLaunch& L, int64_t vec_floats, int64_t limit, bool* r_smem, int64_t* bytes) {
  const int64_t with_r = (L.r_floats() + vec_floats) * static_cast<int64_t>(sizeof(float));
  *r_smem = with_r <= limit;
  *bytes = *r_smem ? with_r : vec_floats * static_cast<int64_t>(sizeof(float));
  return *bytes <= limit;
}

[[noreturn]] void smem_too_large(const RecLaunch& L, int64_t bytes, int64_t limit, const char* entry) {
  throw std::invalid_argument(std::string(entry) + ": DH = " + std::to_string(L.DH) + " needs " +
                              std::to_string(bytes) + " bytes of shared memory per block, the device allows " +
                              std::to_string(limit));
}

// Plans the shared memory against the device's per-block opt-in limit and opts the kernel in to it.
template <class K>
size_t prepare_smem(K kernel, const RecLaunch& L, int64_t vec_floats, bool* r_smem, const char* entry) {
  int dev = 0, optin = 0;
  check(cudaGetDevice(&dev), entry, "cudaGetDevice");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), entry, "cudaDeviceGetAttribute");
  int64_t bytes = 0;
  if (!smem_plan(L, vec_floats, optin, r_smem, &bytes)) smem_too_large(L, bytes, optin, entry);
  raise_smem_limit(reinterpret_cast<const void*>(kernel), bytes, entry);
  return static_cast<size_t>(bytes);
}

// Which launch the recurrences take (cuda::set_recurrent_launch): 0 auto, 1 rows, 2 split, 3 split with the
// forward's gate products in the lane form where it applies (R in registers; opt-in until it has run on a GPU).
std::atomic<int> g_launch{0};
// The split launch's blocks per head at most (cuda::set_recurrent_split_blocks): 0 = as many as the device holds at
// one per SM (the head's units spread over all of them), else that cap: fewer blocks, more units each. The trade it
// times on a GPU: per step, each block's share of the exchange (the backward's partial ∂h: P x B x DH floats written
// and read per step) and the grid barrier's cost grow with P, the block's own products with its units.
std::atomic<int64_t> g_split_blocks{0};
// The tc backward's exchange between a head's blocks (cuda::set_recurrent_exchange): 0 partial ∂h sums
// (recurrent_tc.cuh), 1 the gather of dp (recurrent_gather.cuh; opt-in until a GPU has run and timed it).
std::atomic<int> g_exchange{0};
// Whether the device entries time the split plans for a shape on its first call and keep the fastest
// (cuda::set_recurrent_autotune; recurrent_autotune below).
std::atomic<bool> g_autotune{false};

// The choices a split plan is made under: the blocks-per-head cap and the bf16 backward's exchange; the process-wide
// settings (current()) unless the autotune picked others for the shape.
struct SplitKnobs {
  int64_t cap = 0;
  int exchange = 0;
  static SplitKnobs current() { return SplitKnobs{g_split_blocks.load(), g_exchange.load()}; }
};

// The split plan for a device with `sms` multiprocessors, `occupancy(bytes)` co-resident blocks per SM and `limit`
// bytes of shared memory per block: false when the split launch does not apply (forced "rows", or auto and the rows
// launch fills at least half the device, or the batch / shared memory does not fit). Under bf16 S->tc is set where the
// tensor-core form applies and its shared memory fits (then *bytes is that form's: it needs less than the float32
// form, which stages R's columns as float32 too, so a plan of many units per block may fit only that way); else
// S->tc = 0 and *bytes is the float32 form's.
template <class Occ>
bool plan_split(const RecLaunch& L, bool fwd, bool bf16, int64_t sms, int64_t limit, Occ occupancy, SplitLaunch* S, int64_t* bytes,
                const SplitKnobs& knobs) {
  const int mode = g_launch.load();
  if (mode == 1 || (mode == 0 && L.blocks * 2 >= sms)) return false;
  int64_t capacity = sms;
  if (knobs.cap > 0) capacity = std::min(capacity, knobs.cap * L.NH);
  const auto form_bytes = [&](const SplitLaunch& s) { return (fwd ? s.fwd_floats() : s.bwd_floats()) * static_cast<int64_t>(sizeof(float)); };
  for (int iter = 0; iter < 3; ++iter) {
    if (!split_plan(L, capacity, S)) return false;
    S->tc = bf16 ? tc_tiles(S->nu) : 0;
    S->gather = S->tc && !fwd && knobs.exchange == 1;
    if (S->gather && form_bytes(*S) > limit) S->gather = false;  // (the gathered dp of a large head and batch)
    if (S->tc && form_bytes(*S) > limit) S->tc = 0;
    *bytes = form_bytes(*S);
    if (*bytes > limit) return false;
    const int64_t fit = occupancy(*bytes) * sms;
    if (fit >= S->blocks) return true;
    capacity = fit;  // fewer blocks per head, more units each
  }
  return false;
}

// plan_split on the current device (cooperative launch needed); opts `kernel` (the float32 form's) in to its shared
// memory when the plan is that form (S->tc = 0).
template <class K>
bool choose_split(const RecLaunch& L, K kernel, bool fwd, bool bf16, SplitLaunch* S, size_t* bytes_out, const char* entry,
                  const SplitKnobs& knobs) {
  if (g_launch.load() == 1) return false;
  int dev = 0, sms = 0, optin = 0, coop = 0;
  check(cudaGetDevice(&dev), entry, "cudaGetDevice");
  check(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev), entry, "cudaDeviceGetAttribute");
  if (!coop) return false;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), entry, "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), entry, "cudaDeviceGetAttribute");
  auto occupancy = [&](int64_t bytes) -> int64_t {
    raise_smem_limit(reinterpret_cast<const void*>(kernel), bytes, entry);
    int per_sm = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kSplitThreads, static_cast<size_t>(bytes)), entry,
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return per_sm;
  };
  int64_t bytes = 0;
  if (!plan_split(L, fwd, bf16, sms, optin, occupancy, S, &bytes, knobs)) return false;
  if (!S->tc) raise_smem_limit(reinterpret_cast<const void*>(kernel), bytes, entry);
  *bytes_out = static_cast<size_t>(bytes);
  return true;
}

// The float32 split form after the tensor-core form was planned but refused (S.tc set): S.tc cleared, true with that
// form's shared memory in *bytes (the kernel opted in) when it fits the device, else false (the rows launch).
template <class K>
bool fall_back_to_float32_split(SplitLaunch* S, K kernel, bool fwd, size_t* bytes, const char* entry) {
  S->tc = 0;
  S->gather = false;
  const int64_t b = (fwd ? S->fwd_floats() : S->bwd_floats()) * static_cast<int64_t>(sizeof(float));
  int dev = 0, optin = 0;
  check(cudaGetDevice(&dev), entry, "cudaGetDevice");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), entry, "cudaDeviceGetAttribute");
  if (b > optin) return false;
  raise_smem_limit(reinterpret_cast<const void*>(kernel), b, entry);
  *bytes = static_cast<size_t>(b);
  return true;
}

// The lane-form forward kernel for M j slots per lane (lane_slots), nullptr for M = 0.
template <class Cell>
void* lane_kernel(int M) {
  switch (M) {
    case 8: return reinterpret_cast<void*>(rec_split_forward_kernel<Cell, 8>);
    case 16: return reinterpret_cast<void*>(rec_split_forward_kernel<Cell, 16>);
    case 24: return reinterpret_cast<void*>(rec_split_forward_kernel<Cell, 24>);
    default: return nullptr;
  }
}

// Whether the launch mode asks for the lane form ("split-lane": opt-in until a GPU has run it).
bool lane_requested() { return g_launch.load() == 3; }

// Launches a lane-form kernel (nullptr: none applies) cooperatively with `bytes` of shared memory when `blocks` of
// its blocks are co-resident on this device; false (error state cleared) when it does not apply, fit or start.
bool launch_lane(void* kernel, int64_t bytes, int64_t blocks, void** args, cudaStream_t st, const char* entry) {
  if (!kernel) return false;
  int dev = 0, sms = 0, optin = 0, per_sm = 0;
  check(cudaGetDevice(&dev), entry, "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), entry, "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), entry, "cudaDeviceGetAttribute");
  if (bytes > optin) return false;
  raise_smem_limit(reinterpret_cast<const void*>(kernel), bytes, entry);
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kSplitThreads, static_cast<size_t>(bytes)), entry,
        "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
  if (int64_t{per_sm} * sms < blocks) return false;
  if (cudaLaunchCooperativeKernel(kernel, dim3(static_cast<unsigned>(blocks)), dim3(kSplitThreads), args, static_cast<size_t>(bytes), st) ==
      cudaSuccess)
    return true;
  cudaGetLastError();
  return false;
}

template <class Cell>
void forward_run(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                 const float* bias, const RecLaunch& L, void* stream, const char* entry, bool bf16, const SplitKnobs& knobs) {
  SplitLaunch S;
  size_t split_bytes = 0;
  if (choose_split(L, rec_split_forward_kernel<Cell, 0>, true, bf16, &S, &split_bytes, entry, knobs)) {
    const auto aligned16 = [](const float* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    S.vec4 = S.vec4 && aligned16(states) && aligned16(state0);
    FwdArgs a{y, states, gates, x, state0, R, bias};
    // bf16 (the autocast): the tensor-core form where it applies and the device holds its grid (recurrent_tc.cuh)
    bool split = true;
    if (S.tc) {
      StreamScratch<uint16_t> hx(2 * L.B * L.H, as_stream(stream), entry);
      FwdArgs at = a;
      at.hx = hx.p;
      void* targs[] = {&at, &S};
      if (launch_lane(tc_forward_kernel<Cell>(S), static_cast<int64_t>(split_bytes), S.blocks, targs, as_stream(stream), entry)) return;
      split = fall_back_to_float32_split(&S, rec_split_forward_kernel<Cell, 0>, true, &split_bytes, entry);
    }
    // "split-lane": the lane form of the gate products (R in registers) where it applies and the device holds its
    // grid (opt-in: written without a GPU; the default until a GPU run has checked and timed it is the form below)
    if (split && lane_requested()) {
      SplitLaunch SL = S;
      SL.lane_m = lane_slots(L.DH, S.nu);
      void* largs[] = {&a, &SL};
      if (launch_lane(lane_kernel<Cell>(SL.lane_m), SL.fwd_floats() * static_cast<int64_t>(sizeof(float)), SL.blocks, largs,
                      as_stream(stream), entry))
        return;
    }
    void* args[] = {&a, &S};
    // a refused cooperative launch (the device cannot hold the grid after all, e.g. shared with other work) leaves
    // the rows launch to do it
    if (split && cudaLaunchCooperativeKernel(reinterpret_cast<void*>(rec_split_forward_kernel<Cell, 0>), dim3(static_cast<unsigned>(S.blocks)),
                                             dim3(kSplitThreads), args, split_bytes, as_stream(stream)) == cudaSuccess)
      return;
    cudaGetLastError();
  }
  bool r_smem = false;
  const size_t bytes = prepare_smem(rec_forward_kernel<Cell>, L, L.fwd_vec_floats(), &r_smem, entry);
  rec_forward_kernel<Cell><<<static_cast<unsigned>(L.blocks), L.fwd_threads, bytes, as_stream(stream)>>>(
      FwdArgs{y, states, gates, x, state0, R, bias}, L, r_smem);
  launched(entry);
}

// The backward's lane-form kernel for J rows of R per thread (lane_rows_bwd), nullptr for J = 0.
template <class Cell>
void* lane_kernel_bwd(int J) {
  switch (J) {
    case 1: return reinterpret_cast<void*>(rec_split_backward_kernel<Cell, 1>);
    case 2: return reinterpret_cast<void*>(rec_split_backward_kernel<Cell, 2>);
    case 3: return reinterpret_cast<void*>(rec_split_backward_kernel<Cell, 3>);
    default: return nullptr;
  }
}

// The split backward's sequence kernel (S and `bytes`, its shared memory, from choose_split): the tensor-core form
// where the plan chose it (bf16, S.tc), followed by its parameter gradients (then TensorCores); else the lane form
// under "split-lane" where it applies and fits, else R from shared memory (Float32: the caller's dR / dbias passes
// follow). Refused when the device refused the cooperative launch or the float32 form does not fit (then the rows
// launch runs it).
enum class SplitRun { Refused, Float32, TensorCores };
template <class Cell>
SplitRun launch_split_backward(SplitLaunch S, BwdArgs a, float* part, size_t bytes, cudaStream_t st, const char* entry, float* dR, float* dbias) {
  if (S.tc) {  // the tensor-core form (planned under bf16 where it applies and fits), then its dR, dbias
    const RecLaunch& L = S.L;
    StreamScratch<float> dx_tb(L.S * L.B * 4 * L.H, st, entry);
    StreamScratch<uint16_t> dpx(S.gather ? S.dpx_halves() : 0, st, entry);
    a.dx_tb = dx_tb.p;
    a.dpx = dpx.p;
    void* targs[] = {&a, &S, &part};
    void* gargs[] = {&a, &S};
    if (S.gather ? launch_lane(gather_backward_kernel<Cell>(S), static_cast<int64_t>(bytes), S.blocks, gargs, st, entry)
                 : launch_lane(tc_backward_kernel<Cell>(S), static_cast<int64_t>(bytes), S.blocks, targs, st, entry)) {
      gemm_bf16_grouped(tc_dr_gemm(L, dR, dx_tb.p, a.states, a.state0), st);
      const TcBiasSum bs(L);
      reduce_axes(ReduceOp::Sum, dbias, nullptr, a.dx, 2, bs.shape, bs.reduced, st);
      return SplitRun::TensorCores;
    }
    a.dx_tb = nullptr;
    a.dpx = nullptr;
    if (!fall_back_to_float32_split(&S, rec_split_backward_kernel<Cell, 0>, false, &bytes, entry)) return SplitRun::Refused;
  }
  if (lane_requested()) {  // opt-in, as forward_impl's lane form
    SplitLaunch SL = S;
    SL.lane_j = lane_rows_bwd(S.L.DH, S.nu);
    void* largs[] = {&a, &SL, &part};
    if (launch_lane(lane_kernel_bwd<Cell>(SL.lane_j), SL.bwd_floats() * static_cast<int64_t>(sizeof(float)), SL.blocks, largs, st,
                    entry))
      return SplitRun::Float32;
  }
  void* args[] = {&a, &S, &part};
  if (cudaLaunchCooperativeKernel(reinterpret_cast<void*>(rec_split_backward_kernel<Cell, 0>), dim3(static_cast<unsigned>(S.blocks)),
                                  dim3(kSplitThreads), args, bytes, st) == cudaSuccess)
    return SplitRun::Float32;
  cudaGetLastError();  // refused: the rows launch
  return SplitRun::Refused;
}

template <class Cell>
void backward_run(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                  const float* dy, const float* dstate_final, const float* state0, const float* R,
                  const RecLaunch& L, bool exact_m0_grad, void* stream, const char* entry, bool bf16, const SplitKnobs& knobs) {
  const cudaStream_t st = as_stream(stream);
  SplitLaunch S;
  size_t split_bytes = 0;
  bool split = choose_split(L, rec_split_backward_kernel<Cell, 0>, false, bf16, &S, &split_bytes, entry, knobs);
  if (split) {
    StreamScratch<float> part(S.part_floats(), st, entry);
    const SplitRun run = launch_split_backward<Cell>(S, BwdArgs{dx, dstate0, gates, states, dy, dstate_final, state0, R, exact_m0_grad},
                                                     part.p, split_bytes, st, entry, dR, dbias);
    if (run == SplitRun::TensorCores) return;  // it ran the parameter gradients too (tc_dr_gemm, TcBiasSum)
    split = run == SplitRun::Float32;
  }
  if (!split) {
    bool r_smem = false;
    const size_t bytes = prepare_smem(rec_backward_kernel<Cell>, L, L.bwd_vec_floats(), &r_smem, entry);
    rec_backward_kernel<Cell><<<static_cast<unsigned>(L.blocks), L.bwd_threads, bytes, st>>>(
        BwdArgs{dx, dstate0, gates, states, dy, dstate_final, state0, R, exact_m0_grad}, L, r_smem);
    check(cudaGetLastError(), entry, "sequence kernel launch");
  }
  const int64_t items = L.pg_chunks * L.pg_elems;
  StreamScratch<float> part(items, st, entry);
  rec_pg_partial_kernel<<<static_cast<unsigned>(L.pg_blocks()), kPgThreads, 0, st>>>(part.p, dx, states, state0, L);
  check(cudaGetLastError(), entry, "parameter-gradient kernel launch");
  rec_pg_final_kernel<<<grid_for(L.pg_elems, kPgThreads), kPgThreads, 0, st>>>(dR, dbias, part.p, L);
  check(cudaGetLastError(), entry, "parameter-gradient sum kernel launch");
}

// ---- autotune (cuda::set_recurrent_autotune) ----------------------------------------------------------------------
// The split plan's best width depends on the GPU (SMs, L2 and barrier latency) and the shape. With the autotune on,
// the first call of a shape (device, cell, direction, bf16, B, NH, DH; T >= kTuneMinSteps, so that a run holds enough
// steps to time) times the candidate plans (tune_candidates) on the call's own inputs: each run twice, the second
// timed with events on the stream (the first pays kernel loading and cold caches); the fastest is kept for the shape
// and run once more, so the call's results are its plan's, as every later call's of the shape. The runs only rewrite
// the call's outputs from its inputs. The autotune's choice overrides the process-wide cap and exchange settings; a
// change of those (or of the launch mode) drops the choices, which were tuned around them.
constexpr int64_t kTuneMinSteps = 64;

struct TuneKey {
  int dev;
  bool fwd, bf16, slstm;
  int64_t B, NH, DH;
  bool operator<(const TuneKey& o) const {
    return std::tie(dev, fwd, bf16, slstm, B, NH, DH) < std::tie(o.dev, o.fwd, o.bf16, o.slstm, o.B, o.NH, o.DH);
  }
};
std::mutex g_tune_mu;
std::map<TuneKey, SplitKnobs> g_tuned;
uint64_t g_tune_generation = 0;  // bumped (under g_tune_mu) whenever the choices are dropped

// Drops the tuned choices: the settings they were tuned against changed (the cap, the exchange, the launch mode or
// the autotune itself). A tuning that is timing its candidates meanwhile does not store its stale choice.
void forget_tuned() {
  kernel_settings_changed();  // (every setting that drops the choices also changes what a launch runs)
  std::lock_guard<std::mutex> lock(g_tune_mu);
  g_tuned.clear();
  ++g_tune_generation;
}

// The plans worth timing for L (plan(knobs, &S): false where the split launch does not apply): the current settings'
// first, then caps on the blocks per head at 3/4, 1/2, 3/8 and 1/4 of its P (at least 2) that give another plan, the
// bf16 backward each also with the other exchange; empty where the current settings take the rows launch.
template <class Plan>
std::vector<SplitKnobs> tune_candidates(bool fwd, bool bf16, Plan plan) {
  std::vector<SplitKnobs> out;
  const SplitKnobs base = SplitKnobs::current();
  SplitLaunch S0;
  if (!plan(base, &S0)) return out;
  std::vector<std::tuple<int64_t, int64_t, int, bool>> plans;  // (P, nu, tc, gather) of the candidates so far
  const auto add = [&](const SplitKnobs& k) {
    SplitLaunch S;
    if (!plan(k, &S)) return;
    const auto key = std::make_tuple(S.P, S.nu, S.tc, S.gather);
    for (const auto& q : plans)
      if (q == key) return;
    plans.push_back(key);
    out.push_back(k);
  };
  const int64_t P = S0.P;
  for (const int64_t cap : {int64_t{0}, 3 * P / 4, P / 2, 3 * P / 8, P / 4}) {
    if (cap != 0 && cap < 2) continue;
    SplitKnobs k = base;
    if (cap != 0) k.cap = cap;
    add(k);
    if (!fwd && bf16) {
      k.exchange = 1 - base.exchange;
      add(k);
    }
  }
  return out;
}

// Times run(knobs) for each candidate (see above) and returns the fastest.
template <class Run>
SplitKnobs time_candidates(const std::vector<SplitKnobs>& cands, Run run, cudaStream_t st, const char* entry) {
  struct Events {
    cudaEvent_t a = nullptr, b = nullptr;
    ~Events() {
      if (a) cudaEventDestroy(a);
      if (b) cudaEventDestroy(b);
    }
  } ev;
  check(cudaEventCreate(&ev.a), entry, "cudaEventCreate");
  check(cudaEventCreate(&ev.b), entry, "cudaEventCreate");
  SplitKnobs pick = cands.front();
  float best = 0.0f;
  for (size_t i = 0; i < cands.size(); ++i) {
    run(cands[i]);
    check(cudaEventRecord(ev.a, st), entry, "cudaEventRecord");
    run(cands[i]);
    check(cudaEventRecord(ev.b, st), entry, "cudaEventRecord");
    check(cudaEventSynchronize(ev.b), entry, "cudaEventSynchronize");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, ev.a, ev.b), entry, "cudaEventElapsedTime");
    if (i == 0 || ms < best) best = ms, pick = cands[i];
  }
  return pick;
}

// The knobs a call of L takes: the process-wide settings, or with the autotune on the shape's tuned ones (tuning
// them first, on this call, when the shape is new: run(knobs) runs the call under knobs, kernel is the float32 split
// form's, for the plans' occupancy).
template <class K, class Run>
SplitKnobs call_knobs(const RecLaunch& L, bool fwd, bool bf16, bool slstm, K kernel, Run run, void* stream, const char* entry) {
  if (!g_autotune.load() || L.S < kTuneMinSteps) return SplitKnobs::current();
  int dev = 0;
  check(cudaGetDevice(&dev), entry, "cudaGetDevice");
  const TuneKey key{dev, fwd, bf16, slstm, L.B, L.NH, L.DH};
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(g_tune_mu);
    const auto it = g_tuned.find(key);
    if (it != g_tuned.end()) return it->second;
    generation = g_tune_generation;
  }
  const auto plan = [&](const SplitKnobs& k, SplitLaunch* S) {
    size_t bytes = 0;
    return choose_split(L, kernel, fwd, bf16, S, &bytes, entry, k);
  };
  const std::vector<SplitKnobs> cands = tune_candidates(fwd, bf16, plan);
  const SplitKnobs pick = cands.size() > 1 ? time_candidates(cands, run, as_stream(stream), entry) : SplitKnobs::current();
  std::lock_guard<std::mutex> lock(g_tune_mu);
  if (generation == g_tune_generation) g_tuned[key] = pick;
  return pick;
}

template <class Cell>
void forward_impl(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                  const float* bias, const RecurrentDims& d, void* stream, const char* entry, bool bf16) {
  require_dims(d, entry);
  const RecLaunch L = make_launch(d);
  const auto run = [&](const SplitKnobs& k) { forward_run<Cell>(y, states, gates, x, state0, R, bias, L, stream, entry, bf16, k); };
  run(call_knobs(L, true, bf16, Cell::kStates == 4, rec_split_forward_kernel<Cell, 0>, run, stream, entry));
}

template <class Cell>
void backward_impl(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                   const float* dy, const float* dstate_final, const float* state0, const float* R,
                   const RecurrentDims& d, bool exact_m0_grad, void* stream, const char* entry, bool bf16) {
  require_dims(d, entry);
  const RecLaunch L = make_launch(d);
  const auto run = [&](const SplitKnobs& k) {
    backward_run<Cell>(dx, dR, dbias, dstate0, gates, states, dy, dstate_final, state0, R, L, exact_m0_grad, stream, entry, bf16, k);
  };
  run(call_knobs(L, false, bf16, Cell::kStates == 4, rec_split_backward_kernel<Cell, 0>, run, stream, entry));
}

struct Lens {
  int64_t bsh, x, r, state, seq_state, bias;
  Lens(const RecurrentDims& d, int ns) {
    const int64_t H = d.NH * d.DH;
    bsh = d.B * d.S * H;
    x = 4 * bsh;
    r = d.NH * d.DH * 4 * d.DH;
    state = ns * d.B * H;
    seq_state = ns * d.S * d.B * H;
    bias = 4 * H;
  }
};

template <class Cell>
void forward_host_impl(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                       const float* bias, const RecurrentDims& d, const char* entry, bool bf16) {
  require_dims(d, entry);
  const Lens n(d, Cell::kStates);
  DeviceBuffer<float> d_y(n.bsh, entry), d_states(n.seq_state, entry), d_gates(n.x, entry), d_x(x, n.x, entry);
  DeviceBuffer<float> d_s0(state0, n.state, entry), d_R(R, n.r, entry), d_bias(bias, n.bias, entry);
  forward_impl<Cell>(d_y.p, d_states.p, d_gates.p, d_x.p, d_s0.get_if(state0), d_R.p, d_bias.p, d, nullptr, entry, bf16);
  device_sync(entry);
  d_y.download(y, entry);
  d_states.download(states, entry);
  d_gates.download(gates, entry);
}

template <class Cell>
void backward_host_impl(float* dx, float* dR, float* dbias, float* dstate0, const float* gates, const float* states,
                        const float* dy, const float* dstate_final, const float* state0, const float* R,
                        const RecurrentDims& d, bool exact_m0_grad, const char* entry, bool bf16) {
  require_dims(d, entry);
  const Lens n(d, Cell::kStates);
  DeviceBuffer<float> d_dx(n.x, entry), d_dR(n.r, entry), d_dbias(n.bias, entry), d_ds0(dstate0 ? n.state : 0, entry);
  DeviceBuffer<float> d_gates(gates, n.x, entry), d_states(states, n.seq_state, entry), d_dy(dy, n.bsh, entry);
  DeviceBuffer<float> d_dfin(dstate_final, n.state, entry), d_s0(state0, n.state, entry), d_R(R, n.r, entry);
  backward_impl<Cell>(d_dx.p, d_dR.p, d_dbias.p, d_ds0.get_if(dstate0), d_gates.p, d_states.p, d_dy.p,
                      d_dfin.get_if(dstate_final), d_s0.get_if(state0), d_R.p, d, exact_m0_grad, nullptr, entry, bf16);
  device_sync(entry);
  d_dx.download(dx, entry);
  d_dR.download(dR, entry);
  d_dbias.download(dbias, entry);
  d_ds0.download(dstate0, entry);
}

// ---- host emulation of the launches (no GPU): every block in turn, each phase run by all of its threads in
// thread order before the next phase starts (what __syncthreads guarantees), shared memory a host array filled with
// NaN at each block's start (so a read of a slot not yet written shows up in the results). Shared memory is planned
// against kEmulatedSmemLimit, the per-block opt-in limit of an H100 (227 KiB), so R is staged exactly when it would
// be there.
constexpr int64_t kEmulatedSmemLimit = 227 * 1024;
constexpr int64_t kEmulatedSms = 132;  // an H100 SXM: the split plan (one block per SM) the replay follows

// The split launch the replays follow, as the device entries choose it on the emulated device: false for the rows
// launch; else S with its form: under bf16 the tensor-core form where it applies and fits (forward_impl,
// launch_split_backward), else under "split-lane" the lane form where it applies and fits, else R from shared memory.
bool emulated_split(const RecLaunch& L, bool fwd, bool bf16, SplitLaunch* S, const SplitKnobs& knobs = SplitKnobs::current()) {
  int64_t bytes = 0;
  if (!plan_split(L, fwd, bf16, kEmulatedSms, kEmulatedSmemLimit, [](int64_t) { return int64_t{1}; }, S, &bytes, knobs)) return false;
  if (S->tc || !lane_requested()) return true;
  SplitLaunch SL = *S;
  if (fwd) SL.lane_m = lane_slots(L.DH, S->nu);
  else SL.lane_j = lane_rows_bwd(L.DH, S->nu);
  if ((fwd ? SL.fwd_floats() : SL.bwd_floats()) * static_cast<int64_t>(sizeof(float)) <= kEmulatedSmemLimit) *S = SL;
  return true;
}

template <class Cell>
void forward_emulate_impl(float* y, float* states, float* gates, const float* x, const float* state0, const float* R,
                          const float* bias, const RecurrentDims& d, const char* entry, bool bf16) {
  require_dims(d, entry);
  const RecLaunch L = make_launch(d);
  bool r_smem = false;
  int64_t bytes = 0;
  SplitLaunch S;
  if (emulated_split(L, true, bf16, &S)) {
    FwdArgs a{y, states, gates, x, state0, R, bias};
    if (!S.tc) return split_forward_replay<Cell>(S, a);
    std::vector<uint16_t> hx(static_cast<size_t>(2 * L.B * L.H), kBf16Nan);
    a.hx = hx.data();
    return split_tc_forward_replay<Cell>(S, a);
  }
  if (!smem_plan(L, L.fwd_vec_floats(), kEmulatedSmemLimit, &r_smem, &bytes))
    smem_too_large(L, bytes, kEmulatedSmemLimit, entry);
  std::vector<float> smem(static_cast<size_t>(bytes) / sizeof(float));
  const FwdArgs a{y, states, gates, x, state0, R, bias};
  const int nt = L.fwd_threads;
  for (int64_t blk = 0; blk < L.blocks; ++blk) {
    std::fill(smem.begin(), smem.end(), __builtin_nanf(""));
    const FwdBlock<Cell> b(L, a, r_smem, blk, smem.data());
    for (int tid = 0; tid < nt; ++tid) b.init(tid, nt);
    for (int64_t t = 0; t < L.S; ++t) {
      for (int tid = 0; tid < nt; ++tid) b.gates_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) b.cell_phase(t, tid, nt);
    }
  }
}

template <class Cell>
void backward_emulate_impl(float* dx, float* dR, float* dbias, float* dstate0, const float* gates,
                           const float* states, const float* dy, const float* dstate_final, const float* state0,
                           const float* R, const RecurrentDims& d, bool exact_m0_grad, const char* entry, bool bf16) {
  require_dims(d, entry);
  const RecLaunch L = make_launch(d);
  bool r_smem = false;
  int64_t bytes = 0;
  const BwdArgs a{dx, dstate0, gates, states, dy, dstate_final, state0, R, exact_m0_grad};
  SplitLaunch S;
  const bool split = emulated_split(L, false, bf16, &S);
  if (split && S.tc) {  // the tc form and its parameter gradients (launch_split_backward)
    std::vector<float> dx_tb(static_cast<size_t>(L.S * L.B * 4 * L.H), __builtin_nanf(""));
    BwdArgs at = a;
    at.dx_tb = dx_tb.data();
    if (S.gather) split_gather_backward_replay<Cell>(S, at);
    else split_tc_backward_replay<Cell>(S, at);
    gemm_bf16_grouped_replay(tc_dr_gemm(L, dR, dx_tb.data(), states, state0));
    const TcBiasSum bs(L);
    std::vector<int32_t> writes(static_cast<size_t>(4 * L.H), 0);
    reduce_axes_emulate(ReduceOp::Sum, dbias, nullptr, dx, 2, bs.shape, bs.reduced, writes.data());
    return;
  }
  if (split) split_backward_replay<Cell>(S, a);
  else if (!smem_plan(L, L.bwd_vec_floats(), kEmulatedSmemLimit, &r_smem, &bytes))
    smem_too_large(L, bytes, kEmulatedSmemLimit, entry);
  std::vector<float> smem(static_cast<size_t>(split ? 0 : bytes) / sizeof(float));
  const int nt = L.bwd_threads;
  for (int64_t blk = 0; blk < (split ? 0 : L.blocks); ++blk) {
    std::fill(smem.begin(), smem.end(), __builtin_nanf(""));
    const BwdBlock<Cell> b(L, a, r_smem, blk, smem.data());
    for (int tid = 0; tid < nt; ++tid) b.init(tid, nt);
    for (int64_t t = L.S - 1; t >= 0; --t) {
      for (int tid = 0; tid < nt; ++tid) b.cell_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) b.matvec_phase(tid, nt);
    }
    for (int tid = 0; tid < nt; ++tid) b.final_phase(tid, nt);
  }
  std::vector<float> part(static_cast<size_t>(L.pg_chunks * L.pg_elems), __builtin_nanf(""));
  pg_partial_replay(L, part.data(), dx, states, state0);
  for (int64_t e = 0; e < L.pg_elems; ++e) pg_final(L, e, dR, dbias, part.data());
}

}  // namespace

// ---- device entries --------------------------------------------------------------------------------------------

#define XLSTM_FWD_PARAMS                                                                                              \
  float *y, float *states, float *gates, const float *x, const float *state0, const float *R, const float *bias, \
      const RecurrentDims &d
#define XLSTM_FWD_ARGS y, states, gates, x, state0, R, bias, d
#define XLSTM_BWD_PARAMS                                                                                              \
  float *dx, float *dR, float *dbias, float *dstate0, const float *gates, const float *states, const float *dy,      \
      const float *dstate_final, const float *state0, const float *R, const RecurrentDims &d
#define XLSTM_BWD_ARGS dx, dR, dbias, dstate0, gates, states, dy, dstate_final, state0, R, d

void slstm_forward(XLSTM_FWD_PARAMS, void* stream) { forward_impl<SlstmCell>(XLSTM_FWD_ARGS, stream, "slstm_forward", false); }
void slstm_backward(XLSTM_BWD_PARAMS, bool exact_m0_grad, void* stream) {
  backward_impl<SlstmCell>(XLSTM_BWD_ARGS, exact_m0_grad, stream, "slstm_backward", false);
}
void lstm_forward(XLSTM_FWD_PARAMS, void* stream) { forward_impl<LstmCell>(XLSTM_FWD_ARGS, stream, "lstm_forward", false); }
void lstm_backward(XLSTM_BWD_PARAMS, void* stream) { backward_impl<LstmCell>(XLSTM_BWD_ARGS, false, stream, "lstm_backward", false); }

void slstm_forward_bf16(XLSTM_FWD_PARAMS, void* stream) {
  forward_impl<SlstmCell>(XLSTM_FWD_ARGS, stream, "slstm_forward_bf16", true);
}
void slstm_backward_bf16(XLSTM_BWD_PARAMS, bool exact_m0_grad, void* stream) {
  backward_impl<SlstmCell>(XLSTM_BWD_ARGS, exact_m0_grad, stream, "slstm_backward_bf16", true);
}
void lstm_forward_bf16(XLSTM_FWD_PARAMS, void* stream) { forward_impl<LstmCell>(XLSTM_FWD_ARGS, stream, "lstm_forward_bf16", true); }
void lstm_backward_bf16(XLSTM_BWD_PARAMS, void* stream) {
  backward_impl<LstmCell>(XLSTM_BWD_ARGS, false, stream, "lstm_backward_bf16", true);
}

// ---- host entries ----------------------------------------------------------------------------------------------

void slstm_forward_host(XLSTM_FWD_PARAMS, bool bf16) { forward_host_impl<SlstmCell>(XLSTM_FWD_ARGS, "slstm_forward", bf16); }
void slstm_backward_host(XLSTM_BWD_PARAMS, bool exact_m0_grad, bool bf16) {
  backward_host_impl<SlstmCell>(XLSTM_BWD_ARGS, exact_m0_grad, "slstm_backward", bf16);
}
void lstm_forward_host(XLSTM_FWD_PARAMS, bool bf16) { forward_host_impl<LstmCell>(XLSTM_FWD_ARGS, "lstm_forward", bf16); }
void lstm_backward_host(XLSTM_BWD_PARAMS, bool bf16) { backward_host_impl<LstmCell>(XLSTM_BWD_ARGS, false, "lstm_backward", bf16); }

// ---- host emulation entries -----------------------------------------------------------------------------------

void slstm_forward_emulate(XLSTM_FWD_PARAMS, bool bf16) {
  forward_emulate_impl<SlstmCell>(XLSTM_FWD_ARGS, "slstm_forward_emulate", bf16);
}
void slstm_backward_emulate(XLSTM_BWD_PARAMS, bool exact_m0_grad, bool bf16) {
  backward_emulate_impl<SlstmCell>(XLSTM_BWD_ARGS, exact_m0_grad, "slstm_backward_emulate", bf16);
}
void lstm_forward_emulate(XLSTM_FWD_PARAMS, bool bf16) { forward_emulate_impl<LstmCell>(XLSTM_FWD_ARGS, "lstm_forward_emulate", bf16); }
void lstm_backward_emulate(XLSTM_BWD_PARAMS, bool bf16) {
  backward_emulate_impl<LstmCell>(XLSTM_BWD_ARGS, false, "lstm_backward_emulate", bf16);
}

#undef XLSTM_FWD_PARAMS
#undef XLSTM_FWD_ARGS
#undef XLSTM_BWD_PARAMS
#undef XLSTM_BWD_ARGS

int set_recurrent_launch(int mode) {
  if (mode < 0 || mode > 3)
    throw std::invalid_argument("set_recurrent_launch: mode must be 0 (auto), 1 (rows), 2 (split) or 3 (split-lane)");
  const int prev = g_launch.exchange(mode);
  forget_tuned();
  return prev;
}

bool recurrent_emulated_plan(const RecurrentDims& d, bool fwd, bool bf16, int64_t* blocks_per_head, int64_t* units, int64_t* tc, bool* gather) {
  require_dims(d, "recurrent_emulated_plan");
  SplitLaunch S;
  if (!emulated_split(make_launch(d), fwd, bf16, &S)) return false;
  *blocks_per_head = S.P, *units = S.nu, *tc = S.tc, *gather = S.gather;
  return true;
}

std::vector<std::pair<int64_t, int>> recurrent_tune_candidates_emulated(const RecurrentDims& d, bool fwd, bool bf16) {
  require_dims(d, "recurrent_tune_candidates_emulated");
  const RecLaunch L = make_launch(d);
  std::vector<std::pair<int64_t, int>> out;
  for (const SplitKnobs& k : tune_candidates(fwd, bf16, [&](const SplitKnobs& kk, SplitLaunch* S) { return emulated_split(L, fwd, bf16, S, kk); }))
    out.emplace_back(k.cap, k.exchange);
  return out;
}

int64_t recurrent_wmma_errors(const RecurrentDims& d) {
  require_dims(d, "recurrent_wmma_errors");
  const RecLaunch L = make_launch(d);
  int64_t bad = 0;
  SplitLaunch S;
  SplitKnobs k = SplitKnobs::current();
  if (emulated_split(L, true, true, &S, k) && S.tc) bad += tc_wmma_errors(S, true);
  for (const int exchange : {0, 1}) {
    k.exchange = exchange;
    if (emulated_split(L, false, true, &S, k) && S.tc) bad += tc_wmma_errors(S, false);
  }
  return bad;
}

bool set_recurrent_autotune(bool on) {
  forget_tuned();  // (re)tune from the next call of each shape
  return g_autotune.exchange(on);
}

bool recurrent_tuned(const RecurrentDims& d, bool slstm, bool fwd, bool bf16, int64_t* cap, int* exchange) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  std::lock_guard<std::mutex> lock(g_tune_mu);
  const auto it = g_tuned.find(TuneKey{dev, fwd, bf16, slstm, d.B, d.NH, d.DH});
  if (it == g_tuned.end()) return false;
  *cap = it->second.cap, *exchange = it->second.exchange;
  return true;
}

int set_recurrent_exchange(int exchange) {
  if (exchange < 0 || exchange > 1) throw std::invalid_argument("set_recurrent_exchange: exchange must be 0 (partials) or 1 (gather)");
  const int prev = g_exchange.exchange(exchange);
  forget_tuned();  // the candidates are built around the settings
  return prev;
}

int64_t set_recurrent_split_blocks(int64_t per_head) {
  if (per_head != 0 && per_head < 2)
    throw std::invalid_argument("set_recurrent_split_blocks: blocks per head must be 0 (as many as the device holds) or >= 2");
  const int64_t prev = g_split_blocks.exchange(per_head);
  forget_tuned();
  return prev;
}

// ---- host coverage of the launch maps --------------------------------------------------------------------------

int64_t recurrent_coverage(bool slstm, const RecurrentDims& d, int32_t* writes) {
  require_dims(d, "recurrent_coverage");
  const int ns = slstm ? 4 : 2;
  const RecLaunch L = make_launch(d);
  const Lens n(d, ns);
  int32_t* w_y = writes;
  int32_t* w_states = w_y + n.bsh;
  int32_t* w_gates = w_states + n.seq_state;
  int32_t* w_dx = w_gates + n.x;
  int32_t* w_dR = w_dx + n.x;
  int32_t* w_dbias = w_dR + n.r;
  int32_t* w_ds0 = w_dbias + n.bias;
  const int64_t total = n.bsh + n.seq_state + 2 * n.x + n.r + n.bias + n.state;
  for (int64_t i = 0; i < total; ++i) writes[i] = 0;
  int64_t bad = 0;
  // a global write at offset `off` into an output of `len` elements
  auto hit = [&](int32_t* w, int64_t len, int64_t off) {
    if (off < 0 || off >= len) ++bad;
    else ++w[off];
  };
  const int64_t DH = L.DH, G = L.G;
  if (L.fwd_threads < 32 || L.fwd_threads > kMaxThreads || L.fwd_threads % 32 || L.bwd_threads < 32 ||
      L.bwd_threads > kMaxThreads || L.bwd_threads % 32 || L.rows < 1 || L.rows > kMaxRows)
    ++bad;
  // R staging (both kernels): every padded slot j*(G+1) + k (k < G) written once, the pad column never
  {
    std::vector<int32_t> rs(static_cast<size_t>(L.r_floats()), 0);
    for (int tid = 0; tid < L.fwd_threads; ++tid)
      for (int64_t i = tid; i < DH * G; i += L.fwd_threads) ++rs[static_cast<size_t>((i / G) * (G + 1) + i % G)];
    for (int64_t s = 0; s < L.r_floats(); ++s) bad += rs[static_cast<size_t>(s)] != ((s % (G + 1)) < G ? 1 : 0);
  }
  std::vector<int32_t> vec(static_cast<size_t>(L.rows * G), 0);  // per-phase shared-memory slot writes
  auto vec_check = [&](int64_t slots_per_row, int nb) {
    for (int bb = 0; bb < L.rows; ++bb)
      for (int64_t s = 0; s < slots_per_row; ++s) {
        int32_t& v = vec[static_cast<size_t>(bb * slots_per_row + s)];
        bad += v != (bb < nb ? 1 : 0);
        v = 0;
      }
  };
  // unit-item loop of a block (one pass of the threads over nb*DH items)
  auto units = [&](int threads, int nb, auto&& f) {
    for (int tid = 0; tid < threads; ++tid)
      for (int64_t i = tid; i < nb * DH; i += threads) {
        int bb;
        int64_t u;
        L.unit_item(i, &bb, &u);
        if (bb < 0 || bb >= nb || u < 0 || u >= DH) ++bad;
        else f(bb, u);
      }
  };
  std::vector<int32_t> block_seen(static_cast<size_t>(d.NH * d.B), 0);
  for (int64_t blk = 0; blk < L.blocks; ++blk) {
    int64_t hd, b0;
    int nb;
    L.block_task(blk, &hd, &b0, &nb);
    if (hd < 0 || hd >= d.NH || b0 < 0 || nb < 1 || b0 + nb > d.B) {
      ++bad;
      continue;
    }
    for (int bb = 0; bb < nb; ++bb) ++block_seen[static_cast<size_t>(hd * d.B + b0 + bb)];
    // forward: initial h, then per step gate items (gates) and unit items (states, y, h)
    units(L.fwd_threads, nb, [&](int bb, int64_t u) { ++vec[static_cast<size_t>(bb * DH + u)]; });
    vec_check(DH, nb);
    for (int64_t t = 0; t < d.S; ++t) {
      for (int tid = 0; tid < L.fwd_threads; ++tid)
        for (int64_t i = tid; i < nb * G; i += L.fwd_threads) {
          int bb;
          int64_t k;
          L.gate_item(i, &bb, &k);
          if (bb < 0 || bb >= nb || k < 0 || k >= G) {
            ++bad;
            continue;
          }
          hit(w_gates, n.x, L.x_off(hd, b0 + bb, t, k));
          ++vec[static_cast<size_t>(bb * G + k)];
        }
      vec_check(G, nb);
      units(L.fwd_threads, nb, [&](int bb, int64_t u) {
        for (int s = 0; s < ns; ++s) hit(w_states, n.seq_state, L.state_off(s, hd, t, b0 + bb, u));
        hit(w_y, n.bsh, L.y_off(hd, b0 + bb, t, u));
        ++vec[static_cast<size_t>(bb * DH + u)];
      });
      vec_check(DH, nb);
    }
    // backward: carried init, per step cell backward (dx, dp) and R·dp (dh), then dstate0
    units(L.bwd_threads, nb, [&](int bb, int64_t u) { ++vec[static_cast<size_t>(bb * DH + u)]; });
    vec_check(DH, nb);
    for (int64_t t = d.S - 1; t >= 0; --t) {
      units(L.bwd_threads, nb, [&](int bb, int64_t u) {
        for (int g = 0; g < 4; ++g) {
          hit(w_dx, n.x, L.x_off(hd, b0 + bb, t, g * DH + u));
          ++vec[static_cast<size_t>(bb * G + g * DH + u)];
        }
      });
      vec_check(G, nb);
      units(L.bwd_threads, nb, [&](int bb, int64_t j) { ++vec[static_cast<size_t>(bb * DH + j)]; });
      vec_check(DH, nb);
    }
    units(L.bwd_threads, nb, [&](int bb, int64_t u) {
      for (int s = 0; s < ns; ++s) hit(w_ds0, n.state, L.state0_off(s, hd, b0 + bb, u));
    });
  }
  for (int32_t v : block_seen) bad += v != 1;
  // parameter gradients: pass 1 writes each partial once (every block's threads, every sub-tile slot) and stages
  // every slot of its shared tiles once per row step; the chunks partition the rows; pass 2 writes each output once
  // and reads each of its chunk partials once
  const int64_t items = L.pg_chunks * L.pg_elems;
  std::vector<int32_t> part(static_cast<size_t>(items), 0);
  if (L.pg_blocks() > 0x7fffffff) ++bad;
  std::vector<float> pg_sm(2 * kPgRowStep * kPgTile);
  {  // every block stages every slot of its shared tiles once per row step (PgTile::put; the same map in each block)
    std::vector<int32_t> staged(kPgRowStep * kPgTile, 0);
    for (int tid = 0; tid < kPgThreads; ++tid)
      for (int q = 0; q < kPgPer; ++q) ++staged[static_cast<size_t>(tid + q * kPgThreads)];
    for (int32_t v : staged) bad += v != 1;
  }
  for (int64_t blk = 0; blk < L.pg_blocks(); ++blk) {
    int64_t chunk, hd, j0, k0;
    L.pg_block(blk, &chunk, &hd, &j0, &k0);
    if (chunk < 0 || chunk >= L.pg_chunks || hd < 0 || hd >= d.NH || j0 < 0 || j0 > DH || k0 < 0 || k0 >= G) {
      ++bad;
      continue;
    }
    const PgTile tile(L, blk, pg_sm.data());
    for (int tid = 0; tid < kPgThreads; ++tid)
      for (int i = 0; i < kPgSub; ++i)
        for (int l = 0; l < kPgSub; ++l) {
          const int64_t o = tile.out_index(tid, i, l);
          if (o < -1 || o >= items) ++bad;
          else if (o >= 0) ++part[static_cast<size_t>(o)];
        }
  }
  for (int32_t v : part) bad += v != 1;
  int64_t covered = 0;
  for (int64_t c = 0; c < L.pg_chunks; ++c) {
    const int64_t r0 = c * L.pg_per, r1 = std::min(L.pg_rows, r0 + L.pg_per);
    if (r0 != covered || r1 <= r0) ++bad;
    covered = r1;
  }
  if (covered != L.pg_rows) ++bad;
  std::fill(part.begin(), part.end(), 0);
  const int64_t threads2 = static_cast<int64_t>(grid_for(L.pg_elems, kPgThreads)) * kPgThreads;
  for (int64_t tid = 0; tid < threads2; ++tid)
    for (int64_t e = tid; e < L.pg_elems; e += threads2) {
      int64_t hd, j, k;
      L.pg_elem(e, &hd, &j, &k);
      if (hd < 0 || hd >= d.NH || j < 0 || j > DH || k < 0 || k >= G) {
        ++bad;
        continue;
      }
      for (int64_t c = 0; c < L.pg_chunks; ++c) ++part[static_cast<size_t>(c * L.pg_elems + e)];
      if (j < DH) hit(w_dR, n.r, L.pg_out(hd, j, k));
      else hit(w_dbias, n.bias, L.pg_out(hd, j, k));
    }
  for (int32_t v : part) bad += v != 1;
  return bad;
}

}  // namespace cuda
}  // namespace xlstm
