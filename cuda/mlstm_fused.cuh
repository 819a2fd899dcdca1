// The bf16 chunkwise forward's intra-chunk part fused per tile (cuda::set_mlstm_intra(1), opt-in until timed on a
// GPU): TFLA's "parallel" kernel. The composed bf16 form (mlstm_bf16.cuh) computes S = Q Kᵀ as a grouped GEMM into an
// L x L float32 scratch per chunk, the weights in place, the normaliser by a warp per position and h as a GEMM of two
// segments: four launches, the scratch written and read three times, and at chunk 256 the L x L products mostly
// spent above the causal diagonal. Here one block per (bh, chunk c, 64-row tile of the chunk's positions, 128-column
// tile of h) does it all on chip, tiled along the sequence within the chunk, so the chunk may be long (fewer
// inter-chunk states: the C traffic is what bounds G2 at chunk 64):
//   inter    acc = (β ⊙ Q_rows) C_c                    (DK in slices of 32; skipped where no state enters the chunk)
//   per kv tile of 64 positions up to the rows' diagonal (tiles above it are never touched):
//     S      Q_rows K_tileᵀ                             (fragments -> Ss, float32)
//     P      (s S) exp(w_σ − M_τ) for σ ≤ τ, else 0     (a warp per row: P as bf16 into Ps, the row's float sum kept)
//     acc    += P V_tile                                (V in slices of 32 positions)
//   den      Σ_σ P + β q·n_c (a warp per row), inv = 1 / (max(|den|, exp(−μ)) + ε), den saved (by the first column tile)
//   h        inv ⊙ acc, written through Ss half a tile at a time (coalesced)
// Tensor cores take bf16 operands (Q, K, V, C and P rounded as staged, β applied before rounding), float32 sums; the
// weights, row sums, normaliser and scaling are float32 (the exponent's argument in double), as the composed form. The
// rounding differs from the composed form only in where inv is applied (after the sums here). The backward is the
// composed form's (it reads `saved`, which this writes in full: den; C, n, m, μ come from the kernels before it).
// Index maps and staged values are __host__ __device__ (FusedHBlock), so the host replay (fused_h_replay) and
// mlstm_coverage run them for every block and thread; only the 16 x 16 x 16 products are the replay's own.
// Included into mlstm.cu's anonymous namespace after mlstm_bf16.cuh.

struct FusedHTile {
  static constexpr int BQ = 64, BKV = 64, BV = 128, BK = 32, THREADS = 256, WARPS = THREADS / 32;
  // shared row lengths: bf16 Q / K slices (LDQ), C / V slices (LDB), P (LDP); float S and the output (LDS)
  static constexpr int LDQ = BK + 8, LDB = BV + 8, LDP = BKV + 8, LDS = BKV + 4;
  static constexpr int QK_LOADS = BQ * BK / THREADS / 4;       // vectors of 4 per thread per Q or K slice
  static constexpr int B_LOADS = BK * BV / THREADS / 4;        // per C or V slice
  static constexpr int OUT_STORES = BQ * (BV / 2) / THREADS / 4;  // per half of the output tile
  static constexpr int ROWS_PER_WARP = BQ / WARPS;
  static_assert(BQ == BKV, "a row tile's kv tiles end at its own diagonal tile");
  static_assert(LDQ % 8 == 0 && LDB % 8 == 0 && LDP % 8 == 0 && LDS % 4 == 0, "wmma leading dimensions: 16-byte multiples");
  static_assert((16 * LDQ * 2) % 32 == 0 && (16 * LDB * 2) % 32 == 0 && (16 * LDP * 2) % 32 == 0 && (16 * LDS * 4) % 32 == 0,
                "fragment rows 32-byte aligned");
  static_assert(WARPS == 8 && BQ == 2 * 32 && BV == 4 * 32 && BKV == 4 * 16, "warps: 2 x 4 of 32 x 32 (output), of 32 x 16 (S)");
  static_assert(BK % 16 == 0 && BKV % BK == 0 && BQ * BK % (4 * THREADS) == 0 && BK * BV % (4 * THREADS) == 0 &&
                    BQ * (BV / 2) % (4 * THREADS) == 0 && BKV % 32 == 0 && BQ % WARPS == 0,
                "slices, rows and output halves split evenly");
  XLSTM_MLSTM_HD static int64_t q_tiles(const Geo& g) { return (g.L + BQ - 1) / BQ; }
  XLSTM_MLSTM_HD static int64_t x_tiles(const Geo& g) { return (g.DV + BV - 1) / BV; }
  XLSTM_MLSTM_HD static int64_t blocks(const Geo& g) { return g.BH * g.NC * q_tiles(g) * x_tiles(g); }
  // vector v of thread tid in a slice `cols` wide staged (or written) 4 columns at a time: row r, first column col
  XLSTM_MLSTM_HD static void vec(int tid, int v, int cols, int* r, int* col) {
    const int idx = tid + v * THREADS;
    *r = idx / (cols / 4);
    *col = (idx % (cols / 4)) * 4;
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

struct FusedHArgs {
  Geo g;
  const float *q, *k, *v, *beta;
  const double *gw, *gp;  // w and its prefix max per position (gates_chunk)
  float *saved, *h;       // saved: C_c, n_c, m, μ read, den written
};

struct FusedHBlock {
  using T = FusedHTile;
  const FusedHArgs& a;
  int64_t bh, c;
  int t0, xt, x0, len;  // within the chunk / the head: int, so the per-element index math stays 32-bit
  bool has;  // a state enters the chunk (m_c finite): the inter-chunk term and q·n_c
  XLSTM_MLSTM_HD FusedHBlock(const FusedHArgs& args, int64_t bid) : a(args) {
    const Geo& g = a.g;
    const int64_t nx = T::x_tiles(g), nq = T::q_tiles(g);
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
  XLSTM_MLSTM_HD int64_t pos(int64_t tau) const { return bh * a.g.S + c * a.g.L + tau; }
  // kv tiles up to the diagonal of the block's last row
  XLSTM_MLSTM_HD int kv_tiles() const {
    const int last = t0 + T::BQ < len ? t0 + T::BQ : len;
    return (last + T::BKV - 1) / T::BKV;
  }
  // row r's stabiliser M_τ (0 past the chunk)
  XLSTM_MLSTM_HD double row_max(int r) const {
    if (t0 + r >= len) return 0.0;
    const float* Ms = a.saved + bh * a.g.W + sv_m(a.g);
    return row_M(has, Ms[c], a.gp[pos(t0 + r)]);
  }
  // x[pos(tau)][d0 .. d0 + 3] (rows D wide), times scale[pos] where given; 0 past the chunk or the row
  XLSTM_MLSTM_HD void rows4(const float* x, int64_t D, int tau, int64_t d0, const float* scale, float* out) const {
    if (tau >= len) {
      for (int j = 0; j < 4; ++j) out[j] = 0.0f;
      return;
    }
    const int64_t p = pos(tau);
    if (d0 + 4 <= D && aligned_float4(x, D)) load_float4(x + p * D + d0, out);
    else
      for (int j = 0; j < 4; ++j) out[j] = d0 + j < D ? x[p * D + d0 + j] : 0.0f;
    if (scale) {
      const float sc = scale[p];
      for (int j = 0; j < 4; ++j) out[j] = sc * out[j];
    }
  }
  // staged vectors of thread tid: Q rows (β-scaled for the inter-chunk term) and K rows at depth j0, C_c rows j0 ..
  // at the tile's columns, V rows from s0 (a chunk position) at the tile's columns
  XLSTM_MLSTM_HD void q_vals4(int64_t j0, int tid, int v, bool scaled, float* out) const {
    int r, col;
    T::vec(tid, v, T::BK, &r, &col);
    rows4(a.q, a.g.DK, t0 + r, j0 + col, scaled ? a.beta : nullptr, out);
  }
  XLSTM_MLSTM_HD void k_vals4(int kv0, int64_t j0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BK, &r, &col);
    rows4(a.k, a.g.DK, kv0 + r, j0 + col, nullptr, out);
  }
  XLSTM_MLSTM_HD void v_vals4(int s0, int tid, int v, float* out) const {
    int r, col;
    T::vec(tid, v, T::BV, &r, &col);
    rows4(a.v, a.g.DV, s0 + r, x0 + col, nullptr, out);
  }
  XLSTM_MLSTM_HD void c_vals4(int64_t j0, int tid, int v, float* out) const {
    const Geo& g = a.g;
    int r, col;
    T::vec(tid, v, T::BV, &r, &col);
    const int64_t j = j0 + r, x = x0 + col;
    const float* base = a.saved + bh * g.W + sv_C(g, c);
    if (j < g.DK && x + 4 <= g.DV && aligned_float4(a.saved + bh * g.W, g.DV)) return load_float4(base + j * g.DV + x, out);
    for (int e = 0; e < 4; ++e) out[e] = j < g.DK && x + e < g.DV ? base[j * g.DV + x + e] : 0.0f;
  }
  // w of kv position kv0 + s (0 past the chunk: never weighted)
  XLSTM_MLSTM_HD double kv_w(int kv0, int s) const { return kv0 + s < len ? a.gw[pos(kv0 + s)] : 0.0; }
  // P of row r and kv position kv0 + s from S = q·k: (s S) exp(w_σ − M_τ) on and below the diagonal, else 0
  XLSTM_MLSTM_HD float weight(int r, int kv0, int s, float S, double M, double w) const {
    const int tau = t0 + r, sg = kv0 + s;
    if (tau >= len || sg > tau) return 0.0f;
    return (a.g.s * S) * fm_exp(static_cast<float>(w - M));
  }
  // lane's part of β q·n_c for row r (0 where no state enters)
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
  // row r's normaliser from its den: inv (0 past the chunk); den saved by the first column tile
  XLSTM_MLSTM_HD float finish_row(int r, float den) const {
    const Geo& g = a.g;
    if (t0 + r >= len) return 0.0f;
    const int64_t t = c * g.L + t0 + r;
    float* sv = a.saved + bh * g.W;
    if (xt == 0) sv[sv_den(g) + t] = den;
    return mm::norm_inv(den, sv[sv_mu(g) + t], g.eps, nullptr);
  }
  XLSTM_MLSTM_HD int64_t den_index(int r) const { return t0 + r < len && xt == 0 ? bh * a.g.W + sv_den(a.g) + c * a.g.L + t0 + r : -1; }
  // index into h of row r, tile column col (-1 outside the chunk or DV)
  XLSTM_MLSTM_HD int64_t h_index(int r, int col) const {
    return t0 + r < len && x0 + col < a.g.DV ? pos(t0 + r) * a.g.DV + x0 + col : -1;
  }
  // h of row r, tile columns col .. col + 3: one 16-byte store where all four lie in h, 16-byte aligned
  XLSTM_MLSTM_HD void write_h4(int r, int col, const float* v) const {
    const int64_t i0 = h_index(r, col);
    if (i0 >= 0 && h_index(r, col + 3) >= 0 && (reinterpret_cast<uintptr_t>(a.h + i0) & 15) == 0) return store_float4(a.h + i0, v);
    for (int e = 0; e < 4; ++e) {
      const int64_t i = h_index(r, col + e);
      if (i >= 0) a.h[i] = v[e];
    }
  }
};

__global__ void __launch_bounds__(FusedHTile::THREADS, 2) mlstm_fused_h_kernel(FusedHArgs A) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using T = FusedHTile;
  namespace wmma = nvcuda::wmma;
  using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;
  using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major>;
  __shared__ __align__(32) __nv_bfloat16 Qs[T::BQ][T::LDQ];
  __shared__ __align__(32) __nv_bfloat16 Ks[T::BKV][T::LDQ];
  __shared__ __align__(32) __nv_bfloat16 Bs[T::BK][T::LDB];
  __shared__ __align__(32) __nv_bfloat16 Ps[T::BQ][T::LDP];
  __shared__ __align__(32) float Ss[T::BQ][T::LDS];
  __shared__ double Md[T::BQ], Wd[T::BKV];
  __shared__ float Rs[T::BQ], Iv[T::BQ];
  const int tid = threadIdx.x, w = tid / 32, lane = tid % 32;
  int wr, wc, sr, sc;
  T::out_origin(w, &wr, &wc);
  T::s_origin(w, &sr, &sc);
  const Geo& g = A.g;
  for (int64_t bid = blockIdx.x; bid < T::blocks(g); bid += gridDim.x) {
    const FusedHBlock b(A, bid);
    if (!b.active()) continue;
    if (tid < T::BQ) {
      Md[tid] = b.row_max(tid);
      Rs[tid] = 0.0f;
    }
    Acc acc[2][2];
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
    // acc += A_rows(Qs: rows x BK from a0) · Bs (BK x BV): the output tile's product of one staged slice
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
    // inter-chunk term: (β ⊙ Q_rows) C_c
    if (b.has) {
      for (int64_t j0 = 0; j0 < g.DK; j0 += T::BK) {
#pragma unroll
        for (int v = 0; v < T::QK_LOADS; ++v) {
          b.q_vals4(j0, tid, v, true, x);
          T::vec(tid, v, T::BK, &r, &col);
          store_bf16x4(&Qs[r][col], x);
        }
#pragma unroll 1  // unrolled, sm_80 spills (128 registers: acc and S both live in fragments)
        for (int v = 0; v < T::B_LOADS; ++v) {
          b.c_vals4(j0, tid, v, x);
          T::vec(tid, v, T::BV, &r, &col);
          store_bf16x4(&Bs[r][col], x);
        }
        __syncthreads();
        mma_out(&Qs[0][0], T::LDQ);
        __syncthreads();
      }
    }
    // intra-chunk: the kv tiles up to the diagonal
    for (int kt = 0; kt < b.kv_tiles(); ++kt) {
      const int kv0 = kt * T::BKV;
      if (tid < T::BKV) Wd[tid] = b.kv_w(kv0, tid);
      Acc s[2];
      for (int i = 0; i < 2; ++i) wmma::fill_fragment(s[i], 0.0f);
      for (int64_t j0 = 0; j0 < g.DK; j0 += T::BK) {
#pragma unroll
        for (int v = 0; v < T::QK_LOADS; ++v) {
          T::vec(tid, v, T::BK, &r, &col);
          b.q_vals4(j0, tid, v, false, x);
          store_bf16x4(&Qs[r][col], x);
          b.k_vals4(kv0, j0, tid, v, x);
          store_bf16x4(&Ks[r][col], x);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < T::BK; kk += 16) {
          // op(B)[j][σ] = Ks[σ][j]: column-major with leading dimension LDQ
          wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
          wmma::load_matrix_sync(fb, &Ks[sc][kk], T::LDQ);
          for (int i = 0; i < 2; ++i) {
            FragA fa;
            wmma::load_matrix_sync(fa, &Qs[sr + 16 * i][kk], T::LDQ);
            wmma::mma_sync(s[i], fa, fb, s[i]);
          }
        }
        __syncthreads();
      }
      for (int i = 0; i < 2; ++i) wmma::store_matrix_sync(&Ss[sr + 16 * i][sc], s[i], T::LDS, wmma::mem_row_major);
      __syncthreads();
      // the weights, a warp per row: P as bf16 into Ps, the row's sum of the float P
      for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
        const int rr = w * T::ROWS_PER_WARP + i;
        float part = 0.0f;
        for (int s2 = lane; s2 < T::BKV; s2 += 32) {
          const float p = b.weight(rr, kv0, s2, Ss[rr][s2], Md[rr], Wd[s2]);
          Ps[rr][s2] = __float2bfloat16_rn(p);
          part += p;
        }
        part = warp_sum_f(part);
        if (lane == 0) Rs[rr] += part;
      }
      __syncthreads();
      for (int s0 = 0; s0 < T::BKV; s0 += T::BK) {
#pragma unroll 1  // unrolled, sm_80 spills (128 registers: acc and S both live in fragments)
        for (int v = 0; v < T::B_LOADS; ++v) {
          b.v_vals4(kv0 + s0, tid, v, x);
          T::vec(tid, v, T::BV, &r, &col);
          store_bf16x4(&Bs[r][col], x);
        }
        __syncthreads();
        mma_out(&Ps[0][s0], T::LDP);
        __syncthreads();
      }
    }
    // the normaliser, a warp per row
    for (int i = 0; i < T::ROWS_PER_WARP; ++i) {
      const int rr = w * T::ROWS_PER_WARP + i;
      const float part = warp_sum_f(b.qn_part(rr, lane));
      if (lane == 0) Iv[rr] = b.finish_row(rr, Rs[rr] + part);
    }
    __syncthreads();
    // h = inv ⊙ acc through Ss, half the tile's columns at a time
    for (int hh = 0; hh < 2; ++hh) {
      if (wc / (T::BV / 2) == hh)
        for (int i = 0; i < 2; ++i)
          for (int j = 0; j < 2; ++j)
            wmma::store_matrix_sync(&Ss[wr + 16 * i][wc - hh * (T::BV / 2) + 16 * j], acc[i][j], T::LDS, wmma::mem_row_major);
      __syncthreads();
#pragma unroll
      for (int v = 0; v < T::OUT_STORES; ++v) {
        T::vec(tid, v, T::BV / 2, &r, &col);
        const float4 y = *reinterpret_cast<const float4*>(&Ss[r][col]);
        const float iv = Iv[r];
        const float o[4] = {iv * y.x, iv * y.y, iv * y.z, iv * y.w};
        b.write_h4(r, hh * (T::BV / 2) + col, o);
      }
      __syncthreads();
    }
  }
#endif
}

// Host replay of mlstm_fused_h_kernel: every block in turn, each phase for all threads by the kernel's own maps and
// values, each warp's fragments as 16 x 16 x 16 products summed in depth order (float32 sums of the rounded operands;
// `round` false keeps them unrounded), warp sums by the shuffle butterfly; shared memory NaN at each block's start and
// the accumulators NaN outside the warps' fragments (so a gap in their cover shows up).
void fused_h_replay(const FusedHArgs& A, bool round) {
  using T = FusedHTile;
  const Geo& g = A.g;
  auto rnd = [&](float v) { return round ? bf16_math::widen(bf16_math::round(v)) : v; };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> Qs(T::BQ * T::BK), Ks(T::BKV * T::BK), Bs(T::BK * T::BV), Ps(T::BQ * T::BKV), Ss(T::BQ * T::BKV),
      acc(T::BQ * T::BV), sacc(T::BQ * T::BKV), Rs(T::BQ), Iv(T::BQ);
  std::vector<double> Md(T::BQ), Wd(T::BKV);
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
  for (int64_t bid = 0; bid < T::blocks(g); ++bid) {
    const FusedHBlock b(A, bid);
    if (!b.active()) continue;
    fill(Qs, nan), fill(Ks, nan), fill(Bs, nan), fill(Ps, nan), fill(Ss, nan), fill(Iv, nan), fill(Wd, std::nan(""));
    for (int r = 0; r < T::BQ; ++r) Md[r] = b.row_max(r), Rs[r] = 0.0f;
    zero_cover(acc, T::BV, false);
    if (b.has) {
      for (int64_t j0 = 0; j0 < g.DK; j0 += T::BK) {
        stage(Qs, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.q_vals4(j0, tid, v, true, o); });
        stage(Bs, T::BV, T::B_LOADS, [&](int tid, int v, float* o) { b.c_vals4(j0, tid, v, o); });
        mma_out([&](int r, int kk) { return Qs[r * T::BK + kk]; });
      }
    }
    for (int kt = 0; kt < b.kv_tiles(); ++kt) {
      const int kv0 = kt * T::BKV;
      for (int s = 0; s < T::BKV; ++s) Wd[s] = b.kv_w(kv0, s);
      zero_cover(sacc, T::BKV, true);
      for (int64_t j0 = 0; j0 < g.DK; j0 += T::BK) {
        stage(Qs, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.q_vals4(j0, tid, v, false, o); });
        stage(Ks, T::BK, T::QK_LOADS, [&](int tid, int v, float* o) { b.k_vals4(kv0, j0, tid, v, o); });
        for (int r = 0; r < T::BQ; ++r)
          for (int s = 0; s < T::BKV; ++s) {
            float v = sacc[r * T::BKV + s];
            for (int kk = 0; kk < T::BK; ++kk) v = std::fma(Qs[r * T::BK + kk], Ks[s * T::BK + kk], v);
            sacc[r * T::BKV + s] = v;
          }
      }
      Ss = sacc;
      for (int r = 0; r < T::BQ; ++r) {
        for (int lane = 0; lane < 32; ++lane) {
          float part = 0.0f;
          for (int s2 = lane; s2 < T::BKV; s2 += 32) {
            const float p = b.weight(r, kv0, s2, Ss[r * T::BKV + s2], Md[r], Wd[s2]);
            Ps[r * T::BKV + s2] = rnd(p);
            part += p;
          }
          lanes[lane] = part;
        }
        Rs[r] += rows::host_row_reduce<rows::SumOp>(lanes, 32);
      }
      for (int s0 = 0; s0 < T::BKV; s0 += T::BK) {
        stage(Bs, T::BV, T::B_LOADS, [&](int tid, int v, float* o) { b.v_vals4(kv0 + s0, tid, v, o); });
        mma_out([&](int r, int kk) { return Ps[r * T::BKV + s0 + kk]; });
      }
    }
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
          for (int e = 0; e < 4; ++e) o[e] = Iv[r] * Ss[r * T::BKV + col + e];
          b.write_h4(r, hh * (T::BV / 2) + col, o);
        }
    }
  }
}

// Which writes the fused launch makes, as mlstm_coverage counts them: h (index into h) and den (index into saved).
template <class HitH, class HitDen>
void fused_h_cover(const Geo& g, float* saved_probe, HitH hit_h, HitDen hit_den) {
  using T = FusedHTile;
  const FusedHArgs A{g, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, saved_probe, nullptr};
  for (int64_t bid = 0; bid < T::blocks(g); ++bid) {
    const FusedHBlock b(A, bid);
    if (!b.active()) continue;
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
            const int64_t i = b.h_index(r, hh * (T::BV / 2) + col + e);
            if (i >= 0) hit_h(i);
          }
        }
  }
}

FusedHArgs fused_h_args(const Bf16FwdArgs& a) { return FusedHArgs{a.g, a.q, a.k, a.v, a.beta, a.gw, a.gp, a.saved, a.h}; }
void fused_h(const DeviceExec& ex, const Bf16FwdArgs& a) {
  mlstm_fused_h_kernel<<<static_cast<unsigned>(std::min<int64_t>(FusedHTile::blocks(a.g), kMaxBlocks)), FusedHTile::THREADS, 0, ex.st>>>(fused_h_args(a));
  launched(ex.entry);
}
void fused_h(const HostExec& ex, const Bf16FwdArgs& a) { fused_h_replay(fused_h_args(a), ex.round); }
