// What a round did and found, summed over the run for the summary line.
#pragma once

#include <cstdint>

namespace shmq::torture {

struct Tally {
  std::uint64_t rounds = 0;
  std::uint64_t confirmed = 0;           // sends that returned Ok (durable rounds: durably confirmed)
  std::uint64_t delivered = 0;           // deliveries logged, redeliveries included
  std::uint64_t redelivered = 0;         // deliveries flagged redelivered
  std::uint64_t duplicates_refused = 0;  // resends of committed sequences refused
  std::uint64_t producer_kills = 0;
  std::uint64_t consumer_kills = 0;
  std::uint64_t daemon_kills = 0;
  std::uint64_t stops = 0;  // SIGSTOP, each followed by a SIGCONT
  std::uint64_t power_losses = 0;  // durable rounds: everything killed, the segment removed, rebuilt
  std::uint64_t journal_switches = 0;  // durable rounds: groups that fell a ring behind and read the journal
  // Lifecycle rounds (docs/reliability.md, "Lifecycle rounds"):
  std::uint64_t app_first = 0;          // power losses after which the application opened the queue before shmqd ran
  std::uint64_t rebuild_kills = 0;      // shmqd killed while it rebuilt (or was about to) after a power loss
  std::uint64_t mid_rebuild_kills = 0;  // of those, killed with its segment half-built (seen under the temporary name)
  std::uint64_t full_disks = 0;         // times the data disk was filled up
  std::uint64_t full_disk_starts = 0;   // shmqd started on a full data disk
  std::uint64_t full_disk_failures = 0;  // full disks that shmqd reported (journal_error or a failing set-up)
  std::uint64_t fencings = 0;           // stopped primaries the standby fenced (SIGKILL) before it took over
  std::uint64_t takeovers = 0;          // killed primaries the standby took over from
  std::uint64_t skipped = 0;            // rounds that could not run here (a full-disk round without mount rights)
  // Names rounds (a producer table smaller than the names attaching):
  std::uint64_t names_rounds = 0;
  std::uint64_t transient_attaches = 0;  // attaches of transient producers
  std::uint64_t recycled = 0;            // incarnations that began in an entry another name had used
  std::uint64_t new_incarnations = 0;    // names that came back to a fresh sequence (their entry recycled)
  std::uint64_t table_full = 0;          // attaches refused with TableFull (at first; in-memory rounds wait)
  // Exclusive groups (one active member reads, the others stand by):
  std::uint64_t active_kills = 0;         // kill -9 of the active member (half of them SIGSTOPped first)
  std::uint64_t active_stops = 0;         // SIGSTOP of the active member, each followed by a SIGCONT
  std::uint64_t exclusive_takeovers = 0;  // another member delivered after the one before it (the logs' view)
  // Policy rounds (a DeliveryPolicy and a dead-letter queue):
  std::uint64_t policy_rounds = 0;
  std::uint64_t nacks = 0;          // nacks that returned Ok
  std::uint64_t rejects = 0;        // rejects that returned Ok
  std::uint64_t lease_expired = 0;  // acks, nacks and rejects refused with LeaseExpired
  std::uint64_t stalls = 0;         // batches held past the ack timeout
  std::uint64_t dead_letters = 0;   // copies in the dead-letter queue
  std::uint64_t dead_max_deliveries = 0, dead_expired = 0, dead_rejected = 0;  // of them, by reason
  std::uint64_t lost = 0;   // committed (confirmed or not) but missing from a group
  std::uint64_t unflagged_duplicates = 0;

  void add(const Tally& o) {
    rounds += o.rounds;
    confirmed += o.confirmed;
    delivered += o.delivered;
    redelivered += o.redelivered;
    duplicates_refused += o.duplicates_refused;
    producer_kills += o.producer_kills;
    consumer_kills += o.consumer_kills;
    daemon_kills += o.daemon_kills;
    stops += o.stops;
    power_losses += o.power_losses;
    journal_switches += o.journal_switches;
    app_first += o.app_first;
    rebuild_kills += o.rebuild_kills;
    mid_rebuild_kills += o.mid_rebuild_kills;
    full_disks += o.full_disks;
    full_disk_starts += o.full_disk_starts;
    full_disk_failures += o.full_disk_failures;
    fencings += o.fencings;
    takeovers += o.takeovers;
    skipped += o.skipped;
    names_rounds += o.names_rounds;
    transient_attaches += o.transient_attaches;
    recycled += o.recycled;
    new_incarnations += o.new_incarnations;
    table_full += o.table_full;
    active_kills += o.active_kills;
    active_stops += o.active_stops;
    exclusive_takeovers += o.exclusive_takeovers;
    policy_rounds += o.policy_rounds;
    nacks += o.nacks;
    rejects += o.rejects;
    lease_expired += o.lease_expired;
    stalls += o.stalls;
    dead_letters += o.dead_letters;
    dead_max_deliveries += o.dead_max_deliveries;
    dead_expired += o.dead_expired;
    dead_rejected += o.dead_rejected;
    lost += o.lost;
    unflagged_duplicates += o.unflagged_duplicates;
  }
};

}  // namespace shmq::torture
