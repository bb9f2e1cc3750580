// The record of a namespace's shmqd: the file /dev/shm/shmqd.<ns>.
//
// It is three things at once:
//   - the instance lock: the serving shmqd holds an exclusive flock on it, so
//     there is one per namespace whatever data directory each was given (the
//     kernel drops the lock when its holder dies, however it dies);
//   - who serves: the holder writes its pid, start time, pid namespace and
//     data directory into it, so a second shmqd can name the first, and
//     clients find the journals without being told the data directory;
//   - whether it lives: the holder also keeps an OFD write lock on the
//     record's first byte, which anyone can test (F_OFD_GETLK) from any pid
//     namespace: a pid read from the record means nothing in another one;
//   - the heartbeat: the holder touches the file's mtime every
//     kDaemonHeartbeat, so a standby can tell a hung holder from a live one.
// The name cannot be a queue's: queue segments are "shmq." + ns + "." + name,
// and namespaces contain no '.'.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace shmq::detail {

inline constexpr std::chrono::milliseconds kDaemonHeartbeat{100};

struct DaemonRecord {
  pid_t pid = 0;
  std::uint64_t start_time = 0;  // of pid (process_start_time), against pid reuse
  std::uint64_t pid_ns = 0;      // inode of pid's pid namespace; 0: unknown
  std::filesystem::path data_dir;
  bool serving = false;  // read, not written: its holder still holds the liveness lock
};

// The byte of the record whose lock says its holder lives.
inline constexpr off_t kDaemonRecordLiveByte = 0;

// /dev/shm/shmqd.<ns>
[[nodiscard]] std::string daemon_record_path(std::string_view ns);

// The record's text, and back; nullopt for anything that is not one.
[[nodiscard]] std::string format_daemon_record(const DaemonRecord& record);
[[nodiscard]] std::optional<DaemonRecord> parse_daemon_record(std::string_view text);

// Reads the record of `ns`'s shmqd (running, or the last one since boot);
// nullopt when there is none or it cannot be read.
[[nodiscard]] std::optional<DaemonRecord> read_daemon_record(std::string_view ns);

}  // namespace shmq::detail
