// shmqd's own health, for /metrics (docs/metrics.md, "shmqd's health"): how
// long repairs, journal syncs and rebuilds take, and how many bytes the
// journals got. Process-wide, written by the event loop and the journal
// threads, read by the metrics thread: each number is a relaxed atomic of its
// own (a scrape may see a histogram's count one ahead of its sum; Prometheus
// tolerates that, and no decision is ever made on these numbers).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace shmq::daemon {

// A Prometheus histogram of durations with fixed buckets (seconds).
class DurationHistogram {
 public:
  static constexpr std::array<double, 12> kBounds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01,   0.025,   0.05,   0.1,   1.0,    10.0};
  void observe(std::chrono::nanoseconds duration) noexcept;
  // The `_bucket`, `_sum` and `_count` lines of family `name`, labels `labels` ("namespace=\"x\"").
  [[nodiscard]] std::string render(std::string_view name, std::string_view labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size()> buckets_{};  // not cumulative: each its own range
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

struct DaemonHealth {
  DurationHistogram repair;        // a repair pass that freed something (recover_dead_clients)
  DurationHistogram journal_sync;  // one group commit's fdatasync
  DurationHistogram rebuild;       // one durable queue rebuilt from its journal
  std::atomic<std::uint64_t> journal_written_bytes{0};
  std::atomic<std::uint64_t> leases_expired{0};  // records taken back past an ack timeout (watcher_leases.cpp)
};

// The one instance of this process.
[[nodiscard]] DaemonHealth& health() noexcept;

// Times a scope into `histogram`.
class ScopedTimer {
 public:
  explicit ScopedTimer(DurationHistogram& histogram) noexcept
      : histogram_(histogram), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() { histogram_.observe(std::chrono::steady_clock::now() - start_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  DurationHistogram& histogram_;
  std::chrono::steady_clock::time_point start_;
};

// The families above in the Prometheus text format, labelled namespace=`ns`.
[[nodiscard]] std::string render_health(std::string_view ns);

}  // namespace shmq::daemon
