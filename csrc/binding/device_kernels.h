// Binding layer: one call per device kernel, dispatched as every device entry dispatches it. On a GPU the CUDA
// kernel is enqueued on the package's stream; under host emulation a binary built with CUDA replays the kernel's own
// code on the host (cuda::*_emulate, checking that each output element is written once) where such a replay exists,
// and otherwise (or in a CPU-only build) the CPU twin runs on the host memory the emulated buffers are. The device
// entries (cuda_ops*.cc) and the device inference session (cuda_infer_session.cc) both go through these, so the
// session runs exactly the kernels, in the same forms, as the ops layer's CUDA tensors. Pointers are device pointers;
// sizes are checked by the callers. Errors throw (std::runtime_error / std::invalid_argument).
#pragma once
#include <cstdint>

#include "kernels/bf16_math.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace xlstm {
struct RecurrentDims;
struct MlstmDims;

namespace dk {

// C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch (row-major, leading dimensions and batch strides in elements);
// bf16: A and B rounded to bfloat16, float32 accumulation (the bf16 autocast's form).
void gemm(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, int64_t sa,
          const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc, bool bf16 = false);
void unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n);
void binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan);
// x viewed as [rows, groups, dim], normalised per (row, group); residual: the weight is applied as 1 + w
void layer_norm(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t rows,
                int64_t groups, int64_t dim, float eps, bool residual);
template <class I>  // int32_t or int64_t indices
void embedding(float* out, const float* weight, const I* indices, int64_t n, int64_t e);
void causal_conv1d(float* y, const float* x, const float* w, const float* bias, int64_t b, int64_t s, int64_t f, int64_t k);
// the sLSTM (slstm) or LSTM recurrence's forward (x [B, S, 4, NH, DH] pre-activations, states [NS, S, B, NH*DH])
void recurrent_forward(bool slstm, float* y, float* states, float* gates, const float* x, const float* state0,
                       const float* R, const float* bias, const RecurrentDims& d, bool bf16 = false);
void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps);
// the chunkwise form (chunks of `chunk` positions; bf16: the autocast's tensor-core form); saved nullable
void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init, bool bf16 = false);
void permute(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim);
// op over the axes with reduced[d] = 1 of x [shape] (argmax: int64, written for max only, may be null otherwise)
void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced);
// y [rows, out] = x [rows, in] wᵀ (+ bias) with w bfloat16 [out, in] (round_x: x rounded to bf16 first, the autocast)
void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in, int64_t out,
                 bool round_x);
// y [rows, Σ out_i] = x [rows, in] with the parts' W side by side (kernels/bf16_math.h GemvParts; rows <= 8)
void bf16_linear_parts(float* y, const float* x, const bf16_math::GemvParts& parts, int64_t rows, int64_t in);
template <class I>  // int32_t or int64_t indices
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e);

}  // namespace dk
}  // namespace xlstm
