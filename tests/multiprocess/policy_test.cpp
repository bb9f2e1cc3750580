// The delivery policy (issue 18): delivery counts, nack, reject, dead-letter
// queues with exactly-once moves, ack deadlines, TTL; with real processes
// and real kill -9.
#include <csignal>
#include <map>
#include <random>

#include "shm/layout.hpp"
#include "ring/dead_letter_trailer.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

class PolicyTest : public NamespaceTest {
 protected:
  static QueueOptions options(DeliveryPolicy policy = {}) {
    QueueOptions o;
    o.capacity = 1 << 16;
    o.max_message = 256;
    o.policy = std::move(policy);
    return o;
  }
  // The dead-letter queue: big enough for the origin's messages with their trailer.
  static Queue make_dead_letters(const char* name = "dlq") {
    QueueOptions o;
    o.capacity = 1 << 16;
    o.max_message = 1024;
    return Queue::create(name, o);
  }
  static DeliveryPolicy policy(std::uint32_t max_deliveries, std::string dead_letter = "dlq") {
    DeliveryPolicy p;
    p.max_deliveries = max_deliveries;
    p.dead_letter = std::move(dead_letter);
    return p;
  }
  // Every message of the dead-letter queue, by origin sequence (acked).
  static std::vector<DeadLetter> drain_dead_letters(const Queue& dlq, std::vector<std::string>* payloads = nullptr) {
    auto c = Consumer::join(dlq, "check");
    std::vector<DeadLetter> out;
    Message m;
    while (c.try_receive(m) == Status::Ok) {
      auto d = m.dead_letter();
      EXPECT_TRUE(d.has_value()) << "a dead-letter queue's message without its origin";
      if (d) {
        if (payloads) payloads->emplace_back(reinterpret_cast<const char*>(d->payload.data()), d->payload.size());
        d->payload = {};
        out.push_back(*d);
      }
      EXPECT_EQ(c.ack(m), Status::Ok);
    }
    return out;
  }
};

TEST_F(PolicyTest, AFirstDeliveryCountsOneAndANackComesAgainFirstCounted) {
  auto q = Queue::create("q", options());
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  for (const char* text : {"a", "b", "c"}) ASSERT_EQ(p.try_send(bytes_of(text)), Status::Ok);
  Message a, b;
  ASSERT_EQ(c.try_receive(a), Status::Ok);
  EXPECT_EQ(a.deliveries, 1u);
  EXPECT_FALSE(a.redelivered);
  ASSERT_EQ(c.try_receive(b), Status::Ok);
  EXPECT_EQ(c.nack(a), Status::Ok);
  EXPECT_EQ(c.nack(a), Status::NotInFlight);
  Message again;
  ASSERT_EQ(c.try_receive(again), Status::Ok);
  EXPECT_EQ(again.text(), "a") << "a nacked message comes before newer ones";
  EXPECT_TRUE(again.redelivered);
  EXPECT_EQ(again.deliveries, 2u);
  EXPECT_EQ(c.nack(again), Status::Ok);
  ASSERT_EQ(c.try_receive(again), Status::Ok);
  EXPECT_EQ(again.deliveries, 3u);
  EXPECT_EQ(c.ack(again), Status::Ok);
  EXPECT_EQ(c.ack(b), Status::Ok);
  ASSERT_EQ(c.try_receive(again), Status::Ok);
  EXPECT_EQ(again.text(), "c");
  EXPECT_EQ(again.deliveries, 1u);
  EXPECT_EQ(q.info().groups.at(0).nacked, 2u);
}

TEST_F(PolicyTest, CountsSurviveAConsumersDeath) {
  auto q = Queue::create("q", options());
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  for (int death = 0; death < 2; ++death) {
    Pipe holding;
    const pid_t child = spawn([&] {
      auto c = Consumer::join(Queue::open("q"), "g");
      Message m;
      if (c.receive(m, 5s) != Status::Ok) return 1;
      holding.signal();
      ::pause();
      return 0;
    });
    ASSERT_TRUE(holding.wait());
    ::kill(child, SIGKILL);
    wait_exit(child);
  }
  auto c = Consumer::join(q, "g");  // reaps the last dead member
  Message m;
  ASSERT_EQ(c.receive(m, 5s), Status::Ok);
  EXPECT_TRUE(m.redelivered);
  EXPECT_EQ(m.deliveries, 3u);
}

TEST_F(PolicyTest, RejectMovesToTheDeadLetterQueueWithItsOrigin) {
  auto dlq = make_dead_letters();
  auto q = Queue::create("q", options(policy(0)));
  auto p = Producer::attach(q, "orders-writer");
  ASSERT_EQ(p.try_send(41, bytes_of("bad order")), Status::Ok);
  ASSERT_EQ(p.try_send(42, bytes_of("good order")), Status::Ok);
  auto c = Consumer::join(q, "billing");
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(c.reject(m), Status::Ok);
  EXPECT_EQ(c.reject(m), Status::NotInFlight);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "good order");
  EXPECT_FALSE(m.dead_letter().has_value());
  EXPECT_EQ(c.ack(m), Status::Ok);
  std::vector<std::string> payloads;
  const auto dead = drain_dead_letters(dlq, &payloads);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(payloads[0], "bad order");
  EXPECT_EQ(dead[0].origin_queue, "q");
  EXPECT_EQ(dead[0].origin_group, "billing");
  EXPECT_EQ(dead[0].origin_producer, "orders-writer");
  EXPECT_EQ(dead[0].origin_sequence, 41u);
  EXPECT_EQ(dead[0].reason, DeadLetterReason::Rejected);
  EXPECT_EQ(dead[0].deliveries, 1u);
  const auto g = q.info().groups.at(0);
  EXPECT_EQ(g.dead_lettered, 1u);
  EXPECT_EQ(g.rejected, 1u);
  EXPECT_EQ(g.lag_messages, 0u);
}

TEST_F(PolicyTest, LongQueueAndGroupNamesStillHaveAMoverName) {
  auto dlq = make_dead_letters();
  const std::string queue(60, 'q'), group(60, 'g');
  auto q = Queue::create(queue, options(policy(0)));
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  auto c = Consumer::join(q, group);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  ASSERT_EQ(c.reject(m), Status::Ok);
  const auto dead = drain_dead_letters(dlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].origin_queue, queue);
  EXPECT_EQ(dead[0].origin_group, group);
  const auto movers = dlq.info().producers;
  ASSERT_EQ(movers.size(), 1u);
  EXPECT_EQ(movers[0].name.size(), 63u);
  EXPECT_EQ(movers[0].name.rfind("dl.qqq", 0), 0u);
}

TEST_F(PolicyTest, WithoutADeadLetterQueueRejectDropsCounted) {
  auto q = Queue::create("q", options(policy(2, "")));
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  auto c = Consumer::join(q, "g");
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(c.reject(m), Status::Ok);
  EXPECT_EQ(c.try_receive(m), Status::Empty);
  const auto g = q.info().groups.at(0);
  EXPECT_EQ(g.dropped, 1u);
  EXPECT_EQ(g.rejected, 1u);
  EXPECT_EQ(g.dead_lettered, 0u);
}

TEST_F(PolicyTest, NackedPastMaxDeliveriesItIsDeadLetteredAndTheGroupGoesOn) {
  auto dlq = make_dead_letters();
  auto q = Queue::create("q", options(policy(2)));
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("poison")), Status::Ok);
  ASSERT_EQ(p.try_send(bytes_of("next")), Status::Ok);
  auto c = Consumer::join(q, "g");
  Message m;
  for (std::uint32_t delivery = 1; delivery <= 2; ++delivery) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    ASSERT_EQ(m.text(), "poison");
    EXPECT_EQ(m.deliveries, delivery);
    ASSERT_EQ(c.nack(m), Status::Ok);
  }
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "next");
  EXPECT_EQ(c.ack(m), Status::Ok);
  const auto dead = drain_dead_letters(dlq);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].reason, DeadLetterReason::MaxDeliveries);
  EXPECT_EQ(dead[0].deliveries, 2u);
  EXPECT_EQ(q.info().groups.at(0).lag_messages, 0u);
}

// The poison message: three consumer processes each die (kill -9)
// holding it; with max-deliveries 3 it lands once in the dead-letter queue.
TEST_F(PolicyTest, APoisonMessageThatKillsEveryConsumerIsDeadLetteredOnce) {
  auto dlq = make_dead_letters();
  auto q = Queue::create("q", options(policy(3)));
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("poison")), Status::Ok);
  for (int i = 1; i <= 5; ++i) ASSERT_EQ(p.try_send(bytes_of("m" + std::to_string(i))), Status::Ok);
  for (int victim = 0; victim < 3; ++victim) {
    Pipe holding;
    const pid_t child = spawn([&] {
      auto c = Consumer::join(Queue::open("q"), "g");
      Message m;
      if (c.receive(m, 5s) != Status::Ok || m.text() != "poison") return 1;
      holding.signal();
      ::pause();  // "crashes" on it: the test kills it here
      return 0;
    });
    ASSERT_TRUE(holding.wait()) << "consumer " << victim << " did not get the poison message";
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_exit(child), 128 + SIGKILL);
  }
  auto c = Consumer::join(q, "g");
  std::vector<std::string> got;
  Message m;
  while (c.receive(m, 200ms) == Status::Ok) {
    got.emplace_back(m.text());
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"m1", "m2", "m3", "m4", "m5"}));
  std::vector<std::string> payloads;
  const auto dead = drain_dead_letters(dlq, &payloads);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(payloads[0], "poison");
  EXPECT_EQ(dead[0].reason, DeadLetterReason::MaxDeliveries);
  EXPECT_EQ(dead[0].deliveries, 3u);
}

TEST_F(PolicyTest, ExpiredMessagesAreDeadLetteredFreshOnesDelivered) {
  auto dlq = make_dead_letters();
  DeliveryPolicy pol = policy(0);
  pol.ttl = 200ms;
  auto q = Queue::create("q", options(pol));
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  for (int i = 1; i <= 3; ++i) ASSERT_EQ(p.try_send(bytes_of("old" + std::to_string(i))), Status::Ok);
  std::this_thread::sleep_for(400ms);  // the group is stopped past the TTL
  for (int i = 1; i <= 2; ++i) ASSERT_EQ(p.try_send(bytes_of("new" + std::to_string(i))), Status::Ok);
  std::vector<std::string> got;
  Message m;
  while (c.try_receive(m) == Status::Ok) {
    got.emplace_back(m.text());
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"new1", "new2"}));
  std::vector<std::string> payloads;
  const auto dead = drain_dead_letters(dlq, &payloads);
  EXPECT_EQ(payloads, (std::vector<std::string>{"old1", "old2", "old3"}));
  for (const auto& d : dead) EXPECT_EQ(d.reason, DeadLetterReason::Expired);
  EXPECT_EQ(q.info().groups.at(0).expired, 3u);
}

// The stuck consumer: SIGSTOP while holding 10 messages; the other
// member takes them over past the ack timeout (no shmqd: it does that
// itself); after SIGCONT the stopped one's acks are refused.
TEST_F(PolicyTest, AStoppedConsumersMessagesGoToAnotherMemberAndItsLateAcksAreRefused) {
  DeliveryPolicy pol;
  pol.ack_timeout = 300ms;
  auto q = Queue::create("q", options(pol));
  auto p = Producer::attach(q, "p");
  for (int i = 1; i <= 10; ++i) ASSERT_EQ(p.try_send(bytes_of("m" + std::to_string(i))), Status::Ok);
  Pipe holding;
  const pid_t stuck = spawn([&] {
    auto c = Consumer::join(Queue::open("q"), "g");
    std::vector<Message> held(10);
    for (auto& m : held) {
      if (c.receive(m, 5s) != Status::Ok) return 1;
    }
    holding.signal();
    ::raise(SIGSTOP);  // stuck; the test continues it
    int refused = 0;
    for (auto& m : held) refused += c.ack(m) == Status::LeaseExpired ? 1 : 0;
    return refused;
  });
  ASSERT_TRUE(holding.wait());
  auto other = Consumer::join(q, "g");
  std::vector<std::string> got;
  Message m;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (got.size() < 10 && std::chrono::steady_clock::now() < deadline) {
    if (other.receive(m, 100ms) != Status::Ok) continue;
    EXPECT_TRUE(m.redelivered);
    EXPECT_EQ(m.deliveries, 2u);
    got.emplace_back(m.text());
    EXPECT_EQ(other.ack(m), Status::Ok);
  }
  EXPECT_EQ(got.size(), 10u);
  ::kill(stuck, SIGCONT);
  EXPECT_EQ(wait_exit(stuck), 10) << "every late ack refused";
  const auto g = q.info().groups.at(0);
  EXPECT_EQ(g.lease_expired, 10u);
  EXPECT_EQ(g.acked, 10u) << "every message acked once, by the member that held it last";
  EXPECT_EQ(g.lag_messages, 0u);
}

// A dead-letter queue that is full holds the moves back (the records stay
// in the origin's ring) without taking the consumer's prefetch: once it has
// room, the waiting moves go on, exactly once each.
TEST_F(PolicyTest, AFullDeadLetterQueueHoldsMovesBackWithoutBlockingTheConsumer) {
  QueueOptions small;
  small.capacity = 8192;
  small.max_message = 1024 + kDeadLetterOverhead;
  auto dlq = Queue::create("dlq", small);
  auto slow_reader = Consumer::join(dlq, "slow");  // keeps what it gets until it reads
  QueueOptions o = options(policy(0));
  o.max_message = 1024;
  o.policy.ttl = 1ms;
  auto q = Queue::create("q", o);
  ConsumerOptions one;
  one.prefetch = 1;
  auto c = Consumer::join(q, "g", one);
  auto p = Producer::attach(q, "p");
  const std::string payload(900, 'x');
  for (int i = 0; i < 20; ++i) ASSERT_EQ(p.try_send(bytes_of(payload)), Status::Ok);
  std::this_thread::sleep_for(50ms);  // all of them past their TTL
  Message m;
  EXPECT_EQ(c.receive(m, 100ms), Status::Timeout) << "nothing to deliver; the prefetch is not taken by the moves";
  int moved = 0;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (moved < 20 && std::chrono::steady_clock::now() < deadline) {
    Message dead;
    if (slow_reader.receive(dead, 20ms) == Status::Ok) {
      ++moved;
      EXPECT_EQ(slow_reader.ack(dead), Status::Ok);
    }
    (void)c.try_receive(m);  // its receives retry the waiting moves
  }
  EXPECT_EQ(moved, 20);
  EXPECT_EQ(q.info().groups.at(0).expired, 20u);
  EXPECT_EQ(q.info().groups.at(0).lag_messages, 0u);
}

// A live member that keeps receiving gives back exactly what it held past
// the ack timeout, not the younger messages it holds beside it.
TEST_F(PolicyTest, ALiveMemberGivesBackOnlyWhatItHeldPastTheAckTimeout) {
  DeliveryPolicy pol;
  pol.ack_timeout = 1s;
  auto q = Queue::create("q", options(pol));
  auto p = Producer::attach(q, "p");
  auto slow = Consumer::join(q, "g");
  auto other = Consumer::join(q, "g");
  ASSERT_EQ(p.try_send(bytes_of("old")), Status::Ok);
  Message old_one, young;
  ASSERT_EQ(slow.try_receive(old_one), Status::Ok);
  std::this_thread::sleep_for(700ms);
  ASSERT_EQ(p.try_send(bytes_of("young")), Status::Ok);
  ASSERT_EQ(slow.try_receive(young), Status::Ok);
  std::this_thread::sleep_for(500ms);  // "old" is past its deadline (1.2 s), "young" is not (0.5 s)
  Message m;
  EXPECT_EQ(slow.try_receive(m), Status::Ok) << "it gives back its own expired one, and takes it again";
  EXPECT_EQ(m.text(), "old");
  EXPECT_TRUE(m.redelivered);
  EXPECT_EQ(m.deliveries, 2u);
  EXPECT_EQ(slow.ack(young), Status::Ok) << "the younger message was never taken back";
  EXPECT_EQ(slow.ack(m), Status::Ok);
  EXPECT_EQ(other.try_receive(m), Status::Empty);
  const auto g = q.info().groups.at(0);
  EXPECT_EQ(g.lease_expired, 1u);
  EXPECT_EQ(g.lag_messages, 0u);
}

// Crashes in the middle of dead-letter moves: a mover killed at random
// points, again and again; every message ends in the dead-letter queue once.
TEST_F(PolicyTest, AMoverKilledAtRandomPointsLeavesExactlyOneCopy) {
  auto dlq = make_dead_letters();
  auto q = Queue::create("q", options(policy(0)));
  auto p = Producer::attach(q, "p");
  constexpr int kMessages = 200;
  for (int i = 1; i <= kMessages; ++i) ASSERT_EQ(p.try_send(bytes_of("m" + std::to_string(i))), Status::Ok);
  std::mt19937 random(::getpid());
  int killed_busy = 0;
  for (int round = 0; round < 60 && (q.info().groups.empty() || q.info().groups[0].lag_messages != 0); ++round) {
    const pid_t mover = spawn([] {
      auto c = Consumer::join(Queue::open("q"), "g");
      Message m;
      while (c.receive(m, 50ms) == Status::Ok) {
        if (c.reject(m) != Status::Ok) return 1;
        // Paced, so that no mover gets through them all before its kill
        // (a fast host moved all 200 in three rounds).
        std::this_thread::sleep_for(50us);
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(500 + random() % 2000));
    ::kill(mover, SIGKILL);
    killed_busy += wait_exit(mover) == 128 + SIGKILL ? 1 : 0;
  }
  std::printf("movers killed at work: %d\n", killed_busy);
  EXPECT_GT(killed_busy, 3) << "the movers should mostly die at work";
  {
    auto c = Consumer::join(q, "g");  // the rest, and whatever the last victims held
    Message m;
    while (c.receive(m, 1s) == Status::Ok) ASSERT_EQ(c.reject(m), Status::Ok);  // 1 s: a slow (TSan) host
  }
  std::vector<std::string> payloads;
  (void)drain_dead_letters(dlq, &payloads);
  std::map<std::string, int> copies;
  for (const auto& text : payloads) ++copies[text];
  EXPECT_EQ(copies.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [text, n] : copies) EXPECT_EQ(n, 1) << text << " is in the dead-letter queue " << n << " times";
  EXPECT_EQ(q.info().groups.at(0).lag_messages, 0u);
}

// A mover that dies at the two points that matter, made exact: after it
// announced a move and sent it (before it marked and acked the record), and
// after it announced one but before it sent it. The child does by hand what
// a move does up to there (ring/dead_letter.cpp), then exits holding it.
TEST_F(PolicyTest, AMoverThatDiedAfterSendingIsNeverSentTwiceNorDelivered) {
  auto dlq = make_dead_letters();
  auto q = Queue::create("q", options(policy(0)));
  auto p = Producer::attach(q, "p");
  for (const char* text : {"sent", "unsent", "rejected", "plain"}) ASSERT_EQ(p.try_send(bytes_of(text)), Status::Ok);
  const auto die_mid_move = [&](bool send) {
    const pid_t child = spawn([&] {
      auto queue = Queue::open("q");
      auto c = Consumer::join(queue, "g");
      Message m;
      if (c.try_receive(m) != Status::Ok) return 1;
      auto mover = Producer::attach(Queue::open("dlq"), "dl.q.g");
      auto& g = detail::mapping_of(queue)->groups[0];
      const std::uint64_t sequence = mover.last_sequence() + 1;
      g.dead_letter_sequence.store(sequence);
      g.dead_letter_position.store(m.position);
      if (send) {
        DeadLetter origin;
        origin.origin_queue = "q";
        const auto payload = detail::with_dead_letter_trailer(m.payload, origin);
        if (mover.try_send(sequence, payload) != Status::Ok) return 2;
      }
      ::_exit(0);  // dies holding it, its move half-done
    });
    EXPECT_EQ(wait_exit(child), 0);
  };
  die_mid_move(true);
  die_mid_move(false);  // takes "unsent": the announcement of "sent" was never settled... until this one announced
  auto c = Consumer::join(q, "g");  // reaps both
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "unsent") << "announced but never sent: delivered again";
  EXPECT_TRUE(m.redelivered);
  EXPECT_EQ(c.ack(m), Status::Ok);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "rejected");
  EXPECT_EQ(c.reject(m), Status::Ok);
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "plain") << "'sent' is in the dead-letter queue: acked, never delivered";
  EXPECT_EQ(c.ack(m), Status::Ok);
  EXPECT_EQ(c.try_receive(m), Status::Empty);
  std::vector<std::string> payloads;
  (void)drain_dead_letters(dlq, &payloads);
  EXPECT_EQ(payloads, (std::vector<std::string>{"sent", "rejected"}));
  EXPECT_EQ(q.info().groups.at(0).lag_messages, 0u);
}

TEST_F(PolicyTest, BadPoliciesAreRefusedAndCreateNothing) {
  const auto code = [&](DeliveryPolicy pol) {
    return code_of([&] { (void)Queue::create("q", options(std::move(pol))); });
  };
  DeliveryPolicy too_many;
  too_many.max_deliveries = kMaxDeliveriesLimit + 1;
  EXPECT_EQ(code(too_many), Errc::InvalidArgument);
  DeliveryPolicy negative;
  negative.ttl = -1s;
  EXPECT_EQ(code(negative), Errc::InvalidArgument);
  EXPECT_EQ(code(policy(3, "missing")), Errc::NotFound);
  EXPECT_EQ(code(policy(3, "q")), Errc::InvalidArgument) << "its own dead-letter queue";
  QueueOptions small = options();
  small.max_message = 64;
  (void)Queue::create("tiny", small);
  EXPECT_EQ(code(policy(3, "tiny")), Errc::InvalidArgument) << "cannot hold a message with its origin";
  EXPECT_EQ(Queue::list(), (std::vector<std::string>{"tiny"}));
}

TEST_F(PolicyTest, ALoopOfDeadLetterQueuesIsRefused) {
  QueueOptions o = options();
  o.max_message = 2048;
  (void)Queue::create("c", o);
  o.max_message = 1024;
  o.policy = policy(3, "c");
  (void)Queue::create("b", o);
  // c cannot be recreated to point at a queue whose dead letters lead back to it.
  ASSERT_TRUE(Queue::remove("c"));
  o.max_message = 512;
  o.policy = policy(3, "b");
  EXPECT_EQ(code_of([&] { (void)Queue::create("c", o); }), Errc::InvalidArgument);
  EXPECT_FALSE(Queue::remove("c")) << "nothing created";
}

TEST_F(PolicyTest, ThePolicyIsThereForEveryoneWhoOpensTheQueue) {
  (void)make_dead_letters();
  DeliveryPolicy pol = policy(5);
  pol.ack_timeout = 2s;
  pol.ttl = 3min;
  (void)Queue::create("q", options(pol));
  const auto seen = Queue::open("q").options().policy;
  EXPECT_EQ(seen.max_deliveries, 5u);
  EXPECT_EQ(seen.dead_letter, "dlq");
  EXPECT_EQ(seen.ack_timeout, 2s);
  EXPECT_EQ(seen.ttl, 3min);
  EXPECT_EQ(Queue::open("q").info().policy.max_deliveries, 5u);
  ConsumerOptions exclusive;
  exclusive.exclusive = true;
  EXPECT_EQ(code_of([&] { (void)Consumer::join(Queue::open("q"), "x", exclusive); }), Errc::InvalidArgument);
}

}  // namespace
}  // namespace shmq::test
