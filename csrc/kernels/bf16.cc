// bfloat16 conversions and the bf16-weight linear map: scalar path, dispatch and threading (see bf16.h).
#include "kernels/bf16.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string_view>
#include <vector>

#include "kernels/bf16_math.h"
#include "kernels/cpu_features.h"
#include "kernels/threadpool.h"

#if defined(XLSTM_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

namespace xlstm {
namespace {

using bf16_math::widen;
inline uint16_t narrow(float f) { return bf16_math::round(f); }

std::atomic<bool> g_dot_enabled{true};
std::atomic<bool> g_amx_enabled{true};

// Output blocks of this many rows of W are the unit of work (every ISA's register tile is 4 outputs wide).
constexpr int64_t kOutBlock = 4;
constexpr int64_t kPairsMinRows = 32;  // bf16_linear round_x on vdpbf16ps: the GEMM tiles from this many rows (below)

// Scalar float32 path for outputs [o0, o1): each W row widened once into a buffer, then one dot per x row.
void linear_scalar(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                   int64_t out, int64_t o0, int64_t o1) {
  std::vector<float> wr(static_cast<size_t>(in));
  for (int64_t o = o0; o < o1; ++o) {
    const uint16_t* wo = w + o * in;
    for (int64_t i = 0; i < in; ++i) wr[i] = widen(wo[i]);
    const float b = bias ? bias[o] : 0.f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * in;
      float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
      int64_t i = 0;
      for (; i + 4 <= in; i += 4) {
        s0 += xr[i] * wr[i];
        s1 += xr[i + 1] * wr[i + 1];
        s2 += xr[i + 2] * wr[i + 2];
        s3 += xr[i + 3] * wr[i + 3];
      }
      for (; i < in; ++i) s0 += xr[i] * wr[i];
      y[r * out + o] = (s0 + s1) + (s2 + s3) + b;
    }
  }
}

double sum_scalar(const uint16_t* x, int64_t n) {
  double total = 0;
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    const int64_t i1 = std::min(n, i0 + 4096);
    float s = 0.f;
    for (int64_t i = i0; i < i1; ++i) s += widen(x[i]);
    total += s;
  }
  return total;
}

}  // namespace

namespace bf16_detail {
bool cpu_has_avx512bf16() {
#if defined(XLSTM_X86) && (defined(__GNUC__) || defined(__clang__))
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return false;
    return (a & (1u << 5)) != 0;  // CPUID.(EAX=7,ECX=1):EAX[5] = AVX512_BF16
  }();
  return has;
#else
  return false;
#endif
}
int64_t pack_x_vnni_size(int64_t rows, int64_t in) { return (rows + 15) / 16 * ((in + 31) / 32) * 512; }

#if !defined(XLSTM_HAVE_AMX)
bool amx_usable() { return false; }
void linear_amx(float*, const uint16_t*, const uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void pack_x_vnni(uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t) {}
void pack_kmajor_vnni(uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t) {}
void round_rows_bf16(uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t) {}
void round_transposed_bf16(uint16_t*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t) {}
#endif

}  // namespace bf16_detail

bool bf16_amx_available() {
  return g_amx_enabled.load(std::memory_order_relaxed) && simd_level() == SimdLevel::AVX512 &&
         bf16_detail::amx_usable();
}

bool bf16_set_amx_enabled(bool enabled) {
  g_amx_enabled.store(enabled, std::memory_order_relaxed);
  return bf16_amx_available();
}

bool bf16_dot_available() {
  return g_dot_enabled.load(std::memory_order_relaxed) && simd_level() == SimdLevel::AVX512 &&
         bf16_detail::cpu_has_avx512bf16();
}

bool bf16_set_dot_enabled(bool enabled) {
  g_dot_enabled.store(enabled, std::memory_order_relaxed);
  return bf16_dot_available();
}

void bf16_from_f32(uint16_t* out, const float* x, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = narrow(x[i]);
  });
}

// one row of the embedding (no threads: the caller splits the rows)
static void bf16_to_f32_rows(float* out, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = widen(x[i]);
}

void bf16_to_f32(float* out, const uint16_t* x, int64_t n) {
  parallel_for(n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = widen(x[i]);
  });
}

double bf16_sum(const uint16_t* x, int64_t n) {
  const SimdLevel lvl = simd_level();
  // one partial per fixed-size piece, summed in order afterwards: the result does not depend on the thread count
  constexpr int64_t kPiece = 1 << 16;
  const int64_t pieces = (n + kPiece - 1) / kPiece;
  std::vector<double> part(static_cast<size_t>(std::max<int64_t>(pieces, 1)), 0.0);
  parallel_for(pieces, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const uint16_t* xp = x + p * kPiece;
      const int64_t len = std::min(kPiece, n - p * kPiece);
#if defined(XLSTM_X86)
      if (lvl == SimdLevel::AVX512) part[p] = bf16_detail::sum_avx512(xp, len);
      else if (lvl == SimdLevel::AVX2) part[p] = bf16_detail::sum_avx2(xp, len);
      else part[p] = sum_scalar(xp, len);
#else
      (void)lvl;
      part[p] = sum_scalar(xp, len);
#endif
    }
  });
  double total = 0;
  for (double v : part) total += v;
  return total;
}

namespace bf16_detail {
void linear_amx_packed(float* y, const uint16_t* xp, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                       int64_t out) {
  const int64_t nt = std::max(1, num_threads());
  const int64_t blocks = (out + 31) / 32, per = std::max<int64_t>(1, blocks / (2 * nt));
  parallel_for((blocks + per - 1) / per, 1, [&](int64_t lo, int64_t hi) {
    linear_amx(y, xp, w, bias, rows, in, out, lo * per * 32, std::min(out, hi * per * 32));
  });
}
}  // namespace bf16_detail

const char* bf16_linear_path(int64_t rows, bool round_x) {
  if (round_x && bf16_amx_available()) return "amx";
  // From kPairsMinRows rows the GEMM tiles (gemm_bf16pairs_avx512.cc) beat the dot-product tiles (Zen 5, 2 threads,
  // GFLOP/s of GEMM / dot tiles: 768 -> 4096 at 32 rows 653 / 344, at 16 rows 289 / 322; 4096 -> 4096 at 32 rows
  // 399 / 354, at 16 rows 180 / 301; at 1,024 rows 521-630 / 338-402)
  if (round_x && bf16_dot_available()) return rows >= kPairsMinRows ? "vdpbf16ps-gemm" : "vdpbf16ps";
  switch (simd_level()) {
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::AVX2: return "avx2";
    default: return "scalar";
  }
}

void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                 int64_t out, bool round_x) {
  if (rows <= 0 || out <= 0) return;
  if (in <= 0) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t o = 0; o < out; ++o) y[r * out + o] = bias ? bias[o] : 0.f;
    return;
  }
  const std::string_view path = bf16_linear_path(rows, round_x);
  if (path == "amx") {
    // x packed once into the tiles' layout; panels of whole 32-output blocks (the kernel's unit), at least 2 per thread
    std::vector<uint16_t> xp(static_cast<size_t>(bf16_detail::pack_x_vnni_size(rows, in)));
    parallel_for((rows + 15) / 16, 1,
                 [&](int64_t lo, int64_t hi) { bf16_detail::pack_x_vnni(xp.data(), x, rows, in, lo, hi); });
    bf16_detail::linear_amx_packed(y, xp.data(), w, bias, rows, in, out);
    return;
  }
#if defined(XLSTM_X86)
  if (path == "vdpbf16ps-gemm") return bf16_detail::linear_bf16_pairs(y, x, w, bias, rows, in, out);
#endif
  const SimdLevel lvl = simd_level();
  // The unit of work is a panel of W's rows: small enough to stay in L2 while the x rows stream past it (each ISA
  // walks x in blocks of a few rows), and at least 4 panels per thread so the split is balanced.
  const int64_t nt = std::max(1, num_threads());
  const int64_t cache_rows = std::max<int64_t>(kOutBlock, ((int64_t{1} << 17) / in) / kOutBlock * kOutBlock);
  const int64_t even = ((out + 4 * nt - 1) / (4 * nt) + kOutBlock - 1) / kOutBlock * kOutBlock;
  const int64_t panel = std::max<int64_t>(kOutBlock, std::min(cache_rows, even));
  const int64_t panels = (out + panel - 1) / panel;
  std::vector<uint16_t> xb;
  std::vector<float> xr;
  const float* xs = x;
  const bool dot = path == "vdpbf16ps";
  if (round_x) {
    xb.resize(static_cast<size_t>(rows * in));
    bf16_from_f32(xb.data(), x, rows * in);
    if (!dot) {
      xr.resize(xb.size());
      bf16_to_f32(xr.data(), xb.data(), rows * in);
      xs = xr.data();
    }
  }
  parallel_for(panels, 1, [&](int64_t lo, int64_t hi) {
    const int64_t o0 = lo * panel, o1 = std::min(out, hi * panel);
#if defined(XLSTM_X86)
    if (dot) return bf16_detail::linear_avx512bf16(y, xb.data(), w, bias, rows, in, out, o0, o1);
    if (lvl == SimdLevel::AVX512) return bf16_detail::linear_avx512(y, xs, w, bias, rows, in, out, o0, o1);
    if (lvl == SimdLevel::AVX2) return bf16_detail::linear_avx2(y, xs, w, bias, rows, in, out, o0, o1);
#else
    (void)lvl;
    (void)dot;
#endif
    linear_scalar(y, xs, w, bias, rows, in, out, o0, o1);
  });
}

template <class I>
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e) {
  parallel_for(n, std::max<int64_t>(1, 8192 / std::max<int64_t>(e, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) bf16_to_f32_rows(out + i * e, weight + static_cast<int64_t>(indices[i]) * e, e);
  });
}
template void bf16_embedding<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t);
template void bf16_embedding<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t);

}  // namespace xlstm
