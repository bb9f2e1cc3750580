// What shmqd keeps beside each durable queue's journal to recreate the queue:
// the journal's directory, <data-dir>/journal/<queue>/ (shmq::journal_dir),
// holds the segment files (daemon/journaling) and queue.json, the queue's
// creation options, its delivery policy included.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "journal/journal.hpp"
#include "shmq/journal.hpp"
#include "shmq/queue.hpp"

namespace shmq::daemon {

// Written when shmqd starts journaling a queue; read to recreate it. With
// the journal's identity (journal_id 0: keep the one the file has). Written
// durably, and only when it changes. Throws std::system_error.
// owner: the segment file's owner (kNoOwner: keep the one the file has);
// options.group: its group (kNoGroup: keep the file's).
inline constexpr uid_t kNoOwner = static_cast<uid_t>(-1);
void write_queue_options(const std::filesystem::path& dir, const QueueOptions& options,
                         std::uint64_t journal_id = 0, uid_t owner = kNoOwner);
// The same for a queue, with its segment file's owner and group.
void write_queue_options(const std::filesystem::path& dir, const Queue& queue, std::uint64_t journal_id = 0);
// The owner queue.json records; kNoOwner when it has none (older files).
[[nodiscard]] uid_t read_queue_owner(const std::filesystem::path& dir);
// nullopt when the file is missing; throws std::runtime_error when unreadable.
[[nodiscard]] std::optional<QueueOptions> read_queue_options(const std::filesystem::path& dir);
// The journal's identity from queue.json; 0 when it has none (no file yet, or
// a journal from before identities).
[[nodiscard]] std::uint64_t read_journal_id(const std::filesystem::path& dir);

// What the journal says of its producers: each id's name (from the latest
// checkpoint) and the last sequence journaled from it (the checkpoint's, or
// a later record's).
struct JournaledProducer {
  std::string name;
  std::uint64_t sequence = 0;
};
using JournaledProducers = std::map<std::uint32_t, JournaledProducer>;
[[nodiscard]] JournaledProducers journaled_producers(const std::filesystem::path& dir, std::string_view queue,
                                                     const std::optional<journal::Checkpoint>& latest,
                                                     const journal::Options& options);

}  // namespace shmq::daemon
