// bf16-weight linear map on AMX tiles (see bf16.h): the round_x numerics (x rounded to bf16, products exact in
// float32, float32 sums) on the tile matrix unit of Intel Xeons since Sapphire Rapids. One TDPBF16PS does
// 16 x 16 x 32 products; on a 2-core Sapphire Rapids VM the map runs at 0.85-1.3 TFLOP/s against ~150 GFLOP/s for
// vdpbf16ps and ~180 for the float32 path (2026-11-27). The unit itself did ~2.5 TFLOP/s a core there (TDPBF16PS fed
// by tile loads from L1), so this is 20-28 % of it: the tiles' loads from L2 and beyond bound it. Tried without a
// gain on 2 threads: W packed per output block in tile order (its 32 rows, in*2 bytes apart, share an L1 set when in
// is a multiple of 2048; +44 % on one core in isolation), K sliced with the accumulators kept in memory between
// slices, rows in chunks sized for L2.
//
// The product is computed transposed, yᵀ = W xᵀ, so that W [out, in] (the nn.Linear layout) is the tile unit's
// A operand as it is: an A tile is 16 rows of W (16 outputs) x 32 consecutive inputs, loaded in place with W's row
// stride. xᵀ is the B operand, which the unit wants in pairs ("VNNI"): B row p, column r holds x[r][2p], x[r][2p+1].
// bf16_linear packs x that way once per call (pack_x_vnni, below), zero-padded to whole tiles, so padding rows
// and inputs contribute exact zeros. Register use: 4 accumulator tiles (2 output blocks x 2 row blocks of 16),
// 2 A and 2 B tiles: each k-step loads 4 tiles for 4 products.
//
// Tiles are per-thread state: every call configures them (LDTILECFG) and releases them (TILERELEASE) before it
// returns, so a pool thread never carries tile state into other work. Linux grants a process the tile data state
// only on request (arch_prctl ARCH_REQ_XCOMP_PERM); amx_usable() asks once and says no where it is refused.
#include "kernels/avx512_headers.h"  // first: <immintrin.h> with GCC 12's header warnings off

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/bf16.h"

#if defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace xlstm {
namespace bf16_detail {
namespace {

// The LDTILECFG operand (64 bytes, palette 1): every tile used here is 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

TileConfig make_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  return c;
}

// In-register transpose of a 16 x 16 matrix of 32-bit lanes (rows r[0..15] in, columns out in r[0..15]).
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j) {
      r[4 * i + 2 * j] = _mm512_unpacklo_epi64(t[4 * i + j], t[4 * i + j + 2]);
      r[4 * i + 2 * j + 1] = _mm512_unpackhi_epi64(t[4 * i + j], t[4 * i + j + 2]);
    }
  // each 128-bit lane now holds a 4 x 4 block's column; gather the lanes: rows 0-3 with 4-7, then with 8-15
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_i32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_i32x4(t[j], t[j + 8], 0xdd);
  }
}

// The 4 accumulators (tiles 0-3: output block q & 1, row block q >> 1, each [16 outputs][16 rows]) stored and
// written to y transposed, bias added, for the valid rows and outputs only.
void store_block(float* y, const float* bias, int64_t rows, int64_t out, int64_t o, int64_t r0, int nrb) {
  alignas(64) float acc[4][16][16];
  _tile_stored(0, acc[0], 64);
  _tile_stored(1, acc[1], 64);
  if (nrb == 2) {
    _tile_stored(2, acc[2], 64);
    _tile_stored(3, acc[3], 64);
  }
  for (int q = 0; q < 2 * nrb; ++q) {
    const int64_t ob = o + (q & 1) * 16, rb = r0 + (q >> 1) * 16;
    if (ob >= out || rb >= rows) continue;
    const int no = static_cast<int>(std::min<int64_t>(16, out - ob));
    const int nr = static_cast<int>(std::min<int64_t>(16, rows - rb));
    const __mmask16 m = static_cast<__mmask16>((1u << no) - 1);
    const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + ob) : _mm512_setzero_ps();
    __m512i t[16];
    for (int c = 0; c < 16; ++c) t[c] = _mm512_load_si512(acc[q][c]);
    transpose16(t);  // t[r] = y[rb + r][ob .. ob + 16)
    for (int r = 0; r < nr; ++r)
      _mm512_mask_storeu_ps(y + (rb + r) * out + ob, m, _mm512_add_ps(_mm512_castsi512_ps(t[r]), b));
  }
}

// 16 floats -> their bf16 bits (nearest even; NaN kept quiet: bf16_math::round) in the low halves of 32-bit lanes
inline __m512i round16(const float* x, __mmask16 m) {
  const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

}  // namespace

void pack_x_vnni(uint16_t* xp, const float* x, int64_t rows, int64_t in, int64_t rb0, int64_t rb1) {
  const int64_t ks_n = (in + 31) / 32;
  for (int64_t rb = rb0; rb < rb1; ++rb)
    for (int64_t ks = 0; ks < ks_n; ++ks) {
      // row r's 32 inputs as 16 pairs (dwords: bf16 of input 2p low, 2p + 1 high), then pairs x rows transposed
      __m512i t[16];
      const int64_t k0 = ks * 32, nk = std::min<int64_t>(32, in - k0);
      const __mmask16 m0 = static_cast<__mmask16>(nk >= 16 ? 0xffff : (1u << nk) - 1);
      const __mmask16 m1 = static_cast<__mmask16>(nk >= 32 ? 0xffff : nk <= 16 ? 0 : (1u << (nk - 16)) - 1);
      for (int r = 0; r < 16; ++r) {
        const int64_t row = rb * 16 + r;
        if (row >= rows) {
          t[r] = _mm512_setzero_si512();
          continue;
        }
        const float* xr = x + row * in + k0;
        const __m256i lo = _mm512_cvtepi32_epi16(round16(xr, m0)), hi = _mm512_cvtepi32_epi16(round16(xr + 16, m1));
        t[r] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      }
      transpose16(t);  // t[p] = pair p of rows 0..15
      uint16_t* tile = xp + (rb * ks_n + ks) * 512;
      for (int p = 0; p < 16; ++p) _mm512_storeu_si512(tile + p * 32, t[p]);
    }
}

void pack_kmajor_vnni(uint16_t* xp, const float* a, int64_t lda, int64_t rows, int64_t in, int64_t rb0, int64_t rb1) {
  const int64_t ks_n = (in + 31) / 32;
  for (int64_t rb = rb0; rb < rb1; ++rb) {
    const int64_t r0 = rb * 16, nr = std::min<int64_t>(16, rows - r0);
    const __mmask16 mr = static_cast<__mmask16>(nr >= 16 ? 0xffff : (1u << nr) - 1);
    for (int64_t ks = 0; ks < ks_n; ++ks) {
      uint16_t* tile = xp + (rb * ks_n + ks) * 512;
      for (int p = 0; p < 16; ++p) {
        // pair p: inputs k and k + 1 are rows of a, so the 16 rows' pairs are two loads, no transpose
        const int64_t k = ks * 32 + 2 * p;
        const __m512i lo = k < in ? round16(a + k * lda + r0, mr) : _mm512_setzero_si512();
        const __m512i hi = k + 1 < in ? round16(a + (k + 1) * lda + r0, mr) : _mm512_setzero_si512();
        _mm512_storeu_si512(tile + p * 32, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
      }
    }
  }
}

void round_rows_bf16(uint16_t* w, const float* b, int64_t ldb, int64_t K, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t k = 0; k < K; k += 16) {
      const int64_t nk = std::min<int64_t>(16, K - k);
      const __mmask16 m = static_cast<__mmask16>(nk >= 16 ? 0xffff : (1u << nk) - 1);
      _mm256_mask_storeu_epi16(w + n * K + k, m, _mm512_cvtepi32_epi16(round16(b + n * ldb + k, m)));
    }
}

void round_transposed_bf16(uint16_t* w, const float* b, int64_t ldb, int64_t N, int64_t K, int64_t nb0, int64_t nb1) {
  for (int64_t nb = nb0; nb < nb1; ++nb) {
    const int64_t n0 = nb * 16, nn = std::min<int64_t>(16, N - n0);
    const __mmask16 mn = static_cast<__mmask16>(nn >= 16 ? 0xffff : (1u << nn) - 1);
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
      // dword p of lane n: (B[k0 + 2p][n], B[k0 + 2p + 1][n]) rounded; transposed, lane n's 16 dwords are w's row n,
      // 32 consecutive k
      __m512i t[16];
      for (int p = 0; p < 16; ++p) {
        const int64_t k = k0 + 2 * p;
        const __m512i lo = k < K ? round16(b + k * ldb + n0, mn) : _mm512_setzero_si512();
        const __m512i hi = k + 1 < K ? round16(b + (k + 1) * ldb + n0, mn) : _mm512_setzero_si512();
        t[p] = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
      }
      transpose16(t);
      const int64_t nk = std::min<int64_t>(32, K - k0);
      const __mmask32 mk = nk >= 32 ? 0xffffffffu : (1u << nk) - 1;
      for (int64_t j = 0; j < nn; ++j) _mm512_mask_storeu_epi16(w + (n0 + j) * K + k0, mk, t[j]);
    }
  }
}

bool amx_usable() {
#if defined(__linux__)
  static const bool usable = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    if (!(d & (1u << 22)) || !(d & (1u << 24))) return false;  // CPUID.(7,0):EDX[22] AMX-BF16, [24] AMX-TILE
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
#else
  return false;
#endif
}

// Tiles that miss L1 load slowly (a tile load's 16 lines are fetched on demand): the lines of the k-step this many
// ahead are prefetched into L1 (+15-50 % at in = 768 on the Sapphire Rapids VM; the 2-row-block loop only)
constexpr int64_t kPrefetchSteps = 2;

void linear_amx(float* y, const uint16_t* xp, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                int64_t out, int64_t o0, int64_t o1) {
  const TileConfig cfg = make_config();
  _tile_loadconfig(&cfg);
  const int64_t ks_n = (in + 31) / 32, in_pad = ks_n * 32, rb_n = (rows + 15) / 16;
  // W's rows for an output block that runs past `out` or whose rows end inside a k-step: a zero-padded copy
  std::vector<uint16_t> wpad;
  for (int64_t o = o0; o < o1; o += 32) {
    const uint16_t* wa = w + o * in;
    int64_t lda = in * 2;  // bytes
    if (o + 32 > out || in != in_pad) {
      wpad.assign(static_cast<size_t>(32 * in_pad), 0);
      for (int64_t j = 0; j < std::min<int64_t>(32, out - o); ++j)
        std::memcpy(&wpad[j * in_pad], w + (o + j) * in, in * 2);
      wa = wpad.data(), lda = in_pad * 2;
    }
    const uint16_t* wb = wa + 16 * (lda / 2);
    for (int64_t rb = 0; rb < rb_n; rb += 2) {
      const uint16_t* x0 = xp + rb * ks_n * 512;  // 512 bf16 = one 16 x 64-byte tile per (row block, k-step)
      const uint16_t* x1 = x0 + ks_n * 512;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      if (rb + 1 < rb_n) {
        for (int64_t ks = 0; ks < ks_n; ++ks) {
          if (ks + kPrefetchSteps < ks_n) {
            // W's 32 rows (one line each: wb's rows follow wa's at the same stride), then both x tiles
            const char* pw = reinterpret_cast<const char*>(wa + (ks + kPrefetchSteps) * 32);
            for (int j = 0; j < 32; ++j) _mm_prefetch(pw + j * lda, _MM_HINT_T0);
            const char* px0 = reinterpret_cast<const char*>(x0 + (ks + kPrefetchSteps) * 512);
            const char* px1 = reinterpret_cast<const char*>(x1 + (ks + kPrefetchSteps) * 512);
            for (int j = 0; j < 16; ++j) _mm_prefetch(px0 + j * 64, _MM_HINT_T0), _mm_prefetch(px1 + j * 64, _MM_HINT_T0);
          }
          _tile_loadd(4, wa + ks * 32, lda);
          _tile_loadd(5, wb + ks * 32, lda);
          _tile_loadd(6, x0 + ks * 512, 64);
          _tile_loadd(7, x1 + ks * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 5, 6);
          _tile_dpbf16ps(2, 4, 7);
          _tile_dpbf16ps(3, 5, 7);
        }
        store_block(y, bias, rows, out, o, rb * 16, 2);
      } else {
        for (int64_t ks = 0; ks < ks_n; ++ks) {
          _tile_loadd(4, wa + ks * 32, lda);
          _tile_loadd(5, wb + ks * 32, lda);
          _tile_loadd(6, x0 + ks * 512, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 5, 6);
        }
        store_block(y, bias, rows, out, o, rb * 16, 1);
      }
    }
  }
  _tile_release();
}

}  // namespace bf16_detail
}  // namespace xlstm
