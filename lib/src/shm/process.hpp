// Liveness from the kernel: a process is alive when /proc/<pid>/stat exists
// and shows the start time recorded when it attached (so a reused pid never
// passes for the original). A stopped (SIGSTOP) process is alive.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace shmq::detail {

// Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat),
// or 0 when there is no such process (or it is a zombie: it will never act again).
std::uint64_t process_start_time(pid_t pid) noexcept;

bool process_alive(std::int64_t pid, std::uint64_t start_time) noexcept;

pid_t self_pid() noexcept;
std::uint64_t self_start_time() noexcept;

std::uint64_t unix_time_ns() noexcept;
std::uint64_t coarse_unix_time_ns() noexcept;  // the kernel tick's resolution, cheaper

}  // namespace shmq::detail
