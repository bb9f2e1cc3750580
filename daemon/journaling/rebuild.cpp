#include "journaling/rebuild.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "journaling/store.hpp"
#include "journaling/writer.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/prepared_create.hpp"
#include "recovery/repair.hpp"
#include "unique_fd.hpp"
#include "durable/group_journal.hpp"
#include "instance_lock.hpp"
#include "journaling/binding.hpp"

namespace shmq::daemon {

using namespace layout;

namespace {

struct GroupResume {
  std::string name;
  std::uint64_t from = 0;  // first position it is owed (a record's, or the end)
  bool from_journal = false;  // more than a ring behind the end: it reads the journal first
  bool exclusive = false;     // its mode (GroupMode): an exclusive group comes back exclusive
  std::vector<journal::DeliveryCount> deliveries;  // checkpointed delivery counts, positions increasing
  std::uint8_t unlisted = 0;                       // the count of those the checkpoint did not list
};

// What a rebuilt record's delivery word says: at least one delivery more
// than checkpointed (docs/journal.md, "Delivery counts"). A record moved to
// the dead-letter queue stays moved (a member that takes it acks it).
std::uint8_t rebuilt_count(const GroupResume& g, std::uint64_t position) {
  const auto it = std::lower_bound(g.deliveries.begin(), g.deliveries.end(), position,
                                   [](const journal::DeliveryCount& d, std::uint64_t p) { return d.position < p; });
  const std::uint8_t saved = it != g.deliveries.end() && it->position == position ? it->count : g.unlisted;
  if (saved == kMovedToDeadLetter) return kMovedToDeadLetter;
  return static_cast<std::uint8_t>(std::min<unsigned>(saved + 1u, kDeliveriesSaturated));
}

class Rebuilder {
 public:
  Rebuilder(const std::filesystem::path& dir, std::string name, const QueueOptions& options, bool salvage)
      : dir_(dir),
        name_(std::move(name)),
        options_(options),
        journal_options_(journal::options_for_queue(options.max_message, salvage)) {}

  [[nodiscard]] const RebuildReport& report() const { return report_; }

  void plan() {
    journal_id_ = read_journal_id(dir_);
    if (journal_id_ == 0) {  // a journal from before identities: it gets one now
      journal_id_ = new_journal_id();
      write_queue_options(dir_, options_, journal_id_);
    }
    const journal::Recovery recovery = journal::recover(dir_, name_, journal_options_);
    sync_segments(recovery);
    describe_damage(recovery);
    end_ = journal_end(recovery);
    report_.end_position = end_;
    producers_ = journaled_producers(dir_, name_, recovery.checkpoint, journal_options_);
    if (recovery.checkpoint) plan_groups(*recovery.checkpoint);
    head_ = end_;
    for (const GroupResume& g : groups_) {
      if (!g.from_journal) head_ = std::min(head_, g.from);
    }
    report_.groups = groups_.size();
  }

  // On the new segment, before anyone can open it.
  void fill(const detail::Mapping& m) {
    if (groups_.size() > m.max_groups) throw std::runtime_error("the journal names more groups than the queue has entries");
    std::uint64_t cursor = head_;
    auto records = journal::Cursor::open(dir_, name_, head_, journal_options_);
    while (const auto r = records.next()) {
      if (r->position >= end_) break;
      if (report_.records % 4096 == 0) beat_heartbeat();  // a long rebuild is no hang
      skip_gap(m, cursor, r->position);
      write_record(m, *r);
      ++report_.records;
      if (r->producer_id < m.max_producers) {  // statistics: lag = committed - acked
        auto& messages = m.producers[r->producer_id].messages;
        messages.store(messages.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      }
      cursor = r->position + record_bytes(r->payload.size());
    }
    skip_gap(m, cursor, end_);
    set_groups(m);
    set_producers(m);
    QueueHeader& h = *m.header;
    h.head.store(head_, std::memory_order_relaxed);
    h.tail.store(end_, std::memory_order_relaxed);
    h.journal_written.store(end_, std::memory_order_relaxed);
    h.journal_synced.store(end_, std::memory_order_relaxed);
    h.journal_id.store(journal_id_, std::memory_order_relaxed);  // it continues this journal
  }

 private:
  // The rebuilt queue says everything is synced (consumers get it at once),
  // but a shmqd killed between a write and its sync left pages only in the
  // page cache, which survived if shared memory went some other way than a
  // reboot: they go to disk before anyone is told so.
  static void sync_segments(const journal::Recovery& r) {
    for (const journal::SegmentInfo& segment : r.segments) {
      const UniqueFd fd(::open(segment.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd || ::fdatasync(fd.get()) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot sync " + segment.path.string());
      }
    }
  }

  void describe_damage(const journal::Recovery& r) {
    if (r.tail_cut) {
      report_.damage += "cut a torn tail of " + r.tail_cut->file.string() + " at offset " +
                        std::to_string(r.tail_cut->offset) + "; ";
    }
    for (const journal::Damage& d : r.skipped) {
      report_.damage += "skipped (salvage) " + std::to_string(d.bytes) + " bytes of " + d.file.string() +
                        " at offset " + std::to_string(d.offset) + ", positions " + std::to_string(d.from_position) +
                        ".." + std::to_string(d.to_position) + "; ";
    }
  }

  // Where producers continue: the end of the last record.
  std::uint64_t journal_end(const journal::Recovery& r) {
    const std::uint64_t fallback = std::max(align_up(r.written, kRecordAlign), kFirstPosition);
    if (r.records == 0) return fallback;
    std::uint64_t end = fallback;
    auto last = journal::Cursor::open(dir_, name_, r.written - 1, journal_options_);
    while (const auto rec = last.next()) end = rec->position + record_bytes(rec->payload.size());
    return end;
  }

  // Each group is owed everything from its checkpointed ack. A group more
  // than a ring below the end reads the journal up to the end first.
  void plan_groups(const journal::Checkpoint& c) {
    const std::uint64_t ring_below_end = end_ > options_.capacity ? end_ - options_.capacity : 0;
    std::uint64_t lowest = end_;
    for (const journal::GroupPosition& g : c.groups) {
      const std::uint64_t from = std::min(g.acked, end_);
      groups_.push_back({g.name, from, from < ring_below_end, g.exclusive, g.deliveries, g.unlisted});
      lowest = std::min(lowest, from);
    }
    // Move each start onto the first record at or after it.
    std::vector<std::uint64_t> positions;
    auto records = journal::Cursor::open(dir_, name_, lowest, journal_options_);
    while (const auto r = records.next()) {
      if (r->position >= end_) break;
      positions.push_back(r->position);
    }
    for (GroupResume& g : groups_) {
      const auto it = std::lower_bound(positions.begin(), positions.end(), g.from);
      g.from = it == positions.end() ? end_ : *it;
    }
    positions_ = std::move(positions);
  }

  // Skipped records over [from, to), none across the ring's end.
  static void skip_gap(const detail::Mapping& m, std::uint64_t from, std::uint64_t to) {
    while (from < to) {
      const std::uint64_t room = m.capacity - (from & m.mask);
      const std::uint64_t bytes = std::min(to - from, room);
      m.write_info(from, RecordFields{static_cast<std::uint32_t>(bytes), static_cast<std::uint16_t>(RecordType::Skipped),
                                      0, 0, 0});
      m.commit_record(from);
      from += bytes;
    }
  }

  static void write_record(const detail::Mapping& m, const journal::Record& r) {
    if (r.payload.size() > m.max_message || (r.position & m.mask) + record_bytes(r.payload.size()) > m.capacity) {
      throw std::runtime_error("journal record at position " + std::to_string(r.position) +
                               " does not fit the queue's ring (were its options changed?)");
    }
    m.write_info(r.position, RecordFields{static_cast<std::uint32_t>(r.payload.size()),
                                          static_cast<std::uint16_t>(RecordType::Data),
                                          static_cast<std::uint16_t>(r.producer_id), r.sequence, r.timestamp_ns});
    if (!r.payload.empty()) std::memcpy(m.at(r.position) + sizeof(RecordHeader), r.payload.data(), r.payload.size());
    m.commit_record(r.position);
  }

  // Every record a group is owed waits as a pending redelivery: the group's
  // read cursor is already past them, released still before them. A group
  // that reads the journal first gets them all flagged from there.
  void set_groups(const detail::Mapping& m) {
    for (std::uint32_t g = 0; g < groups_.size(); ++g) {
      const GroupResume& resume = groups_[g];
      GroupSlot& slot = m.groups[g];
      std::memcpy(slot.name, resume.name.data(), std::min(resume.name.size(), kNameBytes - 1));
      const auto below = std::lower_bound(positions_.begin(), positions_.end(), resume.from) - positions_.begin();
      const auto at_head = static_cast<std::ptrdiff_t>(first_index_at_head());
      slot.start_messages.store(static_cast<std::uint64_t>(std::max<std::ptrdiff_t>(below - at_head, 0)),
                                std::memory_order_relaxed);
      // No active member yet: the first to join becomes it, and takes what
      // the group is owed (all flagged) first.
      slot.mode = static_cast<std::uint32_t>(resume.exclusive ? GroupMode::Exclusive : GroupMode::Competing);
      slot.active.store(0, std::memory_order_relaxed);
      slot.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_relaxed);
      restore_delivery_counts(m, g);
      if (resume.from_journal) {
        detail::start_in_journal(slot, resume.from, end_);
        continue;
      }
      std::uint64_t owed = 0;
      for (std::uint64_t p = resume.from; p < end_;) {
        RecordFields h;
        const std::uint64_t span = detail::record_span(m, p, &h);
        if (span == 0) throw std::runtime_error("rebuilt ring is inconsistent at position " + std::to_string(p));
        const bool data = h.type == static_cast<std::uint16_t>(RecordType::Data);
        m.state_word(g, p).store(make_state(p, data ? kPendingRedelivery : kAcked), std::memory_order_relaxed);
        owed += data ? 1 : 0;
        p += span;
      }
      slot.read.store(end_, std::memory_order_relaxed);
      slot.released.store(resume.from, std::memory_order_relaxed);
      slot.pending_redelivery.store(owed, std::memory_order_relaxed);
    }
  }

  // Every data record the group is owed that the ring holds gets a delivery
  // word: the group may have received it since the checkpoint (or, in
  // flight then, it had one delivery more than its word said), so it counts
  // one more than checkpointed; a first delivery then says 2, one more than
  // the truth at worst, never less (docs/journal.md, "Delivery counts"). A
  // group more than a ring behind reads the records below the ring from the
  // journal: their words would be the ring's records' (the same chunks), so
  // they keep none.
  void restore_delivery_counts(const detail::Mapping& m, std::uint32_t g) const {
    const GroupResume& resume = groups_[g];
    for (std::uint64_t p = std::max(resume.from, head_); p < end_;) {
      RecordFields h;
      const std::uint64_t span = detail::record_span(m, p, &h);
      if (span == 0) throw std::runtime_error("rebuilt ring is inconsistent at position " + std::to_string(p));
      if (h.type == static_cast<std::uint16_t>(RecordType::Data)) {
        m.delivery_word(g, p).store(make_state(p, rebuilt_count(resume, p)), std::memory_order_relaxed);
      }
      p += span;
    }
  }

  [[nodiscard]] std::uint64_t first_index_at_head() const {
    return static_cast<std::uint64_t>(std::lower_bound(positions_.begin(), positions_.end(), head_) -
                                      positions_.begin());
  }

  void set_producers(const detail::Mapping& m) {
    for (const auto& [id, p] : producers_) {
      if (id >= m.max_producers || p.name.empty() || p.name.size() >= kNameBytes) continue;
      ProducerSlot& slot = m.producers[id];
      std::memcpy(slot.name, p.name.data(), p.name.size());
      slot.last_seq.store(p.sequence, std::memory_order_relaxed);
      slot.state.store(static_cast<std::uint32_t>(SlotState::Detached), std::memory_order_relaxed);
      ++report_.producers;
    }
  }

  std::filesystem::path dir_;
  std::string name_;
  QueueOptions options_;
  journal::Options journal_options_;
  RebuildReport report_;
  std::uint64_t end_ = kFirstPosition;
  std::uint64_t head_ = kFirstPosition;
  std::vector<GroupResume> groups_;
  std::vector<std::uint64_t> positions_;  // of the records from the lowest group start to the end
  JournaledProducers producers_;
  std::uint64_t journal_id_ = 0;
};

}  // namespace

RebuildReport rebuild_queue(const std::string& ns, const std::string& name, const std::filesystem::path& dir,
                            bool salvage) {
  const auto options = read_queue_options(dir);
  if (!options) throw std::runtime_error("no queue.json in " + dir.string());
  Rebuilder rebuilder(dir, name, *options, salvage);
  rebuilder.plan();
  // The segment's owner and group as they were: a root shmqd gives back the
  // owner (another is the owner itself, as before); the group, any shmqd that
  // is root or a member. Not permitted: the rebuild fails (PermissionDenied,
  // logged) rather than hand the queue to another group.
  const uid_t owner = ::geteuid() == 0 ? read_queue_owner(dir) : kNoOwner;
  detail::QueueAccess::create_prepared(
      name, *options, ns, [&](const detail::Mapping& m) { rebuilder.fill(m); }, owner);
  return rebuilder.report();
}

}  // namespace shmq::daemon
