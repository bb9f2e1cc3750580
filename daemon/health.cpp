#include "health.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace shmq::daemon {

// Relaxed throughout: independent statistics, synchronising nothing (health.hpp).
void DurationHistogram::observe(std::chrono::nanoseconds duration) noexcept {
  const double seconds = std::chrono::duration<double>(duration).count();
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    if (seconds <= kBounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(duration.count()), std::memory_order_relaxed);
}

std::string DurationHistogram::render(std::string_view name, std::string_view labels) const {
  std::string out;
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out += fmt::format("{}_bucket{{{},le=\"{}\"}} {}\n", name, labels, kBounds[i], cumulative);
  }
  // +Inf is the count itself, so the buckets never exceed it.
  const std::uint64_t count = std::max(count_.load(std::memory_order_relaxed), cumulative);
  out += fmt::format("{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels, count);
  const double sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  out += fmt::format("{}_sum{{{}}} {}\n", name, labels, sum_seconds);
  out += fmt::format("{}_count{{{}}} {}\n", name, labels, count);
  return out;
}

DaemonHealth& health() noexcept {
  static DaemonHealth instance;
  return instance;
}

std::string render_health(std::string_view ns) {
  std::string labels = "namespace=\"";
  for (const char c : ns) {  // a namespace is [A-Za-z0-9._-]: nothing to escape, but be safe
    if (c == '\\' || c == '"') labels += '\\';
    labels += c;
  }
  labels += '"';
  const DaemonHealth& h = health();
  std::string out;
  const auto histogram = [&](std::string_view name, std::string_view help, const DurationHistogram& hist) {
    out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
    out += hist.render(name, labels);
  };
  histogram("shmq_daemon_repair_duration_seconds",
            "Time shmqd took to repair a queue after dead clients (passes that freed something)", h.repair);
  histogram("shmq_daemon_journal_sync_duration_seconds", "Time one group commit's fdatasync of a journal took",
            h.journal_sync);
  histogram("shmq_daemon_rebuild_duration_seconds", "Time rebuilding a durable queue from its journal took",
            h.rebuild);
  out += fmt::format(
      "# HELP shmq_daemon_journal_written_bytes_total Bytes shmqd wrote to journal segment files\n"
      "# TYPE shmq_daemon_journal_written_bytes_total counter\n"
      "shmq_daemon_journal_written_bytes_total{{{}}} {}\n",
      labels, h.journal_written_bytes.load(std::memory_order_relaxed));
  out += fmt::format(
      "# HELP shmq_daemon_leases_expired_total Messages shmqd took back from members that held them past the "
      "queue's ack timeout\n"
      "# TYPE shmq_daemon_leases_expired_total counter\n"
      "shmq_daemon_leases_expired_total{{{}}} {}\n",
      labels, h.leases_expired.load(std::memory_order_relaxed));
  return out;
}

}  // namespace shmq::daemon
