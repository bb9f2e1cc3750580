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

// EXTENSION POINT: durable rounds. A `Durable` kind will create the queue with
// QueueOptions::durable, have producers send with durable confirms, and add a
// `PowerLoss` fault (see Fault in round.cpp): kill -9 every worker and shmqd,
// remove the /dev/shm segment, restart shmqd (which rebuilds the queue from
// its journal), restart the workers. The checks stay the same; confirmed then
// means journal-confirmed. Not implemented until the daemon writes the journal.
enum class RoundKind { InMemory };

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
  QueueOptions queue_options;
  std::vector<std::string> producers;  // names
  std::uint64_t messages = 0;          // per producer
  std::uint32_t max_payload = 0;
  std::uint32_t producer_gap_us = 0;   // mean pause between a producer's bursts
  std::vector<GroupPlan> groups;
  int fault_gap_ms = 0;                // mean time between faults
  bool daemon_faults = true;           // false in the soak: its footprint is measured
  int stall_seconds = 30;

  [[nodiscard]] std::string describe() const;
};

// Draws a round's shape from its seed.
RoundPlan plan_round(const TortureOptions& options, int number, std::uint64_t seed);

struct RoundResult {
  Tally tally;
  std::vector<std::string> violations;
  [[nodiscard]] bool passed() const { return violations.empty(); }
};

// Runs the round against `daemon`, which the caller has started and stops.
RoundResult run_round(const RoundPlan& plan, DaemonProcess& daemon);

}  // namespace shmq::torture
