// A member's side of its group's journal part (journal_part.hpp): taking
// from the journal under the lease, acking the copies, and handing the group
// back to the ring at P. The switch itself, and why it loses and repeats
// nothing: group_journal.cpp.
#include "durable/journal_part.hpp"

#include <algorithm>
#include <exception>

#include "durable/group_journal.hpp"
#include "shm/wait.hpp"

namespace shmq::detail {

using namespace layout;

namespace {

// Only the lease holder reads the journal and writes journal_read/_acked.
bool hold_journal_lease(const Consumer::State& s) {
  const std::uint32_t mine = s.index + 1;
  // acquire: pairs with the release store that gave the lease up (below, or
  // drop_journal_reader's), so the journal_read it left is what we read from.
  std::uint32_t holder = s.g->journal_reader.load(std::memory_order_acquire);
  if (holder == mine) return true;
  // acq_rel: pairs with the same release stores, for a holder that gave the
  // lease up between our load and the CAS.
  return holder == 0 && s.g->journal_reader.compare_exchange_strong(holder, mine, std::memory_order_acq_rel);
}

// Everything below P is handed out: the ring takes over at P.
void finish_journal_part(Consumer::State& s, std::uint64_t to) {
  GroupSlot& g = *s.g;
  g.journal_read.store(to, std::memory_order_relaxed);  // only the lease holder writes it
  // When P is X, the record there was never this group's, but its state word
  // says "closed": clear it before members can look (the read is still closed).
  // acq_rel: pairs with close_ring's CAS that closed it (group_journal.cpp);
  // the release half orders the clearing before the read opens below.
  std::uint64_t closed = make_state(to, kClosed);
  s.map->state_word(s.group, to).compare_exchange_strong(closed, 0, std::memory_order_acq_rel);
  // acquire: pairs with the switch's release of the closed read (close_ring).
  std::uint64_t read = g.read.load(std::memory_order_acquire);
  // acq_rel: members that see the open read (their acquire load in take_next)
  // see P's pin (stored before, seq_cst) and the cleared state word.
  if (read_closed(read)) g.read.compare_exchange_strong(read, to, std::memory_order_acq_rel);
  publish_journal_acked(s);
  notify(s.map->header->data);  // other members may take from the ring again
}

// Caught up with the journal's end: the ring pins the group's records again
// from the journal's current end. Tries the lock only; next time otherwise.
void pin_ring(Consumer::State& s) {
  const SegmentLock lock(*s.map, SegmentLock::TryTag{});
  if (lock.owned()) pin_ring_at_journal_end(*s.map, *s.g);
}

void deliver_from_journal(Consumer::State& s, Message& out) {
  GroupSlot& g = *s.g;
  JournalRecord& r = s.journal_held.emplace_back(s.journal->pop());
  g.journal_read.store(r.end, std::memory_order_relaxed);  // only the lease holder writes it
  out.payload = r.payload;
  out.position = r.position;
  out.sequence = r.sequence;
  out.timestamp_ns = r.timestamp_ns;
  out.producer_id = r.producer_id;
  out.producer_entry = s.map->producer_entry(r.producer_id);
  // relaxed: written by the switch before its seq_cst store of P (which our
  // acquire load of journal_to in take_from_journal saw), or under the lock
  // by drop_journal_reader before its release of the lease (our acquire).
  out.redelivered = r.position < g.journal_redeliver_below.load(std::memory_order_relaxed);
  out.deliveries = out.redelivered ? 2 : 1;  // a journal copy's count is not kept: at least this
  if (out.redelivered) {
    g.redelivered.fetch_add(1, std::memory_order_relaxed);
    s.map->header->redelivered.fetch_add(1, std::memory_order_relaxed);
  }
  count_delivery(s);
}

// One attempt at the group's next record from the journal. False also when
// the journal part has just ended: the ring has the rest.
bool take_from_journal(Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // acquire: pairs with the switch's seq_cst store of P (a release), so the
  // part's fields it stored before are visible.
  if (g.journal_to.load(std::memory_order_acquire) == 0 || !hold_journal_lease(s)) return false;
  if (!s.journal) s.journal.emplace(s.options.journal_dir, m.name, m.max_message);
  for (int attempt = 0; attempt < 2; ++attempt) {
    // acquire: pairs with the stores of P (seq_cst) made by us or a switch.
    const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
    const std::uint64_t read = g.journal_read.load(std::memory_order_relaxed);  // the lease orders it
    if (read >= to) {  // all handed out: the ring takes over, if it has not yet
      // acquire: pairs with the release of the closed read (close_ring) or
      // of the open one (finish_journal_part, by an earlier holder).
      if (read_closed(g.read.load(std::memory_order_acquire))) {
        finish_journal_part(s, to);
      } else {
        publish_journal_acked(s);  // gives back the lease we just took
      }
      return false;
    }
    JournalRecord* next = s.journal->peek(read);
    if (next != nullptr && next->position < to && synced_past(m, next->position)) {
      deliver_from_journal(s, out);
      return true;
    }
    if (to != kNoPosition) {
      // Every record below P is in the files (P was journal_written), so
      // nothing more below P: done, unless the next one waits for its sync.
      if (next == nullptr || next->position >= to) finish_journal_part(s, to);
      return false;
    }
    pin_ring(s);  // caught up with what is synced
  }
  return false;
}

}  // namespace

void publish_journal_acked(Consumer::State& s) {
  GroupSlot& g = *s.g;
  const std::uint64_t read = g.journal_read.load(std::memory_order_relaxed);  // only the lease holder writes it
  const std::uint64_t acked = s.journal_held.empty() ? read : s.journal_held.front().position;
  g.journal_acked.store(acked, std::memory_order_release);  // pairs with release_journal_acked's acquire
  // acquire: pairs with the seq_cst store of P (pin_ring_at_journal_end).
  if (s.journal_held.empty() && read >= g.journal_to.load(std::memory_order_acquire)) {
    g.journal_reader.store(0, std::memory_order_release);  // pairs with hold_journal_lease's acquire
  }
  release_acked(*s.map, s.group);
}

bool journal_work(const GroupSlot& g) {
  // acquire: pairs with the release of the closed read (close_ring).
  if (read_closed(g.read.load(std::memory_order_acquire))) return true;
  // acquire: pairs with the seq_cst stores of P (the switch, pin_ring_at_journal_end).
  const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
  return to != 0 && g.journal_read.load(std::memory_order_relaxed) < to;
}

Status receive_from_journal(Consumer::State& s, Message& out) noexcept {
  // Twice: a cursor that read ahead of the sync may stand in bytes shmqd
  // cut and wrote again after a failed fdatasync (fsyncgate), at other
  // offsets; a fresh cursor reads what the files hold now. Damage that is
  // still there the second time is real.
  for (int attempt = 0;; ++attempt) {
    try {
      return take_from_journal(s, out) ? Status::Ok : Status::Empty;
    } catch (const std::exception& e) {
      s.journal.reset();
      if (attempt == 0) continue;
      s.journal_error = e.what();
      return Status::JournalUnreadable;
    }
  }
}

bool ack_from_journal(Consumer::State& s, std::uint64_t position) {
  const auto it = std::ranges::find(s.journal_held, position, &JournalRecord::position);
  if (it == s.journal_held.end()) return false;
  s.journal_held.erase(it);
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  publish_journal_acked(s);
  return true;
}

std::size_t ack_journal_up_to(Consumer::State& s, std::uint64_t position) {
  const auto before = s.journal_held.size();
  // Held in position order: the front ones.
  while (!s.journal_held.empty() && s.journal_held.front().position <= position) s.journal_held.pop_front();
  const auto acked = before - s.journal_held.size();
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + acked, std::memory_order_relaxed);
  return acked;
}

}  // namespace shmq::detail
