// Binding layer, CUDA device memory (cuda/memory.cu): device buffers (cudaMalloc, cudaFree, cudaUpload,
// cudaDownload, cudaCopyBuffer, cudaZero), cudaSynchronize, cudaMemoryStats, cudaEmptyCache; and the caching
// allocator over a simulated address space (allocatorSim*), which needs no GPU: the CPU tests drive every path of
// the allocator the GPU uses (best fit, splitting, merging, cache release on out-of-memory) through it.
#include <napi.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "args.h"
#include "async.h"
#include "capture_scratch.h"
#include "cuda_api.h"
#include "device_buffer.h"
#include "registry.h"

namespace xlstm {

namespace {
constexpr napi_type_tag kDeviceBufferTag = {0x5b1e7c3a9d2f4068ULL, 0xa4c2e6081f3d5b79ULL};
constexpr napi_type_tag kSimTag = {0x2e9a4c6b8d0f1357ULL, 0x97b5d3f1e2c4a608ULL};
constexpr int64_t kMaxBytes = INT64_C(1) << 50;

// Bytes of live device buffers reported to V8 as external memory (cudaMemoryStats().gcReportedBytes).
std::atomic<int64_t> gc_reported_total{0};

// The reports of freed buffers whose memory a device session still borrows (a model's weights freed or moved while
// its session lives): those bytes stay reported until the memory really goes back, so that garbage collection keeps
// weighing a session dropped without dispose(); sweep_gc_reports withdraws them then, from the environment (main
// thread or worker) that reported them. Never destroyed, like the allocator (finalizers may run late at exit).
struct LingeringReport {
  std::weak_ptr<void> mem;
  int64_t bytes;
  napi_env env;
};
std::mutex& lingering_mu() {
  static auto* m = new std::mutex;
  return *m;
}
std::vector<LingeringReport>& lingering() {
  static auto* v = new std::vector<LingeringReport>;
  return *v;
}

}  // namespace

void sweep_gc_reports(Napi::Env env) {
  int64_t gone = 0;
  {
    std::lock_guard<std::mutex> lock(lingering_mu());
    std::vector<LingeringReport>& list = lingering();
    for (size_t i = 0; i < list.size();) {
      if (list[i].env == static_cast<napi_env>(env) && list[i].mem.expired()) {
        gone += list[i].bytes;
        list[i] = list.back();
        list.pop_back();
      } else {
        ++i;
      }
    }
  }
  if (gone) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -gone);
    gc_reported_total -= gone;
  }
}

namespace {

void release(Napi::Env env, DeviceBuffer* b) {
  if (!b->ptr) return;
  if (b->gc_reported && b->mem.use_count() > 1) {  // borrowed: the report stays until the borrower lets go
    std::lock_guard<std::mutex> lock(lingering_mu());
    lingering().push_back(LingeringReport{b->mem, b->gc_reported, static_cast<napi_env>(env)});
    b->gc_reported = 0;
  }
  b->mem.reset();  // the memory goes back now, or when the last session borrowing it goes
  b->ptr = nullptr;
  // the bytes reported so that garbage collection weighs unreachable device buffers (its safety net role)
  if (b->gc_reported) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -b->gc_reported);
    gc_reported_total -= b->gc_reported;
  }
  b->gc_reported = 0;
  sweep_gc_reports(env);  // (a session that borrowed others may have gone since)
}

// Reports a live buffer's bytes to V8 as external memory (once), so that garbage collection weighs it.
void report_to_gc(Napi::Env env, DeviceBuffer* b) {
  if (!b->ptr || b->gc_reported) return;
  b->gc_reported = b->bytes;
  gc_reported_total += b->bytes;
  Napi::MemoryManagement::AdjustExternalMemory(env, b->bytes);
}

DeviceBuffer* device_buffer_of(const ArgCtx& c, Napi::Value v, const std::string& name, bool allow_freed) {
  if (!v.IsExternal() || !v.As<Napi::External<DeviceBuffer>>().CheckTypeTag(&kDeviceBufferTag))
    throw_type(c, name + " must be a device buffer from cudaMalloc, got " + kind_of(v));
  DeviceBuffer* b = v.As<Napi::External<DeviceBuffer>>().Data();
  if (!b->ptr && !allow_freed) throw_type(c, name + " is a device buffer that was already freed");
  return b;
}

DeviceBuffer* device_buffer_arg(const ArgCtx& c, size_t i, const char* name, bool allow_freed) {
  return device_buffer_of(c, c.info[i], name, allow_freed);
}
}  // namespace

DeviceBuffer* device_buffer_value(const ArgCtx& c, Napi::Value v, const std::string& name) {
  return device_buffer_of(c, v, name, false);
}

void require_cuda_device(const ArgCtx& c) {
  std::string reason;
  if (cuda::device_count(&reason) <= 0)
    throw Napi::Error::New(c.info.Env(), std::string(c.fn) + ": CUDA is not available: " + reason);
}

void require_real_cuda_device(const ArgCtx& c) {
  if (cuda::emulated())
    throw Napi::Error::New(c.info.Env(), std::string(c.fn) + ": CUDA is not available: host emulation " +
                                             "(XLSTM_CUDA_EMULATE) has no CUDA kernels");
  require_cuda_device(c);
}

DeviceBuffer* require_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                    const std::string& desc) {
  if (i >= c.info.Length()) throw_type(c, std::string(name) + " is missing (argument " + std::to_string(i) + ")");
  DeviceBuffer* b = device_buffer_arg(c, i, name, false);
  if (min_bytes >= 0 && b->bytes < min_bytes)
    throw_range(c, std::string(name) + " holds " + std::to_string(b->bytes) + " bytes, expected at least " +
                       std::to_string(min_bytes) + (desc.empty() ? "" : " = " + desc));
  return b;
}

DeviceBuffer* optional_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                     const std::string& desc) {
  if (i >= c.info.Length() || c.info[i].IsNull() || c.info[i].IsUndefined()) return nullptr;
  return require_device_buffer(c, i, name, min_bytes, desc);
}

namespace {

// ---- device buffers --------------------------------------------------------------------------------------------

// cudaMalloc(bytes, gcTracked = true) -> buffer. gcTracked: its bytes are reported to V8 as external memory, so that
// garbage collection weighs the buffer (the safety net for handles nobody frees). Buffers that a cuda.scope will free
// are allocated untracked (cudaTrackGc reports one that leaves its scopes): reporting them made V8 run a full
// mark-compact every few MB of a training step's short-lived activations (several per step).
Napi::Value Malloc(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaMalloc"};
  require_count(c, 1);
  const int64_t bytes = require_int(c, 0, "bytes", 0, kMaxBytes);
  const bool tracked = info.Length() < 2 || info[1].IsUndefined() || require_bool(c, 1, "gcTracked");
  require_cuda_device(c);
  auto b = std::make_unique<DeviceBuffer>();
  run_sync(info.Env(), c.fn, [&] {
    void* p = cuda::device_malloc(static_cast<size_t>(bytes));
    b->mem = std::shared_ptr<void>(p, [](void* q) { cuda::device_free(q); });  // (frees p if this throws)
    b->ptr = p;
  });
  b->bytes = bytes;
  DeviceBuffer* raw = b.get();
  auto ext = Napi::External<DeviceBuffer>::New(info.Env(), raw, [](Napi::Env env, DeviceBuffer* p) {
    release(env, p);
    delete p;
  });
  b.release();  // the External owns it now (had New thrown, b would have freed it)
  ext.TypeTag(&kDeviceBufferTag);
  if (tracked) report_to_gc(info.Env(), raw);
  return ext;
}

// cudaTrackGc(buffer): reports an untracked live buffer's bytes to V8 as external memory (a tensor that leaves the
// cuda.scope that would have freed it); does nothing for a tracked or freed one.
Napi::Value TrackGc(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaTrackGc"};
  require_count(c, 1);
  DeviceBuffer* b = device_buffer_arg(c, 0, "buffer", true);
  report_to_gc(info.Env(), b);
  return info.Env().Undefined();
}

// cudaFree(buffer): gives the memory back now; freeing a freed buffer does nothing.
Napi::Value Free(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaFree"};
  require_count(c, 1);
  DeviceBuffer* b = device_buffer_arg(c, 0, "buffer", true);
  run_sync(info.Env(), c.fn, [&] { release(info.Env(), b); });
  return info.Env().Undefined();
}

// The byte range [offset, offset + bytes) of buffer argument i, checked.
void require_range(const ArgCtx& c, const DeviceBuffer* b, const char* name, int64_t offset, int64_t bytes) {
  if (offset > b->bytes || bytes > b->bytes - offset)
    throw_range(c, std::string(name) + ": bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                       ") are outside the buffer's " + std::to_string(b->bytes) + " bytes");
}

// cudaUpload(buffer, byteOffset, src): copies the typed array src into the buffer at byteOffset (synchronous).
Napi::Value Upload(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaUpload"};
  require_count(c, 3);
  DeviceBuffer* b = require_device_buffer(c, 0, "buffer", -1);
  const int64_t off = require_int(c, 1, "byteOffset", 0, kMaxBytes);
  int64_t n = 0;
  const void* src = typed_data(c, 2, "src", &n);
  const int64_t bytes = static_cast<int64_t>(c.info[2].As<Napi::TypedArray>().ByteLength());
  require_range(c, b, "buffer", off, bytes);
  run_sync(info.Env(), c.fn, [&] { cuda::copy_to_device(static_cast<char*>(b->ptr) + off, src, bytes); });
  return info.Env().Undefined();
}

// cudaDownload(buffer, byteOffset, dst): fills the typed array dst from the buffer at byteOffset (synchronous).
Napi::Value Download(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaDownload"};
  require_count(c, 3);
  DeviceBuffer* b = require_device_buffer(c, 0, "buffer", -1);
  const int64_t off = require_int(c, 1, "byteOffset", 0, kMaxBytes);
  int64_t n = 0;
  void* dst = typed_data(c, 2, "dst", &n);
  const int64_t bytes = static_cast<int64_t>(c.info[2].As<Napi::TypedArray>().ByteLength());
  require_range(c, b, "buffer", off, bytes);
  run_sync(info.Env(), c.fn, [&] { cuda::copy_to_host(dst, static_cast<const char*>(b->ptr) + off, bytes); });
  return info.Env().Undefined();
}

// cudaCopyBuffer(dst, dstByteOffset, src, srcByteOffset, bytes): device to device, enqueued.
Napi::Value CopyBuffer(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaCopyBuffer"};
  require_count(c, 5);
  DeviceBuffer* d = require_device_buffer(c, 0, "dst", -1);
  const int64_t doff = require_int(c, 1, "dstByteOffset", 0, kMaxBytes);
  DeviceBuffer* s = require_device_buffer(c, 2, "src", -1);
  const int64_t soff = require_int(c, 3, "srcByteOffset", 0, kMaxBytes);
  const int64_t bytes = require_int(c, 4, "bytes", 0, kMaxBytes);
  require_range(c, d, "dst", doff, bytes);
  require_range(c, s, "src", soff, bytes);
  if (d == s && doff < soff + bytes && soff < doff + bytes && doff != soff)
    throw_range(c, "dst and src ranges overlap within one buffer");
  run_sync(info.Env(), c.fn, [&] {
    cuda::copy_on_device(static_cast<char*>(d->ptr) + doff, static_cast<const char*>(s->ptr) + soff, bytes);
  });
  return info.Env().Undefined();
}

// cudaZero(buffer): all bytes to 0, enqueued.
Napi::Value Zero(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaZero"};
  require_count(c, 1);
  DeviceBuffer* b = require_device_buffer(c, 0, "buffer", -1);
  run_sync(info.Env(), c.fn, [&] { cuda::fill_zero(b->ptr, b->bytes); });
  return info.Env().Undefined();
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaSynchronize"};
  require_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::synchronize(); });
  return info.Env().Undefined();
}

Napi::Object stats_object(Napi::Env env, const cuda::AllocatorStats& s) {
  Napi::Object o = Napi::Object::New(env);
  auto put = [&](const char* k, int64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
  put("allocatedBytes", s.allocated_bytes);
  put("allocatedBytesPeak", s.allocated_bytes_peak);
  put("requestedBytes", s.requested_bytes);
  put("reservedBytes", s.reserved_bytes);
  put("reservedBytesPeak", s.reserved_bytes_peak);
  put("activeBlocks", s.active_blocks);
  put("cachedBlocks", s.cached_blocks);
  put("segments", s.segments);
  put("allocCalls", s.alloc_calls);
  put("freeCalls", s.free_calls);
  put("cacheHits", s.cache_hits);
  put("segmentAllocs", s.segment_allocs);
  put("segmentFrees", s.segment_frees);
  put("ooms", s.ooms);
  return o;
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaMemoryStats"};
  require_cuda_device(c);
  cuda::MemoryStats m;
  run_sync(info.Env(), c.fn, [&] { m = cuda::memory_stats(); });
  Napi::Object o = stats_object(info.Env(), m.allocator);
  o.Set("deviceFreeBytes", Napi::Number::New(info.Env(), static_cast<double>(m.device_free_bytes)));
  o.Set("deviceTotalBytes", Napi::Number::New(info.Env(), static_cast<double>(m.device_total_bytes)));
  o.Set("gcReportedBytes", Napi::Number::New(info.Env(), static_cast<double>(gc_reported_total.load())));
  return o;
}

Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "cudaEmptyCache"};
  require_cuda_device(c);
  run_sync(info.Env(), c.fn, [&] { cuda::empty_cache(); });
  return info.Env().Undefined();
}

// ---- the allocator over a simulated address space --------------------------------------------------------------

using SimAllocator = cuda::CachingAllocator<cuda::SimulatedDeviceMemory>;

SimAllocator* require_sim(const ArgCtx& c) {
  Napi::Value v = c.info[0];
  if (!v.IsExternal() || !v.As<Napi::External<SimAllocator>>().CheckTypeTag(&kSimTag))
    throw_type(c, "sim must be a handle from allocatorSimCreate, got " + kind_of(v));
  return v.As<Napi::External<SimAllocator>>().Data();
}

// allocatorSimCreate(capacityBytes) -> sim
Napi::Value SimCreate(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimCreate"};
  require_count(c, 1);
  const int64_t cap = require_int(c, 0, "capacityBytes", 0, kMaxBytes);
  auto* a = new SimAllocator(cuda::SimulatedDeviceMemory(static_cast<uint64_t>(cap)));
  auto ext = Napi::External<SimAllocator>::New(info.Env(), a, [](Napi::Env, SimAllocator* p) { delete p; });
  ext.TypeTag(&kSimTag);
  return ext;
}

// allocatorSimAlloc(sim, bytes) -> address (a number), or null when the simulated device is out of memory
Napi::Value SimAlloc(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimAlloc"};
  require_count(c, 2);
  SimAllocator* a = require_sim(c);
  const int64_t bytes = require_int(c, 1, "bytes", 0, kMaxBytes);
  void* p = a->allocate(static_cast<size_t>(bytes));
  if (!p) return info.Env().Null();
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(p)));
}

// allocatorSimFree(sim, address): RangeError for an address that is not a live block.
Napi::Value SimFree(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimFree"};
  require_count(c, 2);
  SimAllocator* a = require_sim(c);
  const int64_t addr = require_int(c, 1, "address", 0, INT64_C(1) << 53);
  try {
    a->free(reinterpret_cast<void*>(static_cast<uintptr_t>(addr)));
  } catch (const std::invalid_argument& e) {
    throw_range(c, std::string("address ") + std::to_string(addr) + ": " + e.what());
  }
  return info.Env().Undefined();
}

Napi::Value SimEmptyCache(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimEmptyCache"};
  require_count(c, 1);
  require_sim(c)->empty_cache();
  return info.Env().Undefined();
}

// allocatorSimStats(sim) -> the allocator's counters plus rawUsedBytes / rawSegments of the simulated device
Napi::Value SimStats(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimStats"};
  require_count(c, 1);
  SimAllocator* a = require_sim(c);
  Napi::Object o = stats_object(info.Env(), a->stats());
  o.Set("rawUsedBytes", Napi::Number::New(info.Env(), static_cast<double>(a->raw().used())));
  o.Set("rawSegments", Napi::Number::New(info.Env(), static_cast<double>(a->raw().live_segments())));
  return o;
}

// allocatorSimCheck(sim) -> "" when the allocator's invariants hold, else the first broken one
Napi::Value SimCheck(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimCheck"};
  require_count(c, 1);
  return Napi::String::New(info.Env(), require_sim(c)->check());
}

// allocatorSimCapture(sim, ops) -> { addresses, outliving, keep }: a graph capture's memory bookkeeping
// (cuda/capture_scratch.h, as the GPU and the emulated device run it) over the simulated allocator. ops in order:
// { alloc: bytes } (its block's address goes to addresses), { free: i } (the i-th alloc op's block) or
// { freeAddress: a } (a block from before the capture). keep: the blocks the graph would hold; outliving: blocks
// allocated inside and left live; refused: why the capture is refused ("" when not). Every block stays allocated in
// the sim (the caller frees them).
Napi::Value SimCapture(const Napi::CallbackInfo& info) {
  ArgCtx c{info, "allocatorSimCapture"};
  require_count(c, 2);
  SimAllocator* a = require_sim(c);
  if (!info[1].IsArray()) throw_type(c, "ops must be an array, got " + kind_of(info[1]));
  const Napi::Array ops = info[1].As<Napi::Array>();
  cuda::CaptureScratch scratch;
  std::vector<void*> allocated;
  auto addr = [](void* p) { return static_cast<double>(reinterpret_cast<uintptr_t>(p)); };
  for (uint32_t i = 0; i < ops.Length(); ++i) {
    const Napi::Value v = ops.Get(i);
    const std::string at = "ops[" + std::to_string(i) + "]";
    if (!v.IsObject()) throw_type(c, at + " must be an object, got " + kind_of(v));
    const Napi::Object op = v.As<Napi::Object>();
    auto integer = [&](const char* key, int64_t hi) {
      const Napi::Value x = op.Get(key);
      const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0 && d <= static_cast<double>(hi) && d == static_cast<double>(static_cast<int64_t>(d))))
        throw_range(c, at + "." + key + " must be an integer in [0, " + std::to_string(hi) + "]");
      return static_cast<int64_t>(d);
    };
    if (op.Has("alloc")) {
      const auto bytes = static_cast<size_t>(integer("alloc", kMaxBytes));
      void* p = scratch.allocate(bytes, [&](size_t n) { return a->allocate(n, false); });
      if (!p) throw_range(c, at + ": the simulated device is out of memory");
      allocated.push_back(p);
    } else if (op.Has("free")) {
      const int64_t k = integer("free", static_cast<int64_t>(allocated.size()) - 1);
      scratch.free(allocated[static_cast<size_t>(k)]);
    } else if (op.Has("freeAddress")) {
      scratch.free(reinterpret_cast<void*>(static_cast<uintptr_t>(integer("freeAddress", INT64_C(1) << 53))));
    } else {
      throw_type(c, at + " must have alloc, free or freeAddress");
    }
  }
  std::vector<void*> keep;
  size_t outliving = 0;
  const std::string refused = scratch.finish(&keep, &outliving);
  Napi::Object o = Napi::Object::New(info.Env());
  Napi::Array addresses = Napi::Array::New(info.Env(), allocated.size());
  Napi::Array kept = Napi::Array::New(info.Env(), keep.size());
  for (size_t i = 0; i < allocated.size(); ++i) addresses.Set(static_cast<uint32_t>(i), addr(allocated[i]));
  for (size_t i = 0; i < keep.size(); ++i) kept.Set(static_cast<uint32_t>(i), addr(keep[i]));
  o.Set("addresses", addresses);
  o.Set("outliving", Napi::Number::New(info.Env(), static_cast<double>(outliving)));
  o.Set("refused", Napi::String::New(info.Env(), refused));
  o.Set("keep", kept);
  return o;
}

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaMalloc", Napi::Function::New(env, Malloc, "cudaMalloc"));
  exports.Set("cudaFree", Napi::Function::New(env, Free, "cudaFree"));
  exports.Set("cudaTrackGc", Napi::Function::New(env, TrackGc, "cudaTrackGc"));
  exports.Set("cudaUpload", Napi::Function::New(env, Upload, "cudaUpload"));
  exports.Set("cudaDownload", Napi::Function::New(env, Download, "cudaDownload"));
  exports.Set("cudaCopyBuffer", Napi::Function::New(env, CopyBuffer, "cudaCopyBuffer"));
  exports.Set("cudaZero", Napi::Function::New(env, Zero, "cudaZero"));
  exports.Set("cudaSynchronize", Napi::Function::New(env, Synchronize, "cudaSynchronize"));
  exports.Set("cudaMemoryStats", Napi::Function::New(env, MemoryStats, "cudaMemoryStats"));
  exports.Set("cudaEmptyCache", Napi::Function::New(env, EmptyCache, "cudaEmptyCache"));
  exports.Set("allocatorSimCreate", Napi::Function::New(env, SimCreate, "allocatorSimCreate"));
  exports.Set("allocatorSimAlloc", Napi::Function::New(env, SimAlloc, "allocatorSimAlloc"));
  exports.Set("allocatorSimFree", Napi::Function::New(env, SimFree, "allocatorSimFree"));
  exports.Set("allocatorSimCapture", Napi::Function::New(env, SimCapture, "allocatorSimCapture"));
  exports.Set("allocatorSimEmptyCache", Napi::Function::New(env, SimEmptyCache, "allocatorSimEmptyCache"));
  exports.Set("allocatorSimStats", Napi::Function::New(env, SimStats, "allocatorSimStats"));
  exports.Set("allocatorSimCheck", Napi::Function::New(env, SimCheck, "allocatorSimCheck"));
}

}  // namespace

XLSTM_REGISTER(cuda_memory, Init);

}  // namespace xlstm
