// Thread pool behind parallel_for (see threadpool.h). Workers sleep on a condition variable between jobs;
// a job hands out chunks through an atomic counter so uneven chunks balance themselves.
#include "kernels/threadpool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#if defined(__linux__)
#include <pthread.h>
#endif
#include <thread>
#include <vector>

namespace xlstm {
namespace {

thread_local bool t_inside_pool_task = false;
thread_local bool t_background = false;  // inside a BackgroundWork scope
// How long an idle worker polls for the next job before it sleeps on the condition variable. A training step issues
// a few hundred jobs with short JS gaps between them (tens to hundreds of µs of tape and allocation work); a worker
// that slept in such a gap is woken through a futex and a reschedule while the caller already runs the job alone
// (W2: ~1 % of a step at 60 µs). A millisecond covers the gaps and costs at most that much polling per idle period.
constexpr int kSpinMicros = 1000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

int default_threads() {
  if (const char* env = std::getenv("XLSTM_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return std::min(n, 1024);
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      stop_flag_.store(true, std::memory_order_relaxed);
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int threads() const { return threads_; }

  // Runs fn over [0, n) on the pool; false (nothing run) when the caller may not wait and the pool is busy.
  bool run(int64_t n, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn, bool may_wait) {
    std::unique_lock<std::mutex> job_lock(job_mu_, std::defer_lock);  // one job at a time
    if (may_wait) job_lock.lock();
    else if (!job_lock.try_lock()) return false;
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      chunk_ = chunk;
      next_.store(0, std::memory_order_relaxed);
      active_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
      generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // The caller usually runs out of chunks while a worker still finishes its last one: poll for it before sleeping
    // (a futex wake-up and reschedule cost more than the wait itself).
    const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0; active_.load(std::memory_order_acquire) != 0; ++i) {
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_end) break;
      cpu_relax();
    }
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [this] { return active_.load(std::memory_order_acquire) == 0; });
    fn_ = nullptr;
    if (error_) {
      std::exception_ptr e = error_;
      error_ = nullptr;
      std::rethrow_exception(e);
    }
    return true;
  }

 private:
  void work() {
    bool was_inside = t_inside_pool_task;
    t_inside_pool_task = true;
    for (;;) {
      int64_t lo = next_.fetch_add(chunk_, std::memory_order_relaxed);
      if (lo >= n_) break;
      int64_t hi = std::min(n_, lo + chunk_);
      try {
        (*fn_)(lo, hi);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    t_inside_pool_task = was_inside;
  }

  void worker_loop() {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), "xlstm-pool");  // what top -H / perf show
#endif
    uint64_t seen = 0;
    for (;;) {
      // Spin briefly before sleeping: waking a sleeping thread costs ~25 us on the machines we measured, more
      // than many whole kernels (a generation step, a small GEMM) take.
      bool ready = false;
      const auto spin_end = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int i = 0; !ready; ++i) {
        if (generation_.load(std::memory_order_acquire) != seen || stop_flag_.load(std::memory_order_relaxed)) ready = true;
        else if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_end) break;
        else cpu_relax();
      }
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        seen = generation_.load(std::memory_order_relaxed);
      }
      work();
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_cv_.notify_one();
      }
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  std::mutex job_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0, chunk_ = 1;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};  // workers still in the current job (changed under mu_, polled without it)
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};
  std::exception_ptr error_;
};

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;  // shared: a resize never frees a pool that a running kernel still uses

std::shared_ptr<Pool> pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<Pool>(default_threads());
  return g_pool;
}

}  // namespace

BackgroundWork::BackgroundWork() : was_(t_background) { t_background = true; }
BackgroundWork::~BackgroundWork() { t_background = was_; }

int num_threads() { return pool()->threads(); }

void set_num_threads(int n) {
  auto fresh = std::make_shared<Pool>(n > 0 ? std::min(n, 1024) : default_threads());
  std::lock_guard<std::mutex> lk(g_pool_mu);
  g_pool = std::move(fresh);  // the old pool is joined when its last user lets go
}

namespace {
// [0, n) in chunks of `chunk` (0: about 4 per thread, at least grain) on the pool and the calling thread.
void run_chunks(int64_t n, int64_t grain, int64_t chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  std::shared_ptr<Pool> p = pool();
  int t = p->threads();
  if (t == 1 || n <= grain || t_inside_pool_task) {
    fn(0, n);
    return;
  }
  // About 4 chunks per thread balances uneven work without much hand-off overhead.
  if (chunk <= 0) chunk = std::max(grain, (n + 4 * t - 1) / (4 * t));
  // A JS thread's sync call never waits behind a Promise call's job (which can take a long time): when the pool is
  // busy it runs the whole range itself. Background threads queue for the pool.
  if (!p->run(n, chunk, fn, t_background)) fn(0, n);
}
}  // namespace

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  run_chunks(n, grain, 0, fn);
}

void parallel_units(int64_t n, const std::function<void(int64_t, int64_t)>& fn) { run_chunks(n, 1, 1, fn); }

}  // namespace xlstm
