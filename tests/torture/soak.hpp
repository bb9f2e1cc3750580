// The soak's watch on shmqd's footprint: one daemon serves every round of the
// soak (it is never killed there), and after each round, once the round's
// queue is removed and its clients are gone, its VmRSS and open fds must stay
// within a tolerance of what they were after the first round.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "child.hpp"

namespace shmq::torture {

inline constexpr std::uint64_t kRssToleranceKib = 16 * 1024;  // growth allowed over the baseline
inline constexpr std::uint64_t kFdTolerance = 8;

class FootprintWatch {
 public:
  explicit FootprintWatch(pid_t daemon) : daemon_(daemon) {}
  // Samples after a round; returns a violation, or nothing. Gives the daemon
  // a few seconds to close what the finished round left (it learns of the
  // removed segment and the dead clients asynchronously).
  std::optional<std::string> sample();
  [[nodiscard]] std::string describe() const;

 private:
  [[nodiscard]] bool within_tolerance(const Footprint& f) const;
  pid_t daemon_;
  std::optional<Footprint> baseline_, latest_;
  std::uint64_t peak_rss_kib_ = 0, peak_fds_ = 0;
};

}  // namespace shmq::torture
