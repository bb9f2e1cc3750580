// One torture round: a fresh queue, producers and consumer groups in forked
// processes, faults injected at random moments, then a drain and the checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon_process.hpp"
#include "options.hpp"
#include "shmq/queue.hpp"
#include "tally.hpp"

namespace shmq::torture {

// InMemory: a plain queue; "confirmed" means committed in shared memory.
// Durable: the queue is journaled by shmqd (QueueOptions::durable), producers
// confirm with Confirm::Durable or wait_durable ("confirmed" means synced to
// the journal), and a PowerLoss fault kills every worker and shmqd at once,
// removes the segment and restarts shmqd, which rebuilds the queue from its
// journal in the round's data directory; then the workers are restarted.
enum class RoundKind { InMemory, Durable };

// A lifecycle round (durable, with every fault of a durable round) adds one
// lifecycle fault (options.hpp's Lifecycle; docs/reliability.md, "Lifecycle
// rounds"): AppFirst and RebuildKill at each power loss, FullDisk at power
// losses and shmqd kills, Standby on a clock of its own.

struct GroupPlan {
  std::string name;
  int consumers = 1;
  std::uint32_t prefetch = 1;
  std::uint32_t max_batch = 1;  // a consumer takes up to this many before acking
  std::uint32_t work_us = 0;    // mean time a consumer holds a batch: a slow consumer
  // An exclusive group (ConsumerOptions::exclusive): one member reads, the
  // others stand by; the KillActive and StopActive faults aim at the reader.
  bool exclusive = false;
};

// A policy round (issue 18): the queue has a DeliveryPolicy and a dead-letter
// queue (drained by the driver as the round goes, into dead-letters.log), and
// its consumers sometimes nack (the message comes again), reject (it goes to
// the dead-letter queue), always nack "poison" sequences (past max_deliveries
// they are dead-lettered), and, with an ack timeout, sometimes stall past it
// holding a batch (their late acks get LeaseExpired). The verifier checks that
// every message is, in every group, acked once or dead-lettered once.
struct PolicyPlan {
  bool on = false;
  std::uint32_t nack_per_mille = 0;    // of deliveries
  std::uint32_t reject_per_mille = 0;  // of deliveries
  std::uint64_t poison_every = 0;      // > 0: sequences divisible by it are always nacked (needs max_deliveries)
  std::uint32_t stall_per_mille = 0;   // of batches: held past the ack timeout before they are settled
  std::uint32_t stall_ms = 0;
  std::uint64_t dead_letter_capacity = 0;
};

struct RoundPlan {
  RoundKind kind = RoundKind::InMemory;
  Lifecycle lifecycle = Lifecycle::None;  // durable rounds only
  int number = 0;
  std::uint64_t seed = 0;  // everything below was drawn from it
  std::string ns, queue, log_dir;
  std::string data_dir;                // shmqd's --data-dir: the journal survives power losses there
  QueueOptions queue_options;
  std::vector<std::string> producers;  // names
  // A names round (names_round()): the queue's producer table is small
  // (queue_options.max_producers 2 to 4, more than the regular producers
  // above), and short-lived "transient" producers, one at a time, attach under
  // names from this pool (more names than the table holds), send 1 to
  // transient_messages past their last sequence and detach. In-memory rounds
  // recycle detached entries (docs/reliability.md); durable ones refuse the
  // names beyond the table (TableFull).
  std::vector<std::string> transients;
  std::uint64_t transient_messages = 0;
  std::uint64_t messages = 0;          // per producer
  std::uint32_t max_payload = 0;
  std::uint32_t producer_gap_us = 0;   // mean pause between a producer's bursts
  std::vector<GroupPlan> groups;
  int fault_gap_ms = 0;                // mean time between faults
  int power_loss_gap_ms = 0;           // durable rounds: mean time between power losses
  PolicyPlan policy;                   // queue_options.policy holds the DeliveryPolicy itself
  bool daemon_faults = true;           // false in the soak: its footprint is measured (no power loss either)
  int stall_seconds = 30;

  [[nodiscard]] bool durable() const { return kind == RoundKind::Durable; }
  [[nodiscard]] bool names_round() const { return !transients.empty(); }
  [[nodiscard]] bool policy_round() const { return policy.on; }
  // A policy round's dead-letter queue (queue_options.policy.dead_letter, set when `queue` is).
  [[nodiscard]] std::string dead_letter_queue() const { return queue + "-dl"; }
  [[nodiscard]] QueueOptions dead_letter_options() const;
  [[nodiscard]] std::string describe() const;
  // Options of every shmqd of the round beyond namespace and data directory.
  [[nodiscard]] std::vector<std::string> daemon_args() const;
  // FullDisk: the size of the tmpfs the data directory is, room for the
  // round's journal (every record twice over, and its checkpoints) and more.
  [[nodiscard]] std::uint64_t data_disk_bytes() const;
};

// Draws a round's shape from its seed. Whether it is durable follows from the
// options and its number alone: every round with --durable or --lifecycle,
// else every even-numbered one. A lifecycle round: every round with
// --lifecycle (its fault in turn by number, or --lifecycle-fault's), else
// every fourth one (its fault drawn from the seed). A round that is not a
// lifecycle round is a names round with --names, else one time in two (drawn
// from the seed).
RoundPlan plan_round(const TortureOptions& options, int number, std::uint64_t seed);

struct RoundResult {
  Tally tally;
  long longest_fencing_ms = 0;  // Standby rounds: from the SIGSTOP to the stopped primary's death
  std::vector<std::string> violations;
  [[nodiscard]] bool passed() const { return violations.empty(); }
};

// Runs the round against `daemon`, which the caller has started and stops.
// A Standby round starts its standby itself (and stops it before returning);
// after a takeover `daemon` is the process that serves, whichever it started as.
RoundResult run_round(const RoundPlan& plan, DaemonProcess& daemon);

inline constexpr int kStandbyDeadlineMs = 300;

}  // namespace shmq::torture
