// The two measurements, over any transport: ping-pong round trips and
// one-way verified streaming.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "transport.hpp"

namespace bench {

struct RunOptions {
  std::string transport = "shmq";
  ChannelConfig channel;
  std::vector<int> cpus{0, 1};
  std::chrono::seconds timeout{120};
};

struct PingPongOptions : RunOptions {
  std::size_t iterations = 100'000;
  std::size_t warmup = 10'000;
};

// Every round trip, in ns, in the order measured.
std::vector<std::uint64_t> run_pingpong(const PingPongOptions& options);

struct ThroughputOptions : RunOptions {
  std::size_t messages = 1'000'000;  // in all, shared out among the producers
  int producers = 1;
  int consumers = 1;  // per group
};

struct ThroughputResult {
  std::size_t messages = 0;               // sent; every group received each
  double seconds = 0;                     // from the start signal to the last consumer's end
  std::vector<std::uint64_t> confirm_ns;  // durable only
  [[nodiscard]] double msgs_per_s() const { return static_cast<double>(messages) / seconds; }
};

ThroughputResult run_throughput(const ThroughputOptions& options);

// A run whose sides failed (a mismatch, an error, a timeout): exit status 1.
struct RunFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace bench
