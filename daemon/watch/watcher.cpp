// Watcher's event loop: the epoll set, its events (signals, inotify, client
// deaths, the timer) and the timer's arming. What a queue's event leads to is
// in watcher_queues.cpp; journals, in watcher_journals.cpp.
#include "watch/watcher.hpp"

#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <set>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "instance_lock.hpp"
#include "shm/daemon_record.hpp"
#include "shm/liveness.hpp"
#include "shm/mapping.hpp"
#include "watch/repair.hpp"

namespace shmq::daemon {

namespace {

// While a repair waits for a live peer, or a segment is being created.
constexpr auto kRetryPeriod = std::chrono::milliseconds(5);
// Clients that no pidfd names (another pid namespace) are seen dead within
// this, plus the repair (docs/recovery.md, "Containers").
constexpr auto kPollPeriod = std::chrono::milliseconds(10);
// A segment that is still not initialised after this long (its creator died)
// is left to the periodic rescan.
constexpr auto kPendingPatience = std::chrono::seconds(1);

int check(int rc, const char* what) {
  if (rc < 0) throw std::system_error(errno, std::generic_category(), what);
  return rc;
}

void add_to_epoll(int epoll_fd, int fd) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  check(::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev), "epoll_ctl");
}

}  // namespace

Watcher::Watcher(std::string ns, UniqueFd stop_signals, JournalConfig journal)
    : ns_(std::move(ns)),
      prefix_("shmq." + ns_ + "."),
      journal_(std::move(journal)),
      epoll_(check(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      inotify_(check(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC), "inotify_init1")),
      signals_(std::move(stop_signals)),
      timer_(check(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC), "timerfd_create")),
      clients_(epoll_.get(), detail::self_pid_namespace()) {
  // Watch before the first scan, so no queue or client falls between the two.
  check(::inotify_add_watch(inotify_.get(), shm_dir_.c_str(),
                            IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR),
        ("inotify_add_watch " + shm_dir_).c_str());
  add_to_epoll(epoll_.get(), inotify_.get());
  add_to_epoll(epoll_.get(), signals_.get());
  add_to_epoll(epoll_.get(), timer_.get());
}

Watcher::~Watcher() {
  for (auto& [name, watched] : queues_) withdraw_identity(*detail::mapping_of(watched.queue));
}

// A takeover repairs every queue first (the rescan), rebuilds the queues
// whose segments are gone, and only then sets up journals, one at a time
// between events, so a client's death is repaired before the next journal's
// set-up (docs/recovery.md, "A standby").
void Watcher::run() {
  remove_abandoned_creations();
  rescan_directory();
  const std::string summary = fmt::format("watching namespace '{}': {} queue(s), {} client process(es)", ns_,
                                          queues_.size(), clients_.size());
  spdlog::info("{}", summary);
  if (on_ready_) on_ready_(summary);
  arm_timer();
  epoll_event events[32];
  while (!stop_) {
    beat_heartbeat();
    if (on_turn_) on_turn_();
    const int n = ::epoll_wait(epoll_.get(), events, 32, journals_to_start_.empty() ? -1 : 0);
    if (n < 0 && errno == EINTR) continue;
    check(n, "epoll_wait");
    for (int i = 0; i < n && !stop_; ++i) dispatch(events[i].data.fd);
    if (!stop_) start_next_journal();  // one per turn: what happened meanwhile comes first
    arm_timer();
  }
}

void Watcher::dispatch(int fd) {
  if (fd == signals_.get()) {
    signalfd_siginfo info{};
    if (::read(fd, &info, sizeof info) != sizeof info) return;
    const int sig = static_cast<int>(info.ssi_signo);
    if (sig == SIGHUP) {
      if (on_hangup_) on_hangup_();
      spdlog::info("SIGHUP: log file reopened; still serving namespace '{}'", ns_);
      return;
    }
    spdlog::info("{} (from pid {}): shutting down", ::strsignal(sig), info.ssi_pid);
    stop_ = true;
  } else if (fd == inotify_.get()) {
    on_inotify();
  } else if (fd == timer_.get()) {
    on_timer();
  } else {
    on_client_exit(fd);
  }
}

void Watcher::on_inotify() {
  // Coalesced: the last event of a name decides (a delete then a create of
  // the same name forgets the old mapping, then opens the new one).
  std::set<std::string> touched;
  bool overflow = false;
  alignas(inotify_event) char buf[16 * 1024];
  for (;;) {
    const ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n <= 0) break;  // EAGAIN: drained
    for (const char* p = buf; p < buf + n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if ((ev->mask & IN_Q_OVERFLOW) != 0) overflow = true;
      const std::string_view file = ev->len != 0 ? std::string_view(ev->name) : std::string_view();
      if (!file.starts_with(prefix_)) continue;
      std::string name(file.substr(prefix_.size()));
      if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
        touched.erase(name);
        forget(name);
      } else {
        touched.insert(std::move(name));
      }
    }
  }
  if (overflow) {
    spdlog::warn("inotify queue overflowed: rescanning {}", shm_dir_);
    rescan_directory();
    return;
  }
  for (const std::string& name : touched) refresh(name);
}

void Watcher::on_client_exit(int pidfd) {
  const auto id = clients_.exited(pidfd);
  if (!id) return;
  spdlog::info("client pid {} exited", id->pid);
  // It may have been attached to any queue; a queue it never used costs a scan.
  service_all();
}

void Watcher::on_timer() {
  std::uint64_t expirations = 0;
  (void)!::read(timer_.get(), &expirations, sizeof expirations);
  const auto now = Clock::now();
  if (now >= next_lease_check_ && any_ack_timeout()) expire_leases();
  if (now >= next_rescan_) {
    rescan_directory();
    return;
  }
  std::vector<std::string> retry;  // copies: refresh() erases from pending_
  for (const auto& [name, since] : pending_) {
    if (now - since < kPendingPatience) retry.push_back(name);
  }
  for (const std::string& name : retry) refresh(name);
  for (auto& [name, watched] : queues_) {
    if (!watched.settled) service(watched);
  }
  if (now >= next_poll_) poll_entries();
  retry_journals();
}

// The queues with clients no pidfd names: repaired once an entry of theirs
// is attached with its lock free (its holder died).
void Watcher::poll_entries() {
  next_poll_ = Clock::now() + kPollPeriod;
  for (auto& [name, watched] : queues_) {
    if (watched.polled && has_dead_entry(*detail::mapping_of(watched.queue))) service(watched);
  }
}

void Watcher::arm_timer() {
  const auto now = Clock::now();
  bool quick = false;
  for (const auto& [name, since] : pending_) quick = quick || now - since < kPendingPatience;
  bool polled = false;
  for (const auto& [name, watched] : queues_) {
    quick = quick || !watched.settled;
    polled = polled || watched.polled;
  }
  auto delay = quick ? std::chrono::nanoseconds(kRetryPeriod) : next_rescan_ - now;
  if (polled) delay = std::min<std::chrono::nanoseconds>(delay, next_poll_ - now);
  for (const auto& [name, retry] : journal_retry_) delay = std::min<std::chrono::nanoseconds>(delay, retry.next - now);
  if (any_ack_timeout()) delay = std::min<std::chrono::nanoseconds>(delay, next_lease_check_ - now);
  delay = std::min<std::chrono::nanoseconds>(delay, detail::kDaemonHeartbeat);  // the loop beats
  delay = std::max<std::chrono::nanoseconds>(delay, std::chrono::microseconds(100));
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
  check(::timerfd_settime(timer_.get(), 0, &spec, nullptr), "timerfd_settime");
}

}  // namespace shmq::daemon
