// Running the sides of a measurement at once: each in a process of its own
// (fork), or each in a thread for in-process transports, pinned to a CPU.
#pragma once

#include <chrono>
#include <functional>
#include <span>
#include <vector>

namespace bench {

// A side throws to report a failure (a mismatch, a transport error).
using Side = std::function<void()>;

// Runs side i pinned to cpus[i % cpus.size()] (unpinned when cpus is empty)
// and waits for all. A failing side fails the run: the other processes are
// killed (threads cannot be: the process exits with status 1). Processes still
// running after `timeout` are killed too. Returns false on any failure.
[[nodiscard]] bool run_sides(std::span<const Side> sides, std::span<const int> cpus, bool threads,
                             std::chrono::seconds timeout);

}  // namespace bench
