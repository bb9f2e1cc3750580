// A consumer's reader of its queue's journal, for a group that reads the
// journal (group_journal.hpp): records in position order, as owned copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shmq::journal {
class Cursor;
}

namespace shmq::detail {

struct JournalRecord {
  std::uint64_t position = 0;
  std::uint64_t end = 0;  // the ring position after it
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t timestamp_ns = 0;
  std::vector<std::byte> payload;
};

class JournalReader {
 public:
  JournalReader(std::filesystem::path dir, std::string queue, std::uint32_t max_message);
  JournalReader(JournalReader&&) noexcept;
  JournalReader& operator=(JournalReader&&) noexcept;
  ~JournalReader();

  // The first record at or after `from` that the files hold now, kept until
  // pop(); nullptr at their end. Throws journal::JournalError on damage, and
  // when the journal's directory is missing.
  JournalRecord* peek(std::uint64_t from);
  JournalRecord pop();

 private:
  std::filesystem::path dir_;
  std::string queue_;
  std::uint32_t max_message_;  // the queue's: journal::options_for_queue()
  std::unique_ptr<journal::Cursor> cursor_;
  std::uint64_t cursor_from_ = 0;  // the cursor returns nothing below this
  std::optional<JournalRecord> next_;
  std::uint64_t next_from_ = 0;  // next_ is the first record at or after this
};

}  // namespace shmq::detail
