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

  [[nodiscard]] std::size_t in_flight() const noexcept { return held.size() + journal_held.size(); }
};

namespace detail {

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
