// Block-diagonal ("headwise") linear map, the reference's LinearHeadwiseExpand (CPU kernels layer; XLSTM_SPEC
// §5.1): y[r, hb*O + o] = Σ_d x[r, hb*I + d] · W[hb, o, d] (+ bias[hb*O + o]) for NB blocks, rows r.
// Layouts: x [rows, NB*I], W [NB, O, I], bias [NB*O] or null, y [rows, NB*O]. One strided GEMM per block.
// `ldy` is the row stride of y (and dy) in elements (>= NB*O), so several maps can write side by side into one
// concatenated output. Backward writes dW [NB, O, I] (=) and dbias [NB*O] (=) when non-null, and dx [rows, NB*I]
// when non-null: = by default, += with accumulate_dx (an input shared by several maps).
#pragma once
#include <cstdint>

namespace xlstm {

void headwise_linear_forward(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows,
                             int64_t NB, int64_t I, int64_t O);
void headwise_linear_backward(float* dx, bool accumulate_dx, float* dW, float* dbias, const float* dy, int64_t ldy,
                              const float* x, const float* W, int64_t rows, int64_t NB, int64_t I, int64_t O);

}  // namespace xlstm
