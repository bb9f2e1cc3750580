// What the kernel says about processes: start times (a pid and its start
// time name one process, never a later one that reuses the pid), our pid,
// the clocks. Whether a client lives is not decided here: a pid means
// nothing across pid namespaces, so liveness is an entry lock
// (shm/liveness.hpp).
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace shmq::detail {

// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat),
// or 0 when there is no such process (or it is a zombie: it will never act again).
std::uint64_t process_start_time(pid_t pid) noexcept;

pid_t self_pid() noexcept;
std::uint64_t self_start_time() noexcept;

std::uint64_t unix_time_ns() noexcept;
std::uint64_t coarse_unix_time_ns() noexcept;  // the kernel tick's resolution, cheaper
// CLOCK_MONOTONIC in ns (never 0): ack deadlines, shared by every process of
// the host whatever its pid namespace.
std::int64_t monotonic_ns() noexcept;

// A new segment's record key (layout::record_tag): random, kRecordKeyBit set.
std::uint64_t new_record_key() noexcept;

}  // namespace shmq::detail
