// Reads a round's worker logs back and checks the queue's promises.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "tally.hpp"

namespace shmq::torture {

struct Expectation {
  std::vector<std::string> producers;   // names; producer-<k>.log belongs to producers[k]
  std::vector<std::string> transients;  // names rounds: transient-<j>.log belongs to transients[j]
  std::vector<std::string> groups;
  std::set<std::string> exclusive_groups;  // of `groups`: one active member reads at a time
  std::uint64_t messages = 0;           // each producer committed 1..messages (its last incarnation)
  bool completed = false;               // the round ran to its end: every group drained
  bool durable = false;                 // a durable round: confirms are durable, power losses happen
  std::uint32_t max_producers = 0;      // the queue's producer table
  // Policy rounds (round.hpp, PolicyPlan): the dead letters are in dead-letters.log.
  bool policy = false;
  std::string queue;                    // the origin queue every dead letter must name
  std::uint32_t max_deliveries = 0;
  std::uint64_t ttl_ns = 0;
  bool ack_timeout = false;
  std::vector<std::uint64_t> power_loss_ns;  // CLOCK_REALTIME of each power loss: the epoch of a dead letter

  [[nodiscard]] bool names_round() const { return !transients.empty(); }
  // In-memory names rounds: detached entries are given to other names, so a
  // name may come back at a fresh sequence (a new incarnation).
  [[nodiscard]] bool recycling() const { return names_round() && !durable; }
};

struct Verdict {
  Tally tally;  // confirmed, delivered, redelivered, duplicates_refused, lost, unflagged_duplicates
  std::vector<std::string> violations;
};

// A name's messages are told apart by incarnation: a run of the name's
// processes that continue one sequence. A process starts a new one when its
// attach reports last sequence 0 and the name had one before: in-memory names
// rounds, where its entry was recycled; durable rounds, when a power loss
// forgot it (the journal held nothing of it) and it got another id. Payloads
// name their sender and its process, which the logs map to an incarnation.
// Checks, for a completed round:
//  - no worker logged an error (payload mismatch, a message whose producer
//    table name is not the name in its payload, failed ack, unexpected status);
//  - every resent committed sequence was refused as Duplicate;
//  - a re-attach in an incarnation reports a last sequence no lower than its
//    last confirm, and the same producer id; a new incarnation begins only
//    where it may (above), a durable one only with nothing confirmed before;
//  - in-memory names rounds: an incarnation begins (its attach returned) only
//    once every group released every message of what its entry held before,
//    and of the name's earlier incarnations (no ack of one began later);
//  - names rounds: a TableFull answer only once as many names as the table
//    holds had attached; durable rounds: no entry serves two names between
//    power losses;
//  - every sequence of every incarnation reached every group (lost): 1..messages
//    of a regular producer's last one, of the others 1..(highest confirmed,
//    in-memory also highest a re-attach reported, or delivered anywhere);
//  - in a group, a message is delivered once unflagged, acked at most once per
//    power epoch (a rebuild redelivers, flagged, what the group had acked
//    after its last checkpoint), and flagged redelivered only in a group
//    where a consumer died (a power loss kills them all);
//  - a message (name, incarnation, sequence) has one position and a position
//    one message, it carries its process's producer id, an incarnation's
//    sequences increase with position, and a name's incarnations follow one
//    another in the log;
//  - each consumer's first deliveries come in position order;
//  - an exclusive group: one member delivers at a time (a member that another
//    one followed never delivers again: it stays active until it dies), and
//    the group's first deliveries, all members together in time order, come
//    in position order (so each producer's sequences in increasing order);
//    its redeliveries are flagged (the checks above, as for every group).
// Policy rounds, besides (the outcome of a delivery: K, N, X, L lines; a
// dead letter: its line in dead-letters.log, a copy being its dead-letter
// producer and sequence, read once or more):
//  - in every group every message is acked (an ack that returned Ok) or
//    dead-lettered (a copy in the dead-letter queue naming that group,
//    producer and sequence), at least one of them, or an ack or reject whose
//    consumer died before its result line; and at most one per power epoch
//    (a power loss forgets what the group's last checkpoint did not hold: a
//    move, like an ack, may then be done again, docs/design.md);
//  - a dead letter carries the payload, producer, sequence and position of its
//    origin, in a group of the round; reason max-deliveries only with a
//    max_deliveries, at that count (or above after a rebuild); expired only
//    with a TTL, moved past it; rejected only where a member of the group
//    tried to reject that delivery, with its delivery count;
//  - delivery counts: a redelivered message counts 2 or more, a first one 1
//    (in-memory), never more than max_deliveries, and (in-memory) a
//    message's deliveries in a group count up, each at least its rank;
//  - a redelivery is flagged, and without an ack timeout comes only in a
//    group where a consumer died or nacked.
// For a round that did not complete, only the first four (nothing is drained).
Verdict verify_logs(const std::string& log_dir, const Expectation& expected);

}  // namespace shmq::torture
