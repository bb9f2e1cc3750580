// shmq::JournalCursor, the public read-only reader of a queue's journal
// (shmq/journal.hpp), on journals written by shmqd's Writer: every record in
// order, from a position, following the writer; clear Errors; nothing cut.
#include <gtest/gtest.h>

#include <functional>

#include "journal_test_support.hpp"
#include "shmq/journal.hpp"
#include "shmq/status.hpp"

namespace shmq::journal::test {
namespace {

// The journal of kQueue where shmqd would keep it in data directory `tmp`.
std::filesystem::path queue_journal(const TempDir& tmp) { return shmq::journal_dir(tmp.path(), kQueue); }

std::vector<Stored> read_public(const TempDir& tmp, std::uint64_t from = 0) {
  auto cursor = JournalCursor::open(kQueue, tmp.path(), from);
  std::vector<Stored> out;
  while (auto entry = cursor.next()) {
    out.push_back({entry->position, entry->producer_id, entry->sequence, entry->timestamp_ns,
                   std::move(entry->payload)});
  }
  return out;
}

shmq::Errc public_error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const shmq::Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no shmq::Error thrown";
  return shmq::Errc::System;
}

TEST(JournalCursor, TheJournalDirectoryOfAQueue) {
  EXPECT_EQ(shmq::journal_dir("/var/lib/shmq/default", "orders"), "/var/lib/shmq/default/journal/orders");
}

TEST(JournalCursor, ReadsEveryRecordInOrderAcrossSegments) {
  TempDir tmp;
  auto writer = Writer::open(queue_journal(tmp), kQueue, small_segments());
  append_range(writer, 0, 300);
  writer.checkpoint({});  // checkpoints are not records
  append_range(writer, 300, 320);
  ASSERT_GT(writer.segments().size(), 3u);
  EXPECT_EQ(read_public(tmp), expected_range(0, 320));
  auto cursor = JournalCursor::open(kQueue, tmp.path());
  EXPECT_EQ(cursor.dir(), queue_journal(tmp));
}

TEST(JournalCursor, StartsAtTheFirstRecordAtOrAfterAPosition) {
  TempDir tmp;
  auto writer = Writer::open(queue_journal(tmp), kQueue, small_segments());
  append_range(writer, 0, 200);
  EXPECT_EQ(read_public(tmp, position_of(150)), expected_range(150, 200));
  EXPECT_EQ(read_public(tmp, position_of(150) - 1), expected_range(150, 200));
  EXPECT_TRUE(read_public(tmp, position_of(200)).empty());
}

TEST(JournalCursor, FollowsTheWriter) {
  TempDir tmp;
  auto writer = Writer::open(queue_journal(tmp), kQueue, small_segments());
  append_range(writer, 0, 10);
  auto cursor = JournalCursor::open(kQueue, tmp.path());
  for (std::size_t i = 0; i < 10; ++i) ASSERT_TRUE(cursor.next());
  EXPECT_FALSE(cursor.next()) << "the end of what is written now";
  append_range(writer, 10, 200);  // rolls to new segments
  std::vector<Stored> later;
  while (auto entry = cursor.next()) {
    later.push_back({entry->position, entry->producer_id, entry->sequence, entry->timestamp_ns, entry->payload});
  }
  EXPECT_EQ(later, expected_range(10, 200));
}

TEST(JournalCursor, ATornTailEndsTheReadingAndStaysUncut) {
  TempDir tmp;
  {
    auto writer = Writer::open(queue_journal(tmp), kQueue);
    append_range(writer, 0, 20);
  }
  const auto segment = queue_journal(tmp) / format::segment_name(kDefaultFirstPosition);
  const auto size = std::filesystem::file_size(segment);
  std::filesystem::resize_file(segment, size - 3);  // a write that never completed
  EXPECT_EQ(read_public(tmp), expected_range(0, 19));
  EXPECT_EQ(std::filesystem::file_size(segment), size - 3) << "a reader cuts nothing";
}

TEST(JournalCursor, DamageInTheMiddleIsCorrupt) {
  TempDir tmp;
  {
    auto writer = Writer::open(queue_journal(tmp), kQueue);
    append_range(writer, 0, 20);
  }
  const auto segment = queue_journal(tmp) / format::segment_name(kDefaultFirstPosition);
  auto bytes = read_bytes(segment);
  bytes[record_offset(kDefaultFirstPosition, 5) + format::kRecordHeaderBytes + 10] ^= std::byte{0x5a};  // a payload byte
  write_bytes(segment, bytes);
  auto cursor = JournalCursor::open(kQueue, tmp.path());
  for (std::size_t i = 0; i < 5; ++i) ASSERT_TRUE(cursor.next());
  EXPECT_EQ(public_error_of([&] { (void)cursor.next(); }), shmq::Errc::Corrupt);
}

TEST(JournalCursor, ClearErrors) {
  TempDir tmp;
  EXPECT_EQ(public_error_of([&] { (void)JournalCursor::open(kQueue, tmp.path()); }), shmq::Errc::NotFound);
  EXPECT_EQ(public_error_of([&] { (void)JournalCursor::open("a/b", tmp.path()); }), shmq::Errc::InvalidName);
  {
    auto writer = Writer::open(queue_journal(tmp), kQueue);
    append_range(writer, 0, 3);
  }
  // The journal of another queue, moved under this one's name.
  std::filesystem::create_directories(shmq::journal_dir(tmp.path(), "payments"));
  std::filesystem::copy(queue_journal(tmp), shmq::journal_dir(tmp.path(), "payments"),
                        std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(public_error_of([&] { (void)JournalCursor::open("payments", tmp.path()); }),
            shmq::Errc::WrongNamespace);
  // Not a journal at all.
  const auto segment = queue_journal(tmp) / format::segment_name(kDefaultFirstPosition);
  write_bytes(segment, std::vector<std::byte>(format::kHeaderBytes, std::byte{'x'}));
  EXPECT_EQ(public_error_of([&] { (void)JournalCursor::open(kQueue, tmp.path()); }), shmq::Errc::Incompatible);
}

}  // namespace
}  // namespace shmq::journal::test
