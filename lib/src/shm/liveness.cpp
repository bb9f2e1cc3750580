#include "shm/liveness.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>  // std::call_once
#include <string>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/segment.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

namespace {

// The Mappings of this process that hold entry locks, for the fork handler.
// A fixed table of atomics, no allocation: the child reads it alone, in
// whatever state the parent's other threads left it. A Mapping withdraws
// (stores nullptr) before it closes its descriptor and before it is freed,
// so the child never finds a freed Mapping here.
constexpr std::size_t kMaxHolders = 1024;
std::array<std::atomic<Mapping*>, kMaxHolders> holders{};

// In the child of fork: let go of the parent's locks (the child's own
// entries it takes anew, through a descriptor of its own).
void close_inherited_locks() noexcept {
  for (auto& entry : holders) {
    Mapping* map = entry.load(std::memory_order_relaxed);  // one thread left: no order to keep
    if (map == nullptr) continue;
    const int fd = map->lock_fd.exchange(-1, std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
    entry.store(nullptr, std::memory_order_relaxed);
    map->lock_holder = -1;
  }
}

int register_holder(Mapping& map) {
  static std::once_flag at_fork;
  std::call_once(at_fork, [] { ::pthread_atfork(nullptr, nullptr, close_inherited_locks); });
  for (std::size_t i = 0; i < kMaxHolders; ++i) {
    Mapping* expected = nullptr;
    // relaxed: the table is read only by the fork handler, in a child
    // whose memory is a copy taken with every thread stopped.
    if (holders[i].compare_exchange_strong(expected, &map, std::memory_order_relaxed)) return static_cast<int>(i);
  }
  throw Error(Errc::TableFull, "this process holds entries in " + std::to_string(kMaxHolders) +
                                   " queue handles already: close some");
}

// The Mapping's lock descriptor: a second open file description of its
// segment (reopened through /proc/self/fd, which reaches the same file even
// when it was unlinked or replaced since). Threads may race to open it: one
// CAS wins, the others close theirs.
int lock_descriptor(const Mapping& map) {
  if (const int fd = map.lock_fd.load(std::memory_order_acquire); fd >= 0) return fd;
  const std::string path = "/proc/self/fd/" + std::to_string(map.fd);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    throw Error(error == EACCES ? Errc::PermissionDenied : Errc::System,
                "cannot open a second descriptor of " + describe_queue(map.ns, map.name) + " through " + path +
                    " for its entry locks: " + std::strerror(error) + (error == ENOENT ? " (is /proc mounted?)" : ""));
  }
  int expected = -1;
  // acq_rel: pairs with the acquire load above, so a thread using the
  // winner's descriptor sees its registration done before it.
  if (!map.lock_fd.compare_exchange_strong(expected, fd, std::memory_order_acq_rel)) {
    ::close(fd);
    return expected;
  }
  try {
    map.lock_holder = register_holder(const_cast<Mapping&>(map));  // the winner alone writes it
  } catch (...) {
    map.lock_fd.store(-1, std::memory_order_relaxed);  // no entry taken through it yet
    ::close(fd);
    throw;
  }
  return fd;
}

}  // namespace

struct flock byte_lock(short type, off_t byte) noexcept {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  lock.l_pid = 0;  // OFD locks require it
  return lock;
}

off_t daemon_lock_byte() noexcept { return layout::kDaemonLockByte; }
off_t producer_lock_byte(std::uint32_t index) noexcept { return layout::kProducerLockBytes + index; }
off_t consumer_lock_byte(std::uint32_t group, std::uint32_t index) noexcept {
  return layout::kConsumerLockBytes + static_cast<off_t>(group) * layout::kMaxConsumers + index;
}

void hold_entry(const Mapping& map, off_t byte) {
  struct flock lock = byte_lock(F_WRLCK, byte);
  if (::fcntl(lock_descriptor(map), F_OFD_SETLK, &lock) == 0) return;
  const int error = errno;
  if (error == EAGAIN || error == EACCES) {
    throw Error(Errc::NameInUse, "an entry of " + describe_queue(map.ns, map.name) +
                                     " is still held by a live process (its lock byte " +
                                     std::to_string(byte - layout::kLockBytesStart) + " is taken)");
  }
  throw Error(Errc::System, "cannot lock an entry of " + describe_queue(map.ns, map.name) + ": " +
                                std::strerror(error));
}

void let_go_entry(const Mapping& map, off_t byte) noexcept {
  const int fd = map.lock_fd.load(std::memory_order_relaxed);
  if (fd < 0) return;  // a forked child's copy of its parent's entry: the parent lets go
  struct flock lock = byte_lock(F_UNLCK, byte);
  (void)::fcntl(fd, F_OFD_SETLK, &lock);
}

bool entry_held(const Mapping& map, off_t byte) noexcept {
  // Probed for reading: only a write lock conflicts, and only a process that
  // may write the segment can take one. A reader's read lock never passes
  // for a holder (it could keep a dead client's entry from repair).
  struct flock lock = byte_lock(F_RDLCK, byte);
  if (::fcntl(map.fd, F_OFD_GETLK, &lock) != 0) return true;
  return lock.l_type != F_UNLCK;
}

void close_entry_locks(Mapping& map) noexcept {
  if (map.lock_holder >= 0) {
    holders[static_cast<std::size_t>(map.lock_holder)].store(nullptr, std::memory_order_relaxed);
    map.lock_holder = -1;
  }
  const int fd = map.lock_fd.exchange(-1, std::memory_order_relaxed);
  if (fd >= 0) ::close(fd);
}

std::uint64_t self_pid_namespace() noexcept {
  struct stat st {};
  return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

}  // namespace shmq::detail
