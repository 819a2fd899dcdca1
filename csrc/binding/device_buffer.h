// Binding layer: device buffers. A device buffer is a block of device memory from the caching allocator
// (cuda/memory.cu) held by a type-tagged JS External: `cudaMalloc` makes one, `cudaFree` gives it back at once
// (idempotent), and garbage collection gives it back if the program dropped it without freeing. Each buffer is a
// whole allocation (no views), so two different buffers never overlap.
#pragma once
#include <cstdint>
#include <string>

#include "args.h"

namespace xlstm {

struct DeviceBuffer {
  void* ptr = nullptr;  // null once freed
  int64_t bytes = 0;
};

// The device buffer argument i: a live handle from cudaMalloc holding at least `min_bytes` (any size when
// min_bytes < 0). TypeError for anything else (a freed buffer included), RangeError when it is too small; `desc`
// explains min_bytes, e.g. "4*M*K (M=3, K=5)".
DeviceBuffer* require_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                    const std::string& desc = "");
// The same, or nullptr for null/undefined.
DeviceBuffer* optional_device_buffer(const ArgCtx& c, size_t i, const char* name, int64_t min_bytes,
                                     const std::string& desc = "");
// Runs kernel `fn` on device buffers: its CUDA twin, enqueued on the package's stream, or, under host emulation
// (cuda/host_emulation.h), the CPU kernel of the same name and arguments on the host memory the buffers then hold.
#define XLSTM_DEVICE_CALL(fn, ...)                                                                  \
  (::xlstm::cuda::emulated() ? ::xlstm::fn(__VA_ARGS__)                                             \
                             : ::xlstm::cuda::fn(__VA_ARGS__, ::xlstm::cuda::stream()))

// Throws an Error naming c.fn when no CUDA device can be used (with the reason: built without CUDA, no driver, ...).
void require_cuda_device(const ArgCtx& c);
// The same for entries that call the CUDA kernels themselves (the cuda*Host exports: copy in, run, copy out): under
// host emulation (XLSTM_CUDA_EMULATE=1), where the device exists but has no CUDA kernels, also an Error
// "<fn>: CUDA is not available: host emulation (XLSTM_CUDA_EMULATE) has no CUDA kernels".
void require_real_cuda_device(const ArgCtx& c);

}  // namespace xlstm
