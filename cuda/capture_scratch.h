// The device memory bookkeeping of one CUDA graph capture (cuda_api.h graph_capture_launch), shared by the GPU
// (cuda/memory.cu) and the emulated device (host_emulation.h), so that the sessions' graph tests run it in CI. No
// CUDA in this header.
//
// A captured graph's nodes use the addresses they were captured with at every launch. So a block freed inside the
// capture stays the graph's (it must not go back to the allocator, where another allocation could take it while the
// graph still writes it), though later allocations of the same capture may take it again: the captured work is one
// chain, so a block is reused only by nodes after the last one that used it, as on the stream. A block allocated
// inside the capture and still live at its end would be used by every launch after its owner frees it: such a
// capture is refused (finish() counts them).
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace xlstm {
namespace cuda {

class CaptureScratch {
 public:
  // An allocation inside the capture: the best-fitting block freed earlier in it, else fresh(bytes) (nullptr: none).
  template <class Fresh>
  void* allocate(size_t bytes, Fresh&& fresh) {
    void* p = nullptr;
    auto it = free_blocks_.lower_bound(bytes);
    if (it != free_blocks_.end()) {
      p = it->second;
      free_blocks_.erase(it);
    } else {
      p = fresh(bytes);
      if (!p) return nullptr;
      sizes_[p] = bytes;
    }
    order_.emplace_back(p, bytes);
    return p;
  }

  // A free inside the capture: the graph keeps the block (a block from before the capture as well).
  void free(void* p) {
    auto it = sizes_.find(p);
    if (it != sizes_.end()) free_blocks_.emplace(it->second, p);
    else before_.push_back(p);
  }

  // At the capture's end: the blocks the graph holds (freed inside it) appended to *keep; returns how many blocks
  // allocated inside the capture are still live (the capture must then be refused).
  size_t finish(std::vector<void*>* keep) {
    keep->insert(keep->end(), before_.begin(), before_.end());
    for (const auto& kv : free_blocks_) keep->push_back(kv.second);
    const size_t outliving = sizes_.size() - free_blocks_.size();
    before_.clear(), free_blocks_.clear(), sizes_.clear();
    return outliving;
  }

  // The capture's allocations in order, (address, bytes): the emulated launch hands out the same addresses.
  const std::vector<std::pair<void*, size_t>>& order() const { return order_; }

 private:
  std::unordered_map<void*, size_t> sizes_;   // blocks allocated inside the capture: their sizes
  std::multimap<size_t, void*> free_blocks_;  // of those, the ones freed again (by size, for a best fit)
  std::vector<void*> before_;                 // blocks from before the capture that it freed
  std::vector<std::pair<void*, size_t>> order_;
};

inline std::string capture_outliving_message(size_t blocks) {
  return "device memory allocated inside the capture outlives it (" + std::to_string(blocks) + " blocks)";
}

}  // namespace cuda
}  // namespace xlstm
