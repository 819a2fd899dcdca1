// Reduced-precision float32 matrix products (CPU kernels layer), PyTorch's torch.set_float32_matmul_precision:
//   "highest" (default)  gemm() computes in float32 throughout;
//   "medium"             gemm() may round op(A) and op(B) to bfloat16 (round to nearest even) and sum the exact
//                        products in float32, for products large enough to gain from it (gemm_takes_bf16): on the AMX
//                        tile unit (Intel Xeons since Sapphire Rapids), else with AVX512_BF16's vdpbf16ps (AMD Zen 4
//                        and 5, Intel Cooper Lake). Without either nothing changes.
// Process-wide, like PyTorch's setting: every float32 product that goes through gemm() (linear layers, the fused
// mLSTM layer and feed-forward, the recurrences' weight gradients, matmul, gemm_batched) follows it, and with
// AVX512_BF16 the sLSTM / LSTM recurrences' step products (recurrent.h, RecurrentDims::bf16) and the chunkwise mLSTM
// cell's tile products (mlstm.h, MlstmDims::bf16). The error is
// that of bf16 inputs: |Δ(a·b)| <= 2^-8 Σ|a_k b_k| (each operand within 2^-9 relative), plus float32 summation.
#pragma once
#include <cstdint>

namespace xlstm {

enum class MatmulPrecision { Highest = 0, Medium = 1 };

MatmulPrecision matmul_precision();
// XLSTM_MATMUL_PRECISION=medium|highest sets the starting value.
void set_matmul_precision(MatmulPrecision p);

// Whether gemm() runs this product on the bf16 path now: precision "medium", AMX or AVX512_BF16 usable, op(A) at
// least kBf16MinRows rows (the rounding copies of the operands then cost little against the product) and N, K at
// least 32.
bool gemm_takes_bf16(int64_t M, int64_t N, int64_t K);

// Whether the kernels with products of their own (the recurrences' steps, the mLSTM cell's tiles) run them on bf16
// pairs now: precision "medium" and AVX512_BF16's vdpbf16ps usable.
bool medium_on_bf16_pairs();

// C = alpha op(A) op(B) + beta C with op(A) and op(B) rounded to bfloat16, float32 sums (beta == 0: C is not read).
// On AMX: op(B)ᵀ is rounded into a bf16 [N, K] copy (the tiles' A operand) and op(A) packed into their B operand: from
// its rows through bf16_linear (A as it is), or straight from a transposed A's rows (pack_kmajor_vnni: the weight
// gradients' dyᵀ x). Without AMX: bf16_detail::gemm_bf16_pairs (vdpbf16ps on gemm's blocked driver). Results do not
// depend on the thread count. Only where gemm_takes_bf16.
void gemm_bf16_rounded(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace xlstm
