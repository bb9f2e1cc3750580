// Percentiles from every sample (sorted; nearest rank), never a mean.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <vector>

namespace bench {

struct Percentiles {
  std::uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, p9999 = 0, max = 0;
  std::size_t count = 0;
};

// Sorts `samples` in place.
[[nodiscard]] Percentiles percentiles(std::vector<std::uint64_t>& samples);
// The value at percentile p (0..100) of sorted samples.
[[nodiscard]] std::uint64_t percentile(std::span<const std::uint64_t> sorted, double p);

// Each sample divided by two (one way from a round trip).
[[nodiscard]] Percentiles halved(const Percentiles& p);

[[nodiscard]] nlohmann::json to_json(const Percentiles& p);

// The percentiles plotted: 50 .. 99.99 and the max (100).
inline constexpr double kPlotPercentiles[] = {50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100};

}  // namespace bench
