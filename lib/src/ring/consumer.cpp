// The consumer on the ring: take (CAS on the record's state word, then help
// the group's read cursor past it), ack (store the state word), release (CAS
// the group's released cursor past acked records, freeing ring space).
//
// Ownership of a record is the state word CAS: atomic, visible in shared
// memory, so a dead member's records are found and redelivered
// (recovery/repair.cpp). An exclusive group's active member needs no CAS:
// it alone reads, and what it holds is [released, read) less its acks.
// Joining and leaving: ring/group.cpp; a durable group's journal part:
// durable/journal_part.cpp.
#include <algorithm>
#include <thread>

#include "durable/group_journal.hpp"
#include "durable/journal_part.hpp"
#include "recovery/repair.hpp"
#include "ring/consumer_state.hpp"
#include "shm/wait.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

bool Consumer::created_group() const noexcept { return s_->created_group; }
bool Consumer::active() const noexcept { return s_->active; }
std::uint32_t Consumer::index() const noexcept { return s_->index; }
std::uint32_t Consumer::in_flight() const noexcept { return static_cast<std::uint32_t>(s_->in_flight()); }
const std::string& Consumer::journal_error() const noexcept { return s_->journal_error; }

void detail::release_acked(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  bool released_any = false;
  // Pairs with the same fence in every other member's release_acked: each
  // stored its ack, then looks at the front. Without the fence both could
  // miss the other's ack (store-load reordering) and leave the front acked
  // but unreleased for ever.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // acquire: pairs with the other members' seq_cst CAS of released below.
  std::uint64_t released = g.released.load(std::memory_order_acquire);
  for (;;) {
    if (m.durable && detail::in_journal_part(g, released)) {  // acked from the journal, not in state words
      if (!detail::release_journal_acked(g, released)) break;
      released_any = true;
      continue;
    }
    // acquire: pairs with the release store of the ack, so the header below
    // is read after the holder was done with the record.
    if (m.state_word(group, released).load(std::memory_order_acquire) != make_state(released, kAcked)) break;
    const std::uint64_t span = detail::record_span(m, released);
    if (span == 0) break;  // corrupt header: leave it for someone to see
    // seq_cst: producers' release_floor loads pair with this, and it orders
    // the waiters check in notify_after_seq_cst_rmw. A failure means another
    // member moved it (and our header read may be stale: re-check).
    if (g.released.compare_exchange_strong(released, released + span, std::memory_order_seq_cst,
                                           std::memory_order_acquire)) {
      released += span;
      released_any = true;
    }
  }
  if (released_any) detail::notify_after_seq_cst_rmw(m.header->space);
}

namespace {

// `h`: the header copy record_span() checked (never re-read: a peer may change it).
void fill(const Mapping& m, std::uint64_t position, const RecordFields& h, bool redelivered, Message& out) {
  out.payload = {m.at(position) + sizeof(RecordHeader), h.length};
  out.position = position;
  out.sequence = h.sequence;
  out.timestamp_ns = h.timestamp_ns;
  out.producer_id = h.producer_id;
  out.producer_entry = m.producer_entry(h.producer_id);
  out.redelivered = redelivered;
  out.deliveries = 1;
}

// Takes a record whose holder died, if any: redeliveries come before new records.
bool take_redelivery(const Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // acquire: pairs with the members' CAS of released (release_acked) and of
  // read (advance_read): the walk starts on a record boundary.
  std::uint64_t p = detail::past_journal_part(g, g.released.load(std::memory_order_acquire));
  const std::uint64_t read = detail::read_position(g.read.load(std::memory_order_acquire));
  for (std::uint64_t steps = 0; p != read && p != kNoPosition && steps < m.chunks; ++steps) {
    // acquire: pairs with the release CAS or store that made it pending
    // (release_consumer, reopen_below).
    std::uint64_t word = m.state_word(s.group, p).load(std::memory_order_acquire);
    RecordFields h;
    const std::uint64_t span = detail::record_span(m, p, &h);
    if (span != 0 && h.type == static_cast<std::uint16_t>(RecordType::Data) && state_is_for(word, p) &&
        state_code(word) == kPendingRedelivery &&
        // acq_rel: against close_run's CAS of the same pending word, exactly
        // one wins; pairs with the store that made it pending.
        m.state_word(s.group, p).compare_exchange_strong(
            word, make_state(p, static_cast<std::uint8_t>(s.index | kRedeliveredBit)), std::memory_order_acq_rel)) {
      g.pending_redelivery.fetch_sub(1, std::memory_order_relaxed);
      fill(m, p, h, true, out);
      // acquire: pairs with count_return's release CAS, made before the
      // pending store our CAS read.
      const std::uint64_t counted = m.delivery_word(s.group, p).load(std::memory_order_acquire);
      out.deliveries = std::min<std::uint32_t>(deliveries_of(counted, p), kDeliveriesSaturated) + 1;
      return true;
    }
    // Seqlock-style check: the header read above was valid only if the record
    // was still unreleased after it. The fence orders the header read before
    // the load of released (as the reader's second load of a seqlock).
    std::atomic_thread_fence(std::memory_order_acquire);
    if (span == 0 || at_or_after(g.released.load(std::memory_order_relaxed), p + 1)) return false;
    p = detail::past_journal_part(g, p + span);
  }
  return false;
}

enum class Take { Taken, Empty, Corrupt };

// After reading a record's header: was the record still unreleased, so the
// bytes read were really its own? (A seqlock-style re-check: if `read` has
// not moved, nothing at or after it was released or overwritten.)
bool still_unreleased(const GroupSlot& g, std::uint64_t read) {
  // Orders the header read before the load of read (a seqlock's second load).
  std::atomic_thread_fence(std::memory_order_acquire);
  return g.read.load(std::memory_order_relaxed) == read;
}

// Moves the group's read cursor past the taken record at `from`, unless a
// helping member already did. (A copy: a failed CAS would overwrite it.)
void advance_read(GroupSlot& g, std::uint64_t from, std::uint64_t span) {
  // acq_rel: pairs with take_next's acquire load of read in other members,
  // after our state word CAS; and with close_ring's CAS of the same word.
  g.read.compare_exchange_strong(from, from + span, std::memory_order_acq_rel);
}

// One attempt at the next record of the group.
Take take_next(const Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // Bounded: a hostile peer's state words must not spin us forever.
  for (int attempt = 0; attempt < 4096; ++attempt) {
    // acquire: pairs with advance_read's CAS, close_ring's and
    // finish_journal_part's (a read opened again at P).
    std::uint64_t read = g.read.load(std::memory_order_acquire);
    if (detail::read_closed(read)) return Take::Empty;  // the group reads the journal
    if (!detail::synced_past(m, read)) return Take::Empty;
    // Not tail: a poll that looked at tail would pull its line away from
    // the producers at every claim. on_idle tells a stalled group from an empty one.
    if (!m.committed(read)) return Take::Empty;
    RecordFields h;
    const std::uint64_t span = detail::record_span(m, read, &h);
    const bool data = h.type == static_cast<std::uint16_t>(RecordType::Data);
    if (span == 0 && !still_unreleased(g, read)) continue;  // a later lap's bytes, not corruption
    std::atomic<std::uint64_t>& state = m.state_word(s.group, read);
    // acquire: pairs with another member's take CAS and close_ring's.
    std::uint64_t word = state.load(std::memory_order_acquire);
    if (state_is_for(word, read)) {  // already taken: help its taker move the cursor on
      if (span == 0) return Take::Corrupt;
      advance_read(g, read, span);
      continue;
    }
    if (state_chunk(word) > (read / kRecordAlign)) continue;  // `read` was stale: a later lap is here
    if (span == 0) return Take::Corrupt;
    const std::uint8_t code = data ? static_cast<std::uint8_t>(s.index) : kAcked;
    // The CAS is the ownership: it succeeds for exactly one member, and only
    // while the record is untaken (so not released, so its bytes are intact).
    // acq_rel: against the other members' take CAS and close_ring's CAS of
    // the same word; release_consumer's acquire load pairs with it.
    if (!state.compare_exchange_strong(word, make_state(read, code), std::memory_order_acq_rel)) continue;
    advance_read(g, read, span);
    if (!data) {  // padding or skipped: nothing to deliver, acked at once
      detail::release_acked(m, s.group);
      continue;
    }
    fill(m, read, h, false, out);
    return Take::Taken;
  }
  return Take::Empty;
}

// The active member of an exclusive group moves read on by itself. In a
// durable queue a journal switch may close read under it (close_ring's
// CAS): a CAS then, which fails if it did. Otherwise a plain store. release
// (both): pairs with the acquire loads of read by repairers
// (return_exclusive_holdings), close_ring and the group's statistics.
bool advance_exclusive_read(const Mapping& m, GroupSlot& g, std::uint64_t from, std::uint64_t span) {
  if (m.durable) return g.read.compare_exchange_strong(from, from + span, std::memory_order_acq_rel);
  g.read.store(from + span, std::memory_order_release);
  return true;
}

struct ExclusiveTake {
  std::size_t messages = 0;
  bool passed_padding = false;  // acked some padding or skipped record: the front may be free
  bool corrupt = false;
};

// Up to out.size() records of an exclusive group's ring from `read`, with
// one move of the cursor at the end. Padding and skipped records are acked
// as they are passed (before read moves past them: a repairer then finds
// them acked). Records are the group's alone until it releases them, so
// nobody else writes them while we read.
ExclusiveTake take_exclusive(const Consumer::State& s, std::span<Message> out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // acquire: our own stores need none; pairs with close_ring's and
  // finish_journal_part's CAS in a durable queue.
  const std::uint64_t from = g.read.load(std::memory_order_acquire);
  ExclusiveTake took;
  if (detail::read_closed(from)) return took;
  std::uint64_t read = from;
  // Bounded: a hostile peer's records must not keep us here for ever.
  for (std::uint64_t steps = 0; took.messages < out.size() && steps < m.chunks; ++steps) {
    if (!detail::synced_past(m, read) || !m.committed(read)) break;
    RecordFields h;
    const std::uint64_t span = detail::record_span(m, read, &h);
    if (span == 0) {
      took.corrupt = true;
      break;
    }
    if (h.type == static_cast<std::uint16_t>(RecordType::Data)) {
      fill(m, read, h, false, out[took.messages++]);
    } else {
      // release: pairs with release_acked's acquire load.
      m.state_word(s.group, read).store(make_state(read, kAcked), std::memory_order_release);
      took.passed_padding = true;
    }
    read += span;
  }
  if (read != from && !advance_exclusive_read(m, g, from, read - from)) took.messages = 0;  // closed meanwhile
  return took;
}

void count_ring_delivery(Consumer::State& s, const Message& out) {
  s.held.push_back(out.position);
  detail::count_delivery(s);
}

// How often a standby looks whether the active member still lives.
constexpr auto kStandbyLook = std::chrono::milliseconds(1);

// Exclusive groups: whether this member reads now (a standby looks at the
// active member at most every kStandbyLook).
bool reads_now(Consumer::State& s) {
  if (s.active) return true;
  const auto now = Clock::now();
  if (now < s.next_standby_look) return false;
  s.next_standby_look = now + kStandbyLook;
  return detail::try_become_active(s);
}

// The ring part of an exclusive member's receive: up to out.size() records.
std::size_t receive_exclusive(Consumer::State& s, std::span<Message> out, Status& status) {
  const ExclusiveTake took = take_exclusive(s, out);
  const std::size_t n = took.messages;
  for (std::size_t i = 0; i < n; ++i) s.held.push_back(out[i].position);
  if (n != 0) {
    s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
    s.slot->delivered.store(s.slot->delivered.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  if (took.passed_padding) detail::release_acked(*s.map, s.group);
  status = n != 0 ? Status::Ok : took.corrupt ? Status::Corrupt : Status::Empty;
  return n;
}

}  // namespace

Status Consumer::try_receive(Message& out) noexcept {
  State& s = *s_;
  // One branch on a local copy: a queue without a policy pays nothing more.
  return s.map->policy ? detail::receive_with_policy(s, out) : detail::receive_one(s, out);
}

Status detail::receive_one(Consumer::State& s, Message& out) noexcept {
  // Records kept for a dead-letter move (ring/dead_letter.cpp) are not the
  // application's: they do not count against its prefetch (looked at only
  // at the limit).
  if (s.in_flight() >= s.options.prefetch && s.in_flight() >= s.options.prefetch + s.moves.size()) {
    return Status::InFlightLimit;
  }
  if (s.options.exclusive && !reads_now(s)) return Status::Empty;
  // A hint only (counted relaxed): take_redelivery's acquire loads of the
  // state words pair with the CAS that made a record pending.
  if (s.g->pending_redelivery.load(std::memory_order_acquire) != 0 && take_redelivery(s, out)) {
    count_ring_delivery(s, out);
    return Status::Ok;
  }
  if (s.map->durable && detail::journal_work(*s.g)) {
    const Status status = detail::receive_from_journal(s, out);
    if (status != Status::Empty) return status;
  }
  if (s.options.exclusive) {
    Status status = Status::Empty;
    if (receive_exclusive(s, {&out, 1}, status) != 0 || status == Status::Corrupt) return status;
  } else {
    switch (take_next(s, out)) {
      case Take::Taken:
        count_ring_delivery(s, out);
        return Status::Ok;
      case Take::Corrupt:
        return Status::Corrupt;
      case Take::Empty:
        break;
    }
  }
  // A truncated segment reads as zeros (shm/bus_guard.hpp), which hold no
  // record: say why nothing comes. One relaxed load while nothing is broken.
  return detail::segment_lost_under(s.map->header->data) ? Status::Corrupt : Status::Empty;
}

namespace {

// Called while a receive sleeps: if the group is stuck behind a claim that was
// never committed, try to repair it (the repair proves its owner dead first).
// Returns how long to sleep before the next look.
Duration on_idle(const Consumer::State& s) {
  const Mapping& m = *s.map;
  // acquire: pairs with the members' CAS of read (advance_read), the
  // producers' release CAS of tail and release store of the record's tag.
  const std::uint64_t read = s.g->read.load(std::memory_order_acquire);
  if (detail::read_closed(read)) return detail::kMaxSleep;
  const bool stalled = m.header->tail.load(std::memory_order_acquire) != read && !m.committed(read);
  if (!stalled) return detail::kMaxSleep;
  // Try only: a stopped process holding the lock must not stall this wait.
  const detail::SegmentLock lock(m, detail::SegmentLock::TryTag{});
  if (!lock.owned()) return std::chrono::milliseconds(1);
  const auto result = detail::repair_hole(m, read);
  return result == detail::RepairResult::OwnerAlive ? std::chrono::milliseconds(1) : detail::kMaxSleep;
}


// The adaptive wait: the fewest polls a budget shrinks to (a few microseconds,
// enough to time a poll by).
constexpr std::uint32_t kMinSpin = 64;

// Adapts the spin budget to the wait that just ended. A message that came
// while polling, or so soon after the sleep began that the largest budget
// would have caught it, doubles the budget (up to options.wait.spin); one
// that came later halves it. So a consumer fed every 100 us polls through
// the gaps and gets a saturated queue's latency, one fed every few
// milliseconds soon sleeps at once and frees its CPU, and an idle one
// costs nothing.
void adapt_spin(Consumer::State& s, Clock::time_point started, Clock::time_point spin_ended, bool slept) {
  const std::uint32_t most = s.options.wait.spin;
  const std::uint32_t doubled = s.spin > most / 2 ? most : s.spin * 2;  // never wraps
  if (!slept) {
    s.spin = doubled;
    return;
  }
  const std::chrono::duration<double, std::nano> polled = spin_ended - started;
  const auto largest_spin = polled * (static_cast<double>(most) / std::max(s.spin, 1u));
  const bool soon = Clock::now() - spin_ended < largest_spin;
  s.spin = soon ? doubled : std::max(std::min(most, kMinSpin), s.spin / 2);
}

// A standby's wait to become the active member: it looks every
// kStandbyLook, asleep in between (not on the data futex: a waiter there
// would make every commit pay a wake-up call). False at the deadline, or
// when the segment was truncated or deleted meanwhile.
bool wait_until_active(Consumer::State& s, Clock::time_point deadline) {
  const layout::EventCount& ev = s.map->header->data;
  while (!reads_now(s)) {
    const auto now = Clock::now();
    if (now >= deadline) return false;
    (void)detail::check_segment_size(detail::guard_entry_of(&ev));
    if (detail::segment_lost_under(ev) || detail::segment_deleted_under(ev)) return false;
    std::this_thread::sleep_for(std::min<Duration>(kStandbyLook, deadline - now));
  }
  return true;
}

}  // namespace

Status Consumer::receive(Message& out, Duration timeout) noexcept {
  Status status = try_receive(out);
  if (status != Status::Empty) return status;
  State& s = *s_;
  const auto deadline = detail::deadline_after(timeout);
  if (!s.active) {
    if (!wait_until_active(s, deadline)) return detail::wait_failure(s.map->header->data);
    if ((status = try_receive(out)) != Status::Empty) return status;
  }
  const auto started = Clock::now();
  Clock::time_point spin_ended{};
  const bool ok = detail::wait_until(
      s.map->header->data, deadline, s.spin,
      [&] { return (status = try_receive(out)) != Status::Empty; }, [&] { return on_idle(s); }, &spin_ended);
  if (!ok) return detail::wait_failure(s.map->header->data);
  if (s.options.wait.spin != 0) adapt_spin(s, started, spin_ended, spin_ended != Clock::time_point{});
  return status;
}

std::size_t Consumer::try_receive_batch(std::span<Message> out) noexcept {
  State& s = *s_;
  std::size_t n = 0;
  if (s.map->policy) {  // the policy looks at each record: one at a time
    while (n < out.size() && try_receive(out[n]) == Status::Ok) ++n;
    return n;
  }
  // One at a time: a competing group, a standby, and before a run of the
  // ring, the redeliveries and a journal part, which come first.
  const auto ring_run = [&] {
    // A hint, relaxed: take_redelivery's own loads are acquire.
    return s.options.exclusive && s.active && s.g->pending_redelivery.load(std::memory_order_relaxed) == 0 &&
           !(s.map->durable && detail::journal_work(*s.g));
  };
  while (n < out.size() && !ring_run()) {
    if (try_receive(out[n]) != Status::Ok) return n;
    ++n;
  }
  const std::size_t limit = s.options.prefetch - std::min<std::size_t>(s.in_flight(), s.options.prefetch);
  Status status = Status::Ok;
  return n + receive_exclusive(s, out.subspan(n, std::min(out.size() - n, limit)), status);
}

std::size_t Consumer::receive_batch(std::span<Message> out, Duration timeout, Status& status) noexcept {
  status = Status::Ok;
  if (out.empty()) return 0;
  if ((status = receive(out[0], timeout)) != Status::Ok) return 0;
  return 1 + try_receive_batch(out.subspan(1));
}

namespace {

// The holder's ack: only the holder moves a record out of its in-flight state
// while it lives, so a plain store does.
void mark_acked(Consumer::State& s, std::uint64_t position) {
  // release: pairs with release_acked's acquire load.
  s.map->state_word(s.group, position).store(make_state(position, kAcked), std::memory_order_release);
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// The holder's ack on a queue with an ack timeout: a lease expiry may have
// taken the record back (return_to_group's CAS), so a CAS, which fails then.
Status mark_acked_if_held(Consumer::State& s, std::uint64_t position) {
  std::atomic<std::uint64_t>& state = s.map->state_word(s.group, position);
  // acquire: pairs with return_to_group's acq_rel CAS.
  std::uint64_t word = state.load(std::memory_order_acquire);
  const bool mine = state_is_for(word, position) && state_in_flight(state_code(word)) &&
                    (state_code(word) & kOwnerMask) == s.index;
  // release: pairs with release_acked's acquire load; against
  // return_to_group's CAS, exactly one wins.
  if (!mine || !state.compare_exchange_strong(word, make_state(position, kAcked), std::memory_order_acq_rel)) {
    return Status::LeaseExpired;
  }
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  return Status::Ok;
}

}  // namespace

Status detail::ack_held(Consumer::State& s, std::uint64_t position) noexcept {
  if (!s.journal_held.empty() && detail::ack_from_journal(s, position)) return Status::Ok;
  // Acks usually come in the order of receipt: the front, in O(1).
  if (!s.held.empty() && s.held.front() == position) {
    s.held.pop_front();
  } else {
    const auto it = std::find(s.held.begin(), s.held.end(), position);
    if (it == s.held.end()) return s.revoked.erase(position) != 0 ? Status::LeaseExpired : Status::NotInFlight;
    s.held.erase(it);
  }
  Status status = Status::Ok;
  if (s.map->ack_timeout_ns == 0) {
    mark_acked(s, position);
  } else {
    status = mark_acked_if_held(s, position);
    forget_taken(s, position, status == Status::LeaseExpired);
  }
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  if (status == Status::Ok) detail::release_acked(*s.map, s.group);
  return status;
}

Status Consumer::ack(const Message& message) noexcept { return detail::ack_held(*s_, message.position); }

std::size_t Consumer::ack_up_to(std::uint64_t position) noexcept {
  State& s = *s_;
  const auto before = s.in_flight();
  if (s.map->ack_timeout_ns != 0) {  // each ack may find its lease gone: one at a time
    std::vector<std::uint64_t> due;
    for (const std::uint64_t p : s.held) {
      if (p <= position) due.push_back(p);
    }
    for (const std::uint64_t p : due) (void)detail::ack_held(s, p);
  }
  std::erase_if(s.held, [&](std::uint64_t p) {
    if (p > position) return false;  // plain compare: positions stay below 2^62, and UINT64_MAX means all
    mark_acked(s, p);
    return true;
  });
  const auto journal_acked = detail::ack_journal_up_to(s, position);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  if (journal_acked != 0) {
    detail::publish_journal_acked(s);  // releases the ring's acks too
  } else if (s.in_flight() != before) {
    detail::release_acked(*s.map, s.group);
  }
  return before - s.in_flight();
}

}  // namespace shmq
