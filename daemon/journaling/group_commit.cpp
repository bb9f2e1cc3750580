// The writer thread of a JournalPipeline: appends every batch the drain
// thread handed over, fdatasyncs once for all of them (group commit), and only
// then publishes journal_written (the ring may now reuse those bytes) and
// journal_synced, and wakes durable confirms. It also writes the checkpoints
// and applies retention.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "journaling/pipeline_shared.hpp"
#include "journaling/store.hpp"
#include "journaling/writer.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "shm/wait.hpp"
#include "health.hpp"

namespace shmq::daemon::pipeline {

using namespace layout;

namespace {

constexpr std::size_t kBatchesPerDequeue = 64;
constexpr std::size_t kMaxBatchesPerCommit = 4096;
constexpr auto kCheckpointPeriod = std::chrono::milliseconds(100);
// After a failed write or sync (disk full), the next attempt.
constexpr auto kRetryDelay = std::chrono::milliseconds(200);

// The groups' acked positions and the producers' journaled sequences.
class CheckpointKeeper {
 public:
  CheckpointKeeper(const detail::Mapping& m, JournaledProducers producers) : m_(m), producers_(std::move(producers)) {}

  // Before appending `batch`: whether a producer in it has no name in the
  // journal yet (then a checkpoint must name it before its first record).
  bool learn_names(const Batch& batch) {
    bool unnamed = false;
    for (const journal::Record& r : batch.records) {
      auto [it, added] = producers_.try_emplace(r.producer_id);
      if (added || it->second.name != current_name(r.producer_id)) {
        // A new producer, or a recycled entry: its sequence starts afresh.
        it->second = {current_name(r.producer_id), 0};
        unnamed = true;
      }
    }
    return unnamed;
  }

  // After appending: the sequences the journal now holds. (Never before: a
  // checkpoint must not claim a sequence whose record a torn tail could lose.)
  void journaled(std::span<const journal::Record> records) {
    for (const journal::Record& r : records) {
      auto& p = producers_[r.producer_id];
      p.sequence = std::max(p.sequence, r.sequence);
    }
  }

  // A checkpoint to write if something changed since the last one written
  // (or `force`); written() once it is in the journal.
  std::optional<journal::Checkpoint> due(bool force) const {
    journal::Checkpoint c;
    c.groups = groups(true);
    for (const auto& [id, p] : producers_) c.producers.push_back({id, p.name, p.sequence});
    if (!force && last_ && last_->groups == c.groups && last_->producers == c.producers) return std::nullopt;
    c.timestamp_ns = detail::unix_time_ns();
    return c;
  }
  void written(const journal::Checkpoint& c) { last_ = c; }

  // Whether `c` changes a delivery count from the last checkpoint written:
  // then it is synced at once, not with the next data (a count must survive
  // a power loss even while nothing is sent: docs/journal.md, "Delivery counts").
  [[nodiscard]] bool changes_counts(const journal::Checkpoint& c) const {
    const auto counts_of = [](const journal::Checkpoint* k, const std::string& group) {
      if (k != nullptr) {
        for (const auto& g : k->groups) {
          if (g.name == group) return std::pair{g.deliveries, g.unlisted};
        }
      }
      return std::pair{std::vector<journal::DeliveryCount>{}, std::uint8_t{0}};
    };
    const journal::Checkpoint* last = last_ ? &*last_ : nullptr;
    return std::any_of(c.groups.begin(), c.groups.end(), [&](const auto& g) {
      return counts_of(last, g.name) != std::pair{g.deliveries, g.unlisted};
    });
  }

  // A group created or deleted since the last checkpoint: a rebuild would
  // not know it (or would bring it back, or in another mode: a group deleted
  // and created again as exclusive), so it is checkpointed at once.
  [[nodiscard]] bool groups_changed() const {
    if (!last_) return true;
    const auto now = groups();
    return !std::equal(now.begin(), now.end(), last_->groups.begin(), last_->groups.end(),
                       [](const auto& a, const auto& b) { return a.name == b.name && a.exclusive == b.exclusive; });
  }

  // Retention's floor: nothing a group has not acked may go.
  [[nodiscard]] std::uint64_t slowest_acked(std::uint64_t otherwise) const {
    std::uint64_t floor = otherwise;
    if (last_) {
      for (const auto& g : last_->groups) floor = std::min(floor, g.acked);
    }
    return floor;
  }

 private:
  static std::string bounded_name(const char* name) { return std::string(name, ::strnlen(name, kNameBytes)); }
  // With their delivery counts only for a checkpoint: the scan costs a load
  // per 64 bytes in flight, too much for every turn of the loop.
  std::vector<journal::GroupPosition> groups(bool with_counts = false) const {
    std::vector<journal::GroupPosition> out;
    std::size_t budget = journal::kMaxCheckpointDeliveries;
    for (std::uint32_t g = 0; g < m_.max_groups; ++g) {
      const GroupSlot& group = m_.groups[g];
      if (group.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
      // mode: written before the state's release store (create_group), which the acquire above pairs with.
      journal::GroupPosition& position = out.emplace_back();
      position.name = bounded_name(group.name);
      position.acked = group.released.load(std::memory_order_acquire);
      position.exclusive = group.mode == static_cast<std::uint32_t>(GroupMode::Exclusive);
      if (with_counts) add_delivery_counts(g, position, budget);
    }
    return out;
  }

  // The group's delivery words over its ring part from its ack to its read
  // cursor, where every record that went back to it (or on to the
  // dead-letter queue) lies: a rebuild gives each record at least its count
  // (rebuild.cpp). Relaxed loads: a snapshot, racing with returns anyway; a
  // count that changes meanwhile differs at the next look, 100 ms later,
  // which checkpoints again (due()). Over the budget, the highest count left
  // out stands for all of them; a move to the dead-letter queue left out is
  // not (it would mark every unlisted record moved): such a record comes
  // again, and its second move is the dead-letter producer's duplicate.
  void add_delivery_counts(std::uint32_t g, journal::GroupPosition& out, std::size_t& budget) const {
    if (!ever_returned(m_.groups[g])) return;
    const std::uint64_t read = m_.groups[g].read.load(std::memory_order_acquire) & ~kReadClosed;
    const std::uint64_t end = std::min(read, out.acked + m_.capacity);
    for (std::uint64_t p = out.acked; p < end; p += kRecordAlign) {
      const std::uint64_t word = m_.delivery_word(g, p).load(std::memory_order_relaxed);
      const std::uint8_t count = state_code(word);
      if (!state_is_for(word, p) || count == 0) continue;
      if (budget > 0) {
        out.deliveries.push_back({p, count});
        --budget;
      } else if (count != kMovedToDeadLetter) {
        out.unlisted = std::max(out.unlisted, count);
      }
    }
  }
  // Whether any record ever went back to the group or on to the dead-letter
  // queue (what writes a delivery word), by its counters (relaxed statistics,
  // as racy as the scan itself): a group that never had one pays no scan.
  static bool ever_returned(const GroupSlot& g) {
    for (const auto* counter : {&g.pending_redelivery, &g.redelivered, &g.nacked, &g.lease_expired, &g.dead_lettered,
                                &g.dropped, &g.expired, &g.rejected}) {
      if (counter->load(std::memory_order_relaxed) != 0) return true;
    }
    return false;
  }
  std::string current_name(std::uint32_t id) const {
    return id < m_.max_producers ? bounded_name(m_.producers[id].name) : std::string();
  }

  const detail::Mapping& m_;
  JournaledProducers producers_;
  std::optional<journal::Checkpoint> last_;
};

class JournalWriterLoop {
 public:
  explicit JournalWriterLoop(JournalPipeline::Shared& s)
      : s_(s),
        keeper_(s.map, journaled_producers(s.dir, s.queue.name(), s.writer->last_checkpoint(), writer_options(s))),
        last_good_sync_(s.writer->synced()) {}

  void run() {
    std::vector<Batch> taken(kBatchesPerDequeue);
    for (;;) {
      const std::size_t n = take_batches(taken);
      if (s_.map.broken()) {
        abandon();
        return;  // and no last checkpoint: the groups now read as none
      }
      if (!pending_.empty() && Clock::now() >= retry_at_ && persist()) pending_.clear();
      if (Clock::now() >= next_checkpoint_ || keeper_.groups_changed()) checkpoint(false);
      if (n == 0 && pending_.empty() && s_.drained.load(std::memory_order_acquire) && s_.batches.size_approx() == 0) {
        break;
      }
      if (n == 0 && !pending_.empty() && s_.drained.load(std::memory_order_acquire) && stop_retrying()) break;
    }
    checkpoint(true);
  }

 private:
  // Waits up to kIdleWake for a batch, then takes every one waiting into this
  // commit: the drain hands over small batches while it keeps up with the
  // producers, and many while we sync. Returns how many it took.
  std::size_t take_batches(std::vector<Batch>& taken) {
    std::size_t total = 0;
    std::size_t got = s_.batches.wait_dequeue_bulk_timed(taken.begin(), taken.size(), kIdleWake);
    while (got != 0) {
      for (std::size_t i = 0; i < got; ++i) pending_.push_back(std::move(taken[i]));
      total += got;
      got = pending_.size() < kMaxBatchesPerCommit ? s_.batches.try_dequeue_bulk(taken.begin(), taken.size()) : 0;
    }
    return total;
  }

  // After a failure: drops what was written since the last good sync, which
  // Linux may have lost while it still reads back fine ("fsyncgate"), and
  // opens the journal again. The records are still in the ring (published
  // written only after their sync) and in pending_, to be written again.
  void reopen() {
    journal::discard_from(s_.dir, s_.queue.name(), last_good_sync_, writer_options(s_));
    s_.writer.emplace(journal::Writer::open(s_.dir, s_.queue.name(), writer_options(s_)));
    // Once per failure, not at every retry: "the journal writes again" ends it.
    if (!std::exchange(reopen_logged_, true)) {
      spdlog::warn("queue '{}': journal reopened; writing again everything since the last good sync (position {})",
                   s_.queue.name(), last_good_sync_);
    }
    rename_producers_ = true;  // the checkpoints that named them may be among what was dropped
  }

  // The segment was truncated under us (bus_guard.hpp). Everything synced
  // before stays. What was written since may hold payloads copied from the
  // zero pages that replaced the ring (the payloads are pointers into it), so
  // it goes: none of it was confirmed durable.
  void abandon() {
    const bool unsynced = !s_.writer || s_.writer->written() > last_good_sync_;
    s_.writer.reset();
    if (unsynced) {
      try {
        journal::discard_from(s_.dir, s_.queue.name(), last_good_sync_, writer_options(s_));
      } catch (const std::exception& e) {
        spdlog::error("queue '{}': cannot cut the journal's unsynced records from position {}: {}", s_.queue.name(),
                      last_good_sync_, e.what());
      }
    }
    spdlog::warn("queue '{}': its segment is gone; journaling stopped (the journal keeps everything synced, below "
                 "position {})",
                 s_.queue.name(), last_good_sync_);
  }

  void writer_failed() {
    s_.writer.reset();
    retry_at_ = Clock::now() + kRetryDelay;
  }

  // Appends the pending batches, syncs, publishes written and synced.
  bool persist() {
    QueueHeader& h = *s_.map.header;
    try {
      if (!s_.writer) reopen();
      // One append for all the batches (one write(2) per MiB), except that a
      // producer the journal has not named yet is checkpointed before its first record.
      std::vector<journal::Record> records;
      for (const Batch& b : pending_) {
        if (keeper_.learn_names(b)) {
          append_unwritten(records);
          records.clear();
          if (!checkpoint(true)) throw std::runtime_error("the checkpoint naming a new producer failed");
        }
        records.insert(records.end(), b.records.begin(), b.records.end());
      }
      append_unwritten(records);
      if (rename_producers_ && !checkpoint(true)) throw std::runtime_error("the checkpoint after a reopen failed");
      rename_producers_ = false;
      const std::uint64_t end = pending_.back().end;
      // The payloads were copied above. If the segment was truncated
      // meanwhile, some copies may be zeros: none of it is synced or
      // published (bus_guard.hpp, "Ordering"); run() then abandons.
      if (s_.map.broken()) return false;
      {
        const ScopedTimer timed(health().journal_sync);
        s_.writer->sync();  // one fdatasync for every batch taken: the group commit
      }
      last_good_sync_ = s_.writer->synced();
      // release: pairs with the seq_cst loads (acquire and more) of the
      // producers in release_floor and of start_position (ring/group.cpp). Only
      // now may the ring reuse these bytes: until the sync succeeded, they
      // are what a failure makes us write again.
      h.journal_written.store(end, std::memory_order_release);
      detail::notify(h.space);
      // relaxed: the release store of journal_synced below carries it.
      if (h.journal_error.exchange(0, std::memory_order_relaxed) != 0) {
        spdlog::info("queue '{}': the journal writes again", s_.queue.name());
      }
      reopen_logged_ = false;
      // Pairs with the acquire loads of wait_durable and of consumers, which
      // receive only what is synced (and see the error cleared).
      h.journal_synced.store(end, std::memory_order_release);
      detail::notify(h.journal);
      detail::notify(h.data);
      return true;
    } catch (const std::exception& e) {  // JournalError(Io) above all; never let it end the daemon
      const int error = errno != 0 ? errno : EIO;
      // relaxed: a report for shmq-stat; nothing is published with it.
      if (h.journal_error.exchange(static_cast<std::uint32_t>(error), std::memory_order_relaxed) == 0) {
        spdlog::error("queue '{}': journal write failed ({}); durable confirms wait, retrying: {}",
                      s_.queue.name(), std::strerror(error), e.what());
      }
      writer_failed();
      return false;
    }
  }

  // After a reopen, some of the records may be in already.
  void append_unwritten(const std::vector<journal::Record>& records) {
    const std::uint64_t written = s_.writer->written();
    const auto first = std::partition_point(records.begin(), records.end(),
                                            [&](const journal::Record& r) { return r.position < written; });
    if (first != records.end()) s_.writer->append({first, records.end()});
    keeper_.journaled(records);
  }

  // Writes a checkpoint if one is due; false when that failed.
  bool checkpoint(bool force) {
    next_checkpoint_ = Clock::now() + kCheckpointPeriod;
    if (!s_.writer) return false;
    auto c = keeper_.due(force);
    if (!c) return true;
    // Read from a truncated segment's zeros (bus_guard.hpp): nothing to keep.
    if (s_.map.broken()) return true;
    try {
      const bool sync = keeper_.changes_counts(*c);
      s_.writer->checkpoint(*c);
      if (sync) s_.writer->sync();  // (and data appended before it, if any: synced early, published as ever)
      keeper_.written(*c);
      retain();
      return true;
    } catch (const std::exception& e) {
      spdlog::error("queue '{}': journal checkpoint failed: {}", s_.queue.name(), e.what());
      writer_failed();
      return false;
    }
  }

  void retain() {
    const JournalSettings& st = s_.settings;
    if (st.retention_bytes == 0 && st.retention_age_ns == 0) return;
    const std::uint64_t floor = keeper_.slowest_acked(s_.writer->written());
    for (const auto& file : s_.writer->retain({st.retention_bytes, st.retention_age_ns}, floor, detail::unix_time_ns())) {
      spdlog::info("queue '{}': retention removed {}", s_.queue.name(), file.string());
    }
  }

  // Stopping with writes that keep failing: give up after a few tries (the
  // records stay in the ring, and the next shmqd journals them).
  bool stop_retrying() { return ++failed_stops_ > 10; }

  JournalPipeline::Shared& s_;
  CheckpointKeeper keeper_;
  std::vector<Batch> pending_;
  Clock::time_point retry_at_{};
  Clock::time_point next_checkpoint_{};
  int failed_stops_ = 0;
  std::uint64_t last_good_sync_;  // the Writer's synced() after its last good fdatasync
  bool rename_producers_ = false;
  bool reopen_logged_ = false;  // since the last good write
};

}  // namespace

void write_loop(JournalPipeline::Shared& s) {
  JournalWriterLoop loop(s);
  loop.run();
}

}  // namespace shmq::daemon::pipeline
