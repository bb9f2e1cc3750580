#include "watch/repair.hpp"

#include <chrono>
#include <thread>

#include "shm/layout.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "health.hpp"

namespace shmq::daemon {

using namespace layout;

namespace {

bool attached(const std::atomic<std::uint32_t>& state) {
  return state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

template <class Slot>
ClientId id_of(const Slot& slot) {
  return {slot.pid.load(std::memory_order_relaxed), slot.start_time.load(std::memory_order_relaxed),
          slot.pid_ns.load(std::memory_order_relaxed)};
}

}  // namespace

namespace {

RepairOutcome repair_locked(const detail::Mapping& m) {
  RepairOutcome out;
  const auto start = std::chrono::steady_clock::now();
  out.counts = detail::recover_dead_clients(m);
  const auto& c = out.counts;
  if (c.producers_reaped + c.consumers_reaped + c.redelivered + c.holes_repaired != 0) {
    health().repair.observe(std::chrono::steady_clock::now() - start);  // a repair, not a look
  }
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    if (attached(m.producers[i].state)) out.attached.insert(id_of(m.producers[i]));
  }
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (!attached(m.groups[g].state)) continue;
    for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
      if (attached(m.consumer(g, c).state)) out.attached.insert(id_of(m.consumer(g, c)));
    }
  }
  return out;
}

}  // namespace

std::optional<RepairOutcome> repair_queue(const detail::Mapping& m) {
  // The lock makes each entry's pid and start time a consistent pair: attach
  // and join write them under it. Attach, join and repairs hold it for
  // microseconds: past 200 us (a stopped holder?) the queue is retried later.
  for (int attempt = 0; attempt < 10; ++attempt) {
    const detail::SegmentLock lock(m, detail::SegmentLock::TryTag{});
    if (lock.owned()) return repair_locked(m);
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return std::nullopt;
}

bool has_dead_entry(const detail::Mapping& m) noexcept {
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    if (attached(m.producers[i].state) && !detail::entry_held(m, detail::producer_lock_byte(i))) return true;
  }
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (!attached(m.groups[g].state)) continue;
    for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
      if (attached(m.consumer(g, c).state) && !detail::entry_held(m, detail::consumer_lock_byte(g, c))) return true;
    }
  }
  return false;
}

void publish_identity(const detail::Mapping& m) {
  m.header->daemon_start_time.store(detail::self_start_time(), std::memory_order_relaxed);
  m.header->daemon_pid_ns.store(detail::self_pid_namespace(), std::memory_order_relaxed);
  // release: pairs with queue_info's acquire load, made after it saw the lock
  // below held (the kernel's lock orders the two processes' steps).
  m.header->daemon_pid.store(detail::self_pid(), std::memory_order_release);
  detail::hold_entry(m, detail::daemon_lock_byte());
}

void withdraw_identity(const detail::Mapping& m) noexcept {
  std::int64_t self = detail::self_pid();
  m.header->daemon_pid.compare_exchange_strong(self, 0, std::memory_order_acq_rel);
  detail::let_go_entry(m, detail::daemon_lock_byte());
}

}  // namespace shmq::daemon
