// Reduced-precision float32 matrix products: see matmul_precision.h.
#include "kernels/matmul_precision.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/aligned_vector.h"
#include "kernels/bf16.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

// Rows of op(A) from which the bf16 path is taken: it rounds a copy of op(B) (N x K) per call, which short products
// cannot amortise. At 128 rows it already pays: 128 x 1024 x 1024 (nt) ran at 771 against 160 GFLOP/s in float32
// (2 threads of a Sapphire Rapids VM); shorter products were not measured and stay float32.
constexpr int64_t kBf16MinRows = 128;

int precision_from_env() {
  const char* e = std::getenv("XLSTM_MATMUL_PRECISION");
  return e && std::strcmp(e, "medium") == 0 ? static_cast<int>(MatmulPrecision::Medium) : static_cast<int>(MatmulPrecision::Highest);
}

std::atomic<int> g_precision{precision_from_env()};

using Bf16Scratch = std::vector<uint16_t, CacheAlignedAllocator<uint16_t, false>>;

// w [N, K] = bf16(op(B)ᵀ): B is [N, K] (trans_b, rows ldb apart) or [K, N] (columns of w are rows of B)
void round_b_transposed(uint16_t* w, bool trans_b, int64_t N, int64_t K, const float* B, int64_t ldb) {
  if (trans_b)
    parallel_for(N, std::max<int64_t>(1, 16384 / K),
                 [&](int64_t lo, int64_t hi) { bf16_detail::round_rows_bf16(w, B, ldb, K, lo, hi); });
  else
    parallel_for((N + 15) / 16, 1,
                 [&](int64_t lo, int64_t hi) { bf16_detail::round_transposed_bf16(w, B, ldb, N, K, lo, hi); });
}

// x [M, K] = A's rows (lda apart) as contiguous float32 rows
void gather_a(float* x, int64_t M, int64_t K, const float* A, int64_t lda) {
  parallel_for(M, std::max<int64_t>(1, 16384 / K), [&](int64_t lo, int64_t hi) {
    for (int64_t m = lo; m < hi; ++m) std::memcpy(x + m * K, A + m * lda, sizeof(float) * K);
  });
}

}  // namespace

MatmulPrecision matmul_precision() { return static_cast<MatmulPrecision>(g_precision.load(std::memory_order_relaxed)); }

void set_matmul_precision(MatmulPrecision p) { g_precision.store(static_cast<int>(p), std::memory_order_relaxed); }

bool gemm_takes_bf16(int64_t M, int64_t N, int64_t K) {
  return matmul_precision() == MatmulPrecision::Medium && M >= kBf16MinRows && N >= 32 && K >= 32 &&
         (bf16_amx_available() || bf16_dot_available());
}

bool medium_on_bf16_pairs() { return matmul_precision() == MatmulPrecision::Medium && bf16_dot_available(); }

void gemm_bf16_rounded(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                       int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
#if defined(XLSTM_X86)
  if (!bf16_amx_available())
    return bf16_detail::gemm_bf16_pairs(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
  Bf16Scratch w(static_cast<size_t>(N * K));
  round_b_transposed(w.data(), trans_b, N, K, B, ldb);
  // the product straight into C when nothing else is asked of it, else into y and then C = alpha y + beta C
  const bool direct = ldc == N && alpha == 1.f && beta == 0.f;
  ScratchFloats y;
  if (!direct) y.resize(static_cast<size_t>(M * N));
  float* out = direct ? C : y.data();
  if (trans_a) {
    // A is [K, M]: its rows hold the pairs of inputs the tiles take, packed straight from them
    Bf16Scratch xp(static_cast<size_t>(bf16_detail::pack_x_vnni_size(M, K)));
    parallel_for((M + 15) / 16, 1,
                 [&](int64_t lo, int64_t hi) { bf16_detail::pack_kmajor_vnni(xp.data(), A, lda, M, K, lo, hi); });
    bf16_detail::linear_amx_packed(out, xp.data(), w.data(), nullptr, M, K, N);
  } else {
    ScratchFloats xa;
    const float* x = A;
    if (lda != K) {
      xa.resize(static_cast<size_t>(M * K));
      gather_a(xa.data(), M, K, A, lda);
      x = xa.data();
    }
    bf16_linear(out, x, w.data(), nullptr, M, K, N, true);
  }
  if (direct) return;
  parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t lo, int64_t hi) {
    for (int64_t m = lo; m < hi; ++m) {
      float* c = C + m * ldc;
      const float* yr = y.data() + m * N;
      if (beta == 0.f)
        for (int64_t n = 0; n < N; ++n) c[n] = alpha * yr[n];
      else
        for (int64_t n = 0; n < N; ++n) c[n] = alpha * yr[n] + beta * c[n];
    }
  });
}

}  // namespace xlstm
