// Binding layer: the device kernels' dispatch (see device_kernels.h).
#include "device_kernels.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_api.h"
#include "device_buffer.h"
#include "kernels/bf16.h"
#include "kernels/conv1d.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/mlstm.h"
#include "kernels/norm.h"
#include "kernels/permute.h"
#include "kernels/recurrent.h"
#include "kernels/reduce.h"

namespace xlstm {
namespace dk {

void gemm(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, int64_t sa,
          const float* B, int64_t ldb, int64_t sb, float beta, float* C, int64_t ldc, int64_t sc, bool bf16) {
  if (replay_kernels() && !bf16)
    cuda::gemm_batched_emulate(ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
  else if (replay_kernels())
    cuda::gemm_bf16_batched_emulate(ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
  else if (bf16)
    XLSTM_DEVICE_CALL(gemm_bf16_batched, ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
  else
    XLSTM_DEVICE_CALL(gemm_batched, ta, tb, batch, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc);
}

void unary(UnaryOp op, float* out, const float* x, float a, float b, int64_t n) {
  XLSTM_DEVICE_CALL(elementwise_unary, op, out, x, a, b, n);
}

void binary(BinaryOp op, float* out, const float* a, const float* b, const BroadcastPlan& plan) {
  XLSTM_DEVICE_CALL(elementwise_binary, op, out, a, b, plan);
}

void layer_norm(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b, int64_t rows,
                int64_t groups, int64_t dim, float eps, bool residual) {
  if (replay_kernels())
    replay_with_writes("layer_norm_forward", rows * groups * dim + 2 * rows * groups, [&](int32_t* wr) {
      cuda::layer_norm_forward_emulate(y, mean, rstd, x, w, b, rows, groups, dim, eps, residual, wr);
    });
  else
    XLSTM_DEVICE_CALL(layer_norm_forward, y, mean, rstd, x, w, b, rows, groups, dim, eps, residual);
}

template <class I>
void embedding(float* out, const float* weight, const I* indices, int64_t n, int64_t e) {
  if (replay_kernels())
    replay_with_writes("embedding_forward", n * e, [&](int32_t* wr) {
      cuda::embedding_forward_emulate<I>(out, weight, indices, n, e, wr);
    });
  else
    XLSTM_DEVICE_CALL(embedding_forward<I>, out, weight, indices, n, e);
}
template void embedding<int32_t>(float*, const float*, const int32_t*, int64_t, int64_t);
template void embedding<int64_t>(float*, const float*, const int64_t*, int64_t, int64_t);

void causal_conv1d(float* y, const float* x, const float* w, const float* bias, int64_t b, int64_t s, int64_t f, int64_t k) {
  if (replay_kernels())
    replay_with_writes("causal_conv1d_forward", b * s * f, [&](int32_t* wr) {
      cuda::causal_conv1d_forward_emulate(y, x, w, bias, b, s, f, k, wr);
    });
  else
    XLSTM_DEVICE_CALL(causal_conv1d_forward, y, x, w, bias, b, s, f, k);
}

void recurrent_forward(bool slstm, float* y, float* states, float* gates, const float* x, const float* state0,
                       const float* R, const float* bias, const RecurrentDims& d, bool bf16) {
  if (replay_kernels() && slstm) cuda::slstm_forward_emulate(y, states, gates, x, state0, R, bias, d, bf16);
  else if (replay_kernels()) cuda::lstm_forward_emulate(y, states, gates, x, state0, R, bias, d, bf16);
  else if (bf16 && !cuda::emulated() && slstm) cuda::slstm_forward_bf16(y, states, gates, x, state0, R, bias, d, cuda::stream());
  else if (bf16 && !cuda::emulated()) cuda::lstm_forward_bf16(y, states, gates, x, state0, R, bias, d, cuda::stream());
  else if (slstm) XLSTM_DEVICE_CALL(slstm_forward, y, states, gates, x, state0, R, bias, d);
  else XLSTM_DEVICE_CALL(lstm_forward, y, states, gates, x, state0, R, bias, d);
}

void mlstm_recurrent_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, float eps) {
  if (replay_kernels())
    cuda::mlstm_recurrent_forward_emulate(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, eps);
  else
    XLSTM_DEVICE_CALL(mlstm_recurrent_forward, h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, eps);
}

void mlstm_chunkwise_forward(float* h, float* c_last, float* n_last, float* m_last, float* saved, const float* q,
                             const float* k, const float* v, const float* i, const float* f, const float* c0,
                             const float* n0, const float* m0, const MlstmDims& d, int64_t chunk, float eps,
                             bool parallel_init, bool bf16) {
  if (replay_kernels())
    cuda::mlstm_chunkwise_forward_emulate(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, chunk, eps,
                                          parallel_init, bf16);
  else if (bf16 && !cuda::emulated())
    cuda::mlstm_chunkwise_forward_bf16(h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, chunk, eps,
                                       parallel_init, cuda::stream());
  else
    XLSTM_DEVICE_CALL(mlstm_chunkwise_forward, h, c_last, n_last, m_last, saved, q, k, v, i, f, c0, n0, m0, d, chunk,
                      eps, parallel_init);
}

void permute(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim) {
  XLSTM_DEVICE_CALL(permute_copy, out, in, elem_size, in_shape, perm, ndim);
}

void reduce_axes(ReduceOp op, float* out, int64_t* argmax, const float* x, int ndim, const int64_t* shape,
                 const uint8_t* reduced) {
  if (replay_kernels()) {
    int64_t out_n = 1;
    for (int d = 0; d < ndim; ++d) out_n *= reduced[d] ? 1 : shape[d];
    // out, then argmax (written for max only)
    replay_with_writes("reduce_axes", out_n * (op == ReduceOp::Max && argmax ? 2 : 1), [&](int32_t* w) {
      cuda::reduce_axes_emulate(op, out, argmax, x, ndim, shape, reduced, w);
    });
  } else {
    XLSTM_DEVICE_CALL(reduce_axes, op, out, argmax, x, ndim, shape, reduced);
  }
}

void bf16_linear(float* y, const float* x, const uint16_t* w, const float* bias, int64_t rows, int64_t in, int64_t out,
                 bool round_x) {
  if (cuda::emulated()) {
    if (!replay_kernels()) return xlstm::bf16_linear(y, x, w, bias, rows, in, out, round_x);
    // the GEMV's replay counts its writes; the GEMM path's replay is checked by the GEMM's own tests
    if (rows <= 8)
      replay_with_writes("bf16_linear", rows * out, [&](int32_t* wr) { cuda::bf16_linear_emulate(y, x, w, bias, rows, in, out, round_x, wr); });
    else
      cuda::bf16_linear_emulate(y, x, w, bias, rows, in, out, round_x, nullptr);
    return;
  }
  cuda::bf16_linear(y, x, w, bias, rows, in, out, round_x, cuda::stream());
}

void bf16_linear_parts(float* y, const float* x, const bf16_math::GemvParts& ps, int64_t rows, int64_t in) {
  if (const char* why = bf16_math::gemv_parts_error(ps, rows))
    throw std::invalid_argument(std::string("bf16_linear_parts: needs ") + why);
  const int64_t out = ps.start[ps.n];
  if (replay_kernels()) {
    replay_with_writes("bf16_linear_parts", rows * out, [&](int32_t* wr) {
      cuda::bf16_linear_parts_emulate(y, x, ps, rows, in, false, wr);
    });
  } else if (cuda::emulated()) {  // a CPU-only build: the CPU kernel per part, its columns put in place
    for (int i = 0; i < ps.n; ++i) {
      const int64_t n = ps.start[i + 1] - ps.start[i];
      std::vector<float> part(static_cast<size_t>(rows * n));
      xlstm::bf16_linear(part.data(), x, ps.w[i], ps.b[i], rows, in, n, false);
      for (int64_t r = 0; r < rows; ++r)
        std::copy(part.begin() + r * n, part.begin() + (r + 1) * n, y + r * out + ps.start[i]);
    }
  } else {
    cuda::bf16_linear_parts(y, x, ps, rows, in, false, cuda::stream());
  }
}

template <class I>
void bf16_embedding(float* out, const uint16_t* weight, const I* indices, int64_t n, int64_t e) {
  if (replay_kernels())
    replay_with_writes("bf16_embedding", n * e, [&](int32_t* wr) { cuda::bf16_embedding_emulate<I>(out, weight, indices, n, e, wr); });
  else
    XLSTM_DEVICE_CALL(bf16_embedding<I>, out, weight, indices, n, e);
}
template void bf16_embedding<int32_t>(float*, const uint16_t*, const int32_t*, int64_t, int64_t);
template void bf16_embedding<int64_t>(float*, const uint16_t*, const int64_t*, int64_t, int64_t);

}  // namespace dk
}  // namespace xlstm
