// `shmq-bench latency`: one-way latency at a fixed message rate. Most systems
// are not saturated: between messages the consumer may sleep, and what a
// message costs then is mostly the wake-up. Every row of one run shares the
// rate, the payload and the CPUs: shmq with a polling consumer (the floor any
// waiting can reach), shmq with its default wait (spin a while, then the
// futex), shmq on the futex at once, the bare ring on a futex and a Unix socket.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace bench {

struct LatencyOptions {
  std::vector<double> rates{1'000, 10'000, 100'000};  // messages a second
  double seconds = 2;                                  // per row, after the warm-up
  std::size_t payload = 64;
  std::vector<int> cpus{0, 1};
  std::chrono::seconds timeout{60};  // per row
  bool json = false;
};

// Returns the exit status: 0, or 1 when a row failed.
int run_latency(const LatencyOptions& options);

}  // namespace bench
