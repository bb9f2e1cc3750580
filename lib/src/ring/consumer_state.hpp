// Consumer::State: one member's process-local view of its group, shared by
// the three files that act for a member:
//   ring/group.cpp             joining (and creating) the group, leaving it;
//   ring/consumer.cpp          take, ack and release on the ring;
//   durable/journal_part.cpp   take and ack in the group's journal part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "durable/journal_reader.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shmq/consumer.hpp"

namespace shmq {

struct Consumer::State {
  std::shared_ptr<detail::Mapping> map;
  std::uint32_t group = 0;
  std::uint32_t index = 0;
  layout::GroupSlot* g = nullptr;
  layout::ConsumerSlot* slot = nullptr;
  ConsumerOptions options;
  bool created_group = false;
  std::deque<std::uint64_t> held;  // positions in flight from the ring, in the order taken
  // A durable queue's group that reads its journal (group_journal.hpp): the
  // copies this member holds from it, in position order, and the reader.
  std::deque<detail::JournalRecord> journal_held;
  std::optional<detail::JournalReader> journal;
  std::string journal_error;
  // Polls before receive() sleeps: options.wait.spin at join, then adapted
  // between kMinSpin and it to how long the last waits lasted (consumer.cpp).
  std::uint32_t spin = 0;
  // Exclusive groups (options.exclusive): whether this member is the active
  // one (it stays so until it leaves), and when a standby looks at the
  // active member next.
  bool active = true;
  Clock::time_point next_standby_look{};
  // The delivery policy, for a queue that has one (ring/dead_letter.cpp):
  // when each held ring record was taken (ack timeout only), the dead-letter
  // queue (opened at the first move), moves that could not finish yet
  // (retried), and when to look at leases and retries next.
  struct PendingMove {
    Message message;
    DeadLetterReason reason;
    std::uint32_t deliveries;
  };
  std::unordered_map<std::uint64_t, std::int64_t> taken_at;
  std::unordered_set<std::uint64_t> revoked;  // held, then taken back by a lease expiry: acks refused
  std::optional<Queue> dead_letter_queue;
  std::vector<PendingMove> moves;
  Clock::time_point next_policy_look{};

  [[nodiscard]] std::size_t in_flight() const noexcept { return held.size() + journal_held.size(); }
};

namespace detail {

// The next message, as try_receive without the delivery policy (consumer.cpp).
Status receive_one(Consumer::State& s, Message& out) noexcept;
// try_receive on a queue with a delivery policy: the policy decides, for
// each record taken, whether it is delivered (ring/dead_letter.cpp).
Status receive_with_policy(Consumer::State& s, Message& out) noexcept;
// Acks a held message (consumer.cpp): Ok, NotInFlight, or LeaseExpired.
Status ack_held(Consumer::State& s, std::uint64_t position) noexcept;
// Queues with an ack timeout: a held ring record left the member's hands
// (acked, nacked, taken back): its take time is forgotten and the member's
// oldest published; after a refused ack (`lease_expired`), every record a
// lease expiry took back is forgotten too (ring/dead_letter.cpp).
void forget_taken(Consumer::State& s, std::uint64_t position, bool lease_expired) noexcept;

// Advances the group's released cursor past every acked record at its front
// (through its journal part too), and wakes producers waiting for the space.
// Lock-free; any member may call it (ring/consumer.cpp).
void release_acked(const Mapping& map, std::uint32_t group);

// A standby member of an exclusive group becomes the active one if the group
// has none, or if the active member's holder is dead (repaired first, as
// shmqd would). Never waits for the segment lock. ring/group.cpp.
bool try_become_active(Consumer::State& s);

// A durable queue delivers a record only once the journal has synced it, so
// nothing a consumer saw can vanish in a power loss (and come again, unflagged,
// when its producer resends it). The journal writer wakes `data` waiters.
inline bool synced_past(const Mapping& m, std::uint64_t position) {
  // acquire: pairs with the journal writer's release store of journal_synced.
  return !m.durable || layout::at_or_after(m.header->journal_synced.load(std::memory_order_acquire), position + 1);
}

// One more delivery in the member's counters (only this member writes them:
// plain load and store, relaxed; shmq-stat reads them as a report).
inline void count_delivery(Consumer::State& s) {
  s.slot->in_flight.store(static_cast<std::uint32_t>(s.in_flight()), std::memory_order_relaxed);
  s.slot->delivered.store(s.slot->delivered.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace shmq
