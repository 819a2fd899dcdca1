// GEMM driver and scalar path (CPU kernels layer): C = alpha * op(A) * op(B) + beta * C, row-major float32.
// See gemm.h for the layouts. This file holds the parts shared by every ISA:
//   - the direct loop for tiny products (no packing; M*N*K <= kSmallWork),
//   - the matrix-vector driver for M == 1 or N == 1 (the ISA's gemv_n / gemv_t, split over threads by output),
//   - the K-split driver for a small C with a long K: K slabs (chosen from the shape alone) computed into a scratch
//     buffer, one slab per task, then summed in slab order and scaled into C,
//   - the BLIS-style blocked driver: for each NC-wide column block of C, each unit of work (a row block of C, or a
//     column group of it when M is small) walks the KC blocks: op(B) is read in place or packed (shared by all
//     units, packed once by whichever threads need it first), op(A) is read in place or packed into a
//     thread-local buffer, and the ISA's macro-kernel runs on the two panels. The first KC block applies beta,
//     later ones accumulate. One parallel_for per column block.
//   - the scalar ISA (4x8 micro-tile and plain matrix-vector loops, C++ the compiler may auto-vectorise),
//   - gemm_batched (parallel over the batch when each product is small, else one product after another).
// No decision that changes the arithmetic (KC blocks, K slabs, tiles) depends on the thread count, so results are
// identical for every thread count; packing or not never changes them either.
#include "kernels/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <thread>

#include "kernels/cpu_features.h"
#include "kernels/matmul_precision.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace gemm_detail {
namespace {

// ---- scalar ISA: 4 x 8 register tile --------------------------------------------------------------------------
constexpr int kScalarMR = 4, kScalarNR = 8;

// One tile from the panels (see APanel / BPanel): element (r, q) of op(A) at a[r*rs + q*cs], (q, c) of op(B) at
// b[q*bks + c]. FULL: a whole 4 x 8 tile (constant trip counts the compiler vectorises); else only the mr x nr
// elements inside the matrix are read.
template <bool FULL>
void scalar_kernel(int mr, int nr, int64_t k, float alpha, const float* a, int64_t rs, int64_t cs, const float* b,
                   int64_t bks, float beta, float* C, int64_t ldc) {
  float acc[kScalarMR][kScalarNR] = {};
  if (FULL) mr = kScalarMR, nr = kScalarNR;
  for (int64_t q = 0; q < k; ++q) {
    const float* bq = b + q * bks;
    float bv[kScalarNR];
    for (int c = 0; c < kScalarNR; ++c) bv[c] = FULL || c < nr ? bq[c] : 0.f;
    for (int r = 0; r < kScalarMR; ++r) {
      const float av = FULL || r < mr ? a[r * rs + q * cs] : 0.f;
      for (int c = 0; c < kScalarNR; ++c) acc[r][c] += av * bv[c];
    }
  }
  for (int r = 0; r < mr; ++r) {
    float* cr = C + r * ldc;
    if (beta == 0.f) {
      for (int c = 0; c < nr; ++c) cr[c] = alpha * acc[r][c];
    } else {
      for (int c = 0; c < nr; ++c) cr[c] = alpha * acc[r][c] + beta * cr[c];
    }
  }
}

// (The scalar path ignores the prefetch regions.)
void scalar_macro(int64_t m, int64_t n, int64_t k, float alpha, const APanel& a, const BPanel& b, float beta, float* C,
                  int64_t ldc, const Prefetch*, int) {
  for (int64_t j0 = 0; j0 < n; j0 += kScalarNR) {
    const int nr = static_cast<int>(std::min<int64_t>(kScalarNR, n - j0));
    const float* bs = b.p + (j0 / kScalarNR) * b.tile;
    const float* at = a.p;
    for (int64_t i0 = 0; i0 < m; i0 += kScalarMR, at += a.tile) {
      const int mr = static_cast<int>(std::min<int64_t>(kScalarMR, m - i0));
      if (mr == kScalarMR && nr == kScalarNR)
        scalar_kernel<true>(mr, nr, k, alpha, at, a.rs, a.cs, bs, b.ks, beta, C + i0 * ldc + j0, ldc);
      else
        scalar_kernel<false>(mr, nr, k, alpha, at, a.rs, a.cs, bs, b.ks, beta, C + i0 * ldc + j0, ldc);
    }
  }
}

void scalar_pack_a(bool trans, int64_t m, int64_t k, const float* A, int64_t lda, float* Ap) {
  pack_a_generic<kScalarMR>(trans, m, k, A, lda, Ap);
}
void scalar_pack_b(bool trans, int64_t k, int64_t n, const float* B, int64_t ldb, float* Bp) {
  pack_b_generic<kScalarNR>(trans, k, n, B, ldb, Bp);
}

void scalar_gemv_n(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  std::fill(out, out + n, 0.f);
  for (int64_t p = 0; p < k; ++p) {
    const float xp = x[p];
    const float* y = Y + p * ldy;
    for (int64_t j = 0; j < n; ++j) out[j] += xp * y[j];
  }
}

void scalar_gemv_t(int64_t n, int64_t k, const float* x, const float* Y, int64_t ldy, float* out) {
  for (int64_t j = 0; j < n; ++j) {
    const float* y = Y + j * ldy;
    float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
      s0 += x[p] * y[p];
      s1 += x[p + 1] * y[p + 1];
      s2 += x[p + 2] * y[p + 2];
      s3 += x[p + 3] * y[p + 3];
    }
    for (; p < k; ++p) s0 += x[p] * y[p];
    out[j] = (s0 + s1) + (s2 + s3);
  }
}

// ---- buffers -------------------------------------------------------------------------------------------------
// Scratch lives per thread and grows as needed (64-byte aligned): a pool worker keeps its op(A) block buffer between
// calls; the calling thread keeps the shared op(B) buffer, its packing counters and the K-split partial products.
struct Buffer {
  float* p = nullptr;
  size_t cap = 0;
  ~Buffer() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = nullptr;
      cap = 0;
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
thread_local Buffer t_a_buffer, t_b_buffer, t_v_buffer, t_k_buffer;

// Counters for the shared lazy packing of op(B) (two per KC block), reset by each column block.
struct Counters {
  std::unique_ptr<std::atomic<int64_t>[]> p;
  size_t cap = 0;
  std::atomic<int64_t>* get(size_t n) {
    if (n > cap) {
      p.reset(new std::atomic<int64_t>[n]);
      cap = n;
    }
    for (size_t i = 0; i < n; ++i) p[i].store(0, std::memory_order_relaxed);
    return p.get();
  }
};
thread_local Counters t_counters;

// ---- policy --------------------------------------------------------------------------------------------------
constexpr int64_t kSmallWork = 512;                 // M*N*K at or below this: direct loop (see gemm.h)
constexpr double kParallelFlops = 2.0e7;  // below this many flops, one thread: waking a pool worker costs ~25 us here
constexpr double kGemvParallelElems = 2.0 * 1024 * 1024;  // matrix elements above which a gemv uses every thread
constexpr int64_t kBPackBudget = 2 * 1024 * 1024;   // floats of packed op(B) per column block (8 MiB)
// K split: C at most this many elements, K at least kSplitMinK and kSplitRatio times max(M, N); slabs of at least
// kSplitMinSlab steps (a multiple of 256), at most kSplitMaxSlabs of them.
constexpr int64_t kSplitMaxC = 64 * 1024, kSplitMinK = 2048, kSplitRatio = 8, kSplitMinSlab = 1024,
                  kSplitMaxSlabs = 16;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// op(A) read in place by the micro-kernel instead of packed (thresholds in elements, the same for every ISA except
// for rows a page or more apart). Rows of A (no trans): MR row pointers walked along k; as fast as a packed sliver or
// faster (no packing pass) for every shape we measured, except when lda is a multiple of 1024 floats (rows 4 KiB
// apart share L1 sets, and MR of them evict each other). A^T stored (trans): each k step is a contiguous run of MR
// values, as in a packed sliver, but one row per step; worth packing once many column slivers reuse a large block
// (N > 128 and M > 128), and when each step is a page of its own (lda >= 1024) unless the ISA keeps up with that.
bool a_in_place(const Isa& isa, bool ta, int64_t M, int64_t N, int64_t lda) {
  if (!ta) return lda % 1024 != 0;
  return (N <= 128 || M <= 128) && (lda < 1024 || isa.far_rows_in_place);
}

// op(B) read in place (only when B is stored k-major, no trans): a packed sliver stays in L1 while many row tiles
// reuse it; rows of B in place do too when they are close together (ldb <= 128 floats), else only a few row tiles
// (M <= 336) should read them, and rows a page or more apart (ldb >= 1024) only for up to 4 row slivers and where the
// ISA's kernel keeps up with them (AVX-512; the AVX2 kernel runs faster on a packed copy). Such rows cap KC at 64
// steps (choose_kc), so from ~4 slivers on packing pays: M 28 / 42 / 64 / 128 / 256 with ldb 1024 ran at 270 / 245 /
// 265 / 325 / 310 GFLOP/s in place and 200 / 240 / 295 / 375 / 400 packed (2 threads, AVX-512).
bool b_in_place(const Isa& isa, bool tb, int64_t M, int64_t ldb) {
  return !tb && (ldb <= 128 || (M <= 336 && (ldb < 1024 || (isa.far_rows_in_place && M <= 4 * isa.mr))));
}

// KC block for in-place k-major operands: each k step of A^T or B read in place is a row of its own, so a KC block
// touches up to KC pages per operand when rows are 4 KiB or more apart; keep it within ~64 pages (the L1 DTLB),
// not below 64 steps (the C tile is reloaded once per block).
int64_t choose_kc(const Isa& isa, bool a_kmajor_in_place, int64_t lda, bool b_in_place_, int64_t ldb) {
  double pages_per_step = 0;
  if (a_kmajor_in_place) pages_per_step += std::min(1.0, lda * 4 / 4096.0);
  if (b_in_place_) pages_per_step += std::min(1.0, ldb * 4 / 4096.0);
  if (pages_per_step <= 0) return isa.kc;
  const int64_t kc = static_cast<int64_t>(64 / pages_per_step) / 16 * 16;
  return std::max<int64_t>(64, std::min(isa.kc, kc));
}

bool use_k_split(int64_t M, int64_t N, int64_t K) {
  return K >= kSplitMinK && M * N <= kSplitMaxC && K >= kSplitRatio * std::max(M, N);
}

void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  if (beta == 1.f) return;
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (beta == 0.f) std::fill(c, c + N, 0.f);
    else for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Direct loops for tiny products: no packing, no threads.
void gemm_small(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* c = C + i * ldc;
    if (!tb) {
      // c[i, :] = beta c[i, :] + sum_p (alpha a[i, p]) b[p, :]  (rows of B are contiguous)
      if (beta == 0.f) std::fill(c, c + N, 0.f);
      else if (beta != 1.f) for (int64_t j = 0; j < N; ++j) c[j] *= beta;
      for (int64_t p = 0; p < K; ++p) {
        const float a = alpha * (ta ? A[p * lda + i] : A[i * lda + p]);
        const float* b = B + p * ldb;
        for (int64_t j = 0; j < N; ++j) c[j] += a * b[j];
      }
    } else {
      // c[i, j] = alpha <a[i, :], B[j, :]> + beta c[i, j]  (op(B) columns are rows of B)
      for (int64_t j = 0; j < N; ++j) {
        const float* b = B + j * ldb;
        float s = 0.f;
        if (ta) for (int64_t p = 0; p < K; ++p) s += A[p * lda + i] * b[p];
        else {
          const float* a = A + i * lda;
          for (int64_t p = 0; p < K; ++p) s += a[p] * b[p];
        }
        c[j] = beta == 0.f ? alpha * s : alpha * s + beta * c[j];
      }
    }
  }
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

// parallel_for with a functor passed by pointer: the std::function it builds then fits its small-object buffer
// (no heap allocation per call).
template <class F>
void run_parallel(int64_t n, int64_t grain, F& fn) {
  F* f = &fn;
  parallel_for(n, grain, [f](int64_t lo, int64_t hi) { (*f)(lo, hi); });
}

}  // namespace

// Blocked product on up to `threads` threads (1: the calling thread alone); declared in gemm.h.
void gemm_blocked(const Isa& isa, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc, int threads) {
  const int64_t MR = isa.mr, NR = isa.nr;
  int T = threads;
  if (2.0 * M * N * K < kParallelFlops) T = 1;
  const bool a_direct = a_in_place(isa, ta, M, N, lda);
  const bool b_direct = b_in_place(isa, tb, M, ldb);
  const int64_t KC = choose_kc(isa, a_direct && ta, lda, b_direct, ldb);

  // Column blocks: the packed op(B)[0:K, jc:jc+nc] (all KC blocks) stays within the budget.
  int64_t nc = b_direct ? round_up(N, NR) : std::min<int64_t>(isa.nc, std::max<int64_t>(NR, kBPackBudget / K / NR * NR));
  nc = std::min(nc, round_up(N, NR));
  // Row blocks: the S = ceil(M/MR) row slivers dealt out evenly (block sizes differ by at most one sliver), at most
  // MC rows each. With threads, a multiple of T blocks, up to 4 per thread while blocks keep >= 4 slivers, so that
  // a worker that wakes late (tens of us on a VM) still gets its share.
  const int64_t S = ceil_div(M, MR);
  int64_t nb = ceil_div(M, isa.mc);
  if (T > 1) nb = round_up(std::max(nb, std::min<int64_t>(4 * T, S / 4)), T);
  nb = std::min(nb, S);
  const int64_t mc = ceil_div(S, nb) * MR;  // rows of the largest block
  auto block_rows = [&](int64_t ib, int64_t* i0, int64_t* m) {
    const int64_t s0 = S * ib / nb, s1 = S * (ib + 1) / nb;
    *i0 = s0 * MR;
    *m = std::min(M, s1 * MR) - *i0;
  };
  const int64_t npc = ceil_div(K, KC);

  float* Bp = b_direct ? nullptr : t_b_buffer.get(static_cast<size_t>(K * nc));
  std::atomic<int64_t>* counters = nullptr;

  for (int64_t jc = 0; jc < N; jc += nc) {
    const int64_t ncur = std::min(nc, N - jc);
    const int64_t slivers = ceil_div(ncur, NR);
    const int64_t ncur_pad = slivers * NR;

    // Packing op(B)[pc:pc+kc, jc:jc+ncur] (KC block ipc starts at Bp + ipc * KC * ncur_pad) is shared and lazy:
    // the first unit to need block ipc claims its slivers (others arriving join in), then waits until every
    // claimed sliver is done. The block is packed just before use (still in the packer's L2) and no thread ever
    // waits on work nobody has started. One fork-join per column block.
    if (!b_direct) counters = t_counters.get(static_cast<size_t>(2 * npc));
    auto ensure_b_packed = [&](int64_t ipc) {
      std::atomic<int64_t>* claimed = counters;
      std::atomic<int64_t>* packed = counters + npc;
      const int64_t pc = ipc * KC, kc = std::min(KC, K - pc);
      float* dst = Bp + pc * ncur_pad;
      if (packed[ipc].load(std::memory_order_acquire) == slivers) return;
      for (;;) {
        const int64_t s0 = claimed[ipc].fetch_add(2, std::memory_order_relaxed);
        if (s0 >= slivers) break;
        const int64_t s1 = std::min(slivers, s0 + 2);
        const int64_t j0 = s0 * NR, cols = std::min(s1 * NR, ncur) - j0;
        const float* src = tb ? B + (jc + j0) * ldb + pc : B + pc * ldb + jc + j0;
        isa.pack_b(tb, kc, cols, src, ldb, dst + j0 * kc);
        packed[ipc].fetch_add(s1 - s0, std::memory_order_release);
      }
      for (int spins = 0; packed[ipc].load(std::memory_order_acquire) < slivers; ++spins) {
        if (spins < 4096) cpu_relax();
        else std::this_thread::yield();
      }
    };

    // Column groups (in slivers) when the row blocks alone cannot occupy every thread.
    const int64_t ng = nb >= T ? 1 : std::min(slivers, ceil_div(T, nb));
    auto compute = [&](int64_t lo, int64_t hi) {
      for (int64_t u = lo; u < hi; ++u) {
        const int64_t ib = u / ng, g = u % ng;
        int64_t i0, m;
        block_rows(ib, &i0, &m);
        const int64_t s0 = slivers * g / ng, s1 = slivers * (g + 1) / ng;
        const int64_t j0 = s0 * NR, n = std::min(ncur, s1 * NR) - j0;
        float* Ap = a_direct ? nullptr : t_a_buffer.get(static_cast<size_t>(mc * std::min(KC, K)));
        for (int64_t pc = 0; pc < K; pc += KC) {
          const int64_t kc = std::min(KC, K - pc);
          APanel ap;
          if (a_direct) {
            ap = ta ? APanel{A + pc * lda + i0, MR, 1, lda} : APanel{A + i0 * lda + pc, MR * lda, lda, 1};
          } else {
            isa.pack_a(ta, m, kc, ta ? A + pc * lda + i0 : A + i0 * lda + pc, lda, Ap);
            ap = APanel{Ap, MR * kc, 1, MR};
          }
          BPanel bp;
          if (b_direct) {
            bp = BPanel{B + pc * ldb + jc + j0, NR, ldb};
          } else {
            ensure_b_packed(pc / KC);
            bp = BPanel{Bp + pc * ncur_pad + j0 * kc, NR * kc, NR};
          }
          // the source rows of the next KC block: op(A) (read in place or packed next) and op(B) when it is read
          // in place or its next block is not packed yet
          Prefetch pf[2];
          int npf = 0;
          const int64_t pn = pc + KC, kn = std::min(KC, K - pn);
          if (pn < K) {
            pf[npf++] = ta ? Prefetch{reinterpret_cast<const char*>(A + pn * lda + i0), kn, lda * 4, m * 4}
                           : Prefetch{reinterpret_cast<const char*>(A + i0 * lda + pn), m, lda * 4, kn * 4};
            if (b_direct || counters[npc + pn / KC].load(std::memory_order_relaxed) == 0)
              pf[npf++] = tb ? Prefetch{reinterpret_cast<const char*>(B + (jc + j0) * ldb + pn), n, ldb * 4, kn * 4}
                             : Prefetch{reinterpret_cast<const char*>(B + pn * ldb + jc + j0), kn, ldb * 4, n * 4};
          }
          isa.macro(m, n, kc, alpha, ap, bp, pc == 0 ? beta : 1.f, C + i0 * ldc + jc + j0, ldc, pf, npf);
        }
      }
    };
    const int64_t units = nb * ng;
    if (T == 1) compute(0, units);
    else parallel_units(units, [&compute](int64_t lo, int64_t hi) { compute(lo, hi); });  // one block at a time
  }
}

namespace {

// Small C, long K: slab s covers K steps [s*KS, (s+1)*KS); its product goes to P + s*M*N (alpha 1, beta 0) on one
// thread, the slabs are spread over the threads, then C = alpha * (((P0 + P1) + P2) + ...) + beta * C.
int64_t k_slab(int64_t K) {
  const int64_t want = std::min(kSplitMaxSlabs, std::max<int64_t>(1, K / kSplitMinSlab));
  return round_up(ceil_div(K, want), 256);
}

void gemm_k_split(const Isa& isa, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                  int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t KS = k_slab(K);
  const int64_t nslabs = ceil_div(K, KS);
  const int64_t MN = M * N;
  float* P = t_k_buffer.get(static_cast<size_t>(nslabs * MN));
  auto slabs = [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) {
      const int64_t k0 = s * KS, ks = std::min(KS, K - k0);
      gemm_blocked(isa, ta, tb, M, N, ks, 1.f, ta ? A + k0 * lda : A + k0, lda, tb ? B + k0 : B + k0 * ldb, ldb,
                   0.f, P + s * MN, N, 1);
    }
  };
  if (num_threads() > 1 && 2.0 * M * N * K >= kParallelFlops) parallel_units(nslabs, [&slabs](int64_t lo, int64_t hi) { slabs(lo, hi); });
  else slabs(0, nslabs);
  for (int64_t i = 0; i < M; ++i) {
    float* acc = P + i * N;
    for (int64_t s = 1; s < nslabs; ++s) {
      const float* part = P + s * MN + i * N;
      for (int64_t j = 0; j < N; ++j) acc[j] += part[j];
    }
    float* c = C + i * ldc;
    if (beta == 0.f) for (int64_t j = 0; j < N; ++j) c[j] = alpha * acc[j];
    else for (int64_t j = 0; j < N; ++j) c[j] = alpha * acc[j] + beta * c[j];
  }
}

// M == 1 or N == 1: one matrix-vector product, out = op(matrix) * vector, then C = alpha out + beta C.
void gemm_gemv(const Isa& isa, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  // M == 1: out[j] = sum_p a[p] op(B)[p, j]; the vector is row 0 of op(A), the matrix op(B) (n = N outputs).
  // N == 1: out[i] = sum_p op(A)[i, p] b[p]; the vector is column 0 of op(B), the matrix op(A) (n = M outputs).
  const bool row = M == 1;
  const int64_t n = row ? N : M;
  float* buf = t_v_buffer.get(static_cast<size_t>(n + K));
  float* out = buf;
  float* tmp = buf + n;
  const float* x;
  if (row) {
    if (!ta) x = A;  // row 0 of A, contiguous
    else {
      for (int64_t p = 0; p < K; ++p) tmp[p] = A[p * lda];
      x = tmp;
    }
  } else {
    if (tb) x = B;  // row 0 of B (N x K) is column 0 of op(B)
    else {
      for (int64_t p = 0; p < K; ++p) tmp[p] = B[p * ldb];
      x = tmp;
    }
  }
  const float* Y = row ? B : A;
  const int64_t ldy = row ? ldb : lda;
  // op(B) = B (row) or op(A) = A^T (column): rows of Y run along the outputs -> gemv_n; else dot products -> gemv_t
  const bool along = row ? !tb : ta;
  auto part = [&](int64_t lo, int64_t hi) {
    const int64_t j0 = lo * 128, j1 = std::min(n, hi * 128);
    if (along) isa.gemv_n(j1 - j0, K, x, Y + j0, ldy, out + j0);
    else isa.gemv_t(j1 - j0, K, x, Y + j0 * ldy, ldy, out + j0);
  };
  // memory-bound: worth waking the pool once the matrix is about 8 MiB; one contiguous chunk per thread
  const int64_t chunks = ceil_div(n, 128);
  const int T = num_threads();
  if (static_cast<double>(n) * K < kGemvParallelElems || T == 1 || chunks == 1) part(0, chunks);
  else run_parallel(chunks, ceil_div(chunks, T), part);
  const int64_t stride = row ? 1 : ldc;
  for (int64_t j = 0; j < n; ++j) {
    float& c = C[j * stride];
    c = beta == 0.f ? alpha * out[j] : alpha * out[j] + beta * c;
  }
}

const Isa& select_isa() {
#ifdef XLSTM_X86
  switch (simd_level()) {
    case SimdLevel::AVX512: return isa_avx512();
    case SimdLevel::AVX2: return isa_avx2();
    default: break;
  }
#endif
  return isa_scalar();
}

}  // namespace

const Isa& isa_scalar() {
  static const Isa isa{"scalar",      kScalarMR,     kScalarNR,    256,          128, 2048, false,
                       scalar_pack_a, scalar_pack_b, scalar_macro, scalar_gemv_n, scalar_gemv_t};
  return isa;
}

}  // namespace gemm_detail

GemmPlan gemm_plan(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb) {
  using namespace gemm_detail;
  GemmPlan p;
  if (M <= 0 || N <= 0 || K <= 0) return p;
  if (gemm_takes_bf16(M, N, K)) {
    p.path = GemmPath::Bf16;
    return p;
  }
  if (static_cast<double>(M) * N * K <= kSmallWork) {
    p.path = GemmPath::Small;
    return p;
  }
  if (M == 1 || N == 1) {
    p.path = GemmPath::Gemv;
    return p;
  }
  p.path = use_k_split(M, N, K) ? GemmPath::KSplit : GemmPath::Blocked;
  if (p.path == GemmPath::KSplit) p.slabs = ceil_div(K, k_slab(K));
  p.a_in_place = a_in_place(select_isa(), trans_a, M, N, lda);
  p.b_in_place = b_in_place(select_isa(), trans_b, M, ldb);
  p.kc = choose_kc(select_isa(), p.a_in_place && trans_a, lda, p.b_in_place, ldb);
  return p;
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  using namespace gemm_detail;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  if (gemm_takes_bf16(M, N, K)) {  // setFloat32MatmulPrecision("medium") on an AMX or AVX512_BF16 machine
    gemm_bf16_rounded(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (static_cast<double>(M) * N * K <= kSmallWork) {
    gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (M == 1 || N == 1) {
    gemm_gemv(select_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  if (use_k_split(M, N, K)) {
    gemm_k_split(select_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  gemm_blocked(select_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, num_threads());
}

void gemm_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                  const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                  float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  auto one = [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b)
      gemm(trans_a, trans_b, M, N, K, alpha, A + b * stride_a, lda, B + b * stride_b, ldb, beta, C + b * stride_c,
           ldc);
  };
  const double flops = 2.0 * M * N * std::max<int64_t>(K, 1);
  // Products too small to thread on their own, or many of them, are spread over the batch (a gemm called inside a
  // pool task runs on that thread alone); a few large ones run one after another, each on every thread.
  const int T = num_threads();
  if (batch > 1 && T > 1 && flops * batch >= gemm_detail::kParallelFlops &&
      (flops < gemm_detail::kParallelFlops || batch >= 4 * T)) {
    parallel_units(batch, [&one](int64_t lo, int64_t hi) { one(lo, hi); });  // equal products: one at a time
  } else {
    one(0, batch);
  }
}

namespace {

// The floats a strided operand's `batch` matrices of rows x cols (leading dimension ld) span from its start.
int64_t operand_span(int64_t batch, int64_t stride, int64_t rows, int64_t cols, int64_t ld) {
  if (rows <= 0 || cols <= 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// A copy of x[0, n) rounded to bfloat16 and widened back to float32.
std::unique_ptr<float[]> rounded_bf16(const float* x, int64_t n) {
  std::unique_ptr<float[]> out(new float[static_cast<size_t>(n > 0 ? n : 1)]);
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &x[i], 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) u |= 0x00400000u;            // NaN: keep it a (quiet) NaN
    else u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;            // round to nearest even
    std::memcpy(&out[i], &u, 4);
  }
  return out;
}

}  // namespace

void gemm_bf16_batched(bool trans_a, bool trans_b, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
                       const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                       float beta, float* C, int64_t ldc, int64_t stride_c) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const auto a = rounded_bf16(A, operand_span(batch, stride_a, trans_a ? K : M, trans_a ? M : K, lda));
  const auto b = rounded_bf16(B, operand_span(batch, stride_b, trans_b ? N : K, trans_b ? K : N, ldb));
  gemm_batched(trans_a, trans_b, batch, M, N, K, alpha, a.get(), lda, stride_a, b.get(), ldb, stride_b, beta, C, ldc,
               stride_c);
}

}  // namespace xlstm
