// Waiting: spin, then sleep on a futex event count in shared memory.
//
// Protocol (see layout::EventCount): a waiter registers in `waiters`, takes a
// snapshot of `seq`, re-checks its condition behind a seq_cst fence, and
// sleeps only while `seq` still equals the snapshot. A notifier changes the
// condition, issues a seq_cst fence, and touches `seq` and the futex only
// when someone waits. The two fences pair: either the waiter sees the new
// condition, or the notifier sees the waiter.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <ctime>

#include "shm/bus_guard.hpp"
#include "shm/layout.hpp"
#include "shmq/producer.hpp"

namespace shmq::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Returns whether it slept the whole `timeout` (nobody woke it).
inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, Duration timeout) noexcept {
  const auto ns = std::max<Duration::rep>(timeout.count(), 0);
  timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  // Shared (not FUTEX_PRIVATE): the word lives in memory mapped by several processes.
  const int saved_errno = errno;
  const bool timed_out =
      ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, expected, &ts, nullptr, 0) != 0 &&
      errno == ETIMEDOUT;
  errno = saved_errno;
  return timed_out;
}

inline void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

inline void wake_waiters(layout::EventCount& ev) noexcept {
  // seq_cst: after the notifier's fence (or seq_cst RMW), against the
  // waiter's count and fence in wait_until: one of the two sees the other.
  if (ev.waiters.load(std::memory_order_seq_cst) != 0) {
    ev.seq.fetch_add(1, std::memory_order_relaxed);
    futex_wake_all(ev.seq);
  }
}

// Called after making a condition true with a plain store (a commit).
inline void notify(layout::EventCount& ev) noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in wait_until
  wake_waiters(ev);
}

// Called after making a condition true with a seq_cst read-modify-write (the
// released CAS): that RMW already orders the waiters load after it in the
// single total order, against the waiter's fence, so no second fence is needed.
inline void notify_after_seq_cst_rmw(layout::EventCount& ev) noexcept { wake_waiters(ev); }

// Longest single sleep: every wait wakes this often to re-check deadlines and
// peers' liveness, so nothing sleeps forever on a dead peer.
inline constexpr Duration kMaxSleep = std::chrono::milliseconds(50);

// Whether the segment holding `ev` was truncated under this process, which
// now maps zeros there (bus_guard.hpp): waiting on it is pointless. One
// relaxed load while no mapping of the process is broken.
inline bool segment_lost_under(const layout::EventCount& ev) noexcept {
  return any_mapping_broken() && mapping_broken(guard_entry_of(&ev));
}

// Whether the queue holding `ev` was deleted (its segment file has no name
// left, as the last idle slice's fstat found): a wait on it would be for
// nothing. One relaxed load while no queue of the process was deleted.
inline bool segment_deleted_under(const layout::EventCount& ev) noexcept {
  return any_mapping_unlinked() && segment_unlinked(guard_entry_of(&ev));
}

// Calls `attempt` until it returns true or `deadline` passes. Between attempts
// it spins `spin` times, then sleeps on `ev`. `on_idle` runs before each sleep
// (stall detection and repair). Returns false on timeout, and at once when
// the segment holding `ev` was truncated under it or its queue deleted: after
// a sleep nobody woke, it checks the segment's file (one fstat per idle slice,
// never on the data path), so a waiter finds the truncation even when the
// pages it watches are still there, and the deletion of its queue.
// `spin_ended` (if given) receives the time the polling ended and the first
// sleep began; it stays untouched when a poll succeeded.
template <class Attempt, class OnIdle>
bool wait_until(layout::EventCount& ev, Clock::time_point deadline, std::uint32_t spin, Attempt&& attempt,
                OnIdle&& on_idle, Clock::time_point* spin_ended = nullptr) noexcept {
  for (std::uint32_t i = 0; i < spin; ++i) {
    if (attempt()) return true;
    cpu_relax();
  }
  if (spin_ended != nullptr) *spin_ended = Clock::now();
  for (;;) {
    ev.waiters.fetch_add(1, std::memory_order_relaxed);
    const std::uint32_t snapshot = ev.seq.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the fence in notify
    if (attempt()) {
      ev.waiters.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    const auto now = Clock::now();
    if (now >= deadline || segment_lost_under(ev) || segment_deleted_under(ev)) {
      ev.waiters.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    const Duration sleep = std::min<Duration>(on_idle(), std::min<Duration>(deadline - now, kMaxSleep));
    const bool idle = futex_wait(ev.seq, snapshot, sleep);
    ev.waiters.fetch_sub(1, std::memory_order_relaxed);
    if (idle) (void)check_segment_size(guard_entry_of(&ev));  // found by segment_lost_under next round
  }
}

// Why wait_until returned false: the segment was truncated (Corrupt), the
// queue deleted (Deleted), or the deadline passed (Timeout).
inline Status wait_failure(const layout::EventCount& ev) noexcept {
  if (segment_lost_under(ev)) return Status::Corrupt;
  if (segment_deleted_under(ev)) return Status::Deleted;
  return Status::Timeout;
}

inline Clock::time_point deadline_after(Duration timeout) noexcept {
  const auto now = Clock::now();
  if (timeout >= Clock::time_point::max() - now) return Clock::time_point::max();
  return now + timeout;
}

}  // namespace shmq::detail
