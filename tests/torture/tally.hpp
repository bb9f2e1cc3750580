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
    lost += o.lost;
    unflagged_duplicates += o.unflagged_duplicates;
  }
};

}  // namespace shmq::torture
