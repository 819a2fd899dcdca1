// Block-diagonal linear map (see headwise.h): each block is a GEMM on strided views of x and y, so no data is
// rearranged; the blocked GEMM does the work.
#include "kernels/headwise.h"

#include <vector>

#include "kernels/gemm.h"
#include "kernels/threadpool.h"

namespace xlstm {

void headwise_linear_forward(float* y, int64_t ldy, const float* x, const float* W, const float* bias, int64_t rows,
                             int64_t NB, int64_t I, int64_t O) {
  for (int64_t hb = 0; hb < NB; ++hb)
    gemm(false, true, rows, O, I, 1.0f, x + hb * I, NB * I, W + hb * O * I, I, 0.0f, y + hb * O, ldy);
  if (bias) {
    parallel_for(rows, 256, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r)
        for (int64_t c = 0; c < NB * O; ++c) y[r * ldy + c] += bias[c];
    });
  }
}

void headwise_linear_backward(float* dx, bool accumulate_dx, float* dW, float* dbias, const float* dy, int64_t ldy,
                              const float* x, const float* W, int64_t rows, int64_t NB, int64_t I, int64_t O) {
  for (int64_t hb = 0; hb < NB; ++hb) {
    if (dx)
      gemm(false, false, rows, I, O, 1.0f, dy + hb * O, ldy, W + hb * O * I, I, accumulate_dx ? 1.0f : 0.0f,
           dx + hb * I, NB * I);
    if (dW) gemm(true, false, O, I, rows, 1.0f, dy + hb * O, ldy, x + hb * I, NB * I, 0.0f, dW + hb * O * I, I);
  }
  if (dbias) {
    const int64_t cols = NB * O;
    parallel_for(cols, 64, [&](int64_t lo, int64_t hi) {
      std::vector<double> acc(static_cast<size_t>(hi - lo), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = lo; c < hi; ++c) acc[c - lo] += dy[r * ldy + c];
      for (int64_t c = lo; c < hi; ++c) dbias[c] = static_cast<float>(acc[c - lo]);
    });
  }
}

}  // namespace xlstm
