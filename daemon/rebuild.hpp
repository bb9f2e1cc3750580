// Recreating a durable queue from its journal when its shared-memory segment
// is gone (a reboot, a power loss). See docs/journal.md, "Rebuild".
//
// The new segment has the old options and positions: the journal's records
// are written back into the ring at their own positions (the gaps between
// them as skipped records), every group resumes at its checkpointed ack, and
// every producer entry holds its name and last journaled sequence.
//
// Which records a group receives again: everything at or after its
// checkpointed ack. While the queue lived, no group was ever more than the
// ring behind the journal's end (the ring held what it had not acked), so a
// group also resumes no earlier than one ring below that end, and the backlog
// always fits the ring. shmqd cannot know which of those records a group had
// received before the crash, so each of them comes flagged `redelivered`.
#pragma once

#include <filesystem>
#include <string>

#include "shmq/queue.hpp"

namespace shmq::daemon {

struct RebuildReport {
  std::uint64_t records = 0;         // written back into the ring
  std::uint64_t end_position = 0;    // where producers continue
  std::size_t groups = 0;
  std::size_t producers = 0;
  std::string damage;                // what recovery cut or skipped, if anything
};

// Recovers the journal in `dir` (throws journal::JournalError on damage it
// may not skip, std::runtime_error on other trouble) and creates the queue.
RebuildReport rebuild_queue(const std::string& ns, const std::string& name, const std::filesystem::path& dir,
                            bool salvage);

}  // namespace shmq::daemon
