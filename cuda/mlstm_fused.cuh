// The bf16 chunkwise form's intra-chunk parts fused per tile (cuda::set_mlstm_intra(1), opt-in until timed on a GPU):
// TFLA's "parallel" kernels, forward and backward. The composed bf16 form (mlstm_bf16.cuh) computes each chunk's L x L
// matrix (S = Q Kᵀ, or (inv ⊙ dH) Vᵀ) as a grouped GEMM into a float32 scratch in global memory, the weights in place,
// and the outputs as GEMMs over it: the scratch written and read three times per use, and at long chunks the L x L
// products mostly spent above the causal diagonal. Here one kernel per output (h; dq, dk, dv), a block per (bh, chunk
// c, 64-row tile of the chunk's positions), does it all on chip, tiled along the sequence within the chunk, so the
// chunk may be long (fewer inter-chunk states: the state traffic is what bounds G2 at chunk 64):
//   weights  per tile of 64 positions on the causal side of the rows (never a tile wholly outside the triangle):
//              S = X_rows Y_tileᵀ on tensor cores, stored as float32 into the block's weight rows Pf (64 x L, in
//              shared memory), then the weight of (τ, σ) from S in place (a warp per row)
//            (H: the row sums, the normaliser inv and β inv of the rows)
//   then per 128-column tile of the output, from the same weights (computed once for all the output's columns):
//     inter  acc = (a ⊙ A_rows) St            (St the chunk's state, maybe transposed; depth in slices of 32)
//     intra  acc += W Z_tile per tile          (W staged as bf16 from Pf, H's rows scaled by inv first)
//     out    the epilogue (dq / dk: + the rank-1 n terms)
// The four outputs (E = exp(w_σ − M_τ), 0 unless σ ≤ τ; ib = β inv; sα, β, inv, ρ per position as mlstm_bf16.cuh):
//   mode  rows  inter              X · Y     W                    Z           epilogue
//   H     τ     (ib ⊙ Q) C_c       q · k     inv ⊙ P, P = s S E   V           den = Σ P + β q·n_c saved, inv from it
//   DQ    τ     (ib ⊙ dH) C_cᵀ     idh · v   Ω' = s (S + ρ) E     K           + β ρ n_c (where a state enters)
//   DK    σ     (sα ⊙ V) Λ_{c+1}ᵀ  v · idh   Ω'ᵀ                  Q           + sα Λⁿ_{c+1}
//   DV    σ     (sα ⊙ K) Λ_{c+1}   k · q     Pᵀ                   inv ⊙ dH
// Rows τ walk the key tiles from 0 to their diagonal; rows σ the query tiles from their diagonal to the chunk's end.
// The weight matrix is always computed in the block's row orientation (DK's S is V_σ · dH_τ), so every mode runs the
// same products (idh = inv ⊙ dH). Tensor cores take bf16 operands rounded where the composed form rounds them
// (per-position scales, inv ⊙ P, inv ⊙ dH and β inv ⊙ Q applied before rounding), float32 sums; the weights, row
// sums, normaliser and epilogues are float32 (the exponent's argument in double), as the composed form: only
// summation orders differ.
// Shared memory: the weight rows (64 x L floats, dynamic: 17 KB at L 64, 66 KB at 256, up to kFusedMaxChunk) and the
// static staging buffers (28 KB, which the output tile reuses as its float staging).
// Index maps and staged values are __host__ __device__ (FusedBlock), so the host replay (fused_replay) and
// mlstm_coverage run them for every block and thread; only the 16 x 16 x 16 products are the replay's own.
// Included into mlstm.cu's anonymous namespace after mlstm_bf16.cuh.

// chunks up to this long run fused (the weight rows fill 64 x L floats of dynamic shared memory: 66 KB at 256, next to
// 30 KB of static; two blocks per SM on an H100, one on an A100); longer ones take the products (the bf16 autocast
// runs chunks up to 256)
constexpr int64_t kFusedMaxChunk = 256;

struct FusedTile {
  static constexpr int BQ = 64, BKV = 64, BV = 128, BK = 32, THREADS = 256, WARPS = THREADS / 32;
  // shared row lengths: bf16 X / Y slices (LDQ), state / Z slices (LDB), W (LDP); the float output staging (LDS)
  static constexpr int LDQ = BK + 8, LDB = BV + 8, LDP = BKV + 8, LDS = BV / 2 + 4;
  static constexpr int QK_LOADS = BQ * BK / THREADS / 4;          // vectors of 4 per thread per X or Y slice
  static constexpr int B_LOADS = BK * BV / THREADS / 4;           // per state or Z slice
  static constexpr int P_LOADS = BQ * BKV / THREADS / 4;          // per W tile staged from the weight rows
  static constexpr int OUT_STORES = BQ * (BV / 2) / THREADS / 4;  // per half of the output tile
  static constexpr int ROWS_PER_WARP = BQ / WARPS;
  // the staging buffers' byte offsets in one static shared array (32-byte aligned), and its size; the output tile's
  // float staging (BQ x LDS) reuses it
  static constexpr int X_AT = 0, Y_AT = X_AT + BQ * LDQ * 2, B_AT = Y_AT + BKV * LDQ * 2, P_AT = B_AT + BK * LDB * 2,
                       STAGING = P_AT + BQ * LDP * 2;
  static_assert(BQ == BKV, "row tiles and the tiles they walk share their diagonal tiles");
  static_assert(LDQ % 8 == 0 && LDB % 8 == 0 && LDP % 8 == 0 && LDS % 4 == 0, "wmma leading dimensions: 16-byte multiples");
  static_assert((16 * LDQ * 2) % 32 == 0 && (16 * LDB * 2) % 32 == 0 && (16 * LDP * 2) % 32 == 0 && (16 * LDS * 4) % 32 == 0,
                "fragment rows 32-byte aligned");
  static_assert(Y_AT % 32 == 0 && B_AT % 32 == 0 && P_AT % 32 == 0 && STAGING % 32 == 0 && BQ * LDS * 4 <= STAGING,
                "staging buffers 32-byte aligned; the output staging fits in them");
  static_assert(WARPS == 8 && BQ == 2 * 32 && BV == 4 * 32 && BKV == 4 * 16, "warps: 2 x 4 of 32 x 32 (output), of 32 x 16 (S)");
  static_assert(BK % 16 == 0 && BKV % BK == 0 && BQ * BK % (4 * THREADS) == 0 && BK * BV % (4 * THREADS) == 0 &&
                    BQ * BKV % (4 * THREADS) == 0 && BQ * (BV / 2) % (4 * THREADS) == 0 && BKV % 32 == 0 && BQ % WARPS == 0,
                "slices, rows and output halves split evenly");
  XLSTM_MLSTM_HD static int64_t q_tiles(const Geo& g) { return (g.L + BQ - 1) / BQ; }
  // the weight rows: BQ rows of ldf floats (the chunk rounded up to whole tiles, + 4: fragment rows stay 32-byte
  // aligned, 16-byte vectors aligned), a launch's dynamic shared memory
  XLSTM_MLSTM_HD static int ldf(const Geo& g) { return static_cast<int>((g.L + BKV - 1) / BKV * BKV + 4); }
  static size_t smem_bytes(const Geo& g) { return static_cast<size_t>(BQ) * ldf(g) * 4; }
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
  int t0, len;  // within the chunk: int, so the per-element index math stays 32-bit
  int x0 = 0;   // the output column tile's first column (set per tile)
  bool has;     // a state enters the chunk (m_c finite)
  XLSTM_MLSTM_HD static int64_t out_width(const Geo& g) { return M == Fused::H || M == Fused::DV ? g.DV : g.DK; }
  XLSTM_MLSTM_HD static int x_tiles(const Geo& g) { return static_cast<int>((out_width(g) + T::BV - 1) / T::BV); }
  XLSTM_MLSTM_HD static int64_t blocks(const Geo& g) { return g.BH * g.NC * T::q_tiles(g); }
  XLSTM_MLSTM_HD FusedBlock(const FusedArgs& args, int64_t bid) : a(args) {
    const Geo& g = a.g;
    const int64_t nq = T::q_tiles(g);
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
  // column of the weight rows where tile u starts (tile first_tile() at 0)
  XLSTM_MLSTM_HD int w_col(int u) const { return (u - first_tile()) * T::BKV; }
  // x[pos(t)][d0 .. d0 + 3] (rows D wide), times scale[pos] where given; 0 past the chunk or the row (gemm_staging.h's
  // load_vec4 does the same for any layout, but its generality costs the kernels spills at their 128 registers)
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
  // rs: H's row scales β inv (block row r), computed in the kernel; the other modes' scales are per position
  XLSTM_MLSTM_HD void inter_a4(int64_t j0, int tid, int v, const float* rs, float* out) const {
    int r, col;
    T::vec(tid, v, T::BK, &r, &col);
    const Geo& g = a.g;
    if (M == Fused::H) {
      rows4(a.q, g.DK, t0 + r, j0 + col, nullptr, out);
      for (int e = 0; e < 4; ++e) out[e] = rs[r] * out[e];
    } else if (M == Fused::DQ) {
      rows4(a.dh, g.DV, t0 + r, j0 + col, a.ib, out);
    } else if (M == Fused::DK) {
      rows4(a.v, g.DV, t0 + r, j0 + col, a.alpha, out);
    } else {
      rows4(a.k, g.DK, t0 + r, j0 + col, a.alpha, out);
    }
  }
  // the chunk's state (DK x DV, rows DV long): C_c (H, DQ) or Λ_{c+1} (DK, DV)
  XLSTM_MLSTM_HD const float* state() const {
    const Geo& g = a.g;
    return M == Fused::H || M == Fused::DQ ? a.saved + bh * g.W + sv_C(g, c) : a.lam + (bh * g.NC + c) * state_elems(g);
  }
  // vector v of thread tid of the state slice at depth j0: *kk, *cc its slot; the 4 values run along the columns
  // (St[j0 + kk][x0 + cc ..]) or, transposed, along the depth (St[x0 + cc][j0 + kk ..]: slots (kk .. kk + 3, cc))
  XLSTM_MLSTM_HD void inter_b4(int64_t j0, int tid, int v, int* kk, int* cc, float* out) const {
    const Geo& g = a.g;
    const float* st = state();
    int64_t j, x;
    if (!kTransposed) T::vec(tid, v, T::BV, kk, cc), j = j0 + *kk, x = x0 + *cc;
    else T::vec_t(tid, v, kk, cc), j = x0 + *cc, x = j0 + *kk;
    if (j < g.DK && x + 4 <= g.DV && aligned_float4(st, g.DV)) return load_float4(st + j * g.DV + x, out);
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
    else rows4(first ? a.dh : a.v, g.DV, t, j0 + col, first ? a.inv : nullptr, out);  // inv ⊙ dH, as the products
  }
  // Z rows from tile position s0, the column tile's output columns: V (H), K (DQ), Q (DK), inv ⊙ dH (DV)
  XLSTM_MLSTM_HD void z4(int s0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BV, &r, &col);
    const Geo& g = a.g;
    if (M == Fused::H) rows4(a.v, g.DV, s0 + r, x0 + col, nullptr, out);
    else if (M == Fused::DQ) rows4(a.k, g.DK, s0 + r, x0 + col, nullptr, out);
    else if (M == Fused::DK) rows4(a.q, g.DK, s0 + r, x0 + col, nullptr, out);
    else rows4(a.dh, g.DV, s0 + r, x0 + col, a.inv, out);
  }
  // ---- per-position constants: the query side's M_τ and ρ_τ, the key side's w_σ (0 past the chunk) ----
  XLSTM_MLSTM_HD void tau_consts(int t, double* Mt, float* rt) const {
    *Mt = 0.0, *rt = 0.0f;
    if (t >= len) return;
    const int64_t p = pos(t);
    *Mt = row_M(has, a.saved[bh * a.g.W + sv_m(a.g) + c], a.gp[p]);
    if (kOmega) *rt = a.rho[p];
  }
  XLSTM_MLSTM_HD double sigma_w(int t) const { return t < len ? a.gw[pos(t)] : 0.0; }
  // W of block row r and tile position u0 + s from S (the τ side's constants and the σ side's w passed in)
  XLSTM_MLSTM_HD float weight(int r, int u0, int s, float S, double Mt, float rt, double ws) const {
    const int tau = kRowsQ ? t0 + r : u0 + s, sig = kRowsQ ? u0 + s : t0 + r;
    if (tau >= len || sig > tau) return 0.0f;
    const float ex = fm_exp(static_cast<float>(ws - Mt));
    return kOmega ? a.g.s * ((S + rt) * ex) : (a.g.s * S) * ex;
  }
  // lane's share of block row r's weights for the tile from u0, in place over the row's S (row: its weight row at the
  // tile; Mt, Rt, Ws the staged constants), returning the sum of the lane's weights
  XLSTM_MLSTM_HD float weights_lane(int r, int u0, int lane, float* row, const double* Mt, const float* Rt, const double* Ws) const {
    float part = 0.0f;
    for (int s = lane; s < T::BKV; s += 32) {
      const int ti = kRowsQ ? r : s, si = kRowsQ ? s : r;
      row[s] = weight(r, u0, s, row[s], Mt[ti], Rt[ti], Ws[si]);
      part += row[s];
    }
    return part;
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
  // H: row r's normaliser from its den, den saved: *inv and *ib = inv β (0 past the chunk)
  XLSTM_MLSTM_HD void finish_row(int r, float den, float* inv, float* ib) const {
    const Geo& g = a.g;
    *inv = 0.0f, *ib = 0.0f;
    if (t0 + r >= len) return;
    const int64_t t = c * g.L + t0 + r;
    float* sv = a.saved + bh * g.W;
    sv[sv_den(g) + t] = den;
    *inv = mm::norm_inv(den, sv[sv_mu(g) + t], g.eps, nullptr);
    *ib = *inv * a.beta[pos(t0 + r)];
  }
  XLSTM_MLSTM_HD int64_t den_index(int r) const { return t0 + r < len ? bh * a.g.W + sv_den(a.g) + c * a.g.L + t0 + r : -1; }
  // the output of row r, tile column col from the accumulated y: + the rank-1 n terms of dq (β ρ n_c where a state
  // enters) and dk (sα Λⁿ_{c+1})
  XLSTM_MLSTM_HD float finish(int r, int col, float y) const {
    const Geo& g = a.g;
    if (M == Fused::H || M == Fused::DV || t0 + r >= len || x0 + col >= g.DK) return y;
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
  extern __shared__ __align__(32) float Pf[];  // the weight rows: [BQ][ldf], dynamic
  __shared__ __align__(32) unsigned char staging[T::STAGING];
  const Geo& g = A.g;
  const int ldf = T::ldf(g);
  auto Xs = reinterpret_cast<__nv_bfloat16(*)[T::LDQ]>(staging + T::X_AT);
  auto Ys = reinterpret_cast<__nv_bfloat16(*)[T::LDQ]>(staging + T::Y_AT);
  auto Bs = reinterpret_cast<__nv_bfloat16(*)[T::LDB]>(staging + T::B_AT);
  auto Ps = reinterpret_cast<__nv_bfloat16(*)[T::LDP]>(staging + T::P_AT);
  auto Os = reinterpret_cast<float(*)[T::LDS]>(staging);  // the output tile's staging, after the products
  __shared__ double Mt[T::BQ], Ws[T::BKV];  // M_τ, w_σ of the block's rows or of the tile's positions
  __shared__ float Rt[T::BQ];               // ρ_τ (Ω' modes)
  __shared__ float Rs[T::BQ], Iv[T::BQ], Ib[T::BQ];  // H: row sums, inv, β inv
  const int tid = threadIdx.x, w = tid / 32, lane = tid % 32;
  // wmma stores S into the weight rows: they must start 32-byte aligned (the extern declaration's alignment; a
  // launch that broke it would otherwise be silent garbage)
  if ((__cvta_generic_to_shared(Pf) & 31) != 0) __trap();
  int wr, wc, sr, sc;
  T::out_origin(w, &wr, &wc);
  T::s_origin(w, &sr, &sc);
  float x[4];
  int r, col;
  for (int64_t bid = blockIdx.x; bid < B::blocks(g); bid += gridDim.x) {
    B b(A, bid);
    if (!b.active()) continue;
    // the block side's constants: the query side (rows τ) or the key side (rows σ)
    if (tid < T::BQ) {
      if (B::kRowsQ) b.tau_consts(b.t0 + tid, &Mt[tid], &Rt[tid]);
      else Ws[tid] = b.sigma_w(b.t0 + tid);
      Rs[tid] = 0.0f;
    }
    // ---- the weights, every tile once, into Pf ----
    for (int u = b.first_tile(); u < b.end_tile(); ++u) {
      const int u0 = u * T::BKV, wc0 = b.w_col(u);
      if (tid < T::BKV) {
        if (B::kRowsQ) Ws[tid] = b.sigma_w(u0 + tid);
        else b.tau_consts(u0 + tid, &Mt[tid], &Rt[tid]);
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
      for (int i = 0; i < 2; ++i) wmma::store_matrix_sync(Pf + (sr + 16 * i) * ldf + wc0 + sc, s[i], ldf, wmma::mem_row_major);
      __syncthreads();
      // the weights in place, a warp per row (H: the row's sum of the float P)
      for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
        const int rr = w * T::ROWS_PER_WARP + i;
        float part = b.weights_lane(rr, u0, lane, Pf + rr * ldf + wc0, Mt, Rt, Ws);
        if (M == Fused::H) {
          part = warp_sum_f(part);
          if (lane == 0) Rs[rr] += part;
        }
      }
      __syncthreads();
    }
    if (M == Fused::H) {  // the normaliser, a warp per row
      for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
        const int rr = w * T::ROWS_PER_WARP + i;
        const float part = warp_sum_f(b.qn_part(rr, lane));
        if (lane == 0) b.finish_row(rr, Rs[rr] + part, &Iv[rr], &Ib[rr]);
      }
      __syncthreads();
    }
    // ---- every 128-column tile of the output from the weight rows ----
    for (int xt = 0; xt < B::x_tiles(g); ++xt) {
      b.x0 = xt * T::BV;
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
      if (b.inter_on()) {
        for (int64_t j0 = 0; j0 < b.inter_depth(); j0 += T::BK) {
#pragma unroll
          for (int v = 0; v < T::QK_LOADS; ++v) {
            b.inter_a4(j0, tid, v, Ib, x);
            T::vec(tid, v, T::BK, &r, &col);
            store_bf16x4(&Xs[r][col], x);
          }
#pragma unroll 1  // unrolled, sm_80 spills (128 registers)
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
        const int u0 = u * T::BKV, wc0 = b.w_col(u);
        // W of the tile as bf16 (H: inv ⊙ P)
#pragma unroll
        for (int v = 0; v < T::P_LOADS; ++v) {
          T::vec(tid, v, T::BKV, &r, &col);
          const float4 y = *reinterpret_cast<const float4*>(Pf + r * ldf + wc0 + col);
          const float sc4 = M == Fused::H ? Iv[r] : 1.0f;
          const float yv[4] = {sc4 * y.x, sc4 * y.y, sc4 * y.z, sc4 * y.w};
          store_bf16x4(&Ps[r][col], yv);
        }
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
      // the output through the staging buffers, half the tile's columns at a time
      for (int hh = 0; hh < 2; ++hh) {
        if (wc / (T::BV / 2) == hh)
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j)
              wmma::store_matrix_sync(&Os[wr + 16 * i][wc - hh * (T::BV / 2) + 16 * j], acc[i][j], T::LDS, wmma::mem_row_major);
        __syncthreads();
#pragma unroll 1  // unrolled, H spills on sm_80
        for (int v = 0; v < T::OUT_STORES; ++v) {
          T::vec(tid, v, T::BV / 2, &r, &col);
          const float4 y = *reinterpret_cast<const float4*>(&Os[r][col]);
          const float yv[4] = {y.x, y.y, y.z, y.w};
          float o[4];
          for (int e = 0; e < 4; ++e) o[e] = b.finish(r, hh * (T::BV / 2) + col + e, yv[e]);
          b.write4(r, hh * (T::BV / 2) + col, o);
        }
        __syncthreads();
      }
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
  const int ldf = T::ldf(g);
  auto rnd = [&](float v) { return round ? bf16_math::widen(bf16_math::round(v)) : v; };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> Pf(static_cast<size_t>(T::BQ) * ldf), Xs(T::BQ * T::BK), Ys(T::BKV * T::BK), Bs(T::BK * T::BV),
      Ps(T::BQ * T::BKV), acc(T::BQ * T::BV), sacc(T::BQ * T::BKV), Os(T::BQ * (T::BV / 2)), Rt(T::BQ),
      Rs(T::BQ), Iv(T::BQ), Ib(T::BQ);
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
    B b(A, bid);
    if (!b.active()) continue;
    fill(Pf, nan), fill(Xs, nan), fill(Ys, nan), fill(Bs, nan), fill(Ps, nan), fill(Iv, nan), fill(Ib, nan), fill(Rt, nan);
    fill(Mt, std::nan("")), fill(Ws, std::nan(""));
    for (int r = 0; r < T::BQ; ++r) {
      if (B::kRowsQ) b.tau_consts(b.t0 + r, &Mt[r], &Rt[r]);
      else Ws[r] = b.sigma_w(b.t0 + r);
      Rs[r] = 0.0f;
    }
    for (int u = b.first_tile(); u < b.end_tile(); ++u) {
      const int u0 = u * T::BKV, wc0 = b.w_col(u);
      for (int s = 0; s < T::BKV; ++s) {
        if (B::kRowsQ) Ws[s] = b.sigma_w(u0 + s);
        else b.tau_consts(u0 + s, &Mt[s], &Rt[s]);
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
      for (int r = 0; r < T::BQ; ++r) {
        for (int s = 0; s < T::BKV; ++s) Pf[r * ldf + wc0 + s] = sacc[r * T::BKV + s];
        for (int lane = 0; lane < 32; ++lane) lanes[lane] = b.weights_lane(r, u0, lane, &Pf[r * ldf + wc0], Mt.data(), Rt.data(), Ws.data());
        if (M == Fused::H) Rs[r] += rows::host_row_reduce<rows::SumOp>(lanes, 32);
      }
    }
    if (M == Fused::H)
      for (int r = 0; r < T::BQ; ++r) {
        for (int lane = 0; lane < 32; ++lane) lanes[lane] = b.qn_part(r, lane);
        b.finish_row(r, Rs[r] + rows::host_row_reduce<rows::SumOp>(lanes, 32), &Iv[r], &Ib[r]);
      }
    for (int xt = 0; xt < B::x_tiles(g); ++xt) {
      b.x0 = xt * T::BV;
      zero_cover(acc, T::BV, false);
      if (b.inter_on()) {
        for (int64_t j0 = 0; j0 < b.inter_depth(); j0 += T::BK) {
          stage(Xs, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.inter_a4(j0, tid, v, Ib.data(), o); });
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
        const int u0 = u * T::BKV, wc0 = b.w_col(u);
        for (int tid = 0; tid < T::THREADS; ++tid)
          for (int v = 0; v < T::P_LOADS; ++v) {
            int r, col;
            T::vec(tid, v, T::BKV, &r, &col);
            for (int e = 0; e < 4; ++e) Ps[r * T::BKV + col + e] = rnd((M == Fused::H ? Iv[r] : 1.0f) * Pf[r * ldf + wc0 + col + e]);
          }
        for (int s0 = 0; s0 < T::BKV; s0 += T::BK) {
          stage(Bs, T::BV, T::B_LOADS, [&](int tid, int v, float* o) { b.z4(u0 + s0, tid, v, o); });
          mma_out([&](int r, int kk) { return Ps[r * T::BKV + s0 + kk]; });
        }
      }
      for (int hh = 0; hh < 2; ++hh) {
        fill(Os, nan);
        for (int r = 0; r < T::BQ; ++r)
          for (int cc = 0; cc < T::BV / 2; ++cc) Os[r * (T::BV / 2) + cc] = acc[r * T::BV + hh * (T::BV / 2) + cc];
        for (int tid = 0; tid < T::THREADS; ++tid)
          for (int v = 0; v < T::OUT_STORES; ++v) {
            int r, col;
            T::vec(tid, v, T::BV / 2, &r, &col);
            float o[4];
            for (int e = 0; e < 4; ++e) o[e] = b.finish(r, hh * (T::BV / 2) + col + e, Os[r * (T::BV / 2) + col + e]);
            b.write4(r, hh * (T::BV / 2) + col, o);
          }
      }
    }
  }
}

// Which writes a fused launch makes, as mlstm_coverage counts them: the output (its index) and H's den (index into
// saved); a tile walked with no causal pair of a row and a position (work wasted), or a tile with one not walked,
// reported as hit_out(-1), as is a tile whose weight columns leave the weight rows. saved_probe: m of every chunk
// finite (the blocks' `has`).
template <Fused M, class HitOut, class HitDen>
void fused_cover(const Geo& g, float* saved_probe, HitOut hit_out, HitDen hit_den) {
  using T = FusedTile;
  using B = FusedBlock<M>;
  const FusedArgs A{g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, saved_probe, nullptr, nullptr};
  for (int64_t bid = 0; bid < B::blocks(g); ++bid) {
    B b(A, bid);
    if (!b.active()) continue;
    for (int u = 0; u * T::BKV < b.len; ++u) {
      bool pair = false;  // some row and tile position with σ ≤ τ < len
      for (int r = 0; r < T::BQ && !pair; ++r)
        for (int s = 0; s < T::BKV && !pair; ++s) {
          const int row = b.t0 + r, at = u * T::BKV + s;
          const int tau = B::kRowsQ ? row : at, sig = B::kRowsQ ? at : row;
          pair = tau < b.len && sig <= tau;
        }
      const bool walked = u >= b.first_tile() && u < b.end_tile();
      if (pair != walked || (walked && (b.w_col(u) < 0 || b.w_col(u) + T::BKV + 4 > T::ldf(g)))) hit_out(-1);
    }
    if (M == Fused::H)
      for (int w = 0; w < T::WARPS; ++w)
        for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
          const int64_t d = b.den_index(w * T::ROWS_PER_WARP + i);
          if (d >= 0) hit_den(d);
        }
    for (int xt = 0; xt < B::x_tiles(g); ++xt) {
      b.x0 = xt * T::BV;
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
}

// whether a launch of geometry g can run fused (its weight rows fit the shared memory)
bool fused_fits(const Geo& g) { return g.L <= kFusedMaxChunk; }

template <Fused M>
void fused_run(const DeviceExec& ex, const FusedArgs& a) {
  const size_t smem = FusedTile::smem_bytes(a.g);
  // beyond 48 KB of static and dynamic shared memory a kernel must ask for it (sm_80: up to 163 KB per block, sm_90:
  // 227 KB); the weight rows of a 256-long chunk take 66 KB
  hostutil::raise_smem_limit(reinterpret_cast<const void*>(mlstm_fused_kernel<M>), static_cast<int64_t>(smem), ex.entry);
  mlstm_fused_kernel<M><<<static_cast<unsigned>(std::min<int64_t>(FusedBlock<M>::blocks(a.g), kMaxBlocks)), FusedTile::THREADS, smem, ex.st>>>(a);
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
