// Caching allocator for device memory (CUDA kernels layer). cudaMalloc and cudaFree are slow and synchronise the
// device, so, as in PyTorch, freed blocks stay cached and later requests are served from them:
//   - sizes are rounded up to 512 bytes; requests up to 1 MiB come from a "small" pool carved out of 2 MiB
//     segments, larger ones from a "large" pool (segments of 20 MiB for requests under 10 MiB, otherwise the
//     request rounded up to 2 MiB), so small, short-lived tensors do not fragment the big segments;
//   - a request takes the smallest cached block that fits (best fit) and splits off the rest when the rest is
//     worth keeping (>= 512 bytes in the small pool, > 1 MiB in the large pool);
//   - a freed block merges with free neighbours of its own segment;
//   - when the raw allocator fails, every wholly free segment is returned and the request retried once; after
//     that the request fails (nullptr) and the caller reports out-of-memory with stats().
// All work is issued on one stream, so a freed block can be handed out again at once: any kernel that still reads
// it was enqueued before any kernel that will write it.
//
// The allocator never touches the memory it manages, only addresses, so this header has no CUDA in it: it is
// parameterised by a raw allocator (`void* alloc(size_t)` returning nullptr on failure, `void free(void*)`).
// cuda/memory.cu instantiates it over cudaMalloc / cudaFree; csrc/binding/cuda_memory.cc instantiates it over a
// simulated address space (SimulatedDeviceMemory below) so the CPU tests run every path, including out-of-memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace xlstm {
namespace cuda {

struct AllocatorStats {
  int64_t allocated_bytes = 0, allocated_bytes_peak = 0;  // in blocks handed out (rounded sizes)
  int64_t requested_bytes = 0;                            // in blocks handed out (as requested)
  int64_t reserved_bytes = 0, reserved_bytes_peak = 0;    // in segments obtained from the raw allocator
  int64_t active_blocks = 0, cached_blocks = 0, segments = 0;
  int64_t alloc_calls = 0, free_calls = 0, cache_hits = 0;
  int64_t segment_allocs = 0, segment_frees = 0, ooms = 0;
};

template <class Raw>
class CachingAllocator {
 public:
  static constexpr size_t kMinBlock = 512;
  static constexpr size_t kSmallRequest = size_t{1} << 20;      // <= this: small pool
  static constexpr size_t kSmallSegment = size_t{2} << 20;      // small pool segment
  static constexpr size_t kMediumRequest = size_t{10} << 20;    // < this (large pool): 20 MiB segments
  static constexpr size_t kMediumSegment = size_t{20} << 20;
  static constexpr size_t kLargeRounding = size_t{2} << 20;
  static constexpr size_t kLargeSplitRemainder = size_t{1} << 20;

  explicit CachingAllocator(Raw raw) : raw_(std::move(raw)) {}
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;
  ~CachingAllocator() {
    for (auto& kv : blocks_) delete kv.second;
    for (auto& kv : segments_) raw_.free(reinterpret_cast<void*>(kv.first));
  }

  static size_t round_size(size_t bytes) {
    if (bytes < kMinBlock) return kMinBlock;
    return (bytes + kMinBlock - 1) / kMinBlock * kMinBlock;
  }
  static size_t segment_size(size_t rounded) {
    if (rounded <= kSmallRequest) return kSmallSegment;
    if (rounded < kMediumRequest) return kMediumSegment;
    return (rounded + kLargeRounding - 1) / kLargeRounding * kLargeRounding;
  }

  // A block of at least `bytes` (distinct, non-null even for 0 bytes), or nullptr when the raw allocator cannot
  // provide a segment even after the cache was released (may_release false: without releasing it, e.g. while a
  // CUDA graph is being captured, where cudaFree is not allowed).
  void* allocate(size_t bytes, bool may_release = true) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.alloc_calls;
    if (bytes > (SIZE_MAX >> 2)) {
      ++stats_.ooms;
      return nullptr;
    }
    const size_t size = round_size(bytes);
    const bool small = size <= kSmallRequest;
    Pool& pool = small ? small_ : large_;
    Block* b = best_fit(pool, size);
    if (b) {
      ++stats_.cache_hits;
      pool.erase(b);
    } else {
      b = new_segment(size, small);
      if (!b && may_release) {
        release_free_segments();
        b = new_segment(size, small);
      }
      if (!b) {
        ++stats_.ooms;
        return nullptr;
      }
    }
    split(b, size, pool);
    b->free = false;
    b->requested = bytes;
    ++stats_.active_blocks;
    stats_.allocated_bytes += static_cast<int64_t>(b->size);
    stats_.requested_bytes += static_cast<int64_t>(bytes);
    if (stats_.allocated_bytes > stats_.allocated_bytes_peak) stats_.allocated_bytes_peak = stats_.allocated_bytes;
    return reinterpret_cast<void*>(b->addr);
  }

  // Returns a block from allocate() to the cache. Throws std::invalid_argument for any other pointer (including a
  // second free of the same block).
  void free(void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = blocks_.find(reinterpret_cast<uintptr_t>(p));
    if (it == blocks_.end() || it->second->free)
      throw std::invalid_argument("device free: pointer was not allocated by this allocator or is already free");
    Block* b = it->second;
    ++stats_.free_calls;
    --stats_.active_blocks;
    stats_.allocated_bytes -= static_cast<int64_t>(b->size);
    stats_.requested_bytes -= static_cast<int64_t>(b->requested);
    b->free = true;
    b->requested = 0;
    Pool& pool = b->small ? small_ : large_;
    if (b->prev && b->prev->free) b = merge(b->prev, b, pool);
    if (b->next && b->next->free) b = merge(b, b->next, pool);
    pool.insert(b);
  }

  // Returns every wholly free segment to the raw allocator.
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_free_segments();
  }

  AllocatorStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    AllocatorStats s = stats_;
    s.cached_blocks = static_cast<int64_t>(small_.size() + large_.size());
    s.segments = static_cast<int64_t>(segments_.size());
    return s;
  }

  // "" when every invariant holds, else the first one broken: the blocks of each segment tile it exactly, in
  // address order, with no two free neighbours; the pools hold exactly the free blocks; the counters agree.
  std::string check() const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t free_seen = 0, reserved = 0;
    int64_t active = 0, allocated = 0;
    for (const auto& seg : segments_) {
      reserved += seg.second;
      auto it = blocks_.find(seg.first);
      if (it == blocks_.end()) return "segment without a first block";
      const Block* b = it->second;
      if (b->prev) return "first block of a segment has a predecessor";
      uintptr_t at = seg.first;
      for (; b; b = b->next) {
        if (b->addr != at) return "blocks do not tile their segment";
        if (b->segment != seg.first) return "block names the wrong segment";
        if (b->next && b->next->prev != b) return "broken block links";
        if (b->free && b->next && b->next->free) return "two adjacent free blocks were not merged";
        const Pool& pool = b->small ? small_ : large_;
        if (b->free) {
          ++free_seen;
          if (!pool.count(const_cast<Block*>(b))) return "free block missing from its pool";
        } else {
          ++active;
          allocated += static_cast<int64_t>(b->size);
          if (pool.count(const_cast<Block*>(b))) return "block in use is in a pool";
        }
        at += b->size;
      }
      if (at != seg.first + seg.second) return "blocks do not cover their segment";
    }
    if (free_seen != small_.size() + large_.size()) return "pool holds blocks that are not in any segment";
    if (active != stats_.active_blocks) return "active block count disagrees";
    if (allocated != stats_.allocated_bytes) return "allocated bytes disagree";
    if (static_cast<int64_t>(reserved) != stats_.reserved_bytes) return "reserved bytes disagree";
    return "";
  }

  Raw& raw() { return raw_; }

 private:
  struct Block {
    uintptr_t addr = 0, segment = 0;
    size_t size = 0, requested = 0;
    bool free = true, small = true;
    Block *prev = nullptr, *next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->addr < b->addr;
    }
  };
  using Pool = std::set<Block*, BySizeThenAddress>;

  Block* best_fit(Pool& pool, size_t size) {
    Block key;
    key.size = size;
    key.addr = 0;
    auto it = pool.lower_bound(&key);
    return it == pool.end() ? nullptr : *it;
  }

  Block* new_segment(size_t size, bool small) {
    const size_t seg = segment_size(size);
    void* p = raw_.alloc(seg);
    if (!p) return nullptr;
    Block* b = new Block;
    b->addr = b->segment = reinterpret_cast<uintptr_t>(p);
    b->size = seg;
    b->small = small;
    blocks_[b->addr] = b;
    segments_[b->addr] = seg;
    ++stats_.segment_allocs;
    stats_.reserved_bytes += static_cast<int64_t>(seg);
    if (stats_.reserved_bytes > stats_.reserved_bytes_peak) stats_.reserved_bytes_peak = stats_.reserved_bytes;
    return b;
  }

  // Cuts `b` (not in a pool) down to `size`, returning the remainder to `pool` when it is worth keeping.
  void split(Block* b, size_t size, Pool& pool) {
    const size_t rest = b->size - size;
    if (b->small ? rest < kMinBlock : rest <= kLargeSplitRemainder) return;
    Block* r = new Block;
    r->addr = b->addr + size;
    r->segment = b->segment;
    r->size = rest;
    r->small = b->small;
    r->prev = b;
    r->next = b->next;
    if (b->next) b->next->prev = r;
    b->next = r;
    b->size = size;
    blocks_[r->addr] = r;
    pool.insert(r);
  }

  // Merges free neighbours a (lower address) and b into a; whichever of them sits in `pool` leaves it.
  Block* merge(Block* a, Block* b, Pool& pool) {
    pool.erase(a);
    pool.erase(b);
    a->size += b->size;
    a->next = b->next;
    if (b->next) b->next->prev = a;
    blocks_.erase(b->addr);
    delete b;
    return a;
  }

  void release_free_segments() {
    for (Pool* pool : {&small_, &large_}) {
      for (auto it = pool->begin(); it != pool->end();) {
        Block* b = *it;
        if (b->prev || b->next) {
          ++it;
          continue;
        }
        it = pool->erase(it);
        raw_.free(reinterpret_cast<void*>(b->addr));
        segments_.erase(b->addr);
        blocks_.erase(b->addr);
        ++stats_.segment_frees;
        stats_.reserved_bytes -= static_cast<int64_t>(b->size);
        delete b;
      }
    }
  }

  Raw raw_;
  mutable std::mutex mu_;
  Pool small_, large_;
  std::unordered_map<uintptr_t, Block*> blocks_;  // every block, by start address
  std::map<uintptr_t, size_t> segments_;          // segment start -> size
  AllocatorStats stats_;
};

// The out-of-memory message of the device allocators: what was asked for, what tensors hold, what is reserved and
// what the device has left.
inline std::string out_of_memory_message(size_t bytes, const AllocatorStats& s, uint64_t device_free,
                                         uint64_t device_total) {
  auto mib = [](uint64_t b) { return std::to_string((b + (1u << 19)) >> 20) + " MiB"; };
  return "CUDA out of memory: tried to allocate " + mib(bytes) + " (" + std::to_string(bytes) + " bytes); " +
         mib(static_cast<uint64_t>(s.allocated_bytes)) + " in use by tensors, " +
         mib(static_cast<uint64_t>(s.reserved_bytes)) + " reserved by xlstm, " + mib(device_free) + " free of " +
         mib(device_total) + " on the device. Dispose tensors you no longer need (tensor.dispose(), cuda.scope())";
}

// A raw allocator over a simulated address space of `capacity` bytes (addresses only, no memory behind them), for
// testing CachingAllocator on machines without a GPU. Segments are spaced apart so that neighbours in the address
// space never look like one segment.
class SimulatedDeviceMemory {
 public:
  explicit SimulatedDeviceMemory(uint64_t capacity) : capacity_(capacity) {}
  void* alloc(size_t bytes) {
    if (bytes > capacity_ - used_) return nullptr;
    const uintptr_t a = next_;
    next_ += bytes + 4096;
    used_ += bytes;
    live_[a] = bytes;
    return reinterpret_cast<void*>(a);
  }
  void free(void* p) {
    auto it = live_.find(reinterpret_cast<uintptr_t>(p));
    if (it == live_.end()) throw std::logic_error("SimulatedDeviceMemory: free of an address it did not hand out");
    used_ -= it->second;
    live_.erase(it);
  }
  uint64_t used() const { return used_; }
  uint64_t capacity() const { return capacity_; }
  size_t live_segments() const { return live_.size(); }

 private:
  uint64_t capacity_, used_ = 0;
  uintptr_t next_ = uintptr_t{1} << 32;
  std::unordered_map<uintptr_t, size_t> live_;
};

}  // namespace cuda
}  // namespace xlstm
