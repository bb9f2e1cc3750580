// Exclusive groups: one active member reads, in order, without a CAS per
// record; standbys take over when it leaves or dies, and what it held (every
// record of [released, read) it had not acked) comes again, flagged, first.
#include <csignal>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

class ExclusiveTest : public NamespaceTest {
 protected:
  static constexpr const char* kQueue = "excl";
  Queue make(std::uint64_t capacity = 1 << 16) {
    QueueOptions o;
    o.capacity = capacity;
    o.max_message = 256;
    return Queue::create(kQueue, o);
  }
  static ConsumerOptions exclusive() {
    ConsumerOptions o;
    o.exclusive = true;
    return o;
  }
  static void send(Producer& p, int from, int to) {
    for (int i = from; i <= to; ++i) ASSERT_EQ(p.try_send(bytes_of("m" + std::to_string(i))), Status::Ok);
  }
  // Receives `n` messages; their sequences and redelivered flags.
  static std::vector<std::pair<std::uint64_t, bool>> take(Consumer& c, int n, bool ack = true) {
    std::vector<std::pair<std::uint64_t, bool>> got;
    Message m;
    for (int i = 0; i < n; ++i) {
      const Status s = c.receive(m, 5s);
      EXPECT_EQ(s, Status::Ok) << "message " << i;
      if (s != Status::Ok) break;
      got.emplace_back(m.sequence, m.redelivered);
      if (ack) {
        EXPECT_EQ(c.ack(m), Status::Ok);
      }
    }
    return got;
  }
  static std::vector<std::pair<std::uint64_t, bool>> seqs(std::initializer_list<std::uint64_t> s, bool flagged) {
    std::vector<std::pair<std::uint64_t, bool>> out;
    for (auto v : s) out.emplace_back(v, flagged);
    return out;
  }
};

TEST_F(ExclusiveTest, OneMemberReadsTheOthersStandBy) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto first = Consumer::join(q, "g", exclusive());
  auto second = Consumer::join(q, "g", exclusive());
  EXPECT_TRUE(first.active());
  EXPECT_FALSE(second.active());
  send(p, 1, 3);
  Message m;
  EXPECT_EQ(second.try_receive(m), Status::Empty) << "a standby reads nothing";
  EXPECT_EQ(second.receive(m, 20ms), Status::Timeout);
  EXPECT_EQ(take(first, 3), seqs({1, 2, 3}, false));
  const auto info = q.info();
  ASSERT_EQ(info.groups.size(), 1u);
  EXPECT_TRUE(info.groups[0].exclusive);
  ASSERT_EQ(info.groups[0].consumers.size(), 2u);
  EXPECT_TRUE(info.groups[0].consumers[0].active);
  EXPECT_FALSE(info.groups[0].consumers[1].active);
}

TEST_F(ExclusiveTest, AGroupsModeIsItsCreatorsAndJoinsMustAskForIt) {
  auto q = make();
  auto competing = Consumer::join(q, "c");
  auto excl = Consumer::join(q, "x", exclusive());
  EXPECT_THROW(Consumer::join(q, "c", exclusive()), Error);
  EXPECT_THROW(Consumer::join(q, "x"), Error);
  try {
    Consumer::join(q, "x");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("exclusive"), std::string::npos) << e.what();
  }
}

// The active member leaves holding 2 and 4 of 1..5 (it acked 1, 3, 5 out of
// order): the standby takes over, gets 2 and 4 flagged first, then 6.
TEST_F(ExclusiveTest, AStandbyTakesOverWhatALeavingMemberHeldFlaggedAndFirst) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto first = std::make_unique<Consumer>(Consumer::join(q, "g", exclusive()));
  auto second = Consumer::join(q, "g", exclusive());
  EXPECT_TRUE(first->active()) << "the first to join is the active one";
  EXPECT_FALSE(second.active());
  send(p, 1, 6);
  std::vector<Message> held(5);
  ASSERT_EQ(first->try_receive_batch(held), 5u) << "one batch, one cursor update";
  for (int i = 0; i < 5; ++i) EXPECT_EQ(held[i].sequence, static_cast<std::uint64_t>(i + 1));
  for (int i : {0, 2, 4}) ASSERT_EQ(first->ack(held[i]), Status::Ok);
  first.reset();  // leaves holding 2 and 4
  EXPECT_EQ(take(second, 3), (std::vector<std::pair<std::uint64_t, bool>>{{2, true}, {4, true}, {6, false}}));
  EXPECT_TRUE(second.active());
  Message m;
  EXPECT_EQ(second.try_receive(m), Status::Empty);
}

// kill -9 of the active member while it holds messages: a standby (no
// shmqd) finds it dead, repairs and reads on; nothing lost, the held ones flagged.
TEST_F(ExclusiveTest, AStandbyTakesOverFromAKilledActiveMember) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  send(p, 1, 10);
  Pipe holding;
  const pid_t child = spawn([&] {
    auto queue = Queue::open(kQueue);
    auto c = Consumer::join(queue, "g", exclusive());
    if (!c.active()) return 1;
    std::vector<Message> batch(4);
    if (c.try_receive_batch(batch) != 4) return 2;
    if (c.ack(batch[1]) != Status::Ok) return 3;  // holds 1, 3, 4
    holding.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  auto standby = Consumer::join(q, "g", exclusive());
  EXPECT_FALSE(standby.active());
  Message m;
  EXPECT_EQ(standby.try_receive(m), Status::Empty) << "the active member lives";
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), 128 + SIGKILL);
  EXPECT_EQ(take(standby, 9), (std::vector<std::pair<std::uint64_t, bool>>{
                                  {1, true}, {3, true}, {4, true}, {5, false}, {6, false}, {7, false}, {8, false},
                                  {9, false}, {10, false}}));
  EXPECT_EQ(standby.try_receive(m), Status::Empty);
  EXPECT_EQ(q.info().groups[0].redelivered, 3u);
}

// A stopped active member keeps what it holds (and its place): the standby
// waits; once it dies, the standby goes on.
TEST_F(ExclusiveTest, AStoppedActiveMemberKeepsItsPlace) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  send(p, 1, 3);
  Pipe holding;
  const pid_t child = spawn_consumer_stopped_holding(kQueue, "g", exclusive(), 1, holding);
  ASSERT_TRUE(holding.wait());
  auto standby = Consumer::join(q, "g", exclusive());
  Message m;
  EXPECT_EQ(standby.receive(m, 100ms), Status::Timeout) << "a stopped process keeps what it holds";
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), 128 + SIGKILL);
  EXPECT_EQ(take(standby, 3), (std::vector<std::pair<std::uint64_t, bool>>{{1, true}, {2, false}, {3, false}}));
}

// Padding at the ring's end, lap after lap, in batches: every message once, in order.
TEST_F(ExclusiveTest, BatchesAcrossManyLapsKeepOrder) {
  auto q = make(4096);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g", exclusive());
  std::uint64_t next = 1, sent = 0;
  std::vector<Message> batch(7);
  for (int round = 0; round < 500; ++round) {
    for (int i = 0; i < 5; ++i) {
      const std::string payload(static_cast<std::size_t>((round * 5 + i) % 200), 'x');
      if (p.try_send(bytes_of(payload)) == Status::Ok) ++sent;
    }
    const std::size_t n = c.try_receive_batch(batch);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(batch[i].sequence, next++);
    if (n != 0) c.ack_up_to(batch[n - 1].position);
  }
  for (std::size_t n; (n = c.try_receive_batch(batch)) != 0;) {
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(batch[i].sequence, next++);
    c.ack_up_to(batch[n - 1].position);
  }
  EXPECT_EQ(next - 1, sent);
  EXPECT_GT(sent, 1000u);
}

}  // namespace
}  // namespace shmq::test
