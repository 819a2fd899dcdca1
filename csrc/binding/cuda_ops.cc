// Binding layer, kernels on device buffers (the ops layer's CUDA tensors): elementwise unary/binary forward and
// backward (cuda/elementwise.cu) and GEMM (cuda/gemm.cu). Same semantics as the CPU exports unary, unaryBackward,
// binary, binaryBackward, gemm, gemmBatched, with device buffers (csrc/binding/device_buffer.h) in place of typed
// arrays; every kernel is enqueued on the package's stream and the call returns without waiting for it (reading a
// result back, cudaDownload, waits). An output may be the same buffer as an input only where the CPU export allows
// it (elementwise forward: in place).
#include <napi.h>

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "device_kernels.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "registry.h"

namespace xlstm {
namespace {

constexpr int64_t kF = static_cast<int64_t>(sizeof(float));

bool absent(const ArgCtx& c, size_t i) { return i >= c.info.Length() || c.info[i].IsUndefined() || c.info[i].IsNull(); }

float optional_float(const ArgCtx& c, size_t i, const char* name, float fallback) {
  if (absent(c, i)) return fallback;
  const double v = require_number(c, i, name);
  if (!std::isfinite(v)) throw_range(c, std::string(name) + " must be finite, got " + std::to_string(v));
  return static_cast<float>(v);
}

UnaryOp unary_op_arg(const ArgCtx& c, size_t i) {
  UnaryOp op;
  if (!parse_unary_op(require_string(c, i, "op"), &op)) throw_range(c, "op must be one of " + unary_op_list());
  return op;
}

BinaryOp binary_op_arg(const ArgCtx& c, size_t i) {
  BinaryOp op;
  if (!parse_binary_op(require_string(c, i, "op"), &op)) throw_range(c, "op must be one of " + binary_op_list());
  return op;
}

std::string floats(const char* what, int64_t n) { return std::string("4*") + what + " (" + std::to_string(n) + " floats)"; }

float* fptr(DeviceBuffer* b) { return b ? static_cast<float*>(b->ptr) : nullptr; }

void require_distinct(const ArgCtx& c, const char* out_name, const DeviceBuffer* out, const char* in_name,
                      const DeviceBuffer* in) {
  if (out && in && out == in) throw_range(c, std::string(out_name) + " and " + in_name + " must be different buffers");
}

// cudaUnaryDev(op, x, out, n, alpha?, beta?)
Napi::Value UnaryDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaUnaryDev"};
  require_count(c, 4);
  const UnaryOp op = unary_op_arg(c, 0);
  const int64_t n = require_int(c, 3, "n", 0, INT64_C(1) << 40);
  DeviceBuffer* x = require_device_buffer(c, 1, "x", n * kF, floats("n", n));
  DeviceBuffer* out = require_device_buffer(c, 2, "out", n * kF, floats("n", n));
  const float a = optional_float(c, 4, "alpha", 1.0f), b = optional_float(c, 5, "beta", 0.0f);
  run_sync(info.Env(), c.fn, [&] { dk::unary(op, fptr(out), fptr(x), a, b, n); });
  return info.Env().Undefined();
}

// cudaUnaryBackwardDev(op, x | null, y | null, dy, dx, n, alpha?)
Napi::Value UnaryBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaUnaryBackwardDev"};
  require_count(c, 6);
  const UnaryOp op = unary_op_arg(c, 0);
  const int64_t n = require_int(c, 5, "n", 0, INT64_C(1) << 40);
  const int reads = ew::unary_backward_reads(op);
  const std::string name = unary_op_name(op);
  if ((reads & ew::kReadsX) && absent(c, 1))
    throw_type(c, "x must be a device buffer: the backward of \"" + name + "\" reads the forward input");
  if ((reads & ew::kReadsY) && absent(c, 2))
    throw_type(c, "y must be a device buffer: the backward of \"" + name + "\" reads the forward output");
  DeviceBuffer* x = optional_device_buffer(c, 1, "x", n * kF, floats("n", n));
  DeviceBuffer* y = optional_device_buffer(c, 2, "y", n * kF, floats("n", n));
  DeviceBuffer* dy = require_device_buffer(c, 3, "dy", n * kF, floats("n", n));
  DeviceBuffer* dx = require_device_buffer(c, 4, "dx", n * kF, floats("n", n));
  require_distinct(c, "dx", dx, "x", x);
  require_distinct(c, "dx", dx, "y", y);
  const float a = optional_float(c, 6, "alpha", 1.0f);
  run_sync(info.Env(), c.fn,
           [&] { XLSTM_DEVICE_CALL(elementwise_unary_backward, op, fptr(dx), fptr(x), fptr(y), fptr(dy), a, n); });
  return info.Env().Undefined();
}

std::vector<int64_t> shape_arg(const ArgCtx& c, size_t i, const char* name) {
  std::vector<int64_t> s = require_int_array(c, i, name, 0, INT64_C(1) << 40);
  if (s.size() > 16) throw_range(c, std::string(name) + " has " + std::to_string(s.size()) + " dimensions, at most 16");
  checked_product(c, name, s);
  return s;
}

struct BinaryDevArgs {
  BinaryOp op;
  DeviceBuffer *a, *b;
  BroadcastPlan plan;
};

BinaryDevArgs binary_inputs(const ArgCtx& c) {
  BinaryDevArgs r;
  r.op = binary_op_arg(c, 0);
  std::vector<int64_t> as = shape_arg(c, 2, "aShape"), bs = shape_arg(c, 4, "bShape");
  const int64_t na = checked_product(c, "aShape", as), nb = checked_product(c, "bShape", bs);
  r.a = require_device_buffer(c, 1, "a", na * kF, floats("numel(aShape)", na));
  r.b = require_device_buffer(c, 3, "b", nb * kF, floats("numel(bShape)", nb));
  try {
    r.plan = make_broadcast_plan(as.data(), static_cast<int>(as.size()), bs.data(), static_cast<int>(bs.size()),
                                 nullptr);
  } catch (const std::invalid_argument& e) {
    throw_range(c, std::string("aShape and bShape: ") + e.what());
  }
  return r;
}

// cudaBinaryDev(op, a, aShape, b, bShape, out): out in the broadcast shape
Napi::Value BinaryDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBinaryDev"};
  require_count(c, 6);
  BinaryDevArgs r = binary_inputs(c);
  DeviceBuffer* out = require_device_buffer(c, 5, "out", r.plan.numel * kF, floats("numel(broadcast shape)", r.plan.numel));
  // in place only when out is an operand of the output's own size (no element is read after it was written)
  if ((out == r.a && r.a->bytes < r.plan.numel * kF) || (out == r.b && r.b->bytes < r.plan.numel * kF))
    throw_range(c, "out may be an operand only when that operand has the broadcast shape");
  run_sync(info.Env(), c.fn, [&] { dk::binary(r.op, fptr(out), fptr(r.a), fptr(r.b), r.plan); });
  return info.Env().Undefined();
}

// cudaBinaryBackwardDev(op, a, aShape, b, bShape, dy, da | null, db | null): gradients in the broadcast shape
Napi::Value BinaryBackwardDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaBinaryBackwardDev"};
  require_count(c, 8);
  BinaryDevArgs r = binary_inputs(c);
  const int64_t n = r.plan.numel;
  DeviceBuffer* dy = require_device_buffer(c, 5, "dy", n * kF, floats("numel(broadcast shape)", n));
  DeviceBuffer* da = optional_device_buffer(c, 6, "da", n * kF, floats("numel(broadcast shape)", n));
  DeviceBuffer* db = optional_device_buffer(c, 7, "db", n * kF, floats("numel(broadcast shape)", n));
  for (DeviceBuffer* o : {da, db}) {
    require_distinct(c, o == da ? "da" : "db", o, "a", r.a);
    require_distinct(c, o == da ? "da" : "db", o, "b", r.b);
    require_distinct(c, o == da ? "da" : "db", o, "dy", dy);
  }
  require_distinct(c, "da", da, "db", db);
  run_sync(info.Env(), c.fn, [&] {
    XLSTM_DEVICE_CALL(elementwise_binary_backward, r.op, fptr(da), fptr(db), fptr(r.a), fptr(r.b), fptr(dy), r.plan);
  });
  return info.Env().Undefined();
}

// Floats a row-major (rows x cols) operand with leading dimension ld spans (0 when empty); RangeError when ld < cols.
int64_t extent(const ArgCtx& c, const char* name, int64_t rows, int64_t cols, int64_t ld) {
  if (rows == 0 || cols == 0) return 0;
  if (ld < cols) throw_range(c, std::string("ld") + name + " (" + std::to_string(ld) + ") must be at least " + std::to_string(cols));
  return checked_product(c, "rows*ld", {rows - 1, ld}) + cols;
}

// cudaGemmDev(transA, transB, batch, M, N, K, alpha, a, aOffset, lda, strideA, b, bOffset, ldb, strideB, beta, c,
// cOffset, ldc, strideC): for each of the `batch` products, C_i = alpha op(A_i) op(B_i) + beta C_i, row-major with
// leading dimensions lda/ldb/ldc (elements), A_i starting at element aOffset + i*strideA of a (stride 0: one A for
// all), likewise B and C. The C_i must not overlap: either one after another (strideC >= (M-1)*ldc + N) or side by
// side within each row (strideC >= N and (batch-1)*strideC + N <= ldc).
Napi::Value GemmDev(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaGemmDev"};
  require_count(c, 20);
  const bool ta = require_bool(c, 0, "transA"), tb = require_bool(c, 1, "transB");
  const int64_t lim = INT64_C(1) << 31, big = INT64_C(1) << 40;
  const int64_t batch = require_int(c, 2, "batch", 1, lim);
  const int64_t M = require_int(c, 3, "M", 0, lim), N = require_int(c, 4, "N", 0, lim), K = require_int(c, 5, "K", 0, lim);
  const double alpha = require_number(c, 6, "alpha");
  const int64_t ao = require_int(c, 8, "aOffset", 0, big), lda = require_int(c, 9, "lda", 0, big), sa = require_int(c, 10, "strideA", 0, big);
  const int64_t bo = require_int(c, 12, "bOffset", 0, big), ldb = require_int(c, 13, "ldb", 0, big), sb = require_int(c, 14, "strideB", 0, big);
  const double beta = require_number(c, 15, "beta");
  const int64_t co = require_int(c, 17, "cOffset", 0, big), ldc = require_int(c, 18, "ldc", 0, big), sc = require_int(c, 19, "strideC", 0, big);
  if (!std::isfinite(alpha) || !std::isfinite(beta)) throw_range(c, "alpha and beta must be finite");
  const int64_t ea = extent(c, "a", ta ? K : M, ta ? M : K, lda);
  const int64_t eb = extent(c, "b", tb ? N : K, tb ? K : N, ldb);
  const int64_t ec = extent(c, "c", M, N, ldc);
  if (batch > 1 && M > 0 && N > 0) {
    const bool sequential = sc >= checked_product(c, "(M-1)*ldc", {M - 1, ldc}) + N;
    const bool side_by_side = sc >= N && checked_product(c, "(batch-1)*strideC", {batch - 1, sc}) + N <= ldc;
    if (!sequential && !side_by_side)
      throw_range(c, "strideC (" + std::to_string(sc) + ") makes the batch's C blocks overlap (M=" + std::to_string(M) +
                         ", N=" + std::to_string(N) + ", ldc=" + std::to_string(ldc) + ")");
  }
  auto need = [&](int64_t off, int64_t stride, int64_t ext) {
    return ext == 0 ? int64_t{0} : off + checked_product(c, "(batch-1)*stride", {batch - 1, stride}) + ext;
  };
  DeviceBuffer* A = require_device_buffer(c, 7, "a", need(ao, sa, ea) * kF, floats("aOffset + (batch-1)*strideA + extent", need(ao, sa, ea)));
  DeviceBuffer* B = require_device_buffer(c, 11, "b", need(bo, sb, eb) * kF, floats("bOffset + (batch-1)*strideB + extent", need(bo, sb, eb)));
  DeviceBuffer* C = require_device_buffer(c, 16, "c", need(co, sc, ec) * kF, floats("cOffset + (batch-1)*strideC + extent", need(co, sc, ec)));
  require_distinct(c, "c", C, "a", A);
  require_distinct(c, "c", C, "b", B);
  // optional bf16: A and B rounded to bfloat16, float32 accumulation on tensor cores (the ops' bf16 autocast)
  const bool bf16 = !absent(c, 20) && require_bool(c, 20, "bf16");
  const float al = static_cast<float>(alpha), be = static_cast<float>(beta);
  run_sync(info.Env(), c.fn, [&] {
    dk::gemm(ta, tb, batch, M, N, K, al, fptr(A) + ao, lda, sa, fptr(B) + bo, ldb, sb, be, fptr(C) + co, ldc, sc, bf16);
  });
  return info.Env().Undefined();
}

// cudaCopy2D(dst, dstOffset, dstPitch, src, srcOffset, srcPitch, widthBytes, height): `height` rows of widthBytes
// bytes, row r from src + srcOffset + r*srcPitch to dst + dstOffset + r*dstPitch (all in bytes; enqueued).
Napi::Value Copy2D(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCopy2D"};
  require_count(c, 8);
  const int64_t big = INT64_C(1) << 50;
  DeviceBuffer* d = require_device_buffer(c, 0, "dst", -1);
  const int64_t doff = require_int(c, 1, "dstOffset", 0, big), dp = require_int(c, 2, "dstPitch", 0, big);
  DeviceBuffer* s = require_device_buffer(c, 3, "src", -1);
  const int64_t soff = require_int(c, 4, "srcOffset", 0, big), sp = require_int(c, 5, "srcPitch", 0, big);
  const int64_t w = require_int(c, 6, "widthBytes", 0, big), h = require_int(c, 7, "height", 0, big);
  if (w == 0 || h == 0) return info.Env().Undefined();
  if (dp < w || sp < w) throw_range(c, "dstPitch and srcPitch must be at least widthBytes");
  const int64_t dend = doff + checked_product(c, "(height-1)*dstPitch", {h - 1, dp}) + w;
  const int64_t send = soff + checked_product(c, "(height-1)*srcPitch", {h - 1, sp}) + w;
  if (dend > d->bytes) throw_range(c, "dst: the copy ends at byte " + std::to_string(dend) + ", past its " + std::to_string(d->bytes) + " bytes");
  if (send > s->bytes) throw_range(c, "src: the copy ends at byte " + std::to_string(send) + ", past its " + std::to_string(s->bytes) + " bytes");
  require_distinct(c, "dst", d, "src", s);
  run_sync(info.Env(), c.fn, [&] {
    cuda::copy_2d(static_cast<char*>(d->ptr) + doff, static_cast<size_t>(dp), static_cast<const char*>(s->ptr) + soff,
                  static_cast<size_t>(sp), static_cast<size_t>(w), static_cast<size_t>(h));
  });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaUnaryDev", Napi::Function::New(env, UnaryDev, "cudaUnaryDev"));
  exports.Set("cudaUnaryBackwardDev", Napi::Function::New(env, UnaryBackwardDev, "cudaUnaryBackwardDev"));
  exports.Set("cudaBinaryDev", Napi::Function::New(env, BinaryDev, "cudaBinaryDev"));
  exports.Set("cudaBinaryBackwardDev", Napi::Function::New(env, BinaryBackwardDev, "cudaBinaryBackwardDev"));
  exports.Set("cudaGemmDev", Napi::Function::New(env, GemmDev, "cudaGemmDev"));
  exports.Set("cudaCopy2D", Napi::Function::New(env, Copy2D, "cudaCopy2D"));
}

}  // namespace

XLSTM_REGISTER(cuda_ops, Init);

}  // namespace xlstm
