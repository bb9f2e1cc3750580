// The delivery policy on the data path (docs/design.md, "Delivery policy"):
// delivery counts decide, TTL checks, nack, reject, leases, and dead-letter
// moves. Only queues created with a policy come here (Mapping::policy).
//
// A dead-letter move is exactly-once through the dead-letter queue's own
// dedup. Each origin group has one producer name there, so one process at a
// time moves the group's records (attach refuses a live holder's name). The
// mover announces its move in the group's slot (dead_letter_position and
// _sequence: the record, and the sequence it sends it with, last + 1), sends
// it, marks its delivery word moved, acks it, and clears the announcement.
// Its successor, holding the name, reads the announcement first: a sequence
// at or below the producer's last was sent, so that record is marked moved
// (a member that takes it again acks it, never delivers it); above, it was not.
#include <algorithm>
#include <thread>

#include "durable/group_journal.hpp"
#include "durable/journal_part.hpp"
#include "journal/crc32c.hpp"
#include "recovery/repair.hpp"
#include "ring/consumer_state.hpp"
#include "ring/dead_letter_trailer.hpp"
#include "shm/process.hpp"
#include "shm/wait.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

namespace {

using State = Consumer::State;

bool from_journal(const State& s, std::uint64_t position) {
  return std::any_of(s.journal_held.begin(), s.journal_held.end(),
                     [&](const detail::JournalRecord& r) { return r.position == position; });
}

bool held_in_ring(const State& s, std::uint64_t position) {
  return std::find(s.held.begin(), s.held.end(), position) != s.held.end();
}

// Why a message is not held: a lease expiry took it back, or it never was.
Status not_held(State& s, std::uint64_t position) {
  return s.revoked.erase(position) != 0 ? Status::LeaseExpired : Status::NotInFlight;
}

void erase_held(State& s, std::uint64_t position) {
  const auto it = std::find(s.held.begin(), s.held.end(), position);
  if (it != s.held.end()) s.held.erase(it);
  detail::forget_taken(s, position, false);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
}

// Whether `word`, the state word of the ring record at `position`, names
// this member as its holder. Asked on queues with an ack timeout only, whose
// groups are all competing (join refuses an exclusive one).
bool held_by_me(const State& s, std::uint64_t word, std::uint64_t position) {
  return state_is_for(word, position) && state_in_flight(state_code(word)) &&
         (state_code(word) & kOwnerMask) == s.index;
}

// Whether this member still holds the ring record at `position` (a lease
// expiry may have taken it back). seq_cst: see announce_move.
bool still_mine(const State& s, std::uint64_t position) {
  return held_by_me(s, s.map->state_word(s.group, position).load(std::memory_order_seq_cst), position);
}

// The record at `position` is in the dead-letter queue: a member that takes
// it again acks it. Never touches a later lap's word (the record may be
// released, its slot reused).
void mark_moved(const Mapping& m, std::uint32_t group, std::uint64_t position) {
  std::atomic<std::uint64_t>& word = m.delivery_word(group, position);
  // acquire: pairs with count_return's release CAS.
  std::uint64_t seen = word.load(std::memory_order_acquire);
  while (state_chunk(seen) <= ((position / kRecordAlign) & (~std::uint64_t{0} >> 8))) {
    // release: pairs with the acquire loads of takers (deliverable).
    if (word.compare_exchange_weak(seen, make_state(position, kMovedToDeadLetter), std::memory_order_acq_rel)) return;
  }
}

// The group's dead-letter producer name in the dead-letter queue: one per
// origin queue and group ("dl.<queue>.<group>"; a long one shortened with a
// CRC32C of the whole, the same in every process and every build).
std::string mover_name(const State& s) {
  std::string name = "dl." + s.map->name + "." + std::string(s.g->name, ::strnlen(s.g->name, kNameBytes));
  if (name.size() < kNameBytes) return name;
  const auto crc = journal::crc32c(std::as_bytes(std::span(name.data(), name.size())));
  char suffix[10];
  std::snprintf(suffix, sizeof suffix, ".%08x", crc);
  return name.substr(0, kNameBytes - 1 - 9) + suffix;
}

Queue* dead_letter_queue(State& s) {
  if (!s.dead_letter_queue) {
    try {
      s.dead_letter_queue.emplace(Queue::open(s.map->dead_letter, s.map->ns));
    } catch (const Error&) {
      return nullptr;
    }
  }
  return &*s.dead_letter_queue;
}

// Attaches the group's mover name; another mover holding it is waited for
// up to `patience` (its move takes microseconds, unless it is stopped).
std::optional<Producer> attach_mover(State& s, Queue& dead_letters, std::chrono::milliseconds patience) {
  const std::string name = mover_name(s);
  const auto deadline = Clock::now() + patience;
  for (;;) {
    try {
      return Producer::attach(dead_letters, name);
    } catch (const Error& e) {
      if (e.code() != Errc::NameInUse || Clock::now() >= deadline) return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Settles the move the group's slot announces, if any (we hold the mover
// name, so nobody else changes it): marks its record moved when it was
// sent. Returns whether that record is `position` and was sent.
bool settle_announced_move(State& s, std::uint64_t last_sent, std::uint64_t position) {
  GroupSlot& g = *s.g;
  // acquire: pairs with announce_move's stores (an earlier holder's).
  const std::uint64_t announced = g.dead_letter_position.load(std::memory_order_acquire);
  if (announced == kNoPosition) return false;
  const bool sent = g.dead_letter_sequence.load(std::memory_order_acquire) <= last_sent;
  // Not a journal copy's: its position's words belong to the ring's record there.
  if (sent && announced != position && !detail::in_journal_part(g, announced)) mark_moved(*s.map, s.group, announced);
  // release: pairs with the acquire load above in the next holder of the name.
  g.dead_letter_position.store(kNoPosition, std::memory_order_release);
  return sent && announced == position;
}

// Announces the move of `position` with `sequence`, then checks the record
// is still ours. seq_cst (the stores and still_mine's load) against a
// taker's seq_cst CAS and load of the announcement (deliverable): either
// we see it took the record (and give up), or it sees our announcement.
bool announce_move(State& s, std::uint64_t position, std::uint64_t sequence, bool ring) {
  GroupSlot& g = *s.g;
  g.dead_letter_sequence.store(sequence, std::memory_order_seq_cst);
  g.dead_letter_position.store(position, std::memory_order_seq_cst);
  if (!ring || s.map->ack_timeout_ns == 0 || still_mine(s, position)) return true;
  g.dead_letter_position.store(kNoPosition, std::memory_order_release);  // as settle_announced_move's
  return false;
}

void count_dead_letter(const State& s, DeadLetterReason reason, bool moved) {
  GroupSlot& g = *s.g;
  (moved ? g.dead_lettered : g.dropped).fetch_add(1, std::memory_order_relaxed);
  if (reason == DeadLetterReason::Expired) g.expired.fetch_add(1, std::memory_order_relaxed);
  if (reason == DeadLetterReason::Rejected) g.rejected.fetch_add(1, std::memory_order_relaxed);
}

DeadLetter origin_of(const State& s, const Message& m, DeadLetterReason reason, std::uint32_t deliveries) {
  DeadLetter d;
  d.origin_queue = s.map->name;
  d.origin_group.assign(s.g->name, ::strnlen(s.g->name, kNameBytes));
  d.origin_producer = std::string(m.producer());
  d.origin_sequence = m.sequence;
  d.origin_position = m.position;
  d.origin_timestamp_ns = m.timestamp_ns;
  d.reason = reason;
  d.deliveries = deliveries;
  return d;
}

constexpr auto kMoveTimeout = std::chrono::milliseconds(100);

// Moves a held message to the dead-letter queue (or drops it, counted, when
// the queue has none), exactly once. Ok: moved (or found moved); LeaseExpired:
// it was taken back first; anything else: not moved yet, still held (retry).
// `patience`: how long to wait for another mover of the group (reject waits;
// a move the receive path starts does not, and is retried instead).
Status move(State& s, const Message& m, DeadLetterReason reason, std::uint32_t deliveries,
            std::chrono::milliseconds patience) {
  const bool ring = !from_journal(s, m.position);
  if (s.map->dead_letter.empty()) {
    const Status acked = detail::ack_held(s, m.position);
    if (acked == Status::Ok) count_dead_letter(s, reason, false);
    return acked;
  }
  Queue* dead_letters = dead_letter_queue(s);
  if (dead_letters == nullptr) return Status::Deleted;
  std::optional<Producer> mover = attach_mover(s, *dead_letters, patience);
  if (!mover) return Status::Timeout;
  const std::uint64_t last = mover->last_sequence();
  bool sent = settle_announced_move(s, last, m.position) ||
              // acquire: pairs with mark_moved's release CAS.
              (ring && moved_to_dead_letter(s.map->delivery_word(s.group, m.position).load(std::memory_order_acquire),
                                            m.position));
  if (!sent) {
    if (!announce_move(s, m.position, last + 1, ring)) {
      erase_held(s, m.position);
      return Status::LeaseExpired;
    }
    const auto payload = detail::with_dead_letter_trailer(m.payload, origin_of(s, m, reason, deliveries));
    // Never waits for room: a full dead-letter queue is retried (the record
    // stays held, the ring fills, producers wait), not waited for here.
    Status status = mover->try_send(last + 1, payload);
    if (status == Status::Ok && dead_letters->durable()) status = mover->wait_durable(kMoveTimeout);
    if (status != Status::Ok) return status;  // the announcement stays: the next attempt settles it
    count_dead_letter(s, reason, true);
  } else if (dead_letters->durable()) {
    // Sent by a mover that died before its confirm: wait for the disk.
    const Status status = mover->wait_durable(kMoveTimeout);
    if (status != Status::Ok) return status;
  }
  if (ring) mark_moved(*s.map, s.group, m.position);
  const Status acked = detail::ack_held(s, m.position);
  s.g->dead_letter_position.store(kNoPosition, std::memory_order_release);  // as settle_announced_move's
  return acked == Status::LeaseExpired ? acked : Status::Ok;
}

// Moves it, or keeps it for a retry (retry_moves) when it cannot yet. What
// waits here does not count against the prefetch (receive_one).
void move_or_keep(State& s, const Message& m, DeadLetterReason reason, std::uint32_t deliveries) {
  const Status status = move(s, m, reason, deliveries, std::chrono::milliseconds(0));
  if (status == Status::Ok || status == Status::LeaseExpired) return;
  s.moves.push_back({m, reason, deliveries});
}

constexpr auto kPolicyLook = std::chrono::milliseconds(10);

// A kept move whose record this member no longer holds (a lease expiry
// took it back) is dropped: its next holder decides again.
void retry_moves(State& s) {
  auto moves = std::move(s.moves);
  s.moves.clear();
  for (const auto& pending : moves) {
    const std::uint64_t p = pending.message.position;
    if (!held_in_ring(s, p) && !from_journal(s, p)) {
      s.revoked.erase(p);
      continue;
    }
    move_or_keep(s, pending.message, pending.reason, pending.deliveries);
  }
}

// Makes a record just taken pending again, without counting a delivery.
void give_back_untaken(State& s, std::uint64_t position) {
  const Mapping& m = *s.map;
  std::atomic<std::uint64_t>& state = m.state_word(s.group, position);
  // acquire: pairs with the CAS that made it ours.
  std::uint64_t word = state.load(std::memory_order_acquire);
  erase_held(s, position);
  s.slot->delivered.store(s.slot->delivered.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  s.g->pending_redelivery.fetch_add(1, std::memory_order_relaxed);  // first, as return_to_group does
  // acq_rel: as return_to_group's CAS.
  if (!state.compare_exchange_strong(word, make_state(position, kPendingRedelivery), std::memory_order_acq_rel)) {
    s.g->pending_redelivery.fetch_sub(1, std::memory_order_relaxed);  // taken back meanwhile (lease)
  }
}

// A move of a redelivered record that stopped half-way (its mover died, or
// lost it to a lease expiry) may have sent it: settled before it is
// delivered. True when it may be delivered.
bool settle_interrupted_move(State& s, const Message& m) {
  // seq_cst: see announce_move.
  if (s.g->dead_letter_position.load(std::memory_order_seq_cst) != m.position) return true;
  const bool ring = !from_journal(s, m.position);
  Queue* dead_letters = dead_letter_queue(s);
  // A journal copy cannot be given back untouched: its mover is waited for
  // a little, and without it the copy is delivered (docs/design.md, Limits).
  const auto patience = ring ? std::chrono::milliseconds(0) : kMoveTimeout;
  std::optional<Producer> mover = dead_letters ? attach_mover(s, *dead_letters, patience) : std::nullopt;
  if (!mover && !ring) return true;
  if (!mover) {  // its mover is at work (or stopped): give it back untouched, for later
    give_back_untaken(s, m.position);
    return false;
  }
  if (!settle_announced_move(s, mover->last_sequence(), m.position)) return true;
  if (ring) mark_moved(*s.map, s.group, m.position);
  (void)detail::ack_held(s, m.position);
  return false;
}

bool expired(const Mapping& m, const Message& message) {
  const std::uint64_t now = detail::coarse_unix_time_ns();
  return now > message.timestamp_ns && now - message.timestamp_ns > m.ttl_ns;
}

// What the policy does with a record just taken: true to deliver it.
bool deliverable(State& s, Message& m) {
  const Mapping& map = *s.map;
  if (m.redelivered && !map.dead_letter.empty()) {
    // A journal copy has no delivery word of its own: only the announcement tells.
    const bool ring = !from_journal(s, m.position);
    // acquire: pairs with mark_moved's release CAS.
    const std::uint64_t word = ring ? map.delivery_word(s.group, m.position).load(std::memory_order_acquire) : 0;
    if (ring && moved_to_dead_letter(word, m.position)) {  // in the dead-letter queue already
      (void)detail::ack_held(s, m.position);
      return false;
    }
    if (!settle_interrupted_move(s, m)) return false;
  }
  if (map.max_deliveries != 0 && m.deliveries > map.max_deliveries) {
    move_or_keep(s, m, DeadLetterReason::MaxDeliveries, m.deliveries - 1);
    return false;
  }
  if (map.ttl_ns != 0 && expired(map, m)) {
    move_or_keep(s, m, DeadLetterReason::Expired, m.deliveries - 1);
    return false;
  }
  return true;
}

// Queues with an ack timeout: when the record just taken was taken. A ring
// record was just appended to `held` (a journal copy has no lease).
void note_taken(State& s, std::uint64_t position) {
  if (s.map->ack_timeout_ns == 0 || s.held.empty() || s.held.back() != position) return;
  const std::int64_t now = detail::monotonic_ns();
  s.taken_at[position] = now;
  // relaxed: a report for expire_leases, which decides by the state words.
  if (s.held.size() == 1) s.slot->held_since_ns.store(now, std::memory_order_relaxed);
}

// A live member gives back, one by one, what it has held past the ack
// timeout (it knows when it took each): exactly those, oldest first, so the
// sweep of whole members (expire_leases) is left for members that do not
// look, stuck ones.
void give_back_expired(State& s) {
  const std::int64_t now = detail::monotonic_ns();
  while (!s.held.empty()) {
    const std::uint64_t p = s.held.front();
    const auto taken = s.taken_at.find(p);
    if (taken == s.taken_at.end() || now - taken->second < static_cast<std::int64_t>(s.map->ack_timeout_ns)) return;
    // acquire: pairs with the CAS that made it ours (or took it back).
    const std::uint64_t word = s.map->state_word(s.group, p).load(std::memory_order_acquire);
    const bool mine = held_by_me(s, word, p);
    erase_held(s, p);
    s.revoked.insert(p);  // its ack: LeaseExpired
    if (mine && detail::return_to_group(*s.map, s.group, p, word)) {
      s.g->lease_expired.fetch_add(1, std::memory_order_relaxed);
      detail::notify(s.map->header->data);
    }
  }
}

// The periodic work of a member: retries, and taking back what is held past
// the ack timeout: its own records, and (without shmqd, or between its looks)
// what stuck members hold.
void look_around(State& s) {
  const auto now = Clock::now();
  if (now < s.next_policy_look) return;
  s.next_policy_look = now + kPolicyLook;
  if (!s.moves.empty()) retry_moves(s);
  if (s.map->ack_timeout_ns == 0) return;
  give_back_expired(s);
  (void)detail::expire_leases(*s.map);
}

}  // namespace

void detail::forget_taken(State& s, std::uint64_t position, bool lease_expired) noexcept {
  if (s.map->ack_timeout_ns == 0) return;
  s.taken_at.erase(position);
  if (lease_expired) {  // others went with it, most likely: set apart, their acks refused
    std::erase_if(s.held, [&](std::uint64_t p) {
      if (still_mine(s, p)) return false;
      s.taken_at.erase(p);
      s.revoked.insert(p);
      return true;
    });
  }
  const auto oldest = s.held.empty() ? s.taken_at.end() : s.taken_at.find(s.held.front());
  s.slot->held_since_ns.store(oldest == s.taken_at.end() ? 0 : oldest->second, std::memory_order_relaxed);
}

Status detail::receive_with_policy(State& s, Message& out) noexcept {
  try {
    look_around(s);
    // Bounded: each pass takes a record and settles it; a queue full of
    // poison must not keep one call here for ever.
    for (int attempt = 0; attempt < 64; ++attempt) {
      const Status status = receive_one(s, out);
      if (status != Status::Ok) return status;
      note_taken(s, out.position);
      if (deliverable(s, out)) return Status::Ok;
    }
  } catch (const std::bad_alloc&) {
    // Out of memory for a move's copy: what is held stays held, retried.
  }
  return Status::Empty;
}

Status Consumer::nack(const Message& message) noexcept {
  State& s = *s_;
  if (from_journal(s, message.position)) return Status::NotInFlight;  // docs/design.md: not for journal copies
  if (!held_in_ring(s, message.position)) return not_held(s, message.position);
  const Mapping& m = *s.map;
  // acquire: pairs with the CAS that made it ours (or took it back).
  const std::uint64_t word = m.state_word(s.group, message.position).load(std::memory_order_acquire);
  const bool mine = m.ack_timeout_ns == 0 || still_mine(s, message.position);
  erase_held(s, message.position);
  if (!mine || !detail::return_to_group(m, s.group, message.position, word)) return Status::LeaseExpired;
  s.g->nacked.fetch_add(1, std::memory_order_relaxed);
  detail::notify(m.header->data);  // another member may be waiting for it
  return Status::Ok;
}

Status Consumer::reject(const Message& message) noexcept {
  State& s = *s_;
  if (!from_journal(s, message.position) && !held_in_ring(s, message.position)) return not_held(s, message.position);
  if (s.map->ack_timeout_ns != 0 && !from_journal(s, message.position) && !still_mine(s, message.position)) {
    erase_held(s, message.position);
    return Status::LeaseExpired;
  }
  try {
    return move(s, message, DeadLetterReason::Rejected, message.deliveries, kMoveTimeout);
  } catch (const std::bad_alloc&) {
    return Status::Timeout;  // nothing moved: still held
  }
}

}  // namespace shmq
