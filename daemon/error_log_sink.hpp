// shmqd's warnings and errors kept in <data dir>/errors.log (the format:
// shmq/stats/error_log.hpp), for `shmq-stat --errors`: a log sink that sees
// every line at warning or above the logger lets through.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>

#include <spdlog/sinks/base_sink.h>

#include "shmq/stats/error_log.hpp"

namespace shmq::daemon {

class ErrorLogSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Continues the entries `file` holds (a restarted shmqd counts on), or
  // starts empty when it is missing or unreadable.
  explicit ErrorLogSink(std::filesystem::path file);
  ~ErrorLogSink() override;  // writes what is pending
  ErrorLogSink(const ErrorLogSink&) = delete;
  ErrorLogSink& operator=(const ErrorLogSink&) = delete;

  // Writes the file if a repeat was counted but not yet written (the event
  // loop calls it every turn). Cheap when nothing is pending.
  void write_pending();

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}  // written in sink_it_ and write_pending

 private:
  void write();  // under mutex_

  std::filesystem::path file_;
  stats::ErrorLog log_;
  std::chrono::steady_clock::time_point last_write_{};
  bool pending_ = false;
  int write_error_ = 0;  // the last write's errno, said once on stderr
};

// "2026-12-02T03:57:03.123456+00:00": local time with microseconds and the
// UTC offset, as the log lines' (ISO 8601).
[[nodiscard]] std::string iso8601(std::chrono::system_clock::time_point time);

}  // namespace shmq::daemon
