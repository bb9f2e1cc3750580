// `shmqd --metrics HOST:PORT`: the namespace's queues in the Prometheus text
// format on GET /metrics (shmq::stats renders them, as `shmq-stat
// --prometheus` does). It answers from a thread of its own, one connection at
// a time, so a slow or stuck scraper never delays a repair.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "unique_fd.hpp"

namespace shmq::daemon {

class MetricsServer {
 public:
  // Listens on `address` ("HOST:PORT", "[V6]:PORT") and serves what
  // `render` returns (Prometheus text; an exception is a 500): shmqd's
  // namespace and health, shmq-bridge's counters. `render` runs on the
  // server's thread. Throws std::runtime_error.
  MetricsServer(const std::string& address, std::function<std::string()> render);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  ~MetricsServer();  // stops listening and joins the thread

 private:
  void serve();
  void answer(int fd) const;

  UniqueFd listen_;
  std::function<std::string()> render_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace shmq::daemon
