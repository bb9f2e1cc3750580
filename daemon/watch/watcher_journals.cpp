// Watcher: the journals of durable queues. Queues whose segment is gone are
// rebuilt from their journal; a watched durable queue's journal pipeline is
// set up (retried while that fails); the journal of a queue deleted behind
// shmq's back is set aside.
#include "watch/watcher.hpp"

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "instance_lock.hpp"
#include "journaling/binding.hpp"
#include "journaling/rebuild.hpp"
#include "journal/journal.hpp"
#include "journaling/store.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "health.hpp"

namespace shmq::daemon {

namespace {

// A journal that cannot be set up (a full disk) is tried again this often; a
// segment that does not continue its journal, this often (quietly).
constexpr auto kJournalRetry = std::chrono::milliseconds(200);
constexpr auto kConflictRetry = std::chrono::seconds(1);
// A journal the rebuild refused is tried again this often (it may be mended).
constexpr auto kRebuildRetry = std::chrono::seconds(10);

// The errno behind a failure, for shmq-stat.
int error_number(const std::exception& e) {
  if (const auto* system = dynamic_cast<const std::system_error*>(&e)) return system->code().value();
  return errno != 0 ? errno : EIO;
}

}  // namespace

// A durable queue whose journal is here but whose segment is not (a reboot,
// a power loss) is created anew from the journal, before clients come.
void Watcher::rebuild_missing_queues() {
  const auto root = journal::journals_root(journal_.data_dir);
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
      health().rebuild.observe(Clock::now() - start);
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
  // No room in the shm directory is no damage: tried again at every rescan.
  const auto* error = dynamic_cast<const Error*>(&e);
  const bool no_space = error != nullptr && error->code() == Errc::NoSpace;
  failed.next = Clock::now() + (no_space ? std::chrono::seconds(1) : kRebuildRetry);
  if (failed.error == e.what()) return;
  failed.error = e.what();
  spdlog::error("queue '{}' not rebuilt from its journal {}: {}{}", name, dir.string(), e.what(),
                no_space ? " (retried every second)"
                : journal_.settings.salvage ? "" : " (shmqd --salvage skips damage, reporting what it loses)");
}
void Watcher::start_next_journal() {
  if (journals_to_start_.empty()) return;
  const std::string name = *journals_to_start_.begin();
  journals_to_start_.erase(journals_to_start_.begin());
  if (const auto it = queues_.find(name); it != queues_.end()) start_journal(name, it->second.queue);
}

void Watcher::start_journal(const std::string& name, const Queue& queue) {
  layout::QueueHeader& h = *detail::mapping_of(queue)->header;
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
  layout::QueueHeader& h = *detail::mapping_of(queue)->header;
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
}  // namespace shmq::daemon
