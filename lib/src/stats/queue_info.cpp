// Queue: its options, snapshots for shmq-stat (info), record dumps.
#include <cstring>

#include "durable/group_journal.hpp"
#include "shm/layout.hpp"
#include "shm/liveness.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"
#include "recovery/repair.hpp"
#include "shmq/consumer.hpp"
#include "shmq/queue.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

namespace {

std::string_view bounded(const char (&name)[kNameBytes]) { return {name, ::strnlen(name, kNameBytes)}; }

// The name of a producer entry, a view into the segment; empty when it is free.
std::string_view entry_name(const ProducerSlot& s) {
  // Acquire: pairs with attach's release of the state, after it wrote the name.
  if (static_cast<SlotState>(s.state.load(std::memory_order_acquire)) == SlotState::Free) return {};
  return bounded(s.name);
}

bool attached(const std::atomic<std::uint32_t>& state) {
  return state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Attached);
}

std::vector<ProducerInfo> producer_infos(const Mapping& m, std::uint64_t& total) {
  std::vector<ProducerInfo> out;
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    const ProducerSlot& s = m.producers[i];
    const auto state = static_cast<SlotState>(s.state.load(std::memory_order_acquire));
    total += s.messages.load(std::memory_order_relaxed);
    if (state == SlotState::Free) continue;
    ProducerInfo p;
    p.id = i;
    p.name = bounded(s.name);
    p.attached = state == SlotState::Attached;
    p.pid = p.attached ? s.pid.load(std::memory_order_relaxed) : 0;
    p.pid_namespace = p.attached ? s.pid_ns.load(std::memory_order_relaxed) : 0;
    p.alive = p.attached && detail::entry_held(m, detail::producer_lock_byte(i));
    p.last_sequence = s.last_seq.load(std::memory_order_relaxed);
    p.messages = s.messages.load(std::memory_order_relaxed);
    p.bytes = s.bytes.load(std::memory_order_relaxed);
    out.push_back(std::move(p));
  }
  return out;
}

GroupInfo group_info(const Mapping& m, std::uint32_t g, std::uint64_t tail, std::uint64_t total) {
  const GroupSlot& slot = m.groups[g];
  GroupInfo info;
  info.name = bounded(slot.name);
  const std::uint64_t read = slot.read.load(std::memory_order_acquire);
  info.reading_journal = detail::read_closed(read);
  info.read_position = info.reading_journal ? slot.journal_read.load(std::memory_order_relaxed) : read;
  info.acked_position = slot.released.load(std::memory_order_acquire);
  info.lag_bytes = tail - info.acked_position;
  const std::uint64_t acked_messages = m.acked_messages(g);
  info.lag_messages = total > acked_messages ? total - acked_messages : 0;
  info.delivered = slot.retired_delivered.load(std::memory_order_relaxed);
  info.acked = slot.retired_acked.load(std::memory_order_relaxed);
  info.redelivered = slot.redelivered.load(std::memory_order_relaxed);
  info.exclusive = slot.mode == static_cast<std::uint32_t>(GroupMode::Exclusive);
  info.dead_lettered = slot.dead_lettered.load(std::memory_order_relaxed);
  info.dropped = slot.dropped.load(std::memory_order_relaxed);
  info.expired = slot.expired.load(std::memory_order_relaxed);
  info.rejected = slot.rejected.load(std::memory_order_relaxed);
  info.nacked = slot.nacked.load(std::memory_order_relaxed);
  info.lease_expired = slot.lease_expired.load(std::memory_order_relaxed);
  const std::uint32_t active = slot.active.load(std::memory_order_relaxed);  // a report
  for (std::uint32_t c = 0; c < m.max_consumers; ++c) {
    const ConsumerSlot& cs = m.consumer(g, c);
    if (!attached(cs.state)) continue;
    ConsumerInfo ci;
    ci.index = c;
    ci.pid = cs.pid.load(std::memory_order_relaxed);
    ci.pid_namespace = cs.pid_ns.load(std::memory_order_relaxed);
    ci.alive = detail::entry_held(m, detail::consumer_lock_byte(g, c));
    ci.in_flight = cs.in_flight.load(std::memory_order_relaxed);
    ci.received = cs.delivered.load(std::memory_order_relaxed);
    ci.acked = cs.acked.load(std::memory_order_relaxed);
    ci.active = !info.exclusive || active == c + 1;
    info.delivered += ci.received;
    info.acked += ci.acked;
    info.in_flight += ci.in_flight;
    info.consumers.push_back(ci);
  }
  return info;
}

}  // namespace

std::string Queue::producer_name(std::uint32_t id) const {
  const Mapping& m = *map_;
  if (id >= m.max_producers) return {};
  return std::string(entry_name(m.producers[id]));
}

std::string_view Message::producer() const noexcept {
  if (producer_entry == nullptr) return {};
  return entry_name(*static_cast<const ProducerSlot*>(producer_entry));
}

QueueOptions Queue::options() const noexcept {
  const Mapping& m = *map_;
  QueueOptions o;
  // The sizes as validated when the segment was opened (mapping.hpp), not re-read.
  o.capacity = m.capacity;
  o.max_message = m.max_message;
  o.durable = m.durable;
  o.max_producers = m.max_producers;
  o.max_groups = m.max_groups;
  o.max_consumers = m.max_consumers;
  // Written before the segment was published; masked as a peer may scribble on it.
  o.mode = static_cast<mode_t>(m.header->super.mode & 0777);
  o.group = detail::file_owner(m.fd).gid;
  o.policy.max_deliveries = m.max_deliveries;
  o.policy.dead_letter = m.dead_letter;
  o.policy.ack_timeout = std::chrono::nanoseconds(m.ack_timeout_ns);
  o.policy.ttl = std::chrono::nanoseconds(m.ttl_ns);
  return o;
}

QueueInfo Queue::info() const {
  const Mapping& m = *map_;
  const QueueHeader& h = *m.header;
  const Superblock& s = h.super;
  QueueInfo q;
  q.name = m.name;
  q.ns = m.ns;
  q.capacity = m.capacity;
  q.max_message = m.max_message;
  q.durable = m.durable;
  q.mode = s.mode;
  const auto owner = detail::file_owner(m.fd);
  q.uid = owner.uid;
  q.gid = owner.gid;
  q.creator_pid = s.creator_pid;
  q.created_unix_ns = s.created_unix_ns;
  q.tail_position = h.tail.load(std::memory_order_acquire);
  q.head_position = h.head.load(std::memory_order_acquire);
  q.producers = producer_infos(m, q.messages_total);
  std::uint64_t oldest = q.head_position;
  std::uint64_t oldest_messages = h.head_messages.load(std::memory_order_relaxed);
  bool any = false;
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (!attached(m.groups[g].state)) continue;
    GroupInfo gi = group_info(m, g, q.tail_position, q.messages_total);
    if (!any || !at_or_after(gi.acked_position, oldest)) {
      oldest = gi.acked_position;
      oldest_messages = m.acked_messages(g);
    }
    any = true;
    q.groups.push_back(std::move(gi));
  }
  // What is still held: by the slowest group, or everything since head.
  q.bytes_in_use = q.tail_position - oldest;
  q.messages_in_use = q.messages_total > oldest_messages ? q.messages_total - oldest_messages : 0;
  q.journal_written = h.journal_written.load(std::memory_order_relaxed);
  q.journal_synced = h.journal_synced.load(std::memory_order_relaxed);
  q.journal_error = static_cast<int>(h.journal_error.load(std::memory_order_relaxed));
  const std::uint32_t trouble = h.journal_trouble.load(std::memory_order_relaxed);  // a report, see layout.hpp
  q.journal_trouble = trouble <= static_cast<std::uint32_t>(JournalTrouble::Conflict)
                          ? static_cast<JournalTrouble>(trouble)
                          : JournalTrouble::Conflict;  // a peer's scribble: say something is wrong
  q.groups_to_journal = h.groups_to_journal.load(std::memory_order_relaxed);
  q.holes_skipped = h.holes_skipped.load(std::memory_order_relaxed);
  q.redelivered = h.redelivered.load(std::memory_order_relaxed);
  q.policy = options().policy;
  q.clients_reaped = h.clients_reaped.load(std::memory_order_relaxed);
  // The lock first: shmqd publishes its pid before it takes the lock, so a
  // lock seen held comes with its pid (acquire: pairs with that release store).
  q.daemon_alive = detail::entry_held(m, detail::daemon_lock_byte());
  q.daemon_pid = h.daemon_pid.load(std::memory_order_acquire);
  q.daemon_pid_namespace = h.daemon_pid_ns.load(std::memory_order_relaxed);
  return q;
}

std::vector<RecordInfo> Queue::records(std::uint64_t from, std::size_t max_records) const {
  const Mapping& m = *map_;
  std::vector<RecordInfo> out;
  const std::uint64_t tail = m.header->tail.load(std::memory_order_acquire);
  std::uint64_t p = m.header->head.load(std::memory_order_acquire);
  if (!at_or_after(tail, p) || tail - p > m.capacity) p = tail > m.capacity ? tail - m.capacity : kFirstPosition;
  // Records are only found by walking from a known boundary (head).
  while (p != tail && out.size() < max_records) {
    RecordInfo r;
    r.position = p;
    if (!m.committed(p)) {
      r.kind = RecordKind::Uncommitted;
      out.push_back(std::move(r));
      break;
    }
    RecordFields h;
    const std::uint64_t span = detail::record_span(m, p, &h);
    if (span == 0) break;  // corrupt: stop rather than guess
    r.length = h.length;
    r.producer_id = h.producer_id;
    r.sequence = h.sequence;
    r.timestamp_ns = h.timestamp_ns;
    switch (static_cast<RecordType>(h.type)) {
      case RecordType::Data: {
        r.kind = RecordKind::Data;
        const auto* payload = m.at(p) + sizeof(RecordHeader);
        r.payload.assign(payload, payload + h.length);
        break;
      }
      case RecordType::Padding: r.kind = RecordKind::Padding; break;
      case RecordType::Skipped: r.kind = RecordKind::Skipped; break;
    }
    if (at_or_after(p, from)) out.push_back(std::move(r));
    p += span;
  }
  return out;
}

}  // namespace shmq
