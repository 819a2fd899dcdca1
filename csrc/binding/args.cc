// Binding layer: implementations of the argument checks in args.h.
#include "binding/args.h"

#include <cmath>
#include <sstream>

namespace xlstm {

void throw_type(const ArgCtx& c, const std::string& msg) {
  throw Napi::TypeError::New(c.info.Env(), std::string(c.fn) + ": " + msg);
}

void throw_range(const ArgCtx& c, const std::string& msg) {
  throw Napi::RangeError::New(c.info.Env(), std::string(c.fn) + ": " + msg);
}

void require_count(const ArgCtx& c, size_t n) {
  if (c.info.Length() < n) {
    std::ostringstream os;
    os << "expected " << n << " arguments, got " << c.info.Length();
    throw_type(c, os.str());
  }
}

namespace {

const char* typed_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: break;
  }
  return "TypedArray";
}

}  // namespace

std::string kind_of(const Napi::Value& v) {
  if (v.IsTypedArray()) return typed_name(v.As<Napi::TypedArray>().TypedArrayType());
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsArray()) return "Array";
  if (v.IsNumber()) return "number";
  if (v.IsString()) return "string";
  if (v.IsBoolean()) return "boolean";
  if (v.IsBigInt()) return "bigint";
  if (v.IsFunction()) return "function";
  return "object";
}

void* typed_data(const ArgCtx& c, size_t i, const char* name, int64_t* length) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsTypedArray()) throw_type(c, std::string(name) + " must be a typed array, got " + kind_of(v));
  // napi_get_typedarray_info rather than TypedArray::ArrayBuffer(): the latter throws a bare "Invalid argument" for
  // arrays on a SharedArrayBuffer, which are as usable as any other memory here.
  napi_typedarray_type type;
  size_t n = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(c.info.Env(), v, &type, &n, &data, nullptr, nullptr) != napi_ok)
    throw_type(c, std::string(name) + " could not be read as a typed array");
  if (data == nullptr && n != 0) throw_type(c, std::string(name) + " is detached");
  *length = static_cast<int64_t>(n);
  return data;
}

namespace {

void* require_typed(const ArgCtx& c, size_t i, const char* name, napi_typedarray_type want, const char* want_name,
                    int64_t expected, const std::string& desc) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want) {
    throw_type(c, std::string(name) + " must be a " + want_name + ", got " + kind_of(v));
  }
  int64_t len = 0;
  void* data = typed_data(c, i, name, &len);
  if (expected >= 0 && len != expected) {
    std::ostringstream os;
    os << name << " has " << len << " elements, expected " << (desc.empty() ? std::to_string(expected) : desc + " = " + std::to_string(expected));
    throw_range(c, os.str());
  }
  return data;
}

}  // namespace

float* require_f32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  return static_cast<float*>(require_typed(c, i, name, napi_float32_array, "Float32Array", expected, desc));
}
int32_t* require_i32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  return static_cast<int32_t*>(require_typed(c, i, name, napi_int32_array, "Int32Array", expected, desc));
}
int64_t* require_i64(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  return static_cast<int64_t*>(require_typed(c, i, name, napi_bigint64_array, "BigInt64Array", expected, desc));
}
uint16_t* require_u16(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  return static_cast<uint16_t*>(require_typed(c, i, name, napi_uint16_array, "Uint16Array", expected, desc));
}
uint8_t* require_u8(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  return static_cast<uint8_t*>(require_typed(c, i, name, napi_uint8_array, "Uint8Array", expected, desc));
}

int64_t typed_length(const ArgCtx& c, size_t i, const char* name) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsTypedArray()) throw_type(c, std::string(name) + " must be a typed array, got " + kind_of(v));
  return static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength());
}

bool int_in_range(double d, int64_t lo, int64_t hi) {
  // Range first, in doubles: converting NaN or a double outside int64_t to int64_t is undefined behaviour.
  // 2^63 is the first double above INT64_MAX (which itself rounds up to 2^63 as a double).
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi) && d < 9223372036854775808.0)) return false;
  return d == std::trunc(d) && static_cast<int64_t>(d) >= lo && static_cast<int64_t>(d) <= hi;
}

int64_t require_int(const ArgCtx& c, size_t i, const char* name, int64_t lo, int64_t hi) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsNumber()) throw_type(c, std::string(name) + " must be an integer, got " + kind_of(v));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!int_in_range(d, lo, hi)) {
    std::ostringstream os;
    os << name << " must be an integer in [" << lo << ", " << hi << "], got " << d;
    throw_range(c, os.str());
  }
  return static_cast<int64_t>(d);
}

double require_number(const ArgCtx& c, size_t i, const char* name) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsNumber()) throw_type(c, std::string(name) + " must be a number, got " + kind_of(v));
  return v.As<Napi::Number>().DoubleValue();
}

bool require_bool(const ArgCtx& c, size_t i, const char* name) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsBoolean()) throw_type(c, std::string(name) + " must be a boolean, got " + kind_of(v));
  return v.As<Napi::Boolean>().Value();
}

std::string require_string(const ArgCtx& c, size_t i, const char* name) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsString()) throw_type(c, std::string(name) + " must be a string, got " + kind_of(v));
  return v.As<Napi::String>().Utf8Value();
}

int require_choice(const ArgCtx& c, size_t i, const char* name, std::initializer_list<const char*> choices) {
  const std::string v = require_string(c, i, name);
  int k = 0;
  std::string list;
  for (const char* choice : choices) {
    if (v == choice) return k;
    list += (k == 0 ? "" : k + 1 == static_cast<int>(choices.size()) ? " or " : ", ") + ("\"" + std::string(choice) + "\"");
    ++k;
  }
  throw_range(c, std::string(name) + " must be " + list + ", got \"" + v + "\"");
}

std::vector<int64_t> require_int_array(const ArgCtx& c, size_t i, const char* name, int64_t lo, int64_t hi) {
  require_count(c, i + 1);
  Napi::Value v = c.info[i];
  if (!v.IsArray()) throw_type(c, std::string(name) + " must be an array of integers, got " + kind_of(v));
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t k = 0; k < a.Length(); ++k) {
    Napi::Value e = a.Get(k);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.5;
    if (!e.IsNumber() || !int_in_range(d, lo, hi)) {
      std::ostringstream os;
      os << name << "[" << k << "] must be an integer in [" << lo << ", " << hi << "], got "
         << (e.IsNumber() ? std::to_string(d) : kind_of(e));
      throw_range(c, os.str());
    }
    out[k] = static_cast<int64_t>(d);
  }
  return out;
}

int64_t checked_product(const ArgCtx& c, const char* what, std::initializer_list<int64_t> sizes) {
  return checked_product(c, what, std::vector<int64_t>(sizes));
}

int64_t checked_product(const ArgCtx& c, const char* what, const std::vector<int64_t>& sizes) {
  int64_t p = 1;
  for (int64_t s : sizes) {
    if (s < 0) throw_range(c, std::string(what) + ": negative size");
    if (s != 0 && p > (INT64_C(1) << 50) / s) throw_range(c, std::string(what) + ": size overflows");
    p *= s;
  }
  return p;
}

float* optional_f32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc) {
  if (c.info.Length() <= i || c.info[i].IsNull() || c.info[i].IsUndefined()) return nullptr;
  return require_f32(c, i, name, expected, desc);
}

void require_disjoint(const ArgCtx& c, std::initializer_list<Region> outputs, std::initializer_list<Region> inputs) {
  std::vector<Region> o(outputs);
  for (size_t a = 0; a < o.size(); ++a) {
    if (!o[a].ptr) continue;
    for (const Region& in : inputs)
      if (in.ptr) require_no_overlap(c, o[a].name, o[a].ptr, o[a].bytes, in.name, in.ptr, in.bytes);
    for (size_t b = a + 1; b < o.size(); ++b)
      if (o[b].ptr) require_no_overlap(c, o[a].name, o[a].ptr, o[a].bytes, o[b].name, o[b].ptr, o[b].bytes);
  }
}

void require_no_overlap(const ArgCtx& c, const char* out_name, const void* out, size_t out_bytes,
                        const char* in_name, const void* in, size_t in_bytes) {
  auto o = reinterpret_cast<uintptr_t>(out), i = reinterpret_cast<uintptr_t>(in);
  if (out_bytes && in_bytes && o < i + in_bytes && i < o + out_bytes)
    throw_range(c, std::string(out_name) + " overlaps " + in_name + " (outputs must not alias inputs)");
}

std::string describe(const char* formula, std::initializer_list<std::pair<const char*, int64_t>> sizes) {
  std::ostringstream os;
  os << formula << " (";
  bool first = true;
  for (auto& [n, v] : sizes) {
    os << (first ? "" : ", ") << n << "=" << v;
    first = false;
  }
  os << ")";
  return os.str();
}

}  // namespace xlstm
