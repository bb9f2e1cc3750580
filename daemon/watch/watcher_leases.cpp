// Watcher: ack deadlines (DeliveryPolicy::ack_timeout, docs/recovery.md
// "Ack deadlines"). While some watched queue has one, the event loop wakes
// every kLeaseCheckPeriod and takes back what members hold past it (the
// library's expire_leases: under the segment lock, never waiting for it). A
// daemon with no such queue never wakes for this.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "health.hpp"
#include "recovery/repair.hpp"
#include "shm/bus_guard.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "watch/watcher.hpp"

namespace shmq::daemon {

namespace {

// A lease is taken back within this (plus the library's own slack) of its
// deadline: the "within 10 ms plus the check interval".
constexpr auto kLeaseCheckPeriod = std::chrono::milliseconds(10);

bool has_ack_timeout(const detail::Mapping& m) { return m.ack_timeout_ns != 0; }

// Each group's lease_expired counter (statistics, relaxed): the difference
// across one expire_leases call says which groups it took from.
std::vector<std::uint64_t> lease_expiries(const detail::Mapping& m) {
  std::vector<std::uint64_t> out(m.max_groups);
  for (std::uint32_t g = 0; g < m.max_groups; ++g) out[g] = m.groups[g].lease_expired.load(std::memory_order_relaxed);
  return out;
}

std::string group_name(const layout::GroupSlot& slot) {
  return {slot.name, ::strnlen(slot.name, layout::kNameBytes)};
}

void log_expiries(const std::string& queue, const detail::Mapping& m, const std::vector<std::uint64_t>& before,
                  std::uint64_t taken) {
  bool named = false;
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    const std::uint64_t now = m.groups[g].lease_expired.load(std::memory_order_relaxed);
    if (now <= before[g]) continue;
    named = true;
    spdlog::info("queue '{}', group '{}': {} message(s) held past the ack timeout ({} ms) taken back for redelivery",
                 queue, group_name(m.groups[g]), now - before[g], m.ack_timeout_ns / 1'000'000);
  }
  // A counter a peer scribbled on, or moved by a member meanwhile: the total still says it.
  if (!named) spdlog::info("queue '{}': {} message(s) held past the ack timeout taken back", queue, taken);
}

}  // namespace

bool Watcher::any_ack_timeout() const {
  for (const auto& [name, watched] : queues_) {
    if (has_ack_timeout(*detail::mapping_of(watched.queue))) return true;
  }
  return false;
}

void Watcher::expire_leases() {
  next_lease_check_ = Clock::now() + kLeaseCheckPeriod;
  for (auto& [name, watched] : queues_) {
    const detail::Mapping& m = *detail::mapping_of(watched.queue);
    if (!has_ack_timeout(m) || detail::segment_lost(m)) continue;  // truncated: the rescan abandons it
    const auto before = lease_expiries(m);
    const std::uint64_t taken = detail::expire_leases(m);  // 0 also when the lock was taken: the next tick tries
    if (taken == 0) continue;
    health().leases_expired.fetch_add(taken, std::memory_order_relaxed);  // a statistic
    log_expiries(name, m, before, taken);
  }
}

}  // namespace shmq::daemon
