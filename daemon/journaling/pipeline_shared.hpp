// The parts of a JournalPipeline (pipeline.hpp) that its two threads share:
// the state, the batches the drain thread hands to the writer thread, and the
// threads' bodies. drain.cpp gathers the batches from the ring;
// group_commit.cpp appends them, syncs once for all and confirms them.
#pragma once

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <utility>
#include <vector>

#include "journal/journal.hpp"
#include "journaling/pipeline.hpp"
#include "journaling/writer.hpp"
#include "shm/mapping.hpp"

namespace shmq::daemon {
namespace pipeline {

using Clock = std::chrono::steady_clock;

// How long the threads sleep at most before looking at the stop flag.
inline constexpr auto kIdleWake = std::chrono::milliseconds(50);

// Committed records of the ring, and the position after the last one looked
// at. The payloads point into the ring (valid until journal_written passes,
// which the writer publishes only once they are synced).
struct Batch {
  std::vector<journal::Record> records;
  std::uint64_t end = 0;
  bool stuck = false;  // stopped at a committed record with an impossible header
};

// The threads' bodies; each returns once the pipeline stops.
void drain_loop(JournalPipeline::Shared& s);  // drain.cpp
void write_loop(JournalPipeline::Shared& s);  // group_commit.cpp

// The options the journal is written (and reopened) with.
[[nodiscard]] journal::Options writer_options(const JournalPipeline::Shared& s);

}  // namespace pipeline

struct JournalPipeline::Shared {
  Queue queue;
  const detail::Mapping& map;
  std::filesystem::path dir;
  JournalSettings settings;
  std::optional<journal::Writer> writer;  // empty after a failure, until reopened
  moodycamel::BlockingConcurrentQueue<pipeline::Batch> batches;
  std::uint64_t drain_from = 0;    // where the drain starts
  std::uint64_t journaled_end = 0; // the journal's written() at open: records below are in it
  std::atomic<bool> stopping{false};
  std::atomic<bool> drained{false};  // the drain thread enqueued its last batch

  Shared(Queue q, std::filesystem::path d, const JournalSettings& s)
      : queue(std::move(q)), map(*detail::mapping_of(queue)), dir(std::move(d)), settings(s) {}
};

}  // namespace shmq::daemon
