// The ring in one process: order, wrap-around with padding, full and empty,
// sizes, duplicates, groups, prefetch, acks, zero-copy claims.
#include "test_support.hpp"

namespace shmq::test {
namespace {

class RingTest : public NamespaceTest {
 protected:
  Queue make(std::uint64_t capacity = 4096, std::uint32_t max_message = 512) {
    QueueOptions o;
    o.capacity = capacity;
    o.max_message = max_message;
    return Queue::create("ring", o);
  }
};

TEST_F(RingTest, SendReceiveAckInOrder) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  EXPECT_EQ(p.last_sequence(), 0u);
  for (int i = 1; i <= 10; ++i) ASSERT_EQ(p.try_send(bytes_of("m" + std::to_string(i))), Status::Ok);
  std::uint64_t last_position = 0;
  for (int i = 1; i <= 10; ++i) {
    Message m;
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.text(), "m" + std::to_string(i));
    EXPECT_EQ(m.sequence, static_cast<std::uint64_t>(i));
    EXPECT_EQ(m.producer_id, p.id());
    EXPECT_EQ(m.producer(), "p");
    EXPECT_FALSE(m.redelivered);
    EXPECT_GT(m.timestamp_ns, 0u);
    EXPECT_GT(m.position, last_position);
    last_position = m.position;
    EXPECT_EQ(c.ack(m), Status::Ok);
    EXPECT_EQ(c.ack(m), Status::NotInFlight);
  }
  Message m;
  EXPECT_EQ(c.try_receive(m), Status::Empty);
  EXPECT_EQ(p.last_sequence(), 10u);
}

TEST_F(RingTest, MessagesNameTheirSender) {
  auto q = make();
  auto alpha = Producer::attach(q, "alpha");
  auto beta = Producer::attach(q, "beta");
  auto c = Consumer::join(q, "g");
  ASSERT_EQ(alpha.try_send(bytes_of("a")), Status::Ok);
  ASSERT_EQ(beta.try_send(bytes_of("b")), Status::Ok);
  for (const char* sender : {"alpha", "beta"}) {
    Message m;
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.producer(), sender);
    EXPECT_EQ(m.producer(), q.producer_name(m.producer_id));
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(Message{}.producer(), "");  // a message not received names no one
}

TEST_F(RingTest, FullUntilEveryGroupReleases) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto a = Consumer::join(q, "a");
  auto b = Consumer::join(q, "b");
  const std::string payload(100, 'x');  // 192-byte records: 21 fit in 4096
  int sent = 0;
  while (p.try_send(bytes_of(payload)) == Status::Ok) ++sent;
  EXPECT_EQ(sent, 21);
  EXPECT_EQ(p.try_send(bytes_of(payload)), Status::Full);
  Message m;
  ASSERT_EQ(a.try_receive(m), Status::Ok);
  ASSERT_EQ(a.ack(m), Status::Ok);
  EXPECT_EQ(p.try_send(bytes_of(payload)), Status::Full) << "group b still holds the slot";
  ASSERT_EQ(b.try_receive(m), Status::Ok);
  EXPECT_EQ(p.try_send(bytes_of(payload)), Status::Full) << "in flight is not released";
  ASSERT_EQ(b.ack(m), Status::Ok);
  EXPECT_EQ(p.try_send(bytes_of(payload)), Status::Ok);
  EXPECT_EQ(p.send(bytes_of(payload), std::chrono::milliseconds(20)), Status::Timeout);
}

TEST_F(RingTest, NoGroupMeansRetainedNotDropped) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  int sent = 0;
  while (p.try_send(bytes_of("kept")) == Status::Ok) ++sent;
  EXPECT_EQ(sent, 64);
  auto c = Consumer::join(q, "late");
  for (int i = 1; i <= sent; ++i) {
    Message m;
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, static_cast<std::uint64_t>(i));
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
}

TEST_F(RingTest, WrapAroundWithPaddingAcrossManyLaps) {
  auto q = make(8192, 1000);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  std::uint64_t next_expected = 1;
  bool saw_padding = false;
  for (std::uint64_t seq = 1; seq <= 2000; ++seq) {
    const std::string payload(static_cast<std::size_t>((seq * 37) % 1001), static_cast<char>('a' + seq % 26));
    while (p.try_send(bytes_of(payload)) == Status::Full) {
      for (const auto& r : q.records()) saw_padding = saw_padding || r.kind == RecordKind::Padding;
      Message m;
      ASSERT_EQ(c.try_receive(m), Status::Ok);
      ASSERT_EQ(m.sequence, next_expected++);
      ASSERT_EQ(m.payload.size(), (m.sequence * 37) % 1001);
      for (std::byte b : m.payload) ASSERT_EQ(static_cast<char>(b), static_cast<char>('a' + m.sequence % 26));
      ASSERT_EQ(c.ack(m), Status::Ok);
    }
  }
  Message m;
  while (c.try_receive(m) == Status::Ok) {
    ASSERT_EQ(m.sequence, next_expected++);
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(next_expected, 2001u);
  EXPECT_TRUE(saw_padding);
  EXPECT_GT(q.info().tail_position, 100 * q.capacity());
}

TEST_F(RingTest, MaxSizeAndTooLarge) {
  auto q = make(8192, 1000);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  const std::string biggest(1000, 'z');
  EXPECT_EQ(p.try_send(bytes_of(biggest + "!")), Status::TooLarge);
  EXPECT_EQ(p.last_sequence(), 0u);
  ASSERT_EQ(p.try_send(bytes_of(biggest)), Status::Ok);
  ASSERT_EQ(p.try_send(bytes_of("")), Status::Ok);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), biggest);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_TRUE(m.payload.empty());
}

TEST_F(RingTest, ExplicitSequencesRefuseDuplicates) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  EXPECT_EQ(p.try_send(5, bytes_of("five")), Status::Ok);
  EXPECT_EQ(p.try_send(5, bytes_of("again")), Status::Duplicate);
  EXPECT_EQ(p.try_send(3, bytes_of("old")), Status::Duplicate);
  EXPECT_EQ(p.try_send(bytes_of("six")), Status::Ok);
  EXPECT_EQ(p.last_sequence(), 6u);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 5u);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 6u);
  EXPECT_EQ(c.try_receive(m), Status::Empty);
}

TEST_F(RingTest, GroupsFanOutMembersCompete) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto a1 = Consumer::join(q, "a");
  auto a2 = Consumer::join(q, "a");
  auto b = Consumer::join(q, "b");
  EXPECT_TRUE(a1.created_group());
  EXPECT_FALSE(a2.created_group());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  std::vector<std::uint64_t> seen_a;
  Message m;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(a1.try_receive(m), Status::Ok);
    seen_a.push_back(m.sequence);
    ASSERT_EQ(a2.try_receive(m), Status::Ok);
    seen_a.push_back(m.sequence);
  }
  EXPECT_EQ(a1.try_receive(m), Status::Empty);
  std::sort(seen_a.begin(), seen_a.end());
  for (std::uint64_t i = 0; i < 10; ++i) EXPECT_EQ(seen_a[i], i + 1);
  std::vector<Message> batch(16);
  EXPECT_EQ(b.try_receive_batch(batch), 10u);
}

TEST_F(RingTest, PrefetchBoundsInFlightAndAckUpTo) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  ConsumerOptions o;
  o.prefetch = 3;
  auto c = Consumer::join(q, "g", o);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  std::vector<Message> got(3);
  for (auto& m : got) ASSERT_EQ(c.try_receive(m), Status::Ok);
  Message m;
  EXPECT_EQ(c.try_receive(m), Status::InFlightLimit);
  EXPECT_EQ(c.in_flight(), 3u);
  EXPECT_EQ(c.ack_up_to(got[1].position), 2u);
  EXPECT_EQ(c.in_flight(), 1u);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 4u);
  const auto info = q.info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_EQ(info.groups[0].in_flight, 2u);
  EXPECT_EQ(info.groups[0].lag_messages, 5u - 2u);
  EXPECT_EQ(info.groups[0].acked, 2u);
}

TEST_F(RingTest, StartAtNewestAndDeleteGroupReleases) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto old = Consumer::join(q, "old");
  ASSERT_EQ(p.try_send(bytes_of("before")), Status::Ok);
  ConsumerOptions o;
  o.start = StartAt::Newest;
  {
    auto fresh = Consumer::join(q, "fresh", o);
    Message m;
    EXPECT_EQ(fresh.try_receive(m), Status::Empty);
    ASSERT_EQ(p.try_send(bytes_of("after")), Status::Ok);
    ASSERT_EQ(fresh.try_receive(m), Status::Ok);
    EXPECT_EQ(m.text(), "after");
    EXPECT_THROW(q.delete_group("fresh"), Error) << "a live member";
  }
  q.delete_group("fresh");
  EXPECT_THROW(q.delete_group("fresh"), Error);
  EXPECT_EQ(q.info().groups.size(), 1u);
}

TEST_F(RingTest, StartAtPositionAndTime) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto keep = Consumer::join(q, "keep");
  std::vector<std::uint64_t> positions;
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
    positions.push_back(p.last_position());
  }
  ConsumerOptions o;
  o.start = StartAt::Position;
  o.start_position = positions[3];
  auto c = Consumer::join(q, "from-pos", o);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 4u);
  o.start = StartAt::Time;
  o.start_time_ns = ~std::uint64_t{0};
  auto t = Consumer::join(q, "from-future", o);
  EXPECT_EQ(t.try_receive(m), Status::Empty);
}

TEST_F(RingTest, ClaimCommitAndAbort) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  ASSERT_EQ(p.try_claim(5), Status::Ok);
  auto area = p.claimed();
  ASSERT_EQ(area.size(), 5u);
  std::memcpy(area.data(), "hello", 5);
  Message m;
  EXPECT_EQ(c.try_receive(m), Status::Empty) << "not committed yet";
  p.commit();
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "hello");
  ASSERT_EQ(p.try_claim(3), Status::Ok);
  p.abort();
  EXPECT_EQ(p.last_sequence(), 1u);
  ASSERT_EQ(p.try_send(bytes_of("next")), Status::Ok);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "next");
  EXPECT_EQ(m.sequence, 2u);
}

TEST_F(RingTest, ReceiveTimesOut) {
  auto q = make();
  auto c = Consumer::join(q, "g");
  Message m;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.receive(m, std::chrono::milliseconds(30)), Status::Timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
}

TEST_F(RingTest, LeavingConsumerGivesBackWhatItHeld) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto keep = Consumer::join(q, "g");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  {
    auto leaver = Consumer::join(q, "g");
    Message m;
    ASSERT_EQ(leaver.try_receive(m), Status::Ok);
    ASSERT_EQ(leaver.ack(m), Status::Ok);
    ASSERT_EQ(leaver.try_receive(m), Status::Ok);
  }
  Message m;
  ASSERT_EQ(keep.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 2u);
  EXPECT_TRUE(m.redelivered);
  ASSERT_EQ(keep.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 3u);
  EXPECT_FALSE(m.redelivered);
  EXPECT_EQ(keep.try_receive(m), Status::Empty);
  EXPECT_EQ(q.info().redelivered, 1u);
}

}  // namespace
}  // namespace shmq::test
