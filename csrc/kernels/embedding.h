// Embedding lookup and its scatter-add backward (CPU kernels layer).
// Layouts: weight [V, E] row-major; indices [N] (int32 or int64; any tensor shape flattened); out [N, E].
//   forward:  out[i, :] = weight[indices[i], :]
//   backward: dweight = 0, then dweight[indices[i], :] += dout[i, :] for every i (written with `=` overall).
// Indices are assumed to be in [0, V); the binding checks them first.
// The backward is race-free without atomics: threads own disjoint column blocks of dweight (or, for narrow E,
// disjoint vocabulary ranges) and every thread visits the indices in order, so each element is summed in index
// order and results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace xlstm {

template <class I>
void embedding_forward(float* out, const float* weight, const I* indices, int64_t n, int64_t e);

template <class I>
void embedding_backward(float* dweight, const float* dout, const I* indices, int64_t n, int64_t v, int64_t e);

}  // namespace xlstm
