// A durable queue's consumer group that falls a ring behind reads from the
// journal instead, so that it never stalls the producers (docs/journal.md,
// "Groups that fall behind"). Its unread records are on disk anyway.
//
// A group's records are cut into parts by two positions, X = journal_from and
// P = journal_to:
//   [released, X)  taken from the ring before the switch: the ring keeps them
//                  (members hold views into it) and acks release them as usual;
//   [X, P)         read from the journal by one member at a time (the lease in
//                  journal_reader), handed out as copies: they pin nothing;
//   [P, ...)       the ring again, once the reader has caught up.
// While the group reads the journal, P is kNoPosition and its read cursor
// carries kReadClosed, so no member takes ring records. P is 0 while a switch
// is being made.
#pragma once

#include <cstdint>

#include "shm/mapping.hpp"

namespace shmq::detail {

constexpr bool read_closed(std::uint64_t read) { return (read & layout::kReadClosed) != 0; }
constexpr std::uint64_t read_position(std::uint64_t read) { return read & ~layout::kReadClosed; }

// The oldest ring position the group still needs, which producers may not
// overwrite; kNoPosition when it needs none (it reads the journal).
std::uint64_t ring_pin(const layout::GroupSlot& group);

// True when `released` lies in the group's journal part [X, P).
bool in_journal_part(const layout::GroupSlot& group, std::uint64_t released);

// `position`, or P when it lies in the journal part (kNoPosition while P is
// open): where walks over the group's ring records go on.
std::uint64_t past_journal_part(const layout::GroupSlot& group, std::uint64_t position);

// Lock-free: moves `released` past the journal records the reader has acked.
// `released` is the caller's copy, updated; true when it moved.
bool release_journal_acked(layout::GroupSlot& group, std::uint64_t& released);

// Under the segment lock, for a durable queue whose ring is full: every group
// holding the ring's oldest record with journal records to read (new ones, or
// redeliveries nobody holds) switches to the journal. True when one did. The
// switch moves the group's trailing pending redeliveries into the journal
// part too, so a group with no live member pins nothing (group_journal.cpp).
bool offload_slow_groups(const Mapping& map);

// For a group not yet visible to anyone (a new group, a rebuild): it starts by
// reading the journal at `from`; records below `redeliver_below` come flagged.
void start_in_journal(layout::GroupSlot& group, std::uint64_t from, std::uint64_t redeliver_below);

// Under the segment lock: finishes a switch whose maker died half-way (with
// the same X as the maker would have; records it closed and left in the ring
// part go back to pending).
void settle_journal_switch(const Mapping& map, std::uint32_t group);

// Under the segment lock, by the reader once it has caught up with the
// journal: the ring holds the group's records again from the journal's
// current end, P. Returns P.
std::uint64_t pin_ring_at_journal_end(const Mapping& map, layout::GroupSlot& group);

// Under the segment lock, when member `index` leaves or dies: if it held the
// journal lease, what it read and did not ack is read again, flagged.
void drop_journal_reader(layout::GroupSlot& group, std::uint32_t index);

}  // namespace shmq::detail
