#include "report.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace bench {

nlohmann::json to_json(const Probe& p) {
  if (!p.before_ns || !p.after_ns) return nullptr;
  return {{"before", *p.before_ns}, {"after", *p.after_ns}};
}

std::string probe_line(const Probe& p) {
  if (!p.before_ns || !p.after_ns) return "probe: not pinned to two CPUs\n";
  return fmt::format(
      "probe (cache line round trip between the pinned CPUs): before {:.0f} ns, after {:.0f} ns\n",
      *p.before_ns, *p.after_ns);
}

std::string latency_table(const Percentiles& rtt) {
  const auto row = [](std::string_view name, const Percentiles& p) {
    return fmt::format("{:<11}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}\n", name, p.p50, p.p90, p.p99, p.p999, p.p9999,
                       p.max);
  };
  return fmt::format("{:<11}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}\n", "", "p50", "p90", "p99", "p99.9", "p99.99",
                     "max") +
         row("rtt ns", rtt) + row("one-way ns", halved(rtt));
}

std::string cpus_text(const std::vector<int>& cpus) {
  return cpus.empty() ? "unpinned" : fmt::format("{}", fmt::join(cpus, ","));
}

}  // namespace bench
