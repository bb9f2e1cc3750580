// Deleting old segments: only whole files, oldest first, and only those
// entirely below a floor position.
#include <system_error>

#include "journaling/writer_state.hpp"

namespace shmq::journal {

std::uint64_t Writer::State::total_bytes() const {
  std::uint64_t total = 0;
  for (const auto& segment : segments) total += segment.bytes;
  return total;
}

// A segment holds nothing at or after the next one's first position, so it is
// below `floor` when that is. The last segment has no next one: never deleted.
std::vector<std::filesystem::path> Writer::State::remove_oldest_while(std::uint64_t floor,
                                                                      const Wanted& wanted) {
  check_usable();
  std::vector<std::filesystem::path> removed;
  while (segments.size() > 1 && segments[1].first_position <= floor && wanted(segments[0], segments[1])) {
    std::error_code ec;
    std::filesystem::remove(segments.front().path, ec);
    if (ec)
      throw JournalError(Errc::Io, "cannot remove " + segments.front().path.string() + ": " + ec.message());
    removed.push_back(segments.front().path);
    segments.erase(segments.begin());
  }
  if (!removed.empty()) sync_directory(dir);
  return removed;
}

std::vector<std::filesystem::path> Writer::remove_below(std::uint64_t position) {
  return s_->remove_oldest_while(position, [](const SegmentInfo&, const SegmentInfo&) { return true; });
}

std::vector<std::filesystem::path> Writer::retain(const Retention& policy, std::uint64_t floor,
                                                  std::uint64_t now_ns) {
  return s_->remove_oldest_while(floor, [&](const SegmentInfo&, const SegmentInfo& next) {
    const bool too_big = policy.max_bytes != 0 && s_->total_bytes() > policy.max_bytes;
    // A segment was closed when the next one was created: none of its records is younger.
    const bool too_old =
        policy.max_age_ns != 0 && now_ns > next.created_ns && now_ns - next.created_ns > policy.max_age_ns;
    return too_big || too_old;
  });
}

}  // namespace shmq::journal
