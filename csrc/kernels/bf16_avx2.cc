// bf16-weight linear map and sum, AVX2 + FMA (see bf16.h). Register tile: 4 outputs x up to 2 rows of x (8
// accumulators of the 16 ymm registers), 8 lanes along `in`; a bf16 weight vector is widened with vpmovzxwd + a
// 16-bit shift (exact). The tail of `in` (< 8) is scalar.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/bf16.h"

namespace xlstm {
namespace bf16_detail {
namespace {

inline __m256 widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float widen1(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int NO, int NR>
void tile(float* y, const float* x, const uint16_t* w, const float* bias, int64_t in, int64_t out, int64_t o,
          int64_t r) {
  __m256 acc[NO][NR];
  for (int a = 0; a < NO; ++a)
    for (int b = 0; b < NR; ++b) acc[a][b] = _mm256_setzero_ps();
  int64_t i = 0;
  const uint16_t* ahead = w + (o + NO) * in;  // the next tile's rows: prefetched one tile ahead (see bf16_avx512.cc)
  for (; i + 8 <= in; i += 8) {
    if (NR == 1 && (i & 31) == 0)
      for (int a = 0; a < NO; ++a) _mm_prefetch(reinterpret_cast<const char*>(ahead + a * in + i), _MM_HINT_T0);
    __m256 wv[NO];
    for (int a = 0; a < NO; ++a) wv[a] = widen8(w + (o + a) * in + i);
    for (int b = 0; b < NR; ++b) {
      const __m256 xv = _mm256_loadu_ps(x + (r + b) * in + i);
      for (int a = 0; a < NO; ++a) acc[a][b] = _mm256_fmadd_ps(wv[a], xv, acc[a][b]);
    }
  }
  for (int a = 0; a < NO; ++a) {
    const float bb = bias ? bias[o + a] : 0.f;
    for (int b = 0; b < NR; ++b) {
      float s = hsum(acc[a][b]);
      for (int64_t t = i; t < in; ++t) s += x[(r + b) * in + t] * widen1(w[(o + a) * in + t]);
      y[(r + b) * out + o + a] = s + bb;
    }
  }
}

template <int NR>
void outputs(float* y, const float* x, const uint16_t* w, const float* bias, int64_t in, int64_t out, int64_t o0,
             int64_t o1, int64_t r) {
  int64_t o = o0;
  for (; o + 4 <= o1; o += 4) tile<4, NR>(y, x, w, bias, in, out, o, r);
  for (; o < o1; ++o) tile<1, NR>(y, x, w, bias, in, out, o, r);
}

}  // namespace

void linear_avx2(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                 int64_t out, int64_t o0, int64_t o1) {
  int64_t r = 0;
  for (; r + 2 <= rows; r += 2) outputs<2>(y, x, w, bias, in, out, o0, o1, r);
  for (; r < rows; ++r) outputs<1>(y, x, w, bias, in, out, o0, o1, r);
}

double sum_avx2(const uint16_t* x, int64_t n) {
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    const int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n;
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = i0;
    for (; i + 16 <= i1; i += 16) {
      s0 = _mm256_add_ps(s0, widen8(x + i));
      s1 = _mm256_add_ps(s1, widen8(x + i + 8));
    }
    float s = hsum(_mm256_add_ps(s0, s1));
    for (; i < i1; ++i) s += widen1(x[i]);
    total += s;
  }
  return total;
}

}  // namespace bf16_detail
}  // namespace xlstm
