// Writing and reading back: segment rolls, reopening, cursors from a
// position or a time, and what append refuses.
#include <gtest/gtest.h>

#include "journal_test_support.hpp"

namespace shmq::journal::test {
namespace {

TEST(JournalRoundTrip, ManyRecordsAcrossSegmentRolls) {
  TempDir tmp;
  constexpr std::size_t kCount = 2000;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
    EXPECT_EQ(writer.written(), kDefaultFirstPosition);
    append_range(writer, 0, kCount);
    EXPECT_EQ(writer.written(), position_of(kCount - 1) + 1);
    EXPECT_LT(writer.synced(), writer.written());
    EXPECT_EQ(writer.sync(), writer.written());
    EXPECT_EQ(writer.synced(), writer.written());
    EXPECT_GT(writer.segments().size(), 20u);
  }
  const auto files = segment_files(tmp.journal());
  EXPECT_EQ(files.front().filename(), "00000000000000000064.journal");
  for (const auto& file : files) {
    const auto size = std::filesystem::file_size(file);
    // A segment exceeds segment_bytes only when one record alone does.
    EXPECT_LE(size, 4096u) << file;
  }
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, kCount));

  const auto recovery = recover(tmp.journal(), kQueue);
  EXPECT_EQ(recovery.records, kCount);
  EXPECT_EQ(recovery.written, position_of(kCount - 1) + 1);
  EXPECT_EQ(recovery.segments.size(), files.size());
  EXPECT_FALSE(recovery.tail_cut);
  EXPECT_TRUE(recovery.skipped.empty());
  EXPECT_FALSE(recovery.checkpoint);
}

TEST(JournalRoundTrip, ReopenContinuesWhereItEnded) {
  TempDir tmp;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
    append_range(writer, 0, 150);
  }
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  EXPECT_EQ(writer.written(), position_of(149) + 1);
  EXPECT_EQ(writer.synced(), writer.written());  // open syncs what recovery kept
  append_range(writer, 150, 300);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 300));
}

TEST(JournalRoundTrip, RecordLargerThanASegmentGetsOneOfItsOwn) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  append_range(writer, 0, 3);
  const std::vector<std::byte> big(10000, std::byte{0x5a});
  const Record record{position_of(3), 1, 1, 1, big};
  writer.append({&record, 1});
  append_range(writer, 4, 6);
  const auto all = read_all(tmp.journal());
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[3].payload, big);
  EXPECT_EQ(writer.segments().size(), 3u);
}

TEST(JournalRoundTrip, AppendRefusesBadBatchesWholly) {
  TempDir tmp;
  Options options;
  options.max_payload = 50;
  auto writer = Writer::open(tmp.journal(), kQueue, options);
  append_range(writer, 0, 2);
  const auto written = writer.written();
  const std::vector<std::byte> payload(10), big(51);
  const std::vector<Record> backwards{{position_of(5), 0, 0, 0, payload}, {position_of(4), 0, 0, 0, payload}};
  const std::vector<Record> repeated{{position_of(1), 0, 0, 0, payload}};
  const std::vector<Record> too_large{{position_of(5), 0, 0, 0, payload}, {position_of(6), 0, 0, 0, big}};
  for (const auto& batch : {backwards, repeated, too_large}) {
    try {
      writer.append(batch);
      ADD_FAILURE() << "accepted";
    } catch (const JournalError& e) {
      EXPECT_EQ(e.code(), Errc::InvalidArgument);
    }
    EXPECT_EQ(writer.written(), written);
  }
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 2));
}

TEST(JournalRoundTrip, OneWriterPerJournal) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue);
  try {
    auto second = Writer::open(tmp.journal(), kQueue);
    ADD_FAILURE() << "second writer opened";
  } catch (const JournalError& e) {
    EXPECT_EQ(e.code(), Errc::Busy);
  }
  try {
    (void)recover(tmp.journal(), kQueue);  // it would take the writer's unfinished write for a torn tail
    ADD_FAILURE() << "recovered under a writer";
  } catch (const JournalError& e) {
    EXPECT_EQ(e.code(), Errc::Busy);
  }
}

TEST(JournalRoundTrip, CursorFromAPosition) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  append_range(writer, 0, 500);
  for (const std::size_t i : {0, 1, 77, 250, 499}) {
    EXPECT_EQ(read_all(tmp.journal(), position_of(i)), expected_range(i, 500)) << i;
    EXPECT_EQ(read_all(tmp.journal(), position_of(i) - 1), expected_range(i, 500)) << i;  // between records
  }
  EXPECT_EQ(read_all(tmp.journal(), 0), expected_range(0, 500));  // older than the oldest
  EXPECT_TRUE(read_all(tmp.journal(), position_of(500)).empty());
}

TEST(JournalRoundTrip, CursorFollowsTheWriterAcrossRolls) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  auto cursor = Cursor::open(tmp.journal(), kQueue, 0);
  EXPECT_FALSE(cursor.next());
  append_range(writer, 0, 10);
  EXPECT_EQ(drain(cursor), expected_range(0, 10));
  append_range(writer, 10, 400);  // many rolls
  EXPECT_EQ(drain(cursor), expected_range(10, 400));
  EXPECT_FALSE(cursor.next());
}

TEST(JournalRoundTrip, CursorOnAnEmptyJournal) {
  TempDir tmp;
  EXPECT_TRUE(read_all(tmp.journal()).empty());  // no directory at all
  auto writer = Writer::open(tmp.journal(), kQueue);
  EXPECT_TRUE(read_all(tmp.journal()).empty());
}

TEST(JournalRoundTrip, FirstAtOrAfterTime) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  append_range(writer, 0, 300);  // record i has timestamp 1000 i
  EXPECT_EQ(first_at_or_after_time(tmp.journal(), kQueue, 0), position_of(0));
  EXPECT_EQ(first_at_or_after_time(tmp.journal(), kQueue, 123000), position_of(123));
  EXPECT_EQ(first_at_or_after_time(tmp.journal(), kQueue, 123001), position_of(124));
  EXPECT_EQ(first_at_or_after_time(tmp.journal(), kQueue, 299000), position_of(299));
  EXPECT_FALSE(first_at_or_after_time(tmp.journal(), kQueue, 299001));
  const auto from = *first_at_or_after_time(tmp.journal(), kQueue, 200000);
  EXPECT_EQ(read_all(tmp.journal(), from), expected_range(200, 300));
}

TEST(JournalRoundTrip, RefusesBadNamesAndOptions) {
  TempDir tmp;
  for (const std::string& name : {std::string(), std::string(64, 'q'), std::string("a\0b", 3)}) {
    try {
      auto writer = Writer::open(tmp.journal(), name);
      ADD_FAILURE() << "accepted name of " << name.size() << " bytes";
    } catch (const JournalError& e) {
      EXPECT_EQ(e.code(), Errc::InvalidArgument);
    }
  }
  Options options;
  options.segment_bytes = 100;
  EXPECT_THROW(auto writer = Writer::open(tmp.journal(), kQueue, options), JournalError);
}

}  // namespace
}  // namespace shmq::journal::test
