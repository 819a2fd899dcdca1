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
// matrix-vector kernel; the rest are BLIS-style: a register-blocked micro-kernel computes each MR x NR tile of C from
// k-major op(B) slivers (NR columns) and op(A) slivers (MR rows). Each operand is either packed (op(B) into a
// KC x NC block shared by all threads, op(A) into an MC x KC block per thread, sized for L2) or read in place by the
// micro-kernel through a panel view (APanel / BPanel below), which skips the packing pass that costs as much as
// the arithmetic on skinny shapes:
//   - op(A) in place: rows of A through MR row pointers (broadcast loads along each row) unless lda is a multiple
//     of 1024 floats (L1 set aliasing); A^T (trans_a: each k step a contiguous run of MR values) unless both M and
//     N exceed 128 (a large block reused by many column slivers is worth packing once);
//   - op(B) in place when B is stored k-major (no trans_b) and its rows are close (ldb <= 128) or few row tiles read
//     them (M <= 336);
//   - k-major rows a page or more apart (A^T, B with ld >= 1024) in place only where the ISA's kernel keeps up with
//     them (Isa::far_rows_in_place: AVX-512);
//   - with A^T or B in place and rows far apart, a smaller KC (each k step touches a page) keeps the DTLB warm;
//   - while a KC block is computed, the tiles prefetch the next block's source rows into L2 (one line per k step),
//     so that streaming a long K overlaps the arithmetic.
// A product with a small C and a long K (M*N <= 64K, K >= 2048, K >= 8 max(M, N): weight gradients) is split
// into K slabs whose partial products go to a scratch buffer and are summed in slab order; the slabs depend only on
// the shape, so the result is the same for every thread count. The blocked path runs on one thread below 20 MFLOP.
// The ISA variants (scalar here, AVX2 6x16 in gemm_avx2.cc, AVX-512 14x32 in gemm_avx512.cc) plug in through
// gemm_detail::Isa and are chosen at run time by simd_level(). Threads: parallel_for over row blocks of C (and
// column groups when M is small), over K slabs, over output chunks for matrix-vector products. Scratch buffers are
// kept per thread and reused, so steady-state calls do not allocate. Packing or reading in place never changes a
// result: the arithmetic (tiles, KC blocks, K slabs) depends on the shape, strides and ISA, not on the threads.
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

// gemm_batched with every element of A and B first rounded to bfloat16 (round to nearest even; NaN stays NaN):
// the numerics of a bf16 tensor-core GEMM with float32 accumulation (CUDA twin: cuda/gemm_bf16.cu), for the bf16
// autocast of the ops. Rounds copies of the strided ranges the products read, then runs gemm_batched.
void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c);

// How gemm() computes a product of this shape at the current SIMD level (for tests and benchmarks): the path,
// whether op(A) / op(B) are read in place (else packed), the KC block and, for the K split, the number of slabs.
enum class GemmPath { Scale, Small, Gemv, Blocked, KSplit, Bf16 };  // Bf16: matmul_precision.h
struct GemmPlan {
  GemmPath path = GemmPath::Scale;
  bool a_in_place = false, b_in_place = false;
  int64_t kc = 0, slabs = 1;
};
GemmPlan gemm_plan(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb);

namespace gemm_detail {

// op(A) for the macro-kernel: element (i, q) (row i of the block, step q along k) is at
//   p + (i / mr) * tile + (i % mr) * rs + q * cs
// with either rs == 1 (k-major: packed slivers {Ap, mr*k, 1, mr}, or A^T read in place {A, mr, 1, lda}) or cs == 1
// (rows of A read in place: {A, mr*lda, lda, 1}).
struct APanel {
  const float* p;
  int64_t tile, rs, cs;
};
// op(B) for the macro-kernel: element (q, j) is at p + (j / nr) * tile + q * ks + j % nr (columns contiguous): packed
// slivers {Bp, nr*k, nr} (zero-padded to nr columns) or B read in place {B, nr, ldb} (the last sliver is then only
// n % nr wide and nothing beyond column n is read).
struct BPanel {
  const float* p;
  int64_t tile, ks;
};

// Source rows the micro-kernels prefetch into L2 while they compute (the next KC block of an operand, so that its
// memory traffic overlaps this block's arithmetic): `rows` rows of `bytes` bytes, `stride` bytes apart.
struct Prefetch {
  const char* p;
  int64_t rows, stride, bytes;
};

// Deals the 64-byte lines of up to two Prefetch regions out to the tiles of one macro-kernel call: each tile gets
// one line column (the same line offset in up to `k` consecutive rows) and prefetches one line per k step.
class PrefetchJobs {
 public:
  PrefetchJobs(const Prefetch* regions, int count, int64_t k) : k_(k) {
    for (int i = 0; i < count && i < 2; ++i) {
      const Prefetch& r = regions[i];
      if (!r.p || r.rows <= 0 || r.bytes <= 0) continue;
      const uintptr_t misalign = reinterpret_cast<uintptr_t>(r.p) & 63;
      r_[n_++] = Prefetch{r.p - misalign, r.rows, r.stride, r.bytes + static_cast<int64_t>(misalign)};
    }
  }
  // The next line column: first line and the distance between lines; false when every line is handed out.
  bool next(const char** p, int64_t* stride) {
    while (i_ < n_) {
      const Prefetch& r = r_[i_];
      if (col_ * 64 < r.bytes) {
        *p = r.p + row_ * r.stride + col_ * 64;
        *stride = r.stride;
        row_ += k_;
        if (row_ >= r.rows) row_ = 0, ++col_;
        return true;
      }
      ++i_, col_ = 0, row_ = 0;
    }
    return false;
  }

 private:
  Prefetch r_[2] = {};
  int n_ = 0, i_ = 0;
  int64_t k_, col_ = 0, row_ = 0;
};

// One ISA's packing routines and macro-kernel with its blocking sizes.
struct Isa {
  const char* name;
  int mr, nr;            // micro-tile of C computed in registers
  int64_t kc, mc, nc;    // cache blocks: depth, rows of A per L2 block, columns of B per shared block
  bool far_rows_in_place;  // read k-major rows 4 KiB or more apart (A^T, B) in place rather than pack them
  // Pack op(A)[0:m, 0:k] into ceil(m/mr) slivers of k x mr floats (k-major), zero-padding the last sliver.
  // `A` points at op(A)[0][0]; element (i, p) is A[i*lda + p], or A[p*lda + i] with trans.
  void (*pack_a)(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap);
  // Pack op(B)[0:k, 0:n] into ceil(n/nr) slivers of k x nr floats (k-major), zero-padding the last sliver.
  // Element (p, j) is B[p*ldb + j], or B[j*ldb + p] with trans.
  void (*pack_b)(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp);
  // C[0:m, 0:n] = alpha * op(A) * op(B) + beta * C over k steps for one block (beta == 0: C is not read). The
  // panels start at row 0 / column 0 of this C block. The tiles prefetch the lines of `npf` regions (PrefetchJobs).
  void (*macro)(int64_t m, int64_t n, int64_t k, float alpha, const APanel& a, const BPanel& b, float beta, float* C,
                int64_t ldc, const Prefetch* pf, int npf);
  // Matrix-vector products for M == 1 or N == 1 (memory-bound: streaming the matrix once beats packing it):
  // gemv_n: out[j] = sum_p x[p] * Y[p*ldy + j]   (j < n, p < k; rows of Y contiguous)
  // gemv_t: out[j] = sum_p x[p] * Y[j*ldy + p]   (dot products with the rows of Y)
  void (*gemv_n)(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out);
  void (*gemv_t)(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out);
};

const Isa& isa_scalar();
// The blocked path of gemm() for one ISA on up to `threads` threads (1: the calling thread alone); no small, matrix-
// vector or K-split path. gemm_avx512bf16.cc runs it over operands it rounded to bf16 pairs.
void gemm_blocked(const Isa& isa, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads);
#ifdef XLSTM_X86
const Isa& isa_avx2();    // gemm_avx2.cc
const Isa& isa_avx512();  // gemm_avx512.cc
#endif

// Rows ahead that the packing loops prefetch.
constexpr int64_t kPackPrefetchRows = 16;

// Row-outer copy of k rows of a k-major source (row p at src + p*ld, `width` values used) into slivers of W
// values per row (sliver s of the destination starts at dst + s*W*k), zero-padding the last sliver; rows ahead
// are prefetched (a row per page when ld is large: the hardware prefetcher stops at page boundaries).
template <int W>
inline void pack_rows(int64_t k, int64_t width, const float* src, int64_t ld, float* dst) {
  const int64_t full = width / W, rest = width % W;
  for (int64_t p = 0; p < k; ++p) {
    if (kPackPrefetchRows > 0 && p + kPackPrefetchRows < k) {
      const char* pf = reinterpret_cast<const char*>(src + (p + kPackPrefetchRows) * ld);
      for (int64_t off = 0; off < width * 4; off += 64) __builtin_prefetch(pf + off, 0, 3);
      __builtin_prefetch(pf + width * 4 - 1, 0, 3);
    }
    const float* s = src + p * ld;
    float* d = dst + p * W;
    for (int64_t sl = 0; sl < full; ++sl) {
#pragma GCC unroll 32
      for (int c = 0; c < W; ++c) d[sl * W * k + c] = s[sl * W + c];
    }
    if (rest) {
      float* dr = d + full * W * k;
      const float* sr = s + full * W;
      for (int c = 0; c < rest; ++c) dr[c] = sr[c];
      for (int c = static_cast<int>(rest); c < W; ++c) dr[c] = 0.f;
    }
  }
}

// Portable packing, instantiated by each ISA file with its own compiler flags (so the copies vectorise).
template <int MR>
inline void pack_a_generic(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  if (trans) return pack_rows<MR>(k, m, A, lda, Ap);
  for (int64_t i0 = 0; i0 < m; i0 += MR) {
    const int rows = static_cast<int>(m - i0 < MR ? m - i0 : MR);
    float* dst = Ap + i0 * k;  // sliver i0/MR starts at (i0/MR) * MR * k
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

template <int NR>
inline void pack_b_generic(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  if (!trans) return pack_rows<NR>(k, n, B, ldb, Bp);
  for (int64_t j0 = 0; j0 < n; j0 += NR) {
    const int cols = static_cast<int>(n - j0 < NR ? n - j0 : NR);
    float* dst = Bp + j0 * k;
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

}  // namespace gemm_detail
}  // namespace xlstm
