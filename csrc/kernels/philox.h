// Philox4x32-10 and the dropout keep decision (see dropout.h for the contract), shared by the CPU kernel
// (csrc/kernels/dropout.cc) and its CUDA twin (cuda/dropout.cu): one definition, so a mask drawn on the GPU with a
// key is bit-identical to the CPU's. Plain integer arithmetic: C++ under a host compiler, __host__ __device__ under
// nvcc. No CUDA headers.
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define XLSTM_PHILOX_FN __host__ __device__ __forceinline__
#else
#define XLSTM_PHILOX_FN inline
#endif

namespace xlstm {
namespace philox {

// out[0..3] = Philox4x32-10(counter c, key k) (Salmon et al., SC'11; Random123's philox4x32 with 10 rounds).
XLSTM_PHILOX_FN void philox4x32_10(uint32_t out[4], uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                   uint32_t k1) {
  const uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kW0;
      k1 += kW1;
    }
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

// The four words r[4j .. 4j+3] of dropout block j: counter (j mod 2^32, j div 2^32, 0, 0).
XLSTM_PHILOX_FN void dropout_block(uint32_t r[4], int64_t j, uint32_t key0, uint32_t key1) {
  philox4x32_10(r, static_cast<uint32_t>(j), static_cast<uint32_t>(static_cast<uint64_t>(j) >> 32), 0u, 0u, key0,
                key1);
}

// ceil(p * 2^24), with p <= 0 -> 0 (keep all) and p >= 1 -> 2^24 (drop all).
XLSTM_PHILOX_FN uint32_t dropout_threshold(double p) {
  return p <= 0 ? 0u : p >= 1 ? (1u << 24) : static_cast<uint32_t>(ceil(p * 16777216.0));
}

// Element with word r is kept iff its top 24 bits reach the threshold.
XLSTM_PHILOX_FN bool dropout_keep(uint32_t r, uint32_t threshold) { return (r >> 8) >= threshold; }

}  // namespace philox
}  // namespace xlstm
