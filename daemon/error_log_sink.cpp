#include "error_log_sink.hpp"

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string_view>

namespace shmq::daemon {
namespace {

// A message seen again is written at most this often (a new one at once):
// a warning repeated in a loop costs no rewrite of the file each time.
constexpr auto kRepeatWriteInterval = std::chrono::seconds(1);

std::string_view level_name(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return "critical";
    case spdlog::level::err: return "error";
    default: return "warning";
  }
}

std::vector<stats::ErrorEntry> entries_in(const std::filesystem::path& file) {
  try {
    return stats::read_error_log(file);
  } catch (const std::exception& e) {
    // Not through the logger: it may be what is being set up.
    std::fprintf(stderr, "shmqd: starting %s afresh: %s\n", file.c_str(), e.what());
    return {};
  }
}

}  // namespace

std::string iso8601(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch - seconds).count();
  const time_t t = seconds.count();
  struct tm local {};
  ::localtime_r(&t, &local);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &local);
  const long offset = local.tm_gmtoff / 60;  // minutes east of UTC
  const long magnitude = std::labs(offset);
  char text[64];
  std::snprintf(text, sizeof text, "%s.%06lld%c%02ld:%02ld", date, static_cast<long long>(micros),
                offset < 0 ? '-' : '+', magnitude / 60, magnitude % 60);
  return text;
}

ErrorLogSink::ErrorLogSink(std::filesystem::path file) : file_(std::move(file)), log_(entries_in(file_)) {
  set_level(spdlog::level::warn);
}

ErrorLogSink::~ErrorLogSink() {
  std::lock_guard lock(mutex_);
  if (pending_) write();
}

void ErrorLogSink::write_pending() {
  std::lock_guard lock(mutex_);
  if (pending_ && std::chrono::steady_clock::now() - last_write_ >= kRepeatWriteInterval) write();
}

void ErrorLogSink::sink_it_(const spdlog::details::log_msg& msg) {
  const bool added = log_.record(level_name(msg.level), std::string_view(msg.payload.data(), msg.payload.size()),
                                 iso8601(msg.time));
  pending_ = true;
  if (added || std::chrono::steady_clock::now() - last_write_ >= kRepeatWriteInterval) write();
}

void ErrorLogSink::write() {
  last_write_ = std::chrono::steady_clock::now();
  pending_ = false;
  const int error = stats::write_error_log(file_, log_.entries());
  // Said on stderr, not logged: this runs inside the logger.
  if (error != 0 && error != write_error_) {
    std::fprintf(stderr, "shmqd: cannot write %s: %s\n", file_.c_str(), std::strerror(error));
  }
  write_error_ = error;
}

}  // namespace shmq::daemon
