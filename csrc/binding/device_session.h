// Binding layer: the device inference sessions' common surface (cuda_infer_session.h for xLSTMLMModel,
// cuda_large_session.h for xLSTM Large): infer.cc holds either kind through it.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "kernels/xlstm_infer.h"
#include "session_graphs.h"

namespace xlstm {

// The owners of a session's parameter pointers (each device buffer's DeviceBuffer::mem): the device sessions borrow
// the model's parameter buffers instead of copying them, sharing their ownership for as long as they live.
using DeviceOwners = std::unordered_map<const void*, std::shared_ptr<void>>;

struct DeviceSession {
  virtual ~DeviceSession() = default;
  // tokens [B, S] on the host (ids checked by the caller) from the state; logits [B, V] of the last position to the
  // host. Waits for the device. S >= 1.
  virtual void run(float* logits, const int32_t* tokens, int64_t S) = 0;
  // the zero state
  virtual void reset() = 0;
  // the device buffer of one block's state part, or nullptr when the block has none; *len its floats
  virtual float* state(int64_t block, InferStatePart part, int64_t* len) = 0;
  // device memory the session itself holds (state, scratch, the sLSTM biases it permutes; not the borrowed weights)
  virtual int64_t bytes() const = 0;
  virtual int64_t blocks() const = 0;
  int64_t batch() const { return B; }
  int64_t vocab() const { return V; }

  int64_t B = 0, V = 0;  // batch rows, vocabulary
  virtual bool block_is_slstm(int64_t) const { return false; }
  // the decode steps' graphs (session_graphs.h); a session clears them in its destructor, before its buffers go
  StepGraphs graphs;
};

}  // namespace xlstm
