#include "repair.hpp"

#include <sys/file.h>

#include <chrono>
#include <thread>

#include "layout.hpp"
#include "process.hpp"

namespace shmq::daemon {

using namespace layout;

namespace {

bool attached(const std::atomic<std::uint32_t>& state) {
  return state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

template <class Slot>
ClientId id_of(const Slot& slot) {
  return {slot.pid.load(std::memory_order_relaxed), slot.start_time.load(std::memory_order_relaxed)};
}

// detail::SegmentLock's flock, without waiting for ever. Attach, join and
// repairs hold it for microseconds; past 200 us the queue is retried later.
class TryLock {
 public:
  explicit TryLock(const detail::Mapping& m) : fd_(m.fd) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
        held_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }
  ~TryLock() {
    if (held_) ::flock(fd_, LOCK_UN);
  }
  TryLock(const TryLock&) = delete;
  TryLock& operator=(const TryLock&) = delete;
  [[nodiscard]] bool held() const noexcept { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

}  // namespace

std::optional<RepairOutcome> repair_queue(const detail::Mapping& m) {
  // The lock makes each entry's pid and start time a consistent pair: attach
  // and join write them under it.
  const TryLock lock(m);
  if (!lock.held()) return std::nullopt;
  RepairOutcome out;
  out.counts = detail::recover_dead_clients(m);
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

void publish_identity(const detail::Mapping& m) noexcept {
  m.header->daemon_start_time.store(detail::self_start_time(), std::memory_order_relaxed);
  m.header->daemon_pid.store(detail::self_pid(), std::memory_order_release);
}

void withdraw_identity(const detail::Mapping& m) noexcept {
  std::int64_t self = detail::self_pid();
  m.header->daemon_pid.compare_exchange_strong(self, 0, std::memory_order_acq_rel);
}

}  // namespace shmq::daemon
