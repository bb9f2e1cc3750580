#include "journal/journal_error.hpp"

#include <utility>

namespace shmq::journal {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::Io:
      return "io";
    case Errc::Foreign:
      return "foreign";
    case Errc::NewerVersion:
      return "newer-version";
    case Errc::WrongQueue:
      return "wrong-queue";
    case Errc::Corrupt:
      return "corrupt";
    case Errc::InvalidArgument:
      return "invalid-argument";
    case Errc::Busy:
      return "busy";
  }
  return "unknown";
}

JournalError::JournalError(Errc code, const std::string& what, std::filesystem::path file,
                           std::uint64_t offset)
    : std::runtime_error(what), code_(code), file_(std::move(file)), offset_(offset) {}

}  // namespace shmq::journal
