// The driver's command line (main.cpp parses it with CLI11).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shmq::torture {

// The lifecycle faults of docs/reliability.md, one round kind each (all durable).
enum class Lifecycle {
  None,         // a plain round
  AppFirst,     // after a power loss the application opens (open_or_create) the queue before shmqd starts
  RebuildKill,  // after a power loss shmqd is killed mid-rebuild, once or more, then started for good
  FullDisk,     // the data directory a small tmpfs, full while shmqd restarts; then freed
  Standby,      // a standby shmqd; the primary is SIGSTOPped and must be fenced (SIGKILL) by it
};

struct TortureOptions {
  std::uint64_t seed = 0;           // 0: draw one (printed, so the run can be replayed)
  int rounds = 3;
  std::optional<int> only_round;    // replay one round of the seed
  double minutes = 0;               // > 0: soak for this long (rounds ignored)
  std::uint64_t messages = 1000;    // per producer per round
  int producer_ms = 2000;           // about how long producers take to send them
  int stall_seconds = 30;           // bound of every wait for progress
  bool keep_logs = false;
  std::string log_root = "/tmp";
  bool durable = false;             // every round durable (default: every even-numbered round)
  bool lifecycle = false;           // every round a lifecycle round (default: every fourth one)
  std::optional<Lifecycle> lifecycle_fault;  // only this lifecycle fault (implies lifecycle)
  bool names = false;               // every round that is no lifecycle round a names round (default: one in two)
  bool policy = false;              // every round that is no lifecycle round a policy round (default: rounds 2 and 3 of every 4)
};

}  // namespace shmq::torture
