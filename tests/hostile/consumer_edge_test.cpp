// Edge cases of the consumer API found while writing the hostile tests.
#include "test_support.hpp"

namespace shmq::test {
namespace {

class ConsumerEdgeTest : public NamespaceTest {};

// "Acks every message this consumer holds at a position <= position": the
// largest position must ack everything held. (ack_up_to compares with the
// wrap-around at_or_after(), for which UINT64_MAX is *before* every position.)
TEST_F(ConsumerEdgeTest, AckUpToTheLargestPositionAcksEverythingHeld) {
  auto q = Queue::create("q");
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.try_send(as_bytes("m")), Status::Ok);
  Message m;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.try_receive(m), Status::Ok);
  ASSERT_EQ(c.in_flight(), 3u);
  EXPECT_EQ(c.ack_up_to(~std::uint64_t{0}), 3u);
  EXPECT_EQ(c.in_flight(), 0u);
}

}  // namespace
}  // namespace shmq::test
