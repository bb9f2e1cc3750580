// Which journal a durable queue's segment continues (docs/journal.md,
// "Boot order"). A journal has an identity (queue.json's journal_id) and a
// segment records the identity of the journal it continues (its header's
// journal_id). shmqd journals a segment only into the journal of its own
// identity, so no send is ever confirmed durable against a journal that does
// not hold it: a queue an application created anew (before shmqd rebuilt it
// after a reboot) while the old journal holds records, or a segment another
// shmqd journals into another data directory, is refused, and said why.
#pragma once

#include <filesystem>
#include <string>

#include "shmq/queue.hpp"

namespace shmq::daemon {

struct JournalBinding {
  bool bound = false;
  std::string conflict;  // why the segment must not be journaled in that directory
};

// Binds `queue`'s segment to the journal in `dir` (giving a new journal, or
// one from before identities, an identity of its own), or says why not.
// Throws on I/O trouble (a full disk): worth retrying.
JournalBinding bind_journal(const Queue& queue, const std::filesystem::path& dir, bool salvage);

// A fresh identity for a journal (never 0).
[[nodiscard]] std::uint64_t new_journal_id();

}  // namespace shmq::daemon
