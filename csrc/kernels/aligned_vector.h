// std::vector with 64-byte aligned storage (CPU kernels layer), for scratch that vector loops read a row at a time.
// Why: glibc serves large allocations from mmap at page + 16 bytes, so a plain std::vector<float>'s rows of 16 floats
// each straddle two cache lines and every 64-byte load is split in two. On a Sapphire Rapids core the sLSTM/LSTM step
// product ran ~10 % slower from such a buffer (147-153 vs 165-168 GFLOP/s, the same loop, 16 x 256 x 1024).
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

namespace xlstm {

// Zero: std::vector(n) value-initialises (zero floats) as usual; false leaves new elements uninitialised, for scratch
// that every use writes before it reads (the zero fill of a few MB per call showed up at ~3 % of a prefill).
template <class T, bool Zero = true>
struct CacheAlignedAllocator {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = CacheAlignedAllocator<U, Zero>;
  };
  static constexpr size_t kAlign = 64;
  CacheAlignedAllocator() = default;
  template <class U>
  CacheAlignedAllocator(const CacheAlignedAllocator<U, Zero>&) noexcept {}
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T) - kAlign) throw std::bad_alloc();
    const size_t bytes = (n * sizeof(T) + kAlign - 1) / kAlign * kAlign;  // aligned_alloc wants a multiple
    void* p = std::aligned_alloc(kAlign, bytes == 0 ? kAlign : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <class U>
  void construct(U* p) noexcept {
    if constexpr (Zero) ::new (static_cast<void*>(p)) U();
    else ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const CacheAlignedAllocator<U, Zero>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const CacheAlignedAllocator<U, Zero>&) const noexcept { return false; }
};

using AlignedFloats = std::vector<float, CacheAlignedAllocator<float>>;
using ScratchFloats = std::vector<float, CacheAlignedAllocator<float, false>>;  // not zeroed

}  // namespace xlstm
