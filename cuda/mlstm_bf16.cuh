// The chunkwise mLSTM cell under the bfloat16 autocast (cuda/mlstm.cu, XLSTM_SPEC §4.5 / §4.6): the products on
// tensor cores (bf16 operands, float32 sums: cuda/gemm_grouped.h's grouped GEMM, a product per (head, chunk)), the
// gates, stabilisers, normaliser, state recurrences and every sum outside the products in float32 / float64 as the
// float32 form. The same composition with float32 grouped GEMMs (and the float32 state-tile kernels in place of
// bf16_state_kernel) is the composed float32 form (by default for heads of DK·DV >= 2^16; cuda::set_mlstm_form): the
// executors' bf16 flag picks. Same `saved` layout and contents (C_c, n_c, m, μ, den), so either form's backward reads either
// form's forward. Included into mlstm.cu's anonymous namespace: it reuses the geometry (Geo, sv_*, chunk_len,
// row_M), the gate / position / n-state / reduce / dots kernels around it, and replaces only the float32 form's
// tiled products (fwd_state_tile + tile<FWD_H>; bwd_lambda_tile + tile<DQ / DK / DV>).
//
// Forward, per (bh, chunk c of length l), positions τ, σ of the chunk (LL: an L x L scratch per chunk):
//   C      C_{c+1} = (sα ⊙ K_c)ᵀ V_c + γ_c C_c into saved slot c+1   (bf16_state_kernel: products and recurrence fused)
//   S      LL = Q_c K_cᵀ;  P = s S ⊙ exp(w_σ − M_τ) for σ ≤ τ, else 0  (weights, in place)
//   den    Σ_σ P_τσ + β_τ q_τ·n_c; inv = 1 / (max(|den|, exp(−μ)) + ε)  (a warp per position; den saved)
//   h      (inv ⊙ P) V_c + (inv β ⊙ Q_c) C_c                        (one GEMM of two segments)
// Backward (β, sα, inv, ρ from bwd_pos as the float32 form; each gradient one GEMM of two segments):
//   Λ      Λ_c = (β inv ⊙ Q_c)ᵀ dH_c + γ_c Λ_{c+1} in reverse, lam slot c = Λ_{c+1}  (bf16_state_kernel, reverse)
//   Ω'     LL = (inv ⊙ dH_c) V_cᵀ;  Ω' = s (LL + ρ_τ) ⊙ exp(w_σ − M_τ), causal
//   dq     Ω' K_c + (β inv ⊙ dH_c) C_cᵀ + β ρ n_c                 (the last term: grad_extras)
//   dk     Ω'ᵀ Q_c + (sα ⊙ V_c) Λᶜ_{c+1}ᵀ + sα Λⁿ_{c+1}
//   dv     Pᵀ (inv ⊙ dH_c) + (sα ⊙ K_c) Λᶜ_{c+1}                   (P recomputed into LL)
// A sequence whose length is not a multiple of the chunk runs each product twice: over the full chunks, then over
// the last one with its own length. Everything here is __host__ __device__ item code or a grouped GEMM, run by an
// executor: DeviceExec (kernels on the stream) or HostExec (the host replay: the same items in a loop, warp sums by
// the shuffle butterfly, the GEMMs and the state kernel by their replays).

// ---- item code ---------------------------------------------------------------------------------------------------

// out[p] = a[p] · b[p]
struct Bf16Product {
  const float *a, *b;
  float* out;
  XLSTM_MLSTM_HD void operator()(int64_t p) const { out[p] = a[p] * b[p]; }
};

// ---- the inter-chunk states, fused: per-chunk products on tensor cores and the recurrence --------------------------
// A block per (bh, 64 x 64 tile of the DK x DV state) walks the chunks (forward: C in order; backward: Λᶜ in reverse)
// keeping its tile of the state in float32 accumulator fragments: per chunk the product Σ_t a_t[j] b_t[x] over the
// chunk's positions, staged BT at a time in shared memory as bf16 (a_t = s_t · rows of A, s_t a per-position scale),
// on tensor cores (4 warps, a 32 x 32 quarter each as 2 x 2 wmma 16 x 16 x 16 fragments), then the recurrence on the
// fragments element by element, and the tile written to its slot through shared memory (coalesced). So no per-chunk
// product is materialised and re-read, as a GEMM per chunk and a scan would:
//   forward   C_0 = c0 or 0 (slot 0); C_{c+1} = ΔC + γ_c C_c (ΔC alone where γ_c = 0) into saved slot c+1, ΔC =
//             Σ_t (sα_t k_t) v_tᵀ; c_last = scale · C_NC
//   backward  Λ_NC from dc_last; per chunk in reverse: lam slot c = Λ_{c+1}, then Λ_c = ΔΛ + γ_c Λ_{c+1} (0 where m_c
//             is not finite), ΔΛ = Σ_t (β_t inv_t q_t) dh_tᵀ; lam0 = dc0 = Λ_0
// Index maps, staged values and the recurrence are __host__ __device__ (Bf16StateTile / Bf16StateBlock), so the host
// replay (bf16_state_replay) runs them for every block and thread; only the 16 x 16 x 16 products are its own.
struct Bf16StateTile {
  static constexpr int TJ = 64, TX = 64, BT = 32, THREADS = 128, WARP_TILE = 32;
  static constexpr int LDA = TJ + 8, LDB = TX + 8, LDS = TX + 4;  // shared row lengths: bf16 Ks / Vs, float Cs
  static constexpr int LOADS = BT * TJ / THREADS;                 // per operand per slice (TJ == TX)
  static constexpr int STORES = TJ * TX / THREADS;                // per state tile
  // wmma's pointers: 32-byte aligned at every fragment origin (rows of 16, columns at multiples of 16), leading
  // dimensions a multiple of 16 bytes; the warps' quarters tile the state tile; the slots cover the slices exactly
  static_assert(LDA % 8 == 0 && LDB % 8 == 0 && LDS % 4 == 0, "wmma leading dimensions: 16-byte multiples");
  static_assert((16 * LDA * 2) % 32 == 0 && (16 * LDB * 2) % 32 == 0 && (16 * LDS * 4) % 32 == 0, "fragment rows 32-byte aligned");
  static_assert((THREADS / 32) * WARP_TILE * WARP_TILE == TJ * TX && TJ == 2 * WARP_TILE && TX == 2 * WARP_TILE, "4 warps, 32 x 32 each");
  static_assert(BT % 16 == 0 && BT * TJ % THREADS == 0 && TJ == TX && TJ * TX % THREADS == 0, "slices and tiles split evenly");
  static_assert(LOADS % 4 == 0 && STORES % 4 == 0 && TJ % 4 == 0, "staging and state writes in whole vectors of 4");
  XLSTM_MLSTM_HD static int64_t j_tiles(const Geo& g) { return (g.DK + TJ - 1) / TJ; }
  XLSTM_MLSTM_HD static int64_t x_tiles(const Geo& g) { return (g.DV + TX - 1) / TX; }
  XLSTM_MLSTM_HD static int64_t blocks(const Geo& g) { return g.BH * j_tiles(g) * x_tiles(g); }
  // staging slot l of thread tid: position t < BT of the slice, column < TJ of the tile; slots 4q .. 4q + 3 are the
  // 4 consecutive columns of vector q (from a multiple of 4: one 16-byte load where aligned, one 8-byte store)
  XLSTM_MLSTM_HD static void slot(int tid, int l, int* t, int* col) {
    const int idx = tid + (l / 4) * THREADS;
    *t = idx / (TJ / 4);
    *col = (idx % (TJ / 4)) * 4 + l % 4;
  }
  // state element l of thread tid (through Cs): row r < TJ, column c < TX
  XLSTM_MLSTM_HD static void elem(int tid, int l, int* r, int* c) {
    const int idx = tid + l * THREADS;
    *r = idx / TX;
    *c = idx % TX;
  }
  // state vector q of thread tid (the tile's writes, 4 consecutive columns): row r < TJ, first column c < TX
  XLSTM_MLSTM_HD static void elem4(int tid, int q, int* r, int* c) {
    const int idx = tid + q * THREADS;
    *r = idx / (TX / 4);
    *c = (idx % (TX / 4)) * 4;
  }
  XLSTM_MLSTM_HD static void warp_origin(int w, int* r0, int* c0) {
    *r0 = (w / 2) * WARP_TILE;
    *c0 = (w % 2) * WARP_TILE;
  }
};

struct Bf16StateArgs {
  Geo g;
  bool reverse;                  // false: the forward's C; true: the backward's Λᶜ
  const float *a, *b, *a_scale;  // rows a (DK wide: k or q) scaled per position (sα or β·inv), rows b (DV wide: v or dh)
  const float *gamma, *saved;    // γ per (bh, c); saved: m (backward), and the forward's C slots
  const float* init;             // c0 (forward) or dc_last (backward), may be null
  const float* scale;            // forward: c_last = scale[bh] · C_NC
  float* out;                    // forward: saved; backward: lam
  float *last, *extra;           // forward: c_last; backward: lam0, dc0 (may be null)
};

struct Bf16StateBlock {
  const Bf16StateArgs& a;
  int64_t bh, j0, x0;
  XLSTM_MLSTM_HD Bf16StateBlock(const Bf16StateArgs& args, int64_t bid) : a(args) {
    const int64_t nx = Bf16StateTile::x_tiles(a.g), nj = Bf16StateTile::j_tiles(a.g);
    x0 = (bid % nx) * Bf16StateTile::TX;
    bid /= nx;
    j0 = (bid % nj) * Bf16StateTile::TJ;
    bh = bid / nj;
  }
  XLSTM_MLSTM_HD int64_t chunk_at(int64_t s) const { return a.reverse ? a.g.NC - 1 - s : s; }
  // staged values of slot (t, col) of the slice from t0 of chunk c (0 past the chunk / the state's edge)
  XLSTM_MLSTM_HD float a_val(int64_t c, int64_t t0, int t, int col) const {
    const Geo& g = a.g;
    const int64_t p = bh * g.S + c * g.L + t0 + t;
    return t0 + t < chunk_len(g, c) && j0 + col < g.DK ? a.a_scale[p] * a.a[p * g.DK + j0 + col] : 0.0f;
  }
  XLSTM_MLSTM_HD float b_val(int64_t c, int64_t t0, int t, int col) const {
    const Geo& g = a.g;
    const int64_t p = bh * g.S + c * g.L + t0 + t;
    return t0 + t < chunk_len(g, c) && x0 + col < g.DV ? a.b[p * g.DV + x0 + col] : 0.0f;
  }
  // vector q of thread tid (slots 4q .. 4q + 3): a_val / b_val of its 4 columns, one 16-byte load where they lie
  // inside the chunk and the state, 16-byte aligned
  XLSTM_MLSTM_HD void a_vals4(int64_t c, int64_t t0, int tid, int q, float* out) const {
    const Geo& g = a.g;
    int t, col;
    Bf16StateTile::slot(tid, 4 * q, &t, &col);
    const int64_t p = bh * g.S + c * g.L + t0 + t;
    if (t0 + t < chunk_len(g, c) && j0 + col + 4 <= g.DK && aligned_float4(a.a, g.DK)) {
      load_float4(a.a + p * g.DK + j0 + col, out);
      const float sc = a.a_scale[p];
      for (int j = 0; j < 4; ++j) out[j] = sc * out[j];
      return;
    }
    for (int j = 0; j < 4; ++j) out[j] = a_val(c, t0, t, col + j);
  }
  XLSTM_MLSTM_HD void b_vals4(int64_t c, int64_t t0, int tid, int q, float* out) const {
    const Geo& g = a.g;
    int t, col;
    Bf16StateTile::slot(tid, 4 * q, &t, &col);
    const int64_t p = bh * g.S + c * g.L + t0 + t;
    if (t0 + t < chunk_len(g, c) && x0 + col + 4 <= g.DV && aligned_float4(a.b, g.DV)) return load_float4(a.b + p * g.DV + x0 + col, out);
    for (int j = 0; j < 4; ++j) out[j] = b_val(c, t0, t, col + j);
  }
  XLSTM_MLSTM_HD bool in_state(int r, int cc) const { return j0 + r < a.g.DK && x0 + cc < a.g.DV; }
  XLSTM_MLSTM_HD int64_t e_of(int r, int cc) const { return (j0 + r) * a.g.DV + x0 + cc; }
  // the state entering the walk: C_0 (c0 or 0) or Λ_NC (dc_last scaled, or 0)
  XLSTM_MLSTM_HD float init_val(int r, int cc) const {
    const Geo& g = a.g;
    if (!in_state(r, cc) || !a.init) return 0.0f;
    const float v = a.init[bh * g.DK * g.DV + e_of(r, cc)];
    if (!a.reverse) return v;
    const float* Ms = a.saved + bh * g.W + sv_m(g);
    return static_cast<float>(exp(static_cast<double>(Ms[g.NC]) - static_cast<double>(Ms[g.NC + 1]))) * v;
  }
  // chunk c's decay γ_c, and (backward) whether m_c is finite
  XLSTM_MLSTM_HD void chunk_consts(int64_t c, float* gm, bool* live) const {
    const Geo& g = a.g;
    *gm = a.gamma[bh * g.NC + c];
    *live = !a.reverse || finite_f(a.saved[bh * g.W + sv_m(g) + c]);
  }
  // the recurrence on one element: acc the chunk's product, st the carried state
  XLSTM_MLSTM_HD static float step(bool reverse, float gm, bool live, float acc, float st) {
    if (!reverse) return gm != 0.0f ? acc + gm * st : acc;
    return live ? acc + gm * st : 0.0f;
  }
  // slot writes of element (r, cc): the forward's C_0 (slot 0, before the walk) and C_{c+1} (after chunk c); the
  // backward's Λ_{c+1} (slot c, before chunk c)
  XLSTM_MLSTM_HD void write_slot(int64_t slot, int r, int cc, float v) const {
    const Geo& g = a.g;
    if (!in_state(r, cc)) return;
    if (a.reverse) a.out[(bh * g.NC + slot) * state_elems(g) + e_of(r, cc)] = v;
    else a.out[bh * g.W + sv_C(g, slot) + e_of(r, cc)] = v;
  }
  // write_slot of elements (r, cc .. cc + 3): one 16-byte store where all four lie in the state and the address is
  // 16-byte aligned
  XLSTM_MLSTM_HD void write_slot4(int64_t slot, int r, int cc, const float* v) const {
    const Geo& g = a.g;
    if (in_state(r, cc + 3)) {
      float* p = a.reverse ? a.out + (bh * g.NC + slot) * state_elems(g) + e_of(r, cc) : a.out + bh * g.W + sv_C(g, slot) + e_of(r, cc);
      if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) return store_float4(p, v);
    }
    for (int j = 0; j < 4; ++j) write_slot(slot, r, cc + j, v[j]);
  }
  XLSTM_MLSTM_HD void write_last(int r, int cc, float v) const {
    const Geo& g = a.g;
    if (!in_state(r, cc)) return;
    if (!a.reverse) {
      if (a.last) a.last[bh * g.DK * g.DV + e_of(r, cc)] = a.scale[bh] * v;
      return;
    }
    a.last[bh * state_elems(g) + e_of(r, cc)] = v;
    if (a.extra) a.extra[bh * g.DK * g.DV + e_of(r, cc)] = v;
  }
};

// Each slice is staged a vector of 4 at a time (Bf16StateBlock::a_vals4 / b_vals4: a 16-byte load, an 8-byte store).
// (Keeping the next slice's loads in flight in registers during the products, as the grouped GEMM does, needs 173
// registers here: the state and the chunk's product both live in fragments.)
__global__ void __launch_bounds__(Bf16StateTile::THREADS) bf16_state_kernel(Bf16StateArgs A) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using T = Bf16StateTile;
  namespace wmma = nvcuda::wmma;
  __shared__ __align__(32) __nv_bfloat16 As[T::BT][T::LDA];
  __shared__ __align__(32) __nv_bfloat16 Bs[T::BT][T::LDB];
  __shared__ __align__(32) float Cs[T::TJ][T::LDS];
  const int tid = threadIdx.x;
  int wr, wc;
  T::warp_origin(tid / 32, &wr, &wc);
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  // the state tile through Cs: fragments -> Cs -> writes of 4 consecutive elements (fn(r, cc, values)), with the
  // barriers around
  auto through_cs = [&](Acc (&st)[2][2], auto fn) {
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::store_matrix_sync(&Cs[wr + 16 * i][wc + 16 * j], st[i][j], T::LDS, wmma::mem_row_major);
    __syncthreads();
#pragma unroll 2
    for (int q = 0; q < T::STORES / 4; ++q) {
      int r, cc;
      T::elem4(tid, q, &r, &cc);
      const float4 x = *reinterpret_cast<const float4*>(&Cs[r][cc]);
      const float v[4] = {x.x, x.y, x.z, x.w};
      fn(r, cc, v);
    }
    __syncthreads();
  };
  for (int64_t bid = blockIdx.x; bid < T::blocks(A.g); bid += gridDim.x) {
    const Bf16StateBlock b(A, bid);
    Acc st[2][2], acc[2][2];
#pragma unroll 1
    for (int l = 0; l < T::STORES; ++l) {
      int r, cc;
      T::elem(tid, l, &r, &cc);
      const float v = b.init_val(r, cc);
      Cs[r][cc] = v;
      if (!A.reverse) b.write_slot(0, r, cc, v);
    }
    __syncthreads();
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(st[i][j], &Cs[wr + 16 * i][wc + 16 * j], T::LDS, wmma::mem_row_major);
    __syncthreads();
    for (int64_t s = 0; s < A.g.NC; ++s) {
      const int64_t c = b.chunk_at(s), len = chunk_len(A.g, c);
      if (A.reverse) through_cs(st, [&](int r, int cc, const float* v) { b.write_slot4(c, r, cc, v); });
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
      for (int64_t t0 = 0; t0 < len; t0 += T::BT) {
#pragma unroll 1
        for (int q = 0; q < T::LOADS / 4; ++q) {
          float xa[4], xb[4];
          b.a_vals4(c, t0, tid, q, xa);
          b.b_vals4(c, t0, tid, q, xb);
          int t, col;
          T::slot(tid, 4 * q, &t, &col);
          store_bf16x4(&As[t][col], xa);
          store_bf16x4(&Bs[t][col], xb);
        }
        __syncthreads();
        for (int kk = 0; kk < T::BT; kk += 16) {
          // op(A)[j][t] = As[t][j]: column-major with leading dimension LDA
          wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa[2];
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[2];
          for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], &As[kk][wr + 16 * i], T::LDA);
          for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], &Bs[kk][wc + 16 * j], T::LDB);
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();
      }
      // accumulator fragments of one shape share their element layout: the recurrence element by element
      float gm;
      bool live;
      b.chunk_consts(c, &gm, &live);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          for (int e = 0; e < st[i][j].num_elements; ++e) st[i][j].x[e] = Bf16StateBlock::step(A.reverse, gm, live, acc[i][j].x[e], st[i][j].x[e]);
      if (!A.reverse) through_cs(st, [&](int r, int cc, const float* v) { b.write_slot4(c + 1, r, cc, v); });
    }
    through_cs(st, [&](int r, int cc, const float* v) {
      for (int j = 0; j < 4; ++j) b.write_last(r, cc + j, v[j]);
    });
  }
#endif
}

// Host replay of bf16_state_kernel: every block in turn, each thread's staging slots and element writes by the same
// maps, each warp's quarter of the products as 16 x 16 x 16 steps in position order (float32 sums of the rounded
// operands; `round` false keeps them unrounded), shared memory NaN at each block's start and the product tile NaN
// outside the warps' quarters (so a gap in their cover shows up).
void bf16_state_replay(const Bf16StateArgs& A, bool round) {
  using T = Bf16StateTile;
  auto rnd = [&](float v) { return round ? bf16_math::widen(bf16_math::round(v)) : v; };
  std::vector<float> As(T::BT * T::TJ), Bs(T::BT * T::TX), Cs(T::TJ * T::TX), st(T::TJ * T::TX), acc(T::TJ * T::TX);
  auto nan_fill = [](std::vector<float>& v) { std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN()); };
  for (int64_t bid = 0; bid < T::blocks(A.g); ++bid) {
    const Bf16StateBlock b(A, bid);
    nan_fill(As), nan_fill(Bs), nan_fill(Cs);
    for (int tid = 0; tid < T::THREADS; ++tid)
      for (int l = 0; l < T::STORES; ++l) {
        int r, cc;
        T::elem(tid, l, &r, &cc);
        Cs[r * T::TX + cc] = b.init_val(r, cc);
        if (!A.reverse) b.write_slot(0, r, cc, Cs[r * T::TX + cc]);
      }
    st = Cs;
    auto through_cs = [&](auto fn) {
      Cs = st;
      for (int tid = 0; tid < T::THREADS; ++tid)
        for (int q = 0; q < T::STORES / 4; ++q) {
          int r, cc;
          T::elem4(tid, q, &r, &cc);
          fn(r, cc, &Cs[r * T::TX + cc]);
        }
    };
    for (int64_t s = 0; s < A.g.NC; ++s) {
      const int64_t c = b.chunk_at(s);
      if (A.reverse) through_cs([&](int r, int cc, const float* v) { b.write_slot4(c, r, cc, v); });
      nan_fill(acc);
      for (int w = 0; w < T::THREADS / 32; ++w) {
        int r0, c0;
        T::warp_origin(w, &r0, &c0);
        for (int r = r0; r < r0 + T::WARP_TILE; ++r)
          for (int cc = c0; cc < c0 + T::WARP_TILE; ++cc) acc[r * T::TX + cc] = 0.0f;
      }
      for (int64_t t0 = 0; t0 < chunk_len(A.g, c); t0 += T::BT) {
        for (int tid = 0; tid < T::THREADS; ++tid)
          for (int q = 0; q < T::LOADS / 4; ++q) {
            float xa[4], xb[4];
            b.a_vals4(c, t0, tid, q, xa);
            b.b_vals4(c, t0, tid, q, xb);
            for (int j = 0; j < 4; ++j) {
              int t, col;
              T::slot(tid, 4 * q + j, &t, &col);
              As[t * T::TJ + col] = rnd(xa[j]);
              Bs[t * T::TX + col] = rnd(xb[j]);
            }
          }
        for (int w = 0; w < T::THREADS / 32; ++w) {
          int r0, c0;
          T::warp_origin(w, &r0, &c0);
          for (int r = r0; r < r0 + T::WARP_TILE; ++r)
            for (int cc = c0; cc < c0 + T::WARP_TILE; ++cc) {
              float v = acc[r * T::TX + cc];
              for (int t = 0; t < T::BT; ++t) v = std::fma(As[t * T::TJ + r], Bs[t * T::TX + cc], v);
              acc[r * T::TX + cc] = v;
            }
        }
      }
      float gm;
      bool live;
      b.chunk_consts(c, &gm, &live);
      for (int e = 0; e < T::TJ * T::TX; ++e) st[e] = Bf16StateBlock::step(A.reverse, gm, live, acc[e], st[e]);
      if (!A.reverse) through_cs([&](int r, int cc, const float* v) { b.write_slot4(c + 1, r, cc, v); });
    }
    through_cs([&](int r, int cc, const float* v) {
      for (int j = 0; j < 4; ++j) b.write_last(r, cc + j, v[j]);
    });
  }
}

// The L x L weights of every chunk in place: P = (s S) E (omega false) or Ω' = s ((S + ρ_τ) E) (omega true), E =
// exp(w_σ − M_τ), 0 outside the causal triangle and the chunk; a row per (bh, chunk, τ), its lanes over σ (the row's
// indices are worked out once, not per element: 64-bit divisions cost the GPU dozens of instructions each), the
// float32 form's weights().
struct Bf16Weights {
  Geo g;
  const double *gw, *gp;
  const float *saved, *rho;
  float* ll;
  bool omega;
  static int64_t rows(const Geo& g) { return g.BH * g.NC * g.L; }
  XLSTM_MLSTM_HD void row(int64_t r, int lane) const {
    const int64_t tau = r % g.L, bc = r / g.L, c = bc % g.NC, bh = bc / g.NC;
    float* out = ll + r * g.L;
    if (tau >= chunk_len(g, c)) {
      for (int64_t sig = lane; sig < g.L; sig += 32) out[sig] = 0.0f;
      return;
    }
    const float* Ms = saved + bh * g.W + sv_m(g);
    const int64_t pt = bh * g.S + c * g.L + tau, p0 = pt - tau;
    const double M = row_M(finite_f(Ms[c]), Ms[c], gp[pt]);
    const float rt = omega ? rho[pt] : 0.0f;
    for (int64_t sig = lane; sig < g.L; sig += 32) {
      if (sig > tau) {
        out[sig] = 0.0f;
        continue;
      }
      const float ex = fm_exp(static_cast<float>(gw[p0 + sig] - M));
      out[sig] = omega ? g.s * ((out[sig] + rt) * ex) : (g.s * out[sig]) * ex;
    }
  }
};

// A warp per position: den = Σ_σ P_τσ + β q·n_c (lane parts), then the normaliser: den saved, inv and inv β.
struct Bf16Den {
  Geo g;
  const float *q, *ll, *beta;
  float *saved, *inv, *ib;
  XLSTM_MLSTM_HD float part(int64_t p, int lane) const {
    const int64_t bh = p / g.S, t = p % g.S, c = t / g.L, tau = t - c * g.L;
    const float* row = ll + ((bh * g.NC + c) * g.L + tau) * g.L;
    float s = 0.0f;
    for (int64_t sg = lane; sg <= tau; sg += 32) s += row[sg];
    const float* sv = saved + bh * g.W;
    if (finite_f(sv[sv_m(g) + c])) {
      const float* nc = sv + sv_n(g, c);
      const float bt = beta[p];
      for (int64_t j = lane; j < g.DK; j += 32) s += (bt * q[p * g.DK + j]) * nc[j];
    }
    return s;
  }
  XLSTM_MLSTM_HD void finish(int64_t p, float den) const {
    const int64_t bh = p / g.S, t = p % g.S;
    float* sv = saved + bh * g.W;
    const float iv = mm::norm_inv(den, sv[sv_mu(g) + t], g.eps, nullptr);
    sv[sv_den(g) + t] = den;
    inv[p] = iv;
    ib[p] = iv * beta[p];
  }
};

// dq += β ρ n_c (where a state enters the chunk) and dk += sα Λⁿ_{c+1}: a row per position, its lanes over j < DK.
struct Bf16GradExtras {
  Geo g;
  const float *saved, *beta, *rho, *alpha, *lam;
  float *dq, *dk;
  static int64_t rows(const Geo& g) { return g.BH * g.S; }
  XLSTM_MLSTM_HD void row(int64_t p, int lane) const {
    const int64_t bh = p / g.S, c = (p % g.S) / g.L;
    const float* sv = saved + bh * g.W;
    const float* ln = lam + (bh * g.NC + c) * state_elems(g) + g.DK * g.DV;
    float* dqp = dq + p * g.DK;
    float* dkp = dk + p * g.DK;
    const float br = beta[p] * rho[p], al = alpha[p];
    if (finite_f(sv[sv_m(g) + c])) {
      const float* nc = sv + sv_n(g, c);
      for (int64_t j = lane; j < g.DK; j += 32) dqp[j] += br * nc[j];
    }
    for (int64_t j = lane; j < g.DK; j += 32) dkp[j] += al * ln[j];
  }
};

// ---- executors ---------------------------------------------------------------------------------------------------

template <class F>
__global__ void __launch_bounds__(kThreads) bf16_items_kernel(F f, int64_t n) {
  XLSTM_GRID_STRIDE(i, n) f(i);
}
template <class F>
__global__ void __launch_bounds__(kThreads) bf16_rows_kernel(F f, int64_t n) {
  const int lane = threadIdx.x % 32;
  for (int64_t r = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; r < n;
       r += static_cast<int64_t>(kWarps) * gridDim.x)
    f.row(r, lane);
}
template <class F>
__global__ void __launch_bounds__(kThreads) bf16_warp_items_kernel(F f, int64_t n) {
  const int lane = threadIdx.x % 32;
  for (int64_t p = blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; p < n;
       p += static_cast<int64_t>(kWarps) * gridDim.x) {
    const float s = warp_sum_f(f.part(p, lane));
    if (lane == 0) f.finish(p, s);
  }
}

// Executors: bf16 picks the products' kernel (tensor cores with bf16 operands, or float32 on the SIMT cores: the
// composed float32 form).
struct DeviceExec {
  cudaStream_t st;
  const char* entry;
  bool bf16;
  template <class F>
  void items(int64_t n, const F& f) const {
    if (n <= 0) return;
    bf16_items_kernel<F><<<grid_for(n, kThreads), kThreads, 0, st>>>(f, n);
    launched(entry);
  }
  // a warp per row r < n: f.row(r, lane) for its 32 lanes
  template <class F>
  void rows(int64_t n, const F& f) const {
    if (n <= 0) return;
    bf16_rows_kernel<F><<<grid_for(n, kWarps), kThreads, 0, st>>>(f, n);
    launched(entry);
  }
  template <class F>
  void warp_items(int64_t n, const F& f) const {
    if (n <= 0) return;
    bf16_warp_items_kernel<F><<<grid_for(n, kWarps), kThreads, 0, st>>>(f, n);
    launched(entry);
  }
  void gemm(const GroupedGemm& G) const {
    if (bf16) gemm_bf16_grouped(G, st);
    else gemm_f32_grouped(G, st);
  }
  void states(const Bf16StateArgs& a) const {
    bf16_state_kernel<<<static_cast<unsigned>(std::min<int64_t>(Bf16StateTile::blocks(a.g), kMaxBlocks)), Bf16StateTile::THREADS, 0, st>>>(a);
    launched(entry);
  }
};

struct HostExec {
  bool bf16;
  bool round = true;  // bf16 products: false keeps the staged values unrounded
  template <class F>
  void items(int64_t n, const F& f) const {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
  template <class F>
  void rows(int64_t n, const F& f) const {
    for (int64_t r = 0; r < n; ++r)
      for (int lane = 0; lane < 32; ++lane) f.row(r, lane);
  }
  template <class F>
  void warp_items(int64_t n, const F& f) const {
    float v[32];
    for (int64_t p = 0; p < n; ++p) {
      for (int lane = 0; lane < 32; ++lane) v[lane] = f.part(p, lane);
      f.finish(p, rows::host_row_reduce<rows::SumOp>(v, 32));
    }
  }
  void gemm(const GroupedGemm& G) const {
    if (bf16) gemm_bf16_grouped_replay(G, round);
    else gemm_f32_grouped_replay(G);
  }
  void states(const Bf16StateArgs& a) const { bf16_state_replay(a, round); }
};

// ---- the products ------------------------------------------------------------------------------------------------

// fn(first chunk, chunks, length) over the runs of equal-length chunks: the full ones, then a shorter last one
template <class F>
void bf16_chunk_runs(const Geo& g, F fn) {
  const int64_t full = g.S / g.L, tail = g.S - full * g.L;
  if (full > 0) fn(int64_t(0), full, g.L);
  if (tail > 0) fn(full, int64_t(1), tail);
}

// Operands of a run from chunk c: position-major [bh][t][D] data (optionally scaled per position: along k, or along
// op(X)'s other index), the L x L scratch, and per-chunk slots (`slot` elements apart, `per_bh` apart per head).
inline GemmOperand pos_op(const Geo& g, const float* x, int64_t D, int64_t c, const float* scale = nullptr, bool scale_k = true) {
  GemmOperand o;
  o.p = x + c * g.L * D, o.ld = D, o.outer = g.S * D, o.inner = g.L * D;
  if (scale) o.scale = scale + c * g.L, o.s_outer = g.S, o.s_inner = g.L, o.scale_k = scale_k;
  return o;
}
inline GemmOperand ll_op(const Geo& g, const float* ll, int64_t c, const float* scale = nullptr) {
  GemmOperand o;
  o.p = ll + c * g.L * g.L, o.ld = g.L, o.outer = g.NC * g.L * g.L, o.inner = g.L * g.L;
  if (scale) o.scale = scale + c * g.L, o.s_outer = g.S, o.s_inner = g.L, o.scale_k = false;
  return o;
}
inline GemmOperand slot_op(const Geo& g, const float* base, int64_t slot, int64_t slot_elems, int64_t per_bh) {
  GemmOperand o;
  o.p = base + slot * slot_elems, o.ld = g.DV, o.outer = per_bh, o.inner = slot_elems;
  return o;
}

// One product of a grouped GEMM: op(A) (M x K) times op(B) (K x N)
struct Bf16Term {
  bool ta, tb;
  int64_t K;
  GemmOperand a, b;
};

// C = Σ over the terms (one or two) of op(A) op(B), for every head over `count` chunks
template <class Exec>
void bf16_gemm(const Exec& ex, const Geo& g, int64_t count, int64_t M, int64_t N, const GemmOperand& c,
               const Bf16Term& t0, const Bf16Term* t1 = nullptr) {
  GroupedGemm G;
  G.groups = g.BH, G.per_group = count, G.M = M, G.N = N;
  G.ta = t0.ta, G.tb = t0.tb, G.K = t0.K, G.a = t0.a, G.b = t0.b;
  if (t1) G.ta2 = t1->ta, G.tb2 = t1->tb, G.K2 = t1->K, G.a2 = t1->a, G.b2 = t1->b;
  G.c = const_cast<float*>(c.p), G.ldc = c.ld, G.c_outer = c.outer, G.c_inner = c.inner;
  ex.gemm(G);
}

// P (omega false) or Ω' of every chunk into ll: LL = Q Kᵀ or (inv ⊙ dH) Vᵀ, then the weights
template <class Exec>
void bf16_chunk_weights(const Exec& ex, const Geo& g, const float* a, const float* b, int64_t D, const float* a_scale,
                        const double* gw, const double* gp, const float* saved, const float* rho, float* ll, bool omega) {
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, l, l, ll_op(g, ll, c), Bf16Term{false, true, D, pos_op(g, a, D, c, a_scale, false), pos_op(g, b, D, c)});
  });
  ex.rows(Bf16Weights::rows(g), Bf16Weights{g, gw, gp, saved, rho, ll, omega});
}

struct Bf16FwdArgs {
  Geo g;
  const float *q, *k, *v, *alpha, *beta, *gamma, *scale, *c0;
  const double *gw, *gp;
  float *saved, *c_last, *h;
  float *ll, *inv, *ib;  // scratch: BH·NC·L·L, BH·S, BH·S
};

// The forward's C states by the bf16 state kernel (the composed float32 form keeps the float32 state-tile kernel).
template <class Exec>
void bf16_states(const Exec& ex, const Bf16FwdArgs& a) {
  ex.states(Bf16StateArgs{a.g, false, a.k, a.v, a.alpha, a.gamma, a.saved, a.c0, a.scale, a.saved, a.c_last, nullptr});
}

// The forward after the states: weights, normaliser, h.
template <class Exec>
void composed_h(const Exec& ex, const Bf16FwdArgs& a) {
  const Geo& g = a.g;
  const int64_t DKV = g.DK * g.DV;
  bf16_chunk_weights(ex, g, a.q, a.k, g.DK, nullptr, a.gw, a.gp, a.saved, nullptr, a.ll, false);
  ex.warp_items(g.BH * g.S, Bf16Den{g, a.q, a.ll, a.beta, a.saved, a.inv, a.ib});
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    const Bf16Term intra{false, false, l, ll_op(g, a.ll, c, a.inv), pos_op(g, a.v, g.DV, c)};
    const Bf16Term inter{false, false, g.DK, pos_op(g, a.q, g.DK, c, a.ib, false), slot_op(g, a.saved, c, DKV, g.W)};
    bf16_gemm(ex, g, n, l, g.DV, pos_op(g, a.h, g.DV, c), intra, &inter);
  });
}

struct Bf16BwdArgs {
  Geo g;
  const float *q, *k, *v, *dh, *saved, *alpha, *beta, *inv, *rho, *gamma, *dc_last;
  const double *gw, *gp;
  float *lam, *lam0, *dc0, *dq, *dk, *dv;
  float *ll, *ib;  // scratch: BH·NC·L·L, BH·S
};

// β·inv per position (the backward's scale of q in Λ and of dH in dq's inter-chunk term)
template <class Exec>
void composed_scales(const Exec& ex, const Bf16BwdArgs& a) {
  ex.items(a.g.BH * a.g.S, Bf16Product{a.beta, a.inv, a.ib});
}

// ---- the states as products and a scan (set_mlstm_states(1), opt-in until timed on a GPU) ---------------------------
// The walk (the state kernels above) keeps a state tile per block and goes through the chunks in order, one chunk's
// product after the other: 256 blocks at G2, each a chain of 128 dependent steps. Here every chunk's product comes
// first, all at once, as one grouped GEMM (acc_c = (s α ⊙ K_c)ᵀ V_c forward, (β inv ⊙ Q_c)ᵀ dH_c backward) written into
// the state slot the walk would fill from it; then StateScan, an item per (bh, state element), walks the chunks over
// those slots in place with the walk's own step (Bf16StateBlock::step), reading acc and writing the state: elementwise
// and memory-bound. The float32 composed form's forward states are the walk's bit for bit (the float32 grouped GEMM
// sums every element in k order with fmaf, as the float32 state tile does).
struct StateScan {
  Geo g;
  bool reverse;
  const float *gamma, *saved;  // γ per (bh, c); saved: m (backward)
  const float* init;           // c0 (forward) or dc_last (backward), may be null
  const float* scale;          // forward: c_last = scale[bh] · C_NC
  float* out;                  // forward: saved (slots 1..NC hold acc_0..acc_NC-1); backward: lam (slot c-1 holds acc_c)
  float *last, *extra;         // forward: c_last; backward: lam0 (holds acc_0), dc0 (may be null)
  XLSTM_MLSTM_HD void operator()(int64_t idx) const {
    const int64_t DKV = g.DK * g.DV, bh = idx / DKV, e = idx % DKV;
    if (!reverse) {
      float* sv = out + bh * g.W;
      float st = init ? init[bh * DKV + e] : 0.0f;
      sv[sv_C(g, 0) + e] = st;
      for (int64_t c = 0; c < g.NC; ++c) {
        float* slot = sv + sv_C(g, c + 1) + e;
        st = Bf16StateBlock::step(false, gamma[bh * g.NC + c], true, *slot, st);
        *slot = st;
      }
      if (last) last[bh * DKV + e] = scale[bh] * st;
      return;
    }
    const int64_t E = state_elems(g);
    const float* Ms = saved + bh * g.W + sv_m(g);
    float* lam = out + bh * g.NC * E + e;
    float st = init ? static_cast<float>(exp(static_cast<double>(Ms[g.NC]) - static_cast<double>(Ms[g.NC + 1]))) * init[bh * DKV + e] : 0.0f;
    lam[(g.NC - 1) * E] = st;
    for (int64_t c = g.NC - 1; c >= 0; --c) {
      float* slot = c >= 1 ? lam + (c - 1) * E : last + bh * E + e;
      st = Bf16StateBlock::step(true, gamma[bh * g.NC + c], finite_f(Ms[c]), *slot, st);
      *slot = st;
    }
    if (extra) extra[bh * DKV + e] = st;
  }
};

// The chunk products of the scan form: acc_c of every chunk into its slot (dest(c, n, l): the destination operand of
// the run of n chunks of length l from chunk c); a = rows (DK wide) scaled per position, b = rows (DV wide).
template <class Exec, class Dest>
void scan_products(const Exec& ex, const Geo& g, const float* a, const float* a_scale, const float* b, Dest dest) {
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, g.DK, g.DV, dest(c), Bf16Term{true, false, l, pos_op(g, a, g.DK, c, a_scale, true), pos_op(g, b, g.DV, c)});
  });
}

// The forward's C states (slots 0..NC of saved) and c_last by products and the scan.
template <class Exec>
void scan_states(const Exec& ex, const Bf16FwdArgs& a) {
  const Geo& g = a.g;
  const int64_t DKV = g.DK * g.DV;
  scan_products(ex, g, a.k, a.alpha, a.v, [&](int64_t c) { return slot_op(g, a.saved, c + 1, DKV, g.W); });
  ex.items(g.BH * DKV, StateScan{g, false, a.gamma, a.saved, a.c0, a.scale, a.saved, a.c_last, nullptr});
}

// The backward's Λᶜ (lam slots, lam0, dc0) by products and the scan: acc_c into lam slot c-1, acc_0 into lam0.
template <class Exec>
void scan_lambda(const Exec& ex, const Bf16BwdArgs& a) {
  const Geo& g = a.g;
  const int64_t E = state_elems(g);
  const auto dest = [&](int64_t c) {
    if (c >= 1) return slot_op(g, a.lam, c - 1, E, g.NC * E);
    GemmOperand o;
    o.p = a.lam0, o.ld = g.DV, o.outer = E, o.inner = 0;
    return o;
  };
  // chunk 0's product goes to lam0, the others' to lam slots: a run from chunk 0 is split off its first chunk
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    const auto run = [&](int64_t c0, int64_t count) {
      bf16_gemm(ex, g, count, g.DK, g.DV, dest(c0), Bf16Term{true, false, l, pos_op(g, a.q, g.DK, c0, a.ib, true), pos_op(g, a.dh, g.DV, c0)});
    };
    if (c == 0) {
      run(0, 1);
      if (n > 1) run(1, n - 1);
    } else {
      run(c, n);
    }
  });
  ex.items(g.BH * g.DK * g.DV, StateScan{g, true, a.gamma, a.saved, a.dc_last, nullptr, a.lam, a.lam0, a.dc0});
}

// Λᶜ of every chunk by the bf16 state kernel (before bwd_reduce; the n part is bwd_lambda_n's)
template <class Exec>
void bf16_lambda(const Exec& ex, const Bf16BwdArgs& a) {
  ex.states(Bf16StateArgs{a.g, true, a.q, a.dh, a.ib, a.gamma, a.saved, a.dc_last, nullptr, a.lam, a.lam0, a.dc0});
}

// dq, dk, dv (after Λ, bwd_lambda_n and composed_scales)
template <class Exec>
void composed_grads(const Exec& ex, const Bf16BwdArgs& a) {
  const Geo& g = a.g;
  const int64_t DKV = g.DK * g.DV, E = state_elems(g);
  bf16_chunk_weights(ex, g, a.dh, a.v, g.DV, a.inv, a.gw, a.gp, a.saved, a.rho, a.ll, true);
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    const Bf16Term dq_intra{false, false, l, ll_op(g, a.ll, c), pos_op(g, a.k, g.DK, c)};
    const Bf16Term dq_inter{false, true, g.DV, pos_op(g, a.dh, g.DV, c, a.ib, false), slot_op(g, a.saved, c, DKV, g.W)};
    bf16_gemm(ex, g, n, l, g.DK, pos_op(g, a.dq, g.DK, c), dq_intra, &dq_inter);
    const Bf16Term dk_intra{true, false, l, ll_op(g, a.ll, c), pos_op(g, a.q, g.DK, c)};
    const Bf16Term dk_inter{false, true, g.DV, pos_op(g, a.v, g.DV, c, a.alpha, false), slot_op(g, a.lam, c, E, g.NC * E)};
    bf16_gemm(ex, g, n, l, g.DK, pos_op(g, a.dk, g.DK, c), dk_intra, &dk_inter);
  });
  ex.rows(Bf16GradExtras::rows(g), Bf16GradExtras{g, a.saved, a.beta, a.rho, a.alpha, a.lam, a.dq, a.dk});
  bf16_chunk_weights(ex, g, a.q, a.k, g.DK, nullptr, a.gw, a.gp, a.saved, nullptr, a.ll, false);
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    const Bf16Term intra{true, false, l, ll_op(g, a.ll, c), pos_op(g, a.dh, g.DV, c, a.inv)};
    const Bf16Term inter{false, false, g.DK, pos_op(g, a.k, g.DK, c, a.alpha, false), slot_op(g, a.lam, c, E, g.NC * E)};
    bf16_gemm(ex, g, n, l, g.DV, pos_op(g, a.dv, g.DV, c), intra, &inter);
  });
}
