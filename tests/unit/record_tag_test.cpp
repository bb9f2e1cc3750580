// The record tag (shm/layout.hpp): a record commits itself by the first word
// of its header. Whatever bytes sit where a header goes before its producer
// commits (an earlier lap's header, an earlier lap's payload, a half-written
// header, a value a peer made up) must never pass for the record.
#include <cstring>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace layout;

constexpr std::uint64_t kCapacity = 4096;

class RecordTagTest : public NamespaceTest {
 protected:
  void SetUp() override {
    NamespaceTest::SetUp();
    QueueOptions o;
    o.capacity = kCapacity;
    o.max_message = 512;
    queue_ = std::make_unique<Queue>(Queue::create("tags", o));
    producer_ = std::make_unique<Producer>(Producer::attach(*queue_, "p"));
    consumer_ = std::make_unique<Consumer>(Consumer::join(*queue_, "g"));
  }
  const detail::Mapping& map() const { return *detail::mapping_of(*queue_); }
  std::uint64_t tail() const { return map().header->tail.load(); }

  // Sends and consumes `bytes`-payload messages until the tail sits at
  // `position` (mod the ring) of a later lap: the bytes there are an
  // earlier lap's.
  void move_tail_to_next_lap_at(std::uint64_t offset, std::size_t payload) {
    const std::uint64_t target = tail() - (tail() % kCapacity) + kCapacity + offset;
    while (tail() < target) {
      ASSERT_EQ(producer_->try_send(std::vector<std::byte>(payload)), Status::Ok);
      Message m;
      ASSERT_EQ(consumer_->try_receive(m), Status::Ok);
      ASSERT_EQ(consumer_->ack(m), Status::Ok);
    }
    ASSERT_EQ(tail(), target) << "the records must land exactly there";
  }

  // Claims a record at the tail and writes its payload, without committing.
  std::uint64_t claim_without_commit(const std::vector<std::byte>& payload) {
    const std::uint64_t at = tail();
    EXPECT_EQ(producer_->try_claim(payload.size()), Status::Ok);
    std::memcpy(producer_->claimed().data(), payload.data(), payload.size());
    return at;
  }

  Status receive() {
    Message m;
    const Status s = consumer_->try_receive(m);
    if (s == Status::Ok) received_ = std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
    return s;
  }

  std::unique_ptr<Queue> queue_;
  std::unique_ptr<Producer> producer_;
  std::unique_ptr<Consumer> consumer_;
  std::string received_;
};

TEST_F(RecordTagTest, NeverWrittenMemoryAndOtherSegmentsTagsDoNotMatch) {
  EXPECT_NE(map().record_key & kRecordKeyBit, 0u);
  EXPECT_FALSE(map().committed(tail())) << "zeros are never a tag";
  QueueOptions o;
  o.capacity = kCapacity;
  o.max_message = 512;
  auto other = Queue::create("other", o);
  EXPECT_NE(detail::mapping_of(other)->record_key, map().record_key) << "each segment draws its own key";
}

TEST_F(RecordTagTest, AnEarlierLapsHeaderIsNotACommit) {
  move_tail_to_next_lap_at(0, 8);
  move_tail_to_next_lap_at(0, 96);  // a lap of 128-byte records: one started at offset 0
  const std::uint64_t at = claim_without_commit(std::vector<std::byte>(96, std::byte{'x'}));
  EXPECT_EQ(map().record(at)->tag.load(), map().tag_of(at - kCapacity)) << "the bytes are the last lap's header";
  EXPECT_EQ(receive(), Status::Empty);
  producer_->commit();
  EXPECT_EQ(receive(), Status::Ok);
  EXPECT_EQ(received_, std::string(96, 'x'));
}

// An earlier lap's payload covered the chunk where this lap's header goes and
// held, there, what a tag without a key would be (the position itself), and
// the tag of the earlier lap's record at that chunk.
TEST_F(RecordTagTest, AnEarlierLapsPayloadIsNotACommit) {
  move_tail_to_next_lap_at(0, 8);  // 64-byte records from the lap's start
  const std::uint64_t lap = tail();
  // Next lap: one record over offsets [0, 192), its payload over the chunk
  // starts at 64 and 128, which this lap's records will start at.
  std::vector<std::byte> forged(160);
  const auto put = [&](std::uint64_t payload_offset, std::uint64_t value) {
    std::memcpy(forged.data() + payload_offset, &value, sizeof value);
  };
  put(64 - sizeof(RecordHeader), lap + kCapacity + 64);              // the bare position of the next lap's record
  put(128 - sizeof(RecordHeader), map().tag_of(lap + 128));          // an old tag: this lap's, at that chunk
  ASSERT_EQ(producer_->try_send(forged), Status::Ok);
  Message m;
  ASSERT_EQ(consumer_->try_receive(m), Status::Ok);
  ASSERT_EQ(consumer_->ack(m), Status::Ok);
  move_tail_to_next_lap_at(0, 8);
  ASSERT_EQ(producer_->try_send(std::vector<std::byte>(8)), Status::Ok);  // offset 0
  ASSERT_EQ(receive(), Status::Ok);
  const std::uint64_t at = claim_without_commit(std::vector<std::byte>(8, std::byte{'y'}));  // offset 64
  ASSERT_EQ(at % kCapacity, 64u);
  EXPECT_EQ(receive(), Status::Empty) << "the bare position passed for a tag";
  producer_->commit();
  ASSERT_EQ(receive(), Status::Ok);
  EXPECT_EQ(received_, std::string(8, 'y'));
  ASSERT_EQ(claim_without_commit(std::vector<std::byte>(8)) % kCapacity, 128u);
  EXPECT_EQ(receive(), Status::Empty) << "an earlier lap's tag passed for this lap's";
}

// A producer that died between writing its header's fields and its tag (a
// torn header): the record is not committed, its fields are not read.
TEST_F(RecordTagTest, AHeaderWithoutItsTagIsNotACommit) {
  const std::uint64_t at = claim_without_commit(std::vector<std::byte>(16, std::byte{'z'}));
  map().write_info(at, RecordFields{16, static_cast<std::uint16_t>(RecordType::Data), 0, 1, 1});
  EXPECT_EQ(receive(), Status::Empty);
  EXPECT_FALSE(map().committed(at));
  producer_->commit();
  EXPECT_EQ(receive(), Status::Ok);
}

// Values a peer could write into a header's first word: none but the exact
// tag commits, and a committed header with impossible fields is refused.
TEST_F(RecordTagTest, OnlyTheExactTagCommits) {
  const std::uint64_t at = claim_without_commit(std::vector<std::byte>(16));
  const std::uint64_t exact = map().tag_of(at);
  for (const std::uint64_t value : {at, exact ^ kRecordKeyBit, map().tag_of(at + kCapacity), map().tag_of(at - kCapacity),
                                    exact + 1, exact - kRecordAlign, ~std::uint64_t{0}, std::uint64_t{0}}) {
    map().record(at)->tag.store(value);
    EXPECT_FALSE(map().committed(at)) << "value " << value;
    EXPECT_EQ(receive(), Status::Empty) << "value " << value;
  }
  map().write_info(at, RecordFields{static_cast<std::uint32_t>(kCapacity * 2), static_cast<std::uint16_t>(RecordType::Data),
                                     0, 1, 1});
  map().record(at)->tag.store(exact);
  EXPECT_EQ(receive(), Status::Corrupt) << "a record longer than max_message is reported, not followed";
}

}  // namespace
}  // namespace shmq::test
