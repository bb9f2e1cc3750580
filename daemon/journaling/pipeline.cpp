#include "journaling/pipeline.hpp"

#include <algorithm>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "journaling/pipeline_shared.hpp"
#include "journaling/store.hpp"
#include "journaling/writer.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/wait.hpp"

namespace shmq::daemon {

using namespace layout;

journal::Options pipeline::writer_options(const JournalPipeline::Shared& s) {
  journal::Options o = journal::options_for_queue(s.map.max_message, s.settings.salvage);
  o.segment_bytes = s.settings.segment_bytes;
  return o;
}

JournalPipeline::JournalPipeline(Queue queue, std::filesystem::path dir, const JournalSettings& settings)
    : shared_(std::make_unique<Shared>(std::move(queue), std::move(dir), settings)) {
  Shared& s = *shared_;
  std::filesystem::create_directories(s.dir);
  write_queue_options(s.dir, s.queue);
  s.writer.emplace(journal::Writer::open(s.dir, s.queue.name(), pipeline::writer_options(s)));
  const journal::Recovery& found = s.writer->recovery();
  if (found.tail_cut) {
    spdlog::warn("queue '{}': cut a torn journal tail in {} at offset {}", s.queue.name(),
                 found.tail_cut->file.string(), found.tail_cut->offset);
  }
  QueueHeader& h = *s.map.header;
  s.journaled_end = s.writer->written();
  // Never below the ring's first position: a segment whose header says less
  // (made before durable queues kept it, or scribbled) would have us read
  // position 0, where no record starts.
  s.drain_from = std::max(h.journal_written.load(std::memory_order_acquire), kFirstPosition);
  // A daemon that died between its write and its sync: sync now, so synced
  // covers everything the journal holds.
  s.writer->sync();
  h.journal_synced.store(s.drain_from, std::memory_order_release);
  detail::notify(h.journal);
  writer_ = std::thread([&s] { pipeline::write_loop(s); });
  drain_ = std::thread([&s] { pipeline::drain_loop(s); });
}

JournalPipeline::~JournalPipeline() {
  shared_->stopping.store(true, std::memory_order_release);
  drain_.join();
  writer_.join();
}

}  // namespace shmq::daemon
