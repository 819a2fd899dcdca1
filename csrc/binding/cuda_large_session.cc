// Binding layer: the xLSTM Large device inference session (see cuda_large_session.h).
#include "cuda_large_session.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_api.h"
#include "device_kernels.h"
#include "device_session_buffers.h"
#include "kernels/mlstm.h"

namespace xlstm {

using session_detail::copy2d;
using session_detail::DevBuf;
using session_detail::binary_strided;
using session_detail::kF;
using session_detail::owner_of;
using session_detail::unary;

namespace {

// A projection: its parts' W [out_i, in] (float32, or bfloat16 packed two to a float slot) and b [out_i] or none,
// the model's own buffers, borrowed; the outputs side by side in [rows, out] (one part in the fused layout).
struct DevProj {
  struct Part {
    DevBuf w, b;
    int64_t out = 0;
  };
  std::vector<Part> parts;
  int64_t in = 0, out = 0;
  bf16_math::GemvParts gemv{};  // the parts for the bf16 GEMV of several weights (up to kMaxGemvParts)
};

struct LargeBlock {
  DevBuf norm_m_w, norm_m_b, mh_w, mh_b, norm_f_w, norm_f_b;
  DevProj qkvo, ifgate, out_proj, up, down;
  DevBuf c[2], n[2], m[2];
  int cur = 0;
};

}  // namespace

struct LargeDeviceSession final : DeviceSession {
  void run(float* logits, const int32_t* tokens, int64_t S) override;
  void reset() override;
  float* state(int64_t block, InferStatePart part, int64_t* len) override;
  int64_t bytes() const override;
  int64_t blocks() const override { return static_cast<int64_t>(layers.size()); }

  int64_t E = 0, NH = 0, qk = 0, vd = 0, up = 0, DK = 0, DV = 0;
  bool bf16 = false;
  float norm_eps = 0, eps = 0;
  double gate_cap = 0, out_cap = 0;
  DevBuf emb, head, out_w, out_b;
  std::vector<LargeBlock> layers;  // the blocks
  // scratch for B rows
  DevBuf tok, ones, x, a, sq, y, ms, inv, P, Ps, G, Gp, q, k, v, h, hn, hg, Z, Zs, u, mean, rstd, logits;
  // [B, largest part's out]: a bf16 part's output before it joins its projection's (past the GEMV's rows or parts)
  DevBuf part;
  std::vector<int32_t> host_tok;

  ~LargeDeviceSession() override { graphs.clear(); }  // before the buffers the graphs use
  // the device work of one token per row (uploaded to `tok`); with `head`, the logits
  void enqueue_token(bool head);
  StepGraphs::Parity parity() const {
    StepGraphs::Parity p;
    for (const LargeBlock& b : layers) p.push_back(static_cast<uint8_t>(b.cur));
    return p;
  }
  void set_parity(const StepGraphs::Parity& p) {
    for (size_t i = 0; i < layers.size(); ++i) layers[i].cur = p[i];
  }
};

namespace {

void borrow_proj(DevProj& d, const LargeProjSpec& p, const DeviceOwners& owners) {
  d.in = p.in, d.out = 0;
  d.parts.resize(p.parts.size());
  for (size_t i = 0; i < p.parts.size(); ++i) {
    d.parts[i].w.borrow(owner_of(owners, p.parts[i].w));
    d.parts[i].b.borrow(owner_of(owners, p.parts[i].b));
    d.parts[i].out = p.parts[i].out;
    d.out += p.parts[i].out;
  }
  if (d.parts.size() <= static_cast<size_t>(bf16_math::kMaxGemvParts)) {
    d.gemv.n = static_cast<int>(d.parts.size());
    for (int i = 0; i < d.gemv.n; ++i) {
      d.gemv.w[i] = d.parts[i].w.bf16(), d.gemv.b[i] = d.parts[i].b.p;
      d.gemv.start[i + 1] = d.gemv.start[i] + d.parts[i].out;
    }
  }
}

// y [rows, out] = x [rows, in] Wᵀ (+ b): ops.linear's device forms (float32: the bias broadcast by a product with a
// column of ones, then the GEMM added; bfloat16: the bf16 linear kernel)
void linear(const LargeDeviceSession& s, float* y, const float* x, int64_t rows, const float* w, const float* b,
            int64_t in, int64_t out) {
  if (s.bf16) return dk::bf16_linear(y, x, reinterpret_cast<const uint16_t*>(w), b, rows, in, out, false);
  session_detail::linear_f32(s.ones.p, y, out, x, in, rows, in, out, w, b);
}

// y [rows, p.out] = the parts' outputs side by side (each part's products are those of the fused layout's rows)
void linear(const LargeDeviceSession& s, float* y, const float* x, int64_t rows, const DevProj& p) {
  if (p.parts.size() == 1) return linear(s, y, x, rows, p.parts[0].w.p, p.parts[0].b.p, p.in, p.out);
  if (s.bf16 && rows <= bf16_math::kGemvMaxRows && p.gemv.n > 1)  // one GEMV over all the parts' weights
    return dk::bf16_linear_parts(y, x, p.gemv, rows, p.in);
  int64_t col = 0;
  for (const DevProj::Part& part : p.parts) {
    if (!s.bf16) {
      session_detail::linear_f32(s.ones.p, y + col, p.out, x, p.in, rows, p.in, part.out, part.w.p, part.b.p);
    } else {  // more than 8 rows (the bf16 linear's GEMM path writes dense rows): through the part scratch
      dk::bf16_linear(s.part.p, x, part.w.bf16(), part.b.p, rows, p.in, part.out, false);
      copy2d(y + col, p.out, s.part.p, part.out, part.out, rows);
    }
    col += part.out;
  }
}

// y [rows, E] = rmsNorm(x, w, b, eps) as lib/nn/large.ts composes it
void rms_norm(LargeDeviceSession& s, float* y, const float* x, int64_t rows, const DevBuf& w, const DevBuf& b) {
  const int64_t E = s.E, shape[2] = {rows, E};
  const uint8_t reduced[2] = {0, 1};
  binary_strided(BinaryOp::Mul, s.sq.p, x, E, x, E, 1, rows, E);
  dk::reduce_axes(ReduceOp::Mean, s.ms.p, nullptr, s.sq.p, 2, shape, reduced);
  unary(UnaryOp::Affine, s.inv.p, s.ms.p, rows, 1.0f, s.norm_eps);
  unary(UnaryOp::Log, s.inv.p, s.inv.p, rows);
  unary(UnaryOp::Affine, s.inv.p, s.inv.p, rows, -0.5f, 0.0f);
  unary(UnaryOp::Exp, s.inv.p, s.inv.p, rows);
  binary_strided(BinaryOp::Mul, y, x, E, s.inv.p, 1, 0, rows, E);
  if (w.p) binary_strided(BinaryOp::Mul, y, y, E, w.p, 0, 1, rows, E);
  if (b.p) binary_strided(BinaryOp::Add, y, y, E, b.p, 0, 1, rows, E);
}

// cap · tanh(x / cap) in place (softCap; cap 0: none)
void soft_cap(float* x, int64_t n, double cap) {
  if (cap == 0) return;
  unary(UnaryOp::Affine, x, x, n, static_cast<float>(1 / cap), 0.0f);
  unary(UnaryOp::Tanh, x, x, n);
  unary(UnaryOp::Affine, x, x, n, static_cast<float>(cap), 0.0f);
}

void block_step(LargeDeviceSession& s, LargeBlock& b) {
  const int64_t B = s.B, E = s.E, NH = s.NH, qk = s.qk, vd = s.vd, up = s.up, W = 2 * qk + 2 * vd;
  rms_norm(s, s.a.p, s.x.p, B, b.norm_m_w, b.norm_m_b);
  linear(s, s.P.p, s.a.p, B, b.qkvo);
  linear(s, s.G.p, s.a.p, B, b.ifgate);
  soft_cap(s.G.p, B * 2 * NH, s.gate_cap);
  // q / √DK, k · √DK (dense [B, qk]), v dense; the gates [B, 2, NH] -> [2, B, NH]
  // the scales as rounded from double, as ops.scale's alpha is
  const double root = std::sqrt(static_cast<double>(s.DK));
  const float q_scale = static_cast<float>(1 / root), k_scale = static_cast<float>(root);
  const float* v = s.P.p + 2 * qk;
  const float *ig = s.G.p, *fg = s.G.p + NH;
  if (B == 1) {
    unary(UnaryOp::Affine, s.q.p, s.P.p, qk, q_scale, 0.0f);
    unary(UnaryOp::Affine, s.k.p, s.P.p + qk, qk, k_scale, 0.0f);
  } else {
    copy2d(s.q.p, qk, s.P.p, W, qk, B);
    copy2d(s.k.p, qk, s.P.p + qk, W, qk, B);
    copy2d(s.v.p, vd, s.P.p + 2 * qk, W, vd, B);
    unary(UnaryOp::Affine, s.q.p, s.q.p, B * qk, q_scale, 0.0f);
    unary(UnaryOp::Affine, s.k.p, s.k.p, B * qk, k_scale, 0.0f);
    v = s.v.p;
    const int64_t g_shape[3] = {B, 2, NH}, g_perm[3] = {1, 0, 2};
    dk::permute(s.Gp.p, s.G.p, 4, g_shape, g_perm, 3);
    ig = s.Gp.p, fg = s.Gp.p + B * NH;
  }
  const int cur = b.cur, nxt = 1 - cur;
  const MlstmDims md{B, NH, 1, s.DK, s.DV};
  dk::mlstm_recurrent_forward(s.h.p, b.c[nxt].p, b.n[nxt].p, b.m[nxt].p, nullptr, s.q.p, s.k.p, v, ig, fg, b.c[cur].p,
                              b.n[cur].p, b.m[cur].p, md, s.eps);
  b.cur = nxt;
  dk::layer_norm(s.hn.p, s.mean.p, s.rstd.p, s.h.p, b.mh_w.p, b.mh_b.p, B, NH, s.DV, s.norm_eps, false);
  unary(UnaryOp::Sigmoid, s.Ps.p, s.P.p, B * W);
  binary_strided(BinaryOp::Mul, s.hg.p, s.Ps.p + 2 * qk + vd, W, s.hn.p, vd, 1, B, vd);  // σ(o) ⊙ hn
  linear(s, s.y.p, s.hg.p, B, b.out_proj);
  binary_strided(BinaryOp::Add, s.x.p, s.x.p, E, s.y.p, E, 1, B, E);
  rms_norm(s, s.a.p, s.x.p, B, b.norm_f_w, b.norm_f_b);
  linear(s, s.Z.p, s.a.p, B, b.up);
  unary(UnaryOp::Silu, s.Zs.p, s.Z.p, B * 2 * up);
  binary_strided(BinaryOp::Mul, s.u.p, s.Zs.p, 2 * up, s.Z.p + up, 2 * up, 1, B, up);  // SiLU(gate) ⊙ up
  linear(s, s.y.p, s.u.p, B, b.down);
  binary_strided(BinaryOp::Add, s.x.p, s.x.p, E, s.y.p, E, 1, B, E);
}

}  // namespace

std::shared_ptr<DeviceSession> large_device_create(const LargeModelSpec& spec, int64_t B, const DeviceOwners& owners) {
  auto s = std::make_shared<LargeDeviceSession>();
  s->V = spec.V, s->E = spec.E, s->NH = spec.NH, s->qk = spec.qk, s->vd = spec.vd, s->up = spec.up, s->B = B;
  s->DK = spec.qk / spec.NH, s->DV = spec.vd / spec.NH;
  s->bf16 = spec.bf16, s->norm_eps = spec.norm_eps, s->eps = spec.eps, s->gate_cap = spec.gate_cap, s->out_cap = spec.out_cap;
  const int64_t E = s->E, NH = s->NH;
  const auto borrow = [&](DevBuf& d, const void* ptr) { d.borrow(owner_of(owners, ptr)); };
  borrow(s->emb, spec.embedding);
  borrow(s->head, spec.lm_head);
  borrow(s->out_w, spec.out_norm_w);
  borrow(s->out_b, spec.out_norm_b);
  int64_t max_part = 0;
  size_t most_parts = 0;
  s->layers.resize(spec.blocks.size());
  for (size_t i = 0; i < spec.blocks.size(); ++i) {
    const LargeBlockSpec& in = spec.blocks[i];
    LargeBlock& b = s->layers[i];
    borrow(b.norm_m_w, in.norm_m_w), borrow(b.norm_m_b, in.norm_m_b);
    borrow(b.norm_f_w, in.norm_f_w), borrow(b.norm_f_b, in.norm_f_b);
    borrow(b.mh_w, in.mh_w), borrow(b.mh_b, in.mh_b);
    borrow_proj(b.qkvo, in.qkvo, owners);
    borrow_proj(b.ifgate, in.ifgate, owners);
    borrow_proj(b.out_proj, in.out_proj, owners);
    borrow_proj(b.up, in.up, owners);
    borrow_proj(b.down, in.down, owners);
    for (const DevProj* p : {&b.qkvo, &b.ifgate, &b.out_proj, &b.up, &b.down})
      if (p->parts.size() > 1) {
        for (const DevProj::Part& part : p->parts) max_part = std::max(max_part, part.out);
        most_parts = std::max(most_parts, p->parts.size());
      }
    for (int j = 0; j < 2; ++j) b.c[j].alloc(B * NH * s->DK * s->DV), b.n[j].alloc(B * NH * s->DK), b.m[j].alloc(B * NH);
  }
  // bf16 parts run one by one through the part scratch past the GEMV's rows or parts (cuda_large_session.cc linear)
  if (spec.bf16 && (B > bf16_math::kGemvMaxRows || most_parts > bf16_math::kMaxGemvParts)) s->part.alloc(B * max_part);
  const int64_t W = 2 * s->qk + 2 * s->vd;
  s->tok.alloc(B);
  std::vector<float> ones(static_cast<size_t>(B), 1.0f);
  s->ones.alloc(B);
  cuda::copy_to_device(s->ones.p, ones.data(), static_cast<size_t>(B * kF));
  for (DevBuf* d : {&s->x, &s->a, &s->sq, &s->y}) d->alloc(B * E);
  for (DevBuf* d : {&s->ms, &s->inv}) d->alloc(B);
  for (DevBuf* d : {&s->P, &s->Ps}) d->alloc(B * W);
  for (DevBuf* d : {&s->G, &s->Gp}) d->alloc(B * 2 * NH);
  for (DevBuf* d : {&s->q, &s->k}) d->alloc(B * s->qk);
  for (DevBuf* d : {&s->v, &s->h, &s->hn, &s->hg}) d->alloc(B * s->vd);
  for (DevBuf* d : {&s->Z, &s->Zs}) d->alloc(B * 2 * s->up);
  s->u.alloc(B * s->up);
  for (DevBuf* d : {&s->mean, &s->rstd}) d->alloc(B * NH);
  s->logits.alloc(B * s->V);
  s->host_tok.resize(static_cast<size_t>(B));
  return s;
}

void LargeDeviceSession::enqueue_token(bool head) {
  LargeDeviceSession& s = *this;
  const int64_t B = s.B, E = s.E;
  const int32_t* ids = reinterpret_cast<const int32_t*>(s.tok.p);
  if (s.bf16) dk::bf16_embedding(s.x.p, s.emb.bf16(), ids, B, E);
  else dk::embedding(s.x.p, s.emb.p, ids, B, E);
  for (LargeBlock& b : s.layers) block_step(s, b);
  if (!head) return;
  const float* last = s.x.p;
  if (s.out_w.p) {
    rms_norm(s, s.a.p, s.x.p, B, s.out_w, s.out_b);
    last = s.a.p;
  }
  linear(s, s.logits.p, last, B, s.head.p, nullptr, E, s.V);
  soft_cap(s.logits.p, B * s.V, s.out_cap);
}

void LargeDeviceSession::run(float* logits, const int32_t* tokens, int64_t S) {
  LargeDeviceSession& s = *this;
  const int64_t B = s.B;
  for (int64_t t = 0; t < S; ++t) {
    for (int64_t b = 0; b < B; ++b) s.host_tok[static_cast<size_t>(b)] = tokens[b * S + t];
    cuda::copy_to_device(s.tok.p, s.host_tok.data(), static_cast<size_t>(B) * sizeof(int32_t));
    // every token is the same work on the same buffers (session_graphs.h), the last with the head: keyed by both
    const bool head = t + 1 == S;
    s.graphs.step([this, head] { enqueue_token(head); },
                  [this, head] {
                    StepGraphs::Parity p = parity();
                    p.push_back(static_cast<uint8_t>(head));
                    return p;
                  },
                  [this](const StepGraphs::Parity& p) { set_parity(p); });  // (the head byte is the key's only)
  }
  cuda::copy_to_host(logits, s.logits.p, static_cast<size_t>(B * s.V * kF));
}

void LargeDeviceSession::reset() {
  LargeDeviceSession& s = *this;
  for (LargeBlock& b : s.layers)
    for (DevBuf* d : {&b.c[b.cur], &b.n[b.cur], &b.m[b.cur]}) cuda::fill_zero(d->p, static_cast<size_t>(d->n * kF));
}

float* LargeDeviceSession::state(int64_t block, InferStatePart part, int64_t* len) {
  LargeDeviceSession& s = *this;
  LargeBlock& b = s.layers.at(static_cast<size_t>(block));
  DevBuf* d = part == InferStatePart::C ? &b.c[b.cur] : part == InferStatePart::N ? &b.n[b.cur] : part == InferStatePart::M ? &b.m[b.cur] : nullptr;
  if (!d) return nullptr;
  *len = d->n;
  return d->p;
}

int64_t LargeDeviceSession::bytes() const {
  const LargeDeviceSession& s = *this;
  int64_t n = 0;
  // the session's own memory: the state and the scratch (the weights are the model's, borrowed)
  for (const DevBuf* d : {&s.tok, &s.ones, &s.x, &s.a, &s.sq, &s.y, &s.ms, &s.inv, &s.P, &s.Ps, &s.G, &s.Gp, &s.q,
                          &s.k, &s.v, &s.h, &s.hn, &s.hg, &s.Z, &s.Zs, &s.u, &s.mean, &s.rstd, &s.logits, &s.part})
    n += d->n;
  for (const LargeBlock& b : s.layers)
    for (const DevBuf* d : {&b.c[0], &b.c[1], &b.n[0], &b.n[1], &b.m[0], &b.m[1]}) n += d->n;
  return n * kF;
}

}  // namespace xlstm
