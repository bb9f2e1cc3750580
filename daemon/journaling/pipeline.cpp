#include "journaling/pipeline.hpp"

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "journaling/store.hpp"
#include "journaling/writer.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "recovery/repair.hpp"
#include "shm/wait.hpp"

namespace shmq::daemon {

using namespace layout;
using Clock = std::chrono::steady_clock;

namespace {

// A batch is cut at whichever comes first.
constexpr std::size_t kMaxBatchRecords = 4096;
constexpr std::uint64_t kMaxBatchBytes = 4u << 20;
constexpr std::size_t kBatchesPerDequeue = 64;
constexpr std::size_t kMaxBatchesPerCommit = 4096;
constexpr auto kCheckpointPeriod = std::chrono::milliseconds(100);
// After a failed write or sync (disk full), the next attempt.
constexpr auto kRetryDelay = std::chrono::milliseconds(200);
// How long the threads sleep at most before looking at the stop flag.
constexpr auto kIdleWake = std::chrono::milliseconds(50);
// The drain naps this long between looks while records came within the spell
// (an fdatasync takes longer than the nap, so confirms hardly wait for it).
constexpr auto kBusyNap = std::chrono::microseconds(50);
constexpr auto kBusySpell = std::chrono::milliseconds(20);

// Committed records of the ring, and the position after the last one looked
// at. The payloads point into the ring (valid until journal_written passes,
// which the writer publishes only once they are synced).
struct Batch {
  std::vector<journal::Record> records;
  std::uint64_t end = 0;
  bool stuck = false;  // stopped at a committed record with an impossible header
};

}  // namespace

struct JournalPipeline::Shared {
  Queue queue;
  const detail::Mapping& map;
  std::filesystem::path dir;
  JournalSettings settings;
  std::optional<journal::Writer> writer;  // empty after a failure, until reopened
  moodycamel::BlockingConcurrentQueue<Batch> batches;
  std::uint64_t drain_from = 0;    // where the drain starts
  std::uint64_t journaled_end = 0; // the journal's written() at open: records below are in it
  std::atomic<bool> stopping{false};
  std::atomic<bool> drained{false};  // the drain thread enqueued its last batch

  Shared(Queue q, std::filesystem::path d, const JournalSettings& s)
      : queue(std::move(q)), map(*queue.mapping()), dir(std::move(d)), settings(s) {}
};

namespace {

journal::Options writer_options(const JournalPipeline::Shared& s) {
  journal::Options o = journal::options_for_queue(s.map.max_message, s.settings.salvage);
  o.segment_bytes = s.settings.segment_bytes;
  return o;
}

// ---- the drain thread --------------------------------------------------------

bool committed(const detail::Mapping& m, std::uint64_t position) {
  // acquire: pairs with the producer's release store of the commit word,
  // making the header and payload visible.
  return m.commit_word(position).load(std::memory_order_acquire) == position;
}

Batch collect(const detail::Mapping& m, std::uint64_t from, std::uint64_t journaled_end) {
  Batch b;
  b.end = from;
  std::uint64_t bytes = 0;
  while (b.records.size() < kMaxBatchRecords && bytes < kMaxBatchBytes && committed(m, b.end)) {
    RecordHeader h;
    const std::uint64_t span = detail::record_span(m, b.end, &h);
    if (span == 0) {
      b.stuck = true;
      break;
    }
    if (h.type == static_cast<std::uint16_t>(RecordType::Data) && b.end >= journaled_end) {
      const std::byte* payload = m.at(b.end) + sizeof(RecordHeader);
      b.records.push_back({b.end, h.producer_id, h.sequence, h.timestamp_ns, {payload, h.length}});
      bytes += h.length;
    }
    b.end += span;
  }
  return b;
}

// While records keep coming, naps: registered as a futex waiter, the drain
// would make every commit of every producer pay a wake-up system call. Idle,
// it sleeps on the futex (no CPU).
void wait_for_commit(const JournalPipeline::Shared& s, std::uint64_t cursor, Clock::time_point last_record) {
  const detail::Mapping& m = s.map;
  if (Clock::now() - last_record < kBusySpell) {
    std::this_thread::sleep_for(kBusyNap);
    return;
  }
  detail::wait_until(
      m.header->data, Clock::now() + kIdleWake, 64,
      [&] { return committed(m, cursor) || s.stopping.load(std::memory_order_acquire); },
      [] { return detail::kMaxSleep; });
}

void drain_loop(JournalPipeline::Shared& s) {
  const detail::Mapping& m = s.map;
  moodycamel::ProducerToken token(s.batches);  // one producer: batches stay in order
  std::uint64_t cursor = s.drain_from;
  std::uint64_t stuck_at = kNoPosition;
  Clock::time_point last_record{};
  for (;;) {
    Batch batch = collect(m, cursor, s.journaled_end);
    // A truncated segment (bus_guard.hpp): collect may have read the zero
    // pages that replaced it. Hand over nothing more; the writer drops what
    // it has not synced.
    if (m.broken()) break;
    if (batch.end != cursor) {
      cursor = batch.end;
      last_record = Clock::now();
      s.batches.enqueue(token, std::move(batch));
      continue;
    }
    // Everything committed so far is handed over: stop here when asked.
    if (s.stopping.load(std::memory_order_acquire)) break;
    if (batch.stuck) {
      // A hostile peer's bytes (or a bug): nothing after them can be
      // journaled; say so once, then look again now and then.
      if (std::exchange(stuck_at, cursor) != cursor) {
        spdlog::error("queue '{}': impossible record header at position {}; journaling stops there", m.name, cursor);
      }
      std::this_thread::sleep_for(kIdleWake);
      continue;
    }
    wait_for_commit(s, cursor, last_record);
  }
  s.drained.store(true, std::memory_order_release);
}

// ---- the writer thread -------------------------------------------------------

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
    c.groups = groups();
    for (const auto& [id, p] : producers_) c.producers.push_back({id, p.name, p.sequence});
    if (!force && last_ && last_->groups == c.groups && last_->producers == c.producers) return std::nullopt;
    c.timestamp_ns = detail::unix_time_ns();
    return c;
  }
  void written(const journal::Checkpoint& c) { last_ = c; }

  // A group created or deleted since the last checkpoint: a rebuild would
  // not know it (or would bring it back), so it is checkpointed at once.
  [[nodiscard]] bool groups_changed() const {
    if (!last_) return true;
    const auto now = groups();
    return !std::equal(now.begin(), now.end(), last_->groups.begin(), last_->groups.end(),
                       [](const auto& a, const auto& b) { return a.name == b.name; });
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
  std::vector<journal::GroupPosition> groups() const {
    std::vector<journal::GroupPosition> out;
    for (std::uint32_t g = 0; g < m_.max_groups; ++g) {
      const GroupSlot& group = m_.groups[g];
      if (group.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
      out.push_back({bounded_name(group.name), group.released.load(std::memory_order_acquire)});
    }
    return out;
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
      s_.writer->sync();  // one fdatasync for every batch taken: the group commit
      last_good_sync_ = s_.writer->synced();
      // release: pairs with the producers' acquire in release_floor. Only
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
      s_.writer->checkpoint(*c);
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

JournalPipeline::JournalPipeline(Queue queue, std::filesystem::path dir, const JournalSettings& settings)
    : shared_(std::make_unique<Shared>(std::move(queue), std::move(dir), settings)) {
  Shared& s = *shared_;
  std::filesystem::create_directories(s.dir);
  write_queue_options(s.dir, options_of(s.queue));
  s.writer.emplace(journal::Writer::open(s.dir, s.queue.name(), writer_options(s)));
  const journal::Recovery& found = s.writer->recovery();
  if (found.tail_cut) {
    spdlog::warn("queue '{}': cut a torn journal tail in {} at offset {}", s.queue.name(),
                 found.tail_cut->file.string(), found.tail_cut->offset);
  }
  QueueHeader& h = *s.map.header;
  s.journaled_end = s.writer->written();
  // Never below the ring's first position: a segment whose header says less
  // (made before durable queues kept it, or scribbled) would have us read
  // position 0, where no record starts.
  s.drain_from = std::max(h.journal_written.load(std::memory_order_acquire), kFirstPosition);
  // A daemon that died between its write and its sync: sync now, so synced
  // covers everything the journal holds.
  s.writer->sync();
  h.journal_synced.store(s.drain_from, std::memory_order_release);
  detail::notify(h.journal);
  writer_ = std::thread([&s] {
    JournalWriterLoop loop(s);
    loop.run();
  });
  drain_ = std::thread([&s] { drain_loop(s); });
}

JournalPipeline::~JournalPipeline() {
  shared_->stopping.store(true, std::memory_order_release);
  drain_.join();
  writer_.join();
}

}  // namespace shmq::daemon
