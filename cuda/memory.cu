// Device memory (CUDA kernels layer): the caching allocator (cuda/caching_allocator.h) over cudaMalloc/cudaFree,
// the package's stream, and copies. Every device tensor's kernels are enqueued on that one stream, which is what
// makes it safe for the allocator to hand a freed block out again at once. Host <-> device copies synchronise the
// stream before returning, so a JavaScript array passed in can be reused (or freed) as soon as the call returns.
//
// Device 0 only for now: the allocator, the stream and every kernel run on the current device, which nothing in
// the package changes.
#include <cuda_runtime.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "caching_allocator.h"
#include "capture_scratch.h"
#include "cuda_api.h"
#include "cuda_host_util.h"
#include "host_emulation.h"

namespace xlstm {
namespace cuda {
namespace {

using hostutil::check;

struct CudaRaw {
  void* alloc(size_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // out of memory is not sticky: clear it so the retry and later calls start clean
      return nullptr;
    }
    return p;
  }
  void free(void* p) {
    if (cudaFree(p) != cudaSuccess) cudaGetLastError();  // not left for the next launch check to report as its own
  }
};

// Never destroyed: freeing device memory from a static destructor can run after the CUDA runtime has shut down.
CachingAllocator<CudaRaw>& allocator() {
  static auto* a = new CachingAllocator<CudaRaw>(CudaRaw{});
  return *a;
}

// While this thread captures a graph (graph_capture_launch): the capture's private stream, which stands in for the
// package stream on this thread, and the graph's memory bookkeeping (capture_scratch.h; the first step from a parity
// runs eagerly, so lazily allocated workspaces exist before any capture).
thread_local cudaStream_t t_capture_stream = nullptr;
thread_local CaptureScratch* t_capture = nullptr;

cudaStream_t the_stream(const char* entry) {
  if (t_capture_stream) return t_capture_stream;
  static std::once_flag once;
  static cudaStream_t s = nullptr;
  static cudaError_t err = cudaSuccess;
  std::call_once(once, [] { err = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); });
  check(err, entry, "cudaStreamCreateWithFlags");
  return s;
}

// A host <-> device copy on the package's stream, waited for (a plain copy under emulation: host memory).
void copy_synchronised(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, const char* entry) {
  if (!bytes) return;
  if (emu::enabled()) {
    std::memcpy(dst, src, bytes);
    return;
  }
  const cudaStream_t s = the_stream(entry);
  check(cudaMemcpyAsync(dst, src, bytes, kind, s), entry, "cudaMemcpyAsync");
  check(cudaStreamSynchronize(s), entry, "cudaStreamSynchronize");
}

}  // namespace

bool emulated() { return emu::enabled(); }

void* stream() { return emu::enabled() ? nullptr : the_stream("cuda::stream"); }

void* device_malloc(size_t bytes) {
  if (emu::enabled()) return emu::device_malloc(bytes);
  void* p = t_capture ? t_capture->allocate(bytes, [](size_t n) { return allocator().allocate(n, false); })  // (no cudaFree inside a capture)
                      : allocator().allocate(bytes);
  if (p) return p;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) cudaGetLastError();
  throw std::runtime_error(out_of_memory_message(bytes, allocator().stats(), free_b, total_b));
}

void device_free(void* p) {
  if (!p) return;
  if (emu::enabled()) emu::device_free(p);
  else if (t_capture) t_capture->free(p);  // the graph being captured uses it at every launch
  else allocator().free(p);
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  copy_synchronised(dst, src, bytes, cudaMemcpyHostToDevice, "cuda::copy_to_device");
}

void copy_to_host(void* dst, const void* src, size_t bytes) {
  copy_synchronised(dst, src, bytes, cudaMemcpyDeviceToHost, "cuda::copy_to_host");
}

void copy_on_device(void* dst, const void* src, size_t bytes) {
  if (!bytes) return;
  if (emu::enabled()) {
    std::memmove(dst, src, bytes);
    return;
  }
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, the_stream("cuda::copy_on_device")),
        "cuda::copy_on_device", "cudaMemcpyAsync");
}

void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height) {
  if (!width || !height) return;
  if (emu::enabled()) {
    emu::copy_2d(dst, dst_pitch, src, src_pitch, width, height);
    return;
  }
  check(cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, height, cudaMemcpyDeviceToDevice,
                          the_stream("cuda::copy_2d")),
        "cuda::copy_2d", "cudaMemcpy2DAsync");
}

void fill_zero(void* dst, size_t bytes) {
  if (!bytes) return;
  if (emu::enabled()) {
    std::memset(dst, 0, bytes);
    return;
  }
  check(cudaMemsetAsync(dst, 0, bytes, the_stream("cuda::fill_zero")), "cuda::fill_zero", "cudaMemsetAsync");
}

void synchronize() {
  if (emu::enabled()) return;
  check(cudaStreamSynchronize(the_stream("cuda::synchronize")), "cuda::synchronize", "cudaStreamSynchronize");
}

MemoryStats memory_stats() {
  MemoryStats m;
  if (emu::enabled()) {
    m.allocator = emu::allocator().stats();
    m.device_free_bytes = static_cast<int64_t>(emu::free_bytes());
    m.device_total_bytes = static_cast<int64_t>(emu::capacity());
    return m;
  }
  m.allocator = allocator().stats();
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
    m.device_free_bytes = static_cast<int64_t>(free_b);
    m.device_total_bytes = static_cast<int64_t>(total_b);
  } else {
    cudaGetLastError();
  }
  return m;
}

void empty_cache() {
  if (emu::enabled()) {
    emu::allocator().empty_cache();
    return;
  }
  synchronize();  // cudaFree would wait for the device anyway; make the order explicit
  allocator().empty_cache();
}

namespace {
struct CapturedGraph {
  cudaGraphExec_t exec = nullptr;
  std::vector<void*> keep;  // scratch blocks the graph's nodes use
  ~CapturedGraph() {
    if (exec) cudaGraphExecDestroy(exec);  // waits for no launch: each session waits for its own before freeing
    for (void* p : keep) allocator().free(p);
  }
};

std::atomic<bool> g_session_graphs{false};
}  // namespace

void* graph_capture_launch(std::function<void()> enqueue, std::string* why) {
  if (emu::enabled()) return emu::graph_capture_launch(std::move(enqueue), why);
  const char* entry = "cuda::graph_capture_launch";
  const cudaStream_t package = the_stream(entry);
  auto g = std::make_unique<CapturedGraph>();
  cudaStream_t cs = nullptr;
  check(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking), entry, "cudaStreamCreateWithFlags");
  std::string err;
  cudaError_t e = cudaStreamBeginCapture(cs, cudaStreamCaptureModeRelaxed);
  if (e == cudaSuccess) {
    CaptureScratch scratch;
    {
      // the thread's stream and scratch are its own again on every way out of the work
      struct Redirect {
        Redirect(cudaStream_t s, CaptureScratch* c) { t_capture_stream = s, t_capture = c; }
        ~Redirect() { t_capture_stream = nullptr, t_capture = nullptr; }
      } redirect(cs, &scratch);
      try {
        enqueue();
      } catch (const std::exception& ex) {
        err = ex.what();
      } catch (...) {
        err = "the captured work threw";
      }
    }
    const std::string refused = scratch.finish(&g->keep);  // g->keep: the graph's blocks
    if (err.empty()) err = refused;
    cudaGraph_t graph = nullptr;
    e = cudaStreamEndCapture(cs, &graph);
    if (err.empty() && e != cudaSuccess) err = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(e);
    if (err.empty() && !graph) err = "cudaStreamEndCapture gave no graph";
    if (err.empty()) {
      e = cudaGraphInstantiate(&g->exec, graph, 0);
      if (e != cudaSuccess) err = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e), g->exec = nullptr;
    }
    if (graph) cudaGraphDestroy(graph);
  } else {
    err = std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e);
  }
  cudaStreamDestroy(cs);
  cudaGetLastError();  // a failed capture's errors are not sticky: the eager path starts clean
  if (err.empty()) {
    e = cudaGraphLaunch(g->exec, package);
    if (e != cudaSuccess) err = std::string("cudaGraphLaunch: ") + cudaGetErrorString(e), cudaGetLastError();
  }
  if (!err.empty()) {
    if (why) *why = err;
    return nullptr;  // g's destructor frees the kept scratch: nothing of the capture ran
  }
  return g.release();
}

void graph_launch(void* graph) {
  if (emu::enabled()) return emu::graph_launch(graph);
  check(cudaGraphLaunch(static_cast<CapturedGraph*>(graph)->exec, the_stream("cuda::graph_launch")), "cuda::graph_launch",
        "cudaGraphLaunch");
}

void graph_free(void* graph) {
  if (!graph) return;
  if (emu::enabled()) return emu::graph_free(graph);
  delete static_cast<CapturedGraph*>(graph);
}

void emulate_refuse_captures(int n, bool after_run) {
  if (!emu::enabled())
    throw std::runtime_error("cuda::emulate_refuse_captures: a test hook of the emulated device (XLSTM_CUDA_EMULATE)");
  emu::refuse_after_run() = after_run;
  emu::refused_captures() = n;
}

bool set_session_graphs(bool on) { return g_session_graphs.exchange(on); }
bool session_graphs() { return g_session_graphs.load(); }

namespace {
std::atomic<uint64_t> g_settings_generation{0};
}
uint64_t kernel_settings_generation() { return g_settings_generation.load(); }
void kernel_settings_changed() { ++g_settings_generation; }

}  // namespace cuda
}  // namespace xlstm
