// The producers' release floor: how far head may move, from a scan of the
// groups that no groups_epoch window overlapped (shm/groups_epoch.hpp).
#include "ring/release_floor.hpp"

#include <optional>

#include "durable/group_journal.hpp"
#include "shm/groups_epoch.hpp"
#include "shm/wait.hpp"

namespace shmq::detail {

using namespace layout;

namespace {

// The lowest position any group still needs in the ring, from a scan that
// no group creation or journal switch overlapped (the groups_epoch seqlock,
// shm/groups_epoch.hpp). A durable queue's ring also keeps every record until
// shmqd's journal has written it: the floor never passes journal_written.
// nullopt when a window stays open and its holder is not known to be gone:
// a stopped joiner holds the lock, and a try_ call must not wait for it.
std::optional<std::uint64_t> release_floor(const Mapping& m) {
  QueueHeader& h = *m.header;
  for (std::uint32_t attempt = 0;; ++attempt) {
    const std::uint64_t epoch = load_groups_epoch(m);
    if (groups_window_open(epoch)) {  // a creation in progress (or its creator died in it)
      if (attempt > 10000) {
        // Try only: settle a window whose creator died; a live one holds the lock.
        const SegmentLock lock(m, SegmentLock::TryTag{});
        if (!lock.owned()) return std::nullopt;
        settle_groups_epoch(m);
      }
      cpu_relax();
      continue;
    }
    std::uint64_t floor = kNoPosition;  // kNoPosition: no group needs the ring
    bool any = false;
    for (std::uint32_t g = 0; g < m.max_groups; ++g) {
      const GroupSlot& group = m.groups[g];
      // seq_cst: pairs with create_group's and delete_group's seq_cst stores
      // of the state (the total order of groups_epoch.hpp).
      if (group.state.load(std::memory_order_seq_cst) != static_cast<std::uint32_t>(SlotState::Attached)) continue;
      any = true;
      // seq_cst: pairs with the members' seq_cst CAS of released (release_acked).
      const std::uint64_t pin =
          m.durable ? ring_pin(group) : group.released.load(std::memory_order_seq_cst);
      if (pin != kNoPosition && (floor == kNoPosition || !at_or_after(pin, floor))) floor = pin;
    }
    // Loaded inside the window: pin_ring_at_journal_end relies on it.
    // seq_cst: ordered before the epoch check below; pairs with the journal
    // writer's release store of journal_written.
    const std::uint64_t written = m.durable ? h.journal_written.load(std::memory_order_seq_cst) : kNoPosition;
    if (load_groups_epoch(m) != epoch) continue;
    // seq_cst: in the same total order (head only grows; see groups_epoch.hpp).
    const std::uint64_t head = h.head.load(std::memory_order_seq_cst);
    // Nothing is dropped while nobody has subscribed; a durable queue keeps
    // it all in the journal, where a new group can start (a replay).
    if (!any) floor = m.durable ? kNoPosition : head;
    if (floor != kNoPosition && !at_or_after(floor, head)) floor = head;
    if (!m.durable) return floor;
    return floor == kNoPosition || !at_or_after(written, floor) ? written : floor;
  }
}

}  // namespace

std::uint64_t refresh_limit(const Mapping& m) {
  const std::optional<std::uint64_t> floor = release_floor(m);
  // acquire: a head another producer raised past our floor is only safe to
  // write below because that producer saw the groups' releases; its CAS
  // (seq_cst) carries them to us. Relaxed, our payload writes would race (in
  // the memory model, and for ThreadSanitizer) with consumers' last reads.
  std::uint64_t head = m.header->head.load(std::memory_order_acquire);
  while (floor && !at_or_after(head, *floor)) {
    // seq_cst: the head others compute limits from must not run ahead of a
    // group created after this scan (see groups_epoch.hpp).
    if (m.header->head.compare_exchange_weak(head, *floor, std::memory_order_seq_cst)) {
      head = *floor;
      break;
    }
  }
  return head + m.capacity;
}

}  // namespace shmq::detail
