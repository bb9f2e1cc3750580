#include "durable/journal_reader.hpp"

#include "journal/journal.hpp"
#include "shm/layout.hpp"

// A journal's positions are its queue's ring positions: a new journal starts
// where a new segment's log does, so a group can switch between the two.
static_assert(shmq::journal::kDefaultFirstPosition == shmq::layout::kFirstPosition);

namespace shmq::detail {

JournalReader::JournalReader(std::filesystem::path dir, std::string queue, std::uint32_t max_message)
    : dir_(std::move(dir)), queue_(std::move(queue)), max_message_(max_message) {}
JournalReader::JournalReader(JournalReader&&) noexcept = default;
JournalReader& JournalReader::operator=(JournalReader&&) noexcept = default;
JournalReader::~JournalReader() = default;

JournalRecord* JournalReader::peek(std::uint64_t from) {
  // The record kept is the first at or after where it was looked for.
  if (next_ && next_from_ <= from && from <= next_->position) return &*next_;
  next_.reset();
  // A reader that died may send us back (its records are read again): reopen.
  if (!cursor_ || from < cursor_from_) {
    cursor_ = std::make_unique<journal::Cursor>(
        journal::Cursor::open(dir_, queue_, from, journal::options_for_queue(max_message_)));
    cursor_from_ = from;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir_, ec)) {
      cursor_.reset();
      throw journal::JournalError(journal::Errc::Io,
                                  "the journal of queue '" + queue_ + "' is not in " + dir_.string() +
                                      ": set SHMQ_DATA_DIR (or ConsumerOptions::journal_dir) to shmqd's data directory",
                                  dir_);
    }
  }
  while (const auto record = cursor_->next()) {
    cursor_from_ = record->position + 1;
    if (record->position < from) continue;
    next_from_ = from;
    next_ = JournalRecord{record->position,
                          record->position + layout::record_bytes(record->payload.size()),
                          record->producer_id,
                          record->sequence,
                          record->timestamp_ns,
                          {record->payload.begin(), record->payload.end()}};
    return &*next_;
  }
  return nullptr;
}

JournalRecord JournalReader::pop() {
  JournalRecord record = std::move(*next_);
  next_.reset();
  return record;
}

}  // namespace shmq::detail
