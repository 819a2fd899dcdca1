// GEMM (CPU kernels layer): C = alpha * op(A) * op(B) + beta * C in single precision, row-major, no BLAS.
//
// Layouts (row-major, leading dimensions in elements):
//   op(A) is M x K: A is M x K (lda >= K) or, with trans_a, K x M (lda >= M)
//   op(B) is K x N: B is K x N (ldb >= N) or, with trans_b, N x K (ldb >= K)
//   C     is M x N (ldc >= N); beta == 0 overwrites C without reading it (NaNs in C are ignored);
//   alpha == 0 or K == 0 only scales C by beta (A and B are not read).
// gemm_batched runs `batch` such products with element strides between consecutive A, B, C matrices; a stride of
// 0 for A or B broadcasts one matrix to every batch entry (C slices must not overlap).
//
// Implementation (gemm.cc): tiny products (M*N*K <= 512) take a direct loop; M == 1 or N == 1 a streaming
// matrix-vector kernel; the rest are BLIS-style: op(B) is packed into NR-wide k-major slivers (KC x NC block shared
// by all threads), op(A) into MR-tall slivers (MC x KC block per thread, sized for L2), and a register-blocked
// micro-kernel computes each MR x NR tile of C. The packed path is also the fast one for small matrices (from about
// 8^3 up it beats any unpacked loop we measured), so only trivial sizes skip it; it runs on one thread below 20 MFLOP.
// The ISA variants (scalar here, AVX2 6x16 in gemm_avx2.cc, AVX-512 14x32 in gemm_avx512.cc) plug in through
// gemm_detail::Isa and are chosen at run time by simd_level(). Threads: parallel_for over row blocks of C (and
// column groups when M is small), over output chunks for matrix-vector products.
#pragma once
#include <cstdint>
#include <cstring>

namespace xlstm {

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// stride_a / stride_b may be 0 (broadcast); stride_c must separate the C matrices when batch > 1.
void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c);

namespace gemm_detail {

// One ISA's packing routines and macro-kernel with its blocking sizes.
struct Isa {
  const char* name;
  int mr, nr;            // micro-tile of C computed in registers
  int64_t kc, mc, nc;    // cache blocks: depth, rows of A per L2 block, columns of B per shared block
  // Pack op(A)[0:m, 0:k] into ceil(m/mr) slivers of k x mr floats (k-major), zero-padding the last sliver.
  // `A` points at op(A)[0][0]; element (i, p) is A[i*lda + p], or A[p*lda + i] with trans.
  void (*pack_a)(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap);
  // Pack op(B)[0:k, 0:n] into ceil(n/nr) slivers of k x nr floats (k-major), zero-padding the last sliver.
  // Element (p, j) is B[p*ldb + j], or B[j*ldb + p] with trans.
  void (*pack_b)(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp);
  // C[0:m, 0:n] = alpha * Ap * Bp + beta * C for packed blocks (beta == 0: C is not read). Bp starts at the
  // sliver holding column 0 of this C block; Ap at the sliver holding row 0.
  void (*macro)(int64_t m, int64_t n, int64_t k, float alpha, const float* Ap, const float* Bp, float beta, float* C,
                int64_t ldc);
  // Matrix-vector products for M == 1 or N == 1 (memory-bound: streaming the matrix once beats packing it):
  // gemv_n: out[j] = sum_p x[p] * Y[p*ldy + j]   (j < n, p < k; rows of Y contiguous)
  // gemv_t: out[j] = sum_p x[p] * Y[j*ldy + p]   (dot products with the rows of Y)
  void (*gemv_n)(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out);
  void (*gemv_t)(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out);
};

const Isa& isa_scalar();
#ifdef XLSTM_X86
const Isa& isa_avx2();    // gemm_avx2.cc
const Isa& isa_avx512();  // gemm_avx512.cc
#endif

// Portable packing, instantiated by each ISA file with its own compiler flags (so the copies vectorise).
template <int MR>
inline void pack_a_generic(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  for (int64_t i0 = 0; i0 < m; i0 += MR) {
    const int rows = static_cast<int>(m - i0 < MR ? m - i0 : MR);
    float* dst = Ap + i0 * k;  // sliver i0/MR starts at (i0/MR) * MR * k
    if (trans) {
      const float* src = A + i0;
      if (rows == MR) {
        for (int64_t p = 0; p < k; ++p) {
          const float* s = src + p * lda;
          float* d = dst + p * MR;
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r) d[r] = s[r];
        }
      } else {
        for (int64_t p = 0; p < k; ++p) {
          const float* s = src + p * lda;
          float* d = dst + p * MR;
          for (int r = 0; r < rows; ++r) d[r] = s[r];
          for (int r = rows; r < MR; ++r) d[r] = 0.f;
        }
      }
    } else {
      // rows of A are contiguous in p: gather MR rows, 8 columns at a time, into k-major order
      const float* src = A + i0 * lda;
      int64_t p = 0;
      if (rows == MR) {
        for (; p + 8 <= k; p += 8) {
          float* d = dst + p * MR;
#pragma GCC unroll 16
          for (int r = 0; r < MR; ++r) {
            const float* s = src + r * lda + p;
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q) d[q * MR + r] = s[q];
          }
        }
      }
      for (; p < k; ++p) {
        float* d = dst + p * MR;
        for (int r = 0; r < rows; ++r) d[r] = src[r * lda + p];
        for (int r = rows; r < MR; ++r) d[r] = 0.f;
      }
    }
  }
}

template <int NR>
inline void pack_b_generic(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int cols = static_cast<int>(n - j0 < NR ? n - j0 : NR);
    float* dst = Bp + j0 * k;
    if (!trans) {
      const float* src = B + j0;
      if (cols == NR) {
        for (int64_t p = 0; p < k; ++p) std::memcpy(dst + p * NR, src + p * ldb, sizeof(float) * NR);
      } else {
        for (int64_t p = 0; p < k; ++p) {
          float* d = dst + p * NR;
          const float* s = src + p * ldb;
          for (int c = 0; c < cols; ++c) d[c] = s[c];
          for (int c = cols; c < NR; ++c) d[c] = 0.f;
        }
      }
    } else {
      // columns of op(B) are rows of B: transpose 8 k-values of each column at a time
      const float* src = B + j0 * ldb;
      int64_t p = 0;
      if (cols == NR) {
        for (; p + 8 <= k; p += 8) {
          float* d = dst + p * NR;
#pragma GCC unroll 4
          for (int c = 0; c < NR; ++c) {
            const float* s = src + c * ldb + p;
#pragma GCC unroll 8
            for (int q = 0; q < 8; ++q) d[q * NR + c] = s[q];
          }
        }
      }
      for (; p < k; ++p) {
        float* d = dst + p * NR;
        for (int c = 0; c < cols; ++c) d[c] = src[c * ldb + p];
        for (int c = cols; c < NR; ++c) d[c] = 0.f;
      }
    }
  }
}

}  // namespace gemm_detail
}  // namespace xlstm
