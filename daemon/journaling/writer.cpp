// The Writer: appends records and checkpoints to the last segment, rolling
// to a new one beyond segment_bytes.
#include <fcntl.h>

#include <chrono>

#include "journal/format.hpp"
#include "journal/segment_files.hpp"
#include "journaling/recover.hpp"
#include "journaling/writer_state.hpp"
#include "health.hpp"

namespace shmq::journal {
namespace {

// A batch is written in pieces of about this size, bounding the buffer.
constexpr std::size_t kFlushBytes = 1u << 20;

std::uint64_t unix_now_ns() {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch).count());
}

[[noreturn]] void invalid(const std::string& why) { throw JournalError(Errc::InvalidArgument, why); }

void check_options(const Options& options) {
  if (options.segment_bytes < format::kHeaderBytes + format::kRecordHeaderBytes) {
    invalid("journal segment_bytes must hold a header and a record");
  }
}

// All or nothing: the whole batch is checked before any of it is written.
void check_batch(std::span<const Record> batch, std::uint64_t written, const Options& options) {
  std::uint64_t next = written;
  for (const auto& record : batch) {
    if (record.position < next || record.position == kUnknownPosition) {
      invalid("journal record at position " + std::to_string(record.position) + ", expected at least " +
              std::to_string(next));
    }
    if (record.payload.size() > options.max_payload) {
      invalid("journal record of " + std::to_string(record.payload.size()) + " bytes exceeds max_payload");
    }
    next = record.position + 1;
  }
}

void make_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  const bool created = std::filesystem::create_directories(dir, ec);
  if (ec) throw JournalError(Errc::Io, "cannot create " + dir.string() + ": " + ec.message(), dir);
  if (created) sync_directory(dir.parent_path().empty() ? "." : dir.parent_path());
}

}  // namespace

void Writer::State::check_usable() const {
  if (broken) throw JournalError(Errc::Io, "journal of '" + queue + "': a write failed earlier; reopen it");
}

void Writer::State::guarded(const std::function<void()>& io) {
  try {
    io();
  } catch (...) {
    broken = true;
    throw;
  }
}

void Writer::State::open_last_segment() {
  current = File::open(segments.back().path, O_WRONLY | O_APPEND);
  current->sync_data();  // what recovery kept may only be in the page cache
  // Data, not just bytes: a segment may hold only the checkpoint copied into
  // it when it was rolled to (a crash tore the record after it). Rolling away
  // from it would create a segment of the same name, written(), and fail
  // (EEXIST) on every reopen (found by fuzz_journal).
  segment_has_data = written > segments.back().first_position;
}

// The header is synced before the directory entry, so that a crash leaves
// either no file, a short one (recovery drops it) or a whole header.
void Writer::State::create_segment() {
  const format::SegmentHeader header{format::kVersion, written, unix_now_ns(), queue};
  const auto path = dir / format::segment_name(written);
  File file = File::open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
  file.write_all(format::encode_header(header));
  file.sync_data();
  sync_directory(dir);
  segments.push_back({path, written, format::kHeaderBytes, header.created_ns});
  current = std::move(file);
  segment_has_data = false;
}

// The old segment is synced before the new one exists, so only the last
// segment can ever have a torn tail.
void Writer::State::roll() {
  sync();
  guarded([this] { create_segment(); });
  if (last_checkpoint) {
    last_checkpoint->position = written;
    format::append_record(buffer,
                          {format::RecordKind::Checkpoint, 0, 0, written, last_checkpoint->timestamp_ns},
                          format::encode_checkpoint(*last_checkpoint));
  }
}

void Writer::State::flush(std::uint64_t end) {
  if (buffer.empty()) return;
  guarded([this] { current->write_all(buffer); });
  segments.back().bytes += buffer.size();
  daemon::health().journal_written_bytes.fetch_add(buffer.size(), std::memory_order_relaxed);  // a statistic
  written = end;
  buffer.clear();
}

void Writer::State::sync() {
  guarded([this] { current->sync_data(); });
  synced = written;
}

Writer::Writer(std::unique_ptr<State> state) : s_(std::move(state)) {}
Writer::Writer(Writer&&) noexcept = default;
Writer& Writer::operator=(Writer&&) noexcept = default;
Writer::~Writer() = default;

Writer Writer::open(const std::filesystem::path& dir, std::string_view queue, const Options& options) {
  check_queue_name(queue);
  check_options(options);
  make_directory(dir);
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->queue = queue;
  s->options = options;
  s->lock = File::open(dir, O_RDONLY | O_DIRECTORY);
  if (!s->lock->try_lock())
    throw JournalError(Errc::Busy, "journal " + dir.string() + " has a writer already", dir);
  s->recovery = recover_locked(dir, queue, options);
  s->segments = s->recovery.segments;
  s->written = s->synced = s->recovery.written;
  s->last_checkpoint = s->recovery.checkpoint;
  if (s->segments.empty()) {
    s->create_segment();
  } else {
    s->open_last_segment();
  }
  return Writer(std::move(s));
}

void Writer::append(std::span<const Record> batch) {
  s_->check_usable();
  check_batch(batch, s_->written, s_->options);
  std::uint64_t end = s_->written;
  for (const auto& record : batch) {
    const std::uint64_t bytes = format::kRecordHeaderBytes + record.payload.size();
    if (s_->segment_has_data &&
        s_->segments.back().bytes + s_->buffer.size() + bytes > s_->options.segment_bytes) {
      s_->flush(end);
      s_->roll();
    }
    format::append_record(
        s_->buffer,
        {format::RecordKind::Data, record.producer_id, record.sequence, record.position, record.timestamp_ns},
        record.payload);
    end = record.position + 1;
    s_->segment_has_data = true;
    if (s_->buffer.size() >= kFlushBytes) s_->flush(end);
  }
  s_->flush(end);
}

void Writer::checkpoint(Checkpoint checkpoint) {
  s_->check_usable();
  checkpoint.position = s_->written;
  const auto payload = format::encode_checkpoint(checkpoint);
  if (payload.size() > s_->options.max_payload) invalid("journal checkpoint exceeds max_payload");
  format::append_record(s_->buffer,
                        {format::RecordKind::Checkpoint, 0, 0, checkpoint.position, checkpoint.timestamp_ns},
                        payload);
  s_->flush(s_->written);
  s_->last_checkpoint = std::move(checkpoint);
}

std::uint64_t Writer::sync() {
  s_->check_usable();
  s_->sync();
  return s_->synced;
}

std::uint64_t Writer::written() const noexcept { return s_->written; }
std::uint64_t Writer::synced() const noexcept { return s_->synced; }
const Recovery& Writer::recovery() const noexcept { return s_->recovery; }
const std::optional<Checkpoint>& Writer::last_checkpoint() const noexcept { return s_->last_checkpoint; }
const std::vector<SegmentInfo>& Writer::segments() const noexcept { return s_->segments; }

}  // namespace shmq::journal
