// The journal of one durable queue: its records and checkpoints in segment
// files on disk, for shmqd to append to and to rebuild the queue from after a
// reboot. The file format and the recovery rules are in docs/journal.md.
//
// One Writer per journal directory (it holds a lock); any number of Cursors
// may read alongside it, in this process or another.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/journal_error.hpp"

namespace shmq::journal {

// The ring's first position (kFirstPosition in lib/src/layout.hpp).
inline constexpr std::uint64_t kDefaultFirstPosition = 64;
// Damage::to_position of a cut tail: whatever followed is gone.
inline constexpr std::uint64_t kUnknownPosition = ~std::uint64_t{0};

// One data record. Appended positions must strictly increase; read back,
// `payload` points into the Cursor's buffer and is valid until its next call.
struct Record {
  std::uint64_t position = 0;
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t timestamp_ns = 0;
  std::span<const std::byte> payload;
};

struct GroupPosition {
  std::string name;
  std::uint64_t acked = 0;  // everything below is acknowledged
  bool operator==(const GroupPosition&) const = default;
};

struct ProducerSequence {
  std::uint32_t id = 0;
  std::string name;
  std::uint64_t sequence = 0;  // last committed
  bool operator==(const ProducerSequence&) const = default;
};

// A snapshot of the queue's consumer groups and producers; the latest one
// replaces all earlier ones. Names are at most 255 bytes.
struct Checkpoint {
  std::uint64_t position = 0;  // the journal's written() when it was taken (set by the Writer)
  std::uint64_t timestamp_ns = 0;
  std::vector<GroupPosition> groups;
  std::vector<ProducerSequence> producers;
  bool operator==(const Checkpoint&) const = default;
};

struct Options {
  std::uint64_t segment_bytes = 64u << 20;  // roll to a new segment file beyond this size
  std::uint32_t max_payload = 64u << 20;    // larger payloads are refused, and not believed on reading
  std::uint64_t first_position = kDefaultFirstPosition;  // written() of a new journal
  bool salvage = false;  // skip damage in the middle (and report it) instead of refusing
};

// A damaged stretch of one segment file, and the positions it held.
struct Damage {
  std::filesystem::path file;
  std::uint64_t offset = 0;  // in the file
  std::uint64_t bytes = 0;
  std::uint64_t from_position = 0;  // the lost records lay in [from_position, to_position)
  std::uint64_t to_position = 0;    // kUnknownPosition for a cut tail
};

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

// Reads data records in position order from one position onward, following
// the writer into new segments. Reads no further than the files' current end:
// next() returns nullopt there, and more once more is written.
class Cursor {
 public:
  // Starts at the first record at or after `position`; at the oldest retained
  // record when `position` is older than that (0: from the oldest).
  [[nodiscard]] static Cursor open(const std::filesystem::path& dir, std::string_view queue,
                                   std::uint64_t position, const Options& options = {});
  Cursor(Cursor&&) noexcept;
  Cursor& operator=(Cursor&&) noexcept;
  ~Cursor();

  // Throws JournalError(Corrupt) at damage that is not the end of the last
  // segment, unless options.salvage (then skipped() reports it).
  [[nodiscard]] std::optional<Record> next();
  [[nodiscard]] const std::vector<Damage>& skipped() const noexcept;

 private:
  struct State;
  explicit Cursor(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

// The position of the first record (in position order) whose timestamp is at
// or after `time_ns`, for a replay from a time; nullopt when there is none.
// Timestamps come from producers, so this scans rather than bisects.
[[nodiscard]] std::optional<std::uint64_t> first_at_or_after_time(const std::filesystem::path& dir,
                                                                  std::string_view queue,
                                                                  std::uint64_t time_ns,
                                                                  const Options& options = {});

}  // namespace shmq::journal
