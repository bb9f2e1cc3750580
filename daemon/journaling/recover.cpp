// recover(): the rules of docs/journal.md, "Recovery".
#include "journaling/recover.hpp"

#include <fcntl.h>

#include "journal/scanner.hpp"
#include "journal/segment_files.hpp"

namespace shmq::journal {
namespace {

class Recoverer {
 public:
  Recoverer(const std::filesystem::path& dir, std::string_view queue, const Options& options)
      : dir_(dir), queue_(queue), options_(options) {}

  Recovery run() {
    const auto files = list_segments(dir_);
    out_.written = files.empty() ? options_.first_position : files.front().first_position;
    for (std::size_t i = 0; i < files.size(); ++i) scan_segment(files[i], i + 1 == files.size());
    return std::move(out_);
  }

 private:
  void scan_segment(const SegmentFile& segment, bool last) {
    File file = File::open(segment.path, last ? O_RDWR : O_RDONLY);
    if (last && is_partial_header(file)) return drop_torn_segment(segment, file.size());
    const auto header = read_header(file, segment, queue_);
    join_segment(segment);
    SegmentScanner scanner(file, format::kHeaderBytes, options_.max_payload);
    for (auto step = scanner.next(); step.kind != ScanStep::End; step = scanner.next()) {
      if (step.kind == ScanStep::Record) {
        accept(step, segment);
      } else if (last && !step.followed) {
        cut_tail(file, step);
      } else {
        skip(step, segment);
      }
    }
    out_.segments.push_back({segment.path, segment.first_position, file.size(), header.created_ns});
  }

  // A segment starts exactly where the one before it ended (the writer names
  // it so when it rolls): anything else means records are missing.
  void join_segment(const SegmentFile& segment) {
    const std::uint64_t first = segment.first_position;
    if (!out_.segments.empty() && first < out_.written) {
      corrupt(segment.path, 0,
              "starts at position " + std::to_string(first) + ", below the end of the segment before it (" +
                  std::to_string(out_.written) + ")");
    }
    if (!out_.segments.empty() && first > out_.written && !open_loss_) {
      if (!options_.salvage) {
        corrupt(segment.path, 0,
                "positions " + std::to_string(out_.written) + ".." + std::to_string(first) +
                    " are missing before it (a segment file removed or cut?)");
      }
      out_.skipped.push_back({segment.path, 0, 0, out_.written, 0});
      open_loss_ = true;
    }
    close_loss(first);
    out_.written = first;
  }

  void accept(const ScanStep& step, const SegmentFile& segment) {
    const auto& fields = step.record.fields;
    if (fields.position < out_.written) {
      corrupt(segment.path, step.offset,
              "record at position " + std::to_string(fields.position) +
                  " is out of order (expected at least " + std::to_string(out_.written) + ")");
    }
    close_loss(fields.position);
    if (fields.kind == format::RecordKind::Checkpoint) {
      accept_checkpoint(step, segment);
      out_.written = fields.position;
    } else {
      out_.written = fields.position + 1;
      ++out_.records;
    }
  }

  void accept_checkpoint(const ScanStep& step, const SegmentFile& segment) {
    try {
      out_.checkpoint = format::decode_checkpoint(step.record.payload);
    } catch (const JournalError& e) {
      corrupt(segment.path, step.offset, e.what());
    }
    out_.checkpoint->position = step.record.fields.position;
    out_.checkpoint->timestamp_ns = step.record.fields.timestamp_ns;
  }

  // Damage at the very end of the last segment is a write that never
  // completed: cut it off, so that appends continue after the last good record.
  void cut_tail(File& file, const ScanStep& step) {
    file.truncate(step.offset);
    file.sync_data();
    out_.tail_cut = Damage{file.path(), step.offset, step.bytes, out_.written, kUnknownPosition};
  }

  // A crash between creating a segment and syncing its header leaves it short.
  void drop_torn_segment(const SegmentFile& segment, std::uint64_t bytes) {
    std::filesystem::remove(segment.path);
    sync_directory(dir_);
    out_.tail_cut = Damage{segment.path, 0, bytes, out_.written, kUnknownPosition};
  }

  void skip(const ScanStep& step, const SegmentFile& segment) {
    if (!options_.salvage) {
      corrupt(
          segment.path, step.offset,
          std::to_string(step.bytes) + " damaged bytes " +
              (step.followed ? "followed by good records" : "at the end of a segment that is not the last") +
              " (open with salvage to skip them)");
    }
    out_.skipped.push_back({segment.path, step.offset, step.bytes, out_.written, 0});
    open_loss_ = true;
  }

  // The records lost in a skipped stretch end where the next good one starts.
  void close_loss(std::uint64_t position) {
    if (!open_loss_) return;
    out_.skipped.back().to_position = position;
    open_loss_ = false;
  }

  [[noreturn]] void corrupt(const std::filesystem::path& file, std::uint64_t offset, const std::string& why) {
    throw JournalError(Errc::Corrupt, file.string() + " at offset " + std::to_string(offset) + ": " + why,
                       file, offset);
  }

  const std::filesystem::path& dir_;
  std::string_view queue_;
  const Options& options_;
  Recovery out_;
  bool open_loss_ = false;  // out_.skipped.back() still waits for its to_position
};

}  // namespace

Recovery recover_locked(const std::filesystem::path& dir, std::string_view queue, const Options& options) {
  check_queue_name(queue);
  return Recoverer(dir, queue, options).run();
}

// Recovery truncates: it must not run under a live writer, whose unfinished
// write would look like a torn tail.
Recovery recover(const std::filesystem::path& dir, std::string_view queue, const Options& options) {
  auto lock = File::open_if_exists(dir, O_RDONLY | O_DIRECTORY);
  if (lock && !lock->try_lock()) {
    throw JournalError(Errc::Busy, "journal " + dir.string() + " has a writer", dir);
  }
  return recover_locked(dir, queue, options);
}

}  // namespace shmq::journal
