// Binding layer: the fused mLSTM layer (csrc/kernels/mlstm_layer.h).
// JS: mlstmLayerForward(y, x, ...13 params, B, S, E, Di, NH, Bq, K, chunk, cellEps, normEps, keepSaved
//                       [, lnW, lnEps, lnResidual])
//         -> a handle on the saved activations (keepSaved) or undefined. With lnW [E] (not null): the block form
//         y = x + layer(LN(x)) (mlstm_layer.h), remembered by the handle
//     mlstmLayerBackward(dx, ...13 grads, dy, x, handle, ...13 params, B, S, E, Di, NH, Bq, K, chunk, cellEps, normEps
//                        [, lnW, dlnW])   lnW required for a block-form handle (and refused otherwise), dlnW nullable
//     mlstmLayerRelease(handle)  frees the saved activations now (idempotent; a finalizer does it otherwise)
// The handle is a type-tagged External owning native memory (reported to the GC). Freeing it right after the
// backward lets the next step's forward get the same memory back from malloc, already mapped: a fresh JS buffer
// of this size (several times the layer's output) would be zero-filled and page-faulted in on every step.
// Parameters (and their gradients) in this order: wUp [2Di, E], wConv [Di, K], bConv [Di], wQ, wK, wV [Di/Bq, Bq, Bq],
// wI [NH, 3Di], bI [NH], wF [NH, 3Di], bF [NH], wNorm [Di], skip [Di], wDown [E, Di]. x, y, dx, dy [B, S, E].
#include <napi.h>

#include <memory>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/mlstm_layer.h"

namespace xlstm {
namespace {

constexpr napi_type_tag kSavedTag = {0x3c6d1e8a47b25f90ULL, 0x81f2a3b4c5d6e7f8ULL};

struct SavedHolder {
  std::unique_ptr<float[]> data;
  int64_t size = 0;  // floats
  int64_t reported = 0;  // bytes reported with AdjustExternalMemory
  bool block = false;  // the block form, with its layer norm's settings
  float ln_eps = 0;
  bool ln_residual = true;
};

bool given(const ArgCtx& c, size_t i) { return i < c.info.Length() && !c.info[i].IsUndefined() && !c.info[i].IsNull(); }

void free_saved(Napi::Env env, SavedHolder* h) {
  h->data.reset();
  if (h->reported) Napi::MemoryManagement::AdjustExternalMemory(env, -h->reported);
  h->reported = 0;
}

SavedHolder* require_saved(const ArgCtx& c, size_t i) {
  Napi::Value v = c.info[i];
  if (!v.IsExternal() || !v.As<Napi::External<SavedHolder>>().CheckTypeTag(&kSavedTag))
    throw_type(c, "saved must be a handle returned by mlstmLayerForward, got " + kind_of(v));
  return v.As<Napi::External<SavedHolder>>().Data();
}

constexpr const char* kParamNames[13] = {"wUp", "wConv", "bConv", "wQ", "wK", "wV", "wI", "bI", "wF", "bF", "wNorm", "skip", "wDown"};
constexpr const char* kGradNames[13] = {"dwUp", "dwConv", "dbConv", "dwQ", "dwK", "dwV", "dwI", "dbI", "dwF", "dbF", "dwNorm", "dskip", "dwDown"};

MlstmLayerDims read_dims(const ArgCtx& c, size_t first, bool with_eps) {
  MlstmLayerDims d{};
  d.B = require_int(c, first, "B", 1, INT32_MAX);
  d.S = require_int(c, first + 1, "S", 1, INT32_MAX);
  d.E = require_int(c, first + 2, "E", 1, 1 << 20);
  d.Di = require_int(c, first + 3, "Di", 1, 1 << 20);
  d.NH = require_int(c, first + 4, "NH", 1, 1 << 16);
  d.Bq = require_int(c, first + 5, "Bq", 1, 1 << 20);
  d.K = require_int(c, first + 6, "K", 1, 1 << 16);
  d.chunk = require_int(c, first + 7, "chunk", 1, INT32_MAX);
  if (d.Di % d.NH) throw_range(c, "NH (" + std::to_string(d.NH) + ") must divide Di (" + std::to_string(d.Di) + ")");
  if (d.Di % d.Bq) throw_range(c, "Bq (" + std::to_string(d.Bq) + ") must divide Di (" + std::to_string(d.Di) + ")");
  checked_product(c, "B*S*Di*3", {d.B, d.S, d.Di, 3});
  checked_product(c, "B*S*E", {d.B, d.S, d.E});
  checked_product(c, "2*Di*E", {2, d.Di, d.E});
  if (with_eps) {
    d.cell_eps = static_cast<float>(require_number(c, first + 8, "cellEps"));
    d.norm_eps = static_cast<float>(require_number(c, first + 9, "normEps"));
    if (!(d.cell_eps >= 0) || !(d.norm_eps > 0)) throw_range(c, "cellEps must be >= 0 and normEps > 0");
  }
  return d;
}

struct Buffers {
  float* p[13];
  int64_t n[13];
};

Buffers read_params(const ArgCtx& c, size_t first, const MlstmLayerDims& d, const char* const names[13]) {
  Buffers b{};
  mlstm_layer_param_sizes(d, b.n);
  for (int j = 0; j < 13; ++j) b.p[j] = require_f32(c, first + j, names[j], b.n[j]);
  return b;
}

size_t bytes(int64_t n) { return static_cast<size_t>(n) * sizeof(float); }

// Every output against every input and every other output (null regions skipped).
void require_all_disjoint(const ArgCtx& c, const std::vector<Region>& outs, const std::vector<Region>& ins) {
  for (size_t a = 0; a < outs.size(); ++a) {
    if (!outs[a].ptr) continue;
    for (const Region& in : ins)
      if (in.ptr) require_no_overlap(c, outs[a].name, outs[a].ptr, outs[a].bytes, in.name, in.ptr, in.bytes);
    for (size_t b = a + 1; b < outs.size(); ++b)
      if (outs[b].ptr) require_no_overlap(c, outs[a].name, outs[a].ptr, outs[a].bytes, outs[b].name, outs[b].ptr, outs[b].bytes);
  }
}

MlstmLayerParams as_params(const Buffers& b) {
  return MlstmLayerParams{b.p[0], b.p[1], b.p[2], b.p[3], b.p[4], b.p[5], b.p[6], b.p[7], b.p[8], b.p[9], b.p[10], b.p[11], b.p[12]};
}

Napi::Value Forward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "mlstmLayerForward"};
  require_count(c, 26);
  MlstmLayerDims d = read_dims(c, 15, true);
  const bool keep = require_bool(c, 25, "keepSaved");
  const float* ln_w = nullptr;
  if (given(c, 26)) {
    d.block = true;
    ln_w = require_f32(c, 26, "lnW", d.E, "E");
    d.ln_eps = static_cast<float>(require_number(c, 27, "lnEps"));
    if (!(d.ln_eps > 0)) throw_range(c, "lnEps must be > 0");
    d.ln_residual = require_bool(c, 28, "lnResidual");
  }
  const int64_t nx = d.B * d.S * d.E, ns = mlstm_layer_saved_size(d);
  float* y = require_f32(c, 0, "y", nx, "B*S*E");
  const float* x = require_f32(c, 1, "x", nx, "B*S*E");
  const Buffers pb = read_params(c, 2, d, kParamNames);
  std::vector<Region> outs{{"y", y, bytes(nx)}};
  std::vector<Region> ins{{"x", x, bytes(nx)}, {"lnW", ln_w, bytes(d.E)}};
  for (int j = 0; j < 13; ++j) ins.push_back({kParamNames[j], pb.p[j], bytes(pb.n[j])});
  require_all_disjoint(c, outs, ins);
  MlstmLayerParams params = as_params(pb);
  params.ln_w = ln_w;
  std::unique_ptr<SavedHolder> h;
  if (keep) {
    h = std::make_unique<SavedHolder>();
    h->block = d.block, h->ln_eps = d.ln_eps, h->ln_residual = d.ln_residual;
    h->data.reset(new (std::nothrow) float[static_cast<size_t>(ns)]);
    if (!h->data) throw Napi::Error::New(info.Env(), "mlstmLayerForward: out of memory allocating " + std::to_string(ns * 4) + " bytes of saved activations");
    h->size = ns;
  }
  run_sync(info.Env(), c.fn, [&] { mlstm_layer_forward(y, h ? h->data.get() : nullptr, x, params, d); });
  if (!h) return info.Env().Undefined();
  SavedHolder* raw = h.release();
  auto ext = Napi::External<SavedHolder>::New(info.Env(), raw, [](Napi::Env env, SavedHolder* p) {
    free_saved(env, p);
    delete p;
  });
  ext.TypeTag(&kSavedTag);
  raw->reported = ns * static_cast<int64_t>(sizeof(float));
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), raw->reported);
  return ext;
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "mlstmLayerRelease"};
  require_count(c, 1);
  free_saved(info.Env(), require_saved(c, 0));
  return info.Env().Undefined();
}

Napi::Value Backward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "mlstmLayerBackward"};
  require_count(c, 40);
  MlstmLayerDims d = read_dims(c, 30, true);
  SavedHolder* h = require_saved(c, 16);
  if (!h->data) throw Napi::Error::New(info.Env(), "mlstmLayerBackward: the saved activations were released (backward already ran)");
  d.block = h->block, d.ln_eps = h->ln_eps, d.ln_residual = h->ln_residual;
  if (given(c, 40) != d.block)
    throw_type(c, d.block ? "lnW must be the layer norm weight: saved comes from a block-form forward"
                          : "lnW must be absent: saved comes from a forward without the block form");
  const int64_t nx = d.B * d.S * d.E, ns = mlstm_layer_saved_size(d);
  const float* ln_w = d.block ? require_f32(c, 40, "lnW", d.E, "E") : nullptr;
  float* dln_w = d.block && given(c, 41) ? require_f32(c, 41, "dlnW", d.E, "E") : nullptr;
  float* dx = require_f32(c, 0, "dx", nx, "B*S*E");
  const Buffers gb = read_params(c, 1, d, kGradNames);
  const float* dy = require_f32(c, 14, "dy", nx, "B*S*E");
  const float* x = require_f32(c, 15, "x", nx, "B*S*E");
  if (h->size != ns) throw_range(c, "saved holds " + std::to_string(h->size) + " floats, these sizes need " + std::to_string(ns));
  const float* saved = h->data.get();
  const Buffers pb = read_params(c, 17, d, kParamNames);
  std::vector<Region> outs{{"dx", dx, bytes(nx)}, {"dlnW", dln_w, bytes(d.E)}};
  for (int j = 0; j < 13; ++j) outs.push_back({kGradNames[j], gb.p[j], bytes(gb.n[j])});
  std::vector<Region> ins{{"dy", dy, bytes(nx)}, {"x", x, bytes(nx)}, {"lnW", ln_w, bytes(d.E)}};
  for (int j = 0; j < 13; ++j) ins.push_back({kParamNames[j], pb.p[j], bytes(pb.n[j])});
  require_all_disjoint(c, outs, ins);
  const MlstmLayerGrads g{gb.p[0], gb.p[1], gb.p[2], gb.p[3], gb.p[4], gb.p[5], gb.p[6], gb.p[7], gb.p[8], gb.p[9], gb.p[10], gb.p[11], gb.p[12], dln_w};
  MlstmLayerParams params = as_params(pb);
  params.ln_w = ln_w;
  run_sync(info.Env(), c.fn, [&] { mlstm_layer_backward(dx, g, dy, x, saved, params, d); });
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mlstmLayerForward", Napi::Function::New(env, Forward, "mlstmLayerForward"));
  exports.Set("mlstmLayerBackward", Napi::Function::New(env, Backward, "mlstmLayerBackward"));
  exports.Set("mlstmLayerRelease", Napi::Function::New(env, Release, "mlstmLayerRelease"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(mlstm_layer, xlstm::Init);
