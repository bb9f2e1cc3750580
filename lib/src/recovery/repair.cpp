// Repairs after dead clients. Every function runs under the SegmentLock and
// is idempotent (see recovery/repair.hpp). The invariants it restores are listed in
// docs/design.md ("Crash recovery").
#include "recovery/repair.hpp"

#include "durable/group_journal.hpp"

#include <chrono>
#include <cstring>
#include <thread>

#include "shm/groups_epoch.hpp"
#include "shm/layout.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "shm/wait.hpp"

namespace shmq::detail {

using namespace layout;

std::uint64_t record_span(const Mapping& m, std::uint64_t position, RecordFields* copy) noexcept {
  if (position % kRecordAlign != 0) return 0;  // a header there would straddle the ring's end
  // Read once: a hostile peer may change the header under us.
  RecordFields h;
  std::memcpy(&h, &m.record(position)->info, sizeof h);
  if (copy != nullptr) *copy = h;
  switch (static_cast<RecordType>(h.type)) {
    case RecordType::Data:
      if (h.length > m.max_message) return 0;
      // Producers pad to the ring's end: a data record never wraps.
      return (position & m.mask) + record_bytes(h.length) <= m.capacity ? record_bytes(h.length) : 0;
    case RecordType::Padding:
    case RecordType::Skipped:
      return h.length >= kRecordAlign && h.length % kRecordAlign == 0 && h.length <= m.capacity ? h.length : 0;
  }
  return 0;
}

namespace {

bool slot_attached(const ProducerSlot& s) {
  // acquire: pairs with attach's release store of the state (pid stored before).
  return s.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

bool producer_alive(const Mapping& m, std::uint32_t index) {
  return slot_attached(m.producers[index]) && entry_held(m, producer_lock_byte(index));
}

struct Claim {
  std::uint64_t position, end;
};

Claim announced_claim(const Mapping& m, const ProducerSlot& s) {
  // The announcement is stored relaxed, then published by the claim's release
  // CAS of tail, which repair_hole's acquire load of tail pairs with.
  const std::uint64_t position = s.claim_pos.load(std::memory_order_acquire);
  if (position == kNoPosition) return {kNoPosition, kNoPosition};
  const std::uint64_t bytes = s.claim_bytes.load(std::memory_order_relaxed);
  return {position, position + padding_for(m, position, bytes) + bytes};
}

// Whether every group has released `at` (head passed it): then a record was
// committed there, and the ring may have been written over since, so its
// bytes say nothing any more. Read after the tag (a seqlock's second load:
// the fence orders the tag's load before it); relaxed: through the fence, it
// pairs with the producers' seq_cst CAS of head. While head stays at or below
// `at`, nobody writes there but the record's own producer.
bool released_by_all(const Mapping& m, std::uint64_t at) {
  std::atomic_thread_fence(std::memory_order_acquire);
  return at_or_after(m.header->head.load(std::memory_order_relaxed), at + 1);
}

// Data records committed in [from, to): a dead claim's, before its hole.
std::uint64_t data_records_between(const Mapping& m, std::uint64_t from, std::uint64_t to) {
  std::uint64_t n = 0;
  for (std::uint64_t p = from, steps = 0; p != to && steps < m.chunks; ++steps) {
    RecordFields h;
    const std::uint64_t span = m.committed(p) ? record_span(m, p, &h) : 0;
    if (span == 0) break;
    n += h.type == static_cast<std::uint16_t>(RecordType::Data) ? 1 : 0;
    p += span;
  }
  return n;
}

// The first record of a dead producer's claim it never committed, or
// kNoPosition when it committed them all (or every group has passed them:
// the claim is an old one, the ring has moved on).
std::uint64_t first_uncommitted(const Mapping& m, const Claim& c) {
  for (std::uint64_t p = c.position, steps = 0; p != c.end && steps < m.chunks; ++steps) {
    const bool committed = m.committed(p);
    if (released_by_all(m, p)) return kNoPosition;
    if (!committed) return p;
    const std::uint64_t span = record_span(m, p);
    if (span == 0 || !at_or_after(c.end, p + span)) return kNoPosition;  // not what the claim laid out
    p += span;
  }
  return kNoPosition;
}

// A record boundary: the tail, a committed record, or another claim's start.
bool is_boundary(const Mapping& m, std::uint64_t at, std::uint64_t tail) {
  if (at == tail) return true;
  if (!at_or_after(tail, at)) return false;
  // claim_pos: as in announced_claim.
  if (m.committed(at)) return true;
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    if (m.producers[i].claim_pos.load(std::memory_order_acquire) == at) return true;
  }
  return false;
}

}  // namespace

RepairResult repair_hole(const Mapping& m, std::uint64_t at) {
  // acquire: pairs with the producers' release CAS, so their announcements are visible.
  if (at % kRecordAlign != 0) return RepairResult::Unprovable;  // never write a header there
  const std::uint64_t tail = m.header->tail.load(std::memory_order_acquire);
  if (!at_or_after(tail, at + 1)) return RepairResult::NotAHole;
  if (m.committed(at) || released_by_all(m, at)) return RepairResult::NotAHole;
  // The owner is among the producers whose announced claim covers `at`. A live
  // one may be the owner (or about to retry): wait. Of the dead ones, only the
  // winner's claim ends on a record boundary; any with the same extent will do.
  std::uint64_t end = kNoPosition;
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    const ProducerSlot& s = m.producers[i];
    const Claim c = announced_claim(m, s);
    if (c.position == kNoPosition || !at_or_after(at, c.position) || at_or_after(at, c.end)) continue;
    if (producer_alive(m, i)) return RepairResult::OwnerAlive;
    if (is_boundary(m, c.end, tail)) end = c.end;
  }
  if (end == kNoPosition) return RepairResult::Unprovable;
  // The owner never committed the records from `at` on: if it already
  // counted one as sent, take that back before the skip is visible, so its
  // resend is accepted. A claim's records carry consecutive sequences from
  // claim_prev_seq + 1 (a batch; a single record: claim_seq), committed in
  // order, so the last one committed is claim_prev_seq + those before `at`.
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    ProducerSlot& s = m.producers[i];
    const Claim c = announced_claim(m, s);
    if (c.position == kNoPosition || c.end != end || !at_or_after(at, c.position)) continue;
    const std::uint64_t prev = s.claim_prev_seq.load(std::memory_order_relaxed);
    const std::uint64_t committed_seq = prev + data_records_between(m, c.position, at);
    if (s.last_seq.load(std::memory_order_relaxed) > committed_seq &&
        s.last_seq.load(std::memory_order_relaxed) <= s.claim_seq.load(std::memory_order_relaxed)) {
      // release: pairs with attach's acquire load of last_seq.
      s.last_seq.store(committed_seq, std::memory_order_release);
    }
  }
  m.write_info(at, RecordFields{static_cast<std::uint32_t>(end - at), static_cast<std::uint16_t>(RecordType::Skipped),
                              0, 0, 0});
  m.commit_record(at);
  m.header->holes_skipped.fetch_add(1, std::memory_order_relaxed);
  notify(m.header->data);
  return RepairResult::Repaired;
}

bool reap_producer(const Mapping& m, std::uint32_t index) {
  ProducerSlot& s = m.producers[index];
  const Claim c = announced_claim(m, s);
  if (c.position != kNoPosition) {
    for (int attempt = 0;; ++attempt) {
      const std::uint64_t hole = first_uncommitted(m, c);
      if (hole == kNoPosition || repair_hole(m, hole) != RepairResult::OwnerAlive) break;
      // A live producer's claim attempt overlaps: it moves on within microseconds.
      if (attempt == 200) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    s.claim_pos.store(kNoPosition, std::memory_order_relaxed);
  }
  s.pid.store(0, std::memory_order_relaxed);
  // release: pairs with find_entry's acquire load of the state.
  s.state.store(static_cast<std::uint32_t>(SlotState::Detached), std::memory_order_release);
  m.header->clients_reaped.fetch_add(1, std::memory_order_relaxed);
  return true;
}

namespace {

// The active member of an exclusive group marks nothing when it takes a
// record: it holds every data record in [released, read) that it has not
// acked (and none is pending or closed: those it never took). Only it moves
// read, so once it is dead or leaving, read is final.
std::uint64_t return_exclusive_holdings(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  std::uint64_t returned = 0;
  // acquire: pairs with the member's release store (or CAS) of read, and with
  // the members' seq_cst CAS of released.
  const std::uint64_t read = read_position(g.read.load(std::memory_order_acquire));
  std::uint64_t p = past_journal_part(g, g.released.load(std::memory_order_acquire));
  for (std::uint64_t steps = 0; p != read && p != kNoPosition && steps < m.chunks; ++steps) {
    RecordFields h;
    const std::uint64_t span = m.committed(p) ? record_span(m, p, &h) : 0;
    if (span == 0) break;  // corrupt (read never passes an uncommitted record)
    std::atomic<std::uint64_t>& state = m.state_word(group, p);
    // acquire: pairs with the holder's release store of its ack.
    const std::uint64_t word = state.load(std::memory_order_acquire);
    const bool settled = state_is_for(word, p) && !state_in_flight(state_code(word));  // acked, pending, closed
    if (!settled && h.type == static_cast<std::uint16_t>(RecordType::Data)) {
      returned += return_to_group(m, group, p, word) ? 1 : 0;
    } else if (!settled) {
      // release: pairs with release_acked's acquire load.
      state.store(make_state(p, kAcked), std::memory_order_release);  // padding or skipped: nothing to deliver
    }
    p = past_journal_part(g, p + span);
  }
  return returned;
}

// Every record member `index` of a competing group holds in the ring goes
// back to the group. Walks every record the group has handed out but not
// released, and the ones just past `read` that a member took before moving
// the cursor. Returns how many.
std::uint64_t return_member_holdings(const Mapping& m, std::uint32_t group, std::uint32_t index) {
  GroupSlot& g = m.groups[group];
  std::uint64_t returned = 0;
  // acquire: tail pairs with the claims' release CAS, released with the
  // members' seq_cst CAS of it.
  const std::uint64_t tail = m.header->tail.load(std::memory_order_acquire);
  std::uint64_t p = past_journal_part(g, g.released.load(std::memory_order_acquire));
  for (std::uint64_t steps = 0; p != tail && p != kNoPosition && steps < m.chunks; ++steps) {
    p = past_journal_part(g, p);  // its records are copies, read again below
    if (p == kNoPosition || p == tail) break;
    if (!m.committed(p)) break;
    std::atomic<std::uint64_t>& state = m.state_word(group, p);
    // acquire: pairs with the member's take CAS and its ack's release store.
    std::uint64_t word = state.load(std::memory_order_acquire);
    if (!state_is_for(word, p)) break;  // not taken yet: nothing beyond is held
    if (state_in_flight(state_code(word)) && (state_code(word) & kOwnerMask) == index) {
      returned += return_to_group(m, group, p, word) ? 1 : 0;
    }
    const std::uint64_t span = record_span(m, p);
    // Seqlock-style check, as in take_redelivery: the header read above was
    // valid only if the record was still unreleased after it.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (span == 0) break;
    const std::uint64_t released = g.released.load(std::memory_order_relaxed);
    p = at_or_after(released, p + 1) ? released : p + span;  // restart if released overtook us
  }
  return returned;
}

}  // namespace

bool return_to_group(const Mapping& m, std::uint32_t group, std::uint64_t p, std::uint64_t word) {
  GroupSlot& g = m.groups[group];
  count_return(m, group, p);
  // Count first, so a member that takes it at once never sees the count below zero.
  // acq_rel (the CAS below): pairs with take_redelivery's acquire load and CAS.
  g.pending_redelivery.fetch_add(1, std::memory_order_relaxed);
  if (!m.state_word(group, p).compare_exchange_strong(word, make_state(p, kPendingRedelivery),
                                                      std::memory_order_acq_rel)) {
    g.pending_redelivery.fetch_sub(1, std::memory_order_relaxed);
    return false;  // acked (or taken back) meanwhile: its count no longer matters
  }
  // Counted at once, not after the walk: a repairer killed half-way (shmqd)
  // must not leave records returned but uncounted, which the redone walk,
  // finding them pending already, would not count again.
  g.redelivered.fetch_add(1, std::memory_order_relaxed);
  m.header->redelivered.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void count_return(const Mapping& m, std::uint32_t group, std::uint64_t p) {
  std::atomic<std::uint64_t>& counter = m.delivery_word(group, p);
  // acquire: pairs with the release CAS of an earlier return or move.
  std::uint64_t word = counter.load(std::memory_order_acquire);
  for (;;) {
    if (state_chunk(word) > ((p / kRecordAlign) & (~std::uint64_t{0} >> 8))) return;  // a later lap's: p is gone
    if (moved_to_dead_letter(word, p)) return;  // a taker acks it: no count needed
    const std::uint32_t before = deliveries_of(word, p);
    const std::uint8_t after = static_cast<std::uint8_t>(std::min<std::uint32_t>(before + 1, kDeliveriesSaturated));
    // release: pairs with the acquire loads of takers (take_redelivery reads
    // it after its acquire CAS of the pending state word this precedes).
    if (counter.compare_exchange_weak(word, make_state(p, after), std::memory_order_acq_rel)) return;
  }
}

std::uint64_t release_consumer(const Mapping& m, std::uint32_t group, std::uint32_t index) {
  GroupSlot& g = m.groups[group];
  ConsumerSlot& slot = m.consumer(group, index);
  std::uint64_t returned = 0;
  // acquire: pairs with the release stores of active (ring/group.cpp).
  const bool exclusive_active = g.mode == static_cast<std::uint32_t>(GroupMode::Exclusive) &&
                                g.active.load(std::memory_order_acquire) == index + 1;
  if (exclusive_active) returned += return_exclusive_holdings(m, group);
  returned += return_member_holdings(m, group, index);
  drop_journal_reader(g, index);
  g.retired_delivered.fetch_add(slot.delivered.load(std::memory_order_relaxed), std::memory_order_relaxed);
  g.retired_acked.fetch_add(slot.acked.load(std::memory_order_relaxed), std::memory_order_relaxed);
  slot.delivered.store(0, std::memory_order_relaxed);
  slot.acked.store(0, std::memory_order_relaxed);
  slot.in_flight.store(0, std::memory_order_relaxed);
  slot.pid.store(0, std::memory_order_relaxed);
  // After what it held went back: a standby that sees no active member takes
  // over (release: pairs with try_become_active's acquire load).
  if (exclusive_active) g.active.store(0, std::memory_order_release);
  // release: pairs with join's acquire load of the state (attached()).
  slot.state.store(static_cast<std::uint32_t>(SlotState::Free), std::memory_order_release);
  if (returned != 0) notify(m.header->data);
  return returned;
}

RecoveryCounts recover_dead_clients(const Mapping& m) {
  RecoveryCounts counts;
  const std::uint64_t holes_before = m.header->holes_skipped.load(std::memory_order_relaxed);
  settle_groups_epoch(m);
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    const ProducerSlot& s = m.producers[i];
    if (slot_attached(s) && !producer_alive(m, i) && reap_producer(m, i)) ++counts.producers_reaped;
  }
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    const GroupSlot& group = m.groups[g];
    // Under the lock, which orders every change of a group's or member's
    // state; acquire all the same, as every reader of a state.
    if (group.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
    for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
      const ConsumerSlot& slot = m.consumer(g, c);
      if (slot.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
      if (entry_held(m, consumer_lock_byte(g, c))) continue;
      counts.redelivered += release_consumer(m, g, c);
      m.header->clients_reaped.fetch_add(1, std::memory_order_relaxed);
      ++counts.consumers_reaped;
    }
    settle_journal_switch(m, g);
    // acquire: pairs with the members' CAS of read (advance_read).
    const std::uint64_t read = group.read.load(std::memory_order_acquire);
    if (!read_closed(read)) (void)repair_hole(m, read);
  }
  // Holes are repaired both for dead producers and for stalled groups: count them once.
  counts.holes_repaired = m.header->holes_skipped.load(std::memory_order_relaxed) - holes_before;
  return counts;
}

}  // namespace shmq::detail

namespace shmq::detail {

namespace {

// A live member that receives gives back its own expired records, exactly
// those, within 10 ms (ring/dead_letter.cpp): the sweep of whole members
// waits this much longer, so it takes only from members that do not look.
constexpr std::int64_t kSweepGraceNs = 20'000'000;

// Whether member `c`'s lease ran out: its oldest held record was taken more
// than the ack timeout (and the grace) ago, and no expiry took that one back yet.
bool lease_due(const ConsumerSlot& c, std::int64_t now, std::int64_t timeout) {
  // relaxed: a report the member writes; a stale value only delays or
  // repeats a look, and the walk under the lock decides by the state words.
  const std::int64_t since = c.held_since_ns.load(std::memory_order_relaxed);
  return since != 0 && now - since >= timeout && since != c.lease_revoked_ns.load(std::memory_order_relaxed);
}

bool competing_group(const GroupSlot& g) {
  // acquire: pairs with create_group's seq_cst store of the state.
  return g.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached) &&
         g.mode == static_cast<std::uint32_t>(GroupMode::Competing);
}

bool member_attached(const ConsumerSlot& c) {
  // acquire: pairs with join's release store of the state.
  return c.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

}  // namespace

std::uint64_t expire_leases(const Mapping& m) {
  if (m.ack_timeout_ns == 0) return 0;
  const std::int64_t now = monotonic_ns();
  const auto timeout = static_cast<std::int64_t>(m.ack_timeout_ns) + kSweepGraceNs;
  const auto each_due = [&](auto&& act) {
    for (std::uint32_t g = 0; g < m.max_groups; ++g) {
      if (!competing_group(m.groups[g])) continue;
      for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
        const ConsumerSlot& slot = m.consumer(g, c);
        if (member_attached(slot) && lease_due(slot, now, timeout)) act(g, c);
      }
    }
  };
  bool any = false;
  each_due([&](std::uint32_t, std::uint32_t) { any = true; });  // without the lock: usually nothing is due
  if (!any) return 0;
  // Try only: a stopped process holding the lock must not stall the caller.
  const SegmentLock lock(m, SegmentLock::TryTag{});
  if (!lock.owned()) return 0;
  std::uint64_t total = 0;
  each_due([&](std::uint32_t g, std::uint32_t c) {
    ConsumerSlot& slot = m.consumer(g, c);
    const std::int64_t since = slot.held_since_ns.load(std::memory_order_relaxed);
    const std::uint64_t returned = return_member_holdings(m, g, c);
    slot.lease_revoked_ns.store(since, std::memory_order_relaxed);
    m.groups[g].lease_expired.fetch_add(returned, std::memory_order_relaxed);
    total += returned;
  });
  if (total != 0) notify(m.header->data);
  return total;
}

}  // namespace shmq::detail
