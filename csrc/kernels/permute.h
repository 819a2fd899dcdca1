// Strided copy that permutes dimensions (CPU kernels layer): out[i_0..i_{n-1}] = in[...] with out dim d being
// in dim perm[d]. Row-major, any element size of 1, 2, 4 or 8 bytes, up to 16 dimensions. Multithreaded over
// the outer output rows; a 2-D transpose of the last two dimensions is tiled for cache reuse.
#pragma once
#include <cstdint>

namespace xlstm {

void permute_copy(void* out, const void* in, int elem_size, const int64_t* in_shape, const int64_t* perm, int ndim);

}  // namespace xlstm
