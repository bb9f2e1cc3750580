// Reading the journal of a durable queue: the records shmqd wrote to disk
// (docs/journal.md), in position order, for tools and audits. Read-only: it
// reads alongside a running shmqd and never changes a file (a torn tail,
// which shmqd cuts when it recovers the journal, just ends the reading).
//
// A consumer group needs none of this: it reads the journal by itself when it
// falls a ring behind or replays (ConsumerOptions::journal_dir).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "shmq/export.hpp"

namespace shmq {

// Where shmqd keeps the journal of queue `queue`: <data_dir>/journal/<queue>
// (data_dir: shmqd's, daemon_data_dir(ns) for the namespace's shmqd).
[[nodiscard]] SHMQ_API std::filesystem::path journal_dir(const std::filesystem::path& data_dir, std::string_view queue);

// One data record of the journal, as the ring held it.
struct JournalEntry {
  std::uint64_t position = 0;  // in the ring
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t timestamp_ns = 0;
  std::vector<std::byte> payload;  // a copy
};

// The records of one queue's journal in position order, from a position on;
// following shmqd into the segment files it adds. (Not the reader a consumer
// group uses inside libshmq, which hands records to the group.)
class SHMQ_API JournalCursor {
 public:
  // Opens the journal of `queue` in shmqd's data directory `data_dir` at the
  // first record at or after `from` (at the oldest one retained when `from`
  // is older). Throws Error: InvalidName; NotFound when the data directory
  // holds no journal of the queue; Incompatible (not a journal, or of a newer
  // format); WrongNamespace (the journal of another queue); Corrupt; System.
  [[nodiscard]] static JournalCursor open(std::string_view queue, const std::filesystem::path& data_dir,
                                          std::uint64_t from = 0);
  JournalCursor(JournalCursor&&) noexcept;
  JournalCursor& operator=(JournalCursor&&) noexcept;
  ~JournalCursor();

  // The next record; nullopt at the end of what the files hold now (call
  // again for what shmqd writes later). Throws Error(Corrupt) at damage that
  // is not the end of the journal, Error(System) when a file cannot be read.
  [[nodiscard]] std::optional<JournalEntry> next();

  // The journal's directory: journal_dir(data_dir, queue).
  [[nodiscard]] const std::filesystem::path& dir() const noexcept;

 private:
  struct SHMQ_LOCAL State;  // libshmq's own (lib/src/journal)
  explicit JournalCursor(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace shmq
