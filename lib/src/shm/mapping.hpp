// detail::Mapping: one process's view of a validated queue segment.
//
// Every size used to index shared memory is copied here once, after
// validation, and never re-read from the segment: a peer that scribbles over
// the header later cannot make this process index out of bounds.
#pragma once

#include <sys/file.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <memory>
#include <mutex>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "shm/bus_guard.hpp"
#include "shm/tag_load.hpp"
#include "shm/layout.hpp"
#include "shmq/queue.hpp"

namespace shmq::detail {

struct Mapping {
  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  int fd = -1;
  // The descriptor this process holds its entry locks through
  // (shm/liveness.hpp): opened at the first attach or join, -1 until then
  // and in a forked child (liveness.cpp says how it is set).
  mutable std::atomic<int> lock_fd{-1};
  mutable int lock_holder = -1;  // its place in liveness.cpp's table of holders
  // flock excludes other open file descriptions, not other threads using
  // this one: SegmentLock takes this too.
  mutable std::mutex lock_mutex;
  void* base = nullptr;
  std::size_t size = 0;
  bool read_only = false;
  // Its entry in the bus guard (bus_guard.hpp), or kNoGuard.
  int guard = kNoGuard;
  std::string name;
  std::string ns;
  std::string path;  // where it was opened or created (shm_dir() then)

  std::uint64_t capacity = 0;
  std::uint64_t mask = 0;
  std::uint64_t chunks = 0;
  std::uint32_t max_message = 0;
  std::uint32_t max_producers = 0;
  std::uint32_t max_groups = 0;
  std::uint32_t max_consumers = 0;
  bool durable = false;
  std::uint64_t record_key = 0;  // the segment's, copied once (see record_tag)
  // The delivery policy (layout: QueueHeader::max_deliveries...), copied once:
  // the data path asks `policy` alone (false: none of it applies).
  bool policy = false;
  std::uint32_t max_deliveries = 0;
  std::uint64_t ack_timeout_ns = 0;
  std::uint64_t ttl_ns = 0;
  std::string dead_letter;

  layout::QueueHeader* header = nullptr;
  layout::ProducerSlot* producers = nullptr;
  layout::GroupSlot* groups = nullptr;
  layout::ConsumerSlot* consumers = nullptr;
  std::atomic<std::uint64_t>* states = nullptr;
  std::atomic<std::uint64_t>* deliveries = nullptr;
  std::byte* ring = nullptr;

  std::uint64_t chunk(std::uint64_t position) const noexcept {
    return (position & mask) / layout::kRecordAlign;
  }
  std::atomic<std::uint64_t>& state_word(std::uint32_t group, std::uint64_t position) const noexcept {
    return states[group * chunks + chunk(position)];
  }
  std::atomic<std::uint64_t>& delivery_word(std::uint32_t group, std::uint64_t position) const noexcept {
    return deliveries[group * chunks + chunk(position)];
  }
  std::byte* at(std::uint64_t position) const noexcept { return ring + (position & mask); }
  layout::RecordHeader* record(std::uint64_t position) const noexcept {
    return reinterpret_cast<layout::RecordHeader*>(at(position));
  }
  std::uint64_t tag_of(std::uint64_t position) const noexcept { return layout::record_tag(position, record_key); }
  // Whether the record at `position` is committed. acquire: pairs with the
  // release store of its tag (commit_record), making its info and payload
  // visible. Never at a misaligned position (a hostile peer's): its tag
  // could lie across the ring's end, past the mapping.
  bool committed(std::uint64_t position) const noexcept {
    return position % layout::kRecordAlign == 0 && tag_is(record(position)->tag, tag_of(position));
  }
  // Writes a record's info (before the tag: see commit_record).
  void write_info(std::uint64_t position, const layout::RecordFields& info) const noexcept {
    std::memcpy(&record(position)->info, &info, sizeof info);
  }
  // Commits the record at `position`, its info and payload written.
  // release: pairs with committed()'s acquire load.
  void commit_record(std::uint64_t position) const noexcept {
    record(position)->tag.store(tag_of(position), std::memory_order_release);
  }
  // Producer entry `id` (a record's producer_id), or nullptr past the table
  // (only a hostile peer writes such an id).
  const layout::ProducerSlot* producer_entry(std::uint32_t id) const noexcept {
    return id < max_producers ? &producers[id] : nullptr;
  }
  layout::ConsumerSlot& consumer(std::uint32_t group, std::uint32_t index) const noexcept {
    return consumers[group * max_consumers + index];
  }
  // Data records the group has acknowledged, counting those below its start
  // (statistics: lag in messages = committed - this).
  std::uint64_t acked_messages(std::uint32_t group) const noexcept {
    const layout::GroupSlot& g = groups[group];
    std::uint64_t n = g.start_messages.load(std::memory_order_relaxed) + g.retired_acked.load(std::memory_order_relaxed);
    for (std::uint32_t c = 0; c < max_consumers; ++c) n += consumer(group, c).acked.load(std::memory_order_relaxed);
    return n;
  }
  // Whether a peer truncated the segment under this mapping, which now holds
  // private zero pages (bus_guard.hpp): nothing read from it means anything.
  [[nodiscard]] bool broken() const noexcept { return mapping_broken(guard); }
  // Largest record a producer may claim (header and alignment included).
  std::uint64_t max_record_bytes() const noexcept { return layout::record_bytes(max_message); }
};

// Throws Error(Errc::System) for a flock that failed with `error` (not EINTR).
[[noreturn]] void throw_segment_lock_failure(const Mapping& map, int error);

// Exclusive lock on the segment for attach, detach and repair: flock on its
// descriptor against other processes (the kernel drops it when the holder
// dies, so a crash inside never blocks anyone), and the mapping's mutex
// against other threads of this process. Never taken on the data path.
class SegmentLock {
 public:
  // Waits for the lock. A signal (EINTR) retries; any other failure (ENOLCK:
  // the kernel is out of lock records) throws, where looping would spin for
  // ever. (In a noexcept destructor that ends the process, which its peers
  // then repair like any crash.)
  explicit SegmentLock(const Mapping& map) : map_(map), owned_(true) {
    map_.lock_mutex.lock();
    while (::flock(map_.fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      map_.lock_mutex.unlock();
      throw_segment_lock_failure(map_, error);
    }
  }
  // Only if free now: for paths that must not wait behind a stopped holder.
  // Any failure, EWOULDBLOCK or another, leaves it not owned: such callers
  // already treat "not now" as "try later".
  struct TryTag {};
  SegmentLock(const Mapping& map, TryTag) : map_(map), owned_(map_.lock_mutex.try_lock()) {
    if (owned_ && ::flock(map_.fd, LOCK_EX | LOCK_NB) != 0) {
      map_.lock_mutex.unlock();
      owned_ = false;
    }
  }
  ~SegmentLock() {
    if (!owned_) return;
    ::flock(map_.fd, LOCK_UN);
    map_.lock_mutex.unlock();
  }
  SegmentLock(const SegmentLock&) = delete;
  SegmentLock& operator=(const SegmentLock&) = delete;
  [[nodiscard]] bool owned() const noexcept { return owned_; }

 private:
  const Mapping& map_;
  bool owned_;
};

std::string segment_name(std::string_view ns, std::string_view queue);  // "/shmq.<ns>.<queue>"
// A segment being built: "/shmq-creating.<ns>.<queue>.<pid>.<serial>", renamed
// to its queue's name once initialised (never a queue's name: no '.' at 5).
inline constexpr std::string_view kCreatingPrefix = "shmq-creating.";
std::string creating_segment_name(std::string_view ns, std::string_view queue);

// Tells watchers (shmqd's inotify on shm_dir(): IN_ATTRIB) that the client
// tables changed: a new process to watch. Called on attach and join.
void announce_table_change(const Mapping& map) noexcept;

// The mapping behind a Queue handle, for libshmq's internals, shmqd and the
// tests: the public header keeps it private, and QueueAccess (its friend,
// shm/prepared_create.hpp) hands it out here.
[[nodiscard]] const std::shared_ptr<Mapping>& mapping_of(const Queue& queue) noexcept;

}  // namespace shmq::detail
