// shmq-stat --check: the health of a namespace's queues as problem lines,
// for cron, systemd, Kubernetes probes and Nagios-style checks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shmq::tools {

struct CheckBounds {
  std::optional<std::uint64_t> max_lag_messages;  // --max-lag N
  std::optional<std::uint64_t> max_lag_bytes;     // --max-lag SIZE (with a unit)
  std::optional<double> max_lag_seconds;          // --max-lag-seconds S
  bool require_daemon = false;                    // --require-daemon
};

// --max-lag's value: a plain number counts messages, a size with a unit
// (64K, 64MiB, 1G, 4096B) counts bytes, as parse_size() reads it.
void parse_max_lag(const std::string& text, CheckBounds& bounds);

// One line per problem, each starting with the queue's name; empty when
// healthy. `queues` empty: every queue of namespace `ns`; otherwise only
// those (a missing one is a problem).
[[nodiscard]] std::vector<std::string> check_queues(const std::string& ns,
                                                    const std::vector<std::string>& queues,
                                                    const CheckBounds& bounds);

}  // namespace shmq::tools
