// `shmq-bench compare`: ping-pong and throughput of shmq and every baseline,
// interleaved in one run, in both waiting modes.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runs.hpp"

namespace bench {

struct CompareOptions {
  std::size_t payload = 64;
  std::size_t ring_bytes = 1 << 20;
  std::size_t spin_iterations = 200'000;  // round trips per transport, over all rounds
  std::size_t block_iterations = 20'000;
  std::size_t warmup = 5'000;  // per transport and round
  std::size_t spin_messages = 2'000'000;
  std::size_t block_messages = 200'000;
  int rounds = 4;                       // rounds, each visiting every transport in turn
  std::vector<std::string> transports;  // empty: all
  std::vector<std::string> waits{"spin", "block"};
  std::vector<int> cpus{0, 1};
  std::chrono::seconds timeout{60};  // per run
  bool json = false;
  std::string dat;  // when set: gnuplot data at <dat>-<wait>.dat
};

// Returns the exit status: 0, or 1 when any run failed.
int run_compare(const CompareOptions& options);

}  // namespace bench
