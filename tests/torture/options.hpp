// The driver's command line (main.cpp parses it with CLI11).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace shmq::torture {

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
};

}  // namespace shmq::torture
