// The consumer: take (CAS on the record's state word, then help the group's
// read cursor past it), ack (store the state word), release (CAS the group's
// released cursor past acked records, freeing ring space).
//
// Ownership of a record is the state word CAS: atomic, visible in shared
// memory, so a dead member's records are found and redelivered (recovery.cpp).
#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <string>

#include "durable/group_journal.hpp"
#include "journal/journal.hpp"
#include "durable/journal_reader.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "recovery/repair.hpp"
#include "shmq/consumer.hpp"
#include "shm/wait.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

struct Consumer::State {
  std::shared_ptr<Mapping> map;
  std::uint32_t group = 0;
  std::uint32_t index = 0;
  GroupSlot* g = nullptr;
  ConsumerSlot* slot = nullptr;
  ConsumerOptions options;
  bool created_group = false;
  std::deque<std::uint64_t> held;  // positions in flight from the ring, in the order taken
  // A durable queue's group that reads its journal (group_journal.hpp): the
  // copies this member holds from it, in position order, and the reader.
  std::deque<detail::JournalRecord> journal_held;
  std::optional<detail::JournalReader> journal;
  std::string journal_error;

  [[nodiscard]] std::size_t in_flight() const noexcept { return held.size() + journal_held.size(); }
};

namespace {

bool group_name_is(const GroupSlot& g, std::string_view name) {
  return std::string_view(g.name, ::strnlen(g.name, kNameBytes)) == name;
}

bool attached(const std::atomic<std::uint32_t>& state) {
  return state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

std::uint32_t find_group(const Mapping& m, std::string_view name) {
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (attached(m.groups[g].state) && group_name_is(m.groups[g], name)) return g;
  }
  return m.max_groups;
}

// The first record at or after `from` matching `accept`, walking from `start`;
// `messages` counts the data records passed.
template <class Accept>
std::uint64_t walk_to(const Mapping& m, std::uint64_t start, std::uint64_t& messages, Accept&& accept) {
  const std::uint64_t tail = m.header->tail.load(std::memory_order_acquire);
  std::uint64_t p = start;
  while (p != tail && m.commit_word(p).load(std::memory_order_acquire) == p) {
    RecordHeader h;
    const std::uint64_t span = detail::record_span(m, p, &h);
    if (span == 0) break;
    if (h.type == static_cast<std::uint16_t>(RecordType::Data) && accept(p, h)) break;
    if (h.type == static_cast<std::uint16_t>(RecordType::Data)) ++messages;
    p += span;
  }
  return p;
}

// Under the lock, inside the groups_epoch window: where a new group starts.
std::uint64_t start_position(const Mapping& m, std::uint32_t self, const ConsumerOptions& o,
                             std::uint64_t& messages) {
  QueueHeader& h = *m.header;
  // Oldest safe start: the slowest other group's released position (every
  // producer's limit respects it), or head when there is none.
  std::uint64_t start = h.head.load(std::memory_order_seq_cst);
  messages = h.head_messages.load(std::memory_order_relaxed);
  bool any = false;
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (g == self || !attached(m.groups[g].state)) continue;
    // A group reading the journal pins no ring record (durable queues only).
    const std::uint64_t released =
        m.durable ? detail::ring_pin(m.groups[g]) : m.groups[g].released.load(std::memory_order_seq_cst);
    if (released == kNoPosition) continue;
    if (!any || !at_or_after(released, start)) {
      start = released;
      messages = m.acked_messages(g);
    }
    any = true;
  }
  switch (o.start) {
    case StartAt::Oldest:
      return start;
    case StartAt::Newest: {
      std::uint64_t total = 0;
      for (std::uint32_t i = 0; i < m.max_producers; ++i) total += m.producers[i].messages.load(std::memory_order_relaxed);
      messages = total;
      return h.tail.load(std::memory_order_seq_cst);
    }
    case StartAt::Position:
      return walk_to(m, start, messages, [&](std::uint64_t p, const RecordHeader&) {
        return at_or_after(p, o.start_position);
      });
    case StartAt::Time:
      return walk_to(m, start, messages, [&](std::uint64_t, const RecordHeader& r) {
        return r.timestamp_ns >= o.start_time_ns;
      });
  }
  return start;
}

// A durable queue's replay: where a new group would start in the journal,
// which may reach further back than the ring. Read before taking the lock.
std::optional<std::uint64_t> journal_start(const Mapping& m, const ConsumerOptions& o) {
  if (!m.durable || o.start == StartAt::Newest) return std::nullopt;
  journal::Options options;
  options.max_payload = std::max<std::uint32_t>(m.max_message, 1u << 20);
  try {
    if (o.start == StartAt::Time) return journal::first_at_or_after_time(o.journal_dir, m.name, o.start_time_ns, options);
    auto cursor = journal::Cursor::open(o.journal_dir, m.name, o.start == StartAt::Position ? o.start_position : 0, options);
    const auto first = cursor.next();
    return first ? std::optional(first->position) : std::nullopt;
  } catch (const journal::JournalError& e) {
    throw Error(Errc::Corrupt, "cannot read the journal of queue '" + m.name + "' to start group at: " + e.what());
  }
}

std::uint32_t create_group(const Mapping& m, std::string_view name, const ConsumerOptions& o,
                           std::optional<std::uint64_t> from_journal) {
  std::uint32_t g = 0;
  while (g < m.max_groups && m.groups[g].state.load(std::memory_order_acquire) != 0) ++g;
  if (g == m.max_groups) {
    throw Error(Errc::TableFull, "all " + std::to_string(m.max_groups) + " consumer groups of queue '" + m.name +
                                     "' are in use; delete one first");
  }
  GroupSlot& group = m.groups[g];
  // The entry is free, so no process touches its state words: clear what an
  // earlier group left, which could otherwise pass for this group's acks.
  std::memset(static_cast<void*>(&m.state_word(g, 0)), 0, m.chunks * sizeof(std::uint64_t));
  std::memset(group.name, 0, kNameBytes);
  std::memcpy(group.name, name.data(), name.size());
  group.retired_delivered.store(0, std::memory_order_relaxed);
  group.retired_acked.store(0, std::memory_order_relaxed);
  group.pending_redelivery.store(0, std::memory_order_relaxed);
  group.redelivered.store(0, std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
    m.consumer(g, c).state.store(static_cast<std::uint32_t>(SlotState::Free), std::memory_order_relaxed);
  }
  QueueHeader& h = *m.header;
  h.groups_epoch.fetch_add(1, std::memory_order_seq_cst);  // odd: producers' scans now retry
  std::uint64_t messages = 0;
  const std::uint64_t start = start_position(m, g, o, messages);
  if (from_journal && *from_journal < start) {
    detail::start_in_journal(group, *from_journal, 0);
  } else {
    group.read.store(start, std::memory_order_relaxed);
    group.released.store(start, std::memory_order_relaxed);
    group.journal_from.store(0, std::memory_order_relaxed);
    group.journal_to.store(0, std::memory_order_relaxed);
    group.journal_read.store(0, std::memory_order_relaxed);
    group.journal_reader.store(0, std::memory_order_relaxed);
  }
  group.start_messages.store(messages, std::memory_order_relaxed);
  group.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_seq_cst);
  h.groups_epoch.fetch_add(1, std::memory_order_seq_cst);  // even: the group is in place
  return g;
}

}  // namespace

Consumer Consumer::join(const Queue& queue, std::string_view group_name, ConsumerOptions options) {
  validate_name(group_name, "group");
  if (options.prefetch == 0 || options.prefetch > 65536) {
    throw Error(Errc::InvalidArgument, "prefetch must be 1..65536");
  }
  const auto& map = detail::mapping_of(queue);
  if (map->read_only) throw Error(Errc::InvalidArgument, "queue opened read-only");
  const Mapping& m = *map;
  auto st = std::make_unique<State>();
  st->map = map;
  st->options = std::move(options);
  if (m.durable && st->options.journal_dir.empty()) {
    try {
      st->options.journal_dir = (daemon_data_dir(m.ns) / "journal" / m.name).string();
    } catch (const Error&) {  // no HOME: only a group that must read the journal fails, and says why
    }
  }
  // Read outside the lock (a time may scan the whole journal), and only for a
  // group that does not exist yet: a race only makes it unused.
  const bool replay_possible = m.durable && [&] {
    const detail::SegmentLock lock(m);
    return find_group(m, group_name) == m.max_groups;
  }();
  const auto from_journal = replay_possible ? journal_start(m, st->options) : std::nullopt;
  detail::SegmentLock lock(m);
  detail::settle_groups_epoch(m);
  std::uint32_t g = find_group(m, group_name);
  if (g == m.max_groups) {
    g = create_group(m, group_name, st->options, from_journal);
    st->created_group = true;
  }
  detail::settle_journal_switch(m, g);
  // Dead members first: what they held goes back to the group.
  std::uint32_t free_index = m.max_consumers;
  for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
    ConsumerSlot& slot = m.consumer(g, c);
    if (attached(slot.state) && !detail::process_alive(slot.pid.load(std::memory_order_relaxed),
                                                       slot.start_time.load(std::memory_order_relaxed))) {
      detail::release_consumer(m, g, c);
      m.header->clients_reaped.fetch_add(1, std::memory_order_relaxed);
    }
    if (!attached(slot.state) && free_index == m.max_consumers) free_index = c;
  }
  if (free_index == m.max_consumers) {
    throw Error(Errc::TableFull, "group '" + std::string(group_name) + "' already has " +
                                     std::to_string(m.max_consumers) + " consumers");
  }
  ConsumerSlot& slot = m.consumer(g, free_index);
  slot.prefetch = options.prefetch;
  slot.pid.store(detail::self_pid(), std::memory_order_relaxed);
  slot.start_time.store(detail::self_start_time(), std::memory_order_relaxed);
  slot.in_flight.store(0, std::memory_order_relaxed);
  slot.delivered.store(0, std::memory_order_relaxed);
  slot.acked.store(0, std::memory_order_relaxed);
  slot.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_release);
  st->group = g;
  st->index = free_index;
  st->g = &m.groups[g];
  st->slot = &slot;
  detail::announce_table_change(m);
  return Consumer(std::move(st));
}

Consumer::Consumer(std::unique_ptr<State> state) : s_(std::move(state)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&&) noexcept = default;

Consumer::~Consumer() {
  if (!s_) return;
  detail::SegmentLock lock(*s_->map);
  detail::release_consumer(*s_->map, s_->group, s_->index);
}

bool Consumer::created_group() const noexcept { return s_->created_group; }
std::uint32_t Consumer::index() const noexcept { return s_->index; }
std::uint32_t Consumer::in_flight() const noexcept { return static_cast<std::uint32_t>(s_->in_flight()); }
const std::string& Consumer::journal_error() const noexcept { return s_->journal_error; }

namespace {

// `h`: the header copy record_span() checked (never re-read: a peer may change it).
void fill(const Mapping& m, std::uint64_t position, const RecordHeader& h, bool redelivered, Message& out) {
  out.payload = {m.at(position) + sizeof(RecordHeader), h.length};
  out.position = position;
  out.sequence = h.sequence;
  out.timestamp_ns = h.timestamp_ns;
  out.producer_id = h.producer_id;
  out.redelivered = redelivered;
}

// Advances the group's released cursor past every acked record at its front,
// and wakes producers waiting for the space.
void release_acked(const Mapping& m, std::uint32_t group) {
  GroupSlot& g = m.groups[group];
  bool released_any = false;
  // Pairs with the same fence in every other member's release_acked: each
  // stored its ack, then looks at the front. Without the fence both could
  // miss the other's ack (store-load reordering) and leave the front acked
  // but unreleased for ever.
  std::atomic_thread_fence(std::memory_order_seq_cst);
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

// Takes a record whose holder died, if any: redeliveries come before new records.
bool take_redelivery(const Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  std::uint64_t p = detail::past_journal_part(g, g.released.load(std::memory_order_acquire));
  const std::uint64_t read = detail::read_position(g.read.load(std::memory_order_acquire));
  for (std::uint64_t steps = 0; p != read && p != kNoPosition && steps < m.chunks; ++steps) {
    std::uint64_t word = m.state_word(s.group, p).load(std::memory_order_acquire);
    RecordHeader h;
    const std::uint64_t span = detail::record_span(m, p, &h);
    if (span != 0 && h.type == static_cast<std::uint16_t>(RecordType::Data) && state_is_for(word, p) &&
        state_code(word) == kPendingRedelivery &&
        m.state_word(s.group, p).compare_exchange_strong(
            word, make_state(p, static_cast<std::uint8_t>(s.index | kRedeliveredBit)), std::memory_order_acq_rel)) {
      g.pending_redelivery.fetch_sub(1, std::memory_order_relaxed);
      fill(m, p, h, true, out);
      return true;
    }
    // Seqlock-style check: the header read above was valid only if the record
    // was still unreleased after it.
    std::atomic_thread_fence(std::memory_order_acquire);
    if (span == 0 || at_or_after(g.released.load(std::memory_order_relaxed), p + 1)) return false;
    p = detail::past_journal_part(g, p + span);
  }
  return false;
}

enum class Take { Taken, Empty, Stalled, Corrupt };

// A durable queue delivers a record only once the journal has synced it, so
// nothing a consumer saw can vanish in a power loss (and come again, unflagged,
// when its producer resends it). The journal writer wakes `data` waiters.
bool synced_past(const Mapping& m, std::uint64_t position) {
  // acquire: pairs with the journal writer's release store.
  return !m.durable || at_or_after(m.header->journal_synced.load(std::memory_order_acquire), position + 1);
}

// After reading a record's header: was the record still unreleased, so the
// bytes read were really its own? (A seqlock-style re-check: if `read` has
// not moved, nothing at or after it was released or overwritten.)
bool still_unreleased(const GroupSlot& g, std::uint64_t read) {
  std::atomic_thread_fence(std::memory_order_acquire);
  return g.read.load(std::memory_order_relaxed) == read;
}

// Moves the group's read cursor past the taken record at `from`, unless a
// helping member already did. (A copy: a failed CAS would overwrite it.)
void advance_read(GroupSlot& g, std::uint64_t from, std::uint64_t span) {
  g.read.compare_exchange_strong(from, from + span, std::memory_order_acq_rel);
}

// One attempt at the next record of the group.
Take take_next(const Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // Bounded: a hostile peer's state words must not spin us forever.
  for (int attempt = 0; attempt < 4096; ++attempt) {
    std::uint64_t read = g.read.load(std::memory_order_acquire);
    if (detail::read_closed(read)) return Take::Empty;  // the group reads the journal
    if (!synced_past(m, read)) return Take::Empty;
    // acquire: pairs with the producer's release store of the commit word,
    // making the header and payload visible.
    if (m.commit_word(read).load(std::memory_order_acquire) != read) {
      return m.header->tail.load(std::memory_order_relaxed) == read ? Take::Empty : Take::Stalled;
    }
    RecordHeader h;
    const std::uint64_t span = detail::record_span(m, read, &h);
    const bool data = h.type == static_cast<std::uint16_t>(RecordType::Data);
    if (span == 0 && !still_unreleased(g, read)) continue;  // a later lap's bytes, not corruption
    std::atomic<std::uint64_t>& state = m.state_word(s.group, read);
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
    if (!state.compare_exchange_strong(word, make_state(read, code), std::memory_order_acq_rel)) continue;
    advance_read(g, read, span);
    if (!data) {  // padding or skipped: nothing to deliver, acked at once
      release_acked(m, s.group);
      continue;
    }
    fill(m, read, h, false, out);
    return Take::Taken;
  }
  return Take::Empty;
}

void count_delivery(Consumer::State& s) {
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  s.slot->delivered.store(s.slot->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void count_ring_delivery(Consumer::State& s, const Message& out) {
  s.held.push_back(out.position);
  count_delivery(s);
}

// ---- reading the journal (group_journal.hpp) ---------------------------------

// Only the lease holder reads the journal and writes journal_read/_acked.
bool hold_journal_lease(const Consumer::State& s) {
  const std::uint32_t mine = s.index + 1;
  std::uint32_t holder = s.g->journal_reader.load(std::memory_order_acquire);
  if (holder == mine) return true;
  // acq_rel: pairs with drop_journal_reader's release store, so the
  // journal_read it reset is what we read from.
  return holder == 0 && s.g->journal_reader.compare_exchange_strong(holder, mine, std::memory_order_acq_rel);
}

// Publishes how far the journal records are acked (all below the oldest one
// held) and releases them; gives the lease up once the journal part is done.
void publish_journal_acked(Consumer::State& s) {
  GroupSlot& g = *s.g;
  const std::uint64_t read = g.journal_read.load(std::memory_order_relaxed);
  const std::uint64_t acked = s.journal_held.empty() ? read : s.journal_held.front().position;
  g.journal_acked.store(acked, std::memory_order_release);  // pairs with release_journal_acked
  if (s.journal_held.empty() && read >= g.journal_to.load(std::memory_order_acquire)) {
    g.journal_reader.store(0, std::memory_order_release);
  }
  release_acked(*s.map, s.group);
}

// Everything below P is handed out: the ring takes over at P.
void finish_journal_part(Consumer::State& s, std::uint64_t to) {
  GroupSlot& g = *s.g;
  g.journal_read.store(to, std::memory_order_relaxed);
  // When P is X, the record there was never this group's, but its state word
  // says "closed": clear it before members can look (the read is still closed).
  std::uint64_t closed = make_state(to, kClosed);
  s.map->state_word(s.group, to).compare_exchange_strong(closed, 0, std::memory_order_acq_rel);
  std::uint64_t read = g.read.load(std::memory_order_acquire);
  // acq_rel: members that see the open read see P's pin (stored before, seq_cst).
  if (detail::read_closed(read)) g.read.compare_exchange_strong(read, to, std::memory_order_acq_rel);
  publish_journal_acked(s);
  detail::notify(s.map->header->data);  // other members may take from the ring again
}

// Caught up with the journal's end: the ring pins the group's records again
// from the journal's current end. Tries the lock only; next time otherwise.
void pin_ring(Consumer::State& s) {
  const detail::SegmentLock lock(*s.map, detail::SegmentLock::TryTag{});
  if (lock.owned()) detail::pin_ring_at_journal_end(*s.map, *s.g);
}

void deliver_from_journal(Consumer::State& s, Message& out) {
  GroupSlot& g = *s.g;
  detail::JournalRecord& r = s.journal_held.emplace_back(s.journal->pop());
  g.journal_read.store(r.end, std::memory_order_relaxed);
  out.payload = r.payload;
  out.position = r.position;
  out.sequence = r.sequence;
  out.timestamp_ns = r.timestamp_ns;
  out.producer_id = r.producer_id;
  out.redelivered = r.position < g.journal_redeliver_below.load(std::memory_order_relaxed);
  if (out.redelivered) {
    g.redelivered.fetch_add(1, std::memory_order_relaxed);
    s.map->header->redelivered.fetch_add(1, std::memory_order_relaxed);
  }
  count_delivery(s);
}

// One attempt at the group's next record from the journal. Empty also when
// the journal part has just ended: the ring has the rest.
Take take_from_journal(Consumer::State& s, Message& out) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  if (g.journal_to.load(std::memory_order_acquire) == 0 || !hold_journal_lease(s)) return Take::Empty;
  if (!s.journal) s.journal.emplace(s.options.journal_dir, m.name, m.max_message);
  for (int attempt = 0; attempt < 2; ++attempt) {
    // acquire: pairs with the stores of P (seq_cst) made by us or a switch.
    const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
    const std::uint64_t read = g.journal_read.load(std::memory_order_relaxed);
    if (read >= to) {  // all handed out: the ring takes over, if it has not yet
      if (detail::read_closed(g.read.load(std::memory_order_acquire))) {
        finish_journal_part(s, to);
      } else {
        publish_journal_acked(s);  // gives back the lease we just took
      }
      return Take::Empty;
    }
    detail::JournalRecord* next = s.journal->peek(read);
    if (next != nullptr && next->position < to && synced_past(m, next->position)) {
      deliver_from_journal(s, out);
      return Take::Taken;
    }
    if (to != kNoPosition) {
      // Every record below P is in the files (P was journal_written), so
      // nothing more below P: done, unless the next one waits for its sync.
      if (next == nullptr || next->position >= to) finish_journal_part(s, to);
      return Take::Empty;
    }
    pin_ring(s);  // caught up with what is synced
  }
  return Take::Empty;
}

// Does the group have records to read from the journal: while its ring read
// is closed, and after a reader died with records in [journal_read, P).
bool journal_work(const GroupSlot& g) {
  if (detail::read_closed(g.read.load(std::memory_order_acquire))) return true;
  const std::uint64_t to = g.journal_to.load(std::memory_order_acquire);
  return to != 0 && g.journal_read.load(std::memory_order_relaxed) < to;
}

}  // namespace

Status Consumer::try_receive(Message& out) noexcept {
  State& s = *s_;
  if (s.in_flight() >= s.options.prefetch) return Status::InFlightLimit;
  if (s.g->pending_redelivery.load(std::memory_order_acquire) != 0 && take_redelivery(s, out)) {
    count_ring_delivery(s, out);
    return Status::Ok;
  }
  if (s.map->durable && journal_work(*s.g)) {
    // Twice: a cursor that read ahead of the sync may stand in bytes shmqd
    // cut and wrote again after a failed fdatasync (fsyncgate), at other
    // offsets; a fresh cursor reads what the files hold now. Damage that is
    // still there the second time is real.
    for (int attempt = 0;; ++attempt) {
      try {
        if (take_from_journal(s, out) == Take::Taken) return Status::Ok;
        break;
      } catch (const std::exception& e) {
        s.journal.reset();
        if (attempt == 0) continue;
        s.journal_error = e.what();
        return Status::JournalUnreadable;
      }
    }
  }
  switch (take_next(s, out)) {
    case Take::Taken:
      count_ring_delivery(s, out);
      return Status::Ok;
    case Take::Corrupt:
      return Status::Corrupt;
    case Take::Empty:
    case Take::Stalled:
      break;
  }
  return Status::Empty;
}

namespace {

// Called while a receive sleeps: if the group is stuck behind a claim that was
// never committed, try to repair it (the repair proves its owner dead first).
// Returns how long to sleep before the next look.
Duration on_idle(const Consumer::State& s) {
  const Mapping& m = *s.map;
  const std::uint64_t read = s.g->read.load(std::memory_order_acquire);
  if (detail::read_closed(read)) return detail::kMaxSleep;
  const bool stalled = m.header->tail.load(std::memory_order_acquire) != read &&
                       m.commit_word(read).load(std::memory_order_acquire) != read;
  if (!stalled) return detail::kMaxSleep;
  // Try only: a stopped process holding the lock must not stall this wait.
  const detail::SegmentLock lock(m, detail::SegmentLock::TryTag{});
  if (!lock.owned()) return std::chrono::milliseconds(1);
  const auto result = detail::repair_hole(m, read);
  return result == detail::RepairResult::OwnerAlive ? std::chrono::milliseconds(1) : detail::kMaxSleep;
}

}  // namespace

Status Consumer::receive(Message& out, Duration timeout) noexcept {
  Status status = try_receive(out);
  if (status != Status::Empty) return status;
  const bool ok = detail::wait_until(
      s_->map->header->data, detail::deadline_after(timeout), s_->options.wait.spin,
      [&] { return (status = try_receive(out)) != Status::Empty; }, [&] { return on_idle(*s_); });
  return ok ? status : detail::wait_failure(s_->map->header->data);
}

std::size_t Consumer::try_receive_batch(std::span<Message> out) noexcept {
  std::size_t n = 0;
  while (n < out.size() && try_receive(out[n]) == Status::Ok) ++n;
  return n;
}

namespace {

// The holder's ack: only the holder moves a record out of its in-flight state
// while it lives, so a plain store does.
void mark_acked(Consumer::State& s, std::uint64_t position) {
  // release: pairs with release_acked's acquire load.
  s.map->state_word(s.group, position).store(make_state(position, kAcked), std::memory_order_release);
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

// Acks a copy read from the journal, if this member holds one at `position`.
bool ack_from_journal(Consumer::State& s, std::uint64_t position) {
  const auto it = std::ranges::find(s.journal_held, position, &detail::JournalRecord::position);
  if (it == s.journal_held.end()) return false;
  s.journal_held.erase(it);
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  publish_journal_acked(s);
  return true;
}

}  // namespace

Status Consumer::ack(const Message& message) noexcept {
  State& s = *s_;
  if (!s.journal_held.empty() && ack_from_journal(s, message.position)) return Status::Ok;
  // Acks usually come in the order of receipt: the front, in O(1).
  if (!s.held.empty() && s.held.front() == message.position) {
    s.held.pop_front();
  } else {
    const auto it = std::find(s.held.begin(), s.held.end(), message.position);
    if (it == s.held.end()) return Status::NotInFlight;
    s.held.erase(it);
  }
  mark_acked(s, message.position);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  release_acked(*s.map, s.group);
  return Status::Ok;
}

std::size_t Consumer::ack_up_to(std::uint64_t position) noexcept {
  State& s = *s_;
  const auto before = s.in_flight();
  std::erase_if(s.held, [&](std::uint64_t p) {
    if (p > position) return false;  // plain compare: positions stay below 2^62, and UINT64_MAX means all
    mark_acked(s, p);
    return true;
  });
  const auto journal_before = s.journal_held.size();
  // Held in position order: the front ones.
  while (!s.journal_held.empty() && s.journal_held.front().position <= position) s.journal_held.pop_front();
  const auto journal_acked = journal_before - s.journal_held.size();
  s.slot->acked.store(s.slot->acked.load(std::memory_order_relaxed) + journal_acked, std::memory_order_relaxed);
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  if (journal_acked != 0) {
    publish_journal_acked(s);  // releases the ring's acks too
  } else if (s.in_flight() != before) {
    release_acked(*s.map, s.group);
  }
  return before - s.in_flight();
}

}  // namespace shmq
