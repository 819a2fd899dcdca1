// Binding layer: fused xLSTMLMModel inference sessions (csrc/kernels/xlstm_infer.h).
// JS: inferCreate(config, params, batch[, device]) -> handle (a type-tagged External owning the native session; a finalizer
//       frees it, and its size is reported to the GC with AdjustExternalMemory)
//     inferRun(handle, logits [B*V], tokens [B*S], S)       tokens in, logits of the last position out (S = 1: a step)
//     inferRunAsync(handle, logits, tokens, S) -> Promise    the same on a libuv worker (tokens copied at the call);
//       until it settles every other call with the handle except inferBytes and inferDispose throws, and a dispose
//       meanwhile frees the session when the run is done
//     inferReset(handle); inferGetState / inferSetState(handle, block, part, array|null); inferBytes(handle)
//     inferDispose(handle)                                  frees the native memory now; idempotent
//     inferGraphs(handle)                                   a device session's decode graphs (session_graphs.h)
//   cudaSetSessionGraphs(enabled) -> previous              device sessions' decode steps from CUDA graphs (opt-in)
// `params` maps the model's state_dict keys ("token_embedding.weight", "xlstm_block_stack.blocks.0.xlstm.proj_up
// .weight", ...) to Float32Arrays; every one is checked against the sizes in `config` and copied. With `device` true
// the values are device buffers (a model on the GPU) and the session is the device one (cuda_infer_session.h): its
// parameters, state and scratch in device memory, the same calls (state parts copied to and from the host).
#include <napi.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/cuda_infer_session.h"
#include "binding/cuda_large_session.h"
#include "binding/device_buffer.h"
#include "binding/registry.h"
#include "kernels/xlstm_infer.h"

namespace xlstm {
namespace {

// Distinguishes our handles from any other External (napi_type_tag_object).
constexpr napi_type_tag kInferTag = {0x7a1c5e0f3b2d4e61ULL, 0x9f8e7d6c5b4a3921ULL};

struct Holder {
  std::shared_ptr<InferSession> s;   // the CPU session, or
  std::shared_ptr<DeviceSession> d;  // a device session; either shared with a pending inferRunAsync's work
  int64_t reported = 0;              // bytes reported with AdjustExternalMemory
  bool running = false;              // an inferRunAsync call is pending (JS thread only)
  bool alive() const { return s || d; }
  int64_t bytes() const { return s ? infer_bytes(*s) : d ? d->bytes() : 0; }
  int64_t batch() const { return s ? s->B : d->batch(); }
  int64_t vocab() const { return s ? s->V : d->vocab(); }
  int64_t blocks() const { return s ? static_cast<int64_t>(s->blocks.size()) : d->blocks(); }
  void run(float* logits, const int32_t* tokens, int64_t S) const {
    if (d) d->run(logits, tokens, S);
    else infer_run(*s, logits, tokens, S);
  }
};

void report(Napi::Env env, Holder* h) {
  const int64_t now = h->bytes();
  if (now != h->reported) {
    Napi::MemoryManagement::AdjustExternalMemory(env, now - h->reported);
    h->reported = now;
  }
}

Holder* require_handle(const ArgCtx& c, bool alive = true) {
  require_count(c, 1);
  Napi::Value v = c.info[0];
  if (!v.IsExternal() || !v.As<Napi::External<Holder>>().CheckTypeTag(&kInferTag))
    throw_type(c, "session must be a handle returned by inferCreate, got " + kind_of(v));
  Holder* h = v.As<Napi::External<Holder>>().Data();
  if (alive && !h->alive()) throw Napi::Error::New(c.info.Env(), std::string(c.fn) + ": the session is disposed");
  if (alive && h->running)
    throw Napi::Error::New(c.info.Env(), std::string(c.fn) + ": the session is busy with an inferRunAsync call; wait for its promise");
  return h;
}

// ---- inferCreate's config and params

int64_t get_int(const ArgCtx& c, Napi::Object o, const char* key, const std::string& where, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw_type(c, where + "." + key + " must be a number, got " + kind_of(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == static_cast<double>(static_cast<int64_t>(d))) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    std::ostringstream os;
    os << where << "." << key << " must be an integer in [" << lo << ", " << hi << "], got " << d;
    throw_range(c, os.str());
  }
  return static_cast<int64_t>(d);
}

std::string get_string(const ArgCtx& c, Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw_type(c, where + "." + key + " must be a string, got " + kind_of(v));
  return v.As<Napi::String>().Utf8Value();
}

bool get_bool(const ArgCtx& c, Napi::Object o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) throw_type(c, where + "." + key + " must be a boolean, got " + kind_of(v));
  return v.As<Napi::Boolean>().Value();
}

Napi::Object get_object(const ArgCtx& c, Napi::Value v, const std::string& where) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
    throw_type(c, where + " must be an object, got " + kind_of(v));
  return v.As<Napi::Object>();
}

// The params object and every array taken from it. Reading config and params runs JavaScript (getters, proxies),
// which may detach or shrink an array validated earlier; `seen` lets InferCreate re-check them all once no more
// JavaScript can run, before anything is copied.
struct Params {
  Napi::Object obj;
  bool device = false;  // values are device buffers
  struct SeenDevice {
    std::string name;
    DeviceBuffer* buffer;
    void* ptr;
  };
  std::vector<SeenDevice> seen_device;
  struct Seen {
    std::string name;
    napi_value value;
    const void* data;
    size_t length;
  };
  std::vector<Seen> seen;
};

// A device buffer value of params (name) holding at least `count` elements of elem_size bytes (desc explains count).
const void* device_param(const ArgCtx& c, Params& params, Napi::Value v, const std::string& name, int64_t count,
                         int64_t elem_size, const std::string& desc) {
  DeviceBuffer* b = device_buffer_value(c, v, name);
  if (b->bytes < count * elem_size) {
    std::ostringstream os;
    os << name << " holds " << b->bytes << " bytes, expected " << elem_size << "*" << desc << " = " << count * elem_size;
    throw_range(c, os.str());
  }
  params.seen_device.push_back({name, b, b->ptr});
  return b->ptr;
}

// params[key]: a Float32Array of `expected` elements (desc explains the count), or nullptr when optional and absent.
const float* get_param(const ArgCtx& c, Params& params, const std::string& key, int64_t expected,
                       const std::string& desc, bool optional = false) {
  Napi::Value v = params.obj.Get(key);
  const std::string name = "params[\"" + key + "\"]";
  if (v.IsUndefined() || v.IsNull()) {
    if (optional) return nullptr;
    throw_type(c, name + " is missing (expected " + (params.device ? "a device buffer" : "a Float32Array") + " of " + desc +
                      " = " + std::to_string(expected) + " elements)");
  }
  if (params.device) return static_cast<const float*>(device_param(c, params, v, name, expected, 4, desc));
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw_type(c, name + " must be a Float32Array, got " + kind_of(v));
  // napi_get_typedarray_info, not TypedArray::ArrayBuffer(): the latter throws a bare "Invalid argument" for
  // arrays on a SharedArrayBuffer
  void* raw = nullptr;
  size_t n = 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(c.info.Env(), v, &type, &n, &raw, nullptr, nullptr) != napi_ok)
    throw_type(c, name + " could not be read as a typed array");
  if (raw == nullptr && n != 0) throw_type(c, name + " is detached");
  const int64_t len = static_cast<int64_t>(n);
  if (len != expected) {
    std::ostringstream os;
    os << name << " has " << len << " elements, expected " << desc << " = " << expected;
    throw_range(c, os.str());
  }
  const float* data = static_cast<const float*>(raw);
  params.seen.push_back({name, v, data, static_cast<size_t>(len)});
  return data;
}

InferAct parse_act(const ArgCtx& c, const std::string& s, const std::string& where) {
  if (s == "gelu") return InferAct::Gelu;
  if (s == "relu") return InferAct::Relu;
  if (s == "relu^2") return InferAct::Relu2;
  if (s == "sigmoid") return InferAct::Sigmoid;
  if (s == "swish") return InferAct::Swish;
  if (s == "selu") return InferAct::Selu;
  throw_range(c, where + ".act must be one of gelu, relu, relu^2, sigmoid, swish, selu; got \"" + s + "\"");
}

constexpr int64_t kMaxDim = int64_t(1) << 24;

InferModelSpec parse_spec(const ArgCtx& c, Napi::Object cfg, Params& params) {
  InferModelSpec spec;
  const int64_t V = spec.V = get_int(c, cfg, "vocabSize", "config", 1, kMaxDim);
  const int64_t E = spec.E = get_int(c, cfg, "embeddingDim", "config", 1, kMaxDim);
  const std::string ve = describe("V*E", {{"V", V}, {"E", E}});
  const std::string e = describe("E", {{"E", E}});
  checked_product(c, "V*E", {V, E});
  spec.embedding = get_param(c, params, "token_embedding.weight", V * E, ve);
  spec.lm_head = get_param(c, params, "lm_head.weight", V * E, ve);
  if (get_bool(c, cfg, "postNorm", "config"))
    spec.post_norm = get_param(c, params, "xlstm_block_stack.post_blocks_norm.weight", E, e);
  Napi::Value bv = cfg.Get("blocks");
  if (!bv.IsArray()) throw_type(c, "config.blocks must be an Array, got " + kind_of(bv));
  Napi::Array blocks = bv.As<Napi::Array>();
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    const std::string where = "config.blocks[" + std::to_string(i) + "]";
    const std::string pre = "xlstm_block_stack.blocks." + std::to_string(i) + ".";
    Napi::Object bo = get_object(c, blocks.Get(i), where);
    InferBlockSpec b;
    const std::string kind = get_string(c, bo, "kind", where);
    if (kind != "mlstm" && kind != "slstm") throw_range(c, where + ".kind must be \"mlstm\" or \"slstm\", got \"" + kind + "\"");
    b.slstm = kind == "slstm";
    b.norm = get_param(c, params, pre + "xlstm_norm.weight", E, e);
    const int64_t NH = b.NH = get_int(c, bo, "numHeads", where, 1, kMaxDim);
    if (!b.slstm) {
      const int64_t Di = b.Di = get_int(c, bo, "innerDim", where, 1, kMaxDim);
      const int64_t Bq = b.Bq = get_int(c, bo, "qkvBlocksize", where, 1, kMaxDim);
      const int64_t K = b.K = get_int(c, bo, "convKernel", where, 1, 1 << 12);
      if (Di % NH) throw_range(c, where + ": numHeads (" + std::to_string(NH) + ") must divide innerDim (" + std::to_string(Di) + ")");
      if (Di % Bq) throw_range(c, where + ": qkvBlocksize (" + std::to_string(Bq) + ") must divide innerDim (" + std::to_string(Di) + ")");
      checked_product(c, "2*Di*E", {2, Di, E});
      checked_product(c, "NH*3*Di", {NH, 3, Di});
      auto d = [&](const char* f) { return describe(f, {{"Di", Di}, {"E", E}, {"NH", NH}, {"K", K}, {"Bq", Bq}}); };
      const std::string x = pre + "xlstm.";
      b.up_w = get_param(c, params, x + "proj_up.weight", 2 * Di * E, d("2*Di*E"));
      b.up_b = get_param(c, params, x + "proj_up.bias", 2 * Di, d("2*Di"), true);
      b.q_w = get_param(c, params, x + "q_proj.weight", Di * Bq, d("Di*Bq"));
      b.k_w = get_param(c, params, x + "k_proj.weight", Di * Bq, d("Di*Bq"));
      b.v_w = get_param(c, params, x + "v_proj.weight", Di * Bq, d("Di*Bq"));
      b.q_b = get_param(c, params, x + "q_proj.bias", Di, d("Di"), true);
      b.k_b = get_param(c, params, x + "k_proj.bias", Di, d("Di"), true);
      b.v_b = get_param(c, params, x + "v_proj.bias", Di, d("Di"), true);
      b.conv_w = get_param(c, params, x + "conv1d.conv.weight", Di * K, d("Di*K"));
      b.conv_b = get_param(c, params, x + "conv1d.conv.bias", Di, d("Di"));
      b.ig_w = get_param(c, params, x + "mlstm_cell.igate.weight", NH * 3 * Di, d("NH*3*Di"));
      b.ig_b = get_param(c, params, x + "mlstm_cell.igate.bias", NH, d("NH"));
      b.fg_w = get_param(c, params, x + "mlstm_cell.fgate.weight", NH * 3 * Di, d("NH*3*Di"));
      b.fg_b = get_param(c, params, x + "mlstm_cell.fgate.bias", NH, d("NH"));
      b.outnorm = get_param(c, params, x + "mlstm_cell.outnorm.weight", Di, d("Di"));
      b.skip = get_param(c, params, x + "learnable_skip", Di, d("Di"));
      b.down_w = get_param(c, params, x + "proj_down.weight", E * Di, d("E*Di"));
      b.down_b = get_param(c, params, x + "proj_down.bias", E, d("E"), true);
    } else {
      const int64_t K = b.K = get_int(c, bo, "convKernel", where, 0, 1 << 12);
      if (E % NH) throw_range(c, where + ": numHeads (" + std::to_string(NH) + ") must divide embeddingDim (" + std::to_string(E) + ")");
      const int64_t DH = E / NH;
      const std::string fn = get_string(c, bo, "function", where);
      if (fn != "slstm" && fn != "lstm") throw_range(c, where + ".function must be \"slstm\" or \"lstm\", got \"" + fn + "\"");
      b.lstm = fn == "lstm";
      auto d = [&](const char* f) { return describe(f, {{"E", E}, {"NH", NH}, {"DH", DH}, {"K", K}}); };
      const std::string x = pre + "xlstm.";
      if (K > 0) {
        b.conv_w = get_param(c, params, x + "conv1d.conv.weight", E * K, d("E*K"));
        b.conv_b = get_param(c, params, x + "conv1d.conv.bias", E, d("E"));
      }
      // XLSTM_SPEC §6.2 quirk: the module named fgate feeds the input gate, igate the forget gate
      b.w_i = get_param(c, params, x + "fgate.weight", NH * DH * DH, d("NH*DH*DH"));
      b.w_f = get_param(c, params, x + "igate.weight", NH * DH * DH, d("NH*DH*DH"));
      b.w_z = get_param(c, params, x + "zgate.weight", NH * DH * DH, d("NH*DH*DH"));
      b.w_o = get_param(c, params, x + "ogate.weight", NH * DH * DH, d("NH*DH*DH"));
      b.R = get_param(c, params, x + "slstm_cell._recurrent_kernel_", NH * DH * 4 * DH, d("NH*DH*4*DH"));
      b.bias = get_param(c, params, x + "slstm_cell._bias_", 4 * E, d("4*E"));
      b.group_norm = get_param(c, params, x + "group_norm.weight", E, d("E"), true);
    }
    Napi::Value fv = bo.Get("ffn");
    if (!fv.IsUndefined() && !fv.IsNull()) {
      Napi::Object fo = get_object(c, fv, where + ".ffn");
      b.has_ffn = true;
      const int64_t P = b.P = get_int(c, fo, "projUpDim", where + ".ffn", 1, kMaxDim);
      b.act = parse_act(c, get_string(c, fo, "act", where + ".ffn"), where + ".ffn");
      checked_product(c, "2*P*E", {2, P, E});
      auto d = [&](const char* f) { return describe(f, {{"P", P}, {"E", E}}); };
      b.ffn_norm = get_param(c, params, pre + "ffn_norm.weight", E, d("E"));
      b.ffn_up_w = get_param(c, params, pre + "ffn.proj_up.weight", 2 * P * E, d("2*P*E"));
      b.ffn_up_b = get_param(c, params, pre + "ffn.proj_up.bias", 2 * P, d("2*P"), true);
      b.ffn_down_w = get_param(c, params, pre + "ffn.proj_down.weight", E * P, d("E*P"));
      b.ffn_down_b = get_param(c, params, pre + "ffn.proj_down.bias", E, d("E"), true);
    }
    spec.blocks.push_back(b);
  }
  return spec;
}

// No JavaScript runs once the arguments are read: every array must still be what get_param validated (a getter may
// have detached or shrunk one that was read earlier, or freed a device buffer; copying from it would read freed
// memory).
void recheck_params(const ArgCtx& c, const Params& params) {
  for (const Params::Seen& p : params.seen) {
    void* data = nullptr;
    size_t length = 0;
    napi_typedarray_type type;
    if (napi_get_typedarray_info(c.info.Env(), p.value, &type, &length, &data, nullptr, nullptr) != napi_ok ||
        data != p.data || length != p.length)
      throw_type(c, p.name + " was detached or resized while " + c.fn + " read its arguments");
  }
  for (const Params::SeenDevice& p : params.seen_device)
    if (p.buffer->ptr != p.ptr) throw_type(c, p.name + " was freed while " + c.fn + " read its arguments");
}

// The owners of the device buffers read from params (checked by recheck_params): a device session borrows them.
DeviceOwners device_owners(const Params& params) {
  DeviceOwners owners;
  for (const Params::SeenDevice& d : params.seen_device) owners[d.ptr] = d.buffer->mem;
  return owners;
}

// Creates a session with `make` (filling the holder) and returns its handle.
template <class Make>
Napi::Value new_handle(const ArgCtx& c, Make&& make) {
  auto h = std::make_unique<Holder>();
  try {
    make(*h);
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(c.info.Env(), std::string(c.fn) + ": out of memory allocating the session");
  } catch (const std::exception& e) {
    throw Napi::Error::New(c.info.Env(), std::string(e.what()));
  }
  Holder* raw = h.get();
  Napi::External<Holder> ext = Napi::External<Holder>::New(c.info.Env(), raw, [](Napi::Env env, Holder* p) {
    if (p->reported) Napi::MemoryManagement::AdjustExternalMemory(env, -p->reported);
    delete p;
    sweep_gc_reports(env);  // borrowed weights freed meanwhile go with it
  });
  h.release();  // the External owns it now (had New thrown, h would have freed the session)
  ext.TypeTag(&kInferTag);
  report(c.info.Env(), raw);
  return ext;
}

// The create calls' (config, params, batch); `device`: params are device buffers (needs a usable GPU).
struct CreateArgs {
  Napi::Object cfg;
  Params params;
  int64_t B;
};
CreateArgs create_args(const ArgCtx& c, bool device) {
  require_count(c, 3);
  CreateArgs a{get_object(c, c.info[0], "config"), Params{get_object(c, c.info[1], "params")}, 0};
  a.B = require_int(c, 2, "batch", 1, 1 << 20);
  a.params.device = device;
  if (device) require_cuda_device(c);
  return a;
}

Napi::Value InferCreate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferCreate"};
  CreateArgs a = create_args(c, info.Length() > 3 && !info[3].IsUndefined() && require_bool(c, 3, "device"));
  Params& params = a.params;
  const int64_t B = a.B;
  InferModelSpec spec = parse_spec(c, a.cfg, params);
  recheck_params(c, params);
  const DeviceOwners owners = device_owners(params);
  return new_handle(c, [&](Holder& h) {
    if (params.device) h.d = device_infer_create(spec, B, owners);
    else h.s = infer_create(spec, B);
  });
}

// ---- inferCreateLarge's config and params (device buffers under the xLSTM Large state_dict keys)

double get_cap(const ArgCtx& c, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return 0;
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() > 0) || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw_range(c, std::string("config.") + key + " must be a positive number or null, got " + kind_of(v));
  return v.As<Napi::Number>().DoubleValue();
}

float get_eps(const ArgCtx& c, Napi::Object o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= 0) || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throw_range(c, std::string("config.") + key + " must be a finite number >= 0, got " + kind_of(v));
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

LargeModelSpec parse_large_spec(const ArgCtx& c, Napi::Object cfg, Params& params) {
  LargeModelSpec spec;
  const int64_t V = spec.V = get_int(c, cfg, "vocabSize", "config", 1, kMaxDim);
  const int64_t E = spec.E = get_int(c, cfg, "embeddingDim", "config", 1, kMaxDim);
  const int64_t NH = spec.NH = get_int(c, cfg, "numHeads", "config", 1, kMaxDim);
  const int64_t qk = spec.qk = get_int(c, cfg, "qkDim", "config", 1, kMaxDim);
  const int64_t vd = spec.vd = get_int(c, cfg, "vDim", "config", 1, kMaxDim);
  const int64_t up = spec.up = get_int(c, cfg, "ffnUpDim", "config", 1, kMaxDim);
  const int64_t nb = get_int(c, cfg, "numBlocks", "config", 0, 1 << 16);
  if (qk % NH || vd % NH) throw_range(c, "config: numHeads must divide qkDim and vDim");
  const std::string mode = get_string(c, cfg, "weightMode", "config");
  if (mode != "single" && mode != "fused") throw_range(c, "config.weightMode must be \"single\" or \"fused\", got \"" + mode + "\"");
  const std::string dtype = get_string(c, cfg, "dtype", "config");
  if (dtype != "float32" && dtype != "bfloat16") throw_range(c, "config.dtype must be \"float32\" or \"bfloat16\", got \"" + dtype + "\"");
  spec.bf16 = dtype == "bfloat16";
  const bool bias = get_bool(c, cfg, "useBias", "config");
  spec.norm_eps = get_eps(c, cfg, "normEps");
  spec.eps = get_eps(c, cfg, "eps");
  spec.gate_cap = get_cap(c, cfg, "gateSoftCap");
  spec.out_cap = get_cap(c, cfg, "outputSoftCap");
  checked_product(c, "V*E", {V, E});
  checked_product(c, "2*up*E", {2, up, E});
  const int64_t elem = spec.bf16 ? 2 : 4;
  const std::string mat = spec.bf16 ? "a bfloat16" : "a float32";
  auto d = [&](const char* f) { return describe(f, {{"V", V}, {"E", E}, {"NH", NH}, {"qk", qk}, {"vd", vd}, {"up", up}}); };
  auto vec = [&](const std::string& key, int64_t n, const char* desc, bool optional) -> const float* {
    Napi::Value v = params.obj.Get(key);
    if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
    if (v.IsUndefined() || v.IsNull()) throw_type(c, "params[\"" + key + "\"] is missing (expected a device buffer of " + d(desc) + " floats)");
    return static_cast<const float*>(device_param(c, params, v, "params[\"" + key + "\"]", n, 4, d(desc)));
  };
  auto matrix = [&](const std::string& key, int64_t n, const char* desc) -> const void* {
    Napi::Value v = params.obj.Get(key);
    if (v.IsUndefined() || v.IsNull()) throw_type(c, "params[\"" + key + "\"] is missing (expected " + mat + " device buffer of " + d(desc) + " elements)");
    return device_param(c, params, v, "params[\"" + key + "\"]", n, elem, d(desc));
  };
  // one projection: the parts (name, rows) of `in` columns; gate biases always present, others with useBias
  auto proj = [&](const std::string& pre, std::vector<std::pair<std::string, int64_t>> parts, int64_t in, bool has_bias) {
    LargeProjSpec p;
    p.in = in;
    for (const auto& [name, out] : parts) {
      checked_product(c, "out*in", {out, in});
      LargeProjSpec::Part part;
      part.out = out;
      part.w = matrix(pre + name + ".weight", out * in, "rows*in");
      part.b = has_bias ? vec(pre + name + ".bias", out, "rows", false) : nullptr;
      p.parts.push_back(part);
    }
    return p;
  };
  spec.embedding = matrix("embedding.weight", V * E, "V*E");
  spec.lm_head = matrix("lm_head.weight", V * E, "V*E");
  if (get_bool(c, cfg, "outNorm", "config")) {
    spec.out_norm_w = vec("backbone.out_norm.weight", E, "E", false);
    spec.out_norm_b = bias ? vec("backbone.out_norm.bias", E, "E", false) : nullptr;
  }
  for (int64_t i = 0; i < nb; ++i) {
    const std::string p = "backbone.blocks." + std::to_string(i) + ".";
    LargeBlockSpec b;
    b.norm_m_w = vec(p + "norm_mlstm.weight", E, "E", false);
    b.norm_m_b = bias ? vec(p + "norm_mlstm.bias", E, "E", false) : nullptr;
    b.norm_f_w = vec(p + "norm_ffn.weight", E, "E", false);
    b.norm_f_b = bias ? vec(p + "norm_ffn.bias", E, "E", false) : nullptr;
    b.mh_w = vec(p + "mlstm_layer.multihead_norm.weight", vd, "vd", false);
    b.mh_b = bias ? vec(p + "mlstm_layer.multihead_norm.bias", vd, "vd", false) : nullptr;
    const std::string m = p + "mlstm_layer.", f = p + "ffn.";
    if (mode == "single") {
      b.qkvo = proj(m, {{"q", qk}, {"k", qk}, {"v", vd}, {"ogate_preact", vd}}, E, bias);
      b.ifgate = proj(m, {{"igate_preact", NH}, {"fgate_preact", NH}}, E, true);
      b.up = proj(f, {{"proj_up_gate", up}, {"proj_up", up}}, E, bias);
    } else {
      b.qkvo = proj(m, {{"qkv_opreact", 2 * qk + 2 * vd}}, E, bias);
      b.ifgate = proj(m, {{"ifgate_preact", 2 * NH}}, E, true);
      b.up = proj(f, {{"proj_up_gate_z", 2 * up}}, E, bias);
    }
    b.out_proj = proj(m, {{"out_proj", E}}, vd, bias);
    b.down = proj(f, {{"proj_down", E}}, up, bias);
    spec.blocks.push_back(b);
  }
  return spec;
}

// inferCreateLarge(config, params, batch): an xLSTM Large device session (cuda_large_session.h); then the same calls
// as the other sessions (inferRun: S steps; state parts "c", "n", "m" per block)
Napi::Value InferCreateLarge(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferCreateLarge"};
  CreateArgs a = create_args(c, true);
  LargeModelSpec spec = parse_large_spec(c, a.cfg, a.params);
  recheck_params(c, a.params);
  const DeviceOwners owners = device_owners(a.params);
  return new_handle(c, [&](Holder& h) { h.d = large_device_create(spec, a.B, owners); });
}

// inferRun's / inferRunAsync's checked arguments
struct RunCall {
  Holder* h;
  int64_t S, n_tok;
  float* logits;
  const int32_t* tokens;
};
RunCall parse_run(const ArgCtx& c) {
  require_count(c, 4);
  RunCall r;
  r.h = require_handle(c);
  const int64_t B = r.h->batch(), V = r.h->vocab();
  r.S = require_int(c, 3, "S", 1, INT32_MAX);
  r.n_tok = checked_product(c, "B*S", {B, r.S});
  r.logits = require_f32(c, 1, "logits", B * V, describe("B*V", {{"B", B}, {"V", V}}));
  r.tokens = require_i32(c, 2, "tokens", r.n_tok, describe("B*S", {{"B", B}, {"S", r.S}}));
  require_no_overlap(c, "logits", r.logits, sizeof(float) * B * V, "tokens", r.tokens, sizeof(int32_t) * r.n_tok);
  for (int64_t i = 0; i < r.n_tok; ++i)
    if (r.tokens[i] < 0 || r.tokens[i] >= V) {
      std::ostringstream os;
      os << "tokens[" << i << "] = " << r.tokens[i] << " is out of range [0, " << V << ") (vocabSize = " << V << ")";
      throw_range(c, os.str());
    }
  return r;
}

Napi::Value InferRun(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferRun"};
  const RunCall r = parse_run(c);
  run_sync(info.Env(), c.fn, [&] {
    try {
      r.h->run(r.logits, r.tokens, r.S);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("out of memory");
    }
  });
  report(info.Env(), r.h);
  return info.Env().Undefined();
}

// The work holds its own reference to the session (a dispose meanwhile frees it when the work is done) and a copy of
// the tokens; the handle and logits stay pinned until the promise settles.
Napi::Value InferRunAsync(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferRunAsync"};
  const RunCall r = parse_run(c);
  auto session = std::make_shared<Holder>();  // the sessions (shared), not the handle's bookkeeping
  session->s = r.h->s, session->d = r.h->d;
  auto tokens = std::make_shared<std::vector<int32_t>>(r.tokens, r.tokens + r.n_tok);
  float* logits = r.logits;
  const int64_t S = r.S;
  Holder* h = r.h;
  auto work = [session, tokens, logits, S] {
    try {
      session->run(logits, tokens->data(), S);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("out of memory");
    }
  };
  Napi::Value p = run_async(info.Env(), "inferRunAsync", work, {info[0], info[1]}, nullptr, [h, session](Napi::Env env) {
    h->running = false;
    report(env, h);
    session->s.reset(), session->d.reset();  // the work's reference: a session disposed meanwhile goes now,
    sweep_gc_reports(env);                   // and the borrowed weights freed meanwhile with it
  });
  h->running = true;  // after run_async: a call it refused leaves the session free
  return p;
}

Napi::Value InferReset(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferReset"};
  Holder* h = require_handle(c);
  run_sync(info.Env(), c.fn, [&] {
    if (h->d) h->d->reset();
    else infer_reset(*h->s);
  });
  return info.Env().Undefined();
}

InferStatePart parse_part(const ArgCtx& c, const std::string& p) {
  if (p == "conv") return InferStatePart::Conv;
  if (p == "c") return InferStatePart::C;
  if (p == "n") return InferStatePart::N;
  if (p == "m") return InferStatePart::M;
  if (p == "slstm") return InferStatePart::Slstm;
  throw_range(c, "part must be \"conv\", \"c\", \"n\", \"m\" or \"slstm\", got \"" + p + "\"");
}

// The state buffer named by arguments 1 (block) and 2 (part): host memory for a CPU session, device memory for a
// device one.
float* state_arg(const ArgCtx& c, Holder& h, int64_t* len) {
  const int64_t nb = h.blocks();
  if (nb == 0) throw_range(c, "the model has no blocks");
  const int64_t block = require_int(c, 1, "block", 0, nb - 1);
  const std::string part = require_string(c, 2, "part");
  const InferStatePart which = parse_part(c, part);
  float* p = h.s ? infer_state(*h.s, block, which, len) : h.d->state(block, which, len);
  const bool slstm = h.s ? h.s->blocks[block].slstm : h.d->block_is_slstm(block);
  if (!p)
    throw_range(c, "block " + std::to_string(block) + " (" + (slstm ? "sLSTM" : "mLSTM") + ") has no state part \"" +
                       part + "\"");
  return p;
}

Napi::Value InferGetState(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferGetState"};
  require_count(c, 4);
  Holder& h = *require_handle(c);
  int64_t len = 0;
  const float* src = state_arg(c, h, &len);
  float* out = require_f32(c, 3, "out", len);
  if (h.d) run_sync(info.Env(), c.fn, [&] { cuda::copy_to_host(out, src, sizeof(float) * len); });
  else std::memcpy(out, src, sizeof(float) * len);
  return info.Env().Undefined();
}

Napi::Value InferSetState(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferSetState"};
  require_count(c, 4);
  Holder& h = *require_handle(c);
  int64_t len = 0;
  float* dst = state_arg(c, h, &len);
  const float* src = optional_f32(c, 3, "src", len);
  if (h.d)
    run_sync(info.Env(), c.fn, [&] {
      if (src) cuda::copy_to_device(dst, src, sizeof(float) * len);
      else cuda::fill_zero(dst, sizeof(float) * len);
    });
  else if (src) std::memcpy(dst, src, sizeof(float) * len);
  else std::memset(dst, 0, sizeof(float) * len);
  return info.Env().Undefined();
}

Napi::Value InferBytes(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferBytes"};
  Holder* h = require_handle(c, false);
  if (!h->alive()) throw Napi::Error::New(info.Env(), "inferBytes: the session is disposed");
  // while an inferRunAsync call runs, its work may be growing the scratch: the size last reported
  return Napi::Number::New(info.Env(), static_cast<double>(h->running ? h->reported : h->bytes()));
}

// "cpu" for a CPU session; a device session's decode graphs (StepGraphs::status): "off", "on: N graphs" (with the
// last failed capture's reason after a failure) or "failed: <why>"
Napi::Value InferGraphs(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferGraphs"};
  Holder* h = require_handle(c);
  return Napi::String::New(info.Env(), h->d ? h->d->graphs.status() : std::string("cpu"));
}

// cudaSetSessionGraphs(enabled) -> the previous setting: whether the device sessions replay their decode steps from
// CUDA graphs (cuda::set_session_graphs; process-wide; off by default until timed on a GPU)
Napi::Value CudaSetSessionGraphs(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSetSessionGraphs"};
  require_count(c, 1);
  const bool on = require_bool(c, 0, "enabled");
  return Napi::Boolean::New(info.Env(), cuda::set_session_graphs(on));
}

// cudaEmulateRefuseCaptures(n[, afterRun]): the emulated device's next n graph captures fail, before their work runs
// or (afterRun) once it has (test hook; throws unless XLSTM_CUDA_EMULATE is on)
Napi::Value CudaEmulateRefuseCaptures(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaEmulateRefuseCaptures"};
  if (info.Length() < 1 || info.Length() > 2) throw_type(c, "expected (n[, afterRun])");
  const int64_t n = require_int(c, 0, "n", 0, 1000000);
  const bool after_run = info.Length() > 1 && require_bool(c, 1, "afterRun");
  if (!cuda::emulated())
    throw Napi::Error::New(info.Env(), "cudaEmulateRefuseCaptures: a test hook of the emulated device (XLSTM_CUDA_EMULATE)");
  cuda::emulate_refuse_captures(static_cast<int>(n), after_run);
  return info.Env().Undefined();
}

Napi::Value InferDispose(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "inferDispose"};
  Holder* h = require_handle(c, false);
  h->s.reset();
  h->d.reset();
  report(info.Env(), h);
  sweep_gc_reports(info.Env());  // borrowed weights freed meanwhile go with the session (unless a step still runs)
  return info.Env().Undefined();
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("inferCreate", Napi::Function::New(env, InferCreate, "inferCreate"));
  exports.Set("inferCreateLarge", Napi::Function::New(env, InferCreateLarge, "inferCreateLarge"));
  exports.Set("inferRun", Napi::Function::New(env, InferRun, "inferRun"));
  exports.Set("inferRunAsync", Napi::Function::New(env, InferRunAsync, "inferRunAsync"));
  exports.Set("inferReset", Napi::Function::New(env, InferReset, "inferReset"));
  exports.Set("inferGetState", Napi::Function::New(env, InferGetState, "inferGetState"));
  exports.Set("inferSetState", Napi::Function::New(env, InferSetState, "inferSetState"));
  exports.Set("inferBytes", Napi::Function::New(env, InferBytes, "inferBytes"));
  exports.Set("inferDispose", Napi::Function::New(env, InferDispose, "inferDispose"));
  exports.Set("inferGraphs", Napi::Function::New(env, InferGraphs, "inferGraphs"));
  exports.Set("cudaSetSessionGraphs", Napi::Function::New(env, CudaSetSessionGraphs, "cudaSetSessionGraphs"));
  exports.Set("cudaEmulateRefuseCaptures", Napi::Function::New(env, CudaEmulateRefuseCaptures, "cudaEmulateRefuseCaptures"));
}

}  // namespace

XLSTM_REGISTER(infer, Init);

}  // namespace xlstm
