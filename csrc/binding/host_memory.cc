// Binding layer: releasing host storage now instead of at the next garbage collection (lib/scope.ts).
// JS: releaseHostBuffers(buffers, bytes) -> bytes released; reportHostMemory(delta).
//
// A training step allocates tens of MB of typed arrays and drops them all. V8 frees an ArrayBuffer's memory only when
// a collection finds it unreachable, and it counts the bytes of ArrayBuffers as external memory: once that count is
// 64 MB above its lowest point since the last full collection, it forces a full mark-compact (~7 ms on 2 cores for the
// default `xlstm train` model, one per step). Storage made inside an xlstm.scope cannot be collected before the scope
// ends (the scope holds it), so counting it only buys useless collections: lib/host-scope.ts takes its bytes off the
// count when it is allocated, and counts them again when it leaves the scope alive. At the scope's end the rest is
// detached here (napi_detach_arraybuffer), which frees it at once; malloc serves the next step's allocations from it.
// A detached buffer's views have length 0: Tensor.data then throws, and every kernel's length check refuses it.
#include <napi.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "binding/host_pins.h"
#include "binding/registry.h"

namespace xlstm {
namespace {

// Larger than any host array; keeps a bad count from swamping V8's (which CHECK-fails past 2^60).
constexpr double kMaxBytes = 1099511627776.0;  // 2^40

std::mutex& pins_mutex() {
  static std::mutex m;
  return m;
}
std::unordered_map<const void*, int64_t>& pins() {
  static std::unordered_map<const void*, int64_t> p;
  return p;
}

// releaseHostBuffers(buffers, bytes): the scope's buffers, whose sizes (bytes[i]) it took off V8's external-memory
// count when they were allocated (reportHostMemory). Each is first counted again, then detached, which frees it and
// takes its bytes off the count: so the count never holds a scope's storage, and a step's working set (often more
// than V8's 64 MB step) no longer forces a full mark-compact. A buffer that pending native work uses (host_pins.h),
// that cannot be detached (a WebAssembly memory's) or that holds no memory stays counted and is left to garbage
// collection. Returns the bytes released.
Napi::Value ReleaseHostBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsArray() || !info[1].IsArray())
    throw Napi::TypeError::New(env, "releaseHostBuffers: expected (buffers: ArrayBuffer[], bytes: number[])");
  Napi::Array list = info[0].As<Napi::Array>(), sizes = info[1].As<Napi::Array>();
  if (list.Length() != sizes.Length())
    throw Napi::RangeError::New(env, "releaseHostBuffers: " + std::to_string(list.Length()) + " buffers but " +
                                         std::to_string(sizes.Length()) + " byte counts");
  std::vector<int64_t> counted(list.Length());
  for (uint32_t i = 0; i < list.Length(); ++i) {
    if (!list.Get(i).IsArrayBuffer())
      throw Napi::TypeError::New(env, "releaseHostBuffers: buffers[" + std::to_string(i) + "] is not an ArrayBuffer");
    Napi::Value n = sizes.Get(i);
    const double d = n.IsNumber() ? n.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= kMaxBytes) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw Napi::RangeError::New(env, "releaseHostBuffers: bytes[" + std::to_string(i) + "] must be an integer in [0, 2^40]");
    counted[i] = static_cast<int64_t>(d);
  }
  double released = 0;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    Napi::Value v = list.Get(i);
    int64_t total = 0;
    if (counted[i]) napi_adjust_external_memory(env, counted[i], &total);
    void* data = nullptr;
    size_t bytes = 0;
    if (napi_get_arraybuffer_info(env, v, &data, &bytes) != napi_ok || data == nullptr || bytes == 0) continue;
    if (host_memory_pinned(data)) continue;
    if (napi_detach_arraybuffer(env, v) == napi_ok) released += static_cast<double>(bytes);
  }
  return Napi::Number::New(env, released);
}

// reportHostMemory(delta): adds delta bytes to V8's external-memory count (negative: takes them off); returns the count
// after it (delta 0: reads it).
Napi::Value ReportHostMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "reportHostMemory: expected (delta: number)");
  const double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= -kMaxBytes && d <= kMaxBytes) || d != static_cast<double>(static_cast<int64_t>(d)))
    throw Napi::RangeError::New(env, "reportHostMemory: delta must be an integer in [-2^40, 2^40] bytes");
  int64_t total = 0;
  napi_adjust_external_memory(env, static_cast<int64_t>(d), &total);
  return Napi::Number::New(env, static_cast<double>(total));
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("releaseHostBuffers", Napi::Function::New(env, ReleaseHostBuffers, "releaseHostBuffers"));
  exports.Set("reportHostMemory", Napi::Function::New(env, ReportHostMemory, "reportHostMemory"));
}

}  // namespace

void pin_host_memory(const void* base) {
  if (!base) return;
  std::lock_guard<std::mutex> lock(pins_mutex());
  ++pins()[base];
}

void unpin_host_memory(const void* base) {
  if (!base) return;
  std::lock_guard<std::mutex> lock(pins_mutex());
  auto it = pins().find(base);
  if (it != pins().end() && --it->second <= 0) pins().erase(it);
}

bool host_memory_pinned(const void* base) {
  std::lock_guard<std::mutex> lock(pins_mutex());
  return pins().count(base) != 0;
}

}  // namespace xlstm

XLSTM_REGISTER(host_memory, xlstm::Init);
