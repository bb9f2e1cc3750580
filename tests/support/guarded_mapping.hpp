// Test-only: puts PROT_NONE guard pages around a queue's mapping, so that any
// read or write past the end of the ring (or before the header) faults at
// once instead of silently touching whatever mapping happens to be adjacent.
//
// It moves the segment's mapping (mremap MREMAP_FIXED) into a reserved window
// and shifts the pointers of detail::Mapping by the same amount. Call it right
// after Queue::open/create, before any Producer or Consumer is made from the
// queue (they copy table pointers). Keep the returned Guard alive longer than
// every handle on the queue: it unmaps the guard pages.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <type_traits>

#include "shm/mapping.hpp"
#include "shmq/queue.hpp"

namespace shmq::test {

class Guard {
 public:
  Guard() = default;
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
  ~Guard() {
    if (front_ != nullptr) ::munmap(front_, page_);
    if (back_ != nullptr) ::munmap(back_, page_);
  }
  [[nodiscard]] bool active() const noexcept { return back_ != nullptr; }

  // False (queue left as it was) when the move is impossible.
  bool protect(const Queue& queue) {
    detail::Mapping& m = *detail::mapping_of(queue);
    page_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    if (m.base == nullptr || m.size % page_ != 0) return false;
    void* window = ::mmap(nullptr, m.size + 2 * page_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (window == MAP_FAILED) return false;
    auto* target = static_cast<std::byte*>(window) + page_;
    void* moved = ::mremap(m.base, m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    if (moved == MAP_FAILED) {
      ::munmap(window, m.size + 2 * page_);
      return false;
    }
    const auto shift = [&](auto*& p) {
      p = reinterpret_cast<std::remove_reference_t<decltype(p)>>(
          reinterpret_cast<std::byte*>(p) - static_cast<std::byte*>(m.base) + static_cast<std::byte*>(moved));
    };
    shift(m.header);
    shift(m.producers);
    shift(m.groups);
    shift(m.consumers);
    shift(m.states);
    shift(m.deliveries);
    shift(m.ring);
    m.base = moved;
    front_ = window;
    back_ = target + m.size;
    return true;
  }

 private:
  std::size_t page_ = 0;
  void* front_ = nullptr;
  void* back_ = nullptr;
};

}  // namespace shmq::test
