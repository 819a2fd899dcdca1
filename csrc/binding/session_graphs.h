// Binding layer: a device inference session's decode steps replayed from CUDA graphs (cuda::set_session_graphs,
// opt-in until timed on a GPU). A step (one token per batch row) enqueues the same fixed sequence of kernels on the
// same buffers every time, except that the state lives in ping-pong buffers: which of each pair is live (the
// session's "parity") decides the pointers the kernels get. So the graphs are keyed by the parity before the step
// (the xLSTM Large session runs a prefill as such steps too, its key extended by whether the step ends with the head):
// the first step from a parity runs eagerly (any first-use setup, such as a kernel's shared-memory attribute or an
// autotune, happens outside a capture), the second is captured and launched, and later ones launch that graph and
// set the parity the step leaves. A capture that fails (an operation the capture refuses, or another thread's device
// synchronisation invalidating it) leaves that step to run eagerly from the parity it started with, and the reason
// for status(). Graphs already captured keep being launched; a new capture is tried again after kRetryAfter more
// steps that needed one, and after kMaxFailures failed captures (a capture that works does not reset the count) no
// more are tried. A graph keeps the kernels its capture chose: a change of the kernel settings
// (cuda::kernel_settings_changed) drops the graphs and the failure count, and the steps after it capture new ones.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace xlstm {

class StepGraphs {
 public:
  using Parity = std::vector<uint8_t>;
  StepGraphs() = default;
  StepGraphs(const StepGraphs&) = delete;
  StepGraphs& operator=(const StepGraphs&) = delete;
  ~StepGraphs() { clear(); }

  // Runs one step: `enqueue` puts its device work on the package stream and moves the parity on; `get` / `set`
  // read and restore the session's parity. Eager (just `enqueue`) when graphs are off.
  void step(const std::function<void()>& enqueue, const std::function<Parity()>& get,
            const std::function<void(const Parity&)>& set);
  // "off", "on: N graphs" (N captured so far), after a failed capture "on: N graphs; capture failed (k of
  // kMaxFailures, retrying | no more tries): <why>", or "failed: <why>" (no graph and no more tries)
  std::string status() const;
  static constexpr int kMaxFailures = 3;
  static constexpr int64_t kRetryAfter = 32;
  void clear();  // frees the graphs (the session's buffers must outlive them)

 private:
  struct Entry {
    void* graph = nullptr;
    Parity after;
  };
  std::map<Parity, Entry> graphs_;
  std::set<Parity> seen_;
  std::string failed_;    // why the last capture failed (empty after a capture that worked)
  int failures_ = 0;      // failed captures under the current kernel settings
  int64_t wait_ = 0;      // steps wanting a capture still to run eagerly before the next try
  uint64_t settings_ = 0;  // cuda::kernel_settings_generation() when graphs_ / seen_ were filled
};

}  // namespace xlstm
