// The device memory bookkeeping of one CUDA graph capture (cuda_api.h graph_capture_launch), shared by the GPU
// (cuda/memory.cu) and the emulated device (host_emulation.h), so that the sessions' graph tests run it in CI. No
// CUDA in this header.
//
// A captured graph's nodes use the addresses they were captured with at every launch. So a block freed inside the
// capture stays the graph's (it must not go back to the allocator, where another allocation could take it while the
// graph still writes it), though later allocations of the same capture may take it again: the captured work is one
// chain, so a block is reused only by nodes after the last one that used it, as on the stream. A block allocated
// inside the capture and still live at its end would be used by every launch after its owner frees it: such a
// capture is refused (finish() counts them), as is one that frees a block twice (which the graph would then hold
// twice). Frees never throw here (they run in destructors): finish() reports.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
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
      freed_.erase(p);
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
    if (it != sizes_.end()) {
      if (freed_.insert(p).second) free_blocks_.emplace(it->second, p);
      else ++double_frees_;
    } else if (before_set_.insert(p).second) {
      before_.push_back(p);
    } else {
      ++double_frees_;
    }
  }

  // At the capture's end: the blocks the graph holds (freed inside it) appended to *keep. Returns why the capture
  // must be refused ("" when it need not): blocks allocated inside it still live, or a block freed twice.
  std::string finish(std::vector<void*>* keep, size_t* outliving = nullptr) {
    keep->insert(keep->end(), before_.begin(), before_.end());
    for (const auto& kv : free_blocks_) keep->push_back(kv.second);
    const size_t live = sizes_.size() - freed_.size(), twice = double_frees_;
    before_.clear(), before_set_.clear(), free_blocks_.clear(), freed_.clear(), sizes_.clear(), double_frees_ = 0;
    if (outliving) *outliving = live;
    if (live) return "device memory allocated inside the capture outlives it (" + std::to_string(live) + " blocks)";
    if (twice) return "a block freed twice inside the capture (" + std::to_string(twice) + " times)";
    return "";
  }

  // The capture's allocations in order, (address, bytes): the emulated launch hands out the same addresses.
  const std::vector<std::pair<void*, size_t>>& order() const { return order_; }

 private:
  std::unordered_map<void*, size_t> sizes_;   // blocks allocated inside the capture: their sizes
  std::multimap<size_t, void*> free_blocks_;  // of those, the ones freed again (by size, for a best fit)
  std::unordered_set<void*> freed_;           // the same blocks, by address
  std::vector<void*> before_;                 // blocks from before the capture that it freed
  std::unordered_set<void*> before_set_;
  size_t double_frees_ = 0;
  std::vector<std::pair<void*, size_t>> order_;
};

}  // namespace cuda
}  // namespace xlstm
