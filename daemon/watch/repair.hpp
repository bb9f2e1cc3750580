// What shmqd does to one queue segment: repair after its dead clients (the
// library's own, idempotent recovery code), list the live ones, and publish
// the daemon's identity for shmq-stat.
#pragma once

#include <optional>
#include <set>

#include "watch/clients.hpp"
#include "shm/mapping.hpp"
#include "recovery/repair.hpp"

namespace shmq::daemon {

struct RepairOutcome {
  detail::RecoveryCounts counts;
  std::set<ClientId> attached;  // every process a table entry still names
};

// Under the segment lock: recover_dead_clients, then the attached entries.
// nullopt when the lock stays busy (200 us): a client holding it may be
// stopped (SIGSTOP), and one queue must never hang the daemon's loop.
std::optional<RepairOutcome> repair_queue(const detail::Mapping& map);

// Whether an entry is attached while its lock is free (its holder died):
// a cheap look, without the segment lock, for the queues shmqd polls.
[[nodiscard]] bool has_dead_entry(const detail::Mapping& map) noexcept;

// Writes this process's start time and pid namespace, then its pid, into
// the header (a reader that sees the pid sees the rest), then takes the
// daemon's entry lock: how clients tell shmqd serves the queue, from any pid
// namespace (a reader that sees it held sees the pid). Throws Error when the
// entry cannot be taken.
void publish_identity(const detail::Mapping& map);
// Clears the pid, if it is still ours (a standby may have taken over).
void withdraw_identity(const detail::Mapping& map) noexcept;

}  // namespace shmq::daemon
