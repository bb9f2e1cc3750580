#include "lifecycle.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "shmq/status.hpp"
#include "worker_log.hpp"

namespace shmq::torture {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {
constexpr const char* kShm = "/dev/shm";
}  // namespace

const char* lifecycle_name(Lifecycle l) {
  switch (l) {
    case Lifecycle::None: return "none";
    case Lifecycle::AppFirst: return "app-first";
    case Lifecycle::RebuildKill: return "rebuild-kill";
    case Lifecycle::FullDisk: return "full-disk";
    case Lifecycle::Standby: return "standby";
  }
  return "?";
}

std::optional<Lifecycle> lifecycle_from_name(const std::string& name) {
  for (Lifecycle l : {Lifecycle::AppFirst, Lifecycle::RebuildKill, Lifecycle::FullDisk, Lifecycle::Standby}) {
    if (name == lifecycle_name(l)) return l;
  }
  return std::nullopt;
}

int wipe_namespace_shm(const std::string& ns) {
  const std::string segment = "shmq." + ns + ".", creating = "shmq-creating." + ns + ".", record = "shmqd." + ns;
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kShm, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(segment) || name.starts_with(creating) || name == record) {
      if (fs::remove(entry.path(), ec)) ++removed;
    }
  }
  return removed;
}

std::string creating_prefix(const std::string& ns, const std::string& queue, pid_t pid) {
  return "shmq-creating." + ns + "." + queue + "." + std::to_string(pid) + ".";
}

bool shm_file_with_prefix(const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(kShm, ec)) {
    if (entry.path().filename().string().starts_with(prefix)) return true;
  }
  return false;
}

bool segment_exists(const std::string& ns, const std::string& queue) {
  return ::access((std::string(kShm) + "/shmq." + ns + "." + queue).c_str(), F_OK) == 0;
}

ShmCreations::ShmCreations() : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
  if (fd_ < 0 || ::inotify_add_watch(fd_, kShm, IN_CREATE | IN_MOVED_TO) < 0) {
    throw std::runtime_error(std::string("inotify on /dev/shm: ") + std::strerror(errno));
  }
}

ShmCreations::~ShmCreations() {
  if (fd_ >= 0) ::close(fd_);
}

bool ShmCreations::wait_for(const std::string& prefix, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  alignas(inotify_event) std::array<char, 16384> buf{};
  for (;;) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left < 0) return false;
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::read(fd_, buf.data(), buf.size());
    if (n <= 0) continue;
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buf.data() + at);
      if (event->len > 0 && std::string_view(event->name).starts_with(prefix)) return true;
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
    }
  }
}

TmpfsMount::TmpfsMount(fs::path dir, std::uint64_t bytes) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const std::string data = "size=" + std::to_string(bytes) + ",mode=0700";
  if (::mount("shmq-torture", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) == 0) {
    mounted_ = true;
  } else {
    error_ = "cannot mount a tmpfs on " + dir_.string() + ": " + std::strerror(errno) +
             (::geteuid() != 0 ? " (not root)" : "");
  }
}

TmpfsMount::~TmpfsMount() {
  if (mounted_ && ::umount(dir_.c_str()) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
}

std::uint64_t fill_disk(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("cannot create the filler " + file.string() + ": " + std::strerror(errno));
  std::vector<char> chunk(256 * 1024, 'f');
  std::uint64_t total = 0;
  for (std::size_t size = chunk.size(); size >= 512;) {
    const ssize_t n = ::write(fd, chunk.data(), size);
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      size /= 2;  // ENOSPC: finish the last pages with smaller writes
    }
  }
  ::close(fd);
  return total;
}

int run_application(const AppJob& job, int ready_fd) {
  WorkerLog log(job.log);
  ::setenv("SHMQ_DATA_DIR", job.data_dir.c_str(), 1);
  char got = 'N';
  try {
    Queue made = Queue::create(job.queue, job.options, job.ns);
    got = 'C';  // an empty queue over the journal: what the boot order forbids
    log.line("%s", ("E Queue::create made a new queue although its journal exists in " + job.data_dir).c_str());
  } catch (const Error& e) {
    if (e.code() != Errc::NeedsRebuild) {
      got = e.code() == Errc::AlreadyExists ? 'A' : 'X';
      log.line("E Queue::create before shmqd: %s (wanted NeedsRebuild)", e.what());
    } else {
      log.line("N %s", e.what());
    }
  }
  [[maybe_unused]] const auto w = ::write(ready_fd, &got, 1);
  ::close(ready_fd);
  if (got == 'C') return 2;
  const auto start = Clock::now();
  Queue queue = Queue::open_or_create(job.queue, job.options, job.ns, job.wait);
  const auto waited = std::chrono::duration_cast<Millis>(Clock::now() - start).count();
  // It is served once shmqd has repaired it and published itself; its
  // journal set-up follows (journal_trouble says Conflict for a queue that
  // does not continue the journal).
  QueueInfo info = queue.info();
  const auto deadline = Clock::now() + job.wait;
  while (info.daemon_pid == 0 && Clock::now() < deadline) {
    sleep_for(Millis(5));
    info = queue.info();
  }
  for (const auto watch_end = Clock::now() + Millis(250);
       info.journal_trouble != JournalTrouble::Conflict && Clock::now() < watch_end; info = queue.info()) {
    sleep_for(Millis(10));
  }
  log.line("O waited %lld ms, tail %llu (synced %llu before the power loss), %zu producer(s), daemon %lld, "
           "journal trouble %d",
           static_cast<long long>(waited), static_cast<unsigned long long>(info.tail_position),
           static_cast<unsigned long long>(job.min_tail), info.producers.size(),
           static_cast<long long>(info.daemon_pid), static_cast<int>(info.journal_trouble));
  if (!info.durable) {
    log.line("E the queue open_or_create returned is not durable");
    return 3;
  }
  if (info.tail_position < job.min_tail) {
    log.line("E the queue open_or_create returned is not the rebuilt one: tail %llu below %llu synced before",
             static_cast<unsigned long long>(info.tail_position), static_cast<unsigned long long>(job.min_tail));
    return 4;
  }
  if (info.daemon_pid == 0 || info.journal_trouble != JournalTrouble::None) {
    log.line("E shmqd does not serve and journal the queue open_or_create returned (daemon %lld, trouble %d)",
             static_cast<long long>(info.daemon_pid), static_cast<int>(info.journal_trouble));
    return 5;
  }
  return got == 'N' ? 0 : 6;
}

}  // namespace shmq::torture
