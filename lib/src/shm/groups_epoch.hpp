// The groups_epoch seqlock: producers' floor scans against the changes that
// give the ring a new lower bound to keep (a new group's start, a group's P).
//
// Writers, each under the segment lock (so windows never overlap), inside a
// GroupsEpochWindow (the epoch odd):
//   - create_group (ring/group.cpp) chooses the new group's start S (and,
//     durable with no other group pinning the ring, loads journal_written),
//     stores its cursors, then its state Attached;
//   - pin_ring_at_journal_end (durable/group_journal.cpp) loads
//     journal_written and stores it as the group's P.
// Reader: a producer's release_floor (ring/release_floor.cpp) loads the epoch,
// scans the groups' states and pins and journal_written, and loads the epoch
// again; the scan counts only if both loads saw the same even value. Its
// floor then becomes head (a CAS in refresh_limit), possibly much later.
//
// Why no producer's floor passes S or P. Every access above is seq_cst, so
// all lie in one total order, and a counted scan lies wholly before a
// window's opening increment or wholly after its closing one.
//   After: the scan sees the group Attached and its cursors or P (stored
//     before the closing increment), and counts its pin like any other.
//   Before (its head CAS may still come after the window):
//   - P: the scan loaded journal_written no later than the window did, and a
//     durable floor never passes journal_written, so the floor <= P.
//   - S from other groups' pins: each such group was attached at the scan or
//     created by a later window (the same argument, by induction), and a pin
//     only moves forward, so S >= the scan's minimum >= its floor.
//   - S = head (no other group pins the ring), non-durable: a scan with no
//     group publishes the head it loaded; groups it saw that are deleted
//     since made the last deletion raise head to that group's released
//     (delete_group) >= its pin at the scan >= the floor. Head only grows.
//   - S = head, durable (no other group pins the ring): a durable floor
//     never passes the journal_written its scan loaded, and create_group
//     loads journal_written inside the window, later in the total order, so
//     no less (it only grows; with shmqd gone it stays put): W. A group that
//     would start in the ring below W starts in the journal at that same
//     position instead, and the journal holds every record below W; it pins
//     no ring record until pin_ring_at_journal_end, a window of its own (P
//     above). Any other group starts at or above W >= the floor (at W when
//     its consumer cannot find the journal). The ring below W may change
//     under the window: start_position's walk reads it only while head has
//     not passed what it read.
// A creator that dies inside its window leaves the epoch odd: the next holder
// of the segment lock settles it (settle_groups_epoch), and producers that
// find it odd for long try the lock to do so (never wait for it: a stopped
// creator holds it).
#pragma once

#include <atomic>
#include <cstdint>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"

namespace shmq::detail {

// Under the segment lock: the epoch is odd for this object's lifetime, so
// floor scans that overlap it retry.
class GroupsEpochWindow {
 public:
  explicit GroupsEpochWindow(const Mapping& map) : epoch_(map.header->groups_epoch) {
    // seq_cst: pairs with the producers' seq_cst loads of the epoch and of
    // what they scan (release_floor); the argument above needs the total order.
    epoch_.fetch_add(1, std::memory_order_seq_cst);  // odd: scans now retry
  }
  ~GroupsEpochWindow() {
    epoch_.fetch_add(1, std::memory_order_seq_cst);  // even: the change is in place (seq_cst as above)
  }
  GroupsEpochWindow(const GroupsEpochWindow&) = delete;
  GroupsEpochWindow& operator=(const GroupsEpochWindow&) = delete;

 private:
  std::atomic<std::uint64_t>& epoch_;
};

// The reader's side (release_floor): the epoch before and after a scan.
// seq_cst: pairs with the window's increments (the total order above).
inline std::uint64_t load_groups_epoch(const Mapping& map) noexcept {
  return map.header->groups_epoch.load(std::memory_order_seq_cst);
}
inline constexpr bool groups_window_open(std::uint64_t epoch) noexcept { return (epoch & 1) != 0; }

// Under the segment lock: closes a window whose maker died inside it.
inline void settle_groups_epoch(const Mapping& map) noexcept {
  std::uint64_t epoch = load_groups_epoch(map);
  if (groups_window_open(epoch)) {
    // seq_cst: as the window's closing increment, which it stands in for.
    map.header->groups_epoch.compare_exchange_strong(epoch, epoch + 1, std::memory_order_seq_cst);
  }
}

}  // namespace shmq::detail
