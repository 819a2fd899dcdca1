// Binding layer: device buffers. A device buffer is a block of device memory from the caching allocator
// (cuda/memory.cu) held by a type-tagged JS External: `cudaMalloc` makes one, `cudaFree` gives it back at once
// (idempotent; unless a device session still borrows it: then when that session goes), and garbage collection gives
// it back if the program dropped it without freeing. Each buffer is a
// whole allocation (no views), so two different buffers never overlap.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <stdexcept>
#include <vector>

#include "args.h"
#include "cuda_api.h"

namespace xlstm {

struct DeviceBuffer {
  void* ptr = nullptr;  // null once freed
  // owns ptr (device_free when the last holder lets go): freeing the buffer drops this reference; a device session
  // that borrows the memory (a device session's weights) holds another, so the memory outlives the handle
  std::shared_ptr<void> mem;
  int64_t bytes = 0;
  int64_t gc_reported = 0;  // bytes reported to V8 as external memory (0: a scope releases it; see cudaMalloc)
};

// The device buffer argument i: a live handle from cudaMalloc holding at least `min_bytes` (any size when
// min_bytes < 0). TypeError for anything else (a freed buffer included), RangeError when it is too small; `desc`
// explains min_bytes, e.g. "4*M*K (M=3, K=5)".
DeviceBuffer* require_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                    const std::string& desc = "");
// Withdraws the V8 external-memory reports of freed buffers whose memory a device session kept alive, once it has
// gone (call after a session is disposed or finalized).
void sweep_gc_reports(Napi::Env env);
// A live device buffer given as value v (e.g. an object's property) that `name` describes; TypeError otherwise.
DeviceBuffer* device_buffer_value(const ArgCtx& c, Napi::Value v, const std::string& name);
// require_device_buffer, or nullptr for null/undefined.
DeviceBuffer* optional_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                     const std::string& desc = "");
// Runs kernel `fn` on device buffers: its CUDA twin, enqueued on the package's stream, or, under host emulation
// (cuda/host_emulation.h), the CPU kernel of the same name and arguments on the host memory the buffers then hold.
#define XLSTM_DEVICE_CALL(fn, ...)                                                                  \
  (::xlstm::cuda::emulated() ? ::xlstm::fn(__VA_ARGS__)                                             \
                             : ::xlstm::cuda::fn(__VA_ARGS__, ::xlstm::cuda::stream()))

// Under host emulation, a binary built with CUDA can replay some kernels' own code on the host (the cuda::*_emulate
// entries: every block and thread, the device's reduction order) instead of running the CPU twin. The device entries
// use them where they exist, so the emulated suites exercise those kernels' logic and the argument order the entries
// pass them. replay_with_writes runs one that counts its writes per output element (`outputs` counters) and throws
// std::logic_error unless every element was written exactly once.
inline bool replay_kernels() { return cuda::emulated() && cuda::compiled(); }
template <class F>
void replay_with_writes(const char* kernel, int64_t outputs, F&& run) {
  std::vector<int32_t> writes(static_cast<size_t>(outputs > 0 ? outputs : 0));
  run(writes.data());
  for (size_t i = 0; i < writes.size(); ++i)
    if (writes[i] != 1)
      throw std::logic_error(std::string(kernel) + " (host replay): output element " + std::to_string(i) + " written " +
                             std::to_string(writes[i]) + " times");
}

// Throws an Error naming c.fn when no CUDA device can be used (with the reason: built without CUDA, no driver, ...).
void require_cuda_device(const ArgCtx& c);
// The same for entries that call the CUDA kernels themselves (the cuda*Host exports: copy in, run, copy out): under
// host emulation (XLSTM_CUDA_EMULATE=1), where the device exists but has no CUDA kernels, also an Error
// "<fn>: CUDA is not available: host emulation (XLSTM_CUDA_EMULATE) has no CUDA kernels".
void require_real_cuda_device(const ArgCtx& c);

}  // namespace xlstm
