// Small-tile matrix products for the chunkwise mLSTM cell (CPU kernels layer; used by mlstm_engine.h, XLSTM_SPEC
// §4.5/§4.6). The chunk tiles are small (L x L, L x D, D x D with L = 64, D = 64..128) and live in L1/L2, so instead
// of xlstm::gemm (which packs operands for large products) a register-blocked kernel reads every operand in place:
//
//   C[i, j] = epilogue( Σ_seg Σ_p A_seg(i, p) · B_seg[p, j] )      i < m, j < n
//
// where A_seg(i, p) = a[i*ars + p*aps] (so A or Aᵀ, row-major, without a copy) and B_seg is row-major k x n (ldb).
// Up to kMaxSegs segments accumulate into the same registers (e.g. H = P V + (β ⊙ Q) C_c in one pass). A segment
// may be marked triangular when A vanishes outside it: kLower (A(i, p) = 0 for p > i: only p <= the block's last row
// is read) or kUpper (A(i, p) = 0 for p < i: only p >= the block's first row). Output option lower_out computes only
// the columns j < (block's last row + 1), rounded up to whole vectors (the caller zeroes the rest of the upper
// triangle); this halves Q Kᵀ-shaped products. Row blocks start at multiples of kMR (callers rely on it to zero
// only the entries above the diagonal that a triangular segment reads).
// Epilogue per element: alpha · rs[i] · acc + u[i] · v[j] + beta · cin[i, j] (rs, u/v, cin optional; cin may alias
// C exactly, each element is read before it is written). An optional Prefetcher hands the micro-kernels one cache
// line per k step to prefetch (the next chunk's rows), so that memory traffic overlaps the arithmetic.
//
// Register tiles of kMR rows x kNV vectors of kVW floats (AVX-512: 6 x 4 x 16 in 24 zmm accumulators; AVX2: 6 x 2 x
// 8; otherwise 4 x 2 x 4 with GCC vector extensions, which also lower to plain code), chosen from the compiler flags
// of the translation unit including this header (internal linkage: one copy per ISA). Columns beyond the last whole
// vector go through a scalar tail. The summation order depends only on the shape and the ISA, never on threads or
// on addresses (no alignment peeling: whole-vector loads and stores).
// With Epi::bf16 the AVX-512 build runs the same products on bf16 pairs (mlstm_tile_pairs.h: "medium" precision).
// Also here: float exp (exp_f, the fast_math.h algorithm forced inline; exp_v on whole vectors), horizontal sums,
// and an 8 x 8-blocked transpose for the Kᵀ / Vᵀ / C_cᵀ / Λᶜᵀ operands of the A Bᵀ-shaped products.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels/fast_math.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace xlstm {
namespace {
namespace mtile {

#if defined(__AVX512F__)
constexpr int kVW = 16, kMR = 6, kNV = 4;
#elif defined(__AVX2__)
constexpr int kVW = 8, kMR = 6, kNV = 2;
#else
constexpr int kVW = 4, kMR = 4, kNV = 2;
#endif
constexpr int kMaxSegs = 2;

typedef float vf __attribute__((vector_size(kVW * sizeof(float)), aligned(4), may_alias));
typedef int32_t vi __attribute__((vector_size(kVW * sizeof(int32_t))));

// e^x: fm_exp (fast_math.h, always inlined so that the cell's `omp simd` loops keep it in the loop body).
__attribute__((always_inline)) inline float exp_f(float x) { return fm_exp(x); }

// Pairwise tree sum of the lanes of a vector: lane i + lane i+W/2, then i + i+W/4, ... (__builtin_shuffle keeps
// the width, so each step folds the upper half onto the lower one; the other lanes are ignored).
inline float hsum(vf acc) {
#if defined(__AVX512F__)
  acc += __builtin_shuffle(acc, vi{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7});
  acc += __builtin_shuffle(acc, vi{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3});
#elif defined(__AVX2__)
  acc += __builtin_shuffle(acc, vi{4, 5, 6, 7, 0, 1, 2, 3});
#endif
  return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

// Σ_{j<n} p[j]: kVW partial sums, a pairwise tree, then the remainder (the order depends only on n and the ISA).
inline float sum(const float* p, int64_t n) {
  vf acc = vf{};
  int64_t j = 0;
  for (; j + kVW <= n; j += kVW) acc += *reinterpret_cast<const vf*>(p + j);
  float s = hsum(acc);
  for (; j < n; ++j) s += p[j];
  return s;
}

typedef double vd __attribute__((vector_size(kVW * sizeof(double)), aligned(8), may_alias));

// exp_f on a whole vector: the same steps (rint by the 1.5·2^23 shift, exact for |x·log2 e| < 2^22, which the
// clamp guarantees), written with vector types so that short rows need no scalar remainder loop.
__attribute__((always_inline)) inline vf exp_v(vf x) {
  const vf xl = -87.3f < x ? x : vf{} - 87.3f;
  const vf xs = 88.7f < xl ? vf{} + 88.7f : xl;
  const vf n = (xs * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  vf r = n * -0.693359375f + xs;
  r = n * 2.12194440e-4f + r;
  vf p = vf{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const vf y = (p * r) * r + r + 1.0f;
  const vi ni = __builtin_convertvector(n, vi);
  const vi n1 = ni >> 1, n2 = ni - n1;
  const vf s = y * (vf)((n1 + 127) << 23) * (vf)((n2 + 127) << 23);
  const vf big = vf{} + __builtin_inff();
  return x < -87.3f ? vf{} : (x > 88.7f ? big : (x == x ? s : x));
}

// The lane indices 0, 1, ..., kVW−1.
inline vi lane_index() {
  vi v;
  for (int i = 0; i < kVW; ++i) v[i] = i;
  return v;
}

// dst = sc · a and returns Σ a·b (of_dst: Σ dst·b) over n: kVW partial sums, a pairwise tree, then the remainder.
inline float scale_dot(float* dst, const float* a, float sc, const float* b, int64_t n, bool of_dst = false) {
  vf acc = vf{};
  int64_t j = 0;
  for (; j + kVW <= n; j += kVW) {
    const vf av = *reinterpret_cast<const vf*>(a + j);
    const vf dv = sc * av;
    *reinterpret_cast<vf*>(dst + j) = dv;
    acc += (of_dst ? dv : av) * *reinterpret_cast<const vf*>(b + j);
  }
  float sum = hsum(acc);
  for (; j < n; ++j) {
    dst[j] = sc * a[j];
    sum += (of_dst ? dst[j] : a[j]) * b[j];
  }
  return sum;
}

enum Tri : int { kFull = 0, kLower = 1, kUpper = 2 };

struct Seg {
  const float* a;
  int64_t ars, aps;  // A(i, p) = a[i*ars + p*aps]
  const float* b;
  int64_t ldb;  // B[p, j] = b[p*ldb + j]
  int64_t k;
  int tri;
};

// Memory the tile kernels prefetch (into L2) while they compute, one 64-byte line per k step: the next chunk's
// rows, so that their first use does not wait on memory. Up to kMaxRegions regions, taken in order.
struct Prefetcher {
  static constexpr int kMaxRegions = 8;
  const char* cur = nullptr;
  const char* end = nullptr;
  const char* rp[kMaxRegions];
  const char* re[kMaxRegions];
  int n = 0, next = 0;
  void clear() { cur = end = nullptr, n = next = 0; }
  void add(const float* p, int64_t floats) {
    if (floats <= 0 || n == kMaxRegions) return;
    rp[n] = reinterpret_cast<const char*>(p);
    re[n++] = reinterpret_cast<const char*>(p + floats);
  }
  // the span still to prefetch in the current region (empty when everything is handed out)
  void take(const char** p, const char** e) {
    while (cur >= end && next < n) cur = rp[next], end = re[next], ++next;
    *p = cur, *e = end;
  }
};

struct Epi {
  Prefetcher* pf = nullptr;  // lines to prefetch while computing (nullable)
  float alpha = 1.0f;
  const float* rs = nullptr;                     // per-row scale
  const float *u = nullptr, *v = nullptr;        // rank-1 term u[i] v[j]
  float beta = 0.0f;                             // beta * cin[i*ldcin + j] when cin != nullptr
  const float* cin = nullptr;
  int64_t ldcin = 0;
  bool bf16 = false;  // both factors of every product rounded to bf16, float32 sums (mlstm_tile_pairs.h)
};

inline int64_t seg_lo(const Seg& g, int64_t i0) { return g.tri == kUpper ? std::min(i0, g.k) : 0; }
inline int64_t seg_hi(const Seg& g, int64_t i0, int R) { return g.tri == kLower ? std::min(g.k, i0 + R) : g.k; }

// R rows x NV whole vectors at (i0, j0).
template <int R, int NV>
__attribute__((always_inline)) inline void micro(int64_t i0, int64_t j0, const Seg* sg, int ns, float* c,
                                                 int64_t ldc, const Epi& ep) {
  vf acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  const char *pq = nullptr, *pe = nullptr;
  if (ep.pf) ep.pf->take(&pq, &pe);
  for (int s = 0; s < ns; ++s) {
    const Seg& g = sg[s];
    const int64_t lo = seg_lo(g, i0), hi = seg_hi(g, i0, R);
    const int64_t ars = g.ars, aps = g.aps, ldb = g.ldb;
    const float* ap = g.a + i0 * ars + lo * aps;
    const float* bp = g.b + lo * ldb + j0;
    for (int64_t p = lo; p < hi; ++p, ap += aps, bp += ldb) {
      if (pq < pe) {
        __builtin_prefetch(pq, 0, 2);
        pq += 64;
      }
      vf bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = *reinterpret_cast<const vf*>(bp + v * kVW);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const float a = ap[r * ars];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] += a * bv[v];
      }
    }
  }
  if (ep.pf) ep.pf->cur = pq;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const float sc = ep.rs ? ep.alpha * ep.rs[i] : ep.alpha;
    float* cr = c + i * ldc + j0;
    if (ep.u) {
      const float ui = ep.u[i];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = acc[r][v] * sc + ui * *reinterpret_cast<const vf*>(ep.v + j0 + v * kVW);
    } else {
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] *= sc;
    }
    if (ep.cin) {
      const float* ci = ep.cin + i * ep.ldcin + j0;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] += ep.beta * *reinterpret_cast<const vf*>(ci + v * kVW);
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) *reinterpret_cast<vf*>(cr + v * kVW) = acc[r][v];
  }
}

// R rows x nc (< kVW) columns at (i0, j0), plain loops.
template <int R>
inline void tail(int64_t i0, int64_t j0, int nc, const Seg* sg, int ns, float* c, int64_t ldc, const Epi& ep) {
  float acc[R][kVW] = {};
  for (int s = 0; s < ns; ++s) {
    const Seg& g = sg[s];
    const int64_t lo = seg_lo(g, i0), hi = seg_hi(g, i0, R);
    for (int64_t p = lo; p < hi; ++p) {
      const float* bp = g.b + p * g.ldb + j0;
      for (int r = 0; r < R; ++r) {
        const float a = g.a[(i0 + r) * g.ars + p * g.aps];
        for (int j = 0; j < nc; ++j) acc[r][j] += a * bp[j];
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const float sc = ep.rs ? ep.alpha * ep.rs[i] : ep.alpha;
    for (int j = 0; j < nc; ++j) {
      float x = acc[r][j] * sc;
      if (ep.u) x += ep.u[i] * ep.v[j0 + j];
      if (ep.cin) x += ep.beta * ep.cin[i * ep.ldcin + j0 + j];
      c[i * ldc + j0 + j] = x;
    }
  }
}

// R rows x w (<= kNV*kVW) columns at (i0, j0): whole vectors, then the scalar tail.
template <int R>
inline void row_block(int64_t i0, int64_t j0, int64_t w, const Seg* sg, int ns, float* c, int64_t ldc,
                      const Epi& ep) {
  const int64_t nv = w / kVW;
  if (nv == kNV) micro<R, kNV>(i0, j0, sg, ns, c, ldc, ep);
  if constexpr (kNV > 3) {
    if (nv == 3) micro<R, 3>(i0, j0, sg, ns, c, ldc, ep);
  }
  if constexpr (kNV > 2) {
    if (nv == 2) micro<R, 2>(i0, j0, sg, ns, c, ldc, ep);
  }
  if constexpr (kNV > 1) {
    if (nv == 1) micro<R, 1>(i0, j0, sg, ns, c, ldc, ep);
  }
  if (w % kVW) tail<R>(i0, j0 + nv * kVW, static_cast<int>(w % kVW), sg, ns, c, ldc, ep);
}

template <int R>
inline void row_block_dispatch(int rows, int64_t i0, int64_t j0, int64_t w, const Seg* sg, int ns, float* c,
                               int64_t ldc, const Epi& ep) {
  if constexpr (R > 1) {
    if (rows < R) return row_block_dispatch<R - 1>(rows, i0, j0, w, sg, ns, c, ldc, ep);
  }
  row_block<R>(i0, j0, w, sg, ns, c, ldc, ep);
}

// The tiles of an m x n product, as both forms of gemm_tile walk them: column groups of kNV vectors outside, row
// blocks of kMR inside, so that the group's B panel stays in L1 while the row blocks stream A. lower_out: per row
// block only the columns up to its last row (rounded up to whole vectors). fn(rows, i0, j0, w) for each tile.
template <class Fn>
inline void for_each_tile(int64_t m, int64_t n, bool lower_out, Fn&& fn) {
  constexpr int64_t kW = kNV * kVW;
  for (int64_t j0 = 0; j0 < n; j0 += kW) {
    const int64_t jw = std::min(kW, n - j0);
    for (int64_t i0 = 0; i0 < m; i0 += kMR) {
      const int rows = static_cast<int>(std::min<int64_t>(kMR, m - i0));
      int64_t w = jw;
      if (lower_out) {
        const int64_t ne = std::min(n, (i0 + rows + kVW - 1) / kVW * kVW);
        if (ne <= j0) continue;
        w = std::min(jw, ne - j0);
      }
      fn(rows, i0, j0, w);
    }
  }
}

// C (m x n, ldc) from ns segments (see the file comment), lower_out as for_each_tile.
inline void gemm_tile_f32(int64_t m, int64_t n, const Seg* sg, int ns, float* c, int64_t ldc, const Epi& ep,
                          bool lower_out = false) {
  for_each_tile(m, n, lower_out, [&](int rows, int64_t i0, int64_t j0, int64_t w) {
    row_block_dispatch<kMR>(rows, i0, j0, w, sg, ns, c, ldc, ep);
  });
}

// dst[j*ldd + i] = src[i*lds + j] for i < rows, j < cols.
inline void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd) {
#if !defined(__AVX__)
  // (without 256-bit registers the 8-wide shuffles below lower to slow code: 8 x 8 blocks of plain copies)
  for (int64_t i0 = 0; i0 < rows; i0 += 8)
    for (int64_t j0 = 0; j0 < cols; j0 += 8)
      for (int64_t j = j0; j < std::min(cols, j0 + 8); ++j)
        for (int64_t i = i0; i < std::min(rows, i0 + 8); ++i) dst[j * ldd + i] = src[i * lds + j];
  return;
#endif
  typedef float v8 __attribute__((vector_size(32), aligned(4), may_alias));
  typedef int v8i __attribute__((vector_size(32)));
  int64_t i0 = 0;
  for (; i0 + 8 <= rows; i0 += 8) {
    int64_t j0 = 0;
    for (; j0 + 8 <= cols; j0 += 8) {
      const float* s = src + i0 * lds + j0;
      const v8 r0 = *reinterpret_cast<const v8*>(s), r1 = *reinterpret_cast<const v8*>(s + lds),
               r2 = *reinterpret_cast<const v8*>(s + 2 * lds), r3 = *reinterpret_cast<const v8*>(s + 3 * lds),
               r4 = *reinterpret_cast<const v8*>(s + 4 * lds), r5 = *reinterpret_cast<const v8*>(s + 5 * lds),
               r6 = *reinterpret_cast<const v8*>(s + 6 * lds), r7 = *reinterpret_cast<const v8*>(s + 7 * lds);
      const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
      const v8 t0 = __builtin_shuffle(r0, r1, lo), t1 = __builtin_shuffle(r0, r1, hi);
      const v8 t2 = __builtin_shuffle(r2, r3, lo), t3 = __builtin_shuffle(r2, r3, hi);
      const v8 t4 = __builtin_shuffle(r4, r5, lo), t5 = __builtin_shuffle(r4, r5, hi);
      const v8 t6 = __builtin_shuffle(r6, r7, lo), t7 = __builtin_shuffle(r6, r7, hi);
      const v8i plo = {0, 1, 8, 9, 4, 5, 12, 13}, phi = {2, 3, 10, 11, 6, 7, 14, 15};
      const v8 s0 = __builtin_shuffle(t0, t2, plo), s1 = __builtin_shuffle(t0, t2, phi);
      const v8 s2 = __builtin_shuffle(t1, t3, plo), s3 = __builtin_shuffle(t1, t3, phi);
      const v8 s4 = __builtin_shuffle(t4, t6, plo), s5 = __builtin_shuffle(t4, t6, phi);
      const v8 s6 = __builtin_shuffle(t5, t7, plo), s7 = __builtin_shuffle(t5, t7, phi);
      const v8i qlo = {0, 1, 2, 3, 8, 9, 10, 11}, qhi = {4, 5, 6, 7, 12, 13, 14, 15};
      float* d = dst + j0 * ldd + i0;
      *reinterpret_cast<v8*>(d) = __builtin_shuffle(s0, s4, qlo);
      *reinterpret_cast<v8*>(d + ldd) = __builtin_shuffle(s1, s5, qlo);
      *reinterpret_cast<v8*>(d + 2 * ldd) = __builtin_shuffle(s2, s6, qlo);
      *reinterpret_cast<v8*>(d + 3 * ldd) = __builtin_shuffle(s3, s7, qlo);
      *reinterpret_cast<v8*>(d + 4 * ldd) = __builtin_shuffle(s0, s4, qhi);
      *reinterpret_cast<v8*>(d + 5 * ldd) = __builtin_shuffle(s1, s5, qhi);
      *reinterpret_cast<v8*>(d + 6 * ldd) = __builtin_shuffle(s2, s6, qhi);
      *reinterpret_cast<v8*>(d + 7 * ldd) = __builtin_shuffle(s3, s7, qhi);
    }
    for (; j0 < cols; ++j0)
      for (int64_t i = i0; i < i0 + 8; ++i) dst[j0 * ldd + i] = src[i * lds + j0];
  }
  for (; i0 < rows; ++i0)
    for (int64_t j = 0; j < cols; ++j) dst[j * ldd + i0] = src[i0 * lds + j];
}

}  // namespace mtile
}  // namespace
}  // namespace xlstm

#if defined(__AVX512F__)
#include "kernels/mlstm_tile_pairs.h"
#endif

namespace xlstm {
namespace {
namespace mtile {

// gemm_tile_f32, or with Epi::bf16 the same product on bf16 pairs (AVX-512 builds; the others ignore the flag,
// which the entry points set only where the CPU has AVX512_BF16).
inline void gemm_tile(int64_t m, int64_t n, const Seg* sg, int ns, float* c, int64_t ldc, const Epi& ep,
                      bool lower_out = false) {
#if defined(__AVX512F__)
  if (ep.bf16 && pairs::gemm_tile(m, n, sg, ns, c, ldc, ep, lower_out)) return;
#endif
  gemm_tile_f32(m, n, sg, ns, c, ldc, ep, lower_out);
}

}  // namespace mtile
}  // namespace
}  // namespace xlstm

#pragma GCC diagnostic pop
