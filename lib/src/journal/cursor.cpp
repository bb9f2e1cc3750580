#include <fcntl.h>

#include <algorithm>

#include "journal/journal.hpp"
#include "journal/scanner.hpp"
#include "journal/segment_files.hpp"

namespace shmq::journal {

struct Cursor::State {
  std::filesystem::path dir;
  std::string queue;
  Options options;
  std::uint64_t from = 0;                // records below are passed over
  std::optional<std::uint64_t> entered;  // first position of the segment being read
  std::optional<File> file;
  std::optional<SegmentScanner> scanner;
  std::uint64_t last_end = 0;  // one past the last record's position
  std::vector<Damage> skipped;
  bool open_loss = false;  // skipped.back() waits for the next record's position

  bool enter_next();
  std::optional<SegmentFile> next_segment() const;
  void skip(const ScanStep& step);
  std::optional<Record> take(const ScanStep& step);
};

// The segment to read next: at first the one holding `from`, or the oldest;
// afterwards the one after the segment entered last.
std::optional<SegmentFile> Cursor::State::next_segment() const {
  const auto files = list_segments(dir);
  if (entered) {
    const auto it =
        std::ranges::find_if(files, [&](const SegmentFile& f) { return f.first_position > *entered; });
    return it == files.end() ? std::nullopt : std::optional(*it);
  }
  if (files.empty()) return std::nullopt;
  const auto it = std::ranges::find_if(files, [&](const SegmentFile& f) { return f.first_position > from; });
  return it == files.begin() ? files.front() : *std::prev(it);
}

// False when there is no next segment yet, or its header is not yet written.
bool Cursor::State::enter_next() {
  for (auto segment = next_segment(); segment; segment = next_segment()) {
    scanner.reset();
    file = File::open_if_exists(segment->path, O_RDONLY);
    if (!file) {  // retention deleted it since the listing: go on to the next one
      entered = segment->first_position;
      continue;
    }
    if (is_partial_header(*file)) return false;
    read_header(*file, *segment, queue);
    scanner.emplace(*file, format::kHeaderBytes, options.max_payload);
    entered = segment->first_position;
    last_end = std::max(last_end, segment->first_position);
    return true;
  }
  return false;
}

void Cursor::State::skip(const ScanStep& step) {
  if (!options.salvage) {
    throw JournalError(Errc::Corrupt,
                       file->path().string() + " at offset " + std::to_string(step.offset) + ": " +
                           std::to_string(step.bytes) + " damaged bytes (read with salvage to skip them)",
                       file->path(), step.offset);
  }
  skipped.push_back({file->path(), step.offset, step.bytes, last_end, kUnknownPosition});
  open_loss = true;
}

std::optional<Record> Cursor::State::take(const ScanStep& step) {
  const auto& fields = step.record.fields;
  if (open_loss) skipped.back().to_position = fields.position;
  open_loss = false;
  if (fields.kind != format::RecordKind::Data) return std::nullopt;
  last_end = fields.position + 1;
  if (fields.position < from) return std::nullopt;
  return Record{fields.position, fields.producer_id, fields.sequence, fields.timestamp_ns,
                step.record.payload};
}

Cursor::Cursor(std::unique_ptr<State> state) : s_(std::move(state)) {}
Cursor::Cursor(Cursor&&) noexcept = default;
Cursor& Cursor::operator=(Cursor&&) noexcept = default;
Cursor::~Cursor() = default;

Cursor Cursor::open(const std::filesystem::path& dir, std::string_view queue, std::uint64_t position,
                    const Options& options) {
  check_queue_name(queue);
  auto s = std::make_unique<State>();
  s->dir = dir;
  s->queue = queue;
  s->options = options;
  s->from = position;
  s->enter_next();
  return Cursor(std::move(s));
}

std::optional<Record> Cursor::next() {
  // End of what the segment holds now: the end of the file, or damage with no good record after it.
  const auto at_end = [](const ScanStep& step) {
    return step.kind == ScanStep::End || (step.kind == ScanStep::Damage && !step.followed);
  };
  for (;;) {
    if (!s_->scanner && !s_->enter_next()) return std::nullopt;
    auto step = s_->scanner->next();
    if (at_end(step)) {
      s_->scanner->seek(step.offset);
      if (!s_->next_segment()) return std::nullopt;  // not written yet: look again on the next call
      // The writer finishes a segment before it creates the next, so reading
      // this one once more gets all it will ever hold, and damage still there is real.
      step = s_->scanner->next();
      if (at_end(step)) {
        if (step.kind == ScanStep::Damage) s_->skip(step);
        s_->scanner.reset();
        continue;
      }
    }
    if (step.kind == ScanStep::Damage) {
      s_->skip(step);
    } else if (auto record = s_->take(step)) {
      return record;
    }
  }
}

const std::vector<Damage>& Cursor::skipped() const noexcept { return s_->skipped; }

std::optional<std::uint64_t> first_at_or_after_time(const std::filesystem::path& dir, std::string_view queue,
                                                    std::uint64_t time_ns, const Options& options) {
  auto cursor = Cursor::open(dir, queue, 0, options);
  while (const auto record = cursor.next()) {
    if (record->timestamp_ns >= time_ns) return record->position;
  }
  return std::nullopt;
}

}  // namespace shmq::journal
