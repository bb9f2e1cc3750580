// discard_from(): what a writer does after a failed fdatasync (docs/journal.md,
// "Writing"): nothing written since the last good sync is trusted.
#include <fcntl.h>

#include "journaling/writer.hpp"
#include "journal/scanner.hpp"
#include "journal/segment_files.hpp"

namespace shmq::journal {

void discard_from(const std::filesystem::path& dir, std::string_view queue, std::uint64_t position,
                  const Options& options) {
  check_queue_name(queue);
  auto lock = File::open_if_exists(dir, O_RDONLY | O_DIRECTORY);
  if (!lock) return;
  if (!lock->try_lock()) throw JournalError(Errc::Busy, "journal " + dir.string() + " has a writer already", dir);
  auto files = list_segments(dir);
  // Whole segments at or above `position` go, but the oldest keeps its header.
  bool removed = false;
  while (files.size() > 1 && files.back().first_position >= position) {
    std::filesystem::remove(files.back().path);
    files.pop_back();
    removed = true;
  }
  if (removed) sync_directory(dir);  // a deleted segment must not come back after a crash
  if (files.empty()) return;
  File file = File::open(files.back().path, O_RDWR);
  if (is_partial_header(file)) return;  // recovery deals with a torn creation
  (void)read_header(file, files.back(), queue);
  // Cut at the first good record at or above `position`; damage is left to
  // recovery, which cuts it at the tail and refuses it in the middle.
  SegmentScanner scanner(file, format::kHeaderBytes, options.max_payload);
  for (auto step = scanner.next(); step.kind != ScanStep::End; step = scanner.next()) {
    if (step.kind == ScanStep::Record && step.record.fields.position >= position) {
      file.truncate(step.offset);
      file.sync_data();
      return;
    }
  }
}

}  // namespace shmq::journal
