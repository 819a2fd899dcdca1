// GEMM with bfloat16 operands and float32 sums on AVX512_BF16 (vdpbf16ps), for CPUs that have it but no AMX (AMD
// Zen 4 / Zen 5, Intel Cooper Lake): C = alpha bf16(op(A)) bf16(op(B)) + beta C (see bf16.h, gemm_bf16_pairs).
//
// Both operands are first rounded (nearest even) into dwords that each hold two bf16 of consecutive k, the even one in
// the low half, an odd K's last pair completed by a zero:
//   op(A), A as it is:     M rows of K2 = ⌈K/2⌉ dwords (the pairs are neighbours in A's rows);
//   op(A), A transposed:   K2 rows of M dwords (the pairs come from two consecutive rows of A);
//   op(B), always K2 rows of N dwords (k-major, as the driver reads an untransposed B): from two consecutive rows of
//          B as it is, or, B transposed, its rows' pairs transposed 16 x 16 in registers.
// gemm.cc's blocked driver then computes the product of those dword matrices over K2 steps, exactly as it does a
// float32 product (packing copies dwords bit for bit), with the AVX-512 14 x 32 tiles of gemm_avx512_tiles.h whose
// multiply-add is vdpbf16ps: 32 products per instruction against the float32 FMA's 16, the same blocking, threads and
// C update. The products of two bf16 are exact in float32; vdpbf16ps adds a pair's two into the lane, treating bf16
// denormals as zero, so the result differs from float32 sums of the rounded operands only in how the sums round.
#include "kernels/bf16_pairs.h"  // first: <immintrin.h> with GCC 12's header warnings off; the rounding helpers

#include <algorithm>

#include "kernels/aligned_vector.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace gemm_detail {
namespace {

using namespace bf16_pairs;

// the edge tiles' intrinsic form of vdpbf16ps: c += a.lo b.lo + a.hi b.hi per lane (a, b hold pairs as float bits)
XLSTM_PAIRS_TARGET inline __m512 dot_pairs(__m512 a, __m512 b, __m512 c) {
  return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b);
}

#define XLSTM_TILE_INSN "vdpbf16ps"
#define XLSTM_TILE_FMA(a, b, c) dot_pairs(a, b, c)
#define XLSTM_TILE_ATTR XLSTM_PAIRS_TARGET
#include "kernels/gemm_avx512_tiles.h"  // MR, NR, the tiles, macro(), pack_a and pack_b

// the blocked driver's view of the pair tiles: the float32 AVX-512 ISA's blocking with KC counted in pairs (256 pairs
// of a 32-column sliver are the same 32 KiB of L1); no matrix-vector kernels (gemm_bf16_pairs calls the driver only)
const Isa& isa_pairs() {
  static const Isa isa{"avx512bf16", MR, NR, 256, 504, 4096, true, pack_a, pack_b, macro, nullptr, nullptr};
  return isa;
}

using PairScratch = std::vector<uint32_t, CacheAlignedAllocator<uint32_t, false>>;

// op(X) rounded into pairs: `along` (pairs within X's rows: `rows` rows of K) or across (pairs from two of X's K rows,
// `rows` columns each); returns the dword matrix's leading dimension
int64_t round_operand(PairScratch& out, bool along, int64_t rows, int64_t K, const float* X, int64_t ldx) {
  const int64_t K2 = (K + 1) / 2;
  out.resize(static_cast<size_t>(rows * K2));
  if (along) {
    parallel_for(rows, std::max<int64_t>(1, 8192 / K),
                 [&](int64_t lo, int64_t hi) { round_pairs_along(out.data(), K2, X, ldx, K, lo, hi); });
    return K2;
  }
  parallel_for(K2, std::max<int64_t>(1, 4096 / rows),
               [&](int64_t lo, int64_t hi) { round_pairs_across(out.data(), rows, X, ldx, K, rows, lo, hi); });
  return rows;
}

// op(B) [K, N] rounded into k-major pairs [K2][N]: from B [K, N] (pairs across its rows) or, with `trans`, from B
// [N, K] (float32 B or bf16 Bb; its rows transposed)
void round_b_kmajor(PairScratch& out, bool trans, int64_t N, int64_t K, const float* B, const uint16_t* Bb,
                    int64_t ldb) {
  if (!trans) {
    round_operand(out, false, N, K, B, ldb);
    return;
  }
  out.resize(static_cast<size_t>((K + 1) / 2 * N));
  parallel_for((N + 15) / 16, std::max<int64_t>(1, 256 / K),
               [&](int64_t lo, int64_t hi) { round_pairs_transposed(out.data(), N, B, Bb, ldb, N, K, lo, hi); });
}

// y [rows, out] = yt [out, rows]ᵀ + bias (nullable) for the 16-output blocks [b0, b1): 16 x 16 tiles through registers
XLSTM_PAIRS_TARGET void transpose_add_bias(float* y, const float* yt, const float* bias, int64_t rows, int64_t out,
                                           int64_t b0, int64_t b1) {
  __m512i t[16];
  for (int64_t ob = b0; ob < b1; ++ob) {
    const int64_t o0 = ob * 16, no = std::min<int64_t>(16, out - o0);
    const __mmask16 mo = dword_mask(no);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mo, bias + o0) : _mm512_setzero_ps();
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
      const int64_t nr = std::min<int64_t>(16, rows - r0);
      const __mmask16 mr = dword_mask(nr);
      for (int i = 0; i < 16; ++i)
        t[i] = i < no ? _mm512_maskz_loadu_epi32(mr, yt + (o0 + i) * rows + r0) : _mm512_setzero_si512();
      transpose16(t);
      for (int i = 0; i < nr; ++i)
        _mm512_mask_storeu_ps(y + (r0 + i) * out + o0, mo, _mm512_add_ps(_mm512_castsi512_ps(t[i]), bv));
    }
  }
}

}  // namespace
}  // namespace gemm_detail

namespace bf16_detail {

void gemm_bf16_pairs(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  using namespace gemm_detail;
  PairScratch a, b;
  // op(A) as it is has its pairs along A's rows; transposed, across them
  const int64_t la = round_operand(a, !trans_a, M, K, A, lda);
  // op(B) always k-major ([K2][N], B's pairs across its rows, or its rows transposed 16 x 16), so that the driver reads
  // it as it reads a B that is not transposed: in place where it can, else packed by plain copies of its rows
  round_b_kmajor(b, trans_b, N, K, B, nullptr, ldb);
  gemm_blocked(isa_pairs(), trans_a, false, M, N, (K + 1) / 2, alpha, reinterpret_cast<const float*>(a.data()), la,
               reinterpret_cast<const float*>(b.data()), N, beta, C, ldc, num_threads());
}

namespace {

// yᵀ = W xᵀ: W [out, in] is the product's op(A) with its pairs along its rows, read as it is (in place, or packed by
// plain copies when its rows are 1,024 floats apart), xᵀ its k-major op(B) (x's rows transposed 16 x 16), then y = the
// result transposed (16 x 16 tiles) + bias. For an even number of inputs nothing of W's size is copied, so it pays
// from a few rows (an odd one needs W's rows completed to whole pairs: a copy).
void linear_w_as_a(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                   int64_t out) {
  using namespace gemm_detail;
  const int64_t K2 = (in + 1) / 2;
  PairScratch xt, wp, yt;
  xt.resize(static_cast<size_t>(K2 * rows));
  parallel_for((rows + 15) / 16, 1,
               [&](int64_t lo, int64_t hi) { round_pairs_transposed(xt.data(), rows, x, nullptr, in, rows, in, lo, hi); });
  const uint32_t* wd = reinterpret_cast<const uint32_t*>(w);
  if (in % 2) {
    wp.resize(static_cast<size_t>(out * K2));
    parallel_for(out, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o)
        for (int64_t q = 0; q < K2; ++q)  // an odd row's last pair completed by a zero
          wp[o * K2 + q] = w[o * in + 2 * q] | (2 * q + 1 < in ? static_cast<uint32_t>(w[o * in + 2 * q + 1]) << 16 : 0u);
    });
    wd = wp.data();
  }
  yt.resize(static_cast<size_t>(out * rows));
  float* ytf = reinterpret_cast<float*>(yt.data());
  gemm_blocked(isa_pairs(), false, false, out, rows, K2, 1.f, reinterpret_cast<const float*>(wd), K2,
               reinterpret_cast<const float*>(xt.data()), rows, 0.f, ytf, rows, num_threads());
  parallel_for((out + 15) / 16, 4, [&](int64_t lo, int64_t hi) { transpose_add_bias(y, ytf, bias, rows, out, lo, hi); });
}

// y = x Wᵀ with W transposed into k-major pairs (a copy of W's size per call) and x as it is: from many rows on, where
// the copy costs little and linear_w_as_a's transposes of x and of the result (and its scratch) cost more
void linear_w_kmajor(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                     int64_t out) {
  using namespace gemm_detail;
  const int64_t K2 = (in + 1) / 2;
  PairScratch xp, wp;
  round_operand(xp, true, rows, in, x, in);
  // W [out, in] is op(B) transposed, already bf16
  round_b_kmajor(wp, true, out, in, nullptr, w, in);
  if (bias)
    parallel_for(rows, std::max<int64_t>(1, 16384 / out), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) std::copy(bias, bias + out, y + r * out);
    });
  gemm_blocked(isa_pairs(), false, false, rows, out, K2, 1.f, reinterpret_cast<const float*>(xp.data()), K2,
               reinterpret_cast<const float*>(wp.data()), out, bias ? 1.f : 0.f, y, out, num_threads());
}

}  // namespace

// Rows from which the product reads W transposed into k-major pairs instead of as it is (Zen 5, 2 threads, GFLOP/s of
// W as it is / transposed, at 1,024 rows: 768 -> 4096 559 / 484, 4096 -> 4096 630 / 521, 768 -> 32,000 654 / 513,
// 2048 -> 768 535 / 553; at 2,048 rows 509 / 583, 665 / 607, 160 / 560 (the result's transpose and its 262 MB scratch
// dominate), 536 / 585). xLSTM Large's prompt pieces (large_decoder.h, ~1,024 rows) so never copy W.
constexpr int64_t kKmajorMinRows = 2048;

void linear_bf16_pairs(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                       int64_t out) {
  if (rows >= kKmajorMinRows) linear_w_kmajor(y, x, w, bias, rows, in, out);
  else linear_w_as_a(y, x, w, bias, rows, in, out);
}

}  // namespace bf16_detail
}  // namespace xlstm
