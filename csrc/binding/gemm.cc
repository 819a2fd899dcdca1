// Binding layer, gemm family: gemm, gemmBatched, gemmAsync, gemmStrided (CPU, csrc/kernels/gemm.cc) and the CUDA
// twin's host entry points cudaGemmHost, cudaGemmTileCoverage (cuda/gemm.cu). Operands are contiguous row-major
// Float32Arrays (gemmStrided: rows lda/ldb/ldc elements apart): a is M x K (K x M with transA), b is K x N (N x K
// with transB), c is M x N and is updated in place (c = alpha op(a) op(b) + beta c; beta == 0 ignores c's old
// values). c must not overlap a or b.
// gemmAsync runs on a libuv worker and resolves when c is written; a, b and c must not be touched meanwhile.
#include <napi.h>

#include <string>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/device_buffer.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/gemm.h"
#include "kernels/matmul_precision.h"

namespace xlstm {
namespace {

constexpr int64_t kMaxDim = INT64_C(1) << 40;

struct GemmArgs {
  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;
  int64_t lda() const { return ta ? M : K; }
  int64_t ldb() const { return tb ? K : N; }
};

// gemm(transA, transB, M, N, K, alpha, a, b, beta, c): arguments 0..9.
GemmArgs parse_gemm(const ArgCtx& c) {
  require_count(c, 10);
  GemmArgs g;
  g.ta = require_bool(c, 0, "transA");
  g.tb = require_bool(c, 1, "transB");
  g.M = require_int(c, 2, "M", 0, kMaxDim);
  g.N = require_int(c, 3, "N", 0, kMaxDim);
  g.K = require_int(c, 4, "K", 0, kMaxDim);
  g.alpha = static_cast<float>(require_number(c, 5, "alpha"));
  const int64_t na = checked_product(c, "a", {g.M, g.K});
  const int64_t nb = checked_product(c, "b", {g.K, g.N});
  const int64_t nc = checked_product(c, "c", {g.M, g.N});
  g.a = require_f32(c, 6, "a", na, describe("M*K", {{"M", g.M}, {"K", g.K}}));
  g.b = require_f32(c, 7, "b", nb, describe("K*N", {{"K", g.K}, {"N", g.N}}));
  g.beta = static_cast<float>(require_number(c, 8, "beta"));
  g.c = require_f32(c, 9, "c", nc, describe("M*N", {{"M", g.M}, {"N", g.N}}));
  require_no_overlap(c, "c", g.c, nc * sizeof(float), "a", g.a, na * sizeof(float));
  require_no_overlap(c, "c", g.c, nc * sizeof(float), "b", g.b, nb * sizeof(float));
  return g;
}

Napi::Value Gemm(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gemm"};
  GemmArgs g = parse_gemm(c);
  run_sync(info.Env(), "gemm", [&] {
    gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, g.a, g.lda(), g.b, g.ldb(), g.beta, g.c, g.N);
  });
  return info.Env().Undefined();
}

Napi::Value GemmAsync(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gemmAsync"};
  GemmArgs g = parse_gemm(c);
  return run_async(
      info.Env(), "gemmAsync",
      [g] { gemm(g.ta, g.tb, g.M, g.N, g.K, g.alpha, g.a, g.lda(), g.b, g.ldb(), g.beta, g.c, g.N); },
      {info[6], info[7], info[9]});
}

// A strided operand: `rows` rows of `cols` used elements, `ld` apart (ld >= cols). Returns its data and sets *span
// to the elements it covers, (rows-1)*ld + cols (0 when empty); RangeError naming it when the array is shorter.
const float* require_strided(const ArgCtx& c, size_t i, const char* name, size_t ld_i, const char* ld_name,
                             int64_t rows, int64_t cols, const char* rows_name, const char* cols_name,
                             int64_t* ld_out, int64_t* span) {
  const int64_t ld = require_int(c, ld_i, ld_name, 1, kMaxDim);
  if (ld < cols)
    throw_range(c, std::string(ld_name) + " must be at least " + cols_name + " = " + std::to_string(cols) +
                       " (the row length of " + name + "), got " + std::to_string(ld));
  *ld_out = ld;
  *span = rows == 0 || cols == 0 ? 0 : checked_product(c, name, {rows - 1, ld}) + cols;
  const float* p = require_f32(c, i, name, -1);
  const int64_t len = typed_length(c, i, name);
  if (len < *span)
    throw_range(c, std::string(name) + " has " + std::to_string(len) + " elements, expected at least (" + rows_name +
                       "-1)*" + ld_name + " + " + cols_name + " = " + std::to_string(*span) + " (" + rows_name + "=" +
                       std::to_string(rows) + ", " + cols_name + "=" + std::to_string(cols) + ", " + ld_name + "=" +
                       std::to_string(ld) + ")");
  return p;
}

// gemmStrided(transA, transB, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc): leading dimensions as in BLAS
// (row-major): a's rows are lda apart (K x M rows of M with transA, else M rows of K), and so on.
Napi::Value GemmStrided(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gemmStrided"};
  require_count(c, 13);
  const bool ta = require_bool(c, 0, "transA");
  const bool tb = require_bool(c, 1, "transB");
  const int64_t M = require_int(c, 2, "M", 0, kMaxDim);
  const int64_t N = require_int(c, 3, "N", 0, kMaxDim);
  const int64_t K = require_int(c, 4, "K", 0, kMaxDim);
  const float alpha = static_cast<float>(require_number(c, 5, "alpha"));
  const float beta = static_cast<float>(require_number(c, 10, "beta"));
  int64_t lda, ldb, ldc, na, nb, nc;
  const float* a = ta ? require_strided(c, 6, "a", 7, "lda", K, M, "K", "M", &lda, &na)
                      : require_strided(c, 6, "a", 7, "lda", M, K, "M", "K", &lda, &na);
  const float* b = tb ? require_strided(c, 8, "b", 9, "ldb", N, K, "N", "K", &ldb, &nb)
                      : require_strided(c, 8, "b", 9, "ldb", K, N, "K", "N", &ldb, &nb);
  float* C = const_cast<float*>(require_strided(c, 11, "c", 12, "ldc", M, N, "M", "N", &ldc, &nc));
  require_no_overlap(c, "c", C, nc * sizeof(float), "a", a, na * sizeof(float));
  require_no_overlap(c, "c", C, nc * sizeof(float), "b", b, nb * sizeof(float));
  run_sync(info.Env(), "gemmStrided", [&] { gemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, C, ldc); });
  return info.Env().Undefined();
}

// gemmPlan(transA, transB, M, N, K, lda, ldb): how gemm() computes this shape at the current SIMD level.
Napi::Value GemmPlanFn(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gemmPlan"};
  require_count(c, 7);
  const bool ta = require_bool(c, 0, "transA");
  const bool tb = require_bool(c, 1, "transB");
  const int64_t M = require_int(c, 2, "M", 0, kMaxDim);
  const int64_t N = require_int(c, 3, "N", 0, kMaxDim);
  const int64_t K = require_int(c, 4, "K", 0, kMaxDim);
  const int64_t lda = require_int(c, 5, "lda", 1, kMaxDim);
  const int64_t ldb = require_int(c, 6, "ldb", 1, kMaxDim);
  const GemmPlan p = gemm_plan(ta, tb, M, N, K, lda, ldb);
  static const char* const kPaths[] = {"scale", "small", "gemv", "blocked", "kSplit", "bf16"};
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", kPaths[static_cast<int>(p.path)]);
  o.Set("aInPlace", p.a_in_place);
  o.Set("bInPlace", p.b_in_place);
  o.Set("kc", static_cast<double>(p.kc));
  o.Set("slabs", static_cast<double>(p.slabs));
  return o;
}

// The batch slices of an operand (batch matrices of `per` elements, `stride` apart) must lie inside its array.
void require_slices(const ArgCtx& c, size_t i, const char* name, const char* stride_name, int64_t batch, int64_t per,
                    int64_t stride, const char* per_formula, std::initializer_list<std::pair<const char*, int64_t>> sizes,
                    const float** out_ptr, int64_t* out_len) {
  *out_ptr = require_f32(c, i, name, -1);
  const int64_t len = typed_length(c, i, name);
  *out_len = len;
  if (batch == 0 || per == 0) return;
  const int64_t last = checked_product(c, stride_name, {batch - 1, stride});
  const int64_t need = last + per;
  if (need > len) {
    std::string msg = std::string(name) + " has " + std::to_string(len) + " elements, but batch entry " +
                      std::to_string(batch - 1) + " needs (batch-1)*" + stride_name + " + " + per_formula + " = " +
                      std::to_string(need) + " (batch=" + std::to_string(batch) + ", " + stride_name + "=" +
                      std::to_string(stride);
    for (auto& [n, v] : sizes) msg += std::string(", ") + n + "=" + std::to_string(v);
    throw_range(c, msg + ")");
  }
}

// gemmBatched(transA, transB, batch, M, N, K, alpha, a, strideA, b, strideB, beta, c, strideC)
Napi::Value GemmBatched(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "gemmBatched"};
  require_count(c, 14);
  const bool ta = require_bool(c, 0, "transA");
  const bool tb = require_bool(c, 1, "transB");
  const int64_t batch = require_int(c, 2, "batch", 0, kMaxDim);
  const int64_t M = require_int(c, 3, "M", 0, kMaxDim);
  const int64_t N = require_int(c, 4, "N", 0, kMaxDim);
  const int64_t K = require_int(c, 5, "K", 0, kMaxDim);
  const float alpha = static_cast<float>(require_number(c, 6, "alpha"));
  const int64_t sa = require_int(c, 8, "strideA", 0, kMaxDim);
  const int64_t sb = require_int(c, 10, "strideB", 0, kMaxDim);
  const float beta = static_cast<float>(require_number(c, 11, "beta"));
  const int64_t sc = require_int(c, 13, "strideC", 0, kMaxDim);
  const int64_t per_a = checked_product(c, "a", {M, K}), per_b = checked_product(c, "b", {K, N});
  const int64_t per_c = checked_product(c, "c", {M, N});
  const float *a, *b, *cc;
  int64_t len_a, len_b, len_c;
  require_slices(c, 7, "a", "strideA", batch, per_a, sa, "M*K", {{"M", M}, {"K", K}}, &a, &len_a);
  require_slices(c, 9, "b", "strideB", batch, per_b, sb, "K*N", {{"K", K}, {"N", N}}, &b, &len_b);
  require_slices(c, 12, "c", "strideC", batch, per_c, sc, "M*N", {{"M", M}, {"N", N}}, &cc, &len_c);
  if (batch > 1 && per_c > 0 && sc < per_c)
    throw_range(c, "strideC must be at least M*N = " + std::to_string(per_c) + " (M=" + std::to_string(M) +
                       ", N=" + std::to_string(N) + ") so that the batch entries of c do not overlap, got " +
                       std::to_string(sc));
  float* C = const_cast<float*>(cc);
  require_no_overlap(c, "c", C, len_c * sizeof(float), "a", a, len_a * sizeof(float));
  require_no_overlap(c, "c", C, len_c * sizeof(float), "b", b, len_b * sizeof(float));
  run_sync(info.Env(), "gemmBatched", [&] {
    gemm_batched(ta, tb, batch, M, N, K, alpha, a, ta ? M : K, sa, b, tb ? K : N, sb, beta, C, N, sc);
  });
  return info.Env().Undefined();
}

// cudaGemmHost(transA, transB, M, N, K, alpha, a, b, beta, c): the CUDA kernel on device 0 (copies in and out).
Napi::Value CudaGemmHost(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmHost"};
  GemmArgs g = parse_gemm(c);
  require_real_cuda_device(c);
  run_sync(info.Env(), "cudaGemmHost", [&] { cuda::gemm_host(g.ta, g.tb, g.M, g.N, g.K, g.alpha, g.a, g.b, g.beta, g.c); });
  return info.Env().Undefined();
}

// cudaGemmTileCoverage(transA, transB, M, N, K, counts): host run of the CUDA kernel's tile-index helpers.
Napi::Value CudaGemmTileCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmTileCoverage"};
  require_count(c, 6);
  const bool ta = require_bool(c, 0, "transA");
  const bool tb = require_bool(c, 1, "transB");
  const int64_t M = require_int(c, 2, "M", 0, INT64_C(1) << 20);
  const int64_t N = require_int(c, 3, "N", 0, INT64_C(1) << 20);
  const int64_t K = require_int(c, 4, "K", 0, INT64_C(1) << 20);
  const int64_t n = checked_product(c, "counts", {M, N});
  int32_t* counts = require_i32(c, 5, "counts", n, describe("M*N", {{"M", M}, {"N", N}}));
  int64_t bad = 0;
  run_sync(info.Env(), "cudaGemmTileCoverage", [&] { bad = cuda::gemm_tile_coverage(ta, tb, M, N, K, counts); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// cudaGemmBf16TileCoverage(transA, transB, M, N, counts): host run of the bf16 tensor-core kernel's tile helpers.
Napi::Value CudaGemmBf16TileCoverage(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmBf16TileCoverage"};
  require_count(c, 5);
  const bool ta = require_bool(c, 0, "transA");
  const bool tb = require_bool(c, 1, "transB");
  const int64_t M = require_int(c, 2, "M", 0, INT64_C(1) << 20);
  const int64_t N = require_int(c, 3, "N", 0, INT64_C(1) << 20);
  const int64_t n = checked_product(c, "counts", {M, N});
  int32_t* counts = require_i32(c, 4, "counts", n, describe("M*N", {{"M", M}, {"N", N}}));
  int64_t bad = 0;
  run_sync(info.Env(), c.fn, [&] { bad = cuda::gemm_bf16_tile_coverage(ta, tb, M, N, counts); });
  return Napi::Number::New(info.Env(), static_cast<double>(bad));
}

// cudaGemmSplitPlan(batch, M, N, K, bf16): the split-K cut the CUDA GEMM (bf16: the tensor-core kernel) makes of
// that product, { splits, chunk } (splits 1, chunk 0: not cut). Needs a CUDA build, not a GPU.
Napi::Value CudaGemmSplitPlan(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmSplitPlan"};
  require_count(c, 5);
  const int64_t lim = INT64_C(1) << 31;
  const int64_t batch = require_int(c, 0, "batch", 1, lim);
  const int64_t M = require_int(c, 1, "M", 0, lim), N = require_int(c, 2, "N", 0, lim), K = require_int(c, 3, "K", 0, lim);
  const bool bf16 = require_bool(c, 4, "bf16");
  int64_t splits = 1, chunk = 0;
  run_sync(info.Env(), c.fn, [&] { cuda::gemm_split_k_plan(batch, M, N, K, bf16, &splits, &chunk); });
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("splits", Napi::Number::New(info.Env(), static_cast<double>(splits)));
  out.Set("chunk", Napi::Number::New(info.Env(), static_cast<double>(chunk)));
  return out;
}

// cudaGemmBf16Tile(batch, M, N): the C tile [rows, columns] the bf16 tensor-core GEMM launches a batch x M x N
// product with under the current cudaSetGemmBf16Tiles setting. Needs a CUDA build, not a GPU.
Napi::Value CudaGemmBf16Tile(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmBf16Tile"};
  require_count(c, 3);
  const int64_t lim = INT64_C(1) << 24;  // the tile counts' product stays far inside int64
  const int64_t batch = require_int(c, 0, "batch", 1, lim);
  const int64_t M = require_int(c, 1, "M", 0, lim), N = require_int(c, 2, "N", 0, lim);
  int rows = 0, cols = 0;
  run_sync(info.Env(), c.fn, [&] { cuda::gemm_bf16_tile(batch, M, N, &rows, &cols); });
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(uint32_t{0}, Napi::Number::New(info.Env(), rows));
  out.Set(uint32_t{1}, Napi::Number::New(info.Env(), cols));
  return out;
}

// cudaSetGemmSplitK(enabled) -> the previous setting: whether the CUDA GEMMs cut long K over few tiles
// (cuda::set_gemm_split_k; process-wide, device launches and host replays alike; for A/B measurements).
Napi::Value CudaSetGemmSplitK(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetGemmSplitK"};
  require_count(c, 1);
  const bool on = require_bool(c, 0, "enabled");
  bool prev = true;
  run_sync(info.Env(), c.fn, [&] { prev = cuda::set_gemm_split_k(on); });
  return Napi::Boolean::New(info.Env(), prev);
}

// A process-wide switch between two named settings (argument `arg`: `off` or `on`, set(true) for `on`); returns the
// previous setting's name.
Napi::Value switch_setting(const Napi::CallbackInfo& info, const char* fn, const char* arg, const char* off, const char* on, bool (*set)(bool)) {
  ArgCtx c{info, fn};
  const bool value = require_choice(c, 0, arg, {off, on}) == 1;
  bool prev = false;
  run_sync(info.Env(), c.fn, [&] { prev = set(value); });
  return Napi::String::New(info.Env(), prev ? on : off);
}

// cudaSetGemmForm(form) -> the previous form: "tiled" (default) or "grouped", the kernel of the CUDA float32 GEMM's
// uncut products (cuda::set_gemm_f32_tiled; process-wide; the same bits either way; for A/B measurements).
Napi::Value CudaSetGemmForm(const Napi::CallbackInfo& info) {
  return switch_setting(info, "cudaSetGemmForm", "form", "grouped", "tiled", cuda::set_gemm_f32_tiled);
}

// cudaSetGemmBf16Tiles(tiles) -> the previous setting: "64x64" (default) or "auto", whether the bf16 tensor-core
// GEMM makes its shape-based choices: 64 x 128 tiles for products of many tiles, long K cut for products of a few
// waves (cuda::set_gemm_bf16_wide; process-wide; for A/B measurements until timed on a GPU).
Napi::Value CudaSetGemmBf16Tiles(const Napi::CallbackInfo& info) {
  return switch_setting(info, "cudaSetGemmBf16Tiles", "tiles", "64x64", "auto", cuda::set_gemm_bf16_wide);
}

// setFloat32MatmulPrecision(precision) -> the previous one: "highest" (default) or "medium" (matmul_precision.h:
// bf16 operands, float32 sums, on AMX where the CPU has it; process-wide)
Napi::Value SetFloat32MatmulPrecision(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "setFloat32MatmulPrecision"};
  const MatmulPrecision prev = matmul_precision();
  set_matmul_precision(require_choice(c, 0, "precision", {"highest", "medium"}) == 1 ? MatmulPrecision::Medium : MatmulPrecision::Highest);
  return Napi::String::New(info.Env(), prev == MatmulPrecision::Medium ? "medium" : "highest");
}

Napi::Value GetFloat32MatmulPrecision(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), matmul_precision() == MatmulPrecision::Medium ? "medium" : "highest");
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("gemm", Napi::Function::New(env, Gemm, "gemm"));
  exports.Set("setFloat32MatmulPrecision", Napi::Function::New(env, SetFloat32MatmulPrecision, "setFloat32MatmulPrecision"));
  exports.Set("getFloat32MatmulPrecision", Napi::Function::New(env, GetFloat32MatmulPrecision, "getFloat32MatmulPrecision"));
  exports.Set("gemmAsync", Napi::Function::New(env, GemmAsync, "gemmAsync"));
  exports.Set("gemmBatched", Napi::Function::New(env, GemmBatched, "gemmBatched"));
  exports.Set("gemmStrided", Napi::Function::New(env, GemmStrided, "gemmStrided"));
  exports.Set("gemmPlan", Napi::Function::New(env, GemmPlanFn, "gemmPlan"));
  exports.Set("cudaGemmHost", Napi::Function::New(env, CudaGemmHost, "cudaGemmHost"));
  exports.Set("cudaGemmTileCoverage", Napi::Function::New(env, CudaGemmTileCoverage, "cudaGemmTileCoverage"));
  exports.Set("cudaGemmBf16TileCoverage", Napi::Function::New(env, CudaGemmBf16TileCoverage, "cudaGemmBf16TileCoverage"));
  exports.Set("cudaGemmSplitPlan", Napi::Function::New(env, CudaGemmSplitPlan, "cudaGemmSplitPlan"));
  exports.Set("cudaGemmBf16Tile", Napi::Function::New(env, CudaGemmBf16Tile, "cudaGemmBf16Tile"));
  exports.Set("cudaSetGemmSplitK", Napi::Function::New(env, CudaSetGemmSplitK, "cudaSetGemmSplitK"));
  exports.Set("cudaSetGemmForm", Napi::Function::New(env, CudaSetGemmForm, "cudaSetGemmForm"));
  exports.Set("cudaSetGemmBf16Tiles", Napi::Function::New(env, CudaSetGemmBf16Tiles, "cudaSetGemmBf16Tiles"));
}

}  // namespace

XLSTM_REGISTER(gemm, Init);

}  // namespace xlstm
