// Recreating a durable queue from its journal when its shared-memory segment
// is gone (a reboot, a power loss). See docs/journal.md, "Rebuild".
//
// The new segment has the old options and positions: the journal's records
// are written back into the ring at their own positions (the gaps between
// them as skipped records), every group resumes at its checkpointed ack, and
// every producer entry holds its name and last journaled sequence.
//
// Which records a group receives again: everything at or after its
// checkpointed ack. shmqd cannot know which of those records a group had
// received before the crash, so each of them comes flagged `redelivered`. A
// group within the ring of the journal's end finds them in the ring; one
// further behind (it was reading the journal, see group_journal.hpp) reads
// them from the journal, then switches to the ring.
#pragma once

#include <filesystem>
#include <string>

#include "shmq/queue.hpp"

namespace shmq::daemon {

struct RebuildReport {
  std::uint64_t records = 0;         // written back into the ring (groups further behind read the journal)
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
