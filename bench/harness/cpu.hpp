// CPU pinning and the cache-line probe: how long a cache line takes to
// bounce between two CPUs right now (the host moves vCPUs, so this changes).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace bench {

// Pins the calling thread to `cpu`; a negative cpu leaves it free.
void pin_to(int cpu);

// Median round trip, in ns, of a cache line bounced between two threads
// pinned to the first two of `cpus`; nothing unless they are two distinct CPUs
// (none negative).
[[nodiscard]] std::optional<double> probe_cache_line(const std::vector<int>& cpus, int round_trips = 200000);

}  // namespace bench
