// shmq-stat --watch: a live view that redraws in place every interval, until
// `q` or Ctrl-C; the terminal is restored however it ends.
#pragma once

#include <chrono>
#include <string>

namespace shmq::tools {

// Returns the exit code.
int watch(const std::string& ns, const std::string& queue, std::chrono::nanoseconds interval);

}  // namespace shmq::tools
