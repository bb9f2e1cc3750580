#include "instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace shmq::daemon {

UniqueFd InstanceLock::open_file(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) throw std::runtime_error("cannot open lock file " + file.string() + ": " + std::strerror(errno));
  return fd;
}

std::optional<InstanceLock> InstanceLock::try_acquire(const std::filesystem::path& file) {
  UniqueFd fd = open_file(file);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::nullopt;
    if (errno != EINTR) throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(errno));
  }
  InstanceLock lock(std::move(fd));
  lock.write_pid();
  return lock;
}

std::optional<InstanceLock> InstanceLock::wait(const std::filesystem::path& file) {
  UniqueFd fd = open_file(file);
  // EINTR ends the wait: SIGTERM/SIGINT have a handler without SA_RESTART.
  if (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno == EINTR) return std::nullopt;
    throw std::runtime_error("cannot lock " + file.string() + ": " + std::strerror(errno));
  }
  InstanceLock lock(std::move(fd));
  lock.write_pid();
  return lock;
}

pid_t InstanceLock::holder(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return 0;
  char buf[32] = {};
  if (::read(fd.get(), buf, sizeof buf - 1) <= 0) return 0;
  return static_cast<pid_t>(std::strtol(buf, nullptr, 10));
}

// For the message a second instance prints; the lock itself is the flock.
void InstanceLock::write_pid() {
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_.get(), 0) != 0 || ::pwrite(fd_.get(), pid.data(), pid.size(), 0) < 0) {
    throw std::runtime_error(std::string("cannot write the lock file: ") + std::strerror(errno));
  }
}

}  // namespace shmq::daemon
