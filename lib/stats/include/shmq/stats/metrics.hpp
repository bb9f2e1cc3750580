// shmq::stats: snapshots of the queues in a namespace, and their rendering in
// the Prometheus text exposition format. shmq-stat prints it; shmqd serves it
// on /metrics. Built on libshmq's public API only (Queue::info); reading never
// changes a segment: queues are opened read-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmq/queue.hpp"

namespace shmq::stats {

// One queue as read: its info, or why it could not be read.
struct QueueSnapshot {
  std::string name;
  std::optional<QueueInfo> info;
  std::string error;  // set when info is empty
};

// How far `position` (e.g. the journal's synced position) is behind `ahead`.
[[nodiscard]] inline std::uint64_t bytes_behind(std::uint64_t ahead, std::uint64_t position) {
  return ahead > position ? ahead - position : 0;
}

// Reads one queue of namespace `ns` (empty: current_namespace()); never throws
// for a segment it cannot read, but reports it in `error`.
[[nodiscard]] QueueSnapshot snapshot_queue(std::string_view name, std::string_view ns = {});

// Reads every queue of the namespace, in name order.
[[nodiscard]] std::vector<QueueSnapshot> snapshot_namespace(std::string_view ns = {});

// The Prometheus text format (version 0.0.4): gauges and counters named
// shmq_* (docs/metrics.md), every series labelled with the namespace `ns`
// (empty: current_namespace()), and queue, group and producer where they
// apply; shmq_build_info{version} 1 first.
[[nodiscard]] std::string render_prometheus(const std::vector<QueueSnapshot>& queues, std::string_view ns = {});

}  // namespace shmq::stats
