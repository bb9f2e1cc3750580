#include "journaling/binding.hpp"

#include <random>

#include "journal/journal.hpp"
#include "journaling/store.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"

namespace shmq::daemon {

namespace {

bool has_records(const std::filesystem::path& dir, const Queue& queue, bool salvage) {
  try {
    const auto options = journal::options_for_queue(queue.max_message(), salvage);
    return journal::Cursor::open(dir, queue.name(), 0, options).next().has_value();
  } catch (const journal::JournalError&) {
    return true;  // damaged: it holds something, and nothing may be written over it
  }
}

std::string created_anew(const Queue& queue, const std::filesystem::path& dir) {
  return "its segment was created anew while its journal in " + dir.string() +
         " holds messages, so it is not journaled (durable sends are not confirmed). To get the journaled messages "
         "back, remove the new segment (rm " + (shm_dir() / ("shmq." + queue.ns() + "." + queue.name())).string() +
         "): shmqd then rebuilds the queue from its journal. To drop them, remove both: shmq delete --force " +
         queue.name();
}

std::string journaled_elsewhere(const std::filesystem::path& dir, std::uint64_t segment, std::uint64_t journal) {
  return "its segment continues the journal " + std::to_string(segment) + ", not the one in " + dir.string() +
         (journal != 0 ? " (" + std::to_string(journal) + ")" : std::string()) +
         ", so it is not journaled here: was it journaled by a shmqd with another data directory?";
}

}  // namespace

std::uint64_t new_journal_id() {
  std::random_device random;  // getrandom(2)
  std::uint64_t id = 0;
  while (id == 0) id = (std::uint64_t{random()} << 32) | random();
  return id;
}

JournalBinding bind_journal(const Queue& queue, const std::filesystem::path& dir, bool salvage) {
  layout::QueueHeader& h = *detail::mapping_of(queue)->header;
  // Only shmqd's event loop writes it; relaxed: nothing else is published with it.
  const std::uint64_t segment = h.journal_id.load(std::memory_order_relaxed);
  std::filesystem::create_directories(dir);
  std::uint64_t journal = read_journal_id(dir);
  if (segment != 0 && segment == journal) return {true, {}};
  if (segment == 0) {
    // A segment no shmqd has journaled yet: a new queue. Its journal is new
    // or empty, or from before identities (adopted, as it was then).
    if (journal != 0 && has_records(dir, queue, salvage)) return {false, created_anew(queue, dir)};
  } else {
    // Journaled before, but not into this journal: unless it never held
    // anything, the records it was confirmed for are elsewhere.
    const bool never_written = h.journal_written.load(std::memory_order_acquire) <= layout::kFirstPosition;
    if (journal != 0 || !never_written || has_records(dir, queue, salvage)) {
      return {false, journaled_elsewhere(dir, segment, journal)};
    }
    journal = segment;
  }
  if (journal == 0) journal = new_journal_id();
  write_queue_options(dir, queue, journal);
  h.journal_id.store(journal, std::memory_order_relaxed);
  return {true, {}};
}

}  // namespace shmq::daemon
