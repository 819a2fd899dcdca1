// bfloat16 <-> float32 and the bf16-weight GEMV's index maps and lane loop, shared by the CPU kernels (bf16.cc) and
// their CUDA twin (cuda/bf16.cu) so both run the same arithmetic; cuda/bf16.cu's host replay runs the same functions.
//   widen(b)  = the float32 whose upper 16 bits are b (exact)
//   round(x)  = x rounded to bfloat16, nearest even; NaN stays a quiet NaN (same rule as lib/tensor.ts floatToBf16)
// GEMV (the CUDA bf16_linear for at most kGemvMaxRows rows of x): a warp per output o, each lane summing the products
// of 8 consecutive inputs at a time (k = 8·lane + 256·j ... ; one 16-byte load of W where `in` is a multiple of 8,
// else one input at a time, k = lane + 32·j), then the 32 lane sums reduced by the xor butterfly (m = 16, 8, 4, 2, 1).
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define XLSTM_BF_FN __host__ __device__ __forceinline__
#else
#define XLSTM_BF_FN inline
#endif

namespace xlstm {
namespace bf16_math {

XLSTM_BF_FN float widen(uint16_t b) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(static_cast<uint32_t>(b) << 16);
#else
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

XLSTM_BF_FN uint16_t round(float f) {
#ifdef __CUDA_ARCH__
  const uint32_t u = __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
#endif
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN: keep it quiet
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// x as the products see it: itself, or rounded to bf16 (round_x)
XLSTM_BF_FN float operand(float x, bool round_x) { return round_x ? widen(round(x)) : x; }

constexpr int kGemvMaxRows = 8;    // rows of x the GEMV keeps in registers; more rows take the widen + GEMM path
constexpr int kGemvWarps = 8;      // warps (outputs) per block
constexpr int kWarpLanes = 32;
constexpr int kVec = 8;            // inputs per lane step on the vector path (one 16-byte load of W)

struct GemvPlan {
  int64_t rows, in, out;
  int64_t grid;    // blocks
  int64_t passes;  // grid-stride passes over the outputs
  bool vec;        // in % 8 == 0 and W 16-byte aligned: 16-byte loads of W
};

// The weight matrices of one GEMV: part i's rows are the outputs start[i] .. start[i + 1) (a projection whose parts
// are separate buffers, e.g. xLSTM Large's "single" q, k, v, o, runs as one launch writing its outputs side by side),
// its bias b[i] or none. One part: an ordinary W [out, in].
constexpr int kMaxGemvParts = 4;
struct GemvParts {
  const uint16_t* w[kMaxGemvParts];
  const float* b[kMaxGemvParts];
  int64_t start[kMaxGemvParts + 1];
  int n;
};

// Why `ps` is not a valid set of parts for `rows` rows (nullptr: valid): 1 to kMaxGemvParts parts, each with a
// weight, starting at output 0 and in order (a part may be empty), at most kGemvMaxRows rows.
inline const char* gemv_parts_error(const GemvParts& ps, int64_t rows) {
  static_assert(kMaxGemvParts == 4 && kGemvMaxRows == 8, "the messages below name these limits");
  if (ps.n < 1 || ps.n > kMaxGemvParts) return "1 to 4 parts";
  if (rows > kGemvMaxRows) return "at most 8 rows (the GEMV)";
  if (ps.start[0] != 0) return "the first part starting at output 0";
  for (int i = 0; i < ps.n; ++i) {
    if (!ps.w[i]) return "a weight for every part";
    if (ps.start[i + 1] < ps.start[i]) return "parts in order (start[] not decreasing)";
  }
  return nullptr;
}

// the part output o belongs to
XLSTM_BF_FN int gemv_part(const GemvParts& ps, int64_t o) {
  int i = 0;
  while (i + 1 < ps.n && o >= ps.start[i + 1]) ++i;
  return i;
}

// w_aligned: W's first element is 16-byte aligned (whole allocations are; a weight given at an offset may not be)
inline GemvPlan gemv_plan(int64_t rows, int64_t in, int64_t out, bool w_aligned = true) {
  GemvPlan p{rows, in, out, 0, 0, in % kVec == 0 && w_aligned};
  const int64_t want = (out + kGemvWarps - 1) / kGemvWarps;
  p.grid = want < 1 ? 1 : (want > 65535 ? 65535 : want);
  const int64_t per_pass = p.grid * kGemvWarps;
  p.passes = (out + per_pass - 1) / per_pass;
  return p;
}

// The output warp `warp` of block `block` computes in grid-stride pass `pass` (>= out: none).
XLSTM_BF_FN int64_t gemv_output(const GemvPlan& p, int64_t block, int warp, int64_t pass) {
  return (pass * p.grid + block) * kGemvWarps + warp;
}

// W[o, k .. k+8) widened into w8: one 16-byte load on the device (the caller guarantees the alignment: `in` a multiple
// of 8 and W's start 16-byte aligned), element by element on the host. Little-endian: the low half of each 32-bit
// word is the earlier element.
XLSTM_BF_FN void load8(const uint16_t* src, float (&w8)[kVec]) {
#ifdef __CUDA_ARCH__
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(src));
  const uint32_t u[4] = {v.x, v.y, v.z, v.w};
  for (int e = 0; e < 4; ++e) {
    w8[2 * e] = __uint_as_float(u[e] << 16);
    w8[2 * e + 1] = __uint_as_float(u[e] & 0xffff0000u);
  }
#else
  for (int e = 0; e < kVec; ++e) w8[e] = widen(src[e]);
#endif
}

// Lane `lane`'s partial sums acc[r] (r < rows) of output o (wrow = W[o, :]): its inputs in increasing k, one fmaf each.
XLSTM_BF_FN void gemv_lane(float (&acc)[kGemvMaxRows], const GemvPlan& p, const float* x, const uint16_t* wrow, int lane,
                           bool round_x) {
  for (int r = 0; r < kGemvMaxRows; ++r) acc[r] = 0.f;
  if (p.vec) {
    for (int64_t k = static_cast<int64_t>(lane) * kVec; k < p.in; k += kWarpLanes * kVec) {
      float w8[kVec];
      load8(wrow + k, w8);
      for (int r = 0; r < kGemvMaxRows; ++r) {
        if (r >= p.rows) break;
        const float* xr = x + r * p.in + k;
        for (int e = 0; e < kVec; ++e) acc[r] = fmaf(operand(xr[e], round_x), w8[e], acc[r]);
      }
    }
  } else {
    for (int64_t k = lane; k < p.in; k += kWarpLanes) {
      const float wk = widen(wrow[k]);
      for (int r = 0; r < kGemvMaxRows; ++r) {
        if (r >= p.rows) break;
        acc[r] = fmaf(operand(x[r * p.in + k], round_x), wk, acc[r]);
      }
    }
  }
}

}  // namespace bf16_math
}  // namespace xlstm
