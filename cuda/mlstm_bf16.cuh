// The chunkwise mLSTM cell under the bfloat16 autocast (cuda/mlstm.cu, XLSTM_SPEC §4.5 / §4.6): the products on
// tensor cores (bf16 operands, float32 sums: cuda/gemm_bf16.h's grouped GEMM, a product per (head, chunk)), the
// gates, stabilisers, normaliser, state recurrences and every sum outside the products in float32 / float64 as the
// float32 form. Same `saved` layout and contents (C_c, n_c, m, μ, den), so either form's backward reads either
// form's forward. Included into mlstm.cu's anonymous namespace: it reuses the geometry (Geo, sv_*, chunk_len,
// row_M), the gate / position / n-state / reduce / dots kernels around it, and replaces only the float32 form's
// tiled products (fwd_state_tile + tile<FWD_H>; bwd_lambda_tile + tile<DQ / DK / DV>).
//
// Forward, per (bh, chunk c of length l), positions τ, σ of the chunk (LL: an L x L scratch per chunk):
//   ΔC     saved C slot c+1 = (sα ⊙ K_c)ᵀ V_c                      (then C_{c+1} = ΔC + γ_c C_c: state_scan)
//   S      LL = Q_c K_cᵀ;  P = s S ⊙ exp(w_σ − M_τ) for σ ≤ τ, else 0  (weights, in place)
//   den    Σ_σ P_τσ + β_τ q_τ·n_c; inv = 1 / (max(|den|, exp(−μ)) + ε)  (a warp per position; den saved)
//   h      (inv ⊙ P) V_c + (inv β ⊙ Q_c) C_c                        (two products into h, the second with beta 1)
// Backward (β, sα, inv, ρ from bwd_pos as the float32 form):
//   ΔΛ     lam slot c = (β inv ⊙ Q_c)ᵀ dH_c  (then Λ_c = ΔΛ_c + γ_c Λ_{c+1} in reverse: lambda_scan)
//   Ω'     LL = (inv ⊙ dH_c) V_cᵀ;  Ω' = s (LL + ρ_τ) ⊙ exp(w_σ − M_τ), causal
//   dq     Ω' K_c + (β inv ⊙ dH_c) C_cᵀ + β ρ n_c                 (the last term: grad_extras)
//   dk     Ω'ᵀ Q_c + (sα ⊙ V_c) Λᶜ_{c+1}ᵀ + sα Λⁿ_{c+1}
//   dv     Pᵀ (inv ⊙ dH_c) + (sα ⊙ K_c) Λᶜ_{c+1}                   (P recomputed into LL)
// A sequence whose length is not a multiple of the chunk runs each product twice: over the full chunks, then over
// the last one with its own length. Everything here is __host__ __device__ item code or a grouped GEMM, run by an
// executor: DeviceExec (kernels on the stream) or HostExec (the host replay: the same items in a loop, warp sums by
// the shuffle butterfly, the GEMM by gemm_bf16_grouped_host with the same rounding).

// ---- item code ---------------------------------------------------------------------------------------------------

// out[p] = a[p] · b[p]
struct Bf16Product {
  const float *a, *b;
  float* out;
  XLSTM_MLSTM_HD void operator()(int64_t p) const { out[p] = a[p] * b[p]; }
};

// C_{c+1} = ΔC_c + γ_c C_c over the chunks (ΔC_c in saved slot c+1 on entry), C_0 = c0 or 0, c_last = scale · C_NC;
// an item per (bh, element of C), as fwd_state_item.
struct Bf16StateScan {
  Geo g;
  const float *gamma, *scale, *c0;
  float *saved, *c_last;
  XLSTM_MLSTM_HD void operator()(int64_t idx) const {
    const int64_t DKV = g.DK * g.DV, bh = idx / DKV, e = idx % DKV;
    float* sv = saved + bh * g.W;
    float val = c0 ? c0[idx] : 0.0f;
    sv[sv_C(g, 0) + e] = val;
    for (int64_t c = 0; c < g.NC; ++c) {
      const float gm = gamma[bh * g.NC + c], acc = sv[sv_C(g, c + 1) + e];
      val = gm != 0.0f ? acc + gm * val : acc;
      sv[sv_C(g, c + 1) + e] = val;
    }
    if (c_last) c_last[idx] = scale[bh] * val;
  }
};

// Λ_c = ΔΛ_c + γ_c Λ_{c+1} in reverse (ΔΛ_c in lam slot c on entry, which leaves holding Λ_{c+1}), 0 where m_c is not
// finite; Λ_NC from dc_last; Λ_0 into lam0 and dc0. An item per (bh, element of Λᶜ), as bwd_lambda_item.
struct Bf16LambdaScan {
  Geo g;
  const float *saved, *gamma, *dc_last;
  float *lam, *lam0, *dc0;
  XLSTM_MLSTM_HD void operator()(int64_t idx) const {
    const int64_t DKV = g.DK * g.DV, E = state_elems(g), bh = idx / DKV, e = idx % DKV;
    const float* Ms = saved + bh * g.W + sv_m(g);
    float val = 0.0f;
    if (dc_last) val = static_cast<float>(exp(static_cast<double>(Ms[g.NC]) - static_cast<double>(Ms[g.NC + 1]))) * dc_last[idx];
    for (int64_t c = g.NC - 1; c >= 0; --c) {
      float* slot = lam + (bh * g.NC + c) * E + e;
      const float d = *slot;
      *slot = val;
      val = finite_f(Ms[c]) ? d + gamma[bh * g.NC + c] * val : 0.0f;
    }
    lam0[bh * E + e] = val;
    if (dc0) dc0[idx] = val;
  }
};

// The L x L weights of every chunk in place: P = (s S) E (omega false) or Ω' = s ((S + ρ_τ) E) (omega true), E =
// exp(w_σ − M_τ), 0 outside the causal triangle and the chunk; an item per element, the float32 form's weights().
struct Bf16Weights {
  Geo g;
  const double *gw, *gp;
  const float *saved, *rho;
  float* ll;
  bool omega;
  XLSTM_MLSTM_HD void operator()(int64_t idx) const {
    const int64_t sig = idx % g.L, tau = (idx / g.L) % g.L, bc = idx / (g.L * g.L), c = bc % g.NC, bh = bc / g.NC;
    const int64_t l = chunk_len(g, c);
    if (tau >= l || sig > tau) {
      ll[idx] = 0.0f;
      return;
    }
    const float* Ms = saved + bh * g.W + sv_m(g);
    const int64_t pt = bh * g.S + c * g.L + tau, ps = pt - tau + sig;
    const double M = row_M(finite_f(Ms[c]), Ms[c], gp[pt]);
    const float ex = fm_exp(static_cast<float>(gw[ps] - M));
    ll[idx] = omega ? g.s * ((ll[idx] + rho[pt]) * ex) : (g.s * ll[idx]) * ex;
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

// dq += β ρ n_c (where a state enters the chunk) and dk += sα Λⁿ_{c+1}: an item per (position, j < DK).
struct Bf16GradExtras {
  Geo g;
  const float *saved, *beta, *rho, *alpha, *lam;
  float *dq, *dk;
  XLSTM_MLSTM_HD void operator()(int64_t idx) const {
    const int64_t p = idx / g.DK, j = idx % g.DK, bh = p / g.S, c = (p % g.S) / g.L;
    const float* sv = saved + bh * g.W;
    if (finite_f(sv[sv_m(g) + c])) dq[idx] += (beta[p] * rho[p]) * sv[sv_n(g, c) + j];
    dk[idx] += alpha[p] * lam[(bh * g.NC + c) * state_elems(g) + g.DK * g.DV + j];
  }
};

// ---- executors ---------------------------------------------------------------------------------------------------

template <class F>
__global__ void __launch_bounds__(kThreads) bf16_items_kernel(F f, int64_t n) {
  XLSTM_GRID_STRIDE(i, n) f(i);
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

struct DeviceExec {
  cudaStream_t st;
  const char* entry;
  template <class F>
  void items(int64_t n, const F& f) const {
    if (n <= 0) return;
    bf16_items_kernel<F><<<grid_for(n, kThreads), kThreads, 0, st>>>(f, n);
    launched(entry);
  }
  template <class F>
  void warp_items(int64_t n, const F& f) const {
    if (n <= 0) return;
    bf16_warp_items_kernel<F><<<grid_for(n, kWarps), kThreads, 0, st>>>(f, n);
    launched(entry);
  }
  void gemm(const Bf16Grouped& G) const { gemm_bf16_grouped(G, st); }
};

struct HostExec {
  bool round = true;  // false: the products unrounded (gemm_bf16_grouped_host)
  template <class F>
  void items(int64_t n, const F& f) const {
    for (int64_t i = 0; i < n; ++i) f(i);
  }
  template <class F>
  void warp_items(int64_t n, const F& f) const {
    float v[32];
    for (int64_t p = 0; p < n; ++p) {
      for (int lane = 0; lane < 32; ++lane) v[lane] = f.part(p, lane);
      f.finish(p, rows::host_row_reduce<rows::SumOp>(v, 32));
    }
  }
  void gemm(const Bf16Grouped& G) const { gemm_bf16_grouped_host(G, round); }
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
inline Bf16Operand pos_op(const Geo& g, const float* x, int64_t D, int64_t c, const float* scale = nullptr, bool scale_k = true) {
  Bf16Operand o;
  o.p = x + c * g.L * D, o.ld = D, o.outer = g.S * D, o.inner = g.L * D;
  if (scale) o.scale = scale + c * g.L, o.s_outer = g.S, o.s_inner = g.L, o.scale_k = scale_k;
  return o;
}
inline Bf16Operand ll_op(const Geo& g, const float* ll, int64_t c, const float* scale = nullptr) {
  Bf16Operand o;
  o.p = ll + c * g.L * g.L, o.ld = g.L, o.outer = g.NC * g.L * g.L, o.inner = g.L * g.L;
  if (scale) o.scale = scale + c * g.L, o.s_outer = g.S, o.s_inner = g.L, o.scale_k = false;
  return o;
}
inline Bf16Operand slot_op(const Geo& g, const float* base, int64_t slot, int64_t slot_elems, int64_t per_bh) {
  Bf16Operand o;
  o.p = base + slot * slot_elems, o.ld = g.DV, o.outer = per_bh, o.inner = slot_elems;
  return o;
}

// C = op(A) op(B) (+ C when accumulate) for every head over `count` chunks
template <class Exec>
void bf16_gemm(const Exec& ex, const Geo& g, int64_t count, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               const Bf16Operand& a, const Bf16Operand& b, const Bf16Operand& c, bool accumulate) {
  Bf16Grouped G;
  G.ta = ta, G.tb = tb, G.groups = g.BH, G.per_group = count, G.M = M, G.N = N, G.K = K;
  G.alpha = 1.0f, G.beta = accumulate ? 1.0f : 0.0f;
  G.a = a, G.b = b;
  G.c = const_cast<float*>(c.p), G.ldc = c.ld, G.c_outer = c.outer, G.c_inner = c.inner;
  ex.gemm(G);
}

// P (omega false) or Ω' of every chunk into ll: LL = Q Kᵀ or (inv ⊙ dH) Vᵀ, then the weights
template <class Exec>
void bf16_chunk_weights(const Exec& ex, const Geo& g, const float* a, const float* b, int64_t D, const float* a_scale,
                        const double* gw, const double* gp, const float* saved, const float* rho, float* ll, bool omega) {
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, false, true, l, l, D, pos_op(g, a, D, c, a_scale, false), pos_op(g, b, D, c), ll_op(g, ll, c), false);
  });
  ex.items(g.BH * g.NC * g.L * g.L, Bf16Weights{g, gw, gp, saved, rho, ll, omega});
}

struct Bf16FwdArgs {
  Geo g;
  const float *q, *k, *v, *alpha, *beta, *gamma, *scale, *c0;
  const double *gw, *gp;
  float *saved, *c_last, *h;
  float *ll, *inv, *ib;  // scratch: BH·NC·L·L, BH·S, BH·S
};

// The forward after the gates, stabilisers and n states: C states, weights, normaliser, h.
template <class Exec>
void bf16_forward(const Exec& ex, const Bf16FwdArgs& a) {
  const Geo& g = a.g;
  const int64_t DKV = g.DK * g.DV;
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, true, false, g.DK, g.DV, l, pos_op(g, a.k, g.DK, c, a.alpha), pos_op(g, a.v, g.DV, c),
              slot_op(g, a.saved, c + 1, DKV, g.W), false);
  });
  ex.items(g.BH * DKV, Bf16StateScan{g, a.gamma, a.scale, a.c0, a.saved, a.c_last});
  bf16_chunk_weights(ex, g, a.q, a.k, g.DK, nullptr, a.gw, a.gp, a.saved, nullptr, a.ll, false);
  ex.warp_items(g.BH * g.S, Bf16Den{g, a.q, a.ll, a.beta, a.saved, a.inv, a.ib});
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, false, false, l, g.DV, l, ll_op(g, a.ll, c, a.inv), pos_op(g, a.v, g.DV, c), pos_op(g, a.h, g.DV, c), false);
    bf16_gemm(ex, g, n, false, false, l, g.DV, g.DK, pos_op(g, a.q, g.DK, c, a.ib, false), slot_op(g, a.saved, c, DKV, g.W),
              pos_op(g, a.h, g.DV, c), true);
  });
}

struct Bf16BwdArgs {
  Geo g;
  const float *q, *k, *v, *dh, *saved, *alpha, *beta, *inv, *rho, *gamma, *dc_last;
  const double *gw, *gp;
  float *lam, *lam0, *dc0, *dq, *dk, *dv;
  float *ll, *ib;  // scratch: BH·NC·L·L, BH·S
};

// Λᶜ of every chunk (before bwd_reduce; the n part is bwd_lambda_n's)
template <class Exec>
void bf16_lambda(const Exec& ex, const Bf16BwdArgs& a) {
  const Geo& g = a.g;
  const int64_t E = state_elems(g);
  ex.items(g.BH * g.S, Bf16Product{a.beta, a.inv, a.ib});
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, true, false, g.DK, g.DV, l, pos_op(g, a.q, g.DK, c, a.ib), pos_op(g, a.dh, g.DV, c),
              slot_op(g, a.lam, c, E, g.NC * E), false);
  });
  ex.items(g.BH * g.DK * g.DV, Bf16LambdaScan{g, a.saved, a.gamma, a.dc_last, a.lam, a.lam0, a.dc0});
}

// dq, dk, dv (after bf16_lambda and bwd_lambda_n)
template <class Exec>
void bf16_grads(const Exec& ex, const Bf16BwdArgs& a) {
  const Geo& g = a.g;
  const int64_t DKV = g.DK * g.DV, E = state_elems(g);
  bf16_chunk_weights(ex, g, a.dh, a.v, g.DV, a.inv, a.gw, a.gp, a.saved, a.rho, a.ll, true);
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, false, false, l, g.DK, l, ll_op(g, a.ll, c), pos_op(g, a.k, g.DK, c), pos_op(g, a.dq, g.DK, c), false);
    bf16_gemm(ex, g, n, false, true, l, g.DK, g.DV, pos_op(g, a.dh, g.DV, c, a.ib, false), slot_op(g, a.saved, c, DKV, g.W),
              pos_op(g, a.dq, g.DK, c), true);
    bf16_gemm(ex, g, n, true, false, l, g.DK, l, ll_op(g, a.ll, c), pos_op(g, a.q, g.DK, c), pos_op(g, a.dk, g.DK, c), false);
    bf16_gemm(ex, g, n, false, true, l, g.DK, g.DV, pos_op(g, a.v, g.DV, c, a.alpha, false), slot_op(g, a.lam, c, E, g.NC * E),
              pos_op(g, a.dk, g.DK, c), true);
  });
  ex.items(g.BH * g.S * g.DK, Bf16GradExtras{g, a.saved, a.beta, a.rho, a.alpha, a.lam, a.dq, a.dk});
  bf16_chunk_weights(ex, g, a.q, a.k, g.DK, nullptr, a.gw, a.gp, a.saved, nullptr, a.ll, false);
  bf16_chunk_runs(g, [&](int64_t c, int64_t n, int64_t l) {
    bf16_gemm(ex, g, n, true, false, l, g.DV, l, ll_op(g, a.ll, c), pos_op(g, a.dh, g.DV, c, a.inv), pos_op(g, a.dv, g.DV, c), false);
    bf16_gemm(ex, g, n, false, false, l, g.DV, g.DK, pos_op(g, a.k, g.DK, c, a.alpha, false), slot_op(g, a.lam, c, E, g.NC * E),
              pos_op(g, a.dv, g.DV, c), true);
  });
}
