// Group membership: joining a group (creating it, and choosing where it
// starts), leaving it, and deleting a group. All of it under the segment
// lock; the data path (ring/consumer.cpp) never takes it.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "durable/group_journal.hpp"
#include "journal/journal.hpp"
#include "recovery/repair.hpp"
#include "ring/consumer_state.hpp"
#include "shm/groups_epoch.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "shm/wait.hpp"
#include "shmq/journal.hpp"
#include "shmq/queue.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

namespace {

std::string_view bounded(const char (&name)[kNameBytes]) { return {name, ::strnlen(name, kNameBytes)}; }

bool attached(const std::atomic<std::uint32_t>& state) {
  // acquire: pairs with the release (or seq_cst) store that attached the entry.
  return state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

std::uint32_t find_group(const Mapping& m, std::string_view name) {
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (attached(m.groups[g].state) && bounded(m.groups[g].name) == name) return g;
  }
  return m.max_groups;
}

// The first data record matching `accept`, walking the ring from `start`;
// `messages` counts the data records passed. The ring below `safe` may be
// overwritten under the walk (start_position): a header read there counts
// only if head has not passed it since (a producer writes over position p
// only with a limit, head + capacity, past p + capacity); otherwise the walk
// stops there, `lost` set.
template <class Accept>
std::uint64_t walk_to(const Mapping& m, std::uint64_t start, std::uint64_t safe, std::uint64_t& messages, bool& lost,
                      Accept&& accept) {
  // acquire: pairs with the producers' release CAS of tail (their claims).
  const std::uint64_t tail = m.header->tail.load(std::memory_order_acquire);
  std::uint64_t p = start;
  while (p != tail) {
    const bool committed = m.committed(p);
    RecordFields h;
    const std::uint64_t span = committed ? detail::record_span(m, p, &h) : 0;
    if (!at_or_after(p, safe)) {
      // A seqlock's second load (as still_unreleased, durable/group_journal.cpp):
      // the fence orders the reads above before it. relaxed: through the
      // fence, it pairs with the producers' seq_cst CAS of head.
      std::atomic_thread_fence(std::memory_order_acquire);
      if (at_or_after(m.header->head.load(std::memory_order_relaxed), p + 1)) {
        lost = true;
        break;
      }
    }
    if (span == 0) break;  // not committed yet (or corrupt)
    if (h.type == static_cast<std::uint16_t>(RecordType::Data) && accept(p, h)) break;
    if (h.type == static_cast<std::uint16_t>(RecordType::Data)) ++messages;
    p += span;
  }
  return p;
}

// What the journal says about a new group's start, read before taking the
// lock (a time may scan the whole journal): the first record there that the
// start accepts (none: no such record, or no journal found), and whether the
// consumer finds the journal at all.
struct JournalStart {
  std::optional<std::uint64_t> first;
  bool found = false;
};

// Where a new group starts: in the ring, or in the journal (then the ring).
struct Start {
  std::uint64_t position = 0;
  bool journal = false;
};

// Under the lock, inside a groups_epoch window (shm/groups_epoch.hpp): where
// a new group starts. The ring serves a start at or above `safe`: the
// slowest other group's pin, or head when there is none (every producer's
// limit respects them); in a durable queue with no other group in the ring,
// also no lower than journal_written ("S = head, durable" there). Below it,
// the journal serves the start: it holds every record below journal_written.
// A consumer that cannot find the journal starts at `safe` (what the ring
// keeps), as a replay without its journal gets only what the ring holds.
Start start_position(const Mapping& m, std::uint32_t self, const ConsumerOptions& o, const JournalStart& journal,
                     std::uint64_t& messages) {
  QueueHeader& h = *m.header;
  // seq_cst: in the total order with the producers' floor scans (groups_epoch.hpp).
  std::uint64_t oldest = h.head.load(std::memory_order_seq_cst);
  messages = h.head_messages.load(std::memory_order_relaxed);
  bool any = false;
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (g == self || !attached(m.groups[g].state)) continue;
    // A group reading the journal pins no ring record (durable queues only).
    // seq_cst: pairs with the members' seq_cst CAS of released.
    const std::uint64_t released =
        m.durable ? detail::ring_pin(m.groups[g]) : m.groups[g].released.load(std::memory_order_seq_cst);
    if (released == kNoPosition) continue;
    if (!any || !at_or_after(released, oldest)) {
      oldest = released;
      messages = m.acked_messages(g);
    }
    any = true;
  }
  std::uint64_t safe = oldest;
  if (m.durable && !any) {
    // No other group pins the ring: a producer whose floor scan preceded this
    // window may still raise head to the journal_written that scan loaded.
    // seq_cst: in the total order with the producers' seq_cst loads of it in
    // release_floor, so no less than any that preceded this window
    // (groups_epoch.hpp); pairs with the journal writer's release store,
    // made once the records below it are in the journal files.
    const std::uint64_t written = h.journal_written.load(std::memory_order_seq_cst);
    if (at_or_after(written, safe)) safe = written;
  }
  if (o.start == StartAt::Newest) {
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < m.max_producers; ++i) total += m.producers[i].messages.load(std::memory_order_relaxed);
    messages = total;
    return {h.tail.load(std::memory_order_seq_cst), false};  // seq_cst: as head above
  }
  const auto accept = [&](std::uint64_t p, const RecordFields& r) {
    return o.start == StartAt::Time ? r.timestamp_ns >= o.start_time_ns : at_or_after(p, o.start_position);
  };
  bool lost = false;
  std::uint64_t ring = o.start == StartAt::Oldest ? oldest : walk_to(m, oldest, safe, messages, lost, accept);
  if (lost && o.start == StartAt::Position && at_or_after(o.start_position, safe)) {
    // What the walk could not read lies below the start anyway.
    lost = false;
    ring = walk_to(m, safe, safe, messages, lost, accept);
  }
  // A replay: the journal reaches further back than the ring.
  if (journal.first && !at_or_after(*journal.first, ring)) return {*journal.first, true};
  if (at_or_after(ring, safe)) return {ring, false};
  // Below safe (a durable queue, no other group in the ring). Where the walk
  // stopped because head passed it, the journal's own answer is exact (it is
  // at or above `ring`, see above); without one, the group starts where the
  // walk stopped: records before its start come too, never one too few.
  if (journal.found) return {lost && journal.first ? *journal.first : ring, true};
  lost = false;
  return {o.start == StartAt::Oldest ? safe : walk_to(m, safe, safe, messages, lost, accept), false};
}

// A durable queue's replay: where a new group would start in the journal,
// which may reach further back than the ring.
JournalStart journal_start(const Mapping& m, const ConsumerOptions& o) {
  if (!m.durable || o.start == StartAt::Newest) return {};
  JournalStart start;
  std::error_code ec;
  start.found = !o.journal_dir.empty() && std::filesystem::is_directory(o.journal_dir, ec);
  const journal::Options options = journal::options_for_queue(m.max_message);
  try {
    if (o.start == StartAt::Time) {
      start.first = journal::first_at_or_after_time(o.journal_dir, m.name, o.start_time_ns, options);
      return start;
    }
    auto cursor = journal::Cursor::open(o.journal_dir, m.name, o.start == StartAt::Position ? o.start_position : 0, options);
    if (const auto first = cursor.next()) start.first = first->position;
    return start;
  } catch (const journal::JournalError& e) {
    throw Error(Errc::Corrupt, "cannot read the journal of queue '" + m.name + "' to start group at: " + e.what());
  }
}

// A free entry, cleared of what an earlier group left there.
GroupSlot& claim_free_group(const Mapping& m, std::string_view name, std::uint32_t& index) {
  std::uint32_t g = 0;
  // acquire: pairs with delete_group's (seq_cst) store of Free.
  while (g < m.max_groups && m.groups[g].state.load(std::memory_order_acquire) != 0) ++g;
  if (g == m.max_groups) {
    throw Error(Errc::TableFull, "all " + std::to_string(m.max_groups) + " consumer groups of queue '" + m.name +
                                     "' are in use; delete one first");
  }
  GroupSlot& group = m.groups[g];
  // The entry is free, so no process touches its state words: clear what an
  // earlier group left, which could otherwise pass for this group's acks.
  std::memset(static_cast<void*>(&m.state_word(g, 0)), 0, m.chunks * sizeof(std::uint64_t));
  std::memset(static_cast<void*>(&m.delivery_word(g, 0)), 0, m.chunks * sizeof(std::uint64_t));
  std::memset(group.name, 0, kNameBytes);
  std::memcpy(group.name, name.data(), name.size());
  group.retired_delivered.store(0, std::memory_order_relaxed);
  group.retired_acked.store(0, std::memory_order_relaxed);
  group.pending_redelivery.store(0, std::memory_order_relaxed);
  group.redelivered.store(0, std::memory_order_relaxed);
  group.active.store(0, std::memory_order_relaxed);
  for (auto* counter : {&group.dead_lettered, &group.dropped, &group.expired, &group.rejected, &group.nacked,
                        &group.lease_expired}) {
    counter->store(0, std::memory_order_relaxed);
  }
  group.dead_letter_position.store(kNoPosition, std::memory_order_relaxed);
  group.dead_letter_sequence.store(0, std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
    m.consumer(g, c).state.store(static_cast<std::uint32_t>(SlotState::Free), std::memory_order_relaxed);
  }
  index = g;
  return group;
}

std::uint32_t create_group(const Mapping& m, std::string_view name, const ConsumerOptions& o,
                           const JournalStart& journal) {
  std::uint32_t g = 0;
  GroupSlot& group = claim_free_group(m, name, g);
  // Producers' floor scans that overlap the window retry (groups_epoch.hpp:
  // why none of them passes the start chosen here).
  const detail::GroupsEpochWindow window(m);
  std::uint64_t messages = 0;
  const Start start = start_position(m, g, o, journal, messages);
  if (start.journal) {
    // It pins no ring record until it has caught up (pin_ring_at_journal_end).
    detail::start_in_journal(group, start.position, 0);
  } else {
    // relaxed: published by the seq_cst store of the state below.
    group.read.store(start.position, std::memory_order_relaxed);
    group.released.store(start.position, std::memory_order_relaxed);
    group.journal_from.store(0, std::memory_order_relaxed);
    group.journal_to.store(0, std::memory_order_relaxed);
    group.journal_read.store(0, std::memory_order_relaxed);
    group.journal_reader.store(0, std::memory_order_relaxed);
  }
  group.start_messages.store(messages, std::memory_order_relaxed);
  group.mode = static_cast<std::uint32_t>(o.exclusive ? GroupMode::Exclusive : GroupMode::Competing);
  // seq_cst (a release): pairs with the producers' seq_cst loads of the
  // state in release_floor, and with attached()'s acquire.
  group.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_seq_cst);
  return g;
}

// A group's mode is its creator's: joining it must ask for the same.
void check_mode(const Mapping& m, std::uint32_t g, std::string_view group_name, const ConsumerOptions& o) {
  const bool exclusive = m.groups[g].mode == static_cast<std::uint32_t>(GroupMode::Exclusive);
  if (exclusive == o.exclusive) return;
  throw Error(Errc::InvalidArgument,
              "group '" + std::string(group_name) + "' of queue '" + m.name + "' is " +
                  (exclusive ? "exclusive: join it as exclusive (ConsumerOptions::exclusive, shmq recv --exclusive)"
                             : "competing: it cannot be joined as exclusive (a group's mode is set when it is created)"));
}

// Dead members first: what they held goes back to the group. Returns a free
// member entry.
std::uint32_t free_member_entry(const Mapping& m, std::uint32_t g, std::string_view group_name) {
  std::uint32_t free_index = m.max_consumers;
  for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
    ConsumerSlot& slot = m.consumer(g, c);
    if (attached(slot.state) && !detail::entry_held(m, detail::consumer_lock_byte(g, c))) {
      detail::release_consumer(m, g, c);
      m.header->clients_reaped.fetch_add(1, std::memory_order_relaxed);
    }
    if (!attached(slot.state) && free_index == m.max_consumers) free_index = c;
  }
  if (free_index == m.max_consumers) {
    throw Error(Errc::TableFull, "group '" + std::string(group_name) + "' already has " +
                                     std::to_string(m.max_consumers) + " consumers");
  }
  return free_index;
}

}  // namespace

Consumer Consumer::join(const Queue& queue, std::string_view group_name, ConsumerOptions options) {
  validate_name(group_name, "group");
  if (options.prefetch == 0 || options.prefetch > 65536) {
    throw Error(Errc::InvalidArgument, "prefetch must be 1..65536");
  }
  const auto& map = detail::mapping_of(queue);
  if (options.exclusive && map->ack_timeout_ns != 0) {
    throw Error(Errc::InvalidArgument, "queue '" + map->name +
                                           "' has an ack timeout, which exclusive groups do not support (yet): "
                                           "join it as a competing group");
  }
  if (map->read_only) throw Error(Errc::InvalidArgument, "queue opened read-only");
  const Mapping& m = *map;
  auto st = std::make_unique<State>();
  st->map = map;
  st->options = std::move(options);
  st->spin = st->options.wait.spin;  // adapted by receive() (consumer.cpp)
  if (m.durable && st->options.journal_dir.empty()) {
    try {
      st->options.journal_dir = journal_dir(daemon_data_dir(m.ns), m.name).string();
    } catch (const Error&) {  // no HOME: only a group that must read the journal fails, and says why
    }
  }
  // Read outside the lock (a time may scan the whole journal), and only for a
  // group that does not exist yet: a race only makes it unused.
  const bool replay_possible = m.durable && [&] {
    const detail::SegmentLock lock(m);
    return find_group(m, group_name) == m.max_groups;
  }();
  const JournalStart from_journal = replay_possible ? journal_start(m, st->options) : JournalStart{};
  detail::SegmentLock lock(m);
  detail::settle_groups_epoch(m);
  std::uint32_t g = find_group(m, group_name);
  if (g == m.max_groups) {
    g = create_group(m, group_name, st->options, from_journal);
    st->created_group = true;
  } else {
    check_mode(m, g, group_name, st->options);
  }
  detail::settle_journal_switch(m, g);
  const std::uint32_t free_index = free_member_entry(m, g, group_name);
  ConsumerSlot& slot = m.consumer(g, free_index);
  // Held before the entry shows attached: an attached entry whose byte is
  // free has a dead holder (shm/liveness.hpp).
  detail::hold_entry(m, detail::consumer_lock_byte(g, free_index));
  slot.prefetch = st->options.prefetch;
  slot.pid.store(detail::self_pid(), std::memory_order_relaxed);
  slot.start_time.store(detail::self_start_time(), std::memory_order_relaxed);
  slot.pid_ns.store(detail::self_pid_namespace(), std::memory_order_relaxed);
  slot.in_flight.store(0, std::memory_order_relaxed);
  slot.delivered.store(0, std::memory_order_relaxed);
  slot.acked.store(0, std::memory_order_relaxed);
  slot.held_since_ns.store(0, std::memory_order_relaxed);
  slot.lease_revoked_ns.store(0, std::memory_order_relaxed);
  // release: pairs with attached()'s acquire (shmq-stat, repairers), after the fields above.
  slot.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_release);
  st->group = g;
  st->index = free_index;
  st->g = &m.groups[g];
  st->slot = &slot;
  // A dead active member was reaped above (free_member_entry): no active
  // member, or a live one. release: pairs with members' acquire loads.
  if (st->options.exclusive && m.groups[g].active.load(std::memory_order_acquire) == 0) {
    m.groups[g].active.store(free_index + 1, std::memory_order_release);
  }
  st->active = !st->options.exclusive || m.groups[g].active.load(std::memory_order_relaxed) == free_index + 1;
  detail::announce_table_change(m);
  return Consumer(std::move(st));
}

namespace {

// An exclusive group's active member, by its entry: index + 1, or 0 when
// there is none or it is dead (its entry lock free) or not a member entry.
std::uint32_t live_active_member(const Mapping& m, std::uint32_t group, std::uint32_t active) {
  const std::uint32_t holder = active - 1;
  const bool lives = active != 0 && holder < m.max_consumers && attached(m.consumer(group, holder).state) &&
                     detail::entry_held(m, detail::consumer_lock_byte(group, holder));
  return lives ? active : 0;
}

}  // namespace

bool detail::try_become_active(Consumer::State& s) {
  const Mapping& m = *s.map;
  GroupSlot& g = *s.g;
  // acquire: pairs with the release stores of active (join, here, release_consumer).
  if (live_active_member(m, s.group, g.active.load(std::memory_order_acquire)) != 0) return false;
  // Try only: a stopped process holding the lock must not stall a receive.
  const SegmentLock lock(m, SegmentLock::TryTag{});
  if (!lock.owned()) return false;
  // Again under the lock: the entry may have been reaped and taken by a new
  // member that became active since.
  const std::uint32_t active = g.active.load(std::memory_order_relaxed);  // the lock orders it
  if (live_active_member(m, s.group, active) != 0) return false;
  const std::uint32_t holder = active - 1;
  if (active != 0 && holder < m.max_consumers && attached(m.consumer(s.group, holder).state)) {
    release_consumer(m, s.group, holder);  // returns what it held, clears active
    m.header->clients_reaped.fetch_add(1, std::memory_order_relaxed);
    announce_table_change(m);
  }
  // release: pairs with the acquire loads above and in other standbys.
  g.active.store(s.index + 1, std::memory_order_release);
  s.active = true;
  return true;
}

Consumer::Consumer(std::unique_ptr<State> state) : s_(std::move(state)) {}
Consumer::Consumer(Consumer&&) noexcept = default;
Consumer& Consumer::operator=(Consumer&&) noexcept = default;

Consumer::~Consumer() {
  if (!s_) return;
  detail::SegmentLock lock(*s_->map);
  detail::release_consumer(*s_->map, s_->group, s_->index);
  detail::let_go_entry(*s_->map, detail::consumer_lock_byte(s_->group, s_->index));  // once the entry is left
}

void Queue::delete_group(std::string_view group) {
  validate_name(group, "group");
  const Mapping& m = *map_;
  if (m.read_only) throw Error(Errc::InvalidArgument, "queue opened read-only");
  detail::SegmentLock lock(m);
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    GroupSlot& slot = m.groups[g];
    if (!attached(slot.state) || bounded(slot.name) != group) continue;
    for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
      const ConsumerSlot& cs = m.consumer(g, c);
      if (attached(cs.state) && detail::entry_held(m, detail::consumer_lock_byte(g, c))) {
        throw Error(Errc::NameInUse, "group '" + std::string(group) + "' still has live consumer pid " +
                                         std::to_string(cs.pid.load(std::memory_order_relaxed)));
      }
    }
    // acquire: pairs with the members' seq_cst CAS of released (release_acked).
    const std::uint64_t released = slot.released.load(std::memory_order_acquire);
    const std::uint64_t acked_messages = m.acked_messages(g);
    // seq_cst: producers' floor scans (seq_cst loads of the state) stop
    // counting the group; a later create reuses the entry (acquire above).
    slot.state.store(static_cast<std::uint32_t>(SlotState::Free), std::memory_order_seq_cst);
    // With no group left, keep only what this one had not acknowledged.
    bool others = false;
    for (std::uint32_t o = 0; o < m.max_groups; ++o) others = others || attached(m.groups[o].state);
    std::uint64_t head = m.header->head.load(std::memory_order_relaxed);  // the CAS below re-checks it
    // seq_cst: like the producers' CAS of head in refresh_limit, which it races.
    if (!others && !at_or_after(head, released) &&
        m.header->head.compare_exchange_strong(head, released, std::memory_order_seq_cst)) {
      m.header->head_messages.store(acked_messages, std::memory_order_relaxed);
    }
    detail::notify(m.header->space);
    return;
  }
  throw Error(Errc::NotFound, "no group '" + std::string(group) + "' in queue '" + m.name + "'");
}

}  // namespace shmq
