// Block-diagonal ("headwise") linear map, the reference's LinearHeadwiseExpand (CPU kernels layer; XLSTM_SPEC
// §5.1): y[r, hb*O + o] = Σ_d x[r, hb*I + d] · W[hb, o, d] (+ bias[hb*O + o]) for NB blocks, rows r.
// Layouts: x [rows, NB*I], W [NB, O, I], bias [NB*O] or null, y [rows, NB*O]. One strided GEMM per block.
// Backward writes (=) dx [rows, NB*I] and dW [NB, O, I] (each skipped when null) and dbias [NB*O] (when non-null).
#pragma once
#include <cstdint>

namespace xlstm {

void headwise_linear_forward(float* y, const float* x, const float* W, const float* bias, int64_t rows, int64_t NB,
                             int64_t I, int64_t O);
void headwise_linear_backward(float* dx, float* dW, float* dbias, const float* dy, const float* x, const float* W,
                              int64_t rows, int64_t NB, int64_t I, int64_t O);

}  // namespace xlstm
