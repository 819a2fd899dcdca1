// bfloat16 weights for inference (CPU kernels layer): conversions, and the linear map y = x Wᵀ (+ b) with W stored
// as bfloat16 bits (the upper 16 bits of a float32), as xLSTM Large checkpoints ship it (XLSTM_SPEC §10).
//
// Layouts: x [rows, in] float32, W [out, in] bfloat16 bits (row-major, the PyTorch nn.Linear layout), bias [out]
// float32 or null, y [rows, out] float32 (written, =). Accumulation is float32.
//
// Two numerics, chosen by `round_x`:
//   round_x = false  products x·w with x in float32 and w widened exactly to float32 (bf16 -> f32 is a shift):
//                    the only error besides float32 summation is the weights' own rounding. Decode (rows = 1)
//                    is memory-bound, so widening costs nothing there.
//   round_x = true   x is first rounded to bfloat16 (round to nearest even), then the products are exact in
//                    float32: the input format of the AVX-512 BF16 dot-product instruction (vdpbf16ps), which does
//                    32 products per instruction (twice the float32 FMA rate) for compute-bound prefill. On a CPU
//                    without AVX512_BF16 the same numbers (up to summation order) come from the float32 path on the
//                    rounded x.
// Variants: scalar (here), AVX2 (bf16_avx2.cc), AVX-512 and AVX-512 BF16 (bf16_avx512.cc), chosen at run time by
// simd_level() and, for vdpbf16ps, CPUID (leaf 7, sub-leaf 1, EAX bit 5). round_x prefers AMX tiles (bf16_amx.cc:
// CPUID leaf 7 EDX bits 22 and 24, and the OS's permission) over vdpbf16ps: the same exact products, summed in
// another order (both treat bf16 denormals, below 1.2e-38, as zero). Threads split the outputs.
#pragma once
#include <cstdint>

namespace xlstm {

// float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. Same rule as lib/tensor.ts floatToBf16.
void bf16_from_f32(uint16_t* out, const float* x, int64_t n);
// bfloat16 bits -> float32 (exact).
void bf16_to_f32(float* out, const uint16_t* x, int64_t n);
// Σ x as float64 (float32 partial sums over short runs). Reads every byte once: also a memory-bandwidth probe.
double bf16_sum(const uint16_t* x, int64_t n);

// out [n, e] = rows indices[i] of weight [V, e] (bfloat16), widened to float32. indices in [0, V) (the caller checks).
template <class I>
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e);

// y = x Wᵀ (+ bias), see the header comment.
void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                 int64_t out, bool round_x);

// The kernel bf16_linear takes for this many rows now: "amx" (round_x on AMX tiles), "vdpbf16ps-gemm" (round_x on the
// GEMM tiles of gemm_bf16pairs_avx512.cc, for many rows), "vdpbf16ps" (round_x on dot-product tiles), else the
// float32 path of the SIMD level: "avx512", "avx2" or "scalar".
const char* bf16_linear_path(int64_t rows, bool round_x);

// Whether this CPU has AVX512_BF16 (and the AVX-512 level is active): round_x uses vdpbf16ps when AMX is not available.
bool bf16_dot_available();
// Allow (default) or forbid vdpbf16ps (tests compare it with the float32 path on rounded inputs). Returns
// bf16_dot_available() afterwards.
bool bf16_set_dot_enabled(bool enabled);

// Whether round_x runs on AMX tiles now (the CPU has AMX-BF16, Linux granted the tile state, the AVX-512 level is
// active and AMX is enabled).
bool bf16_amx_available();
// Allow (default) or forbid AMX for round_x (tests compare it with the other paths). Returns bf16_amx_available().
bool bf16_set_amx_enabled(bool enabled);

namespace bf16_detail {
// y rows [0, rows), outputs [o0, o1) of the float32 path; one ISA each (bf16_avx2.cc, bf16_avx512.cc).
void linear_avx2(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                 int64_t out, int64_t o0, int64_t o1);
void linear_avx512(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                   int64_t out, int64_t o0, int64_t o1);
// The vdpbf16ps path: xb = x already rounded to bfloat16 bits [rows, in].
void linear_avx512bf16(float* y, const uint16_t* xb, const uint16_t* w, const float* bias, int64_t rows,
                       int64_t in, int64_t out, int64_t o0, int64_t o1);
// y = x Wᵀ (+ bias) from x already packed (pack_x_vnni / pack_kmajor_vnni): linear_amx over panels of whole 32-output
// blocks on the thread pool, at least 2 per thread. Only where amx_usable().
void linear_amx_packed(float* y, const uint16_t* xp, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                       int64_t out);
// The AMX path: xp = x rounded to bfloat16 and packed by pack_x_vnni. Only where amx_usable().
void linear_amx(float* y, const uint16_t* xp, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                int64_t out, int64_t o0, int64_t o1);
// CPUID reports AMX-BF16 and AMX-TILE and the OS granted this process the tile data state (asked once).
bool amx_usable();
// x [rows, in] rounded to bfloat16 into AMX's B-operand layout, zero-padded to whole tiles:
// xp[((rb · KS + ks) · 16 + p) · 32 + r · 2 + j] = x[rb·16 + r][ks·32 + 2p + j] (0 past rows / in),
// KS = ⌈in / 32⌉, rb < ⌈rows / 16⌉ (this call: row blocks [rb0, rb1)). pack_x_vnni_size gives the element count.
// AMX builds only.
int64_t pack_x_vnni_size(int64_t rows, int64_t in);
void pack_x_vnni(uint16_t* xp, const float* x, int64_t rows, int64_t in, int64_t rb0, int64_t rb1);
// pack_x_vnni of x = aᵀ, a stored input-major (x[r][k] = a[k * lda + r]): each pair of inputs is two rows of a, so
// the tiles need no transpose (matmul_precision.cc: the weight gradients' dyᵀ). Same layout and sizes.
void pack_kmajor_vnni(uint16_t* xp, const float* a, int64_t lda, int64_t rows, int64_t in, int64_t rb0, int64_t rb1);
// w [N, K] = bf16(b) for rows [n0, n1) of b [N, K] (rows ldb apart), and w = bf16(bᵀ) for b [K, N] over blocks of 16
// columns [nb0, nb1) (pairs of b's rows, transposed in registers). AVX-512 rounding (nearest even, NaN kept); AMX
// builds only (their only user, matmul_precision.cc, runs where AMX does).
void round_rows_bf16(uint16_t* w, const float* b, int64_t ldb, int64_t K, int64_t n0, int64_t n1);
void round_transposed_bf16(uint16_t* w, const float* b, int64_t ldb, int64_t N, int64_t K, int64_t nb0, int64_t nb1);
// C = alpha bf16(op(A)) bf16(op(B)) + beta C (gemm's layouts; beta == 0: C is not read), float32 sums, on AVX512_BF16
// (vdpbf16ps) through gemm.cc's blocked driver (gemm_bf16pairs_avx512.cc). Results do not depend on the thread count.
// x86 builds only; call only where cpu_has_avx512bf16() and the AVX-512 level is active.
void gemm_bf16_pairs(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// bf16_linear's round_x on the same kernels: y = bf16(x) Wᵀ (+ bias). Same conditions.
void linear_bf16_pairs(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in,
                       int64_t out);
double sum_avx512(const uint16_t* x, int64_t n);
double sum_avx2(const uint16_t* x, int64_t n);
bool cpu_has_avx512bf16();
}  // namespace bf16_detail

}  // namespace xlstm
