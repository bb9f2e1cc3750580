// The bridge's own counters, per route, served on --metrics in the Prometheus
// text format. Relaxed atomics: each is a monotonic count (or a gauge) read
// on its own by a scrape; no other memory is published through them.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace shmq::bridge {

struct Counters {
  std::string route;      // "out:<queue>:<subject>" or "in:<stream>:<queue>"
  std::string direction;  // "out" or "in"
  std::atomic<std::uint64_t> forwarded{0};   // delivered to the other side and confirmed there
  std::atomic<std::uint64_t> duplicates{0};  // the other side already had it (JetStream's dedup, shmq's Duplicate)
  std::atomic<std::uint64_t> redelivered{0};  // out: shmq redelivered it; in: re-read from the stream after a reset
  std::atomic<std::uint64_t> republished{0};  // out: published again after a failed or unanswered publish
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::int64_t> in_flight{0};     // out: published, not yet acknowledged by JetStream
  std::atomic<std::int64_t> connected{0};     // 1 while connected to nats-server
};

// Every route's counters, for the metrics page. Routes register at start and
// live until exit.
class CounterRegistry {
 public:
  Counters& add(std::string route, std::string direction);
  [[nodiscard]] std::string prometheus_text() const;

 private:
  mutable std::mutex mutex_;
  std::deque<Counters> routes_;  // a deque: references stay valid as it grows
};

}  // namespace shmq::bridge
