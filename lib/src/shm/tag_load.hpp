// tag_is: the acquire load of a record's tag (shm/layout.hpp) and its test,
// the one place where shmq races on purpose.
//
// A reader may hold a stale position: it loaded a group's read cursor, was
// descheduled, and meanwhile the ring went a lap past it. Its tag load then
// reads a word that a producer's payload write covers in the newer lap. The
// value read never matches the tag it looks for (record tags in
// docs/design.md), so nothing is taken from it; it is a seqlock's stale read.
// ThreadSanitizer still reports the atomic load against the plain payload
// write (in C++ terms a data race on that word). Under TSan only, the load is
// made where TSan does not see it (inline asm), and a matching tag tells TSan
// about the acquire (__tsan_acquire pairs with the producer's release store
// of the tag at that address), so every real happens-before edge stays checked.
#pragma once

#include <atomic>
#include <cstdint>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace shmq::detail {

// Whether `tag` holds `expected`; if so, what its writer wrote before its
// release store is visible.
#if defined(__SANITIZE_THREAD__) && defined(__x86_64__)
inline bool tag_is(const std::atomic<std::uint64_t>& tag, std::uint64_t expected) noexcept {
  std::uint64_t value;
  // x86-64: an aligned 8-byte mov is atomic, and loads are acquire (TSO).
  asm volatile("movq %1, %0" : "=r"(value) : "m"(tag) : "memory");
  if (value != expected) return false;
  __tsan_acquire(const_cast<std::atomic<std::uint64_t>*>(&tag));
  return true;
}
#else
inline bool tag_is(const std::atomic<std::uint64_t>& tag, std::uint64_t expected) noexcept {
  return tag.load(std::memory_order_acquire) == expected;
}
#endif

}  // namespace shmq::detail
