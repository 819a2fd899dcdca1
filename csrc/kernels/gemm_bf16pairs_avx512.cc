// GEMM with bfloat16 operands and float32 sums on AVX512_BF16 (vdpbf16ps), for CPUs that have it but no AMX (AMD
// Zen 4 / Zen 5, Intel Cooper Lake): C = alpha bf16(op(A)) bf16(op(B)) + beta C (see bf16.h, gemm_bf16_pairs).
//
// Both operands are first rounded (nearest even) into dwords that each hold two bf16 of consecutive k, the even one in
// the low half, an odd K's last pair completed by a zero:
//   op(A), A as it is:     M rows of K2 = ⌈K/2⌉ dwords (the pairs are neighbours in A's rows);
//   op(A), A transposed:   K2 rows of M dwords (the pairs come from two consecutive rows of A);
//   op(B) likewise (B transposed: N rows of K2; as it is: K2 rows of N).
// gemm.cc's blocked driver then computes the product of those dword matrices over K2 steps, exactly as it does a
// float32 product (packing copies dwords bit for bit), with the AVX-512 14 x 32 tiles of gemm_avx512_tiles.h whose
// multiply-add is vdpbf16ps: 32 products per instruction against the float32 FMA's 16, the same blocking, threads and
// C update. The products of two bf16 are exact in float32; vdpbf16ps adds a pair's two into the lane, treating bf16
// denormals as zero, so the result differs from float32 sums of the rounded operands only in how the sums round.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <algorithm>

#include "kernels/aligned_vector.h"
#include "kernels/bf16.h"
#include "kernels/gemm.h"
#include "kernels/threadpool.h"

#if defined(__GNUC__) || defined(__clang__)
#define XLSTM_PAIRS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#else
#define XLSTM_PAIRS_TARGET
#endif

namespace xlstm {
namespace gemm_detail {
namespace {

// the edge tiles' intrinsic form of vdpbf16ps: c += a.lo b.lo + a.hi b.hi per lane (a, b hold pairs as float bits)
XLSTM_PAIRS_TARGET inline __m512 dot_pairs(__m512 a, __m512 b, __m512 c) {
  return _mm512_dpbf16_ps(c, (__m512bh)a, (__m512bh)b);
}

#define XLSTM_TILE_INSN "vdpbf16ps"
#define XLSTM_TILE_FMA(a, b, c) dot_pairs(a, b, c)
#define XLSTM_TILE_ATTR XLSTM_PAIRS_TARGET
#include "kernels/gemm_avx512_tiles.h"  // MR, NR, the tiles and macro()
#undef XLSTM_TILE_INSN
#undef XLSTM_TILE_FMA
#undef XLSTM_TILE_ATTR

void pack_a(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  pack_a_generic<MR>(trans, m, k, A, lda, Ap);
}
void pack_b(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  pack_b_generic<NR>(trans, k, n, B, ldb, Bp);
}

// the blocked driver's view of the pair tiles: the float32 AVX-512 ISA's blocking with KC counted in pairs (256 pairs
// of a 32-column sliver are the same 32 KiB of L1); no matrix-vector kernels (gemm_bf16_pairs calls the driver only)
const Isa& isa_pairs() {
  static const Isa isa{"avx512bf16", MR, NR, 256, 504, 4096, true, pack_a, pack_b, macro, nullptr, nullptr};
  return isa;
}

// lanes [0, n) of 16 (none for n <= 0)
inline __mmask16 dword_mask(int64_t n) {
  return n >= 16 ? static_cast<__mmask16>(0xFFFF) : n <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << n) - 1);
}

// dst[r * ldd + q] = pair(src[r][2q], src[r][2q + 1]) for rows [r0, r1), q < ⌈K/2⌉ (a zero past K)
XLSTM_PAIRS_TARGET void round_pairs_along(uint32_t* dst, int64_t ldd, const float* src, int64_t lds, int64_t K,
                                          int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* s = src + r * lds;
    uint32_t* d = dst + r * ldd;
    for (int64_t k = 0; k < K; k += 32) {
      const __m512 lo = _mm512_maskz_loadu_ps(dword_mask(K - k), s + k);
      const __m512 hi = _mm512_maskz_loadu_ps(dword_mask(K - k - 16), s + k + 16);
      // cvtne2ps(hi, lo): lo's 16 bf16 in the low 256 bits, then hi's: s[k], s[k+1], ... in order, two per dword
      const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
      _mm512_mask_storeu_epi32(d + k / 2, dword_mask((K - k + 1) / 2), v);
    }
  }
}

// dst[q * ldd + c] = pair(src[2q][c], src[2q + 1][c]) for q in [q0, q1), c < cols (row 2q + 1 = K is a zero row)
XLSTM_PAIRS_TARGET void round_pairs_across(uint32_t* dst, int64_t ldd, const float* src, int64_t lds, int64_t K,
                                           int64_t cols, int64_t q0, int64_t q1) {
  for (int64_t q = q0; q < q1; ++q) {
    const float* s0 = src + 2 * q * lds;
    const float* s1 = 2 * q + 1 < K ? s0 + lds : nullptr;
    uint32_t* d = dst + q * ldd;
    for (int64_t c = 0; c < cols; c += 16) {
      const __mmask16 m = dword_mask(cols - c);
      const __m256i e = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s0 + c));
      __m512i v = _mm512_cvtepu16_epi32(e);
      if (s1) {
        const __m256i o = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s1 + c));
        v = _mm512_or_si512(v, _mm512_slli_epi32(_mm512_cvtepu16_epi32(o), 16));
      }
      _mm512_mask_storeu_epi32(d + c, m, v);
    }
  }
}

// In place: r[c] = column c of the 16 x 16 dword block whose row i is r[i].
XLSTM_PAIRS_TARGET inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {  // t[2i] lane L: r2i[4L], r2i+1[4L], r2i[4L+1], r2i+1[4L+1]; t[2i+1]: columns 4L+2, 4L+3
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // r[4i + j] lane L: rows 4i..4i+3 of column 4L + j
    r[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int j = 0; j < 4; ++j) {  // column 4L + j = lane L of r[j], r[4 + j], r[8 + j], r[12 + j]: a 4 x 4 lane transpose
    const __m512i ab_lo = _mm512_shuffle_i32x4(r[j], r[4 + j], 0x44), cd_lo = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0x44);
    const __m512i ab_hi = _mm512_shuffle_i32x4(r[j], r[4 + j], 0xEE), cd_hi = _mm512_shuffle_i32x4(r[8 + j], r[12 + j], 0xEE);
    t[j] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0x88);
    t[4 + j] = _mm512_shuffle_i32x4(ab_lo, cd_lo, 0xDD);
    t[8 + j] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0x88);
    t[12 + j] = _mm512_shuffle_i32x4(ab_hi, cd_hi, 0xDD);
  }
  for (int c = 0; c < 16; ++c) r[c] = t[c];
}

// dst[q * ldd + n] = pair(X[n][2q], X[n][2q + 1]) (a zero past K) for n in 16-row blocks [b0, b1), n < rows: X's
// rows transposed into the k-major layout the tiles read op(B) in, 16 x 16 dwords at a time. X is float32 (rounded
// here) or, with `bits`, already bf16 (Xb).
XLSTM_PAIRS_TARGET void round_pairs_transposed(uint32_t* dst, int64_t ldd, const float* X, const uint16_t* Xb,
                                               int64_t ldx, int64_t rows, int64_t K, int64_t b0, int64_t b1) {
  const int64_t K2 = (K + 1) / 2;
  __m512i r[16];
  for (int64_t nb = b0; nb < b1; ++nb) {
    const int64_t n0 = nb * 16, nr = std::min<int64_t>(16, rows - n0);
    for (int64_t q0 = 0; q0 < K2; q0 += 16) {
      const int64_t k = 2 * q0;
      for (int i = 0; i < 16; ++i) {
        if (i >= nr) {
          r[i] = _mm512_setzero_si512();
        } else if (Xb) {
          const int64_t left = K - k;
          const __mmask32 m = left >= 32 ? ~0u : static_cast<__mmask32>((1u << left) - 1);
          r[i] = _mm512_maskz_loadu_epi16(m, Xb + (n0 + i) * ldx + k);
        } else {
          const float* s = X + (n0 + i) * ldx + k;
          r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(dword_mask(K - k - 16), s + 16),
                                              _mm512_maskz_loadu_ps(dword_mask(K - k), s));
        }
      }
      transpose16(r);
      const __mmask16 m = dword_mask(nr);
      const int64_t nq = std::min<int64_t>(16, K2 - q0);
      for (int c = 0; c < nq; ++c) _mm512_mask_storeu_epi32(dst + (q0 + c) * ldd + n0, m, r[c]);
    }
  }
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

void linear_bf16_pairs(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
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

}  // namespace bf16_detail
}  // namespace xlstm
