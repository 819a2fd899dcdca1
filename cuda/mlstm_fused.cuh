// The bf16 chunkwise form's intra-chunk parts fused per tile (cuda::set_mlstm_intra(1), opt-in until timed on a GPU):
// TFLA's "parallel" kernels, forward and backward. The composed bf16 form (mlstm_bf16.cuh) computes each chunk's L x L
// matrix (S = Q Kᵀ, or (inv ⊙ dH) Vᵀ) as a grouped GEMM into a float32 scratch, the weights in place, and the outputs
// as GEMMs over it: the scratch written and read three times per use, and at long chunks the L x L products mostly
// spent above the causal diagonal. Here one kernel per output (h; dq, dk, dv), a block per (bh, chunk c, 64-row tile
// of the chunk's positions, 128-column tile of the output), does it all on chip, tiled along the sequence within the
// chunk, so the chunk may be long (fewer inter-chunk states: the state traffic is what bounds G2 at chunk 64):
//   inter    acc = (a ⊙ A_rows) St            (St the chunk's state, maybe transposed; depth in slices of 32)
//   per tile of 64 positions on the causal side of the rows (never a tile wholly outside the triangle):
//     S      X_rows Y_tileᵀ                   (fragments -> Ss, float32)
//     W      the weight of (τ, σ) from S      (a warp per row; W as bf16 into Ps)
//     acc    += W Z_tile                      (Z in slices of 32 positions)
//   out      the epilogue (h: inv ⊙ acc with the normaliser from the row sums; dq / dk: + the rank-1 n terms)
// The four outputs (E = exp(w_σ − M_τ), 0 unless σ ≤ τ; ib = β inv; sα, β, inv, ρ per position as mlstm_bf16.cuh):
//   mode  rows  inter              X · Y     W                    Z           epilogue
//   H     τ     (β ⊙ Q) C_c        q · k     P = s S E            V           ÷ (max(|Σ P + β q·n_c|, e^−μ) + ε), den saved
//   DQ    τ     (ib ⊙ dH) C_cᵀ     dh · v    Ω' = s (inv S + ρ) E K           + β ρ n_c (where a state enters)
//   DK    σ     (sα ⊙ V) Λ_{c+1}ᵀ  v · dh    Ω'ᵀ                  Q           + sα Λⁿ_{c+1}
//   DV    σ     (sα ⊙ K) Λ_{c+1}   k · q     Pᵀ                   inv ⊙ dH
// Rows τ walk the key tiles from 0 to their diagonal; rows σ the query tiles from their diagonal to the chunk's end.
// The weight matrix is always computed in the block's row orientation (DK's S is V_σ · dH_τ), so every mode runs the
// same products. Tensor cores take bf16 operands (rounded as staged, per-position scales applied before rounding),
// float32 sums; the weights, row sums, normaliser and epilogues are float32 (the exponent's argument in double), as
// the composed form. The rounding differs from the composed form only where inv is applied (after the sums, in
// float32, for h, dq and dk).
// Index maps and staged values are __host__ __device__ (FusedBlock), so the host replay (fused_replay) and
// mlstm_coverage run them for every block and thread; only the 16 x 16 x 16 products are the replay's own.
// Included into mlstm.cu's anonymous namespace after mlstm_bf16.cuh.

struct FusedTile {
  static constexpr int BQ = 64, BKV = 64, BV = 128, BK = 32, THREADS = 256, WARPS = THREADS / 32;
  // shared row lengths: bf16 X / Y slices (LDQ), state / Z slices (LDB), W (LDP); float S and the output (LDS)
  static constexpr int LDQ = BK + 8, LDB = BV + 8, LDP = BKV + 8, LDS = BKV + 4;
  static constexpr int QK_LOADS = BQ * BK / THREADS / 4;          // vectors of 4 per thread per X or Y slice
  static constexpr int B_LOADS = BK * BV / THREADS / 4;           // per state or Z slice
  static constexpr int OUT_STORES = BQ * (BV / 2) / THREADS / 4;  // per half of the output tile
  static constexpr int ROWS_PER_WARP = BQ / WARPS;
  static_assert(BQ == BKV, "row tiles and the tiles they walk share their diagonal tiles");
  static_assert(LDQ % 8 == 0 && LDB % 8 == 0 && LDP % 8 == 0 && LDS % 4 == 0, "wmma leading dimensions: 16-byte multiples");
  static_assert((16 * LDQ * 2) % 32 == 0 && (16 * LDB * 2) % 32 == 0 && (16 * LDP * 2) % 32 == 0 && (16 * LDS * 4) % 32 == 0,
                "fragment rows 32-byte aligned");
  static_assert(WARPS == 8 && BQ == 2 * 32 && BV == 4 * 32 && BKV == 4 * 16, "warps: 2 x 4 of 32 x 32 (output), of 32 x 16 (S)");
  static_assert(BK % 16 == 0 && BKV % BK == 0 && BQ * BK % (4 * THREADS) == 0 && BK * BV % (4 * THREADS) == 0 &&
                    BQ * (BV / 2) % (4 * THREADS) == 0 && BKV % 32 == 0 && BQ % WARPS == 0,
                "slices, rows and output halves split evenly");
  XLSTM_MLSTM_HD static int64_t q_tiles(const Geo& g) { return (g.L + BQ - 1) / BQ; }
  // vector v of thread tid in a slice `cols` wide staged (or written) 4 columns at a time: row r, first column col
  XLSTM_MLSTM_HD static void vec(int tid, int v, int cols, int* r, int* col) {
    const int idx = tid + v * THREADS;
    *r = idx / (cols / 4);
    *col = (idx % (cols / 4)) * 4;
  }
  // a transposed state slice (BK deep x BV columns from a state read along its rows): vector v of thread tid holds
  // depths kk .. kk + 3 of column cc (4 consecutive floats of one state row: 8 threads read 128 contiguous bytes)
  XLSTM_MLSTM_HD static void vec_t(int tid, int v, int* kk, int* cc) {
    const int idx = tid + v * THREADS;
    *cc = idx / (BK / 4);
    *kk = (idx % (BK / 4)) * 4;
  }
  // warp w's fragments: of the output tile (2 x 2 of 16 x 16 from (r0, c0)) and of S (2 x 1)
  XLSTM_MLSTM_HD static void out_origin(int w, int* r0, int* c0) {
    *r0 = (w / 4) * 32;
    *c0 = (w % 4) * 32;
  }
  XLSTM_MLSTM_HD static void s_origin(int w, int* r0, int* c0) {
    *r0 = (w / 4) * 32;
    *c0 = (w % 4) * 16;
  }
};

enum class Fused { H, DQ, DK, DV };

struct FusedArgs {
  Geo g;
  const float *q, *k, *v, *dh;                     // dh: the backward's only
  const float *beta, *alpha, *inv, *rho, *ib;      // per position (the forward: beta only)
  const double *gw, *gp;                           // w and its prefix max per position (gates_chunk)
  float* saved;                                    // C_c, n_c, m, μ read; the forward writes den
  const float* lam;                                // the backward's Λ slots ([bh][c] state_elems apart): Λ_{c+1}
  float* out;                                      // h, dq, dk or dv
};

template <Fused M>
struct FusedBlock {
  using T = FusedTile;
  static constexpr bool kRowsQ = M == Fused::H || M == Fused::DQ;  // rows τ (else σ)
  static constexpr bool kOmega = M == Fused::DQ || M == Fused::DK;  // weights Ω' (else P)
  static constexpr bool kTransposed = M == Fused::DQ || M == Fused::DK;  // the state read transposed
  const FusedArgs& a;
  int64_t bh, c;
  int t0, xt, x0, len;  // within the chunk / the head: int, so the per-element index math stays 32-bit
  bool has;             // a state enters the chunk (m_c finite)
  XLSTM_MLSTM_HD static int64_t out_width(const Geo& g) { return M == Fused::H || M == Fused::DV ? g.DV : g.DK; }
  XLSTM_MLSTM_HD static int64_t x_tiles(const Geo& g) { return (out_width(g) + T::BV - 1) / T::BV; }
  XLSTM_MLSTM_HD static int64_t blocks(const Geo& g) { return g.BH * g.NC * T::q_tiles(g) * x_tiles(g); }
  XLSTM_MLSTM_HD FusedBlock(const FusedArgs& args, int64_t bid) : a(args) {
    const Geo& g = a.g;
    const int64_t nx = x_tiles(g), nq = T::q_tiles(g);
    xt = static_cast<int>(bid % nx);
    x0 = xt * T::BV;
    bid /= nx;
    t0 = static_cast<int>(bid % nq) * T::BQ;
    bid /= nq;
    c = bid % g.NC;
    bh = bid / g.NC;
    len = static_cast<int>(chunk_len(g, c));
    has = finite_f(a.saved[bh * g.W + sv_m(g) + c]);
  }
  // whether the block has rows (a short last chunk leaves its later row tiles empty: the whole block skips)
  XLSTM_MLSTM_HD bool active() const { return t0 < len; }
  XLSTM_MLSTM_HD int64_t pos(int64_t t) const { return bh * a.g.S + c * a.g.L + t; }
  // the tiles the rows walk: key tiles 0 .. the rows' diagonal (rows τ), query tiles the diagonal .. the chunk's end
  XLSTM_MLSTM_HD int first_tile() const { return kRowsQ ? 0 : t0 / T::BKV; }
  XLSTM_MLSTM_HD int end_tile() const {
    const int last = kRowsQ ? (t0 + T::BQ < len ? t0 + T::BQ : len) : len;
    return (last + T::BKV - 1) / T::BKV;
  }
  // x[pos(t)][d0 .. d0 + 3] (rows D wide), times scale[pos] where given; 0 past the chunk or the row
  XLSTM_MLSTM_HD void rows4(const float* x, int64_t D, int t, int64_t d0, const float* scale, float* out) const {
    if (t >= len) {
      for (int j = 0; j < 4; ++j) out[j] = 0.0f;
      return;
    }
    const int64_t p = pos(t);
    if (d0 + 4 <= D && aligned_float4(x, D)) load_float4(x + p * D + d0, out);
    else
      for (int j = 0; j < 4; ++j) out[j] = d0 + j < D ? x[p * D + d0 + j] : 0.0f;
    if (scale) {
      const float sc = scale[p];
      for (int j = 0; j < 4; ++j) out[j] = sc * out[j];
    }
  }
  // ---- the inter-chunk term: (a ⊙ A_rows) St, over inter_depth() ----
  XLSTM_MLSTM_HD bool inter_on() const { return kRowsQ ? has : true; }
  XLSTM_MLSTM_HD int64_t inter_depth() const { return M == Fused::H || M == Fused::DV ? a.g.DK : a.g.DV; }
  XLSTM_MLSTM_HD void inter_a4(int64_t j0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BK, &r, &col);
    const Geo& g = a.g;
    if (M == Fused::H) rows4(a.q, g.DK, t0 + r, j0 + col, a.beta, out);
    else if (M == Fused::DQ) rows4(a.dh, g.DV, t0 + r, j0 + col, a.ib, out);
    else if (M == Fused::DK) rows4(a.v, g.DV, t0 + r, j0 + col, a.alpha, out);
    else rows4(a.k, g.DK, t0 + r, j0 + col, a.alpha, out);
  }
  // the chunk's state (DK x DV, rows DV long): C_c (H, DQ) or Λ_{c+1} (DK, DV)
  XLSTM_MLSTM_HD const float* state() const {
    const Geo& g = a.g;
    return M == Fused::H || M == Fused::DQ ? a.saved + bh * g.W + sv_C(g, c) : a.lam + (bh * g.NC + c) * state_elems(g);
  }
  XLSTM_MLSTM_HD bool state_aligned() const {
    const Geo& g = a.g;
    return aligned_float4(M == Fused::H || M == Fused::DQ ? a.saved + bh * g.W : a.lam + (bh * g.NC + c) * state_elems(g), g.DV);
  }
  // vector v of thread tid of the state slice at depth j0: *kk, *cc its slot; the 4 values run along the columns
  // (St[j0 + kk][x0 + cc ..]) or, transposed, along the depth (St[x0 + cc][j0 + kk ..]: slots (kk .. kk + 3, cc))
  XLSTM_MLSTM_HD void inter_b4(int64_t j0, int tid, int v, int* kk, int* cc, float* out) const {
    const Geo& g = a.g;
    const float* st = state();
    if (!kTransposed) {
      T::vec(tid, v, T::BV, kk, cc);
      const int64_t j = j0 + *kk, x = x0 + *cc;
      if (j < g.DK && x + 4 <= g.DV && state_aligned()) return load_float4(st + j * g.DV + x, out);
      for (int e = 0; e < 4; ++e) out[e] = j < g.DK && x + e < g.DV ? st[j * g.DV + x + e] : 0.0f;
      return;
    }
    T::vec_t(tid, v, kk, cc);
    const int64_t j = x0 + *cc, x = j0 + *kk;
    if (j < g.DK && x + 4 <= g.DV && state_aligned()) return load_float4(st + j * g.DV + x, out);
    for (int e = 0; e < 4; ++e) out[e] = j < g.DK && x + e < g.DV ? st[j * g.DV + x + e] : 0.0f;
  }
  // ---- the weights' product X_rows Y_tileᵀ over w_depth() ----
  XLSTM_MLSTM_HD int64_t w_depth() const { return M == Fused::H || M == Fused::DV ? a.g.DK : a.g.DV; }
  XLSTM_MLSTM_HD void xy4(bool tile, int u0, int64_t j0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BK, &r, &col);
    const Geo& g = a.g;
    const int t = tile ? u0 + r : t0 + r;
    // X, Y: H q, k; DQ dh, v; DK v, dh; DV k, q
    const bool first = tile == (M == Fused::DK || M == Fused::DV);  // the operand q / dh (else k / v)
    if (M == Fused::H || M == Fused::DV) rows4(first ? a.q : a.k, g.DK, t, j0 + col, nullptr, out);
    else rows4(first ? a.dh : a.v, g.DV, t, j0 + col, nullptr, out);
  }
  // Z rows from tile position s0, the block's output columns: V (H), K (DQ), Q (DK), inv ⊙ dH (DV)
  XLSTM_MLSTM_HD void z4(int s0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BV, &r, &col);
    const Geo& g = a.g;
    if (M == Fused::H) rows4(a.v, g.DV, s0 + r, x0 + col, nullptr, out);
    else if (M == Fused::DQ) rows4(a.k, g.DK, s0 + r, x0 + col, nullptr, out);
    else if (M == Fused::DK) rows4(a.q, g.DK, s0 + r, x0 + col, nullptr, out);
    else rows4(a.dh, g.DV, s0 + r, x0 + col, a.inv, out);
  }
  // ---- per-position constants: the query side's M_τ, inv_τ, ρ_τ and the key side's w_σ (0 past the chunk) ----
  XLSTM_MLSTM_HD void tau_consts(int t, double* Mt, float* it, float* rt) const {
    *Mt = 0.0, *it = 0.0f, *rt = 0.0f;
    if (t >= len) return;
    const int64_t p = pos(t);
    *Mt = row_M(has, a.saved[bh * a.g.W + sv_m(a.g) + c], a.gp[p]);
    if (kOmega) *it = a.inv[p], *rt = a.rho[p];
  }
  XLSTM_MLSTM_HD double sigma_w(int t) const { return t < len ? a.gw[pos(t)] : 0.0; }
  // W of block row r and tile position u0 + s from S (the τ side's constants and the σ side's w passed in)
  XLSTM_MLSTM_HD float weight(int r, int u0, int s, float S, double Mt, float it, float rt, double ws) const {
    const int tau = kRowsQ ? t0 + r : u0 + s, sig = kRowsQ ? u0 + s : t0 + r;
    if (tau >= len || sig > tau) return 0.0f;
    const float ex = fm_exp(static_cast<float>(ws - Mt));
    return kOmega ? a.g.s * ((it * S + rt) * ex) : (a.g.s * S) * ex;
  }
  // ---- epilogues ----
  // H: lane's part of β q·n_c for row r (0 where no state enters)
  XLSTM_MLSTM_HD float qn_part(int r, int lane) const {
    const Geo& g = a.g;
    if (!has || t0 + r >= len) return 0.0f;
    const int64_t p = pos(t0 + r);
    const float* nc = a.saved + bh * g.W + sv_n(g, c);
    const float bt = a.beta[p];
    float s = 0.0f;
    for (int64_t j = lane; j < g.DK; j += 32) s += (bt * a.q[p * g.DK + j]) * nc[j];
    return s;
  }
  // H: row r's normaliser from its den: inv (0 past the chunk); den saved by the first column tile
  XLSTM_MLSTM_HD float finish_row(int r, float den) const {
    const Geo& g = a.g;
    if (t0 + r >= len) return 0.0f;
    const int64_t t = c * g.L + t0 + r;
    float* sv = a.saved + bh * g.W;
    if (xt == 0) sv[sv_den(g) + t] = den;
    return mm::norm_inv(den, sv[sv_mu(g) + t], g.eps, nullptr);
  }
  XLSTM_MLSTM_HD int64_t den_index(int r) const { return t0 + r < len && xt == 0 ? bh * a.g.W + sv_den(a.g) + c * a.g.L + t0 + r : -1; }
  // the output of row r, tile column col from the accumulated y (scale: H's inv of the row): the rank-1 n terms of
  // dq (β ρ n_c where a state enters) and dk (sα Λⁿ_{c+1})
  XLSTM_MLSTM_HD float finish(int r, int col, float y, float scale) const {
    const Geo& g = a.g;
    if (M == Fused::H) return scale * y;
    if (M == Fused::DV || t0 + r >= len || x0 + col >= g.DK) return y;
    const int64_t p = pos(t0 + r), j = x0 + col;
    if (M == Fused::DQ) return has ? y + (a.beta[p] * a.rho[p]) * a.saved[bh * g.W + sv_n(g, c) + j] : y;
    return y + a.alpha[p] * a.lam[(bh * g.NC + c) * state_elems(g) + g.DK * g.DV + j];
  }
  // index into the output of row r, tile column col (-1 outside the chunk or the row)
  XLSTM_MLSTM_HD int64_t out_index(int r, int col) const {
    const int64_t D = out_width(a.g);
    return t0 + r < len && x0 + col < D ? pos(t0 + r) * D + x0 + col : -1;
  }
  // the output of row r, tile columns col .. col + 3: one 16-byte store where all four lie inside, 16-byte aligned
  XLSTM_MLSTM_HD void write4(int r, int col, const float* v) const {
    const int64_t i0 = out_index(r, col);
    if (i0 >= 0 && out_index(r, col + 3) >= 0 && (reinterpret_cast<uintptr_t>(a.out + i0) & 15) == 0) return store_float4(a.out + i0, v);
    for (int e = 0; e < 4; ++e) {
      const int64_t i = out_index(r, col + e);
      if (i >= 0) a.out[i] = v[e];
    }
  }
};

template <Fused M>
__global__ void __launch_bounds__(FusedTile::THREADS, 2) mlstm_fused_kernel(FusedArgs A) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using T = FusedTile;
  using B = FusedBlock<M>;
  namespace wmma = nvcuda::wmma;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  __shared__ __align__(32) __nv_bfloat16 Xs[T::BQ][T::LDQ];
  __shared__ __align__(32) __nv_bfloat16 Ys[T::BKV][T::LDQ];
  __shared__ __align__(32) __nv_bfloat16 Bs[T::BK][T::LDB];
  __shared__ __align__(32) __nv_bfloat16 Ps[T::BQ][T::LDP];
  __shared__ __align__(32) float Ss[T::BQ][T::LDS];
  __shared__ double Mt[T::BQ], Ws[T::BKV];    // M_τ, w_σ of the block's rows or of the tile's positions
  __shared__ float It[T::BQ], Rt[T::BQ];      // inv_τ, ρ_τ (Ω' modes)
  __shared__ float Rs[T::BQ], Iv[T::BQ];      // H: row sums, inv
  const int tid = threadIdx.x, w = tid / 32, lane = tid % 32;
  int wr, wc, sr, sc;
  T::out_origin(w, &wr, &wc);
  T::s_origin(w, &sr, &sc);
  const Geo& g = A.g;
  for (int64_t bid = blockIdx.x; bid < B::blocks(g); bid += gridDim.x) {
    const B b(A, bid);
    if (!b.active()) continue;
    // the block side's constants: the query side (rows τ) or the key side (rows σ)
    if (tid < T::BQ) {
      if (B::kRowsQ) b.tau_consts(b.t0 + tid, &Mt[tid], &It[tid], &Rt[tid]);
      else Ws[tid] = b.sigma_w(b.t0 + tid);
      Rs[tid] = 0.0f;
    }
    Acc acc[2][2];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    // acc += (As rows x BK) · Bs (BK x BV): the output tile's product of one staged slice
    auto mma_out = [&](const __nv_bfloat16* As, int lda) {
#pragma unroll
      for (int kk = 0; kk < T::BK; kk += 16) {
        FragA fa[2];
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wr + 16 * i) * lda + kk, lda);
        for (int j = 0; j < 2; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
          wmma::load_matrix_sync(fb, &Bs[kk][wc + 16 * j], T::LDB);
          for (int i = 0; i < 2; ++i) wmma::mma_sync(acc[i][j], fa[i], fb, acc[i][j]);
        }
      }
    };
    float x[4];
    int r, col;
    if (b.inter_on()) {
      for (int64_t j0 = 0; j0 < b.inter_depth(); j0 += T::BK) {
#pragma unroll
        for (int v = 0; v < T::QK_LOADS; ++v) {
          b.inter_a4(j0, tid, v, x);
          T::vec(tid, v, T::BK, &r, &col);
          store_bf16x4(&Xs[r][col], x);
        }
#pragma unroll 1  // unrolled, sm_80 spills (128 registers: acc and S both live in fragments)
        for (int v = 0; v < T::B_LOADS; ++v) {
          b.inter_b4(j0, tid, v, &r, &col, x);
          if (B::kTransposed)
            for (int e = 0; e < 4; ++e) Bs[r + e][col] = __float2bfloat16_rn(x[e]);
          else store_bf16x4(&Bs[r][col], x);
        }
        __syncthreads();
        mma_out(&Xs[0][0], T::LDQ);
        __syncthreads();
      }
    }
    for (int u = b.first_tile(); u < b.end_tile(); ++u) {
      const int u0 = u * T::BKV;
      if (tid < T::BKV) {
        if (B::kRowsQ) Ws[tid] = b.sigma_w(u0 + tid);
        else b.tau_consts(u0 + tid, &Mt[tid], &It[tid], &Rt[tid]);
      }
      Acc s[2];
      for (int i = 0; i < 2; ++i) wmma::fill_fragment(s[i], 0.0f);
      for (int64_t j0 = 0; j0 < b.w_depth(); j0 += T::BK) {
#pragma unroll
        for (int v = 0; v < T::QK_LOADS; ++v) {
          T::vec(tid, v, T::BK, &r, &col);
          b.xy4(false, u0, j0, tid, v, x);
          store_bf16x4(&Xs[r][col], x);
          b.xy4(true, u0, j0, tid, v, x);
          store_bf16x4(&Ys[r][col], x);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < T::BK; kk += 16) {
          // op(B)[j][s] = Ys[s][j]: column-major with leading dimension LDQ
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
          wmma::load_matrix_sync(fb, &Ys[sc][kk], T::LDQ);
          for (int i = 0; i < 2; ++i) {
            FragA fa;
            wmma::load_matrix_sync(fa, &Xs[sr + 16 * i][kk], T::LDQ);
            wmma::mma_sync(s[i], fa, fb, s[i]);
          }
        }
        __syncthreads();
      }
      for (int i = 0; i < 2; ++i) wmma::store_matrix_sync(&Ss[sr + 16 * i][sc], s[i], T::LDS, wmma::mem_row_major);
      __syncthreads();
      // the weights, a warp per row: W as bf16 into Ps (H: the row's sum of the float P)
      for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
        const int rr = w * T::ROWS_PER_WARP + i;
        float part = 0.0f;
        for (int s2 = lane; s2 < T::BKV; s2 += 32) {
          const int ti = B::kRowsQ ? rr : s2, si = B::kRowsQ ? s2 : rr;
          const float p = b.weight(rr, u0, s2, Ss[rr][s2], Mt[ti], It[ti], Rt[ti], Ws[si]);
          Ps[rr][s2] = __float2bfloat16_rn(p);
          part += p;
        }
        if (M == Fused::H) {
          part = warp_sum_f(part);
          if (lane == 0) Rs[rr] += part;
        }
      }
      __syncthreads();
      for (int s0 = 0; s0 < T::BKV; s0 += T::BK) {
#pragma unroll 1  // as above
        for (int v = 0; v < T::B_LOADS; ++v) {
          b.z4(u0 + s0, tid, v, x);
          T::vec(tid, v, T::BV, &r, &col);
          store_bf16x4(&Bs[r][col], x);
        }
        __syncthreads();
        mma_out(&Ps[0][s0], T::LDP);
        __syncthreads();
      }
    }
    if (M == Fused::H) {  // the normaliser, a warp per row
      for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
        const int rr = w * T::ROWS_PER_WARP + i;
        const float part = warp_sum_f(b.qn_part(rr, lane));
        if (lane == 0) Iv[rr] = b.finish_row(rr, Rs[rr] + part);
      }
      __syncthreads();
    }
    // the output through Ss, half the tile's columns at a time
    for (int hh = 0; hh < 2; ++hh) {
      if (wc / (T::BV / 2) == hh)
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&Ss[wr + 16 * i][wc - hh * (T::BV / 2) + 16 * j], acc[i][j], T::LDS, wmma::mem_row_major);
      __syncthreads();
#pragma unroll 1  // unrolled, H spills on sm_80
      for (int v = 0; v < T::OUT_STORES; ++v) {
        T::vec(tid, v, T::BV / 2, &r, &col);
        const float4 y = *reinterpret_cast<const float4*>(&Ss[r][col]);
        const float yv[4] = {y.x, y.y, y.z, y.w}, sc4 = M == Fused::H ? Iv[r] : 1.0f;
        float o[4];
        for (int e = 0; e < 4; ++e) o[e] = b.finish(r, hh * (T::BV / 2) + col + e, yv[e], sc4);
        b.write4(r, hh * (T::BV / 2) + col, o);
      }
      __syncthreads();
    }
  }
#endif
}

// Host replay of mlstm_fused_kernel<M>: every block in turn, each phase for all threads by the kernel's own maps and
// values, each product summed per element in depth order (float32 sums of the rounded operands; `round` false keeps
// them unrounded), warp sums by the shuffle butterfly; shared memory NaN at each block's start and the accumulators
// NaN outside the warps' fragments (so a gap in their cover shows up).
template <Fused M>
void fused_replay(const FusedArgs& A, bool round) {
  using T = FusedTile;
  using B = FusedBlock<M>;
  const Geo& g = A.g;
  auto rnd = [&](float v) { return round ? bf16_math::widen(bf16_math::round(v)) : v; };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> Xs(T::BQ * T::BK), Ys(T::BKV * T::BK), Bs(T::BK * T::BV), Ps(T::BQ * T::BKV), Ss(T::BQ * T::BKV),
      acc(T::BQ * T::BV), sacc(T::BQ * T::BKV), It(T::BQ), Rt(T::BQ), Rs(T::BQ), Iv(T::BQ);
  std::vector<double> Mt(T::BQ), Ws(T::BKV);
  auto fill = [](auto& v, auto x) { std::fill(v.begin(), v.end(), x); };
  float lanes[32], x[4];
  // the warps' fragments of a product zeroed (the rest NaN): out (2 x 2 from out_origin) or S (2 x 1 from s_origin)
  auto zero_cover = [&](std::vector<float>& m, int cols, bool s_tile) {
    fill(m, nan);
    for (int w = 0; w < T::WARPS; ++w) {
      int r0, c0;
      if (s_tile) T::s_origin(w, &r0, &c0);
      else T::out_origin(w, &r0, &c0);
      for (int r = r0; r < r0 + 32; ++r)
        for (int cc = c0; cc < c0 + (s_tile ? 16 : 32); ++cc) m[r * cols + cc] = 0.0f;
    }
  };
  // acc[r][x] += Σ_kk a(r, kk) Bs[kk][x] over one slice
  auto mma_out = [&](auto a_at) {
    for (int r = 0; r < T::BQ; ++r)
      for (int cc = 0; cc < T::BV; ++cc) {
        float v = acc[r * T::BV + cc];
        for (int kk = 0; kk < T::BK; ++kk) v = std::fma(a_at(r, kk), Bs[kk * T::BV + cc], v);
        acc[r * T::BV + cc] = v;
      }
  };
  auto stage = [&](std::vector<float>& dst, int cols, int loads, auto vals) {
    for (int tid = 0; tid < T::THREADS; ++tid)
      for (int v = 0; v < loads; ++v) {
        int r, col;
        vals(tid, v, x);
        T::vec(tid, v, cols, &r, &col);
        for (int e = 0; e < 4; ++e) dst[r * cols + col + e] = rnd(x[e]);
      }
  };
  for (int64_t bid = 0; bid < B::blocks(g); ++bid) {
    const B b(A, bid);
    if (!b.active()) continue;
    fill(Xs, nan), fill(Ys, nan), fill(Bs, nan), fill(Ps, nan), fill(Ss, nan), fill(Iv, nan), fill(It, nan), fill(Rt, nan);
    fill(Mt, std::nan("")), fill(Ws, std::nan(""));
    for (int r = 0; r < T::BQ; ++r) {
      if (B::kRowsQ) b.tau_consts(b.t0 + r, &Mt[r], &It[r], &Rt[r]);
      else Ws[r] = b.sigma_w(b.t0 + r);
      Rs[r] = 0.0f;
    }
    zero_cover(acc, T::BV, false);
    if (b.inter_on()) {
      for (int64_t j0 = 0; j0 < b.inter_depth(); j0 += T::BK) {
        stage(Xs, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.inter_a4(j0, tid, v, o); });
        for (int tid = 0; tid < T::THREADS; ++tid)
          for (int v = 0; v < T::B_LOADS; ++v) {
            int kk, cc;
            b.inter_b4(j0, tid, v, &kk, &cc, x);
            for (int e = 0; e < 4; ++e) {
              if (B::kTransposed) Bs[(kk + e) * T::BV + cc] = rnd(x[e]);
              else Bs[kk * T::BV + cc + e] = rnd(x[e]);
            }
          }
        mma_out([&](int r, int kk) { return Xs[r * T::BK + kk]; });
      }
    }
    for (int u = b.first_tile(); u < b.end_tile(); ++u) {
      const int u0 = u * T::BKV;
      for (int s = 0; s < T::BKV; ++s) {
        if (B::kRowsQ) Ws[s] = b.sigma_w(u0 + s);
        else b.tau_consts(u0 + s, &Mt[s], &It[s], &Rt[s]);
      }
      zero_cover(sacc, T::BKV, true);
      for (int64_t j0 = 0; j0 < b.w_depth(); j0 += T::BK) {
        stage(Xs, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.xy4(false, u0, j0, tid, v, o); });
        stage(Ys, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.xy4(true, u0, j0, tid, v, o); });
        for (int r = 0; r < T::BQ; ++r)
          for (int s = 0; s < T::BKV; ++s) {
            float v = sacc[r * T::BKV + s];
            for (int kk = 0; kk < T::BK; ++kk) v = std::fma(Xs[r * T::BK + kk], Ys[s * T::BK + kk], v);
            sacc[r * T::BKV + s] = v;
          }
      }
      Ss = sacc;
      for (int r = 0; r < T::BQ; ++r) {
        for (int lane = 0; lane < 32; ++lane) {
          float part = 0.0f;
          for (int s2 = lane; s2 < T::BKV; s2 += 32) {
            const int ti = B::kRowsQ ? r : s2, si = B::kRowsQ ? s2 : r;
            const float p = b.weight(r, u0, s2, Ss[r * T::BKV + s2], Mt[ti], It[ti], Rt[ti], Ws[si]);
            Ps[r * T::BKV + s2] = rnd(p);
            part += p;
          }
          lanes[lane] = part;
        }
        if (M == Fused::H) Rs[r] += rows::host_row_reduce<rows::SumOp>(lanes, 32);
      }
      for (int s0 = 0; s0 < T::BKV; s0 += T::BK) {
        stage(Bs, T::BV, T::B_LOADS, [&](int tid, int v, float* o) { b.z4(u0 + s0, tid, v, o); });
        mma_out([&](int r, int kk) { return Ps[r * T::BKV + s0 + kk]; });
      }
    }
    if (M == Fused::H)
      for (int r = 0; r < T::BQ; ++r) {
        for (int lane = 0; lane < 32; ++lane) lanes[lane] = b.qn_part(r, lane);
        Iv[r] = b.finish_row(r, Rs[r] + rows::host_row_reduce<rows::SumOp>(lanes, 32));
      }
    for (int hh = 0; hh < 2; ++hh) {
      fill(Ss, nan);
      for (int r = 0; r < T::BQ; ++r)
        for (int cc = 0; cc < T::BV / 2; ++cc) Ss[r * T::BKV + cc] = acc[r * T::BV + hh * (T::BV / 2) + cc];
      for (int tid = 0; tid < T::THREADS; ++tid)
        for (int v = 0; v < T::OUT_STORES; ++v) {
          int r, col;
          T::vec(tid, v, T::BV / 2, &r, &col);
          float o[4];
          for (int e = 0; e < 4; ++e) o[e] = b.finish(r, hh * (T::BV / 2) + col + e, Ss[r * T::BKV + col + e], M == Fused::H ? Iv[r] : 1.0f);
          b.write4(r, hh * (T::BV / 2) + col, o);
        }
    }
  }
}

// Which writes a fused launch makes, as mlstm_coverage counts them: the output (its index) and H's den (index into
// saved); a tile walked with no causal pair of a row and a position (work wasted), or a tile with one not walked,
// reported as hit_out(-1). saved_probe: m of every chunk finite (the blocks' `has`).
template <Fused M, class HitOut, class HitDen>
void fused_cover(const Geo& g, float* saved_probe, HitOut hit_out, HitDen hit_den) {
  using T = FusedTile;
  using B = FusedBlock<M>;
  const FusedArgs A{g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, saved_probe, nullptr, nullptr};
  for (int64_t bid = 0; bid < B::blocks(g); ++bid) {
    const B b(A, bid);
    if (!b.active()) continue;
    for (int u = 0; u * T::BKV < b.len; ++u) {
      bool pair = false;  // some row and tile position with σ ≤ τ < len
      for (int r = 0; r < T::BQ && !pair; ++r)
        for (int s = 0; s < T::BKV && !pair; ++s) {
          const int row = b.t0 + r, at = u * T::BKV + s;
          const int tau = B::kRowsQ ? row : at, sig = B::kRowsQ ? at : row;
          pair = tau < b.len && sig <= tau;
        }
      if (pair != (u >= b.first_tile() && u < b.end_tile())) hit_out(-1);
    }
    if (M == Fused::H)
      for (int w = 0; w < T::WARPS; ++w)
        for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
          const int64_t d = b.den_index(w * T::ROWS_PER_WARP + i);
          if (d >= 0) hit_den(d);
        }
    for (int hh = 0; hh < 2; ++hh)
      for (int tid = 0; tid < T::THREADS; ++tid)
        for (int v = 0; v < T::OUT_STORES; ++v) {
          int r, col;
          T::vec(tid, v, T::BV / 2, &r, &col);
          for (int e = 0; e < 4; ++e) {
            const int64_t i = b.out_index(r, hh * (T::BV / 2) + col + e);
            if (i >= 0) hit_out(i);
          }
        }
  }
}

template <Fused M>
void fused_run(const DeviceExec& ex, const FusedArgs& a) {
  mlstm_fused_kernel<M><<<static_cast<unsigned>(std::min<int64_t>(FusedBlock<M>::blocks(a.g), kMaxBlocks)), FusedTile::THREADS, 0, ex.st>>>(a);
  launched(ex.entry);
}
template <Fused M>
void fused_run(const HostExec& ex, const FusedArgs& a) {
  fused_replay<M>(a, ex.round);
}

// The forward after the states: h and den in one launch.
template <class Exec>
void fused_h(const Exec& ex, const Bf16FwdArgs& a) {
  fused_run<Fused::H>(ex, FusedArgs{a.g, a.q, a.k, a.v, nullptr, a.beta, nullptr, nullptr, nullptr, nullptr, a.gw, a.gp, a.saved, nullptr, a.h});
}

// dq, dk, dv (after Λ, bwd_lambda_n and composed_scales), each in one launch with its rank-1 n term.
template <class Exec>
void fused_grads(const Exec& ex, const Bf16BwdArgs& a) {
  FusedArgs f{a.g, a.q, a.k, a.v, a.dh, a.beta, a.alpha, a.inv, a.rho, a.ib, a.gw, a.gp, const_cast<float*>(a.saved), a.lam, a.dq};
  fused_run<Fused::DQ>(ex, f);
  f.out = a.dk;
  fused_run<Fused::DK>(ex, f);
  f.out = a.dv;
  fused_run<Fused::DV>(ex, f);
}
