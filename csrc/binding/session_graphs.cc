// Binding layer: decode steps replayed from CUDA graphs (see session_graphs.h).
#include "session_graphs.h"

#include <memory>
#include <stdexcept>

#include "cuda_api.h"

namespace xlstm {

void StepGraphs::step(const std::function<void()>& enqueue, const std::function<Parity()>& get,
                      const std::function<void(const Parity&)>& set) {
  if (!cuda::session_graphs()) return enqueue();
  const uint64_t settings = cuda::kernel_settings_generation();
  if (settings != settings_) {
    clear();  // captured under other kernel choices; a failure under them may not recur
    failed_.clear(), failures_ = 0, wait_ = 0;
    settings_ = settings;
  }
  const Parity before = get();
  auto it = graphs_.find(before);
  if (it != graphs_.end()) {
    cuda::graph_launch(it->second.graph);
    set(it->second.after);
    return;
  }
  if (seen_.insert(before).second) return enqueue();  // the first step from this parity: eager
  if (!failed_.empty() && (failures_ >= kMaxFailures || wait_-- > 0)) return enqueue();  // after a failed capture
  std::function<void()> work = enqueue;
  // Under emulation the capture runs the work itself: 0 not started (refused), 1 started and threw, 2 ran whole
  struct EmulatedRun {
    int started = 0;
  };
  auto emulated_run = std::make_shared<EmulatedRun>();
  if (cuda::emulated()) {
    // The emulated device's graph is the step's own calls, run again at each launch (cuda_api.h). A real graph's
    // kernels keep the buffers of the parity it was captured at and leave the session's parity alone, so the
    // replay runs them from that parity and restores the parity it found: the session's own bookkeeping (the key,
    // setting the parity a launch leaves) is then checked under emulation as it would be on a GPU.
    work = [enqueue, get, set, before, run = emulated_run] {
      if (run->started == 0) {  // the capture's own run: the enqueue moves the parity on, as a capture does
        run->started = 1;
        enqueue();
        run->started = 2;
        return;
      }
      const Parity found = get();
      set(before);
      enqueue();
      set(found);
    };
  }
  std::string why;
  void* g = cuda::graph_capture_launch(work, &why);
  if (!g) {
    failed_ = why.empty() ? "capture failed" : why;
    ++failures_, wait_ = kRetryAfter;
    // A GPU ran nothing of a failed capture: the step runs eagerly from the parity it started with. The emulated
    // capture has run what it got to: a whole step stands (its parity kept), one that threw is reported, as the eager
    // run would report it on a GPU (running the rest again could repeat in-place updates)
    if (emulated_run->started == 2) return;
    if (emulated_run->started == 1) throw std::runtime_error(failed_);
    set(before);
    return enqueue();
  }
  failed_.clear();
  try {
    graphs_[before] = Entry{g, get()};
  } catch (...) {
    cuda::graph_free(g);
    throw;
  }
}

std::string StepGraphs::status() const {
  if (!cuda::session_graphs()) return "off";
  if (!failed_.empty() && failures_ >= kMaxFailures && graphs_.empty()) return "failed: " + failed_;
  std::string s = "on: " + std::to_string(graphs_.size()) + " graphs";
  if (!failed_.empty())
    s += "; capture failed (" + std::to_string(failures_) + " of " + std::to_string(kMaxFailures) +
         (failures_ >= kMaxFailures ? ", no more tries): " : ", retrying): ") + failed_;
  return s;
}

void StepGraphs::clear() {
  for (auto& kv : graphs_) cuda::graph_free(kv.second.graph);
  graphs_.clear();
  seen_.clear();
}

}  // namespace xlstm
