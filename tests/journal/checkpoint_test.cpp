// Checkpoints: written in the record stream, the latest one wins, and a copy
// starts every new segment so that retention never loses it.
#include <gtest/gtest.h>

#include <algorithm>

#include "journal/bytes.hpp"
#include "journal/format.hpp"
#include "journal_test_support.hpp"

namespace shmq::journal::test {
namespace {

Checkpoint sample(std::uint64_t n) {
  Checkpoint checkpoint;
  checkpoint.timestamp_ns = 5000 + n;
  checkpoint.groups = {{"billing", 64 * n}, {"audit", 128}, {std::string(255, 'g'), 0}};
  checkpoint.producers = {{0, "web-1", 10 + n}, {7, "", ~std::uint64_t{0}}};
  return checkpoint;
}

TEST(JournalCheckpoint, RoundTrip) {
  TempDir tmp;
  Checkpoint written;
  {
    auto writer = Writer::open(tmp.journal(), kQueue);
    append_range(writer, 0, 10);
    writer.checkpoint(sample(1));
    written = *writer.last_checkpoint();
    EXPECT_EQ(written.position, writer.written());
  }
  auto expected = sample(1);
  expected.position = position_of(9) + 1;
  EXPECT_EQ(written, expected);
  const auto recovery = recover(tmp.journal(), kQueue);
  EXPECT_EQ(recovery.checkpoint, expected);
  EXPECT_EQ(recovery.records, 10u);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 10));  // cursors pass checkpoints over
}

TEST(JournalCheckpoint, EmptyCheckpoint) {
  TempDir tmp;
  {
    auto writer = Writer::open(tmp.journal(), kQueue);
    writer.checkpoint({});
  }
  const auto recovery = recover(tmp.journal(), kQueue);
  ASSERT_TRUE(recovery.checkpoint);
  Checkpoint expected;
  expected.position = kDefaultFirstPosition;
  EXPECT_EQ(*recovery.checkpoint, expected);
}

TEST(JournalCheckpoint, TheLatestWins) {
  TempDir tmp;
  {
    auto writer = Writer::open(tmp.journal(), kQueue);
    for (std::uint64_t n = 0; n < 5; ++n) {
      append_range(writer, n * 10, n * 10 + 10);
      writer.checkpoint(sample(n));
    }
    append_range(writer, 50, 55);
  }
  auto expected = sample(4);
  expected.position = position_of(49) + 1;
  EXPECT_EQ(recover(tmp.journal(), kQueue).checkpoint, expected);
  auto writer = Writer::open(tmp.journal(), kQueue);
  EXPECT_EQ(writer.last_checkpoint(), expected);
}

TEST(JournalCheckpoint, SurvivesRetentionOfItsSegment) {
  TempDir tmp;
  Options options;
  options.segment_bytes = 2048;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, options);
    append_range(writer, 0, 5);
    writer.checkpoint(sample(3));
    append_range(writer, 5, 400);
    const auto removed = writer.remove_below(position_of(400));
    EXPECT_FALSE(removed.empty());
    EXPECT_EQ(writer.segments().size(), 1u);
  }
  const auto recovery = recover(tmp.journal(), kQueue, options);
  ASSERT_TRUE(recovery.checkpoint);
  auto expected = sample(3);
  expected.position = recovery.segments.front().first_position;  // the copy's
  EXPECT_EQ(*recovery.checkpoint, expected);
}

TEST(JournalCheckpoint, CopiedToTheStartOfEachNewSegment) {
  TempDir tmp;
  Options options;
  options.segment_bytes = 2048;
  auto writer = Writer::open(tmp.journal(), kQueue, options);
  writer.checkpoint(sample(1));
  append_range(writer, 0, 100);
  const std::vector<std::byte> big(5000, std::byte{1});  // a segment of its own, after the copy
  const Record record{position_of(100), 0, 0, 0, big};
  writer.append({&record, 1});
  const auto files = segment_files(tmp.journal());
  ASSERT_GT(files.size(), 3u);
  for (const auto& file : files) {
    const auto bytes = read_bytes(file);
    ASSERT_GT(bytes.size(), format::kHeaderBytes + format::kRecordHeaderBytes);
    const auto kind = format::get_le<std::uint16_t>(&bytes[format::kHeaderBytes + 12]);
    EXPECT_EQ(kind, static_cast<std::uint16_t>(format::RecordKind::Checkpoint)) << file;
  }
  EXPECT_EQ(writer.last_checkpoint()->position, writer.segments().back().first_position);
  const auto latest = writer.last_checkpoint();
  writer = Writer::open(tmp.path() / "other", kQueue);  // closes the journal
  EXPECT_EQ(recover(tmp.journal(), kQueue, options).checkpoint, latest);
}

// A group's mode: a trailing section, written only when some group is
// exclusive, so checkpoints without one stay what older versions wrote.
TEST(JournalCheckpoint, GroupModesRoundTripInATrailingSectionOnlyWhenSomeGroupIsExclusive) {
  const Checkpoint competing = sample(2);
  const auto plain = format::encode_checkpoint(competing);
  // The payload holds groups and producers (position and time are the record's).
  const auto same = [](const Checkpoint& a, const Checkpoint& b) {
    return a.groups == b.groups && a.producers == b.producers;
  };
  EXPECT_TRUE(same(format::decode_checkpoint(plain), competing));
  Checkpoint with_exclusive = competing;
  with_exclusive.groups[1].exclusive = true;
  const auto bytes = format::encode_checkpoint(with_exclusive);
  // The same bytes, then a u32 count of groups and one u8 mode each.
  ASSERT_EQ(bytes.size(), plain.size() + 4 + competing.groups.size());
  EXPECT_TRUE(std::equal(plain.begin(), plain.end(), bytes.begin()));
  EXPECT_EQ(format::get_le<std::uint32_t>(&bytes[plain.size()]), competing.groups.size());
  EXPECT_EQ(bytes[plain.size() + 4], std::byte{0});
  EXPECT_EQ(bytes[plain.size() + 5], std::byte{1});
  EXPECT_EQ(bytes[plain.size() + 6], std::byte{0});
  EXPECT_TRUE(same(format::decode_checkpoint(bytes), with_exclusive));
  // Through a journal too.
  TempDir tmp;
  {
    auto writer = Writer::open(tmp.journal(), kQueue);
    writer.checkpoint(with_exclusive);
  }
  const auto recovery = recover(tmp.journal(), kQueue);
  ASSERT_TRUE(recovery.checkpoint);
  EXPECT_EQ(recovery.checkpoint->groups, with_exclusive.groups);
}

TEST(JournalCheckpoint, RefusesAModesSectionThatDoesNotMatchItsGroups) {
  Checkpoint checkpoint = sample(1);
  checkpoint.groups[0].exclusive = true;
  const auto good = format::encode_checkpoint(checkpoint);
  const std::size_t modes = good.size() - 4 - checkpoint.groups.size();
  const auto refused = [](std::vector<std::byte> bytes) {
    try {
      (void)format::decode_checkpoint(bytes);
      return false;
    } catch (const JournalError& e) {
      return e.code() == Errc::Corrupt;
    }
  };
  auto wrong_count = good;
  wrong_count[modes] = std::byte{2};
  EXPECT_TRUE(refused(wrong_count));
  auto unknown_mode = good;
  unknown_mode[good.size() - 1] = std::byte{7};
  EXPECT_TRUE(refused(unknown_mode));
  const auto short_by = [&](std::size_t n) {
    return std::vector<std::byte>(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() - n));
  };
  EXPECT_TRUE(refused(short_by(1)));  // a mode missing
  auto trailing = good;
  trailing.push_back(std::byte{0});
  EXPECT_TRUE(refused(trailing));
  EXPECT_TRUE(refused(short_by(good.size() - modes - 2)));  // a short count
}

TEST(JournalCheckpoint, RefusesNamesLongerThan255Bytes) {
  TempDir tmp;
  auto writer = Writer::open(tmp.journal(), kQueue);
  Checkpoint checkpoint;
  checkpoint.groups = {{std::string(256, 'g'), 0}};
  try {
    writer.checkpoint(checkpoint);
    ADD_FAILURE() << "accepted";
  } catch (const JournalError& e) {
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
  }
  EXPECT_FALSE(writer.last_checkpoint());
}

}  // namespace
// Delivery counts: a second trailing section, after the modes (written then
// even when no group is exclusive), only when some group has counts.
TEST(JournalCheckpoint, DeliveryCountsRoundTripInASectionAfterTheModes) {
  const Checkpoint plain = sample(2);
  const auto plain_bytes = format::encode_checkpoint(plain);
  Checkpoint counted = plain;
  counted.groups[0].deliveries = {{64, 2}, {256, 0xff}};
  counted.groups[2].unlisted = 7;
  const auto bytes = format::encode_checkpoint(counted);
  const std::size_t groups = plain.groups.size();
  // The plain bytes, the modes section (all competing), then the counts:
  // u32 groups, and per group u8 unlisted, u32 pairs, pairs of u64 + u8.
  ASSERT_EQ(bytes.size(), plain_bytes.size() + (4 + groups) + (4 + groups * 5 + 2 * 9));
  EXPECT_TRUE(std::equal(plain_bytes.begin(), plain_bytes.end(), bytes.begin()));
  const std::size_t counts = plain_bytes.size() + 4 + groups;
  EXPECT_EQ(format::get_le<std::uint32_t>(&bytes[counts]), groups);
  EXPECT_EQ(bytes[counts + 4], std::byte{0});                                // unlisted
  EXPECT_EQ(format::get_le<std::uint32_t>(&bytes[counts + 5]), 2u);          // pairs
  EXPECT_EQ(format::get_le<std::uint64_t>(&bytes[counts + 9]), 64u);
  EXPECT_EQ(bytes[counts + 17], std::byte{2});
  const auto back = format::decode_checkpoint(bytes);
  EXPECT_EQ(back.groups, counted.groups);
  // With an exclusive group too: modes, then counts.
  counted.groups[1].exclusive = true;
  EXPECT_EQ(format::decode_checkpoint(format::encode_checkpoint(counted)).groups, counted.groups);
  // A checkpoint without counts is byte for byte what it was.
  EXPECT_EQ(format::encode_checkpoint(plain), plain_bytes);
}

TEST(JournalCheckpoint, RefusesDeliveryCountsThatAreZeroOutOfOrderOrMismatched) {
  Checkpoint checkpoint = sample(1);
  checkpoint.groups[0].deliveries = {{64, 2}, {128, 3}};
  const auto good = format::encode_checkpoint(checkpoint);
  const auto refused = [](const std::vector<std::byte>& bytes) {
    try {
      (void)format::decode_checkpoint(bytes);
      return false;
    } catch (const JournalError& e) {
      return e.code() == Errc::Corrupt;
    }
  };
  ASSERT_FALSE(refused(good));
  const std::size_t groups = checkpoint.groups.size();
  const std::size_t counts = good.size() - (4 + groups * 5 + 2 * 9);
  auto wrong_count = good;
  wrong_count[counts] = std::byte{1};
  EXPECT_TRUE(refused(wrong_count));
  auto zero = good;
  zero[counts + 17] = std::byte{0};  // the first pair's count
  EXPECT_TRUE(refused(zero));
  auto out_of_order = good;
  out_of_order[counts + 18] = std::byte{32};  // the second pair's position below the first's
  EXPECT_TRUE(refused(out_of_order));
  auto trailing = good;
  trailing.push_back(std::byte{0});
  EXPECT_TRUE(refused(trailing));
  EXPECT_TRUE(refused({good.begin(), good.end() - 1}));  // a count missing
}

}  // namespace shmq::journal::test
