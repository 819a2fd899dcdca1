// Binding layer: the device inference session (see cuda_infer_session.h).
#include "cuda_infer_session.h"

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "cuda_api.h"
#include "device_kernels.h"
#include "device_session_buffers.h"
#include "kernels/mlstm.h"
#include "kernels/recurrent.h"

namespace xlstm {

using session_detail::copy2d;
using session_detail::DevBuf;
using session_detail::kF;
using session_detail::owner_of;
using session_detail::unary;

namespace {
constexpr float kNormEps = 1e-5f;   // the blocks' layer norms and the per-head norms (XLSTM_SPEC §5.3, §5.4)
constexpr float kMlstmEps = 1e-6f;  // the mLSTM normaliser's (ops.mlstm's default, the reference's)
constexpr int64_t kChunkRows = 256; // rows (B·T) per chunk of a long input
// From this many positions per call the cell runs its chunkwise form (chunks of kCellChunk, ops.mlstm's default on
// CUDA), whose launches do the chunk's products in parallel; below it the recurrent form, whose three launches walk
// the positions one by one (a step: T = 1). Both forms keep the one state convention (kernels/mlstm.h), so a prefill
// and the steps after it hand the state on unchanged. (Past B = kChunkRows / kChunkwiseFrom = 4 rows, a call's chunks
// are under 64 positions and prefill stays recurrent: a larger chunk would grow every scratch buffer with B·T.)
constexpr int64_t kChunkwiseFrom = 64;
constexpr int64_t kCellChunk = 64;

struct DevBlock {
  bool slstm = false, lstm = false, has_ffn = false;
  int64_t NH = 0, DH = 0, K = 0, F = 0, Di = 0, Bq = 0, P = 0, NS = 0;
  InferAct act = InferAct::Gelu;
  DevBuf norm;
  // mLSTM
  DevBuf up_w, up_b, q_w, q_b, k_w, k_b, v_w, v_b, conv_w, conv_b, ig_w, ig_b, fg_w, fg_b, outnorm, skip, down_w, down_b;
  // sLSTM: bias_src the model's bias (head, gate, unit), bias its permute into the kernel's (gate, head, unit) order,
  // redone by every chunk so that the session reads the model's current weights, as it does the borrowed ones
  DevBuf w_i, w_f, w_z, w_o, R, bias_src, bias, group_norm;
  // FFN
  DevBuf ffn_norm, ffn_up_w, ffn_up_b, ffn_down_w, ffn_down_b;
  // state: the conv window [B, K, F] twice (a step builds the next window in the other one: `wcur` is the live one);
  // mLSTM c, n, m twice (the recurrent kernel's outputs may not alias its inputs: `cur` is the live set); sLSTM
  // [NS, B, E]
  DevBuf window[2], c[2], n[2], m[2], state;
  int cur = 0, wcur = 0;
};

}  // namespace

struct DeviceInferSession final : DeviceSession {
  void run(float* logits, const int32_t* tokens, int64_t S) override;
  void reset() override;
  float* state(int64_t block, InferStatePart part, int64_t* len) override;
  int64_t bytes() const override;
  int64_t blocks() const override { return static_cast<int64_t>(layers.size()); }
  bool block_is_slstm(int64_t block) const override { return layers.at(static_cast<size_t>(block)).slstm; }

  int64_t E = 0, Tcap = 1, rows_cap = 0;
  bool post = false;
  DevBuf emb, head, post_norm;
  std::vector<DevBlock> layers;  // the blocks
  // scratch for rows_cap rows: tokens (int32), ones; x, xn, y [rows, E]; mean, rstd [rows, max NH]; up, act, act2
  // [rows, max up]; hist, conv [B, max K - 1 + Tcap, max F]; xc [rows, max F]; qkv, qkvp [rows, 3 max Di]; ig, fg,
  // igp, fgp [rows, max NH]; s1, s2, s3 [rows, max(Di, P, E)]; pre, gates [rows, 4E]; states [4, rows, E]; xl, xf
  // [B, E]; logits [B, V]
  DevBuf tok, ones, x, xn, y, mean, rstd, up, act, act2, hist, conv, xc, qkv, qkvp, ig, fg, igp, fgp, s1, s2, s3, pre,
      gates, states, xl, xf, logits;
  std::vector<int32_t> host_tok;
  ~DeviceInferSession() override { graphs.clear(); }  // before the buffers the graphs use

  // the device work of a chunk of T tokens per row (uploaded to `tok`); with `head`, the logits of its last position
  void enqueue_chunk(int64_t T, bool head);
  StepGraphs::Parity parity() const {
    StepGraphs::Parity p;
    for (const DevBlock& b : layers) p.push_back(static_cast<uint8_t>(b.cur)), p.push_back(static_cast<uint8_t>(b.wcur));
    return p;
  }
  void set_parity(const StepGraphs::Parity& p) {
    for (size_t i = 0; i < layers.size(); ++i) layers[i].cur = p[2 * i], layers[i].wcur = p[2 * i + 1];
  }
  std::vector<DevBuf*> all_buffers() {
    std::vector<DevBuf*> v = {&emb, &head, &post_norm, &tok, &ones, &x, &xn, &y, &mean, &rstd, &up, &act, &act2,
                              &hist, &conv, &xc, &qkv, &qkvp, &ig, &fg, &igp, &fgp, &s1, &s2, &s3, &pre, &gates,
                              &states, &xl, &xf, &logits};
    for (DevBlock& b : layers)
      for (DevBuf* d : {&b.norm, &b.up_w, &b.up_b, &b.q_w, &b.q_b, &b.k_w, &b.k_b, &b.v_w, &b.v_b, &b.conv_w,
                        &b.conv_b, &b.ig_w, &b.ig_b, &b.fg_w, &b.fg_b, &b.outnorm, &b.skip, &b.down_w, &b.down_b,
                        &b.w_i, &b.w_f, &b.w_z, &b.w_o, &b.R, &b.bias_src, &b.bias, &b.group_norm, &b.ffn_norm, &b.ffn_up_w,
                        &b.ffn_up_b, &b.ffn_down_w, &b.ffn_down_b, &b.window[0], &b.window[1], &b.c[0], &b.c[1], &b.n[0], &b.n[1],
                        &b.m[0], &b.m[1], &b.state})
        v.push_back(d);
    return v;
  }
};

namespace {

// out [rows, outF] (leading dimension ld_out) = in [rows, inF] (ld_in) Wᵀ (+ b): ops.linear's device form (the
// bias broadcast into the output by a product with a column of ones, then the product added)
void linear(const DeviceInferSession& s, float* out, int64_t ld_out, const float* in, int64_t ld_in, int64_t rows,
            int64_t inF, int64_t outF, const DevBuf& W, const DevBuf& b) {
  session_detail::linear_f32(s.ones.p, out, ld_out, in, ld_in, rows, inF, outF, W.p, b.p);
}

// out[r, hb·O + o] (leading dimension ld_out) = Σ_d x[r, hb·I + d] W[hb, o, d] (+ b): ops.headwiseLinearConcat's
// device form for one part, a strided batched product over the NB blocks
void headwise(const DeviceInferSession& s, float* out, int64_t ld_out, const float* x, int64_t ld_x, int64_t rows,
              const DevBuf& W, const DevBuf& b, int64_t NB, int64_t O, int64_t I) {
  if (b.p) dk::gemm(false, false, NB, rows, O, 1, 1.0f, s.ones.p, 1, 0, b.p, O, O, 0.0f, out, ld_out, O);
  dk::gemm(false, true, NB, rows, O, I, 1.0f, x, ld_x, I, W.p, I, O * I, b.p ? 1.0f : 0.0f, out, ld_out, O);
}

void layer_norm(DeviceInferSession& s, float* y, const float* x, int64_t rows, int64_t groups, int64_t dim, const DevBuf& w) {
  dk::layer_norm(y, s.mean.p, s.rstd.p, x, w.p, nullptr, rows, groups, dim, kNormEps, true);
}

// out [rows, cols] = a ⊙ b (or a + b) with row strides lda, ldb (in-place reads of column ranges)
void binary_rows(BinaryOp op, float* out, const float* a, int64_t lda, const float* b, int64_t ldb, int64_t rows, int64_t cols) {
  session_detail::binary_strided(op, out, a, lda, b, ldb, 1, rows, cols);
}

// x += y over [rows, E]
void add_into(float* x, const float* y, int64_t rows, int64_t E) { binary_rows(BinaryOp::Add, x, x, E, y, E, rows, E); }

// The causal conv branch of a chunk: the window's last K-1 rows and the chunk's inputs src [B·T, F] (row stride
// ld_src) as hist [B, K-1+T, F]; SiLU(conv(hist)) at the chunk's rows, dense [B·T, F] (returned: s.xc, or for one
// batch row the conv output's rows in place); the window becomes hist's last K rows. A step (T = 1) builds hist in the
// other window buffer, which then is the window: no copy back.
const float* conv_branch(DeviceInferSession& s, DevBlock& b, const float* src, int64_t ld_src, int64_t T) {
  const int64_t B = s.B, K = b.K, F = b.F, W = K - 1 + T;
  const float* window = b.window[b.wcur].p;
  float* hist = T == 1 ? b.window[1 - b.wcur].p : s.hist.p;
  if (K > 1) copy2d(hist, W * F, window + F, K * F, (K - 1) * F, B);
  if (ld_src == F) copy2d(hist + (K - 1) * F, W * F, src, T * F, T * F, B);
  else if (T == 1) copy2d(hist + (K - 1) * F, W * F, src, ld_src, F, B);
  else
    for (int64_t bb = 0; bb < B; ++bb) copy2d(hist + (bb * W + K - 1) * F, F, src + bb * T * ld_src, ld_src, F, T);
  dk::causal_conv1d(s.conv.p, hist, b.conv_w.p, b.conv_b.p, B, W, F, K);
  unary(UnaryOp::Silu, s.conv.p, s.conv.p, B * W * F);
  if (T == 1) b.wcur = 1 - b.wcur;
  else copy2d(b.window[b.wcur].p, K * F, s.hist.p + (T - 1) * F, W * F, K * F, B);
  if (B == 1) return s.conv.p + (K - 1) * F;  // the chunk's T rows are contiguous
  copy2d(s.xc.p, T * F, s.conv.p + (K - 1) * F, W * F, T * F, B);
  return s.xc.p;
}

void mlstm_block(DeviceInferSession& s, DevBlock& b, int64_t T) {
  const int64_t B = s.B, rows = B * T, E = s.E, Di = b.Di, NH = b.NH, DH = b.DH, Bq = b.Bq, NB = Di / Bq;
  layer_norm(s, s.xn.p, s.x.p, rows, 1, E, b.norm);
  linear(s, s.up.p, 2 * Di, s.xn.p, E, rows, E, 2 * Di, b.up_w, b.up_b);  // [xm | z]
  const float* xc = conv_branch(s, b, s.up.p, 2 * Di, T);
  headwise(s, s.qkv.p, 3 * Di, xc, Di, rows, b.q_w, b.q_b, NB, Bq, Bq);
  headwise(s, s.qkv.p + Di, 3 * Di, xc, Di, rows, b.k_w, b.k_b, NB, Bq, Bq);
  headwise(s, s.qkv.p + 2 * Di, 3 * Di, s.up.p, 2 * Di, rows, b.v_w, b.v_b, NB, Bq, Bq);
  linear(s, s.ig.p, NH, s.qkv.p, 3 * Di, rows, 3 * Di, NH, b.ig_w, b.ig_b);
  linear(s, s.fg.p, NH, s.qkv.p, 3 * Di, rows, 3 * Di, NH, b.fg_w, b.fg_b);
  // [B, T, 3, NH, DH] -> [3, B, NH, T, DH] (the same order for one row); gates [B, T, NH] -> [B, NH, T]
  const float* q = s.qkv.p;
  if (rows > 1) {
    const int64_t qkv_shape[5] = {B, T, 3, NH, DH}, qkv_perm[5] = {2, 0, 3, 1, 4};
    dk::permute(s.qkvp.p, s.qkv.p, 4, qkv_shape, qkv_perm, 5);
    q = s.qkvp.p;
  }
  const float *ig = s.ig.p, *fg = s.fg.p;
  if (T > 1) {
    const int64_t g_shape[3] = {B, T, NH}, g_perm[3] = {0, 2, 1};
    dk::permute(s.igp.p, s.ig.p, 4, g_shape, g_perm, 3);
    dk::permute(s.fgp.p, s.fg.p, 4, g_shape, g_perm, 3);
    ig = s.igp.p, fg = s.fgp.p;
  }
  const int cur = b.cur, nxt = 1 - cur;
  const MlstmDims md{B, NH, T, DH, DH};
  if (T >= kChunkwiseFrom)
    dk::mlstm_chunkwise_forward(s.s1.p, b.c[nxt].p, b.n[nxt].p, b.m[nxt].p, nullptr, q, q + rows * Di,
                                q + 2 * rows * Di, ig, fg, b.c[cur].p, b.n[cur].p, b.m[cur].p, md, kCellChunk,
                                kMlstmEps, false);
  else
    dk::mlstm_recurrent_forward(s.s1.p, b.c[nxt].p, b.n[nxt].p, b.m[nxt].p, nullptr, q, q + rows * Di,
                                q + 2 * rows * Di, ig, fg, b.c[cur].p, b.n[cur].p, b.m[cur].p, md, kMlstmEps);
  b.cur = nxt;
  float* h = s.s1.p;  // [B, NH, T, DH]
  if (T > 1) {
    const int64_t h_shape[4] = {B, NH, T, DH}, h_perm[4] = {0, 2, 1, 3};
    dk::permute(s.s2.p, s.s1.p, 4, h_shape, h_perm, 4);
    h = s.s2.p;
  }
  layer_norm(s, s.s3.p, h, rows, NH, DH, b.outnorm);  // hn
  binary_rows(BinaryOp::Mul, s.s1.p, b.skip.p, 0, xc, Di, rows, Di);  // skip ⊙ xc
  binary_rows(BinaryOp::Add, s.s1.p, s.s3.p, Di, s.s1.p, Di, rows, Di);   // hn + skip ⊙ xc
  unary(UnaryOp::Silu, s.act.p, s.up.p, rows * 2 * Di);
  binary_rows(BinaryOp::Mul, s.s2.p, s.s1.p, Di, s.act.p + Di, 2 * Di, rows, Di);  // ⊙ SiLU(z)
  linear(s, s.y.p, E, s.s2.p, Di, rows, Di, E, b.down_w, b.down_b);
  add_into(s.x.p, s.y.p, rows, E);
}

void slstm_block(DeviceInferSession& s, DevBlock& b, int64_t T) {
  const int64_t B = s.B, rows = B * T, E = s.E, NH = b.NH, DH = b.DH;
  layer_norm(s, s.xn.p, s.x.p, rows, 1, E, b.norm);
  const float* xc = b.K > 0 ? conv_branch(s, b, s.xn.p, E, T) : s.xn.p;
  // XLSTM_SPEC §6.2 quirk: fgate feeds the input gate, igate the forget gate (w_i, w_f hold them so)
  const DevBuf none;
  headwise(s, s.pre.p, 4 * E, xc, E, rows, b.w_i, none, NH, DH, DH);
  headwise(s, s.pre.p + E, 4 * E, xc, E, rows, b.w_f, none, NH, DH, DH);
  headwise(s, s.pre.p + 2 * E, 4 * E, s.xn.p, E, rows, b.w_z, none, NH, DH, DH);
  headwise(s, s.pre.p + 3 * E, 4 * E, s.xn.p, E, rows, b.w_o, none, NH, DH, DH);
  const int64_t bias_shape[3] = {NH, 4, DH}, bias_perm[3] = {1, 0, 2};  // as sLSTMLayer permutes it
  dk::permute(b.bias.p, b.bias_src.p, 4, bias_shape, bias_perm, 3);
  RecurrentDims d;
  d.B = B, d.S = T, d.NH = NH, d.DH = DH;
  dk::recurrent_forward(!b.lstm, s.s1.p, s.states.p, s.gates.p, s.pre.p, b.state.p, b.R.p, b.bias.p, d);
  // states [NS, T, B, E]: the last step's is the next state [NS, B, E]
  copy2d(b.state.p, B * E, s.states.p + (T - 1) * B * E, T * B * E, B * E, b.NS);
  layer_norm(s, s.s2.p, s.s1.p, rows, NH, DH, b.group_norm);
  add_into(s.x.p, s.s2.p, rows, E);
}

void ffn(DeviceInferSession& s, DevBlock& b, int64_t T) {
  const int64_t rows = s.B * T, E = s.E, P = b.P;
  layer_norm(s, s.xn.p, s.x.p, rows, 1, E, b.ffn_norm);
  linear(s, s.up.p, 2 * P, s.xn.p, E, rows, E, 2 * P, b.ffn_up_w, b.ffn_up_b);  // [a | u]
  const int64_t n = rows * 2 * P;
  const float* a = s.act.p;  // act(a) in the first P columns of rows of 2P, or (relu^2) dense [rows, P]
  int64_t lda = 2 * P;
  switch (b.act) {
    case InferAct::Gelu: unary(UnaryOp::Gelu, s.act.p, s.up.p, n); break;
    case InferAct::Relu: unary(UnaryOp::Relu, s.act.p, s.up.p, n); break;
    case InferAct::Sigmoid: unary(UnaryOp::Sigmoid, s.act.p, s.up.p, n); break;
    case InferAct::Swish: unary(UnaryOp::Silu, s.act.p, s.up.p, n); break;
    case InferAct::Relu2:
      unary(UnaryOp::Relu, s.act.p, s.up.p, n);
      binary_rows(BinaryOp::Mul, s.s1.p, s.act.p, 2 * P, s.act.p, 2 * P, rows, P);
      a = s.s1.p, lda = P;
      break;
    case InferAct::Selu: {
      // λ (relu(x) + α min(0, eˣ − 1)), composed as GatedFeedForward composes it
      const float alpha = 1.6732632423543772f, lambda = 1.0507009873554805f;
      unary(UnaryOp::Exp, s.act.p, s.up.p, n);
      unary(UnaryOp::Affine, s.act.p, s.act.p, n, 1.0f, -1.0f);
      unary(UnaryOp::Neg, s.act.p, s.act.p, n);
      unary(UnaryOp::Relu, s.act.p, s.act.p, n);
      unary(UnaryOp::Neg, s.act.p, s.act.p, n);
      unary(UnaryOp::Affine, s.act.p, s.act.p, n, alpha, 0.0f);
      unary(UnaryOp::Relu, s.act2.p, s.up.p, n);
      binary_rows(BinaryOp::Add, s.act.p, s.act2.p, 2 * P, s.act.p, 2 * P, rows, 2 * P);
      unary(UnaryOp::Affine, s.act.p, s.act.p, n, lambda, 0.0f);
      break;
    }
  }
  binary_rows(BinaryOp::Mul, s.s2.p, a, lda, s.up.p + P, 2 * P, rows, P);  // act(a) ⊙ u
  linear(s, s.y.p, E, s.s2.p, P, rows, P, E, b.ffn_down_w, b.ffn_down_b);
  add_into(s.x.p, s.y.p, rows, E);
}

}  // namespace

std::shared_ptr<DeviceSession> device_infer_create(const InferModelSpec& spec, int64_t B, const DeviceOwners& owners) {
  auto s = std::make_shared<DeviceInferSession>();
  const auto borrow = [&](DevBuf& d, const float* ptr) { d.borrow(owner_of(owners, ptr)); };
  const int64_t E = s->E = spec.E, V = s->V = spec.V;
  s->B = B;
  s->Tcap = std::max<int64_t>(1, kChunkRows / B);
  const int64_t rows = s->rows_cap = B * s->Tcap;
  borrow(s->emb, spec.embedding);
  borrow(s->head, spec.lm_head);
  s->post = spec.post_norm != nullptr;
  borrow(s->post_norm, spec.post_norm);
  int64_t max_up = 1, max_f = 1, max_k = 1, max_di = 1, max_nh = 1, max_wide = E;
  bool any_slstm = false;
  s->layers.resize(spec.blocks.size());
  for (size_t i = 0; i < spec.blocks.size(); ++i) {
    const InferBlockSpec& in = spec.blocks[i];
    DevBlock& b = s->layers[i];
    b.slstm = in.slstm, b.lstm = in.lstm, b.has_ffn = in.has_ffn, b.NH = in.NH, b.K = in.K, b.act = in.act, b.P = in.P;
    borrow(b.norm, in.norm);
    if (!in.slstm) {
      const int64_t Di = b.Di = in.Di, NH = b.NH;
      b.Bq = in.Bq;
      b.DH = Di / NH, b.F = Di;
      borrow(b.up_w, in.up_w), borrow(b.up_b, in.up_b);
      borrow(b.q_w, in.q_w), borrow(b.q_b, in.q_b);
      borrow(b.k_w, in.k_w), borrow(b.k_b, in.k_b);
      borrow(b.v_w, in.v_w), borrow(b.v_b, in.v_b);
      borrow(b.conv_w, in.conv_w), borrow(b.conv_b, in.conv_b);
      borrow(b.ig_w, in.ig_w), borrow(b.ig_b, in.ig_b);
      borrow(b.fg_w, in.fg_w), borrow(b.fg_b, in.fg_b);
      borrow(b.outnorm, in.outnorm), borrow(b.skip, in.skip);
      borrow(b.down_w, in.down_w), borrow(b.down_b, in.down_b);
      for (int j = 0; j < 2; ++j) b.c[j].alloc(B * NH * b.DH * b.DH), b.n[j].alloc(B * NH * b.DH), b.m[j].alloc(B * NH);
      max_up = std::max(max_up, 2 * Di), max_di = std::max(max_di, Di), max_wide = std::max(max_wide, Di);
    } else {
      const int64_t K = b.K;
      b.DH = E / b.NH;
      b.F = E, b.NS = in.lstm ? 2 : 4;
      if (K > 0) borrow(b.conv_w, in.conv_w), borrow(b.conv_b, in.conv_b);
      borrow(b.w_i, in.w_i), borrow(b.w_f, in.w_f);
      borrow(b.w_z, in.w_z), borrow(b.w_o, in.w_o);
      borrow(b.R, in.R);
      borrow(b.bias_src, in.bias);
      b.bias.alloc(4 * E);  // permuted by each chunk (slstm_block)
      borrow(b.group_norm, in.group_norm);
      b.state.alloc(b.NS * B * E);
      any_slstm = true;
    }
    if (b.K > 0) b.window[0].alloc(B * b.K * b.F), b.window[1].alloc(B * b.K * b.F);
    max_f = std::max(max_f, b.F), max_k = std::max(max_k, b.K), max_nh = std::max(max_nh, b.NH);
    if (in.has_ffn) {
      const int64_t P = in.P;
      borrow(b.ffn_norm, in.ffn_norm);
      borrow(b.ffn_up_w, in.ffn_up_w), borrow(b.ffn_up_b, in.ffn_up_b);
      borrow(b.ffn_down_w, in.ffn_down_w), borrow(b.ffn_down_b, in.ffn_down_b);
      max_up = std::max(max_up, 2 * P), max_wide = std::max(max_wide, P);
    }
  }
  s->tok.alloc(rows);
  std::vector<float> ones(static_cast<size_t>(rows), 1.0f);
  s->ones.alloc(rows);
  cuda::copy_to_device(s->ones.p, ones.data(), static_cast<size_t>(rows * kF));
  for (DevBuf* d : {&s->x, &s->xn, &s->y}) d->alloc(rows * E);
  for (DevBuf* d : {&s->mean, &s->rstd, &s->ig, &s->fg, &s->igp, &s->fgp}) d->alloc(rows * max_nh);
  for (DevBuf* d : {&s->up, &s->act, &s->act2}) d->alloc(rows * max_up);
  for (DevBuf* d : {&s->hist, &s->conv}) d->alloc(B * (max_k - 1 + s->Tcap) * max_f);
  s->xc.alloc(rows * max_f);
  for (DevBuf* d : {&s->qkv, &s->qkvp}) d->alloc(rows * 3 * max_di);
  for (DevBuf* d : {&s->s1, &s->s2, &s->s3}) d->alloc(rows * max_wide);
  if (any_slstm) s->pre.alloc(rows * 4 * E), s->gates.alloc(rows * 4 * E), s->states.alloc(4 * rows * E);
  for (DevBuf* d : {&s->xl, &s->xf}) d->alloc(B * E);
  s->logits.alloc(B * V);
  s->host_tok.resize(static_cast<size_t>(rows));
  return s;
}

void DeviceInferSession::enqueue_chunk(int64_t T, bool head) {
  DeviceInferSession& s = *this;
  const int64_t B = s.B, E = s.E, rows = B * T;
  dk::embedding(s.x.p, s.emb.p, reinterpret_cast<const int32_t*>(s.tok.p), rows, E);
  for (DevBlock& b : s.layers) {
    if (b.slstm) slstm_block(s, b, T);
    else mlstm_block(s, b, T);
    if (b.has_ffn) ffn(s, b, T);
  }
  if (!head) return;
  const float* last = s.x.p;  // each batch row's last position
  if (T > 1) {
    copy2d(s.xl.p, E, s.x.p + (T - 1) * E, T * E, E, B);
    last = s.xl.p;
  }
  if (s.post) {
    layer_norm(s, s.xf.p, last, B, 1, E, s.post_norm);
    last = s.xf.p;
  }
  const DevBuf none;
  linear(s, s.logits.p, s.V, last, E, B, E, s.V, s.head, none);
}

void DeviceInferSession::run(float* logits, const int32_t* tokens, int64_t S) {
  DeviceInferSession& s = *this;
  const int64_t B = s.B;
  for (int64_t t0 = 0; t0 < S; t0 += s.Tcap) {
    const int64_t T = std::min(s.Tcap, S - t0), rows = B * T;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t) s.host_tok[static_cast<size_t>(b * T + t)] = tokens[b * S + t0 + t];
    cuda::copy_to_device(s.tok.p, s.host_tok.data(), static_cast<size_t>(rows) * sizeof(int32_t));
    const bool last = t0 + T >= S;
    if (S == 1)  // a decode step: the same work on the same buffers each time (session_graphs.h)
      s.graphs.step([this] { enqueue_chunk(1, true); }, [this] { return parity(); },
                    [this](const StepGraphs::Parity& p) { set_parity(p); });
    else
      s.enqueue_chunk(T, last);
    if (last) cuda::copy_to_host(logits, s.logits.p, static_cast<size_t>(B * s.V * kF));
  }
}

void DeviceInferSession::reset() {
  DeviceInferSession& s = *this;
  for (DevBlock& b : s.layers)
    for (DevBuf* d : {&b.window[b.wcur], &b.c[b.cur], &b.n[b.cur], &b.m[b.cur], &b.state})
      if (d->p) cuda::fill_zero(d->p, static_cast<size_t>(d->n * kF));
}

float* DeviceInferSession::state(int64_t block, InferStatePart part, int64_t* len) {
  DeviceInferSession& s = *this;
  DevBlock& b = s.layers.at(static_cast<size_t>(block));
  DevBuf* d = nullptr;
  switch (part) {
    case InferStatePart::Conv: d = &b.window[b.wcur]; break;
    case InferStatePart::C: d = &b.c[b.cur]; break;
    case InferStatePart::N: d = &b.n[b.cur]; break;
    case InferStatePart::M: d = &b.m[b.cur]; break;
    case InferStatePart::Slstm: d = &b.state; break;
  }
  if (!d || !d->p) return nullptr;
  *len = d->n;
  return d->p;
}

int64_t DeviceInferSession::bytes() const {
  int64_t n = 0;
  for (DevBuf* d : const_cast<DeviceInferSession&>(*this).all_buffers()) n += d->n * kF;
  return n;
}

}  // namespace xlstm
