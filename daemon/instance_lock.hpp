// One shmqd per namespace, whatever data directory each is given: an
// exclusive flock on the namespace's daemon record, /dev/shm/shmqd.<ns>
// (lib/src/daemon_record.hpp). The kernel drops it when its holder dies,
// however it dies, so a standby blocked on it takes over at once.
//
// A holder that is alive but hung (SIGSTOP, a deadlock) keeps its lock, so
// the holder beats a heartbeat (the record's mtime, every 100 ms) and a
// standby that sees no beat for its deadline fences the holder: SIGKILL
// through a pidfd, after checking the pid's start time, so no other process
// is ever hit. The lock then falls to the standby (docs/recovery.md,
// "A standby").
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <string>

#include "shm/daemon_record.hpp"
#include "unique_fd.hpp"

namespace shmq::daemon {

class InstanceLock {
 public:
  // Takes the lock without waiting and records this process and `data_dir`
  // in it; nullopt when another process holds it.
  static std::optional<InstanceLock> try_acquire(const std::string& ns, const std::filesystem::path& data_dir);
  // A standby's wait for the lock, fencing a holder whose heartbeat stopped
  // for `deadline`. nullopt once `stop` is set (by a signal handler that does
  // not restart system calls). Uses SIGALRM and ITIMER_REAL while it waits.
  static std::optional<InstanceLock> wait(const std::string& ns, const std::filesystem::path& data_dir,
                                          std::chrono::milliseconds deadline, const volatile std::sig_atomic_t& stop);
  // What the holder recorded (nullopt when unknown).
  static std::optional<detail::DaemonRecord> holder(const std::string& ns);

  InstanceLock(InstanceLock&&) = default;
  InstanceLock& operator=(InstanceLock&&) = default;
  ~InstanceLock();

 private:
  explicit InstanceLock(UniqueFd fd) : fd_(std::move(fd)) {}
  void record(const std::string& ns, const std::filesystem::path& data_dir);
  UniqueFd fd_;
};

// Beats the heartbeat of the lock this process holds, at most every 50 ms
// (a clock read otherwise): called by the event loop and by long work
// (a rebuild, setting up many journals), so a standby never takes a busy
// shmqd for a hung one. Does nothing without a lock.
void beat_heartbeat() noexcept;

}  // namespace shmq::daemon
