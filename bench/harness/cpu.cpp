#include "cpu.hpp"

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "transport.hpp"

namespace bench {

void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(static_cast<unsigned>(cpu), &set);
  check_errno(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity");
}

std::optional<double> probe_cache_line(const std::vector<int>& cpus, int round_trips) {
  if (cpus.size() < 2 || cpus[0] == cpus[1] || cpus[0] < 0 || cpus[1] < 0) return std::nullopt;
  const int cpu_a = cpus[0], cpu_b = cpus[1];
  cpu_set_t saved;
  check_errno(sched_getaffinity(0, sizeof saved, &saved) == 0, "sched_getaffinity");
  constexpr int kBatches = 20;
  alignas(64) std::atomic<std::uint64_t> line{0};
  std::jthread echo([&] {
    pin_to(cpu_b);
    for (std::uint64_t v = 1; v < 2ull * static_cast<std::uint64_t>(round_trips); v += 2) {
      while (line.load(std::memory_order_acquire) != v) cpu_relax();
      line.store(v + 1, std::memory_order_release);
    }
  });
  pin_to(cpu_a);
  std::vector<double> batches;
  const int per_batch = round_trips / kBatches;
  std::uint64_t v = 0;
  for (int b = 0; b < kBatches; ++b) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < per_batch; ++i, v += 2) {
      line.store(v + 1, std::memory_order_release);
      while (line.load(std::memory_order_acquire) != v + 2) cpu_relax();
    }
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    batches.push_back(took.count() / per_batch);
  }
  // The echo thread expects round_trips in all: finish the remainder.
  for (; v < 2ull * static_cast<std::uint64_t>(round_trips); v += 2) {
    line.store(v + 1, std::memory_order_release);
    while (line.load(std::memory_order_acquire) != v + 2) cpu_relax();
  }
  echo.join();
  check_errno(sched_setaffinity(0, sizeof saved, &saved) == 0, "sched_setaffinity");
  std::ranges::nth_element(batches, batches.begin() + kBatches / 2);
  return batches[kBatches / 2];
}

}  // namespace bench
