// The small-tile products of mlstm_tile.h on bf16 pairs: the chunkwise mLSTM cell's products under
// setFloat32MatmulPrecision("medium") where the CPU has AVX512_BF16 (Epi::bf16, set from MlstmDims::bf16). Only for
// the translation unit compiled with AVX-512 flags (mlstm_avx512.cc); the functions carry the avx512bf16 target
// themselves (bf16_pairs.h) and run only where bf16_dot_available().
//
// Each segment's A and B are first rounded (nearest even) into dwords holding two bf16 of consecutive p, the even p
// in the low half (vdpbf16ps's input format), into per-thread buffers:
//   A pair (i, q) = (A(i, 2q), A(i, 2q+1)): row-major when A's rows run along p (aps = 1), q-major when A is a
//   transposed operand (ars = 1), so the rounding reads A in place either way;
//   B pair (q, j) = (B[2q, j], B[2q+1, j]), rows padded to whole vectors of 16 columns.
// A p past k is a zero. The products then run the float32 kernel's schedule (column groups of kNV vectors outside,
// kMR-row blocks inside, the same epilogue) with float32 accumulators and ⌈k/2⌉ vdpbf16ps steps instead of k FMA.
// Triangular segments read their p range rounded out to whole pairs: row blocks start at multiples of kMR (even),
// so an upper triangle's first pair starts at the block's first row; a lower triangle's range ends at the block's
// last row + 1, which is odd only for the final, partial block of a square segment (m = k, as every caller's
// triangles are), where the pair's second half lies past k and is a zero. The last vector of a row is masked, so
// there is no scalar tail. Sums keep a fixed order (shape only, never threads or addresses).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/bf16_pairs.h"

namespace xlstm {
namespace {
namespace mtile {
namespace pairs {

static_assert(kVW == 16 && kMR % 2 == 0, "AVX-512 tiles: 16 floats a vector, row blocks of an even height");

struct PSeg {
  const uint32_t* a;
  int64_t rs, qs;  // A pair (i, q) = a[i*rs + q*qs]
  const uint32_t* b;
  int64_t ldb;  // B pair (q, j) = b[q*ldb + j]
  int64_t k;    // in single p, as Seg::k
  int tri;
};

// Per-thread buffers for the rounded operands, grown as needed and kept between calls (small: a chunk's tiles).
struct Packs {
  std::vector<uint32_t> a[kMaxSegs], b[kMaxSegs];
};

inline Packs& packs() {
  thread_local Packs p;
  return p;
}

inline uint32_t* fit(std::vector<uint32_t>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Whether the rounding can read A in place (its rows or its columns run along p).
inline bool packable(const Seg& g) { return g.aps == 1 || g.ars == 1; }

// A (m x k) and B (k x n) of one segment rounded into pairs.
XLSTM_PAIRS_TARGET inline PSeg pack(const Seg& g, int64_t m, int64_t n, std::vector<uint32_t>& abuf,
                                    std::vector<uint32_t>& bbuf) {
  const int64_t kq = (g.k + 1) / 2, np = (n + kVW - 1) / kVW * kVW;
  PSeg p{};
  p.k = g.k, p.tri = g.tri;
  uint32_t* a = fit(abuf, m * kq);
  if (g.aps == 1) {
    bf16_pairs::round_pairs_along(a, kq, g.a, g.ars, g.k, 0, m);
    p.rs = kq, p.qs = 1;
  } else {  // ars == 1: A(i, p) = a[p*aps + i], rows of Aᵀ
    bf16_pairs::round_pairs_across(a, m, g.a, g.aps, g.k, m, 0, kq);
    p.rs = 1, p.qs = m;
  }
  p.a = a;
  uint32_t* b = fit(bbuf, kq * np);
  bf16_pairs::round_pairs_across(b, np, g.b, g.ldb, g.k, n, 0, kq);
  p.b = b, p.ldb = np;
  return p;
}

// R rows x NV vectors at (i0, j0); `last` masks the columns of the last vector.
template <int R, int NV>
XLSTM_PAIRS_TARGET inline void micro(int64_t i0, int64_t j0, __mmask16 last, const PSeg* sg, int ns, float* c,
                                     int64_t ldc, const Epi& ep) {
  __m512 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  const char *pq = nullptr, *pe = nullptr;
  if (ep.pf) ep.pf->take(&pq, &pe);
  for (int s = 0; s < ns; ++s) {
    const PSeg& g = sg[s];
    const int64_t lo = (g.tri == kUpper ? std::min(i0, g.k) : 0) / 2;
    const int64_t hi = ((g.tri == kLower ? std::min(g.k, i0 + R) : g.k) + 1) / 2;
    const int64_t rs = g.rs, qs = g.qs, ldb = g.ldb;
    const uint32_t* ap = g.a + i0 * rs + lo * qs;
    const uint32_t* bp = g.b + lo * ldb + j0;
    for (int64_t q = lo; q < hi; ++q, ap += qs, bp += ldb) {
      if (pq < pe) {  // two lines a pair: the float32 kernel's pace of one a p
        __builtin_prefetch(pq, 0, 2);
        __builtin_prefetch(pq + 64, 0, 2);
        pq += 128;
      }
      __m512bh bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(bp + v * kVW);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(ap[r * rs]));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_dpbf16_ps(acc[r][v], a, bv[v]);
      }
    }
  }
  if (ep.pf) ep.pf->cur = pq;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const __m512 sc = _mm512_set1_ps(ep.rs ? ep.alpha * ep.rs[i] : ep.alpha);
    float* cr = c + i * ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mk = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      __m512 x = _mm512_mul_ps(acc[r][v], sc);
      if (ep.u) x = _mm512_fmadd_ps(_mm512_set1_ps(ep.u[i]), _mm512_maskz_loadu_ps(mk, ep.v + j0 + v * kVW), x);
      if (ep.cin)
        x = _mm512_fmadd_ps(_mm512_set1_ps(ep.beta), _mm512_maskz_loadu_ps(mk, ep.cin + i * ep.ldcin + j0 + v * kVW), x);
      _mm512_mask_storeu_ps(cr + v * kVW, mk, x);
    }
  }
}

// R rows x w (<= kNV*kVW) columns at (i0, j0).
template <int R>
XLSTM_PAIRS_TARGET inline void row_block(int64_t i0, int64_t j0, int64_t w, const PSeg* sg, int ns, float* c,
                                         int64_t ldc, const Epi& ep) {
  const int64_t nv = (w + kVW - 1) / kVW;
  const __mmask16 last = bf16_pairs::dword_mask(w - (nv - 1) * kVW);
  static_assert(kNV == 4, "vectors per column group");
  if (nv == 4) micro<R, 4>(i0, j0, last, sg, ns, c, ldc, ep);
  if (nv == 3) micro<R, 3>(i0, j0, last, sg, ns, c, ldc, ep);
  if (nv == 2) micro<R, 2>(i0, j0, last, sg, ns, c, ldc, ep);
  if (nv == 1) micro<R, 1>(i0, j0, last, sg, ns, c, ldc, ep);
}

template <int R>
XLSTM_PAIRS_TARGET inline void row_block_dispatch(int rows, int64_t i0, int64_t j0, int64_t w, const PSeg* sg, int ns,
                                                  float* c, int64_t ldc, const Epi& ep) {
  if constexpr (R > 1) {
    if (rows < R) return row_block_dispatch<R - 1>(rows, i0, j0, w, sg, ns, c, ldc, ep);
  }
  row_block<R>(i0, j0, w, sg, ns, c, ldc, ep);
}

// gemm_tile on pairs (same arguments and result up to the rounding); false, with nothing done, when a segment's A
// has neither unit stride (the caller then runs the float32 kernel).
XLSTM_PAIRS_TARGET inline bool gemm_tile(int64_t m, int64_t n, const Seg* sg, int ns, float* c, int64_t ldc,
                                         const Epi& ep, bool lower_out) {
  for (int s = 0; s < ns; ++s)
    if (!packable(sg[s])) return false;
  Packs& pk = packs();
  PSeg ps[kMaxSegs];
  for (int s = 0; s < ns; ++s) ps[s] = pack(sg[s], m, n, pk.a[s], pk.b[s]);
  for_each_tile(m, n, lower_out, [&](int rows, int64_t i0, int64_t j0, int64_t w) {
    row_block_dispatch<kMR>(rows, i0, j0, w, ps, ns, c, ldc, ep);
  });
  return true;
}

}  // namespace pairs
}  // namespace mtile
}  // namespace
}  // namespace xlstm
