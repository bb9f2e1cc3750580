// The shared-memory side of groups that read the journal: the switch to the
// journal and back, and what producers and acks see of it.
//
// The switch, and why it loses and repeats nothing (under the segment lock,
// while members take, ack and release lock-free):
//
// 1. journal_to = 0: until the switch is complete, ring_pin pins `released`,
//    so the ring keeps every record of [released, ...) while we look at it.
// 2. close_ring: the read cursor gets kReadClosed and the record at it a
//    kClosed state word, so no member takes a new record; X0 is where the
//    read stopped (past a record a member took in the same instant).
//    Everything in [released, X0) was taken: it is in flight (a member holds
//    a view into the ring), acked, or a pending redelivery (its holder died,
//    or a rebuild could not know who had it), which members take by CAS on
//    the state word (take_redelivery), oldest first.
// 3. lower_journal_from: pending redeliveries nobody holds need not stay in
//    the ring. The trailing run of [released, X0) whose data records are all
//    pending (and whose other records are padding or skipped, in no journal)
//    moves into the journal part: each pending word is CASed, bottom up, to
//    kClosed, a code no member takes, and pending_redelivery drops by one per
//    CAS. A member's take that wins the race makes our CAS fail: that record
//    is in flight now, so it, and everything below it, stays in the ring part
//    (X goes above it) and the records we closed below it go back to pending
//    (reopen_below, counting first as release_consumer does). A member never
//    takes a kClosed record, and only the lock holder changes kClosed words,
//    so after the pass the words of [X, X0) are final: kClosed, or records of
//    no journal. Acked and in-flight data records end the run: nothing a
//    group acked is delivered again, and no record a member holds loses its
//    ring bytes. Acked records above pending ones (members that ack out of
//    order) so keep those pending ones in the ring part, where a member must
//    take them.
// 4. journal_read = journal_acked = X, journal_redeliver_below = X0 when X
//    went down (the records of [X, X0) come from the journal flagged), then
//    journal_from = X and journal_to = kNoPosition (each seq_cst): the group
//    now pins the ring only at its ring part [released, X), if any.
//
// A maker that dies anywhere leaves journal_to = 0 and the read closed;
// settle_journal_switch repeats the switch. close_ring finds its kClosed word
// and returns the same X0; kClosed data words below X0 are this switch's own
// (a new switch waits until the previous journal part is released, so the
// earlier ones all lie below `released`), so the repeated pass counts them as
// closed already and reopens those it leaves in the ring part. Counting at
// each CAS keeps pending_redelivery exact at every step (or one too high,
// which costs members a look, never a record).
#include "durable/group_journal.hpp"

#include <algorithm>

#include "recovery/repair.hpp"
#include "shm/groups_epoch.hpp"
#include "shm/wait.hpp"

namespace shmq::detail {

using namespace layout;

std::uint64_t ring_pin(const GroupSlot& g) {
  // Loaded in the reverse order of the switch's stores (journal_from, then
  // journal_to, each seq_cst): a journal_to of this switch comes with its
  // journal_from, and a stale pair only ever yields a lower pin.
  const std::uint64_t to = g.journal_to.load(std::memory_order_seq_cst);
  const std::uint64_t from = g.journal_from.load(std::memory_order_seq_cst);
  // seq_cst: pairs with the members' seq_cst CAS of released (release_acked).
  const std::uint64_t released = g.released.load(std::memory_order_seq_cst);
  if (to == 0 || released < from) return released;  // switching, or the ring part before X
  return std::max(released, to);  // the journal part pins the ring at P (nowhere while P is open)
}

bool in_journal_part(const GroupSlot& g, std::uint64_t released) {
  // acquire: pairs with the switch's seq_cst stores of journal_from and P
  // (and pin_ring_at_journal_end's of P).
  const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
  return to != 0 && released >= g.journal_from.load(std::memory_order_acquire) && released < to;
}

std::uint64_t past_journal_part(const GroupSlot& g, std::uint64_t position) {
  // acquire: as in in_journal_part.
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
  // acquire (load and CAS): pairs with the members' CAS of read
  // (advance_read); the CAS's release half publishes the close to
  // take_next's acquire load.
  std::uint64_t read = g.read.load(std::memory_order_acquire);
  while (!read_closed(read) &&
         !g.read.compare_exchange_weak(read, read | kReadClosed, std::memory_order_acq_rel)) {
  }
  std::uint64_t at = read_position(read);
  // Bounded against a hostile peer's state words; twice is all it takes.
  for (std::uint64_t steps = 0; steps < m.chunks; ++steps) {
    std::atomic<std::uint64_t>& state = m.state_word(group, at);
    // acquire: pairs with a member's take CAS of the same word.
    std::uint64_t word = state.load(std::memory_order_acquire);
    if (state_is_for(word, at) && state_code(word) == kClosed) return at;  // a settle repeating a switch
    // The CAS stops any member from taking the record now: members only take
    // a state word that is not yet for its position. acq_rel: against their
    // take CAS of the same word; exactly one wins.
    if (!state_is_for(word, at) &&
        state.compare_exchange_strong(word, make_state(at, kClosed), std::memory_order_acq_rel)) {
      return at;
    }
    if (!state_is_for(word, at)) continue;  // a stale lap's word changed under us: look again
    const std::uint64_t span = record_span(m, at);
    if (span == 0) return at;  // corrupt: the journal reads from here, the ring part stops short
    at += span;
    // Only we move a closed read, and nobody took `at` (no read ever stood there).
    // release: pairs with take_next's and journal_work's acquire loads of read.
    g.read.store(at | kReadClosed, std::memory_order_release);
  }
  return at;
}

// After reading the header at `p`: was the record still unreleased, so the
// bytes read were its own? (released only moves past acked records; while
// journal_to is 0 the ring keeps everything from released on.)
bool still_unreleased(const GroupSlot& g, std::uint64_t p) {
  // Orders the reads above before the load of released (a seqlock's second load).
  std::atomic_thread_fence(std::memory_order_acquire);
  return !at_or_after(g.released.load(std::memory_order_relaxed), p + 1);
}

// One record of [released, X0) as the lowering sees it.
struct Seen {
  std::uint64_t span = 0;  // 0: corrupt header
  bool data = false;
  std::uint64_t word = 0;
};

Seen look(const Mapping& m, std::uint32_t group, std::uint64_t p) {
  RecordFields h;
  Seen seen;
  seen.span = record_span(m, p, &h);
  seen.data = h.type == static_cast<std::uint16_t>(RecordType::Data);
  // acquire: pairs with the CAS of a member's take and the holder's release
  // store of its ack.
  seen.word = m.state_word(group, p).load(std::memory_order_acquire);
  return seen;
}

// Can the record move into the journal part: a redelivery nobody holds
// (pending, or closed by an earlier pass of this switch), or no data at all.
bool movable(const Seen& seen, std::uint64_t p) {
  if (!seen.data) return true;
  const std::uint8_t code = state_code(seen.word);
  return state_is_for(seen.word, p) && (code == kPendingRedelivery || code == kClosed);
}

// Walks [released, to) calling visit(p, seen) for each record; restarts at
// released when it overtakes the walk (the bytes behind it may be reused).
// False when a header is impossible or the walk does not land on `to`.
template <class Visit>
bool walk_taken(const Mapping& m, std::uint32_t group, std::uint64_t to, Visit&& visit) {
  const GroupSlot& g = m.groups[group];
  // acquire (here and below): pairs with the members' seq_cst CAS of released.
  std::uint64_t p = g.released.load(std::memory_order_acquire);
  for (std::uint64_t steps = 0; p != to; ++steps) {
    if (steps > 2 * m.chunks || !at_or_after(to, p)) return false;  // bounded against a hostile peer's bytes
    const Seen seen = look(m, group, p);
    if (!still_unreleased(g, p)) {
      p = g.released.load(std::memory_order_acquire);
      continue;
    }
    if (seen.span == 0) return false;
    visit(p, seen);
    p += seen.span;
  }
  return true;
}

// Where the trailing run of movable records of [released, x0) starts (x0
// when there is none, or when the walk cannot tell).
std::uint64_t movable_run(const Mapping& m, std::uint32_t group, std::uint64_t x0) {
  // acquire: pairs with the members' seq_cst CAS of released.
  std::uint64_t run = m.groups[group].released.load(std::memory_order_acquire);
  const bool ok = walk_taken(m, group, x0, [&](std::uint64_t p, const Seen& seen) {
    if (!movable(seen, p)) run = p + seen.span;
  });
  return ok ? run : x0;
}

// Closes, bottom up, every pending redelivery of [run, x0). Returns X: the
// record after the last one a member took before our CAS (run when none).
// Correct from any `run` (every record is looked at again); movable_run only
// spares closing records that would have to be reopened.
std::uint64_t close_run(const Mapping& m, std::uint32_t group, std::uint64_t run, std::uint64_t x0) {
  GroupSlot& g = m.groups[group];
  std::uint64_t from = run;
  const bool ok = walk_taken(m, group, x0, [&](std::uint64_t p, const Seen& seen) {
    if (!at_or_after(p, from)) return;  // below the run (the walk starts at released)
    if (!seen.data) return;
    std::uint64_t word = seen.word;
    if (state_is_for(word, p) && state_code(word) == kClosed) return;  // closed by a dead maker's pass
    // acq_rel: pairs with take_redelivery's CAS; exactly one of the two wins.
    if (state_is_for(word, p) && state_code(word) == kPendingRedelivery &&
        m.state_word(group, p).compare_exchange_strong(word, make_state(p, kClosed), std::memory_order_acq_rel)) {
      g.pending_redelivery.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    from = p + seen.span;  // a member holds (or held) it: the ring part ends above it
  });
  if (!ok) return x0;
  // Never below released: what lies below it is gone, and it may have passed
  // records the walk did not see (taken and acked before it got there). From
  // here on it can pass only records of no journal: every data record of
  // [X, x0) is closed, and nobody acks a closed record. acquire: pairs with
  // the members' seq_cst CAS of released.
  const std::uint64_t released = g.released.load(std::memory_order_acquire);
  if (at_or_after(released, from)) from = at_or_after(released, x0) ? x0 : released;
  return from;
}

// The records this switch closed below X go back to pending: members take
// them from the ring part. (Counted first, as in release_consumer.)
void reopen_below(const Mapping& m, std::uint32_t group, std::uint64_t x) {
  GroupSlot& g = m.groups[group];
  bool any = false;
  // A walk that fails (corrupt bytes) leaves the rest closed: as undeliverable
  // as the corrupt record it stopped at.
  (void)walk_taken(m, group, x, [&](std::uint64_t p, const Seen& seen) {
    if (!seen.data || !state_is_for(seen.word, p) || state_code(seen.word) != kClosed) return;
    g.pending_redelivery.fetch_add(1, std::memory_order_relaxed);
    // release: pairs with take_redelivery's acquire load. Only the lock
    // holder changes a kClosed word: a store does.
    m.state_word(group, p).store(make_state(p, kPendingRedelivery), std::memory_order_release);
    any = true;
  });
  if (any) notify(m.header->data);
}

// Step 3 of the switch (top of this file): X, at or below x0.
std::uint64_t lower_journal_from(const Mapping& m, std::uint32_t group, std::uint64_t x0) {
  const std::uint64_t run = movable_run(m, group, x0);
  const std::uint64_t x = run == x0 ? x0 : close_run(m, group, run, x0);
  reopen_below(m, group, x);
  return x;
}

void switch_to_journal(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  // 0 first: until the switch is complete, ring_pin keeps pinning `released`.
  // seq_cst: in the total order with ring_pin's loads (producers' scans).
  g.journal_to.store(0, std::memory_order_seq_cst);
  const std::uint64_t x0 = close_ring(m, group);
  const std::uint64_t from = lower_journal_from(m, group, x0);
  g.journal_read.store(from, std::memory_order_relaxed);
  g.journal_acked.store(from, std::memory_order_relaxed);
  // The lowered part was delivered before (or may have been): flagged.
  g.journal_redeliver_below.store(from == x0 ? 0 : x0, std::memory_order_relaxed);
  g.journal_reader.store(0, std::memory_order_relaxed);
  // seq_cst: ring_pin loads it after P (the reverse order), so a P of this
  // switch comes with its X.
  g.journal_from.store(from, std::memory_order_seq_cst);
  // seq_cst (a release too): members that see P open see every field above.
  g.journal_to.store(kNoPosition, std::memory_order_seq_cst);
  m.header->groups_to_journal.fetch_add(1, std::memory_order_relaxed);
  notify(m.header->data);  // members waiting on the ring: the journal has their records
}

}  // namespace

bool offload_slow_groups(const Mapping& m) {
  const QueueHeader& h = *m.header;
  // acquire: pairs with the producers' seq_cst CAS of head (refresh_limit).
  const std::uint64_t head = h.head.load(std::memory_order_acquire);
  // A group that has taken everything synced waits for the disk, not the
  // other way round: the journal would not serve it any sooner.
  const std::uint64_t synced = h.journal_synced.load(std::memory_order_acquire);
  bool any = false;
  for (std::uint32_t i = 0; i < m.max_groups; ++i) {
    GroupSlot& g = m.groups[i];
    // Under the lock, which orders every change of a group's state; read:
    // acquire, pairs with the members' CAS of it (advance_read).
    if (g.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
    const std::uint64_t read = g.read.load(std::memory_order_acquire);
    if (read_closed(read)) continue;
    // Slower than the disk: synced records it has not taken, or redeliveries
    // nobody has taken (a dead member's, a rebuild's), which the switch moves
    // into the journal part too.
    // pending_redelivery: a hint (counted relaxed); released: acquire, pairs
    // with the members' seq_cst CAS of it.
    if (read >= synced && g.pending_redelivery.load(std::memory_order_acquire) == 0) continue;
    const std::uint64_t released = g.released.load(std::memory_order_acquire);
    // Not the group holding the oldest record; or its previous journal part
    // (or the ring part below it) is not yet acked: one journal part at a
    // time, and every kClosed word below a new switch's X0 is its own.
    const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);  // the lock orders it
    if (released > head || (to != 0 && released < to)) continue;
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
  // Under the lock: a switch's stores (its maker held the lock) are ordered
  // before these loads by it; acquire for the members' CAS of read.
  if (g.journal_to.load(std::memory_order_acquire) == 0 && read_closed(g.read.load(std::memory_order_acquire))) {
    switch_to_journal(m, group);
  }
}

std::uint64_t pin_ring_at_journal_end(const Mapping& m, GroupSlot& g) {
  // Inside a groups_epoch window, like a group's creation: no floor any
  // producer publishes can pass the P read here (shm/groups_epoch.hpp).
  const GroupsEpochWindow window(m);
  // seq_cst: in the window's total order with the producers' scans; pairs
  // with the journal writer's release store of journal_written.
  const std::uint64_t end = m.header->journal_written.load(std::memory_order_seq_cst);
  // seq_cst: pairs with ring_pin's seq_cst loads (producers' scans) and the
  // members' acquire loads of P (journal_part.cpp).
  g.journal_to.store(end, std::memory_order_seq_cst);
  return end;
}

void drop_journal_reader(GroupSlot& g, std::uint32_t index) {
  // acquire: pairs with the lease CAS (hold_journal_lease) of the holder,
  // whose relaxed journal_read/_acked stores it published.
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
