// Pins the binary format of a segment: other processes (and other builds of
// the library) rely on these bytes. A change here needs a new layout version.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace layout;

class LayoutTest : public NamespaceTest {};

TEST_F(LayoutTest, SuperblockBytesOfARealSegment) {
  QueueOptions o;
  o.capacity = 1 << 16;
  o.max_message = 1000;
  o.max_producers = 3;
  o.max_groups = 2;
  o.max_consumers = 5;
  auto q = Queue::create("pinned", o);
  const std::string path = "/dev/shm/shmq." + ns_ + ".pinned";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Geometry g = geometry(o.capacity, 3, 2, 5);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), g.segment_bytes);

  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  unsigned char bytes[256];
  ASSERT_EQ(::pread(fd, bytes, sizeof bytes, 0), static_cast<ssize_t>(sizeof bytes));
  ::close(fd);
  const auto u64 = [&](std::size_t at) { std::uint64_t v; std::memcpy(&v, bytes + at, 8); return v; };
  const auto u32 = [&](std::size_t at) { std::uint32_t v; std::memcpy(&v, bytes + at, 4); return v; };
  EXPECT_EQ(std::memcmp(bytes, "SHMQLOG1", 8), 0);
  EXPECT_EQ(u32(8), 4u) << "layout version";
  EXPECT_EQ(u32(12), 1152u) << "header bytes";
  EXPECT_EQ(u64(16), g.segment_bytes);
  EXPECT_EQ(u64(24), 65536u);
  EXPECT_EQ(u32(32), 1000u);
  EXPECT_EQ(u32(36), 0u) << "flags";
  EXPECT_EQ(u32(40), 3u);
  EXPECT_EQ(u32(44), 2u);
  EXPECT_EQ(u32(48), 5u);
  EXPECT_EQ(u32(52), 0600u);
  EXPECT_EQ(u64(56), static_cast<std::uint64_t>(::getpid()));
  EXPECT_EQ(u64(80), 1152u) << "producer table right after the header";
  EXPECT_EQ(u64(88), 1152u + 3 * 256);
  EXPECT_EQ(u64(96), 1152u + 3 * 256 + 2 * 512);
  EXPECT_EQ(u64(120), g.ring_offset);
  EXPECT_EQ(g.ring_offset % 4096, 0u);
  EXPECT_STREQ(reinterpret_cast<const char*>(bytes + 128), ns_.c_str());
  EXPECT_STREQ(reinterpret_cast<const char*>(bytes + 192), "pinned");
}

TEST_F(LayoutTest, RecordFormatInTheRing) {
  QueueOptions o;
  o.capacity = 4096;
  o.max_message = 512;
  auto q = Queue::create("records", o);
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(7, bytes_of("abc")), Status::Ok);
  const auto& m = *detail::mapping_of(q);
  const auto* raw = reinterpret_cast<const unsigned char*>(m.at(kFirstPosition));
  std::uint32_t length;
  std::uint16_t type, producer;
  std::uint64_t seq;
  std::memcpy(&length, raw + 8, 4);
  std::memcpy(&type, raw + 12, 2);
  std::memcpy(&producer, raw + 14, 2);
  std::memcpy(&seq, raw + 16, 8);
  EXPECT_EQ(length, 3u);
  EXPECT_EQ(type, 1u);
  EXPECT_EQ(producer, p.id());
  EXPECT_EQ(seq, 7u);
  EXPECT_EQ(std::memcmp(raw + 32, "abc", 3), 0);
  std::uint64_t tag = 0;
  std::memcpy(&tag, raw, 8);
  EXPECT_EQ(tag, kFirstPosition ^ m.record_key) << "the tag: the position mixed with the segment's key";
  EXPECT_NE(m.record_key & kRecordKeyBit, 0u);
  EXPECT_EQ(p.last_position(), kFirstPosition);
}

// The producer entry: what a re-attach resumes from (last sequence, and the
// last record's position, which its durable confirms wait for).
TEST_F(LayoutTest, ProducerEntryBytes) {
  QueueOptions o;
  o.capacity = 4096;
  o.max_message = 512;
  auto q = Queue::create("producers", o);
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(7, bytes_of("abc")), Status::Ok);
  ASSERT_EQ(p.try_send(9, bytes_of("defg")), Status::Ok);
  const auto& m = *detail::mapping_of(q);
  const auto* raw = reinterpret_cast<const unsigned char*>(m.header) + m.header->super.producers_offset;
  const auto u64 = [&](std::size_t at) { std::uint64_t v; std::memcpy(&v, raw + at, 8); return v; };
  EXPECT_STREQ(reinterpret_cast<const char*>(raw + 24), "p");
  EXPECT_EQ(u64(88), 9u) << "last sequence";
  EXPECT_EQ(u64(160), 2u) << "messages";
  EXPECT_EQ(u64(168), 7u) << "bytes";
  EXPECT_EQ(u64(176), kFirstPosition + 64) << "last record's position";
  EXPECT_EQ(u64(176), p.last_position());
}

TEST(LayoutConstants, RecordSizes) {
  EXPECT_EQ(record_bytes(0), 64u);
  EXPECT_EQ(record_bytes(32), 64u);
  EXPECT_EQ(record_bytes(33), 128u);
  EXPECT_EQ(make_state(128, kAcked), (2u << 8) | 0x81u);
  EXPECT_TRUE(state_is_for(make_state(1 << 20, 3), 1 << 20));
  EXPECT_FALSE(state_is_for(0, kFirstPosition));
}

}  // namespace
}  // namespace shmq::test
