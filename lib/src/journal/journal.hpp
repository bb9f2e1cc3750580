// The journal of one durable queue, its read side: the records and
// checkpoints in segment files on disk that shmqd appends to, and the Cursor
// that reads them. The file format and the recovery rules are in
// docs/journal.md.
//
// Only shmqd writes, retains, discards and recovers a journal: the Writer and
// recover() are in daemon/journaling/writer.hpp, so that no client process
// carries code that cuts journal files. Any number of Cursors may read
// alongside the one Writer, in this process or another.
#pragma once

#include <cstddef>
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

// The ring's first position (layout::kFirstPosition in lib/src/shm/layout.hpp).
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

// How often a record went to a group before it came back to it, or that it
// went to the dead-letter queue: the group's delivery word (shm/layout.hpp,
// "delivery words") when the checkpoint was taken.
struct DeliveryCount {
  std::uint64_t position = 0;
  std::uint8_t count = 0;  // 1..0xfe deliveries so far (0xfe: or more); 0xff: moved to the dead-letter queue
  bool operator==(const DeliveryCount&) const = default;
};

struct GroupPosition {
  std::string name;
  std::uint64_t acked = 0;  // everything below is acknowledged
  bool exclusive = false;   // an exclusive group (ConsumerOptions::exclusive); else competing
  // The delivery counts of its records at or after `acked` that have one,
  // positions increasing; bounded (kMaxCheckpointDeliveries over all groups):
  // `unlisted` is the highest count among those the list left out (0: none),
  // which a rebuild gives to every record the list does not name.
  std::vector<DeliveryCount> deliveries{};
  std::uint8_t unlisted = 0;
  bool operator==(const GroupPosition&) const = default;
};

// The most delivery counts one checkpoint lists (9 bytes each: with full
// tables, well within options_for_queue's room for a checkpoint).
inline constexpr std::size_t kMaxCheckpointDeliveries = 64 * 1024;

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

// The folder of every queue's journal in shmqd's data directory `data_dir`
// (shmq::journal_dir(data_dir, queue) is one queue's, in it).
[[nodiscard]] std::filesystem::path journals_root(const std::filesystem::path& data_dir);

// How to read and write the journal of a queue whose messages are at most
// `max_message` bytes: records are refused (and not believed) beyond that, or
// beyond the room a checkpoint of full tables needs. The one rule for shmqd's
// Writer and every reader of a queue's journal.
[[nodiscard]] Options options_for_queue(std::uint32_t max_message, bool salvage = false);

// A damaged stretch of one segment file, and the positions it held.
struct Damage {
  std::filesystem::path file;
  std::uint64_t offset = 0;  // in the file
  std::uint64_t bytes = 0;
  std::uint64_t from_position = 0;  // the lost records lay in [from_position, to_position)
  std::uint64_t to_position = 0;    // kUnknownPosition for a cut tail
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
