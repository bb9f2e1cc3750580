// Reads a round's worker logs back and checks the queue's promises.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tally.hpp"

namespace shmq::torture {

struct Expectation {
  std::vector<std::string> producers;  // names; producer-<k>.log belongs to producers[k]
  std::vector<std::string> groups;
  std::uint64_t messages = 0;          // each producer committed 1..messages
  bool completed = false;              // the round ran to its end: every group drained
  bool durable = false;                // a durable round: confirms are durable, power losses happen
};

struct Verdict {
  Tally tally;  // confirmed, delivered, redelivered, duplicates_refused, lost, unflagged_duplicates
  std::vector<std::string> violations;
};

// Checks, for a completed round:
//  - no worker logged an error (payload mismatch, failed ack, unexpected status);
//  - every resent committed sequence was refused as Duplicate;
//  - a re-attach reports a last sequence no lower than the producer's last
//    confirm (durable rounds: after a power loss too), and the same producer
//    id (durable rounds: unless the journal held nothing of the producer);
//  - every sequence 1..messages of every producer reached every group (lost);
//  - in a group, a message is delivered once unflagged, acked at most once per
//    power epoch (a rebuild redelivers, flagged, what the group had acked
//    after its last checkpoint), and flagged redelivered only in a group
//    where a consumer died (a power loss kills them all);
//  - a (producer, sequence) has one position, and a producer's sequences
//    increase with position (one record per sequence, in order);
//  - each consumer's first deliveries come in position order.
// For a round that did not complete, only the first three (nothing is drained).
Verdict verify_logs(const std::string& log_dir, const Expectation& expected);

}  // namespace shmq::torture
