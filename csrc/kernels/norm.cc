// Layer norm / per-head layer norm forward and backward (see norm.h). Rows run on the thread pool; each
// (row, group) vector goes through the SIMD level's row primitives (nn_simd.h). dw/db: per-block partial sums
// over a fixed row partition, then a column-parallel reduction in double.
#include "kernels/norm.h"

#include <algorithm>
#include <vector>

#include "kernels/nn_simd.h"
#include "kernels/threadpool.h"

namespace xlstm {

void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                        int64_t rows, int64_t groups, int64_t dim, float eps, bool residual) {
  const NnKernels& k = nn_kernels();
  const int64_t n = rows * groups;  // independent (row, group) vectors
  const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(dim, 1));
  parallel_for(n, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const int64_t g = i % groups;
      k.norm_fwd_row(y + i * dim, &mean[i], &rstd[i], x + i * dim, w ? w + g * dim : nullptr,
                     b ? b + g * dim : nullptr, dim, eps, residual);
    }
  });
}

void layer_norm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                         const float* rstd, const float* w, int64_t rows, int64_t groups, int64_t dim, bool residual) {
  const NnKernels& k = nn_kernels();
  const int64_t gd = groups * dim;
  auto rows_bwd = [&](int64_t r0, int64_t r1, float* pw, float* pb) {
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t i = r * groups + g;
        k.norm_bwd_row(dx + i * dim, pw ? pw + g * dim : nullptr, pb ? pb + g * dim : nullptr, dy + i * dim,
                       x + i * dim, mean[i], rstd[i], w ? w + g * dim : nullptr, dim, residual);
      }
  };
  if (!dw && !db) {
    parallel_for(rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(gd, 1)),
                 [&](int64_t lo, int64_t hi) { rows_bwd(lo, hi, nullptr, nullptr); });
    return;
  }
  // Fixed partition: at most 64 blocks of whole rows, chosen from `rows` alone.
  const int64_t nblk = std::max<int64_t>(1, std::min<int64_t>(64, (rows + 7) / 8));
  const int64_t per = (rows + nblk - 1) / nblk;
  std::vector<float> pw(dw ? static_cast<size_t>(nblk * gd) : 0), pb(db ? static_cast<size_t>(nblk * gd) : 0);
  parallel_for(nblk, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t blk = lo; blk < hi; ++blk) {
      float* bw = dw ? pw.data() + blk * gd : nullptr;
      float* bb = db ? pb.data() + blk * gd : nullptr;
      if (bw) std::fill(bw, bw + gd, 0.f);
      if (bb) std::fill(bb, bb + gd, 0.f);
      rows_bwd(blk * per, std::min(rows, (blk + 1) * per), bw, bb);
    }
  });
  parallel_for(gd, 1024, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double sw = 0, sb = 0;
      for (int64_t blk = 0; blk < nblk; ++blk) {
        if (dw) sw += pw[blk * gd + c];
        if (db) sb += pb[blk * gd + c];
      }
      if (dw) dw[c] = static_cast<float>(sw);
      if (db) db[c] = static_cast<float>(sb);
    }
  });
}

}  // namespace xlstm
