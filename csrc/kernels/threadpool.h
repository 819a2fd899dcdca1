// One thread pool for the whole addon (CPU kernels layer).
// parallel_for splits [0, n) into chunks run by the pool's workers and the calling thread. Calls from
// different threads are serialised (async workers may run kernels concurrently); a parallel_for issued from
// inside a pool task runs inline, so kernels may nest them freely.
#pragma once
#include <cstdint>
#include <functional>

namespace xlstm {

// fn(lo, hi) handles indices [lo, hi). `grain` is the smallest chunk worth a thread hand-off.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Number of threads kernels use (workers + the caller). Defaults to XLSTM_NUM_THREADS or the core count.
int num_threads();
// Resize the pool; n <= 0 restores the default.
void set_num_threads(int n);

}  // namespace xlstm
