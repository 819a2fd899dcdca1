// Fused inference for xLSTMLMModel on the CPU (CPU kernels layer; XLSTM_SPEC §4.3, §5, §6, §7, §9): one call runs
// a whole chunk of tokens (one token = a generation step) through every block with no per-op overhead.
//
// A session holds a snapshot of the model's parameters, copied ONCE and re-laid out for the matrix-vector products
// (see "Packed layouts" below), the recurrent state of every block, and scratch for up to `rows_cap` rows.
// Per token (row r = (b, t)), with LN(x) = (x − mean)/sqrt(var + 1e-5)·(1 + w) (§5.3):
//   x = token_embedding[idx]
//   per block i:  mLSTM (§6.1, no FFN):  xn = LN(x); [xm | z] = proj_up xn; xc = SiLU(conv_step(xm)); q, k from xc,
//                   v from xm (block-diagonal, §5.1); ĩ, f̃ = W·concat(q, k, v) + b (§4.1); recurrent step §4.3 with
//                   keys scaled by 1/√DH and ε = 1e-6; per-head outnorm (§5.4); h = (h̃ + skip ⊙ xc) ⊙ SiLU(z);
//                   x += proj_down h
//                 sLSTM (§6.2):  xn = LN(x); xc = SiLU(conv_step(xn)) (or xn when K = 0); pre-activations
//                   i = fgate(xc), f = igate(xc) (the reference's name swap), z = zgate(xn), o = ogate(xn), plus
//                   R h_{t−1} + β (§2.2); the sLSTM cell §2.3 (per-element first-step rule) or the LSTM cell §3;
//                   per-head group norm; x += y
//                 FFN when present (§5.5): x += proj_down(act(a) ⊙ u), [a | u] = proj_up LN(x)
//   logits = lm_head · LN_post(x)   (for the last position of each batch row only)
// Dropout is not applied (inference = eval mode).
//
// State (the layouts of xLSTMLMModel.step's StackState, so states move between the two paths by plain copies):
//   mLSTM  conv [B, K, Di] (the step window: the last K inputs of the conv branch, oldest first),
//          c [B, NH, DH, DH], n [B, NH, DH], m [B, NH] (small-model recurrent convention, §4.3; zero state m = 0)
//   sLSTM  conv [B, K, E] (absent when K = 0), state [NS, B, E] = (h, c, n, m) or (h, c) for "lstm"
//
// Packed layouts (session-internal): a dense projection W [out, in] is stored as ceil(out/64) column panels
// [in][64] (zero-padded), so a product streams each panel once and vectorises over 64 outputs; the mLSTM q/k/v
// blocks are expanded to [Bq][Di] (w[d][c] = W[c/Bq][c%Bq][d], so a vector of outputs reads its inputs by lane
// permutations); the sLSTM head projections are transposed per head ([DH][2DH] for the (i, f) pair from xc and the
// (z, o) pair from xn);
// R keeps the reference "cuda" layout [NH][DH][4DH]; norm weights are stored as their effective scale 1 + w.
//
// Threads: one parallel_for over the pool's threads per call; inside, every thread walks the same list of phases
// and claims the items of each phase (row blocks, output panels, (row, head) pairs) from an atomic counter, then
// waits for the phase's items to finish. A thread that arrives late just finds the work done, so the call never
// waits for a thread that is not running.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace xlstm {

enum class InferAct { Gelu, Relu, Relu2, Sigmoid, Swish, Selu };

// ---- what the caller provides: pointers to the model's parameters in the reference state_dict layouts
// (read only during infer_create; optional biases may be null).
struct InferBlockSpec {
  bool slstm = false;
  int64_t NH = 0, K = 0;  // heads; conv kernel size (sLSTM: 0 = no convolution)
  const float* norm = nullptr;  // xlstm_norm.weight [E]
  // mLSTM (§6.1)
  int64_t Di = 0, Bq = 0;
  const float *up_w = nullptr, *up_b = nullptr;        // proj_up [2Di, E], [2Di]
  const float *q_w = nullptr, *q_b = nullptr;          // q_proj [Di/Bq, Bq, Bq], [Di]
  const float *k_w = nullptr, *k_b = nullptr;
  const float *v_w = nullptr, *v_b = nullptr;
  const float *conv_w = nullptr, *conv_b = nullptr;    // conv1d.conv [F, 1, K], [F] (F = Di or E)
  const float *ig_w = nullptr, *ig_b = nullptr;        // mlstm_cell.igate [NH, 3Di], [NH]
  const float *fg_w = nullptr, *fg_b = nullptr;        // mlstm_cell.fgate
  const float *outnorm = nullptr, *skip = nullptr;     // [Di], learnable_skip [Di]
  const float *down_w = nullptr, *down_b = nullptr;    // proj_down [E, Di], [E]
  // sLSTM (§6.2)
  bool lstm = false;                                   // function "lstm" (§3)
  const float *w_i = nullptr, *w_f = nullptr, *w_z = nullptr, *w_o = nullptr;  // [NH, DH, DH]: w_i = fgate.weight,
                                                       // w_f = igate.weight (the reference's swap), zgate, ogate
  const float* R = nullptr;                            // slstm_cell._recurrent_kernel_ [NH, DH, 4DH] ("cuda")
  const float* bias = nullptr;                         // slstm_cell._bias_ [4E] (head, gate, unit)
  const float* group_norm = nullptr;                   // group_norm.weight [E], or null (scale 1)
  // FFN (§5.5)
  bool has_ffn = false;
  int64_t P = 0;
  InferAct act = InferAct::Gelu;
  const float *ffn_norm = nullptr, *ffn_up_w = nullptr, *ffn_up_b = nullptr, *ffn_down_w = nullptr,
              *ffn_down_b = nullptr;  // ffn_norm [E], proj_up [2P, E], proj_down [E, P]
};

struct InferModelSpec {
  int64_t V = 0, E = 0;
  const float* embedding = nullptr;  // token_embedding.weight [V, E]
  const float* lm_head = nullptr;    // lm_head.weight [V, E]
  const float* post_norm = nullptr;  // post_blocks_norm.weight [E], or null (no post-blocks norm)
  std::vector<InferBlockSpec> blocks;
};

// ---- session internals (read by the per-ISA engines)

// 64-byte aligned float storage.
struct InferBuf {
  float* p = nullptr;
  int64_t n = 0;
  InferBuf() = default;
  InferBuf(const InferBuf&) = delete;
  InferBuf& operator=(const InferBuf&) = delete;
  InferBuf(InferBuf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr, o.n = 0; }
  InferBuf& operator=(InferBuf&& o) noexcept;
  ~InferBuf();
  void alloc(int64_t count);  // zero-filled; throws std::bad_alloc
};

constexpr int64_t kInferPanel = 64;  // outputs per packed column panel

// y = W x (+ b) with W [out, in] packed as panels [ceil(out/64)][in][64]; b padded to panels*64 (or empty).
struct InferDense {
  int64_t in = 0, out = 0, panels = 0;
  InferBuf w, b;
};

struct InferBlock {
  bool slstm = false, lstm = false, has_ffn = false;
  int64_t NH = 0, DH = 0, K = 0, Di = 0, Bq = 0, P = 0, NS = 0;
  InferAct act = InferAct::Gelu;
  InferBuf norm;  // 1 + w [E]
  // mLSTM
  InferDense up, down;
  InferBuf conv_w, conv_b;           // conv weight transposed [K][F], bias [F]
  InferBuf qw, kw, vw, qb, kb, vb;   // expanded [Bq][Di]: w[d][c] = W[c/Bq][c%Bq][d]; biases [Di] (or empty)
  InferBuf gw, gb;                   // [2NH][3Di]: rows 0..NH-1 igate, NH..2NH-1 fgate; [2NH]
  InferBuf outnorm, skip;            // 1 + w [Di], learnable_skip [Di]
  // sLSTM
  InferBuf wc, wn, R, bias, gn;      // [NH][DH][2DH] (i, f), [NH][DH][2DH] (z, o), [NH][DH][4DH], [NH][4DH], [E]
  // FFN
  InferBuf ffn_norm;
  InferDense ffn_up, ffn_down;
  // recurrent state
  InferBuf conv_state, c, n, m, state;
};

struct alignas(64) InferPhaseCounter {
  std::atomic<int64_t> claim{0}, done{0};
};

struct InferSession {
  int64_t V = 0, E = 0, B = 0;
  bool post = false;
  InferBuf emb, post_norm;
  InferDense head;
  std::vector<InferBlock> blocks;
  // widest per-row scratch needs, over the blocks
  int64_t max_up = 0, max_u = 0, max_xc = 0, max_hg = 0;
  // scratch for up to rows_cap rows (grown on demand): x, xn [rows, E]; up [rows, max_up]; u [rows, max_u];
  // xc [rows, max_xc]; hg [rows, max_hg]; xf [B, E]; tmp [B, max(5E, 4 max_xc)] (per (row, head) scratch)
  int64_t rows_cap = 0;
  InferBuf x, xn, up, u, xc, hg, xf, tmp;
  int64_t num_phases = 0;
  std::unique_ptr<InferPhaseCounter[]> counters;
};

// Copies and packs the parameters; the state starts at zero. Throws std::invalid_argument for inconsistent sizes
// (the binding checks everything first) and std::bad_alloc.
std::unique_ptr<InferSession> infer_create(const InferModelSpec& spec, int64_t B);

// Runs tokens [B, S] (row-major, ids already checked to lie in [0, V)) from the current state, leaving the state
// after the last token, and writes the logits of the last position to logits [B, V]. S >= 1; S = 1 is one
// generation step. Longer inputs are processed in chunks of about 256 rows (B·t), with the projections of a chunk
// done as matrix products.
void infer_run(InferSession& s, float* logits, const int32_t* tokens, int64_t S);

// Zero state for every block.
void infer_reset(InferSession& s);

enum class InferStatePart { Conv, C, N, M, Slstm };
// The session's state buffer for one block and part (layouts above), or nullptr when the block has no such part.
float* infer_state(InferSession& s, int64_t block, InferStatePart part, int64_t* len);

// Bytes of native memory the session holds (parameters, state and scratch).
int64_t infer_bytes(const InferSession& s);

namespace infer_detail {

// Runs rows [t0, t0 + T) of every batch row (t0 + T <= S) through the model; logits (nullable) for the last chunk.
struct Impl {
  void (*run_chunk)(InferSession& s, float* logits, const int32_t* tokens, int64_t S, int64_t t0, int64_t T);
};

const Impl& impl_scalar();
#ifdef XLSTM_X86
const Impl& impl_avx2();
const Impl& impl_avx512();
#endif

}  // namespace infer_detail
}  // namespace xlstm
