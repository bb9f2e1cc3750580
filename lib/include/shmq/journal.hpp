// Reading the journal of a durable queue: the records shmqd wrote to disk
// (docs/journal.md), in position order, for tools and audits. Read-only: it
// reads alongside a running shmqd and never changes a file (a torn tail,
// which shmqd cuts when it recovers the journal, just ends the reading).
//
// A consumer group needs none of this: it reads the journal by itself when it
// falls a ring behind or replays (ConsumerOptions::journal_dir).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace shmq {

// Where shmqd keeps the journal of queue `queue`: <data_dir>/journal/<queue>
// (data_dir: shmqd's, daemon_data_dir(ns) for the namespace's shmqd).
[[nodiscard]] std::filesystem::path journal_dir(const std::filesystem::path& data_dir, std::string_view queue);

}  // namespace shmq
