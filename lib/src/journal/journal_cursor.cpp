// shmq::JournalCursor (shmq/journal.hpp): the public, read-only face of
// journal::Cursor, with owned copies of the records and shmq::Error for
// errors.
#include <system_error>

#include "journal/journal.hpp"
#include "shmq/journal.hpp"
#include "shmq/queue.hpp"

namespace shmq {
namespace {

Errc public_code(journal::Errc code) {
  switch (code) {
    case journal::Errc::Foreign:
    case journal::Errc::NewerVersion:
      return Errc::Incompatible;
    case journal::Errc::WrongQueue:
      return Errc::WrongNamespace;
    case journal::Errc::Corrupt:
      return Errc::Corrupt;
    case journal::Errc::InvalidArgument:
      return Errc::InvalidArgument;
    case journal::Errc::Io:
    case journal::Errc::Busy:  // a reader takes no lock: never thrown here
      break;
  }
  return Errc::System;
}

// Runs a call of journal::Cursor, its JournalError turned into shmq::Error
// with the same message.
template <typename Call>
auto translated(Call&& call) {
  try {
    return call();
  } catch (const journal::JournalError& e) {
    throw Error(public_code(e.code()), e.what());
  }
}

}  // namespace

struct JournalCursor::State {
  std::filesystem::path dir;
  journal::Cursor cursor;
};

JournalCursor::JournalCursor(std::unique_ptr<State> state) : s_(std::move(state)) {}
JournalCursor::JournalCursor(JournalCursor&&) noexcept = default;
JournalCursor& JournalCursor::operator=(JournalCursor&&) noexcept = default;
JournalCursor::~JournalCursor() = default;

// The options of a queue that is not open here: the largest record any
// reader believes (journal::Options' default), as the queue's max_message is
// unknown.
JournalCursor JournalCursor::open(std::string_view queue, const std::filesystem::path& data_dir,
                                  std::uint64_t from) {
  validate_name(queue);
  auto dir = journal_dir(data_dir, queue);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    throw Error(Errc::NotFound, "no journal of queue '" + std::string(queue) + "' in " + dir.string());
  }
  auto cursor = translated([&] { return journal::Cursor::open(dir, queue, from); });
  return JournalCursor(std::make_unique<State>(State{std::move(dir), std::move(cursor)}));
}

std::optional<JournalEntry> JournalCursor::next() {
  return translated([&]() -> std::optional<JournalEntry> {
    const auto record = s_->cursor.next();
    if (!record) return std::nullopt;
    return JournalEntry{record->position, record->producer_id, record->sequence, record->timestamp_ns,
                        {record->payload.begin(), record->payload.end()}};
  });
}

const std::filesystem::path& JournalCursor::dir() const noexcept { return s_->dir; }

}  // namespace shmq
