// Fused xLSTMLMModel inference (see xlstm_infer.h): session creation (copying and packing the parameters), the
// chunking of long inputs, state access, ISA dispatch, and the portable instantiation of xlstm_infer_engine.h.
#define XLSTM_INFER_VW 4
#define XLSTM_INFER_NB 2
#include "kernels/xlstm_infer_engine.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/cpu_features.h"

namespace xlstm {

// ---- InferBuf

InferBuf& InferBuf::operator=(InferBuf&& o) noexcept {
  if (this != &o) {
    std::free(p);
    p = o.p;
    n = o.n;
    o.p = nullptr;
    o.n = 0;
  }
  return *this;
}

InferBuf::~InferBuf() { std::free(p); }

void InferBuf::alloc(int64_t count) {
  std::free(p);
  p = nullptr;
  n = 0;
  if (count <= 0) return;
  const size_t bytes = ((static_cast<size_t>(count) * sizeof(float) + 63) / 64) * 64;
  void* q = std::aligned_alloc(64, bytes);
  if (!q) throw std::bad_alloc();
  std::memset(q, 0, bytes);
  p = static_cast<float*>(q);
  n = count;
}

namespace infer_detail {

const Impl& impl_scalar() {
  static const Impl impl = make_infer_impl();
  return impl;
}

namespace {

const Impl& impl_for_cpu() {
#ifdef XLSTM_X86
  return pick_simd_impl(impl_scalar, impl_avx2, impl_avx512);
#else
  return pick_simd_impl<Impl>(impl_scalar, nullptr, nullptr);
#endif
}

}  // namespace
}  // namespace infer_detail

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("infer_create: " + what);
}

void copy_into(InferBuf& dst, const float* src, int64_t count) {
  dst.alloc(count);
  if (src) std::memcpy(dst.p, src, sizeof(float) * count);
}

// gamma = 1 + w (the residual-weight LayerNorm, XLSTM_SPEC §5.3)
void one_plus(InferBuf& dst, const float* w, int64_t count) {
  dst.alloc(count);
  for (int64_t i = 0; i < count; ++i) dst.p[i] = 1.0f + w[i];
}

// W [out, in] row-major -> panels [ceil(out/64)][in][64], zero-padded; bias padded likewise.
void pack_dense(InferDense& D, const float* W, const float* b, int64_t out, int64_t in) {
  D.in = in;
  D.out = out;
  D.panels = (out + kInferPanel - 1) / kInferPanel;
  D.w.alloc(D.panels * in * kInferPanel);
  for (int64_t o = 0; o < out; ++o) {
    float* dst = D.w.p + (o / kInferPanel) * in * kInferPanel + (o % kInferPanel);
    const float* src = W + o * in;
    for (int64_t i = 0; i < in; ++i) dst[i * kInferPanel] = src[i];
  }
  if (b) {
    D.b.alloc(D.panels * kInferPanel);
    std::memcpy(D.b.p, b, sizeof(float) * out);
  }
}

// Block-diagonal weight W [F/Bq][Bq][Bq] -> the expanded layout Wx [Bq][F], Wx[d][c] = W[c/Bq][c%Bq][d].
void expand_headwise(InferBuf& dst, const float* W, int64_t F, int64_t Bq) {
  dst.alloc(Bq * F);
  for (int64_t c = 0; c < F; ++c)
    for (int64_t d = 0; d < Bq; ++d) dst.p[d * F + c] = W[c * Bq + d];
}

int64_t dense_bytes(const InferDense& D) { return (D.w.n + D.b.n) * static_cast<int64_t>(sizeof(float)); }

int64_t buf_bytes(std::initializer_list<const InferBuf*> bufs) {
  int64_t n = 0;
  for (const InferBuf* b : bufs) n += b->n;
  return n * static_cast<int64_t>(sizeof(float));
}

void ensure_rows(InferSession& s, int64_t rows) {
  if (rows <= s.rows_cap) return;
  s.x.alloc(rows * s.E);
  s.xn.alloc(rows * s.E);
  s.up.alloc(rows * s.max_up);
  s.u.alloc(rows * s.max_u);
  s.xc.alloc(rows * s.max_xc);
  s.hg.alloc(rows * s.max_hg);
  s.rows_cap = rows;
}

constexpr int64_t kChunkRows = 256;  // rows (B·t) per chunk of a long input

}  // namespace

std::unique_ptr<InferSession> infer_create(const InferModelSpec& spec, int64_t B) {
  require(B >= 1, "B must be >= 1");
  require(spec.V >= 1 && spec.E >= 1, "V and E must be >= 1");
  require(spec.embedding && spec.lm_head, "embedding and lm_head are required");
  auto s = std::make_unique<InferSession>();
  const int64_t V = spec.V, E = spec.E;
  s->V = V;
  s->E = E;
  s->B = B;
  copy_into(s->emb, spec.embedding, V * E);
  pack_dense(s->head, spec.lm_head, nullptr, V, E);
  s->post = spec.post_norm != nullptr;
  if (s->post) one_plus(s->post_norm, spec.post_norm, E);
  int64_t phases = 3;  // embedding; post norm and lm_head
  for (const InferBlockSpec& bs : spec.blocks) {
    InferBlock L;
    L.slstm = bs.slstm;
    L.NH = bs.NH;
    L.K = bs.K;
    require(bs.norm != nullptr, "a block needs xlstm_norm.weight");
    one_plus(L.norm, bs.norm, E);
    if (!bs.slstm) {
      const int64_t Di = bs.Di, NH = bs.NH, Bq = bs.Bq, K = bs.K;
      require(Di >= 1 && NH >= 1 && Di % NH == 0 && Bq >= 1 && Di % Bq == 0 && K >= 1, "bad mLSTM sizes");
      L.Di = Di;
      L.Bq = Bq;
      L.DH = Di / NH;
      pack_dense(L.up, bs.up_w, bs.up_b, 2 * Di, E);
      pack_dense(L.down, bs.down_w, bs.down_b, E, Di);
      L.conv_w.alloc(K * Di);
      for (int64_t c = 0; c < Di; ++c)
        for (int64_t j = 0; j < K; ++j) L.conv_w.p[j * Di + c] = bs.conv_w[c * K + j];
      copy_into(L.conv_b, bs.conv_b, Di);
      expand_headwise(L.qw, bs.q_w, Di, Bq);
      expand_headwise(L.kw, bs.k_w, Di, Bq);
      expand_headwise(L.vw, bs.v_w, Di, Bq);
      if (bs.q_b) copy_into(L.qb, bs.q_b, Di);
      if (bs.k_b) copy_into(L.kb, bs.k_b, Di);
      if (bs.v_b) copy_into(L.vb, bs.v_b, Di);
      L.gw.alloc(2 * NH * 3 * Di);
      std::memcpy(L.gw.p, bs.ig_w, sizeof(float) * NH * 3 * Di);
      std::memcpy(L.gw.p + NH * 3 * Di, bs.fg_w, sizeof(float) * NH * 3 * Di);
      L.gb.alloc(2 * NH);
      std::memcpy(L.gb.p, bs.ig_b, sizeof(float) * NH);
      std::memcpy(L.gb.p + NH, bs.fg_b, sizeof(float) * NH);
      one_plus(L.outnorm, bs.outnorm, Di);
      copy_into(L.skip, bs.skip, Di);
      L.conv_state.alloc(B * K * Di);
      L.c.alloc(B * NH * L.DH * L.DH);
      L.n.alloc(B * NH * L.DH);
      L.m.alloc(B * NH);
      s->max_up = std::max(s->max_up, 2 * Di);
      s->max_u = std::max(s->max_u, 3 * Di);
      s->max_xc = std::max(s->max_xc, Di);
      s->max_hg = std::max(s->max_hg, Di);
      phases += 5;
    } else {
      const int64_t NH = bs.NH, K = bs.K;
      require(NH >= 1 && E % NH == 0 && K >= 0, "bad sLSTM sizes");
      const int64_t DH = E / NH;
      L.DH = DH;
      L.lstm = bs.lstm;
      L.NS = bs.lstm ? 2 : 4;
      if (K > 0) {
        L.conv_w.alloc(K * E);
        for (int64_t c = 0; c < E; ++c)
          for (int64_t j = 0; j < K; ++j) L.conv_w.p[j * E + c] = bs.conv_w[c * K + j];
        copy_into(L.conv_b, bs.conv_b, E);
        L.conv_state.alloc(B * K * E);
      }
      // per head, transposed: wc[h][d][g*DH + o] = W_g[h, o, d] for g in (i, f); wn likewise for (z, o)
      L.wc.alloc(NH * DH * 2 * DH);
      L.wn.alloc(NH * DH * 2 * DH);
      const float* Wg[4] = {bs.w_i, bs.w_f, bs.w_z, bs.w_o};
      for (int g = 0; g < 4; ++g) {
        float* dst = g < 2 ? L.wc.p : L.wn.p;
        const int64_t col = (g % 2) * DH;
        for (int64_t h = 0; h < NH; ++h)
          for (int64_t o = 0; o < DH; ++o)
            for (int64_t d = 0; d < DH; ++d)
              dst[(h * DH + d) * 2 * DH + col + o] = Wg[g][(h * DH + o) * DH + d];
      }
      copy_into(L.R, bs.R, NH * DH * 4 * DH);
      copy_into(L.bias, bs.bias, 4 * E);
      if (bs.group_norm) one_plus(L.gn, bs.group_norm, E);
      L.state.alloc(L.NS * B * E);
      phases += 2;
    }
    if (bs.has_ffn) {
      require(bs.P >= 1, "bad FFN size");
      L.has_ffn = true;
      L.P = bs.P;
      L.act = bs.act;
      one_plus(L.ffn_norm, bs.ffn_norm, E);
      pack_dense(L.ffn_up, bs.ffn_up_w, bs.ffn_up_b, 2 * bs.P, E);
      pack_dense(L.ffn_down, bs.ffn_down_w, bs.ffn_down_b, E, bs.P);
      s->max_up = std::max(s->max_up, 2 * bs.P);
      s->max_hg = std::max(s->max_hg, bs.P);
      phases += 4;
    }
    s->blocks.push_back(std::move(L));
  }
  s->num_phases = phases;
  s->counters.reset(new InferPhaseCounter[phases]);
  s->xf.alloc(B * E);
  s->tmp.alloc(B * std::max(5 * E, 4 * s->max_xc));  // sLSTM: 5 DH per (row, head); mLSTM: 4 DH per (row, head)
  ensure_rows(*s, B);
  return s;
}

void infer_run(InferSession& s, float* logits, const int32_t* tokens, int64_t S) {
  if (S < 1) throw std::invalid_argument("infer_run: S must be >= 1");
  const int64_t T = std::max<int64_t>(1, std::min(S, kChunkRows / s.B));
  ensure_rows(s, s.B * T);
  const infer_detail::Impl& impl = infer_detail::impl_for_cpu();
  for (int64_t t0 = 0; t0 < S; t0 += T) {
    const int64_t len = std::min(T, S - t0);
    impl.run_chunk(s, t0 + len == S ? logits : nullptr, tokens, S, t0, len);
  }
}

void infer_reset(InferSession& s) {
  for (InferBlock& L : s.blocks)
    for (InferBuf* b : {&L.conv_state, &L.c, &L.n, &L.m, &L.state})
      if (b->p) std::memset(b->p, 0, sizeof(float) * b->n);
}

float* infer_state(InferSession& s, int64_t block, InferStatePart part, int64_t* len) {
  *len = 0;
  if (block < 0 || block >= static_cast<int64_t>(s.blocks.size())) return nullptr;
  InferBlock& L = s.blocks[block];
  InferBuf* b = nullptr;
  switch (part) {
    case InferStatePart::Conv: b = &L.conv_state; break;
    case InferStatePart::C: b = L.slstm ? nullptr : &L.c; break;
    case InferStatePart::N: b = L.slstm ? nullptr : &L.n; break;
    case InferStatePart::M: b = L.slstm ? nullptr : &L.m; break;
    case InferStatePart::Slstm: b = L.slstm ? &L.state : nullptr; break;
  }
  if (!b || !b->p) return nullptr;
  *len = b->n;
  return b->p;
}

int64_t infer_bytes(const InferSession& s) {
  int64_t n = buf_bytes({&s.emb, &s.post_norm, &s.x, &s.xn, &s.up, &s.u, &s.xc, &s.hg, &s.xf, &s.tmp}) + dense_bytes(s.head);
  for (const InferBlock& L : s.blocks) {
    n += dense_bytes(L.up) + dense_bytes(L.down) + dense_bytes(L.ffn_up) + dense_bytes(L.ffn_down);
    n += buf_bytes({&L.norm, &L.conv_w, &L.conv_b, &L.qw, &L.kw, &L.vw, &L.qb, &L.kb, &L.vb, &L.gw, &L.gb, &L.outnorm,
                    &L.skip, &L.wc, &L.wn, &L.R, &L.bias, &L.gn, &L.ffn_norm, &L.conv_state, &L.c, &L.n, &L.m,
                    &L.state});
  }
  n += s.num_phases * static_cast<int64_t>(sizeof(InferPhaseCounter));
  return n;
}

}  // namespace xlstm
