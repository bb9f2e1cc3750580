// Recovery: a torn or flipped tail is cut and reported; damage in the middle
// is refused, or skipped and reported with salvage; foreign and newer files
// are refused; no input makes it crash or read out of bounds.
#include <gtest/gtest.h>

#include <random>

#include "journal/bytes.hpp"
#include "journal_test_support.hpp"

namespace shmq::journal::test {
namespace {

void build(const std::filesystem::path& dir, std::size_t count, const Options& options = {}) {
  auto writer = Writer::open(dir, kQueue, options);
  append_range(writer, 0, count);
}

// Expects `fn` to throw JournalError with `code`; returns it.
template <class Fn>
JournalError expect_error(Errc code, Fn&& fn) {
  try {
    fn();
  } catch (const JournalError& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    return e;
  }
  ADD_FAILURE() << "no JournalError(" << to_string(code) << ")";
  return JournalError(code, "none");
}

TEST(JournalRecovery, TailTruncatedAtEveryOffsetOfTheLastRecord) {
  TempDir tmp;
  constexpr std::size_t kCount = 300, kLast = kCount - 1;
  build(tmp.journal(), kCount, small_segments());
  const auto last = segment_files(tmp.journal()).back();
  const auto original = read_bytes(last);
  const auto start = record_offset(first_position_of(last), kLast);
  ASSERT_EQ(start + format::kRecordHeaderBytes + payload_of(kLast).size(), original.size());
  const auto good_end = position_of(kLast - 1) + 1;

  for (auto cut = start; cut < original.size(); ++cut) {
    write_bytes(last, std::span(original).first(cut));
    EXPECT_EQ(read_all(tmp.journal()).size(), kLast) << cut;  // a cursor stops before it, no error
    const auto recovery = recover(tmp.journal(), kQueue, small_segments());
    ASSERT_EQ(recovery.records, kLast) << cut;
    ASSERT_EQ(recovery.written, good_end);
    if (cut == start) {
      EXPECT_FALSE(recovery.tail_cut);
    } else {
      ASSERT_TRUE(recovery.tail_cut) << cut;
      EXPECT_EQ(recovery.tail_cut->file, last);
      EXPECT_EQ(recovery.tail_cut->offset, start);
      EXPECT_EQ(recovery.tail_cut->bytes, cut - start);
      EXPECT_EQ(recovery.tail_cut->from_position, good_end);
    }
    ASSERT_EQ(std::filesystem::file_size(last), start);
  }
  auto writer = Writer::open(tmp.journal(), kQueue, small_segments());
  EXPECT_EQ(writer.written(), good_end);
  append_range(writer, kLast, kCount);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, kCount));
}

TEST(JournalRecovery, FlippedByteInTheLastRecordIsCut) {
  TempDir tmp;
  constexpr std::size_t kCount = 40, kLast = kCount - 1;
  build(tmp.journal(), kCount);
  const auto file = segment_files(tmp.journal()).back();
  const auto original = read_bytes(file);
  const auto start = record_offset(kDefaultFirstPosition, kLast);
  for (auto at = start; at < original.size(); ++at) {
    for (const auto flip : {std::byte{0x01}, std::byte{0x80}}) {
      auto bytes = original;
      bytes[at] ^= flip;
      write_bytes(file, bytes);
      const auto recovery = recover(tmp.journal(), kQueue);
      ASSERT_EQ(recovery.records, kLast) << at;
      ASSERT_TRUE(recovery.tail_cut);
      EXPECT_EQ(recovery.tail_cut->offset, start);
      EXPECT_EQ(recovery.tail_cut->bytes, original.size() - start);
      EXPECT_EQ(std::filesystem::file_size(file), start);
    }
  }
}

TEST(JournalRecovery, FlippedByteInAMiddleRecordIsRefusedOrSalvaged) {
  TempDir tmp;
  constexpr std::size_t kCount = 50, kBad = 20;
  build(tmp.journal(), kCount);
  const auto file = segment_files(tmp.journal()).back();
  const auto original = read_bytes(file);
  const auto start = record_offset(kDefaultFirstPosition, kBad);
  const auto end = record_offset(kDefaultFirstPosition, kBad + 1);
  auto survivors = expected_range(0, kCount);
  survivors.erase(survivors.begin() + kBad);
  for (auto at = start; at < end; ++at) {
    auto bytes = original;
    bytes[at] ^= std::byte{0x10};
    write_bytes(file, bytes);
    const auto error = expect_error(Errc::Corrupt, [&] { (void)recover(tmp.journal(), kQueue); });
    EXPECT_EQ(error.file(), file);
    EXPECT_EQ(error.offset(), start) << at;
    expect_error(Errc::Corrupt, [&] { (void)read_all(tmp.journal()); });

    Options salvage;
    salvage.salvage = true;
    const auto recovery = recover(tmp.journal(), kQueue, salvage);
    EXPECT_EQ(recovery.records, kCount - 1);
    EXPECT_FALSE(recovery.tail_cut);
    ASSERT_EQ(recovery.skipped.size(), 1u);
    const auto& lost = recovery.skipped.front();
    EXPECT_EQ(lost.file, file);
    EXPECT_EQ(lost.offset, start);
    EXPECT_EQ(lost.bytes, end - start);
    EXPECT_EQ(lost.from_position, position_of(kBad - 1) + 1);
    EXPECT_EQ(lost.to_position, position_of(kBad + 1));
    auto cursor = Cursor::open(tmp.journal(), kQueue, 0, salvage);
    EXPECT_EQ(drain(cursor), survivors);
    ASSERT_EQ(cursor.skipped().size(), 1u);
    EXPECT_EQ(cursor.skipped().front().offset, start);
    EXPECT_EQ(cursor.skipped().front().to_position, position_of(kBad + 1));
    EXPECT_EQ(std::filesystem::file_size(file), original.size());  // salvage cuts nothing in the middle
  }
}

TEST(JournalRecovery, DamagedEndOfAnEarlierSegmentIsNotATail) {
  TempDir tmp;
  build(tmp.journal(), 300, small_segments());
  const auto files = segment_files(tmp.journal());
  const auto first = files[0];
  const auto bytes = read_bytes(first);
  write_bytes(first, std::span(bytes).first(bytes.size() - 5));
  const auto error =
      expect_error(Errc::Corrupt, [&] { (void)recover(tmp.journal(), kQueue, small_segments()); });
  EXPECT_EQ(error.file(), first);

  const auto recovery = recover(tmp.journal(), kQueue, small_segments(true));
  ASSERT_EQ(recovery.skipped.size(), 1u);
  const auto last_index = first_index(first_position_of(files[1])) - 1;
  EXPECT_EQ(recovery.skipped[0].offset, record_offset(kDefaultFirstPosition, last_index));
  EXPECT_EQ(recovery.skipped[0].from_position, position_of(last_index - 1) + 1);
  EXPECT_EQ(recovery.skipped[0].to_position, first_position_of(files[1]));
  EXPECT_EQ(recovery.records, 299u);
  EXPECT_EQ(std::filesystem::file_size(first), bytes.size() - 5);
}

TEST(JournalRecovery, MissingMiddleSegmentIsAGap) {
  TempDir tmp;
  build(tmp.journal(), 300, small_segments());
  const auto files = segment_files(tmp.journal());
  ASSERT_GE(files.size(), 3u);
  std::filesystem::remove(files[1]);
  const auto error =
      expect_error(Errc::Corrupt, [&] { (void)recover(tmp.journal(), kQueue, small_segments()); });
  EXPECT_EQ(error.file(), files[2]);
  const auto recovery = recover(tmp.journal(), kQueue, small_segments(true));
  ASSERT_EQ(recovery.skipped.size(), 1u);
  EXPECT_EQ(recovery.skipped[0].from_position, first_position_of(files[1]));
  EXPECT_EQ(recovery.skipped[0].to_position, first_position_of(files[2]));
  EXPECT_EQ(recovery.records,
            300 - (first_index(first_position_of(files[2])) - first_index(first_position_of(files[1]))));
}

TEST(JournalRecovery, TornNewSegmentIsDropped) {
  TempDir tmp;
  build(tmp.journal(), 20);
  const auto header = read_bytes(segment_files(tmp.journal()).front());
  const auto torn = tmp.journal() / format::segment_name(position_of(19) + 1);
  for (const std::size_t length : {0, 5, 100}) {
    write_bytes(torn, std::span(header).first(length));
    const auto recovery = recover(tmp.journal(), kQueue);
    ASSERT_TRUE(recovery.tail_cut);
    EXPECT_EQ(recovery.tail_cut->file, torn);
    EXPECT_EQ(recovery.tail_cut->bytes, length);
    EXPECT_FALSE(std::filesystem::exists(torn));
    EXPECT_EQ(recovery.records, 20u);
  }
  auto writer = Writer::open(tmp.journal(), kQueue);
  append_range(writer, 20, 30);
  EXPECT_EQ(read_all(tmp.journal()), expected_range(0, 30));
}

TEST(JournalRecovery, ForeignFilesAreRefused) {
  TempDir tmp;
  std::filesystem::create_directories(tmp.journal());
  write_bytes(tmp.journal() / "notes.txt", std::as_bytes(std::span("ignored: not named like a segment")));
  EXPECT_TRUE(recover(tmp.journal(), kQueue).segments.empty());
  const auto segment = tmp.journal() / format::segment_name(kDefaultFirstPosition);
  for (const std::size_t length : {3, 200}) {
    write_bytes(segment, std::vector<std::byte>(length, std::byte{'x'}));
    expect_error(Errc::Foreign, [&] { (void)recover(tmp.journal(), kQueue); });
    expect_error(Errc::Foreign, [&] { (void)Writer::open(tmp.journal(), kQueue); });
    expect_error(Errc::Foreign, [&] { (void)read_all(tmp.journal()); });
    EXPECT_TRUE(std::filesystem::exists(segment));
  }
}

TEST(JournalRecovery, NewerVersionIsRefused) {
  TempDir tmp;
  build(tmp.journal(), 5);
  const auto file = segment_files(tmp.journal()).front();
  auto bytes = read_bytes(file);
  format::put_le(&bytes[8], format::kVersion + 1);  // the version field
  write_bytes(file, bytes);
  const auto error = expect_error(Errc::NewerVersion, [&] { (void)recover(tmp.journal(), kQueue); });
  EXPECT_EQ(error.file(), file);
  expect_error(Errc::NewerVersion, [&] { (void)read_all(tmp.journal()); });
}

TEST(JournalRecovery, DamagedHeaderOrWrongQueueIsRefused) {
  TempDir tmp;
  build(tmp.journal(), 5);
  expect_error(Errc::WrongQueue, [&] { (void)recover(tmp.journal(), "payments"); });
  const auto file = segment_files(tmp.journal()).front();
  const auto original = read_bytes(file);
  auto bytes = original;
  bytes[24] ^= std::byte{1};  // created time: only the CRC notices
  write_bytes(file, bytes);
  expect_error(Errc::Corrupt, [&] { (void)recover(tmp.journal(), kQueue, {.salvage = true}); });
  write_bytes(file, original);
  std::filesystem::rename(file, tmp.journal() / format::segment_name(128));  // name and header disagree
  expect_error(Errc::Corrupt, [&] { (void)recover(tmp.journal(), kQueue); });
}

// Random damage of every kind: the result is a recovery or a JournalError,
// never a crash or an out-of-bounds read (run under ASan to be sure).
TEST(JournalRecovery, NeverCrashesOnGarbage) {
  TempDir tmp;
  Options options = small_segments();
  options.max_payload = 1000;
  {
    auto writer = Writer::open(tmp.journal(), kQueue, options);
    append_range(writer, 0, 60);
    Checkpoint checkpoint;
    checkpoint.groups = {{"g", 64}};
    checkpoint.producers = {{1, "p", 2}};
    writer.checkpoint(checkpoint);
    append_range(writer, 60, 80);
  }
  const auto files = segment_files(tmp.journal());
  std::vector<std::vector<std::byte>> originals;
  for (const auto& file : files) originals.push_back(read_bytes(file));
  std::mt19937_64 rng(42);
  for (int round = 0; round < 400; ++round) {
    for (std::size_t f = 0; f < files.size(); ++f) {
      auto bytes = originals[f];
      if (rng() % 3 == 0) {
        for (int n = static_cast<int>(rng() % 8); n >= 0; --n)
          bytes[rng() % bytes.size()] = static_cast<std::byte>(rng());
      }
      if (rng() % 4 == 0) {  // a lying length field somewhere
        format::put_le(&bytes[rng() % (bytes.size() - 4)], static_cast<std::uint32_t>(rng()));
      }
      if (rng() % 4 == 0) bytes.resize(rng() % bytes.size());
      write_bytes(files[f], bytes);
    }
    options.salvage = rng() % 2 == 0;
    options.max_payload =
        rng() % 2 == 0 ? 1000 : Options{}.max_payload;  // lengths bounded by the file, or by both
    try {
      (void)read_all(tmp.journal(), 0, options);
    } catch (const JournalError&) {
    }
    try {
      (void)recover(tmp.journal(), kQueue, options);
    } catch (const JournalError&) {
    }
  }
}

}  // namespace
}  // namespace shmq::journal::test
