// Binding layer: module entry point. Calls every family registered with XLSTM_REGISTER and exports the
// runtime controls (threads, SIMD level, backends).
#include <napi.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <utility>
#include <vector>

#include "binding/args.h"
#include "binding/registry.h"
#include "cuda_api.h"
#include "kernels/bf16.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul_precision.h"
#include "kernels/threadpool.h"

namespace xlstm {
namespace {

std::vector<std::pair<const char*, InitFn>>& registry() {
  static std::vector<std::pair<const char*, InitFn>> r;  // function-local: safe during static init
  return r;
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "setNumThreads"};
  set_num_threads(static_cast<int>(require_int(c, 0, "n", 0, 1024)));
  return info.Env().Undefined();
}

Napi::Value GetSimdLevel(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), simd_level_name(simd_level()));
}

Napi::Value SetSimdLevel(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "setSimdLevel"};
  std::string s = require_string(c, 0, "level");
  SimdLevel l;
  if (s == "scalar") l = SimdLevel::Scalar;
  else if (s == "avx2") l = SimdLevel::AVX2;
  else if (s == "avx512") l = SimdLevel::AVX512;
  else throw_range(c, "level must be \"scalar\", \"avx2\" or \"avx512\", got \"" + s + "\"");
  set_simd_level(l);
  return Napi::String::New(info.Env(), simd_level_name(simd_level()));
}

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("available", true);
  cpu.Set("simd", simd_level_name(simd_level()));
  cpu.Set("simdSupported", simd_level_name(simd_level_supported()));
  cpu.Set("threads", num_threads());
  // the bf16 hardware bf16Linear's roundX (rounded activations) runs on now
  cpu.Set("bf16", bf16_amx_available() ? "amx" : bf16_dot_available() ? "avx512bf16" : "none");
  cpu.Set("matmulPrecision", matmul_precision() == MatmulPrecision::Medium ? "medium" : "highest");
  out.Set("cpu", cpu);

  Napi::Object cu = Napi::Object::New(env);
  cu.Set("compiled", cuda::compiled());
  std::string reason;
  int n = cuda::device_count(&reason);
  cu.Set("available", n > 0);
  cu.Set("emulated", n > 0 && cuda::emulated());
  Napi::Array devices = Napi::Array::New(env);
  for (int i = 0; i < n; ++i) {
    cuda::DeviceInfo d = cuda::device_info(i);
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", i);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("totalMemoryBytes", static_cast<double>(d.total_memory));
    o.Set("multiprocessors", d.multiprocessors);
    devices.Set(static_cast<uint32_t>(i), o);
  }
  cu.Set("devices", devices);
  if (n == 0) cu.Set("reason", reason);
  out.Set("cuda", cu);
  return out;
}

// Tensors are typed arrays of up to tens of MiB, allocated and dropped every training step. glibc serves such
// sizes with fresh mmap()s by default, so every step page-faults and zeroes all of its activations again
// (measured at W3: ~20 % of a layer's forward+backward time in the kernel). Raising the mmap and trim thresholds
// lets freed blocks be reused from the heap instead. Process-wide, like any allocator setting: opt out with
// XLSTM_MALLOC_TUNING=0.
void tune_allocator() {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  const char* env = std::getenv("XLSTM_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return;
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace

Registration::Registration(const char* family, InitFn fn) { registry().emplace_back(family, fn); }

void init_all_families(Napi::Env env, Napi::Object exports) {
  for (auto& [family, fn] : registry()) fn(env, exports);
}

}  // namespace xlstm

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  static std::once_flag tuned;  // once per process, even when worker threads load the addon again
  std::call_once(tuned, xlstm::tune_allocator);
  exports.Set("getNumThreads", Napi::Function::New(env, xlstm::GetNumThreads, "getNumThreads"));
  exports.Set("setNumThreads", Napi::Function::New(env, xlstm::SetNumThreads, "setNumThreads"));
  exports.Set("getSimdLevel", Napi::Function::New(env, xlstm::GetSimdLevel, "getSimdLevel"));
  exports.Set("setSimdLevel", Napi::Function::New(env, xlstm::SetSimdLevel, "setSimdLevel"));
  exports.Set("backends", Napi::Function::New(env, xlstm::Backends, "backends"));
  xlstm::init_all_families(env, exports);
  return exports;
}

NODE_API_MODULE(xlstm, Init)
