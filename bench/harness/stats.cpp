#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace bench {

std::uint64_t percentile(std::span<const std::uint64_t> sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

Percentiles percentiles(std::vector<std::uint64_t>& samples) {
  std::ranges::sort(samples);
  return {percentile(samples, 50),
          percentile(samples, 90),
          percentile(samples, 99),
          percentile(samples, 99.9),
          percentile(samples, 99.99),
          percentile(samples, 100),
          samples.size()};
}

Percentiles halved(const Percentiles& p) {
  return {p.p50 / 2, p.p90 / 2, p.p99 / 2, p.p999 / 2, p.p9999 / 2, p.max / 2, p.count};
}

nlohmann::json to_json(const Percentiles& p) {
  return {{"p50", p.p50},     {"p90", p.p90}, {"p99", p.p99},      {"p999", p.p999},
          {"p9999", p.p9999}, {"max", p.max}, {"samples", p.count}};
}

}  // namespace bench
