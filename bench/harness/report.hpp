// Printing results: human tables and JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "stats.hpp"

namespace bench {

struct Probe {
  std::optional<double> before_ns, after_ns;  // nothing when not pinned to two CPUs
};

[[nodiscard]] nlohmann::json to_json(const Probe& p);
[[nodiscard]] std::string probe_line(const Probe& p);

// "rtt ns" and "one-way ns" rows under a percentile header.
[[nodiscard]] std::string latency_table(const Percentiles& rtt);

[[nodiscard]] std::string cpus_text(const std::vector<int>& cpus);

}  // namespace bench
