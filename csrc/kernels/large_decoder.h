// xLSTM Large inference forward on the CPU (CPU kernels layer): the whole of xLSTMLargeDecoder.forward (lib/nn/
// large.ts) in one native call, over packed weights (bfloat16 or float32 matrices, float32 vectors) that the caller
// owns. Per block: RMS norm, the fused q|k|v|o|i|f projection, the heads split out of it (q / sqrt(DK), k · sqrt(DK),
// soft-capped gates), the mLSTM cell over the reference's inference schedule (chunkwise kernels for whole chunks,
// halving chunk sizes down to 16, the recurrent kernel for the rest; XLSTM_SPEC §12), the per-head layer norm times
// sigmoid(o), the out projection and residual, RMS norm, the gated SiLU feed-forward and residual; then the out
// norm, the head and the logit soft cap. Norm statistics, the head split and the soft caps are computed in float64
// and rounded once (the arithmetic the JavaScript decoder had). One call runs on whatever thread calls it (the
// binding's async form: a libuv worker), the products and the cell on the thread pool.
#pragma once
#include <cstdint>
#include <vector>

namespace xlstm {

// A row-major [rows, cols] weight: bfloat16 bits or float32.
struct LargeMatrix {
  const void* data = nullptr;
  bool bf16 = false;
  int64_t rows = 0, cols = 0;
};

struct LargeDecoderBlock {
  const float *norm_m = nullptr, *norm_m_b = nullptr;  // [E], bias nullable
  LargeMatrix w_in;                                    // [2 qk + 2 vd + 2 NH, E]: q, k, v, o, i, f rows
  const float* b_in = nullptr;                         // nullable
  const float *mh_w = nullptr, *mh_b = nullptr;        // per-head norm [vd], bias nullable
  LargeMatrix w_out;                                   // [E, vd]
  const float* b_out = nullptr;
  const float *norm_f = nullptr, *norm_f_b = nullptr;  // [E]
  LargeMatrix w_up;                                    // [2 up, E]: gate rows, then up rows
  const float* b_up = nullptr;
  LargeMatrix w_down;  // [E, up]
  const float* b_down = nullptr;
};

struct LargeDecoderModel {
  int64_t V = 0, E = 0, NH = 0, DK = 0, DV = 0, up = 0, chunk = 64;
  double norm_eps = 1e-6, eps = 1e-6;
  double gate_cap = 0, out_cap = 0;  // soft caps; 0 = none
  LargeMatrix embedding, head;       // [V, E] each
  const float *out_norm = nullptr, *out_norm_b = nullptr;  // null: no out norm
  std::vector<LargeDecoderBlock> blocks;
};

// One block's state: inputs c0 [B,NH,DK,DV], n0 [B,NH,DK], m0 [B,NH] (null: the zero state; all three or none) and
// outputs c, n, m of the same sizes (written after the block's cell has read the inputs: an output may be its input).
struct LargeStateIO {
  const float *c0 = nullptr, *n0 = nullptr, *m0 = nullptr;
  float *c = nullptr, *n = nullptr, *m = nullptr;
};

// How the bfloat16 products treat their float32 activations: as they are, rounded to bf16 (AMX / vdpbf16ps), or
// rounded where that is fast (rows >= 16 and AMX or vdpbf16ps present).
enum class LargeRounding { Off, On, Auto };

// tokens [B, S] (ids < V, checked by the caller) from the states in `io` (one per block) to logits [B, S, V], or
// [B, V] of the last position with last_only; the new states into `io`'s outputs. S >= 1.
// A long prompt runs in pieces of large_piece_tokens(B, chunk, max_rows) tokens (0: kLargePieceRows), each from the
// state the one before left, so that the activations' scratch holds at most about max(max_rows, B·chunk) rows
// (a 7B model at 1,024 rows: ~0.3 GB, where a 4,096-token prompt in one piece took ~1.1 GB). The pieces are whole
// chunks up to the last, which runs the schedule the prompt's tail would get in one piece; they agree with one piece
// up to the order of float32 sums (with rounded activations within bf16 rounding: a float32 difference can move an
// activation's rounding).
constexpr int64_t kLargePieceRows = 1024;
int64_t large_piece_tokens(int64_t B, int64_t chunk, int64_t max_rows);
void large_decoder_forward(const LargeDecoderModel& m, const int32_t* tokens, int64_t B, int64_t S,
                           const LargeStateIO* io, float* logits, bool last_only, LargeRounding rounding,
                           int64_t max_rows = 0);

// The reference's kernel schedule (lib/nn/large.ts inferenceSchedule): [start, end) pieces with their chunk size
// (0: the recurrent kernel).
struct LargeSegment {
  int64_t start, end, chunk;
};
std::vector<LargeSegment> large_inference_schedule(int64_t S, int64_t chunk);

}  // namespace xlstm
