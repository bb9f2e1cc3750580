// The journal's write side, shmqd's alone: the Writer that appends records
// and checkpoints, retention of old segments, and recover() and
// discard_from(), which cut journal files. The read side (formats, Cursor) is
// libshmq's, in lib/src/journal/journal.hpp; docs/journal.md has the rules.
//
// One Writer per journal directory (it holds a lock); any number of Cursors
// may read alongside it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "journal/journal.hpp"

namespace shmq::journal {

struct SegmentInfo {
  std::filesystem::path path;
  std::uint64_t first_position = 0;  // no record in it is below; none in earlier files is at or above
  std::uint64_t bytes = 0;
  std::uint64_t created_ns = 0;  // unix time
};

struct Recovery {
  std::vector<SegmentInfo> segments;     // oldest first, after any cut
  std::uint64_t written = 0;             // one past the last good record's position
  std::uint64_t records = 0;             // good data records
  std::optional<Checkpoint> checkpoint;  // the latest
  std::optional<Damage> tail_cut;        // a torn tail that was cut off the last segment
  std::vector<Damage> skipped;           // damage skipped in the middle (salvage only)
};

// Scans every segment of the journal in `dir`, verifying each record; cuts a
// torn tail off the last segment (truncating the file) and reports it. Damage
// anywhere else throws JournalError(Corrupt), unless options.salvage. Busy
// while a Writer has the journal open (Writer::open recovers by itself).
[[nodiscard]] Recovery recover(const std::filesystem::path& dir, std::string_view queue,
                               const Options& options = {});

// Removes every record (data or checkpoint) at or after `position`: after a
// failed fdatasync, Linux may have dropped the pages it could not write while
// they still read back fine from the page cache ("fsyncgate"), so a writer
// must not trust anything written since its last good sync, and writes it
// again. Deletes whole segments from `position` on (the oldest keeps its
// header) and cuts the one holding it, syncing both. Busy while a Writer has
// the journal open.
void discard_from(const std::filesystem::path& dir, std::string_view queue, std::uint64_t position,
                  const Options& options = {});

struct Retention {
  std::uint64_t max_bytes = 0;   // total segment bytes; 0: no limit
  std::uint64_t max_age_ns = 0;  // since a segment was closed; 0: no limit
};

class Writer {
 public:
  // Opens the journal of `queue` in `dir` (created when missing) after
  // recover(); appends continue at its end.
  [[nodiscard]] static Writer open(const std::filesystem::path& dir, std::string_view queue,
                                   const Options& options = {});
  Writer(Writer&&) noexcept;
  Writer& operator=(Writer&&) noexcept;
  ~Writer();

  // Writes the batch (one write per segment it touches) to the page cache: it
  // survives a crash of this process, not of the machine. All or nothing on
  // invalid input; after a failed system call the Writer refuses further
  // calls (JournalError(Io)), and opening it again recovers.
  void append(std::span<const Record> batch);
  // Writes a checkpoint, stamped with written(); it is also copied to the
  // start of each new segment, so retention never loses the latest one.
  void checkpoint(Checkpoint checkpoint);
  // fdatasync: everything written so far survives power loss. Returns synced().
  std::uint64_t sync();

  // Every record below written() is written, below synced() is on disk.
  [[nodiscard]] std::uint64_t written() const noexcept;
  [[nodiscard]] std::uint64_t synced() const noexcept;
  [[nodiscard]] const Recovery& recovery() const noexcept;  // what open() found
  [[nodiscard]] const std::optional<Checkpoint>& last_checkpoint() const noexcept;
  [[nodiscard]] const std::vector<SegmentInfo>& segments() const noexcept;

  // Deletes the oldest segment files while they hold nothing at or after
  // `position` (never the one being written). Returns the files deleted.
  std::vector<std::filesystem::path> remove_below(std::uint64_t position);
  // Deletes the oldest segments while the journal exceeds `policy`, but only
  // those entirely below `floor` (the slowest group's acked position).
  std::vector<std::filesystem::path> retain(const Retention& policy, std::uint64_t floor,
                                            std::uint64_t now_ns);

 private:
  struct State;
  explicit Writer(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace shmq::journal
