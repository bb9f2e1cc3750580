// Retention deletes whole segments, oldest first, and never one holding
// anything at or after the floor it is given.
#include <gtest/gtest.h>

#include "journal_test_support.hpp"

namespace shmq::journal::test {
namespace {

constexpr std::size_t kCount = 400;

Options tiny_segments() {  // 2 KiB: retention has many segments to choose from
  Options options;
  options.segment_bytes = 2048;
  return options;
}

TEST(JournalRetention, RemoveBelowNeverDeletesANeededSegment) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, tiny_segments());
  append_range(writer, 0, kCount);
  const auto before = writer.segments().size();
  ASSERT_GT(before, 10u);
  std::size_t removed = 0;
  for (std::size_t i = 0; i < kCount; i += 3) {
    removed += writer.remove_below(position_of(i)).size();
    // Everything from the floor on is still there, and the oldest kept segment holds something below it.
    EXPECT_EQ(read_all(tmp.journal(), position_of(i)), expected_range(i, kCount)) << i;
    EXPECT_LE(writer.segments().front().first_position, position_of(i));
    EXPECT_GT(writer.segments().at(std::min<std::size_t>(1, writer.segments().size() - 1)).first_position,
              writer.segments().size() > 1 ? position_of(i) : 0);
  }
  EXPECT_EQ(removed + writer.segments().size(), before);
  EXPECT_EQ(segment_files(tmp.journal()).size(), writer.segments().size());
}

TEST(JournalRetention, NeverTheSegmentBeingWritten) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, tiny_segments());
  append_range(writer, 0, kCount);
  writer.remove_below(~std::uint64_t{0});
  ASSERT_EQ(writer.segments().size(), 1u);
  const auto kept = first_index(writer.segments().front().first_position);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(kept, kCount));
  append_range(writer, kCount, kCount + 10);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(kept, kCount + 10));
  writer = Writer::open(tmp.path() / "other", kQueue);   // closes the journal
  const auto recovery = recover(tmp.journal(), kQueue);  // still a whole journal
  EXPECT_EQ(recovery.records, kCount + 10 - kept);
  EXPECT_TRUE(recovery.skipped.empty());
}

TEST(JournalRetention, BySizeDownToTheFloor) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, tiny_segments());
  append_range(writer, 0, kCount);
  const auto floor = position_of(kCount / 2);
  writer.retain({.max_bytes = 1}, floor, 0);  // far too big: delete all it may
  EXPECT_LE(writer.segments().front().first_position, floor);
  EXPECT_GT(writer.segments().at(1).first_position, floor);
  EXPECT_EQ(read_all(tmp.journal(), floor), expected_range(kCount / 2, kCount));

  std::uint64_t total = 0;
  for (const auto& segment : writer.segments()) total += segment.bytes;
  const auto count = writer.segments().size();
  writer.retain({.max_bytes = total}, ~std::uint64_t{0}, 0);  // within the limit: nothing
  EXPECT_EQ(writer.segments().size(), count);
  writer.retain({.max_bytes = total - 1}, ~std::uint64_t{0}, 0);  // just over: the oldest only
  EXPECT_EQ(writer.segments().size(), count - 1);
}

TEST(JournalRetention, ByAgeDownToTheFloor) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue, tiny_segments());
  append_range(writer, 0, kCount);
  const auto count = writer.segments().size();
  const auto now = writer.segments().back().created_ns;
  constexpr std::uint64_t kHour = 3600'000'000'000;
  writer.retain({.max_age_ns = kHour}, ~std::uint64_t{0}, now);  // all younger than an hour
  EXPECT_EQ(writer.segments().size(), count);
  const auto floor = position_of(100);
  writer.retain({.max_age_ns = kHour}, floor, now + 2 * kHour);
  EXPECT_LE(writer.segments().front().first_position, floor);
  EXPECT_GT(writer.segments().at(1).first_position, floor);
  EXPECT_EQ(read_all(tmp.journal(), floor), expected_range(100, kCount));
}

}  // namespace
}  // namespace shmq::journal::test
