// One thread pool for the whole addon (CPU kernels layer).
// parallel_for splits [0, n) into chunks run by the pool's workers and the calling thread. Calls from
// different threads are serialised (async workers may run kernels concurrently); a parallel_for issued from
// inside a pool task runs inline, so kernels may nest them freely.
// Who waits for a busy pool: threads inside a BackgroundWork scope (the libuv workers running the Promise API's
// work) queue for it. Any other thread (a JS thread making a sync call: the main thread's event loop, a worker
// thread's) never waits behind another thread's job: it runs its own job inline, on itself alone.
#pragma once
#include <cstdint>
#include <functional>

namespace xlstm {

// fn(lo, hi) handles indices [lo, hi). `grain` is the smallest chunk worth a thread hand-off.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// parallel_for whose indices are handed out one at a time: for a few coarse units of about equal cost (a GEMM's row
// blocks), where parallel_for's chunks of several indices leave one thread a whole chunk more than the others (10
// blocks on 2 threads: 5 chunks of 2, so 6 blocks on one thread and 4 on the other).
void parallel_units(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

// Marks the calling thread, for the scope's lifetime, as one that runs background work (binding/async.h).
class BackgroundWork {
 public:
  BackgroundWork();
  ~BackgroundWork();
  BackgroundWork(const BackgroundWork&) = delete;
  BackgroundWork& operator=(const BackgroundWork&) = delete;

 private:
  bool was_;
};

// Number of threads kernels use (workers + the caller). Defaults to XLSTM_NUM_THREADS or the core count.
int num_threads();
// Resize the pool; n <= 0 restores the default.
void set_num_threads(int n);

}  // namespace xlstm
