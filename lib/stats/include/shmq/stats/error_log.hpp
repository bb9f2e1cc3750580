// shmqd's record of its recent warnings and errors (docs/operations.md,
// "Errors over time"): <data dir>/errors.log, written by shmqd, read by
// `shmq-stat --errors` (and by Python's shmq.daemon_errors(), from the same
// documented format), so that a problem is visible without the logs. Like
// Aeron's ErrorStat: identical messages are one entry with a count and the
// times of their first and last occurrence.
//
// The file: JSON lines, one entry a line, the entry seen longest ago first:
//   {"first":"2026-12-02T03:57:03.123456+00:00","last":"...","level":"error","count":2,"message":"..."}
// Rewritten whole on a change (a temporary file, then rename), so a reader,
// or shmqd killed half-way, never sees a half-written file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace shmq::stats {

// The entries kept: the most recently seen distinct messages.
inline constexpr std::size_t kErrorLogEntries = 100;
// A longer message is cut to this many bytes (so the file stays under
// about 130 KiB).
inline constexpr std::size_t kErrorMessageBytes = 1024;

struct ErrorEntry {
  std::string first;    // when first seen: ISO 8601, microseconds and UTC offset
  std::string last;     // when last seen
  std::string level;    // "warning", "error" or "critical"
  std::string message;  // as logged, without time, level or program
  std::uint64_t count = 1;
};

// <data_dir>/errors.log.
[[nodiscard]] std::filesystem::path error_log_path(const std::filesystem::path& data_dir);

// The entries of `file`, the entry seen longest ago first. A missing file
// has none; a line that is not an entry (a file cut by a power loss, or
// edited by hand) is skipped. Throws std::system_error when the file exists
// but cannot be read (permissions).
[[nodiscard]] std::vector<ErrorEntry> read_error_log(const std::filesystem::path& file);

// Replaces `file` with `entries`: written to <file>.tmp, then renamed over
// it. Returns the errno of the failure, 0 on success (never throws: shmqd's
// logger calls it).
int write_error_log(const std::filesystem::path& file, const std::vector<ErrorEntry>& entries) noexcept;

// The entries in memory: record() counts a message seen again, or adds it
// and forgets the entry seen longest ago beyond `capacity`.
class ErrorLog {
 public:
  explicit ErrorLog(std::vector<ErrorEntry> entries = {}, std::size_t capacity = kErrorLogEntries);

  // One occurrence of (level, message) at `time` (an ISO 8601 string).
  // Returns true when it made a new entry, false when it counted an old one.
  bool record(std::string_view level, std::string_view message, const std::string& time);

  [[nodiscard]] const std::vector<ErrorEntry>& entries() const { return entries_; }

 private:
  std::vector<ErrorEntry> entries_;  // the entry seen longest ago first
  std::size_t capacity_;
};

}  // namespace shmq::stats
