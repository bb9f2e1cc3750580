// Repair after a dead client: the one implementation used by shmqd, by a
// consumer stalled behind a dead producer's claim, and by attach/join when
// they find a dead predecessor. Every function here requires the SegmentLock
// and is idempotent, so a repairer that dies half-way is simply repeated.
#pragma once

#include <cstdint>

#include "shm/mapping.hpp"

namespace shmq::detail {

enum class RepairResult {
  NotAHole,    // committed, or nothing claimed there yet
  Repaired,    // turned into a skipped record
  OwnerAlive,  // a live producer may own it: wait for its commit
  Unprovable,  // no announcement explains it: corruption; left alone
};

// Turns the uncommitted claim covering position `at` into a skipped record,
// once its owner is provably dead.
RepairResult repair_hole(const Mapping& map, std::uint64_t at);

// A dead producer: repairs its open claim and detaches its entry (name and
// last sequence kept). Returns false when a live peer's claim attempt still
// overlaps its hole (try again shortly).
bool reap_producer(const Mapping& map, std::uint32_t index);

// Makes the record at `p`, which a member held, a pending redelivery of
// `group`, one more delivery counted in its delivery word (count_return).
// `word`: its state word as last read; false when it changed meanwhile (the
// holder acked it). Needs no lock when the caller is the holder (nack).
bool return_to_group(const Mapping& map, std::uint32_t group, std::uint64_t p, std::uint64_t word);

// One more delivery in the delivery word of the record at `p`, which must be
// unreleased (held or pending).
void count_return(const Mapping& map, std::uint32_t group, std::uint64_t p);

// Gives every record that member `index` of `group` holds back to the group
// for redelivery and frees the member's entry. Returns how many.
std::uint64_t release_consumer(const Mapping& map, std::uint32_t group, std::uint32_t index);

// Queues with an ack timeout (DeliveryPolicy::ack_timeout): takes back what
// each live member of a competing group holds once its oldest held record is
// older than the timeout, flagged and counted (GroupInfo::lease_expired);
// the member's later acks of those get Status::LeaseExpired. Returns how
// many records went back. Never waits: without the segment lock now, it does
// nothing (the next call tries again). Called by shmqd every tick, and by members.
std::uint64_t expire_leases(const Mapping& map);

struct RecoveryCounts {
  std::uint64_t producers_reaped = 0;
  std::uint64_t consumers_reaped = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t holes_repaired = 0;
};

// Everything at once: each dead producer and consumer, and each group stalled
// behind a dead producer's hole. What shmqd runs on a death.
RecoveryCounts recover_dead_clients(const Mapping& map);

// Bytes a record at `position` spans, read from its header; 0 when the header
// is impossible (too long, misaligned, unknown type).
// Also 0 for a misaligned position, and for a data record that would cross the
// ring's end. `copy` (if given) receives the one header read that was checked:
// use it, never re-read the header from shared memory.
std::uint64_t record_span(const Mapping& map, std::uint64_t position, layout::RecordFields* copy = nullptr) noexcept;

// Padding a claim of `bytes` at `position` needs to reach the ring's start.
inline std::uint64_t padding_for(const Mapping& map, std::uint64_t position, std::uint64_t bytes) noexcept {
  const std::uint64_t offset = position & map.mask;
  return offset + bytes > map.capacity ? map.capacity - offset : 0;
}

}  // namespace shmq::detail
