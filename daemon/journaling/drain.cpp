// The drain thread of a JournalPipeline: reads committed records from the
// ring in position order, like a consumer group that never acks, and hands
// them in batches (pointers into the ring: no copy) to the writer thread.
#include <chrono>
#include <cstdint>
#include <thread>
#include <utility>

#include <spdlog/spdlog.h>

#include "journaling/pipeline_shared.hpp"
#include "recovery/repair.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/wait.hpp"

namespace shmq::daemon::pipeline {

using namespace layout;

namespace {

// A batch is cut at whichever comes first.
constexpr std::size_t kMaxBatchRecords = 4096;
constexpr std::uint64_t kMaxBatchBytes = 4u << 20;
// The drain naps this long between looks while records came within the spell
// (an fdatasync takes longer than the nap, so confirms hardly wait for it).
constexpr auto kBusyNap = std::chrono::microseconds(50);
constexpr auto kBusySpell = std::chrono::milliseconds(20);

Batch collect(const detail::Mapping& m, std::uint64_t from, std::uint64_t journaled_end) {
  Batch b;
  b.end = from;
  std::uint64_t bytes = 0;
  while (b.records.size() < kMaxBatchRecords && bytes < kMaxBatchBytes && m.committed(b.end)) {
    RecordFields h;
    const std::uint64_t span = detail::record_span(m, b.end, &h);
    if (span == 0) {
      b.stuck = true;
      break;
    }
    if (h.type == static_cast<std::uint16_t>(RecordType::Data) && b.end >= journaled_end) {
      const std::byte* payload = m.at(b.end) + sizeof(RecordHeader);
      b.records.push_back({b.end, h.producer_id, h.sequence, h.timestamp_ns, {payload, h.length}});
      bytes += h.length;
    }
    b.end += span;
  }
  return b;
}

// While records keep coming, naps: registered as a futex waiter, the drain
// would make every commit of every producer pay a wake-up system call. Idle,
// it sleeps on the futex (no CPU).
void wait_for_commit(const JournalPipeline::Shared& s, std::uint64_t cursor, Clock::time_point last_record) {
  const detail::Mapping& m = s.map;
  if (Clock::now() - last_record < kBusySpell) {
    std::this_thread::sleep_for(kBusyNap);
    return;
  }
  detail::wait_until(
      m.header->data, Clock::now() + kIdleWake, 64,
      [&] { return m.committed(cursor) || s.stopping.load(std::memory_order_acquire); },
      [] { return detail::kMaxSleep; });
}

}  // namespace

void drain_loop(JournalPipeline::Shared& s) {
  const detail::Mapping& m = s.map;
  moodycamel::ProducerToken token(s.batches);  // one producer: batches stay in order
  std::uint64_t cursor = s.drain_from;
  std::uint64_t stuck_at = kNoPosition;
  Clock::time_point last_record{};
  for (;;) {
    Batch batch = collect(m, cursor, s.journaled_end);
    // A truncated segment (bus_guard.hpp): collect may have read the zero
    // pages that replaced it. Hand over nothing more; the writer drops what
    // it has not synced.
    if (m.broken()) break;
    if (batch.end != cursor) {
      cursor = batch.end;
      last_record = Clock::now();
      s.batches.enqueue(token, std::move(batch));
      continue;
    }
    // Everything committed so far is handed over: stop here when asked.
    if (s.stopping.load(std::memory_order_acquire)) break;
    if (batch.stuck) {
      // A hostile peer's bytes (or a bug): nothing after them can be
      // journaled; say so once, then look again now and then.
      if (std::exchange(stuck_at, cursor) != cursor) {
        spdlog::error("queue '{}': impossible record header at position {}; journaling stops there", m.name, cursor);
      }
      std::this_thread::sleep_for(kIdleWake);
      continue;
    }
    wait_for_commit(s, cursor, last_record);
  }
  s.drained.store(true, std::memory_order_release);
}

}  // namespace shmq::daemon::pipeline
