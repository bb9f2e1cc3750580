// The shared-memory side of groups that read the journal: the switch to the
// journal and back, and what producers and acks see of it.
#include "group_journal.hpp"

#include <algorithm>

#include "recovery.hpp"
#include "wait.hpp"

namespace shmq::detail {

using namespace layout;

std::uint64_t ring_pin(const GroupSlot& g) {
  // Loaded in the reverse order of the switch's stores (journal_from, then
  // journal_to, each seq_cst): a journal_to of this switch comes with its
  // journal_from, and a stale pair only ever yields a lower pin.
  const std::uint64_t to = g.journal_to.load(std::memory_order_seq_cst);
  const std::uint64_t from = g.journal_from.load(std::memory_order_seq_cst);
  const std::uint64_t released = g.released.load(std::memory_order_seq_cst);
  if (to == 0 || released < from) return released;  // switching, or the ring part before X
  return std::max(released, to);  // the journal part pins the ring at P (nowhere while P is open)
}

bool in_journal_part(const GroupSlot& g, std::uint64_t released) {
  const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
  return to != 0 && released >= g.journal_from.load(std::memory_order_acquire) && released < to;
}

std::uint64_t past_journal_part(const GroupSlot& g, std::uint64_t position) {
  return in_journal_part(g, position) ? g.journal_to.load(std::memory_order_acquire) : position;
}

bool release_journal_acked(GroupSlot& g, std::uint64_t& released) {
  bool moved = false;
  while (in_journal_part(g, released)) {
    // acquire: pairs with the reader's release store of journal_acked.
    const std::uint64_t target =
        std::min(g.journal_acked.load(std::memory_order_acquire), g.journal_to.load(std::memory_order_acquire));
    if (target <= released) break;
    // seq_cst: as in release_acked, producers' floor scans pair with it.
    if (g.released.compare_exchange_strong(released, target, std::memory_order_seq_cst,
                                           std::memory_order_acquire)) {
      released = target;
      moved = true;
    }
  }
  return moved;
}

namespace {

// Closes the group's ring read where it stands and returns that position, X.
// A member whose state CAS took the record at X just before the close keeps
// it (its read CAS fails, harmlessly): X moves past it, into the ring part.
std::uint64_t close_ring(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  std::uint64_t read = g.read.load(std::memory_order_acquire);
  while (!read_closed(read) &&
         !g.read.compare_exchange_weak(read, read | kReadClosed, std::memory_order_acq_rel)) {
  }
  std::uint64_t at = read_position(read);
  // Bounded against a hostile peer's state words; twice is all it takes.
  for (std::uint64_t steps = 0; steps < m.chunks; ++steps) {
    std::atomic<std::uint64_t>& state = m.state_word(group, at);
    std::uint64_t word = state.load(std::memory_order_acquire);
    if (state_is_for(word, at) && state_code(word) == kClosed) return at;  // a settle repeating a switch
    // The CAS stops any member from taking the record now: members only take
    // a state word that is not yet for its position.
    if (!state_is_for(word, at) &&
        state.compare_exchange_strong(word, make_state(at, kClosed), std::memory_order_acq_rel)) {
      return at;
    }
    if (!state_is_for(word, at)) continue;  // a stale lap's word changed under us: look again
    const std::uint64_t span = record_span(m, at);
    if (span == 0) return at;  // corrupt: the journal reads from here, the ring part stops short
    at += span;
    // Only we move a closed read, and nobody took `at` (no read ever stood there).
    g.read.store(at | kReadClosed, std::memory_order_release);
  }
  return at;
}

void switch_to_journal(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  // 0 first: until the switch is complete, ring_pin keeps pinning `released`.
  g.journal_to.store(0, std::memory_order_seq_cst);
  const std::uint64_t from = close_ring(m, group);
  g.journal_read.store(from, std::memory_order_relaxed);
  g.journal_acked.store(from, std::memory_order_relaxed);
  g.journal_redeliver_below.store(0, std::memory_order_relaxed);
  g.journal_reader.store(0, std::memory_order_relaxed);
  g.journal_from.store(from, std::memory_order_seq_cst);
  // seq_cst (a release too): members that see P open see every field above.
  g.journal_to.store(kNoPosition, std::memory_order_seq_cst);
  m.header->groups_to_journal.fetch_add(1, std::memory_order_relaxed);
  notify(m.header->data);  // members waiting on the ring: the journal has their records
}

}  // namespace

bool offload_slow_groups(const Mapping& m) {
  const QueueHeader& h = *m.header;
  const std::uint64_t head = h.head.load(std::memory_order_acquire);
  // A group that has taken everything synced waits for the disk, not the
  // other way round: the journal would not serve it any sooner.
  const std::uint64_t synced = h.journal_synced.load(std::memory_order_acquire);
  bool any = false;
  for (std::uint32_t i = 0; i < m.max_groups; ++i) {
    GroupSlot& g = m.groups[i];
    if (g.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
    const std::uint64_t read = g.read.load(std::memory_order_acquire);
    if (read_closed(read) || read >= synced) continue;
    const std::uint64_t released = g.released.load(std::memory_order_acquire);
    // Not the group holding the oldest record; or its previous journal part
    // is not yet acked (one journal part at a time).
    if (released > head || in_journal_part(g, released)) continue;
    switch_to_journal(m, i);
    any = true;
  }
  return any;
}

void start_in_journal(GroupSlot& g, std::uint64_t from, std::uint64_t redeliver_below) {
  g.read.store(from | kReadClosed, std::memory_order_relaxed);
  g.released.store(from, std::memory_order_relaxed);
  g.journal_read.store(from, std::memory_order_relaxed);
  g.journal_acked.store(from, std::memory_order_relaxed);
  g.journal_redeliver_below.store(redeliver_below, std::memory_order_relaxed);
  g.journal_reader.store(0, std::memory_order_relaxed);
  g.journal_from.store(from, std::memory_order_relaxed);
  g.journal_to.store(kNoPosition, std::memory_order_relaxed);
}

void settle_journal_switch(const Mapping& m, std::uint32_t group) {
  const GroupSlot& g = m.groups[group];
  if (g.journal_to.load(std::memory_order_acquire) == 0 && read_closed(g.read.load(std::memory_order_acquire))) {
    switch_to_journal(m, group);
  }
}

std::uint64_t pin_ring_at_journal_end(const Mapping& m, GroupSlot& g) {
  QueueHeader& h = *m.header;
  // Inside a groups_epoch window, like a group's creation: producers' floor
  // scans that overlap it retry, and each scan before it loaded
  // journal_written inside its own window (release_floor), so no floor any
  // producer publishes can pass the P read here.
  h.groups_epoch.fetch_add(1, std::memory_order_seq_cst);
  const std::uint64_t end = h.journal_written.load(std::memory_order_seq_cst);
  g.journal_to.store(end, std::memory_order_seq_cst);
  h.groups_epoch.fetch_add(1, std::memory_order_seq_cst);
  return end;
}

void drop_journal_reader(GroupSlot& g, std::uint32_t index) {
  if (g.journal_reader.load(std::memory_order_acquire) != index + 1) return;
  const std::uint64_t read = g.journal_read.load(std::memory_order_relaxed);
  const std::uint64_t acked = g.journal_acked.load(std::memory_order_relaxed);
  if (read != acked) {
    if (g.journal_redeliver_below.load(std::memory_order_relaxed) < read) {
      g.journal_redeliver_below.store(read, std::memory_order_relaxed);
    }
    g.journal_read.store(acked, std::memory_order_relaxed);
  }
  g.journal_reader.store(0, std::memory_order_release);  // pairs with the next reader's CAS
}

}  // namespace shmq::detail
