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

// Writes this process's start time, then its pid, into the header (a reader
// that sees the pid sees the start time that goes with it).
void publish_identity(const detail::Mapping& map) noexcept;
// Clears the pid, if it is still ours (a standby may have taken over).
void withdraw_identity(const detail::Mapping& map) noexcept;

}  // namespace shmq::daemon
