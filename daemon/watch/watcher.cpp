#include "watch/watcher.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <csignal>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "shm/daemon_record.hpp"
#include "instance_lock.hpp"
#include "journaling/binding.hpp"
#include "journaling/store.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "journaling/rebuild.hpp"
#include "watch/repair.hpp"

namespace shmq::daemon {

namespace {

constexpr const char* kShmDir = "/dev/shm";
// The safety net: a full rescan this often, whatever inotify said.
constexpr auto kRescanPeriod = std::chrono::seconds(1);
// While a repair waits for a live peer, or a segment is being created.
constexpr auto kRetryPeriod = std::chrono::milliseconds(5);
// A segment that is still not initialised after this long (its creator died)
// is left to the periodic rescan.
constexpr auto kPendingPatience = std::chrono::seconds(1);
// A journal that cannot be set up (a full disk) is tried again this often; a
// segment that does not continue its journal, this often (quietly).
constexpr auto kJournalRetry = std::chrono::milliseconds(200);
constexpr auto kConflictRetry = std::chrono::seconds(1);
// A journal the rebuild refused is tried again this often (it may be mended).
constexpr auto kRebuildRetry = std::chrono::seconds(10);
// A segment being built whose creator let go of its lock, and older than
// this (a creator between its open and its lock holds none), is removed.
constexpr auto kAbandonedCreation = std::chrono::seconds(2);

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

// Whether the creator has finished the segment (its layout version is set),
// checked with a read, not Queue::open: open would wait for it, and the
// event loop must never sleep.
bool segment_initialised(const std::string& path) {
  const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return false;
  std::uint32_t version = 0;
  const auto offset = static_cast<off_t>(offsetof(layout::Superblock, layout_version));
  return ::pread(fd.get(), &version, sizeof version, offset) == sizeof version && version != 0;
}

// Whether `path` still names the segment `map` has open: not deleted and
// created anew under the same name while inotify events were lost.
bool still_named(const detail::Mapping& map, const std::string& path) {
  struct stat open {}, named {};
  return ::fstat(map.fd, &open) == 0 && ::stat(path.c_str(), &named) == 0 && open.st_ino == named.st_ino &&
         open.st_dev == named.st_dev;
}

// The errno behind a failure, for shmq-stat.
int error_number(const std::exception& e) {
  if (const auto* system = dynamic_cast<const std::system_error*>(&e)) return system->code().value();
  return errno != 0 ? errno : EIO;
}

void log_repair(const std::string& queue, const RepairOutcome& r, std::chrono::nanoseconds took) {
  const detail::RecoveryCounts& c = r.counts;
  if (c.producers_reaped + c.consumers_reaped + c.redelivered + c.holes_repaired == 0) return;
  spdlog::info("queue '{}': reaped {} producer(s) and {} consumer(s); {} message(s) back for redelivery, "
               "{} hole(s) skipped, in {} us",
               queue, c.producers_reaped, c.consumers_reaped, c.redelivered, c.holes_repaired,
               std::chrono::duration_cast<std::chrono::microseconds>(took).count());
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
      clients_(epoll_.get()) {
  // Watch before the first scan, so no queue or client falls between the two.
  check(::inotify_add_watch(inotify_.get(), kShmDir,
                            IN_CREATE | IN_DELETE | IN_ATTRIB | IN_MOVED_TO | IN_MOVED_FROM | IN_ONLYDIR),
        "inotify_add_watch /dev/shm");
  add_to_epoll(epoll_.get(), inotify_.get());
  add_to_epoll(epoll_.get(), signals_.get());
  add_to_epoll(epoll_.get(), timer_.get());
}

Watcher::~Watcher() {
  for (auto& [name, watched] : queues_) withdraw_identity(*watched.queue.mapping());
}

// A takeover repairs every queue first (the rescan), rebuilds the queues
// whose segments are gone, and only then sets up journals, one at a time
// between events, so a client's death is repaired before the next journal's
// set-up (docs/recovery.md, "A standby").
void Watcher::run() {
  remove_abandoned_creations();
  rescan_directory();
  spdlog::info("watching namespace '{}': {} queue(s), {} client process(es)", ns_, queues_.size(),
               clients_.size());
  arm_timer();
  epoll_event events[32];
  while (!stop_) {
    beat_heartbeat();
    const int n = ::epoll_wait(epoll_.get(), events, 32, journals_to_start_.empty() ? -1 : 0);
    if (n < 0 && errno == EINTR) continue;
    check(n, "epoll_wait");
    for (int i = 0; i < n && !stop_; ++i) dispatch(events[i].data.fd);
    if (!stop_) start_next_journal();  // one per turn: what happened meanwhile comes first
    arm_timer();
  }
}

// A durable queue whose journal is here but whose segment is not (a reboot,
// a power loss) is created anew from the journal, before clients come.
void Watcher::rebuild_missing_queues() {
  const auto root = journal_.data_dir / "journal";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    // Without queue.json it was never journaled (a set-up that failed early).
    if (!entry.is_directory() || std::filesystem::exists(path_of(name)) ||
        !std::filesystem::exists(entry.path() / "queue.json")) {
      continue;
    }
    // A journal that failed (damage, without --salvage) is scanned again only
    // now and then, not at every rescan.
    if (const auto failed = unrebuildable_.find(name);
        failed != unrebuildable_.end() && Clock::now() < failed->second.next) {
      continue;
    }
    try {
      validate_name(name);
      beat_heartbeat();
      const auto start = Clock::now();
      const RebuildReport r = rebuild_queue(ns_, name, entry.path(), journal_.settings.salvage);
      unrebuildable_.erase(name);
      spdlog::info("queue '{}': rebuilt from its journal in {} ms: {} record(s) back in the ring for {} group(s), "
                   "{} producer(s), continuing at position {}",
                   name, std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count(),
                   r.records, r.groups, r.producers, r.end_position);
      if (!r.damage.empty()) spdlog::warn("queue '{}': journal damage: {}", name, r.damage);
    } catch (const Error& e) {
      if (e.code() != Errc::AlreadyExists) not_rebuilt(name, entry.path(), e);
      // else: an application created it meanwhile; start_journal() judges it
    } catch (const std::exception& e) {
      not_rebuilt(name, entry.path(), e);
    }
  }
}

// Said once per queue and error: the rescan retries every second.
void Watcher::not_rebuilt(const std::string& name, const std::filesystem::path& dir, const std::exception& e) {
  Unrebuildable& failed = unrebuildable_[name];
  failed.next = Clock::now() + kRebuildRetry;
  if (failed.error == e.what()) return;
  failed.error = e.what();
  spdlog::error("queue '{}' not rebuilt from its journal {}: {}{}", name, dir.string(), e.what(),
                journal_.settings.salvage ? "" : " (shmqd --salvage skips damage, reporting what it loses)");
}

// A segment being built (lib: creating_segment_name) whose creator died:
// its creator held a flock on it while building, which the kernel dropped.
// Whoever creates the queue next redoes the work (shmqd's rebuild above all).
void Watcher::remove_abandoned_creations() {
  const std::string prefix = std::string(detail::kCreatingPrefix) + ns_ + ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kShmDir, ec)) {
    if (!entry.path().filename().string().starts_with(prefix)) continue;
    const UniqueFd fd(::open(entry.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) continue;
    // Young: its creator may be between its open and its flock.
    const auto age = std::chrono::system_clock::now() -
                     std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
    if (age < kAbandonedCreation || ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (::unlink(entry.path().c_str()) == 0) {
      spdlog::info("removed {}: a segment its creator left half-built (it died)", entry.path().string());
    }
  }
}

void Watcher::start_next_journal() {
  if (journals_to_start_.empty()) return;
  const std::string name = *journals_to_start_.begin();
  journals_to_start_.erase(journals_to_start_.begin());
  if (const auto it = queues_.find(name); it != queues_.end()) start_journal(name, it->second.queue);
}

void Watcher::start_journal(const std::string& name, const Queue& queue) {
  layout::QueueHeader& h = *queue.mapping()->header;
  const auto dir = journal_dir(journal_.data_dir, name);
  beat_heartbeat();
  try {
    const JournalBinding binding = bind_journal(queue, dir, journal_.settings.salvage);
    if (!binding.bound) {
      journal_not_started(name, queue, binding.conflict, true, 0);
      return;
    }
    // Cleared before the pipeline starts: its first sync confirms sends, and
    // who sees a confirm must not see the set-up still failing (a failure
    // below sets them again). relaxed, both: the release store of
    // journal_synced in the pipeline publishes them to confirmed senders.
    h.journal_error.store(0, std::memory_order_relaxed);
    h.journal_trouble.store(static_cast<std::uint32_t>(JournalTrouble::None), std::memory_order_relaxed);
    journals_[name] = std::make_unique<JournalPipeline>(queue, dir, journal_.settings);
    if (journal_retry_.erase(name) != 0) spdlog::info("queue '{}': the journal is set up now", name);
    spdlog::info("queue '{}': journaling to {}", name, dir.string());
  } catch (const std::exception& e) {
    journal_not_started(name, queue, e.what(), false, error_number(e));
  }
}

void Watcher::journal_not_started(const std::string& name, const Queue& queue, const std::string& why,
                                  bool conflict, int error) {
  layout::QueueHeader& h = *queue.mapping()->header;
  const auto trouble = conflict ? JournalTrouble::Conflict : JournalTrouble::SetupFailing;
  // relaxed, both: reports for shmq-stat, nothing is published with them.
  if (!conflict) h.journal_error.store(static_cast<std::uint32_t>(error), std::memory_order_relaxed);
  h.journal_trouble.store(static_cast<std::uint32_t>(trouble), std::memory_order_relaxed);
  JournalRetry& retry = journal_retry_[name];
  retry.next = Clock::now() + (conflict ? std::chrono::nanoseconds(kConflictRetry) : kJournalRetry);
  retry.conflict = conflict;
  if (retry.error == why) return;  // said already
  retry.error = why;
  if (conflict) {
    spdlog::error("queue '{}': {}", name, why);
  } else {
    spdlog::error("queue '{}': cannot journal it, retrying every {} ms (durable confirms and deliveries wait): {}",
                  name, kJournalRetry.count(), why);
  }
}

void Watcher::retry_journals() {
  const auto now = Clock::now();
  std::vector<std::string> due;  // copies: start_journal() erases from journal_retry_
  for (const auto& [name, retry] : journal_retry_) {
    if (now >= retry.next) due.push_back(name);
  }
  for (const std::string& name : due) {
    if (const auto it = queues_.find(name); it != queues_.end()) start_journal(name, it->second.queue);
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
    spdlog::warn("inotify queue overflowed: rescanning {}", kShmDir);
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
  retry_journals();
}

void Watcher::rescan_directory() {
  next_rescan_ = Clock::now() + kRescanPeriod;
  std::vector<std::string> names;
  try {
    names = Queue::list(ns_);
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return;
  }
  const std::set<std::string> present(names.begin(), names.end());
  std::vector<std::string> gone;  // copies: forget() erases from queues_
  std::vector<std::pair<std::string, std::string>> truncated;  // name, why
  for (const auto& [name, watched] : queues_) {
    if (!present.contains(name) || !still_named(*watched.queue.mapping(), path_of(name))) {
      gone.push_back(name);
    } else if (auto lost = detail::segment_lost(*watched.queue.mapping())) {
      truncated.emplace_back(name, std::move(*lost));
    }
  }
  for (const std::string& name : gone) forget(name);
  // A peer truncated the segment (bus_guard.hpp): shmqd serves the others.
  // Its journal stays where it is: once the file is removed, the queue is
  // rebuilt from it.
  for (const auto& [name, why] : truncated) {
    spdlog::error("queue '{}': {}: abandoned", name, why);
    journals_.erase(name);  // stops its journal pipeline; not set aside by forget()
    queues_.erase(name);    // not "deleted" either
    forget(name);
  }
  std::erase_if(pending_, [&](const auto& entry) { return !present.contains(entry.first); });
  std::erase_if(unusable_, [&](const auto& entry) { return !present.contains(entry.first); });
  for (const std::string& name : names) {
    beat_heartbeat();
    refresh(name);
  }
  retry_journals();
  rebuild_missing_queues();
  remove_abandoned_creations();
  // A client that detached from everything but lives on needs no pidfd.
  std::set<ClientId> attached;
  for (const auto& [name, watched] : queues_) attached.insert(watched.attached.begin(), watched.attached.end());
  clients_.prune(attached);
}

void Watcher::refresh(const std::string& name) {
  if (const auto it = queues_.find(name); it != queues_.end()) {
    service(it->second);
    return;
  }
  if (!segment_initialised(path_of(name))) {
    pending_.try_emplace(name, Clock::now());
    return;
  }
  pending_.erase(name);
  try {
    Queue queue = Queue::open(name, ns_);
    unusable_.erase(name);
    const bool durable = queue.durable();
    auto& watched = queues_.emplace(name, Watched{std::move(queue), {}, true}).first->second;
    spdlog::info("watching queue '{}'", name);
    service(watched);
    // After the first repair and scan: "daemon up" means its clients are watched.
    publish_identity(*watched.queue.mapping());
    if (durable) journals_to_start_.insert(name);  // once the repairs waiting are done
  } catch (const Error& e) {
    // Say it once, not every second: the rescan retries quietly.
    if (unusable_[name] != e.what()) spdlog::warn("cannot watch queue '{}': {}", name, e.what());
    unusable_[name] = e.what();
  }
}

std::string Watcher::path_of(const std::string& name) const { return std::string(kShmDir) + "/" + prefix_ + name; }

void Watcher::forget(const std::string& name) {
  pending_.erase(name);
  unusable_.erase(name);
  if (queues_.erase(name) != 0) spdlog::info("queue '{}' was deleted", name);
  journals_to_start_.erase(name);
  const auto retry = journal_retry_.find(name);
  // A journal we could not set up is still the queue's; a conflicting one is
  // not (and its queue comes back rebuilt from it).
  const bool ours_failing = retry != journal_retry_.end() && !retry->second.conflict;
  if (retry != journal_retry_.end()) journal_retry_.erase(retry);
  if (journals_.erase(name) != 0 || ours_failing) set_journal_aside(name);
}

// A durable queue's segment vanished while we journal it. `shmq delete`
// removes the journal itself, first; anything else (a script, or
// systemd-logind's RemoveIPC at its user's logout) is no reason to lose the
// data: the journal is moved aside, where the next start does not rebuild it.
void Watcher::set_journal_aside(const std::string& name) {
  const auto from = journal_dir(journal_.data_dir, name);
  if (!std::filesystem::exists(from)) return;
  const auto aside = journal_.data_dir / "journal-deleted" / (name + "." + std::to_string(std::time(nullptr)));
  std::error_code ec;
  std::filesystem::create_directories(aside.parent_path(), ec);
  std::filesystem::rename(from, aside, ec);
  if (ec) {
    spdlog::error("queue '{}' was deleted; cannot move its journal {} aside: {}", name, from.string(), ec.message());
  } else {
    spdlog::warn("queue '{}' was deleted while journaled; its journal is kept in {} (move it back to {} to have "
                 "the next shmqd rebuild the queue, or delete it)",
                 name, aside.string(), from.string());
  }
}

void Watcher::service(Watched& watched) {
  if (detail::segment_lost(*watched.queue.mapping())) {  // truncated: the rescan, due now, abandons it
    next_rescan_ = Clock::now();
    return;
  }
  const auto start = Clock::now();
  const auto outcome = repair_queue(*watched.queue.mapping());
  if (!outcome) {
    spdlog::debug("queue '{}': its lock is busy; retrying", watched.queue.name());
    watched.settled = false;
    return;
  }
  log_repair(watched.queue.name(), *outcome, Clock::now() - start);
  watched.attached = outcome->attached;
  watched.settled = true;
  for (const ClientId& id : outcome->attached) {
    // Dead already (before its pidfd existed), or a repair that waits for a
    // live peer: retried on the quick timer.
    if (!clients_.watch(id)) watched.settled = false;
  }
}

void Watcher::service_all() {
  for (auto& [name, watched] : queues_) service(watched);
}

void Watcher::arm_timer() {
  const auto now = Clock::now();
  bool quick = false;
  for (const auto& [name, since] : pending_) quick = quick || now - since < kPendingPatience;
  for (const auto& [name, watched] : queues_) quick = quick || !watched.settled;
  auto delay = quick ? std::chrono::nanoseconds(kRetryPeriod) : next_rescan_ - now;
  for (const auto& [name, retry] : journal_retry_) delay = std::min<std::chrono::nanoseconds>(delay, retry.next - now);
  delay = std::min<std::chrono::nanoseconds>(delay, detail::kDaemonHeartbeat);  // the loop beats
  delay = std::max<std::chrono::nanoseconds>(delay, std::chrono::microseconds(100));
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
  check(::timerfd_settime(timer_.get(), 0, &spec, nullptr), "timerfd_settime");
}

}  // namespace shmq::daemon
