// See permute.h. The output is walked in row-major order; each output row (last output dimension) reads the
// input with one stride. When that stride is not 1 and the last input dimension moves elsewhere, rows are done in
// tiles of 32 so that both sides touch whole cache lines.
#include "kernels/permute.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/threadpool.h"

namespace xlstm {
namespace {

template <class T>
void permute_impl(T* out, const T* in, const int64_t* in_shape, const int64_t* perm, int nd) {
  int64_t in_stride[16], out_shape[16], st[16];
  int64_t s = 1;
  for (int d = nd - 1; d >= 0; --d) {
    in_stride[d] = s;
    s *= in_shape[d];
  }
  const int64_t total = s;
  if (total == 0) return;
  for (int d = 0; d < nd; ++d) {
    out_shape[d] = in_shape[perm[d]];
    st[d] = in_stride[perm[d]];
  }
  if (nd == 0) {
    out[0] = in[0];
    return;
  }
  const int64_t inner = out_shape[nd - 1], inner_stride = st[nd - 1];
  const int64_t rows = total / inner;
  // Tiled path: out rows r..r+31 over the second-to-last output dim read input columns contiguously when the
  // input's last dim is the output's second-to-last (a transpose of the last two dims, possibly batched).
  const bool tiled = nd >= 2 && inner_stride != 1 && st[nd - 2] == 1 && inner >= 16 && out_shape[nd - 2] >= 16;
  if (tiled) {
    const int64_t R = out_shape[nd - 2];  // rows per matrix
    const int64_t mats = rows / R;
    const int64_t row_tiles = (R + 31) / 32;
    parallel_for(mats * row_tiles, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t task = lo; task < hi; ++task) {
        const int64_t m = task / row_tiles, r0 = (task % row_tiles) * 32, r1 = std::min(R, r0 + 32);
        // input offset of matrix m: decompose m over the outer output dims
        int64_t base = 0, rem = m;
        for (int d = nd - 3; d >= 0; --d) {
          base += (rem % out_shape[d]) * st[d];
          rem /= out_shape[d];
        }
        T* o = out + m * R * inner;
        for (int64_t c0 = 0; c0 < inner; c0 += 32) {
          const int64_t c1 = std::min(inner, c0 + 32);
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t c = c0; c < c1; ++c) o[r * inner + c] = in[base + r + c * inner_stride];
        }
      }
    });
    return;
  }
  parallel_for(rows, std::max<int64_t>(1, 4096 / inner), [&](int64_t lo, int64_t hi) {
    int64_t idx[16];
    int64_t rem = lo;
    for (int d = nd - 2; d >= 0; --d) {
      idx[d] = rem % out_shape[d];
      rem /= out_shape[d];
    }
    for (int64_t r = lo; r < hi; ++r) {
      int64_t base = 0;
      for (int d = 0; d < nd - 1; ++d) base += idx[d] * st[d];
      T* o = out + r * inner;
      if (inner_stride == 1) std::memcpy(o, in + base, sizeof(T) * inner);
      else
        for (int64_t j = 0; j < inner; ++j) o[j] = in[base + j * inner_stride];
      for (int d = nd - 2; d >= 0; --d) {
        if (++idx[d] < out_shape[d]) break;
        idx[d] = 0;
      }
    }
  });
}

}  // namespace

void permute_copy(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim) {
  if (ndim < 0 || ndim > 16) throw std::invalid_argument("permute: at most 16 dimensions");
  switch (elem_size) {
    case 1: return permute_impl(static_cast<uint8_t*>(out), static_cast<const uint8_t*>(in), in_shape, perm, ndim);
    case 2: return permute_impl(static_cast<uint16_t*>(out), static_cast<const uint16_t*>(in), in_shape, perm, ndim);
    case 4: return permute_impl(static_cast<uint32_t*>(out), static_cast<const uint32_t*>(in), in_shape, perm, ndim);
    case 8: return permute_impl(static_cast<uint64_t*>(out), static_cast<const uint64_t*>(in), in_shape, perm, ndim);
    default: throw std::invalid_argument("permute: element size must be 1, 2, 4 or 8 bytes");
  }
}

}  // namespace xlstm
