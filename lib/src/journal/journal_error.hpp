// The one exception type of the journal, with a code saying what is wrong and,
// for damage, where.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace shmq::journal {

enum class Errc : std::uint8_t {
  Io,               // a system call failed (errno in the message)
  Foreign,          // a segment file that is not a shmq journal at all
  NewerVersion,     // a segment written in a newer format version than this build reads
  WrongQueue,       // a segment of another queue
  Corrupt,          // damage that is not a torn tail (see docs/journal.md)
  InvalidArgument,  // records out of position order, too large, a bad name or option
  Busy,             // another Writer holds the journal
};

[[nodiscard]] std::string_view to_string(Errc code) noexcept;

class JournalError : public std::runtime_error {
 public:
  JournalError(Errc code, const std::string& what, std::filesystem::path file = {}, std::uint64_t offset = 0);
  [[nodiscard]] Errc code() const noexcept { return code_; }
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }
  [[nodiscard]] std::uint64_t offset() const noexcept { return offset_; }  // in file()

 private:
  Errc code_;
  std::filesystem::path file_;
  std::uint64_t offset_;
};

}  // namespace shmq::journal
