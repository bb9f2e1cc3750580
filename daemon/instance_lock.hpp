// One shmqd per namespace: an exclusive flock on <data-dir>/shmqd.lock. The
// kernel drops it when its holder dies, however it dies, so a standby blocked
// on it takes over at once.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>

#include "unique_fd.hpp"

namespace shmq::daemon {

class InstanceLock {
 public:
  // Takes the lock without waiting; nullopt when another process holds it.
  static std::optional<InstanceLock> try_acquire(const std::filesystem::path& file);
  // Waits for the lock; nullopt when a signal interrupted the wait.
  static std::optional<InstanceLock> wait(const std::filesystem::path& file);
  // The pid the holder wrote into `file` (0 when unknown).
  static pid_t holder(const std::filesystem::path& file);

 private:
  explicit InstanceLock(UniqueFd fd) : fd_(std::move(fd)) {}
  static UniqueFd open_file(const std::filesystem::path& file);
  void write_pid();
  UniqueFd fd_;
};

}  // namespace shmq::daemon
