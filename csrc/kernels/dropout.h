// Dropout with a counter-based generator (CPU kernels layer), so the mask depends only on (key, element index):
// reproducible across platforms and thread counts, and a CUDA twin can draw the same mask.
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; Random123),
// key = (key0, key1), counter = (j mod 2^32, j div 2^32, 0, 0) for block j; block j gives the 32-bit words
// r[4j .. 4j+3]. Element i keeps iff (r[i] >> 8) >= ceil(p * 2^24), i.e. with probability
// 1 - ceil(p * 2^24) / 2^24 (exactly 1 - p for p a multiple of 2^-24); p = 0 keeps everything, p = 1 nothing.
//   forward:  mask[i] = keep ? 1 : 0,  y[i] = keep ? x[i] * scale : 0   (scale = 1 / (1 - p), 0 for p = 1)
//   backward: dx[i] = mask[i] ? dy[i] * scale : 0
// Layouts: flat arrays of n elements; mask is uint8. Gradients written with `=`.
#pragma once
#include <cstdint>

namespace xlstm {

// out[0..3] = Philox4x32-10(counter, key).
void philox4x32_10(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);

void dropout_forward(float* y, uint8_t* mask, const float* x, int64_t n, double p, uint32_t key0, uint32_t key1);
void dropout_backward(float* dx, const float* dy, const uint8_t* mask, int64_t n, float scale);

// 1 / (1 - p), and 0 for p >= 1 (everything dropped).
float dropout_scale(double p);

namespace dropout_detail {
// The forward of blocks [lo, j) for the returned j <= hi, 16 blocks at a time while all their elements are < n
// (dropout_avx512.cc; only at the AVX-512 SIMD level).
int64_t forward_blocks_avx512(float* y, uint8_t* mask, const float* x, int64_t n, int64_t lo, int64_t hi,
                              uint32_t threshold, float scale, uint32_t key0, uint32_t key1);
// The backward of elements [lo, i) for the returned i <= hi, 16 at a time.
int64_t backward_avx512(float* dx, const float* dy, const uint8_t* mask, int64_t lo, int64_t hi, float scale);
}  // namespace dropout_detail

}  // namespace xlstm
