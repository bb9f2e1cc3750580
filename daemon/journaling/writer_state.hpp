// Writer's state, shared by writer.cpp and retention.cpp.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "journal/file.hpp"
#include "journaling/writer.hpp"

namespace shmq::journal {

struct Writer::State {
  std::filesystem::path dir;
  std::string queue;
  Options options;
  std::optional<File> lock;  // the directory, flock()ed: one Writer per journal
  Recovery recovery;
  std::vector<SegmentInfo> segments;  // oldest first; the last one is written, its bytes kept current
  std::optional<File> current;
  // The roll rule only moves on from a segment holding data, so that a
  // record larger than segment_bytes still finds a home.
  bool segment_has_data = false;
  std::uint64_t written = 0;
  std::uint64_t synced = 0;
  std::optional<Checkpoint> last_checkpoint;
  std::vector<std::byte> buffer;  // encoded records not yet written
  bool broken = false;            // a write or sync failed: the file's end is unknown

  void check_usable() const;
  void open_last_segment();
  void create_segment();
  void roll();
  void flush(std::uint64_t end);
  void sync();
  void guarded(const std::function<void()>& io);

  using Wanted = std::function<bool(const SegmentInfo& oldest, const SegmentInfo& next)>;
  std::vector<std::filesystem::path> remove_oldest_while(std::uint64_t floor, const Wanted& wanted);
  [[nodiscard]] std::uint64_t total_bytes() const;
};

}  // namespace shmq::journal
