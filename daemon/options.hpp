// shmqd's command line, and where its data directory is.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace shmq::daemon {

struct Options {
  std::string ns;                    // empty: $SHMQ_NAMESPACE, else "default"
  std::filesystem::path data_dir;    // empty: default_data_dir(ns)
  bool foreground = false;           // accepted; shmqd never forks itself
  bool standby = false;              // wait for the lock instead of exiting
  // A standby fences a serving shmqd whose heartbeat stopped this long.
  std::uint32_t standby_deadline_ms = 1000;
  std::string log_level = "info";
  std::string log_file;
  std::string metrics;  // HOST:PORT to serve /metrics on; empty: none
  // Durable queues' journals (<data-dir>/journal/<queue>/).
  std::uint64_t journal_segment_mib = 64;
  std::uint64_t retention_mib = 0;      // 0: no size limit
  std::uint64_t retention_seconds = 0;  // 0: no age limit
  bool salvage = false;
  // --group: the data directory and journals become readable (never
  // writable) by this group's members, the queues' users (kNoGroup: this
  // user's alone). docs/security.md.
  gid_t group = static_cast<gid_t>(-1);
};

// Checks of option values, made while the command line is parsed, so that a
// bad value stops shmqd (exit 2) before anything starts. Each returns "" when
// `text` is fine, else why it is not.
// A whole number from 0 to `max` ("-5" is refused, not taken as "no limit").
[[nodiscard]] std::string check_whole_number(const std::string& text, std::uint64_t max);
// --metrics: HOST:PORT, [V6]:PORT or :PORT (every interface), PORT 1..65535.
[[nodiscard]] std::string check_metrics_address(const std::string& text);

// Creates `dir` (mode 0700) if missing, and refuses one that is not a
// directory, belongs to another user, or that group or others may write (they
// could replace a journal). Throws std::runtime_error saying why.
//
// With a group (not -1): the directories it creates above `dir` are 0755, so
// that the group can reach it, and `dir` with everything in it that this user
// owns gets that group, directories 02750 (setgid: what shmqd creates later
// inherits the group) and files g+r. Throws std::runtime_error when this user
// may not give that group (neither root nor a member).
void prepare_data_dir(const std::filesystem::path& dir, gid_t group = static_cast<gid_t>(-1));

// --group's value: a group name (the group database) or a numeric gid.
// Throws std::runtime_error naming an unknown one. (shmq create --group reads
// it the same way, in tools/parse.cpp: the tools and shmqd share no code.)
[[nodiscard]] gid_t resolve_group(const std::string& text);

// The umask shmqd runs with: 077, or 027 when its files are shared with a
// group (a journal file 0640, a directory 0750, in the group by setgid).
[[nodiscard]] mode_t data_umask(gid_t group) noexcept;

}  // namespace shmq::daemon
