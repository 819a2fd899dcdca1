// Binding layer: xLSTMLargeDecoder's forward (csrc/kernels/large_decoder.h).
// JS: largeDecoderCreate(config, weights) -> handle (a type-tagged External holding the parsed model and references
//       to the weight arrays, which it borrows: nothing is copied)
//     largeDecoderForward(handle, logits, tokens, B, S, lastOnly, rounding, stateIn, stateOut, maxPieceRows?)
//     largeDecoderForwardAsync(...same) -> Promise           the same on a libuv worker (tokens copied at the call)
// config: { vocabSize, embeddingDim, numHeads, qkHeadDim, vHeadDim, ffnUpDim, chunkSize, normEps, eps,
//           gateSoftCap, outputSoftCap (positive numbers or null) }
// weights: { embedding, head: [V*E] matrices; outNorm, outNormBias: [E] or null; blocks: [{ normM, normMBias, wIn,
//           bIn, mhW, mhB, wOut, bOut, normF, normFBias, wUp, bUp, wDown, bDown }] } — matrices Uint16Array
//           (bfloat16 bits) or Float32Array, vectors Float32Array, the *Bias / b* vectors null when absent.
// rounding: 0 float32 activations, 1 rounded to bf16, 2 auto (see LargeRounding).
// maxPieceRows: a long prompt runs in pieces of about this many rows (B x tokens; kernels/large_decoder.h); omitted
// or 0: kLargePieceRows.
// stateIn / stateOut: arrays of 3 per block (c [B*NH*DK*DV], n [B*NH*DK], m [B*NH]); stateIn's may be null (the
// zero state; a block's three together); stateOut's may be the same arrays as stateIn's (updated in place).
// The weights are re-checked at every call (a detached or resized array is a TypeError, never a read of freed
// memory) and stay referenced by the handle for as long as it lives.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "binding/args.h"
#include "binding/async.h"
#include "binding/registry.h"
#include "kernels/large_decoder.h"

namespace xlstm {
namespace {

constexpr napi_type_tag kDecoderTag = {0x4c61726765446563ULL, 0x6f64657248616e64ULL};
constexpr int64_t kMaxDim = int64_t(1) << 24;

// One borrowed array: the reference keeps it alive; data and length as validated (re-checked before each use).
struct Borrowed {
  std::string name;
  Napi::Reference<Napi::Value> ref;
  const void* data;
  size_t length;
};

struct DecoderHolder {
  LargeDecoderModel m;
  std::vector<Borrowed> arrays;
};

struct TypedInfo {
  napi_typedarray_type type;
  void* data;
  size_t length;
};

bool typed_info(Napi::Env env, Napi::Value v, TypedInfo* out) {
  if (!v.IsTypedArray()) return false;
  return napi_get_typedarray_info(env, v, &out->type, &out->length, &out->data, nullptr, nullptr) == napi_ok;
}

std::string count_desc(const char* formula, int64_t n) { return std::string(formula) + " = " + std::to_string(n); }

class Reader {
 public:
  Reader(const ArgCtx& c, DecoderHolder& h) : c_(c), h_(h) {}

  Napi::Object object(Napi::Value v, const std::string& where) {
    if (!v.IsObject() || v.IsArray() || v.IsTypedArray() || v.IsFunction())
      throw_type(c_, where + " must be an object, got " + kind_of(v));
    return v.As<Napi::Object>();
  }

  int64_t integer(Napi::Object o, const char* key, int64_t lo, int64_t hi) {
    Napi::Value v = o.Get(key);
    if (!v.IsNumber()) throw_type(c_, std::string("config.") + key + " must be a number, got " + kind_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d))) {
      std::ostringstream os;
      os << "config." << key << " must be an integer in [" << lo << ", " << hi << "], got " << d;
      throw_range(c_, os.str());
    }
    return static_cast<int64_t>(d);
  }

  double number(Napi::Object o, const char* key, bool positive_or_null) {
    Napi::Value v = o.Get(key);
    if (positive_or_null && (v.IsNull() || v.IsUndefined())) return 0;
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!v.IsNumber() || !std::isfinite(d) || (positive_or_null ? !(d > 0) : !(d >= 0)))
      throw_range(c_, std::string("config.") + key + (positive_or_null ? " must be a positive number or null, got " : " must be a finite number >= 0, got ") +
                          (v.IsNumber() ? std::to_string(d) : kind_of(v)));
    return d;
  }

  // o[key]: a typed array of `n` elements; Float32Array, or also Uint16Array (bf16 bits) when `matrix`. Null when
  // `optional` and absent.
  const void* array(Napi::Object o, const std::string& where, const char* key, int64_t n, const char* formula,
                    bool matrix, bool optional, bool* bf16 = nullptr) {
    Napi::Value v = o.Get(key);
    const std::string name = where + "." + key;
    if (optional && (v.IsNull() || v.IsUndefined())) return nullptr;
    TypedInfo t;
    const bool ok = typed_info(c_.info.Env(), v, &t) &&
                    (t.type == napi_float32_array || (matrix && t.type == napi_uint16_array));
    if (!ok)
      throw_type(c_, name + " must be a " + (matrix ? "Float32Array or Uint16Array (bfloat16)" : "Float32Array") +
                         (optional ? " or null" : "") + ", got " + kind_of(v));
    if (t.data == nullptr && t.length != 0) throw_type(c_, name + " is detached");
    if (static_cast<int64_t>(t.length) != n) {
      std::ostringstream os;
      os << name << " has " << t.length << " elements, expected " << count_desc(formula, n);
      throw_range(c_, os.str());
    }
    if (bf16) *bf16 = t.type == napi_uint16_array;
    h_.arrays.push_back({name, Napi::Persistent(v), t.data, t.length});
    return t.data;
  }

  LargeMatrix matrix(Napi::Object o, const std::string& where, const char* key, int64_t rows, int64_t cols,
                     const char* formula) {
    LargeMatrix mat;
    mat.rows = rows, mat.cols = cols;
    mat.data = array(o, where, key, rows * cols, formula, true, false, &mat.bf16);
    return mat;
  }
  const float* vec(Napi::Object o, const std::string& where, const char* key, int64_t n, const char* formula,
                   bool optional) {
    return static_cast<const float*>(array(o, where, key, n, formula, false, optional));
  }

 private:
  const ArgCtx& c_;
  DecoderHolder& h_;
};

// Every borrowed array still has the data pointer and length it had when validated (JavaScript may have
// detached or resized one since: reading config getters, or any time after creation).
void recheck(const ArgCtx& c, const DecoderHolder& h) {
  for (const Borrowed& b : h.arrays) {
    TypedInfo t;
    if (!typed_info(c.info.Env(), b.ref.Value(), &t) || t.data != b.data || t.length != b.length)
      throw_type(c, b.name + " was detached or resized after largeDecoderCreate read it");
  }
}

Napi::Value LargeDecoderCreate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "largeDecoderCreate"};
  require_count(c, 2);
  auto h = std::make_unique<DecoderHolder>();
  Reader rd(c, *h);
  Napi::Object cfg = rd.object(info[0], "config");
  LargeDecoderModel& m = h->m;
  const int64_t V = m.V = rd.integer(cfg, "vocabSize", 1, kMaxDim);
  const int64_t E = m.E = rd.integer(cfg, "embeddingDim", 1, kMaxDim);
  const int64_t NH = m.NH = rd.integer(cfg, "numHeads", 1, 4096);
  const int64_t DK = m.DK = rd.integer(cfg, "qkHeadDim", 1, kMaxDim);
  const int64_t DV = m.DV = rd.integer(cfg, "vHeadDim", 1, kMaxDim);
  const int64_t up = m.up = rd.integer(cfg, "ffnUpDim", 1, kMaxDim);
  m.chunk = rd.integer(cfg, "chunkSize", 1, 1 << 16);
  m.norm_eps = rd.number(cfg, "normEps", false);
  m.eps = rd.number(cfg, "eps", false);
  m.gate_cap = rd.number(cfg, "gateSoftCap", true);
  m.out_cap = rd.number(cfg, "outputSoftCap", true);
  const int64_t qk = checked_product(c, "numHeads*qkHeadDim", {NH, DK}), vd = checked_product(c, "numHeads*vHeadDim", {NH, DV});
  checked_product(c, "vocabSize*embeddingDim", {V, E});
  checked_product(c, "2*ffnUpDim*embeddingDim", {2, up, E});
  const int64_t width = 2 * qk + 2 * vd + 2 * NH;
  checked_product(c, "(2 qk + 2 vd + 2 NH)*embeddingDim", {width, E});
  checked_product(c, "embeddingDim*vDim", {E, vd});

  Napi::Object w = rd.object(info[1], "weights");
  m.embedding = rd.matrix(w, "weights", "embedding", V, E, "vocabSize*embeddingDim");
  m.head = rd.matrix(w, "weights", "head", V, E, "vocabSize*embeddingDim");
  m.out_norm = rd.vec(w, "weights", "outNorm", E, "embeddingDim", true);
  m.out_norm_b = m.out_norm ? rd.vec(w, "weights", "outNormBias", E, "embeddingDim", true) : nullptr;
  Napi::Value bv = w.Get("blocks");
  if (!bv.IsArray()) throw_type(c, "weights.blocks must be an Array, got " + kind_of(bv));
  Napi::Array blocks = bv.As<Napi::Array>();
  if (blocks.Length() > 65536) throw_range(c, "weights.blocks has " + std::to_string(blocks.Length()) + " entries, at most 65536");
  for (uint32_t i = 0; i < blocks.Length(); ++i) {
    const std::string where = "weights.blocks[" + std::to_string(i) + "]";
    Napi::Object b = rd.object(blocks.Get(i), where);
    LargeDecoderBlock blk;
    blk.norm_m = rd.vec(b, where, "normM", E, "embeddingDim", false);
    blk.norm_m_b = rd.vec(b, where, "normMBias", E, "embeddingDim", true);
    blk.w_in = rd.matrix(b, where, "wIn", width, E, "(2 qk + 2 vd + 2 numHeads)*embeddingDim");
    blk.b_in = rd.vec(b, where, "bIn", width, "2 qk + 2 vd + 2 numHeads", true);
    blk.mh_w = rd.vec(b, where, "mhW", vd, "numHeads*vHeadDim", false);
    blk.mh_b = rd.vec(b, where, "mhB", vd, "numHeads*vHeadDim", true);
    blk.w_out = rd.matrix(b, where, "wOut", E, vd, "embeddingDim*numHeads*vHeadDim");
    blk.b_out = rd.vec(b, where, "bOut", E, "embeddingDim", true);
    blk.norm_f = rd.vec(b, where, "normF", E, "embeddingDim", false);
    blk.norm_f_b = rd.vec(b, where, "normFBias", E, "embeddingDim", true);
    blk.w_up = rd.matrix(b, where, "wUp", 2 * up, E, "2*ffnUpDim*embeddingDim");
    blk.b_up = rd.vec(b, where, "bUp", 2 * up, "2*ffnUpDim", true);
    blk.w_down = rd.matrix(b, where, "wDown", E, up, "embeddingDim*ffnUpDim");
    blk.b_down = rd.vec(b, where, "bDown", E, "embeddingDim", true);
    m.blocks.push_back(blk);
  }
  recheck(c, *h);  // reading the objects ran JavaScript (getters): nothing validated before may have moved since
  DecoderHolder* raw = h.get();
  Napi::External<DecoderHolder> ext =
      Napi::External<DecoderHolder>::New(info.Env(), raw, [](Napi::Env, DecoderHolder* p) { delete p; });
  h.release();
  ext.TypeTag(&kDecoderTag);
  return ext;
}

// largeDecoderForward's checked arguments
struct ForwardCall {
  const DecoderHolder* h = nullptr;
  float* logits = nullptr;
  const int32_t* tokens = nullptr;
  int64_t B = 0, S = 0;
  bool last_only = false;
  LargeRounding rounding = LargeRounding::Auto;
  int64_t max_rows = 0;
  std::vector<LargeStateIO> io;
  std::vector<Napi::Value> pinned;
};

ForwardCall parse_forward(const ArgCtx& c) {
  require_count(c, 9);
  ForwardCall f;
  Napi::Value hv = c.info[0];
  if (!hv.IsExternal() || !hv.As<Napi::External<DecoderHolder>>().CheckTypeTag(&kDecoderTag))
    throw_type(c, "decoder must be a handle returned by largeDecoderCreate, got " + kind_of(hv));
  f.h = hv.As<Napi::External<DecoderHolder>>().Data();
  const LargeDecoderModel& m = f.h->m;
  f.B = require_int(c, 3, "B", 1, 1 << 20);
  f.S = require_int(c, 4, "S", 1, 1 << 24);
  f.last_only = require_bool(c, 5, "lastOnly");
  const int64_t r = require_int(c, 6, "rounding", 0, 2);
  f.rounding = r == 0 ? LargeRounding::Off : r == 1 ? LargeRounding::On : LargeRounding::Auto;
  if (c.info.Length() > 9 && !c.info[9].IsUndefined()) f.max_rows = require_int(c, 9, "maxPieceRows", 0, int64_t{1} << 40);
  const int64_t R = checked_product(c, "B*S", {f.B, f.S});
  const int64_t nl = checked_product(c, "logits", {f.last_only ? f.B : R, m.V});
  checked_product(c, "B*S*(2 qk + 2 vd + 2 NH)", {R, 2 * m.NH * (m.DK + m.DV + 1)});
  checked_product(c, "B*S*2*ffnUpDim", {R, 2 * m.up});
  f.logits = require_f32(c, 1, "logits", nl, f.last_only ? describe("B*V", {{"B", f.B}, {"V", m.V}}) : describe("B*S*V", {{"B", f.B}, {"S", f.S}, {"V", m.V}}));
  f.tokens = require_i32(c, 2, "tokens", R, describe("B*S", {{"B", f.B}, {"S", f.S}}));
  for (int64_t i = 0; i < R; ++i)
    if (f.tokens[i] < 0 || f.tokens[i] >= m.V) {
      std::ostringstream os;
      os << "tokens[" << i << "] = " << f.tokens[i] << " is out of range [0, " << m.V << ") (vocabSize = " << m.V << ")";
      throw_range(c, os.str());
    }
  const int64_t nb = static_cast<int64_t>(m.blocks.size());
  const int64_t sizes[3] = {checked_product(c, "B*NH*DK*DV", {f.B, m.NH, m.DK, m.DV}), f.B * m.NH * m.DK, f.B * m.NH};
  const char* parts[3] = {"c", "n", "m"};
  std::vector<std::pair<const void*, size_t>> outs;
  for (int which = 0; which < 2; ++which) {
    const char* arg = which ? "stateOut" : "stateIn";
    Napi::Value av = c.info[7 + which];
    if (!av.IsArray()) throw_type(c, std::string(arg) + " must be an Array, got " + kind_of(av));
    Napi::Array a = av.As<Napi::Array>();
    if (a.Length() != static_cast<uint32_t>(3 * nb)) {
      std::ostringstream os;
      os << arg << " has " << a.Length() << " entries, expected 3*blocks = " << 3 * nb;
      throw_range(c, os.str());
    }
    f.io.resize(nb);
    for (int64_t bi = 0; bi < nb; ++bi) {
      int present = 0;
      for (int p = 0; p < 3; ++p) {
        Napi::Value v = a.Get(static_cast<uint32_t>(3 * bi + p));
        const std::string name = std::string(arg) + "[" + std::to_string(3 * bi + p) + "] (block " + std::to_string(bi) + " " + parts[p] + ")";
        if (!which && (v.IsNull() || v.IsUndefined())) continue;
        TypedInfo t;
        if (!typed_info(c.info.Env(), v, &t) || t.type != napi_float32_array)
          throw_type(c, name + " must be a Float32Array" + (which ? "" : " or null") + ", got " + kind_of(v));
        if (t.data == nullptr && t.length != 0) throw_type(c, name + " is detached");
        if (static_cast<int64_t>(t.length) != sizes[p]) {
          std::ostringstream os;
          os << name << " has " << t.length << " elements, expected " << (p == 0 ? "B*NH*DK*DV" : p == 1 ? "B*NH*DK" : "B*NH") << " = " << sizes[p];
          throw_range(c, os.str());
        }
        float* d = static_cast<float*>(t.data);
        if (which) {
          (p == 0 ? f.io[bi].c : p == 1 ? f.io[bi].n : f.io[bi].m) = d;
          outs.push_back({d, t.length * 4});
        } else {
          (p == 0 ? f.io[bi].c0 : p == 1 ? f.io[bi].n0 : f.io[bi].m0) = d;
          ++present;
        }
        f.pinned.push_back(v);
      }
      if (!which && present != 0 && present != 3)
        throw_type(c, "stateIn: block " + std::to_string(bi) + " has " + std::to_string(present) + " of its c, n, m; give all three or none (null: the zero state)");
    }
  }
  // outputs must not overlap each other, the logits or the tokens (an output may be its own block's input: in place)
  std::vector<std::pair<const void*, size_t>> all = outs;
  all.push_back({f.logits, static_cast<size_t>(nl) * 4});
  for (size_t i = 0; i < all.size(); ++i)
    for (size_t j = i + 1; j < all.size(); ++j) {
      const char* a0 = static_cast<const char*>(all[i].first);
      const char* b0 = static_cast<const char*>(all[j].first);
      if (a0 < b0 + all[j].second && b0 < a0 + all[i].second) throw_range(c, "stateOut arrays and logits must not overlap one another");
    }
  require_no_overlap(c, "logits", f.logits, static_cast<size_t>(nl) * 4, "tokens", f.tokens, static_cast<size_t>(R) * 4);
  for (int64_t bi = 0; bi < nb; ++bi) {
    const LargeStateIO& s = f.io[bi];
    const std::pair<const float*, float*> same[3] = {{s.c0, s.c}, {s.n0, s.n}, {s.m0, s.m}};
    for (int p = 0; p < 3; ++p) {
      if (!same[p].first || same[p].first == same[p].second) continue;
      for (const auto& o : all) {
        const char* in = reinterpret_cast<const char*>(same[p].first);
        const char* out = static_cast<const char*>(o.first);
        if (in < out + o.second && out < in + sizes[p] * 4)
          throw_range(c, "stateIn[" + std::to_string(3 * bi + p) + "] overlaps an output without being its own block's output (in place)");
      }
    }
  }
  recheck(c, *f.h);
  return f;
}

Napi::Value LargeDecoderForward(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "largeDecoderForward"};
  const ForwardCall f = parse_forward(c);
  run_sync(info.Env(), c.fn, [&] {
    try {
      large_decoder_forward(f.h->m, f.tokens, f.B, f.S, f.io.data(), f.logits, f.last_only, f.rounding, f.max_rows);
    } catch (const std::bad_alloc&) {
      throw std::runtime_error("out of memory");
    }
  });
  return info.Env().Undefined();
}

// The handle, logits and state arrays stay pinned until the promise settles (the handle holds the weights); the
// tokens are copied at the call.
Napi::Value LargeDecoderForwardAsync(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "largeDecoderForwardAsync"};
  ForwardCall f = parse_forward(c);
  auto tokens = std::make_shared<std::vector<int32_t>>(f.tokens, f.tokens + f.B * f.S);
  std::vector<Napi::Value> pinned = {info[0], info[1]};
  pinned.insert(pinned.end(), f.pinned.begin(), f.pinned.end());
  const DecoderHolder* h = f.h;
  float* logits = f.logits;
  const int64_t B = f.B, S = f.S;
  const bool last_only = f.last_only;
  const LargeRounding rounding = f.rounding;
  const int64_t max_rows = f.max_rows;
  auto io = std::make_shared<std::vector<LargeStateIO>>(std::move(f.io));
  auto work = [h, logits, tokens, B, S, last_only, rounding, max_rows, io] {
    large_decoder_forward(h->m, tokens->data(), B, S, io->data(), logits, last_only, rounding, max_rows);
  };
  return run_async(info.Env(), c.fn, work, pinned);
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("largeDecoderCreate", Napi::Function::New(env, LargeDecoderCreate, "largeDecoderCreate"));
  exports.Set("largeDecoderForward", Napi::Function::New(env, LargeDecoderForward, "largeDecoderForward"));
  exports.Set("largeDecoderForwardAsync", Napi::Function::New(env, LargeDecoderForwardAsync, "largeDecoderForwardAsync"));
}

}  // namespace
}  // namespace xlstm

XLSTM_REGISTER(large_decoder, xlstm::Init);
