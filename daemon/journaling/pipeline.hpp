// The journal of one durable queue, kept by two threads:
//   - the drain thread (drain.cpp) reads committed records from the ring, in
//     position order, like a consumer group that never acks, and hands
//     batches of them (pointers into the ring: no copy) to
//   - the writer thread (group_commit.cpp; a moodycamel queue in between),
//     which appends every batch it finds waiting (copying the payloads into
//     the files), then fdatasyncs once for all of them (group commit), and
//     only then publishes journal_written (the ring may now reuse those
//     bytes), clears journal_error, publishes journal_synced and wakes durable
//     confirms and consumers (persist() in group_commit.cpp).
// The ring cannot overwrite a record before journal_written passes it (the
// producers' release floor includes it), so the pointers stay valid; and
// since journal_written moves only after a good sync, a failed fdatasync
// leaves every unsynced record in the ring, to be written again from there.
//
// It also checkpoints the groups' acked positions and the producers' last
// journaled sequences every 100 ms while they change, at once when a group
// is created or deleted, before the first record of a producer the journal
// has not named yet, and when it stops.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <thread>

#include "shmq/queue.hpp"

namespace shmq::daemon {

struct JournalSettings {
  std::uint64_t segment_bytes = 64u << 20;  // roll segment files beyond this
  std::uint64_t retention_bytes = 0;        // 0: keep everything (never what a group needs)
  std::uint64_t retention_age_ns = 0;
  // Read past damage in the middle of a journal (reporting it) instead of
  // refusing it: the damaged bytes stay in their segment until retention
  // removes it, so shmqd needs --salvage for as long.
  bool salvage = false;
};

class JournalPipeline {
 public:
  // Opens (recovering) the journal in `dir` and starts both threads.
  // Throws journal::JournalError when the journal cannot be opened.
  JournalPipeline(Queue queue, std::filesystem::path dir, const JournalSettings& settings);
  JournalPipeline(const JournalPipeline&) = delete;
  JournalPipeline& operator=(const JournalPipeline&) = delete;
  // Journals what is committed now, syncs, checkpoints, and stops.
  ~JournalPipeline();

  struct Shared;

 private:
  std::unique_ptr<Shared> shared_;
  std::thread drain_;
  std::thread writer_;
};

}  // namespace shmq::daemon
