// Host emulation of the CUDA device (CUDA kernels layer), for machines without a GPU: with XLSTM_CUDA_EMULATE=1 the
// package reports one device, "host emulation", whose memory is host memory from the same caching allocator the GPU
// uses (capacity XLSTM_CUDA_EMULATE_MEMORY bytes, default 2 GiB, so out-of-memory can be tested), whose copies are
// memcpy, and on which every kernel entry of the device-buffer binding (csrc/binding/cuda_ops*.cc) runs the CPU
// twin of its CUDA kernel, or the host replay of the CUDA kernel's own code where one exists (replay_kernels() in
// csrc/binding/device_buffer.h). So everything above the kernels (device buffers, CUDA tensors, scopes, the ops' CUDA
// paths, autograd, optimizers, training) runs in CI; the CUDA kernels themselves are checked by their own host
// replays and, on a GPU, by the parity tests. No CUDA in this header: memory.cu and cuda_absent.cc both use it.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "caching_allocator.h"
#include "capture_scratch.h"

namespace xlstm {
namespace cuda {
namespace emu {

inline bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("XLSTM_CUDA_EMULATE");
    return v && *v && std::strcmp(v, "0") != 0;
  }();
  return on;
}

inline uint64_t capacity() {
  static const uint64_t c = [] {
    const char* v = std::getenv("XLSTM_CUDA_EMULATE_MEMORY");
    if (v && *v) {
      char* end = nullptr;
      const unsigned long long x = std::strtoull(v, &end, 10);
      if (end && *end == 0 && x > 0) return static_cast<uint64_t>(x);
    }
    return uint64_t{2} << 30;
  }();
  return c;
}

// Host memory with the emulated device's capacity; returns nullptr past it (as cudaMalloc fails).
struct HostRaw {
  void* alloc(size_t bytes) {
    std::lock_guard<std::mutex> lock(state().mu);
    if (bytes > capacity() - state().used) return nullptr;
    void* p = std::malloc(bytes ? bytes : 1);
    if (!p) return nullptr;
    state().sizes[p] = bytes;
    state().used += bytes;
    return p;
  }
  void free(void* p) {
    std::lock_guard<std::mutex> lock(state().mu);
    auto it = state().sizes.find(p);
    if (it == state().sizes.end()) return;
    state().used -= it->second;
    state().sizes.erase(it);
    std::free(p);
  }
  struct State {
    std::mutex mu;
    uint64_t used = 0;
    std::unordered_map<void*, size_t> sizes;
  };
  static State& state() {
    static State* s = new State;  // never destroyed, like the GPU allocator
    return *s;
  }
};

inline CachingAllocator<HostRaw>& allocator() {
  static auto* a = new CachingAllocator<HostRaw>(HostRaw{});
  return *a;
}

inline uint64_t free_bytes() {
  std::lock_guard<std::mutex> lock(HostRaw::state().mu);
  return capacity() - HostRaw::state().used;
}

inline std::string device_name() { return "host emulation (XLSTM_CUDA_EMULATE=1)"; }

// A graph on the emulated device (cuda_api.h graph_capture_launch): the step's own calls, run at each launch. The
// capture keeps its memory as on a GPU (capture_scratch.h: blocks freed inside it stay the graph's, one left live
// refuses it), and a launch hands the work's allocations the addresses the capture got, in the same order, and frees
// nothing, as a real graph's nodes reuse their captured addresses: so the sessions' graph tests run the GPU's
// bookkeeping, and a launch whose allocations differ from its capture's (work that changed since) throws.
struct Graph {
  std::function<void()> work;
  std::vector<std::pair<void*, size_t>> allocs;  // the capture's allocations in order: (address, bytes)
  std::vector<void*> keep;                        // the blocks the graph holds
  ~Graph() {
    for (void* p : keep) allocator().free(p);
  }
};
struct GraphLaunch {
  const Graph* g;
  size_t next;  // allocations handed out so far
};
inline CaptureScratch*& capturing() {  // the capture in progress on this thread
  thread_local CaptureScratch* c = nullptr;
  return c;
}
inline GraphLaunch*& launching() {  // the launch in progress on this thread
  thread_local GraphLaunch* l = nullptr;
  return l;
}

inline void* device_malloc(size_t bytes) {
  if (GraphLaunch* l = launching()) {
    if (l->next >= l->g->allocs.size() || l->g->allocs[l->next].second != bytes)
      throw std::logic_error("emulated graph launch: allocation " + std::to_string(l->next) + " of " +
                             std::to_string(bytes) + " bytes differs from its capture's (" +
                             std::to_string(l->g->allocs.size()) + " allocations): the work changed since the capture");
    return l->g->allocs[l->next++].first;
  }
  CaptureScratch* c = capturing();
  void* p = c ? c->allocate(bytes, [](size_t n) { return allocator().allocate(n, false); })  // (no release mid-capture)
              : allocator().allocate(bytes);
  if (!p) throw std::runtime_error(out_of_memory_message(bytes, allocator().stats(), free_bytes(), capacity()));
  return p;
}
inline void device_free(void* p) {
  if (!p || launching()) return;  // a launch frees nothing: its blocks are the graph's
  if (CaptureScratch* c = capturing()) c->free(p);
  else allocator().free(p);
}

// Captures still to refuse (cuda::emulate_refuse_captures: the test hook for the sessions' handling of a failed
// capture, which a real device does not fail on demand), and whether the refusal comes after the work ran (as a
// capture whose memory is refused at its end) or before.
inline std::atomic<int>& refused_captures() {
  static std::atomic<int> n{0};
  return n;
}
inline std::atomic<bool>& refuse_after_run() {
  static std::atomic<bool> after{false};
  return after;
}
// As the real capture: nullptr with the reason when refused, when the work throws (not rethrown) or when its memory
// is refused (capture_scratch.h). Unlike a real capture, the emulated one has run the work by then (unless refused
// before it: session_graphs.cc tells the cases apart).
inline void* graph_capture_launch(std::function<void()> enqueue, std::string* why) {
  int left = refused_captures().load();
  while (left > 0 && !refused_captures().compare_exchange_weak(left, left - 1)) {
  }
  const bool refuse_now = left > 0 && !refuse_after_run().load(), refuse_at_end = left > 0 && !refuse_now;
  if (refuse_now) {
    if (why) *why = "refused by the emulated device (cuda::emulate_refuse_captures)";
    return nullptr;
  }
  auto g = std::make_unique<Graph>();
  g->work = std::move(enqueue);
  CaptureScratch scratch;
  std::string err;
  {
    struct Redirect {
      explicit Redirect(CaptureScratch* c) { capturing() = c; }
      ~Redirect() { capturing() = nullptr; }
    } redirect(&scratch);
    try {
      g->work();
    } catch (const std::exception& e) {
      err = e.what();
    } catch (...) {
      err = "the captured work threw";
    }
  }
  g->allocs = scratch.order();
  const std::string refused = scratch.finish(&g->keep);
  if (err.empty()) err = refused;
  if (err.empty() && refuse_at_end)
    err = "refused by the emulated device after the work ran (cuda::emulate_refuse_captures)";
  if (!err.empty()) {
    if (why) *why = err;
    return nullptr;  // ~Graph gives its blocks back
  }
  return g.release();
}
inline void graph_launch(void* graph) {
  const Graph* g = static_cast<const Graph*>(graph);
  GraphLaunch l{g, 0};
  struct Redirect {
    explicit Redirect(GraphLaunch* x) { launching() = x; }
    ~Redirect() { launching() = nullptr; }
  } redirect(&l);
  g->work();
  if (l.next != g->allocs.size())
    throw std::logic_error("emulated graph launch: " + std::to_string(l.next) + " allocations, its capture made " +
                           std::to_string(g->allocs.size()) + ": the work changed since the capture");
}
inline void graph_free(void* g) { delete static_cast<Graph*>(g); }

// `height` rows of `width` bytes between pitched host ranges.
inline void copy_2d(void* dst, size_t dst_pitch, const void* src, size_t src_pitch, size_t width, size_t height) {
  for (size_t r = 0; r < height; ++r)
    std::memcpy(static_cast<char*>(dst) + r * dst_pitch, static_cast<const char*>(src) + r * src_pitch, width);
}

}  // namespace emu
}  // namespace cuda
}  // namespace xlstm
