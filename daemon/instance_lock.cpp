#include "instance_lock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "shm/liveness.hpp"
#include "shm/process.hpp"

namespace shmq::daemon {

namespace {

using Clock = std::chrono::steady_clock;

// The held lock's descriptor, for beat_heartbeat(); -1 when none.
std::atomic<int> g_heartbeat_fd{-1};
std::atomic<Clock::rep> g_last_beat{0};
constexpr auto kBeatAtMost = std::chrono::milliseconds(50);

UniqueFd open_record(const std::string& ns) {
  const std::string path = detail::daemon_record_path(ns);
  // 0644: clients of other users read the data directory from it.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  return fd;
}

bool try_lock(int fd, const std::string& ns) {
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) {
      throw std::runtime_error("cannot lock " + detail::daemon_record_path(ns) + ": " + std::strerror(errno));
    }
  }
  return true;
}

struct timespec modified(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  return st.st_mtim;
}

bool same_time(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

// Kills the holder `r` through a pidfd, once its start time shows it is the
// process that recorded itself (a pid reused since is never hit). False when
// it cannot be done from here (another pid namespace, no permission).
bool fence(const detail::DaemonRecord& r, std::chrono::milliseconds silent) {
  if (r.pid_ns == 0 || r.pid_ns != detail::self_pid_namespace()) {
    spdlog::error("standby: shmqd pid {} beat no heartbeat for {} ms, but it runs in another pid namespace "
                  "and cannot be fenced from here: stop it where it runs", r.pid, silent.count());
    return false;
  }
  const UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, r.pid, 0)));
  if (!pidfd) {
    spdlog::error("standby: shmqd pid {} beat no heartbeat for {} ms, but it cannot be fenced from here: "
                  "pidfd_open: {}", r.pid, silent.count(), std::strerror(errno));
    return false;
  }
  // After the pidfd: it pins the process, so the check holds for the signal.
  if (detail::process_start_time(r.pid) != r.start_time) return true;  // gone: the lock falls free
  spdlog::warn("standby: shmqd pid {} beat no heartbeat for {} ms (hung or stopped): fencing it with SIGKILL",
               r.pid, silent.count());
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) != 0 && errno != ESRCH) {
    spdlog::error("standby: cannot fence shmqd pid {}: {}", r.pid, std::strerror(errno));
    return false;
  }
  return true;
}

extern "C" void on_alarm(int) {}

// SIGALRM every `period` while it lives, interrupting blocking calls.
class AlarmEvery {
 public:
  explicit AlarmEvery(std::chrono::milliseconds period) {
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGALRM, &sa, &old_action_);
    itimerval timer{};
    timer.it_interval.tv_sec = period.count() / 1000;
    timer.it_interval.tv_usec = (period.count() % 1000) * 1000;
    timer.it_value = timer.it_interval;
    ::setitimer(ITIMER_REAL, &timer, nullptr);
  }
  ~AlarmEvery() {
    const itimerval off{};
    ::setitimer(ITIMER_REAL, &off, nullptr);
    ::sigaction(SIGALRM, &old_action_, nullptr);
  }
  AlarmEvery(const AlarmEvery&) = delete;
  AlarmEvery& operator=(const AlarmEvery&) = delete;

 private:
  struct sigaction old_action_ {};
};

}  // namespace

std::optional<InstanceLock> InstanceLock::try_acquire(const std::string& ns, const std::filesystem::path& data_dir) {
  UniqueFd fd = open_record(ns);
  if (!try_lock(fd.get(), ns)) return std::nullopt;
  InstanceLock lock(std::move(fd));
  lock.record(ns, data_dir);
  return lock;
}

std::optional<InstanceLock> InstanceLock::wait(const std::string& ns, const std::filesystem::path& data_dir,
                                               std::chrono::milliseconds deadline,
                                               const volatile std::sig_atomic_t& stop) {
  UniqueFd fd = open_record(ns);
  // Blocked in flock, so the lock is ours the moment the holder dies; woken
  // every `poll` by SIGALRM (no SA_RESTART: flock returns EINTR) to look at
  // the heartbeat, and by SIGTERM/SIGINT to stop.
  const auto poll = std::min<std::chrono::milliseconds>(deadline / 4, std::chrono::milliseconds(50));
  const AlarmEvery alarm(poll);
  // Staleness by our own monotonic clock: how long the holder's mtime has
  // not changed. A wall-clock jump can neither fake nor hide a beat.
  struct timespec last_seen = modified(fd.get());
  auto unchanged_since = Clock::now();
  bool fenced = false;
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      throw std::runtime_error("cannot lock " + detail::daemon_record_path(ns) + ": " + std::strerror(errno));
    }
    if (stop != 0) return std::nullopt;
    const struct timespec now_seen = modified(fd.get());
    if (!same_time(now_seen, last_seen)) {
      last_seen = now_seen;
      unchanged_since = Clock::now();
      fenced = false;
    }
    const auto silent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - unchanged_since);
    if (!fenced && silent >= deadline) {
      if (const auto r = holder(ns)) fenced = fence(*r, silent);
    }
  }
  InstanceLock lock(std::move(fd));
  lock.record(ns, data_dir);
  return lock;
}

std::optional<detail::DaemonRecord> InstanceLock::holder(const std::string& ns) {
  return detail::read_daemon_record(ns);
}

InstanceLock::~InstanceLock() {
  if (fd_ && g_heartbeat_fd.load(std::memory_order_relaxed) == fd_.get()) {
    g_heartbeat_fd.store(-1, std::memory_order_relaxed);
  }
}

void InstanceLock::record(const std::string& ns, const std::filesystem::path& data_dir) {
  const std::string text = detail::format_daemon_record({.pid = detail::self_pid(),
                                                         .start_time = detail::self_start_time(),
                                                         .pid_ns = detail::self_pid_namespace(),
                                                         .data_dir = std::filesystem::absolute(data_dir)});
  struct flock live = detail::byte_lock(F_WRLCK, detail::kDaemonRecordLiveByte);
  // Ours alone: the flock keeps any other shmqd from getting this far.
  if (::fcntl(fd_.get(), F_OFD_SETLK, &live) != 0) {
    throw std::runtime_error(std::string("cannot lock the daemon record's liveness byte: ") + std::strerror(errno));
  }
  if (::fchmod(fd_.get(), 0644) != 0 || ::ftruncate(fd_.get(), 0) != 0 ||
      ::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    const int error = errno;
    throw std::runtime_error("cannot write the daemon record " + detail::daemon_record_path(ns) + ": " + std::strerror(error) +
                             (error == ENOSPC ? " (its directory is full: free some room there)" : ""));
  }
  // relaxed: the descriptor is only ever used by this process's own threads,
  // and beat_heartbeat() tolerates any stale value (a skipped beat).
  g_heartbeat_fd.store(fd_.get(), std::memory_order_relaxed);
  g_last_beat.store(0, std::memory_order_relaxed);
  beat_heartbeat();
}

void beat_heartbeat() noexcept {
  const int fd = g_heartbeat_fd.load(std::memory_order_relaxed);
  if (fd < 0) return;
  const Clock::rep now = Clock::now().time_since_epoch().count();
  const Clock::rep last = g_last_beat.load(std::memory_order_relaxed);
  if (now - last < std::chrono::duration_cast<Clock::duration>(kBeatAtMost).count()) return;
  g_last_beat.store(now, std::memory_order_relaxed);
  ::futimens(fd, nullptr);  // the mtime is the beat
}

}  // namespace shmq::daemon
