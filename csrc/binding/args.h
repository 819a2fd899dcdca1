// Binding layer: argument checks shared by every family. Each helper throws a JS TypeError (wrong kind) or
// RangeError (wrong size/value) whose message names the native function, the argument and what it got, e.g.
//   RangeError: gemm: a has 96 elements, expected M*K = 128 (M=16, K=8)
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace xlstm {

struct ArgCtx {
  const Napi::CallbackInfo& info;
  const char* fn;  // the JS name of the native export, used in messages
};

[[noreturn]] void throw_type(const ArgCtx& c, const std::string& msg);
[[noreturn]] void throw_range(const ArgCtx& c, const std::string& msg);

void require_count(const ArgCtx& c, size_t n);

// A Float32Array argument; `expected` elements (or any length when expected < 0). `desc` explains the
// expected count in terms of sizes, e.g. "M*K (M=16, K=8)".
float* require_f32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");
int32_t* require_i32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");
int64_t* require_i64(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");
uint16_t* require_u16(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");
uint8_t* require_u8(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");
// Any typed array (also on a SharedArrayBuffer): its first element (null when empty or detached) and *length in
// elements. TypeError naming the argument when it is not a typed array.
void* typed_data(const ArgCtx& c, size_t i, const char* name, int64_t* length);
// Length of a typed-array argument, in elements (after checking it is one).
int64_t typed_length(const ArgCtx& c, size_t i, const char* name);

// Whether d is an integer in [lo, hi] (NaN, infinities and fractions are not; no undefined float->int cast).
bool int_in_range(double d, int64_t lo, int64_t hi);
// An integer argument in [lo, hi].
int64_t require_int(const ArgCtx& c, size_t i, const char* name, int64_t lo = 0, int64_t hi = INT64_MAX);
double require_number(const ArgCtx& c, size_t i, const char* name);
bool require_bool(const ArgCtx& c, size_t i, const char* name);
std::string require_string(const ArgCtx& c, size_t i, const char* name);
// A string argument that must be one of `choices`: its index (RangeError: `name must be "a", "b" or "c", got "x"`).
int require_choice(const ArgCtx& c, size_t i, const char* name, std::initializer_list<const char*> choices);
// An array of integers (a shape), each in [lo, hi].
std::vector<int64_t> require_int_array(const ArgCtx& c, size_t i, const char* name, int64_t lo = 0,
                                       int64_t hi = INT64_MAX);

// Product of sizes with an overflow check (RangeError naming `what`).
int64_t checked_product(const ArgCtx& c, const char* what, std::initializer_list<int64_t> sizes);
int64_t checked_product(const ArgCtx& c, const char* what, const std::vector<int64_t>& sizes);

// A Float32Array, or null/undefined (returns nullptr): optional inputs and outputs.
float* optional_f32(const ArgCtx& c, size_t i, const char* name, int64_t expected, const std::string& desc = "");

// The JS kind of a value for messages: "Float32Array", "number", "null", ...
std::string kind_of(const Napi::Value& v);

// One buffer argument for the aliasing checks (ptr may be null: absent, skipped).
struct Region {
  const char* name;
  const void* ptr;
  size_t bytes;
};

// RangeError when an output overlaps an input or another output (kernels do not support aliasing).
void require_disjoint(const ArgCtx& c, std::initializer_list<Region> outputs, std::initializer_list<Region> inputs);

// Throws a RangeError when an output's bytes overlap an input's (kernels do not support aliasing).
void require_no_overlap(const ArgCtx& c, const char* out_name, const void* out, size_t out_bytes,
                        const char* in_name, const void* in, size_t in_bytes);

// "a*b (a=2, b=3)" style descriptions for messages.
std::string describe(const char* formula, std::initializer_list<std::pair<const char*, int64_t>> sizes);

}  // namespace xlstm
