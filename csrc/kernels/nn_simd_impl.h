// The row primitives of nn_simd.h written once over a small vector abstraction, instantiated per SIMD level
// (CPU kernels layer). Included by nn_simd.cc (scalar), nn_simd_avx2.cc and nn_simd_avx512.cc, each compiled
// with its own ISA flags. Everything here lives in an anonymous namespace, so the three instantiations never
// meet at link time (no AVX code can leak into the scalar path through a shared inline definition).
//
// A vector trait T provides: V (register type), W (lanes), load/store, load_partial(p, n, fill) and
// store_partial(p, v, n) for the last n < W elements, set1, zero, add, sub, mul, fmadd(a, b, c) = a*b + c,
// max, exp, hsum, hmax.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/nn_simd.h"

namespace xlstm {
namespace {

constexpr int64_t kSumBlock = 1024;  // elements per float block sum; block sums are added in double

struct ScalarT {
  using V = float;
  static constexpr int64_t W = 1;
  static V load(const float* p) { return *p; }
  static V load_partial(const float* p, int64_t n, float fill) { return n > 0 ? *p : fill; }
  static void store(float* p, V v) { *p = v; }
  static void store_partial(float* p, V v, int64_t n) {
    if (n > 0) *p = v;
  }
  static V set1(float a) { return a; }
  static V zero() { return 0.f; }
  static V add(V a, V b) { return a + b; }
  static V sub(V a, V b) { return a - b; }
  static V mul(V a, V b) { return a * b; }
  static V fmadd(V a, V b, V c) { return a * b + c; }
  static V max(V a, V b) { return a < b ? b : a; }
  static V exp(V a) { return std::exp(a); }
  static float hsum(V a) { return a; }
  static float hmax(V a) { return a; }
};

// Cephes expf constants (shared by the SIMD traits).
constexpr float kExpHi = 88.3762626647949f;
constexpr float kExpLo = -87.3365447504f;  // log(FLT_MIN): below it the result is flushed to 0
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kP0 = 1.9875691500e-4f, kP1 = 1.3981999507e-3f, kP2 = 8.3334519073e-3f, kP3 = 4.1665795894e-2f,
                kP4 = 1.6666665459e-1f, kP5 = 5.0000001201e-1f;

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2T {
  using V = __m256;
  static constexpr int64_t W = 8;
  static __m256i tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_partial(const float* p, int64_t n, float fill) {
    __m256i m = tail_mask(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_partial(float* p, V v, int64_t n) { _mm256_maskstore_ps(p, tail_mask(n), v); }
  static V set1(float a) { return _mm256_set1_ps(a); }
  static V zero() { return _mm256_setzero_ps(); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V exp(V x0) {
    // min/max return their second operand when one is NaN: keep x0 second so NaN propagates.
    V x = _mm256_max_ps(_mm256_set1_ps(kExpLo), _mm256_min_ps(_mm256_set1_ps(kExpHi), x0));
    V fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Hi), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Lo), x);
    V z = _mm256_mul_ps(x, x);
    V y = _mm256_set1_ps(kP0);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP1));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP2));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP3));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP4));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP5));
    y = _mm256_fmadd_ps(y, z, _mm256_add_ps(x, _mm256_set1_ps(1.f)));
    __m256i n = _mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127));
    V r = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(n, 23)));
    return _mm256_blendv_ps(r, _mm256_setzero_ps(), _mm256_cmp_ps(x0, _mm256_set1_ps(kExpLo), _CMP_LT_OQ));
  }
  static float hsum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#endif

#if defined(__AVX512F__)
struct Avx512T {
  using V = __m512;
  static constexpr int64_t W = 16;
  static __mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_partial(const float* p, int64_t n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), tail_mask(n), p);
  }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_partial(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, tail_mask(n), v); }
  static V set1(float a) { return _mm512_set1_ps(a); }
  static V zero() { return _mm512_setzero_ps(); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V exp(V x0) {
    V x = _mm512_max_ps(_mm512_set1_ps(kExpLo), _mm512_min_ps(_mm512_set1_ps(kExpHi), x0));
    V fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Hi), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Lo), x);
    V z = _mm512_mul_ps(x, x);
    V y = _mm512_set1_ps(kP0);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP1));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP2));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP3));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP4));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP5));
    y = _mm512_fmadd_ps(y, z, _mm512_add_ps(x, _mm512_set1_ps(1.f)));
    __m512i n = _mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127));
    V r = _mm512_mul_ps(y, _mm512_castsi512_ps(_mm512_slli_epi32(n, 23)));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x0, _mm512_set1_ps(kExpLo), _CMP_LT_OQ), r, _mm512_setzero_ps());
  }
  static float hsum(V v) {
    __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(V v) {
    __m256 s8 = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#endif

// ---- loop skeletons -------------------------------------------------------------------------------------------

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

// f(i, cnt) for full vectors (cnt == W) and one tail (cnt < W).
template <class T, class F>
inline void for_each_vec(int64_t n, F&& f) {
  int64_t i = 0;
  for (; i + T::W <= n; i += T::W) f(i, T::W);
  if (i < n) f(i, n - i);
}

template <class T>
inline typename T::V ld(const float* p, int64_t cnt, float fill) {
  return cnt == T::W ? T::load(p) : T::load_partial(p, cnt, fill);
}
template <class T>
inline void st(float* p, typename T::V v, int64_t cnt) {
  if (cnt == T::W) T::store(p, v);
  else T::store_partial(p, v, cnt);
}

// Sum of f(i, cnt) over the row; f must return 0 in lanes >= cnt. Float lanes per block, blocks in double.
template <class T, class F>
inline double reduce_sum(int64_t n, F&& f) {
  double total = 0;
  for (int64_t b0 = 0; b0 < n; b0 += kSumBlock) {
    const int64_t e = imin(n, b0 + kSumBlock);
    typename T::V acc = T::zero();
    int64_t i = b0;
    for (; i + T::W <= e; i += T::W) acc = T::add(acc, f(i, T::W));
    if (i < e) acc = T::add(acc, f(i, e - i));
    total += static_cast<double>(T::hsum(acc));
  }
  return total;
}

template <class T>
inline float row_max(const float* x, int64_t n) {
  typename T::V m = T::set1(-INFINITY);
  for_each_vec<T>(n, [&](int64_t i, int64_t c) { m = T::max(m, ld<T>(x + i, c, -INFINITY)); });
  return T::hmax(m);
}

// sum exp(x - shift), storing exp(x - shift) into y when Store.
template <class T, bool Store>
inline double exp_sum(float* y, const float* x, float shift, int64_t n) {
  const typename T::V s = T::set1(shift);
  return reduce_sum<T>(n, [&](int64_t i, int64_t c) {
    typename T::V e = T::exp(T::sub(ld<T>(x + i, c, -INFINITY), s));
    if (Store) st<T>(y + i, e, c);
    return e;
  });
}

// ---- softmax family -------------------------------------------------------------------------------------------

template <class T>
void t_softmax_row(float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  const float m = row_max<T>(x, n);
  const double s = exp_sum<T, true>(y, x, m, n);
  const typename T::V inv = T::set1(static_cast<float>(1.0 / s));
  for_each_vec<T>(n, [&](int64_t i, int64_t c) { st<T>(y + i, T::mul(ld<T>(y + i, c, 0.f), inv), c); });
}

template <class T>
void t_log_softmax_row(float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  const float m = row_max<T>(x, n);
  const float ls = static_cast<float>(std::log(exp_sum<T, false>(nullptr, x, m, n)));
  const typename T::V vm = T::set1(m), vls = T::set1(ls);
  for_each_vec<T>(n, [&](int64_t i, int64_t c) { st<T>(y + i, T::sub(T::sub(ld<T>(x + i, c, 0.f), vm), vls), c); });
}

template <class T>
void t_softmax_bwd_row(float* dx, const float* y, const float* dy, int64_t n) {
  const double d = reduce_sum<T>(n, [&](int64_t i, int64_t c) { return T::mul(ld<T>(dy + i, c, 0.f), ld<T>(y + i, c, 0.f)); });
  const typename T::V vd = T::set1(static_cast<float>(d));
  for_each_vec<T>(n, [&](int64_t i, int64_t c) {
    st<T>(dx + i, T::mul(ld<T>(y + i, c, 0.f), T::sub(ld<T>(dy + i, c, 0.f), vd)), c);
  });
}

template <class T>
void t_log_softmax_bwd_row(float* dx, const float* y, const float* dy, int64_t n) {
  const double s = reduce_sum<T>(n, [&](int64_t i, int64_t c) { return ld<T>(dy + i, c, 0.f); });
  const typename T::V vs = T::set1(static_cast<float>(s));
  for_each_vec<T>(n, [&](int64_t i, int64_t c) {
    typename T::V p = T::exp(ld<T>(y + i, c, 0.f));
    st<T>(dx + i, T::sub(ld<T>(dy + i, c, 0.f), T::mul(p, vs)), c);
  });
}

template <class T>
void t_logsumexp_row(float* row_max_out, float* log_sum, const float* x, int64_t n) {
  const float m = row_max<T>(x, n);
  *row_max_out = m;
  *log_sum = static_cast<float>(std::log(exp_sum<T, false>(nullptr, x, m, n)));
}

template <class T>
void t_softmax_scaled_row(float* dx, const float* x, float m, float ls, float g, int64_t n) {
  const typename T::V vm = T::set1(m), vls = T::set1(ls), vg = T::set1(g);
  for_each_vec<T>(n, [&](int64_t i, int64_t c) {
    st<T>(dx + i, T::mul(vg, T::exp(T::sub(T::sub(ld<T>(x + i, c, 0.f), vm), vls))), c);
  });
}

// ---- layer norm over one group ----------------------------------------------------------------------------------

// gamma for lanes [i, i + c): w, 1 + w, or 1.
template <class T, bool HasW, bool Residual>
inline typename T::V gamma_at(const float* w, int64_t i, int64_t c) {
  if (!HasW) return T::set1(1.f);
  typename T::V v = ld<T>(w + i, c, 0.f);
  return Residual ? T::add(v, T::set1(1.f)) : v;
}

template <class T, bool HasW, bool Residual, bool HasB>
void norm_fwd_impl(float* y, float* mean_out, float* rstd_out, const float* x, const float* w, const float* b,
                   int64_t d, float eps) {
  const double mean = reduce_sum<T>(d, [&](int64_t i, int64_t c) { return ld<T>(x + i, c, 0.f); }) / static_cast<double>(d);
  const float mf = static_cast<float>(mean);
  const typename T::V vm = T::set1(mf);
  // Two-pass variance around the float mean (what the normalisation below subtracts).
  const double var = reduce_sum<T>(d, [&](int64_t i, int64_t c) {
                       typename T::V t = T::sub(ld<T>(x + i, c, mf), vm);
                       return T::mul(t, t);
                     }) / static_cast<double>(d);
  const float rstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
  *mean_out = mf;
  *rstd_out = rstd;
  const typename T::V vr = T::set1(rstd);
  for_each_vec<T>(d, [&](int64_t i, int64_t c) {
    typename T::V xh = T::mul(T::sub(ld<T>(x + i, c, 0.f), vm), vr);
    typename T::V g = gamma_at<T, HasW, Residual>(w, i, c);
    st<T>(y + i, HasB ? T::fmadd(xh, g, ld<T>(b + i, c, 0.f)) : T::mul(xh, g), c);
  });
}

template <class T>
void t_norm_fwd_row(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t d,
                    float eps, bool residual) {
  if (!w) {
    if (b) norm_fwd_impl<T, false, false, true>(y, mean, rstd, x, w, b, d, eps);
    else norm_fwd_impl<T, false, false, false>(y, mean, rstd, x, w, b, d, eps);
  } else if (residual) {
    if (b) norm_fwd_impl<T, true, true, true>(y, mean, rstd, x, w, b, d, eps);
    else norm_fwd_impl<T, true, true, false>(y, mean, rstd, x, w, b, d, eps);
  } else {
    if (b) norm_fwd_impl<T, true, false, true>(y, mean, rstd, x, w, b, d, eps);
    else norm_fwd_impl<T, true, false, false>(y, mean, rstd, x, w, b, d, eps);
  }
}

// XLSTM_SPEC §5.3: g = dy * gamma, dx = (g - mean(g) - xhat * mean(g * xhat)) * rstd; dw += dy * xhat; db += dy.
template <class T, bool HasW, bool Residual>
void norm_bwd_impl(float* dx, float* dw, float* db, const float* dy, const float* x, float mean, float rstd,
                   const float* w, int64_t d) {
  const typename T::V vm = T::set1(mean), vr = T::set1(rstd);
  double sg = 0, sgx = 0;
  // One pass for both sums (blockwise, like reduce_sum).
  for (int64_t b0 = 0; b0 < d; b0 += kSumBlock) {
    const int64_t e = imin(d, b0 + kSumBlock);
    typename T::V ag = T::zero(), agx = T::zero();
    auto body = [&](int64_t i, int64_t c) {
      typename T::V xh = T::mul(T::sub(ld<T>(x + i, c, mean), vm), vr);
      typename T::V g = T::mul(ld<T>(dy + i, c, 0.f), gamma_at<T, HasW, Residual>(w, i, c));
      ag = T::add(ag, g);
      agx = T::fmadd(g, xh, agx);
    };
    int64_t i = b0;
    for (; i + T::W <= e; i += T::W) body(i, T::W);
    if (i < e) body(i, e - i);
    sg += static_cast<double>(T::hsum(ag));
    sgx += static_cast<double>(T::hsum(agx));
  }
  const typename T::V vmg = T::set1(static_cast<float>(sg / static_cast<double>(d)));
  const typename T::V vmgx = T::set1(static_cast<float>(sgx / static_cast<double>(d)));
  for_each_vec<T>(d, [&](int64_t i, int64_t c) {
    typename T::V dyv = ld<T>(dy + i, c, 0.f);
    typename T::V xh = T::mul(T::sub(ld<T>(x + i, c, 0.f), vm), vr);
    typename T::V g = T::mul(dyv, gamma_at<T, HasW, Residual>(w, i, c));
    typename T::V t = T::sub(T::sub(g, vmg), T::mul(xh, vmgx));
    st<T>(dx + i, T::mul(t, vr), c);
    if (dw) st<T>(dw + i, T::fmadd(dyv, xh, ld<T>(dw + i, c, 0.f)), c);
    if (db) st<T>(db + i, T::add(dyv, ld<T>(db + i, c, 0.f)), c);
  });
}

template <class T>
void t_norm_bwd_row(float* dx, float* dw, float* db, const float* dy, const float* x, float mean, float rstd,
                    const float* w, int64_t d, bool residual) {
  if (!w) norm_bwd_impl<T, false, false>(dx, dw, db, dy, x, mean, rstd, w, d);
  else if (residual) norm_bwd_impl<T, true, true>(dx, dw, db, dy, x, mean, rstd, w, d);
  else norm_bwd_impl<T, true, false>(dx, dw, db, dy, x, mean, rstd, w, d);
}

// ---- elementwise (plain loops: the compiler vectorises them with this file's ISA flags) --------------------------

void fma_row_plain(float* __restrict acc, const float* __restrict a, const float* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += a[i] * b[i];
}

void add_row_plain(float* __restrict acc, const float* __restrict a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) acc[i] += a[i];
}

template <class T>
NnKernels make_nn_kernels(const char* level) {
  NnKernels k;
  k.level = level;
  k.softmax_row = t_softmax_row<T>;
  k.log_softmax_row = t_log_softmax_row<T>;
  k.softmax_bwd_row = t_softmax_bwd_row<T>;
  k.log_softmax_bwd_row = t_log_softmax_bwd_row<T>;
  k.logsumexp_row = t_logsumexp_row<T>;
  k.softmax_scaled_row = t_softmax_scaled_row<T>;
  k.norm_fwd_row = t_norm_fwd_row<T>;
  k.norm_bwd_row = t_norm_bwd_row<T>;
  k.fma_row = fma_row_plain;
  k.add_row = add_row_plain;
  return k;
}

}  // namespace
}  // namespace xlstm
