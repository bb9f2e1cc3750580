// Watcher: which queues it watches, and each one's repair. A rescan (every
// second, and after an inotify overflow) opens the queues that appeared,
// forgets the ones deleted or replaced, abandons the truncated ones and
// removes segments whose creator died half-way; service() repairs a queue and
// watches its clients.
#include "watch/watcher.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "instance_lock.hpp"
#include "shm/bus_guard.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "watch/repair.hpp"

namespace shmq::daemon {

namespace {

// The safety net: a full rescan this often, whatever inotify said.
constexpr auto kRescanPeriod = std::chrono::seconds(1);
// A segment being built whose creator let go of its lock, and older than
// this (a creator between its open and its lock holds none), is removed.
constexpr auto kAbandonedCreation = std::chrono::seconds(2);

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

void log_repair(const std::string& queue, const RepairOutcome& r, std::chrono::nanoseconds took) {
  const detail::RecoveryCounts& c = r.counts;
  if (c.producers_reaped + c.consumers_reaped + c.redelivered + c.holes_repaired == 0) return;
  spdlog::info("queue '{}': reaped {} producer(s) and {} consumer(s); {} message(s) back for redelivery, "
               "{} hole(s) skipped, in {} us",
               queue, c.producers_reaped, c.consumers_reaped, c.redelivered, c.holes_repaired,
               std::chrono::duration_cast<std::chrono::microseconds>(took).count());
}

}  // namespace

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
    if (!present.contains(name) || !still_named(*detail::mapping_of(watched.queue), path_of(name))) {
      gone.push_back(name);
    } else if (auto lost = detail::segment_lost(*detail::mapping_of(watched.queue))) {
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
    try {
      publish_identity(*detail::mapping_of(watched.queue));
    } catch (const Error& e) {
      spdlog::warn("queue '{}': cannot show its clients that shmqd serves it: {}", name, e.what());
    }
    if (durable) journals_to_start_.insert(name);  // once the repairs waiting are done
  } catch (const Error& e) {
    // Say it once, not every second: the rescan retries quietly.
    if (unusable_[name] != e.what()) spdlog::warn("cannot watch queue '{}': {}", name, e.what());
    unusable_[name] = e.what();
  }
}

std::string Watcher::path_of(const std::string& name) const { return shm_dir_ + "/" + prefix_ + name; }

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
void Watcher::service(Watched& watched) {
  if (detail::segment_lost(*detail::mapping_of(watched.queue))) {  // truncated: the rescan, due now, abandons it
    next_rescan_ = Clock::now();
    return;
  }
  const auto start = Clock::now();
  const auto outcome = repair_queue(*detail::mapping_of(watched.queue));
  if (!outcome) {
    spdlog::debug("queue '{}': its lock is busy; retrying", watched.queue.name());
    watched.settled = false;
    return;
  }
  log_repair(watched.queue.name(), *outcome, Clock::now() - start);
  watched.attached = outcome->attached;
  watched.settled = true;
  watched.polled = false;
  for (const ClientId& id : outcome->attached) {
    // Another pid namespace, dead already (before its pidfd existed), or a
    // repair that waits for a live peer: its entry locks are polled.
    if (clients_.watch(id) == Watch::Polled) watched.polled = true;
  }
}

void Watcher::service_all() {
  for (auto& [name, watched] : queues_) service(watched);
}
// A segment being built (lib: creating_segment_name) whose creator died:
// its creator held a flock on it while building, which the kernel dropped.
// Whoever creates the queue next redoes the work (shmqd's rebuild above all).
void Watcher::remove_abandoned_creations() {
  const std::string prefix = std::string(detail::kCreatingPrefix) + ns_ + ".";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(shm_dir_, ec)) {
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

}  // namespace shmq::daemon
