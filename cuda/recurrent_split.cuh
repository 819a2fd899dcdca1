// The split-head launch of the sLSTM / LSTM recurrences (included by cuda/recurrent.cu, inside its anonymous
// namespace: it uses RecLaunch, FwdArgs, BwdArgs and the cells). The rows launch there gives a block one head and <= 4
// batch rows, so a model with few heads and a small batch (G1: one head of 768 units, B 16) runs on 4 blocks of a
// 132-SM GPU, each streaming its head's whole R every step. Here the head's units are split over P blocks that run
// at the same time (a cooperative launch) and meet at a grid barrier once per step, as in FlashRNN:
//   block (head hd, part p) owns units [u0, u0+nu) of the head and their 4·nu gate columns k = g·DH + u, for ALL
//   batch rows; its R columns [DH][4nu] stay in shared memory for the whole sequence (row stride 4nu+1).
//   forward, step t: (0) stage h_{t-1} [B][DH] of the head (written by every block at t-1: read through L2) into
//     shared memory; (1) a thread per (pair of rows, own column) computes p = x + h_{t-1}·R[:, k] + bias (j = 0..DH-1 in
//     order: the rows launch's and the CPU's sum); (2) a thread per (row, own unit) runs the cell, writes y, states,
//     gates; grid barrier.
//   backward, step t (reverse): (A) a thread per (row, own unit) runs the cell backward with ∂h = dy + Σ_q
//     part_q[b][u] (the partial recurrent gradients every block q of the head wrote at step t+1, summed in q order;
//     dstate_final at t = S-1), writes dx and keeps dp [B][4nu], ∂c, ∂n in shared memory; (B) a thread per
//     (pair of rows, unit j of the head) writes this block's partial Σ_{own k} R[j, k] dp[k] into part (double-buffered by
//     step parity, so step t's writes never meet step t+1's reads); grid barrier. dR / dbias: the rows launch's
//     deterministic passes, after.
// No atomics: results are deterministic. The phase bodies are __host__ __device__ (SplitFwd / SplitBwd), so the
// host replay (recurrent.cu's *_emulate entries) runs the same code block by block, phase by phase, step by step.
#pragma once

constexpr int kSplitThreads = 256;
constexpr int64_t kSplitMaxB = 64;  // batch rows a split block holds (h_{t-1} of the head in shared memory)

struct SplitLaunch {
  RecLaunch L;
  int64_t P;       // blocks per head
  int64_t nu;      // units per block (the last block of a head may own fewer)
  int64_t blocks;  // NH * P
  // ---- block -> (head, first unit, units owned)
  __host__ __device__ void block_units(int64_t blk, int64_t* hd, int64_t* u0, int64_t* n) const {
    *hd = blk / P;
    *u0 = (blk - *hd * P) * nu;
    const int64_t left = L.DH - *u0;
    *n = left < nu ? (left > 0 ? left : 0) : nu;
  }
  // own column c in [0, 4n) -> head column k = g*DH + u0 + c % n
  __host__ __device__ int64_t head_col(int64_t u0, int64_t n, int64_t c) const { return (c / n) * L.DH + u0 + c % n; }
  __host__ __device__ int64_t ldr() const { return 4 * nu + 1; }
  // shared memory (floats): R columns [DH][4nu+1], then forward: hprev [B][DH], pre [B][4nu];
  // backward: dp [B][4nu], dc, dn [B][nu]
  __host__ __device__ int64_t r_floats() const { return L.DH * ldr(); }
  __host__ __device__ int64_t fwd_floats() const { return r_floats() + L.B * L.DH + L.B * 4 * nu; }
  __host__ __device__ int64_t bwd_floats() const { return r_floats() + L.B * 4 * nu + 2 * L.B * nu; }
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

// A block's columns of its head's R [DH][G] into shared memory Rs [DH][4nu+1] (own column c at position c).
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
  float *Rs, *hprev, *pre;
  __host__ __device__ SplitFwd(const SplitLaunch& s, const FwdArgs& args, int64_t blk, float* sm) : S(s), a(args) {
    S.block_units(blk, &hd, &u0, &n);
    Rs = sm;
    hprev = sm + S.r_floats();
    pre = hprev + S.L.B * S.L.DH;
  }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    if (t > 0) return load_l2(a.states + S.L.state_off(s, hd, t - 1, b, u));
    return a.state0 ? a.state0[S.L.state0_off(s, hd, b, u)] : 0.0f;
  }
  __host__ __device__ void init(int tid, int nt) const { stage_r_columns(S, a.R, hd, u0, n, Rs, tid, nt); }
  // (0) h_{t-1} of the whole head
  __host__ __device__ void stage_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = S.L.DH;
    for (int64_t i = tid; i < S.L.B * DH; i += nt) hprev[i] = prev(0, t, i / DH, i % DH);
  }
  // (1) own gate columns, a thread per (pair of rows, column): each R element read from shared memory serves both
  // rows' sums (each still one fmaf chain over j in order)
  __host__ __device__ void gates_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = S.L.DH, w = 4 * n, pairs = (S.L.B + 1) / 2;
    for (int64_t i = tid; i < pairs * w; i += nt) {
      const int64_t b = 2 * (i / w), c = i % w, k = S.head_col(u0, n, c);
      const bool two = b + 1 < S.L.B;
      const float* h0 = hprev + b * DH;
      const float* h1 = two ? h0 + DH : h0;
      float acc0 = 0.0f, acc1 = 0.0f;
      for (int64_t j = 0; j < DH; ++j) {
        const float r = Rs[j * S.ldr() + c];
        acc0 = fmaf(h0[j], r, acc0);
        acc1 = fmaf(h1[j], r, acc1);
      }
      for (int64_t q = 0; q < (two ? 2 : 1); ++q) {
        const int64_t off = S.L.x_off(hd, b + q, t, k);
        const float p = a.x[off] + (q ? acc1 : acc0) + a.bias[S.L.gate_col(hd, k)];
        if constexpr (NS == 4) a.gates[off] = p;  // the LSTM saves its activations instead (cell_phase)
        pre[(b + q) * w + c] = p;
      }
    }
  }
  // (2) own units: the cell
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    const int64_t w = 4 * n;
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, lu = i % n, u = u0 + lu;
      const float* pr = pre + b * w;
      float h;
      if constexpr (NS == 4) {
        float c, nn, m;
        Cell::forward(pr[lu], pr[n + lu], pr[2 * n + lu], pr[3 * n + lu], prev(1, t, b, u), prev(2, t, b, u), prev(3, t, b, u), &h, &c, &nn, &m);
        a.states[S.L.state_off(1, hd, t, b, u)] = c;
        a.states[S.L.state_off(2, hd, t, b, u)] = nn;
        a.states[S.L.state_off(3, hd, t, b, u)] = m;
      } else {
        const int64_t DH = S.L.DH;
        float c, gi, gf, gz, go;
        Cell::forward_act(pr[lu], pr[n + lu], pr[2 * n + lu], pr[3 * n + lu], prev(1, t, b, u), &h, &c, &gi, &gf, &gz, &go);
        a.states[S.L.state_off(1, hd, t, b, u)] = c;
        a.gates[S.L.x_off(hd, b, t, u)] = gi;
        a.gates[S.L.x_off(hd, b, t, DH + u)] = gf;
        a.gates[S.L.x_off(hd, b, t, 2 * DH + u)] = gz;
        a.gates[S.L.x_off(hd, b, t, 3 * DH + u)] = go;
      }
      a.states[S.L.state_off(0, hd, t, b, u)] = h;
      a.y[S.L.y_off(hd, b, t, u)] = h;
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
  __host__ __device__ SplitBwd(const SplitLaunch& s, const BwdArgs& args, float* part_, int64_t b, float* sm)
      : S(s), a(args), part(part_), blk(b) {
    S.block_units(blk, &hd, &u0, &n);
    Rs = sm;
    dp = sm + S.r_floats();
    dc = dp + S.L.B * 4 * S.nu;
    dn = dc + S.L.B * S.nu;
  }
  __host__ __device__ float prev(int s, int64_t t, int64_t b, int64_t u) const {
    return S.L.prev_state(a.states, a.state0, s, hd, t, b, u);
  }
  // the recurrent part of ∂h for (row b, unit u) entering step t: dstate_final at t = S-1, else the partials of t+1
  __host__ __device__ float dh_rec(int64_t t, int64_t b, int64_t u) const {
    if (t == S.L.S - 1) return a.dfinal ? a.dfinal[S.L.state0_off(0, hd, b, u)] : 0.0f;
    float acc = 0.0f;
    for (int64_t q = 0; q < S.P; ++q) acc += load_l2(part + S.part_off((t + 1) & 1, hd * S.P + q, b, u));
    return acc;
  }
  __host__ __device__ void init(int tid, int nt) const {
    stage_r_columns(S, a.R, hd, u0, n, Rs, tid, nt);
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, u = u0 + i % n;
      dc[i] = a.dfinal ? a.dfinal[S.L.state0_off(1, hd, b, u)] : 0.0f;
      dn[i] = (NS == 4 && a.dfinal) ? a.dfinal[S.L.state0_off(2, hd, b, u)] : 0.0f;
    }
  }
  // (A) own units: the cell backward
  __host__ __device__ void cell_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = S.L.DH, w = 4 * n;
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, lu = i % n, u = u0 + lu;
      const float pi = a.gates[S.L.x_off(hd, b, t, u)], pf = a.gates[S.L.x_off(hd, b, t, DH + u)];
      const float pz = a.gates[S.L.x_off(hd, b, t, 2 * DH + u)], po = a.gates[S.L.x_off(hd, b, t, 3 * DH + u)];
      const float gh = a.dy[S.L.y_off(hd, b, t, u)] + dh_rec(t, b, u);
      const float c1 = a.states[S.L.state_off(1, hd, t, b, u)];
      float dpi, dpf, dpz, dpo, dck = dc[i];
      if constexpr (NS == 4) {
        float dnk = dn[i];
        Cell::backward(pi, pf, pz, po, prev(1, t, b, u), prev(2, t, b, u), prev(3, t, b, u), c1, a.states[S.L.state_off(2, hd, t, b, u)],
                       a.states[S.L.state_off(3, hd, t, b, u)], a.states[S.L.state_off(0, hd, t, b, u)], gh, &dck, &dnk, &dpi, &dpf, &dpz, &dpo);
        dn[i] = dnk;
      } else {
        Cell::backward(pi, pf, pz, po, prev(1, t, b, u), c1, gh, &dck, &dpi, &dpf, &dpz, &dpo);
      }
      dc[i] = dck;
      float* d = dp + b * w;
      d[lu] = dpi;
      d[n + lu] = dpf;
      d[2 * n + lu] = dpz;
      d[3 * n + lu] = dpo;
      a.dx[S.L.x_off(hd, b, t, u)] = dpi;
      a.dx[S.L.x_off(hd, b, t, DH + u)] = dpf;
      a.dx[S.L.x_off(hd, b, t, 2 * DH + u)] = dpz;
      a.dx[S.L.x_off(hd, b, t, 3 * DH + u)] = dpo;
    }
  }
  // (B) this block's share of ∂h_{t-1}[b][j] for every unit j of the head
  // (a thread per (pair of rows, unit j): each R element serves both rows, each sum one fmaf chain over c in order)
  __host__ __device__ void partial_phase(int64_t t, int tid, int nt) const {
    const int64_t DH = S.L.DH, w = 4 * n, pairs = (S.L.B + 1) / 2;
    for (int64_t i = tid; i < pairs * DH; i += nt) {
      const int64_t b = 2 * (i / DH), j = i % DH;
      const bool two = b + 1 < S.L.B;
      const float* d0 = dp + b * w;
      const float* d1 = two ? d0 + w : d0;
      const float* r = Rs + j * S.ldr();
      float acc0 = 0.0f, acc1 = 0.0f;
      for (int64_t c = 0; c < w; ++c) {
        acc0 = fmaf(d0[c], r[c], acc0);
        acc1 = fmaf(d1[c], r[c], acc1);
      }
      part[S.part_off(t & 1, blk, b, j)] = acc0;
      if (two) part[S.part_off(t & 1, blk, b + 1, j)] = acc1;
    }
  }
  // dstate0 from the carried cotangents after step 0 (∂h: the partials of step 0)
  __host__ __device__ void final_phase(int tid, int nt) const {
    if (!a.dstate0) return;
    for (int64_t i = tid; i < S.L.B * n; i += nt) {
      const int64_t b = i / n, u = u0 + i % n;
      float dh = 0.0f;
      for (int64_t q = 0; q < S.P; ++q) dh += load_l2(part + S.part_off(0, hd * S.P + q, b, u));
      a.dstate0[S.L.state0_off(0, hd, b, u)] = dh;
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

template <class Cell>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_forward_kernel(FwdArgs a, SplitLaunch S) {
  extern __shared__ float smem[];
  namespace cg = cooperative_groups;
  cg::grid_group grid = cg::this_grid();
  const SplitFwd<Cell> blk(S, a, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  blk.init(tid, nt);
  for (int64_t t = 0; t < S.L.S; ++t) {
    blk.stage_phase(t, tid, nt);
    __syncthreads();
    blk.gates_phase(t, tid, nt);
    __syncthreads();
    blk.cell_phase(t, tid, nt);
    __threadfence();
    grid.sync();
  }
}

template <class Cell>
__global__ void __launch_bounds__(kSplitThreads, 1) rec_split_backward_kernel(BwdArgs a, SplitLaunch S, float* part) {
  extern __shared__ float smem[];
  namespace cg = cooperative_groups;
  cg::grid_group grid = cg::this_grid();
  const SplitBwd<Cell> blk(S, a, part, blockIdx.x, smem);
  const int tid = threadIdx.x, nt = blockDim.x;
  blk.init(tid, nt);
  __syncthreads();
  for (int64_t t = S.L.S - 1; t >= 0; --t) {
    blk.cell_phase(t, tid, nt);
    __syncthreads();
    blk.partial_phase(t, tid, nt);
    __threadfence();
    grid.sync();
  }
  blk.final_phase(tid, nt);
}

// Host replay of the split launches: every step, every block, each phase for all of its threads (the grid barrier:
// all blocks finish a step before any starts the next); each block's shared memory persists over the steps, NaN at
// the start.
template <class Cell>
void split_forward_replay(const SplitLaunch& S, const FwdArgs& a) {
  std::vector<float> sm(static_cast<size_t>(S.blocks * S.fwd_floats()), __builtin_nanf(""));
  const int nt = kSplitThreads;
  std::vector<SplitFwd<Cell>> blocks;
  for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, b, sm.data() + b * S.fwd_floats());
  for (auto& blk : blocks)
    for (int tid = 0; tid < nt; ++tid) blk.init(tid, nt);
  for (int64_t t = 0; t < S.L.S; ++t)
    for (auto& blk : blocks) {
      for (int tid = 0; tid < nt; ++tid) blk.stage_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) blk.gates_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) blk.cell_phase(t, tid, nt);
    }
}

template <class Cell>
void split_backward_replay(const SplitLaunch& S, const BwdArgs& a) {
  std::vector<float> sm(static_cast<size_t>(S.blocks * S.bwd_floats()), __builtin_nanf(""));
  std::vector<float> part(static_cast<size_t>(S.part_floats()), __builtin_nanf(""));
  const int nt = kSplitThreads;
  std::vector<SplitBwd<Cell>> blocks;
  for (int64_t b = 0; b < S.blocks; ++b) blocks.emplace_back(S, a, part.data(), b, sm.data() + b * S.bwd_floats());
  for (auto& blk : blocks)
    for (int tid = 0; tid < nt; ++tid) blk.init(tid, nt);
  for (int64_t t = S.L.S - 1; t >= 0; --t)
    for (auto& blk : blocks) {
      for (int tid = 0; tid < nt; ++tid) blk.cell_phase(t, tid, nt);
      for (int tid = 0; tid < nt; ++tid) blk.partial_phase(t, tid, nt);
    }
  for (auto& blk : blocks)
    for (int tid = 0; tid < nt; ++tid) blk.final_phase(tid, nt);
}
