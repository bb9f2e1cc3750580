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

struct GroupPlan {
  std::string name;
  int consumers = 1;
  std::uint32_t prefetch = 1;
  std::uint32_t max_batch = 1;  // a consumer takes up to this many before acking
  std::uint32_t work_us = 0;    // mean time a consumer holds a batch: a slow consumer
};

struct RoundPlan {
  RoundKind kind = RoundKind::InMemory;
  int number = 0;
  std::uint64_t seed = 0;  // everything below was drawn from it
  std::string ns, queue, log_dir;
  std::string data_dir;                // shmqd's --data-dir: the journal survives power losses there
  QueueOptions queue_options;
  std::vector<std::string> producers;  // names
  std::uint64_t messages = 0;          // per producer
  std::uint32_t max_payload = 0;
  std::uint32_t producer_gap_us = 0;   // mean pause between a producer's bursts
  std::vector<GroupPlan> groups;
  int fault_gap_ms = 0;                // mean time between faults
  int power_loss_gap_ms = 0;           // durable rounds: mean time between power losses
  bool daemon_faults = true;           // false in the soak: its footprint is measured (no power loss either)
  int stall_seconds = 30;

  [[nodiscard]] bool durable() const { return kind == RoundKind::Durable; }
  [[nodiscard]] std::string describe() const;
};

// Draws a round's shape from its seed. Its kind follows from the options and
// its number alone: every round with --durable, else every even-numbered one.
RoundPlan plan_round(const TortureOptions& options, int number, std::uint64_t seed);

struct RoundResult {
  Tally tally;
  std::vector<std::string> violations;
  [[nodiscard]] bool passed() const { return violations.empty(); }
};

// Runs the round against `daemon`, which the caller has started and stops.
RoundResult run_round(const RoundPlan& plan, DaemonProcess& daemon);

}  // namespace shmq::torture
