// Policy rounds: the driver's reader of the round's dead-letter queue. It
// reads the dead letters as the round goes (so the queue, which no worker
// reads, never fills up) and at its end, and logs each one to
// dead-letters.log, whose lines the verifier reads:
//   M <origin queue> <origin group> <origin producer|-> <origin sequence> <origin position> <reason> <deliveries>
//     <payload name|?> <payload process> <mover name> <sequence> <timestamp> <origin timestamp> <redelivered 0|1>
// (<mover name> and <sequence>: the dead-letter queue's producer and sequence,
// which tell a copy from a redelivery of the same copy; <timestamp>: when it
// was moved, CLOCK_REALTIME ns). A line is logged before its message is acked.
#pragma once

#include <optional>
#include <string>

#include "shmq/consumer.hpp"
#include "shmq/queue.hpp"
#include "worker_log.hpp"

namespace shmq::torture {

class DeadLetterReader {
 public:
  DeadLetterReader(std::string ns, std::string queue, const std::string& log_path);

  // Opens the dead-letter queue and joins its group "check" (which exists
  // from the round's start, so that it holds every dead letter). False while
  // it is not there (not rebuilt yet after a power loss).
  bool open();
  // Before a power loss: the reader goes with everything else.
  void close();
  // Reads and logs up to `most` dead letters; opens the queue first if needed.
  // Returns an error text for what it could not read, empty otherwise.
  std::string poll(int most);

 private:
  std::string ns_, queue_;
  WorkerLog log_;
  std::optional<Queue> queue_handle_;
  std::optional<Consumer> consumer_;
};

// The dead-letter queue's group the driver reads it in.
inline constexpr const char* kDeadLetterGroup = "check";

}  // namespace shmq::torture
