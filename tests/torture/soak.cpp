#include "soak.hpp"

#include <algorithm>

namespace shmq::torture {

bool FootprintWatch::within_tolerance(const Footprint& f) const {
  return f.rss_kib <= baseline_->rss_kib + kRssToleranceKib && f.fds <= baseline_->fds + kFdTolerance;
}

std::optional<std::string> FootprintWatch::sample() {
  std::optional<Footprint> f;
  for (int attempt = 0; attempt < 500; ++attempt) {  // up to about 5 s
    f = footprint_of(daemon_);
    if (!f) return "cannot read /proc/" + std::to_string(daemon_) + " (shmqd gone?)";
    if (!baseline_ || within_tolerance(*f)) break;
    sleep_for(Millis(10));
  }
  latest_ = f;
  peak_rss_kib_ = std::max(peak_rss_kib_, f->rss_kib);
  peak_fds_ = std::max(peak_fds_, f->fds);
  if (!baseline_) {
    baseline_ = f;
    return std::nullopt;
  }
  if (within_tolerance(*f)) return std::nullopt;
  return "shmqd footprint grew beyond tolerance: " + describe();
}

std::string FootprintWatch::describe() const {
  if (!latest_) return "shmqd footprint: no sample yet";
  return "shmqd VmRSS " + std::to_string(latest_->rss_kib) + " KiB (baseline " + std::to_string(baseline_->rss_kib) +
         ", peak " + std::to_string(peak_rss_kib_) + ", tolerance +" + std::to_string(kRssToleranceKib) +
         "), fds " + std::to_string(latest_->fds) + " (baseline " + std::to_string(baseline_->fds) + ", peak " +
         std::to_string(peak_fds_) + ", tolerance +" + std::to_string(kFdTolerance) + ")";
}

}  // namespace shmq::torture
