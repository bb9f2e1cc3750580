// discard_from(): after a failed fdatasync the writer drops what it wrote
// since its last good sync, whole segments and part of one, and writes it again.
#include <gtest/gtest.h>

#include "journal_test_support.hpp"

namespace shmq::journal::test {
namespace {

TEST(JournalDiscard, DropsEveryRecordFromAPositionAcrossSegments) {
  TempDir tmp;
  constexpr std::size_t kCount = 1000;
  std::uint64_t synced = 0;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
    append_range(writer, 0, 600);
    synced = writer.sync();
    append_range(writer, 600, kCount);  // never synced: after a failure, not to be trusted
    writer.checkpoint({});
  }
  const auto segments_before = segment_files(tmp.journal()).size();
  discard_from(tmp.journal(), kQueue, synced, small_segments());
  EXPECT_LT(segment_files(tmp.journal()).size(), segments_before);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 600));
  // The writer goes on where the last good sync ended, and what it writes
  // again reads back once, in order.
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  EXPECT_EQ(writer.written(), synced);
  EXPECT_FALSE(writer.recovery().tail_cut.has_value());
  append_range(writer, 600, kCount);
  writer.sync();
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, kCount));
}

TEST(JournalDiscard, FromTheFirstPositionLeavesAnEmptyJournal) {
  TempDir tmp;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
    append_range(writer, 0, 300);
  }
  discard_from(tmp.journal(), kQueue, kDefaultFirstPosition, small_segments());
  EXPECT_TRUE(read_all(tmp.journal()).empty());
  EXPECT_EQ(segment_files(tmp.journal()).size(), 1u);
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  EXPECT_EQ(writer.written(), kDefaultFirstPosition);
}

TEST(JournalDiscard, AtTheEndChangesNothing) {
  TempDir tmp;
  std::uint64_t end = 0;
  {
    auto writer = Writer::open(tmp.journal(), kQueue);
    append_range(writer, 0, 50);
    end = writer.sync();
  }
  discard_from(tmp.journal(), kQueue, end);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 50));
  discard_from(tmp.journal() / "missing", kQueue, end);  // no journal: nothing to do
}

TEST(JournalDiscard, RefusedWhileAWriterHasTheJournal) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue);
  try {
    discard_from(tmp.journal(), kQueue, kDefaultFirstPosition);
    FAIL() << "discarded under a writer";
  } catch (const JournalError& e) {
    EXPECT_EQ(e.code(), Errc::Busy);
  }
}

}  // namespace
}  // namespace shmq::journal::test
