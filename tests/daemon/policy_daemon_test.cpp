// shmqd's side of the delivery policy (issue 18, docs/journal.md "Delivery
// counts" and docs/recovery.md "Ack deadlines"): a durable queue's policy
// and its delivery counts survive a power loss (the queue rebuilt from its
// journal), and shmqd takes back what a stopped member holds past the
// queue's ack timeout.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>

#include "daemon_support.hpp"
#include "journal/bytes.hpp"
#include "journaling/store.hpp"
#include "journaling/writer.hpp"
#include "shmq/journal.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

constexpr std::uint32_t kMaxMessage = 256;

class PolicyDaemonTest : public DaemonTest {
 protected:
  fs::path journal() const { return journal_dir(dir_, "dq"); }

  // Whether a segment of the journal holds `bytes` (a checkpoint's section).
  bool journal_holds(const std::vector<std::byte>& bytes) const {
    const std::string wanted(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(journal(), ec)) {
      if (entry.path().extension() == ".journal" && slurp(entry.path().string()).find(wanted) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  // The power loss: shmqd and every client die at once, and shared memory is gone.
  static void power_loss(Daemon& d, std::initializer_list<pid_t> clients, std::initializer_list<const char*> queues) {
    d.kill9();  // first: shmqd must not repair after the clients
    for (const pid_t pid : clients) {
      ::kill(pid, SIGCONT);  // a stopped one too
      ::kill(pid, SIGKILL);
      wait_exit(pid);
    }
    for (const char* name : queues) (void)Queue::remove(name);
  }

  Daemon rebuilt_by_a_new_daemon(std::size_t queues) {
    Daemon d = start_daemon();
    EXPECT_TRUE(eventually([&] { return Queue::list().size() == queues; }, 10s)) << "shmqd did not rebuild the queue";
    return d;
  }

  static QueueOptions durable_with(const DeliveryPolicy& policy) {
    QueueOptions o;
    o.capacity = 64 << 10;
    o.max_message = kMaxMessage;
    o.durable = true;
    o.policy = policy;
    return o;
  }
};

std::uint32_t group_index(const detail::Mapping& m, const std::string& name) {
  for (std::uint32_t g = 0; g < m.max_groups; ++g) {
    if (m.groups[g].state.load() == static_cast<std::uint32_t>(layout::SlotState::Attached) &&
        name == std::string(m.groups[g].name, ::strnlen(m.groups[g].name, layout::kNameBytes))) {
      return g;
    }
  }
  throw std::runtime_error("no group " + name);
}

TEST(QueueJson, KeepsThePolicyAndReadsOldFilesAsNone) {
  const fs::path dir = fs::temp_directory_path() / ("shmq-policy-json-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  QueueOptions o;
  o.policy = {.max_deliveries = 7, .dead_letter = "dead", .ack_timeout = 1500ms, .ttl = 2min};
  daemon::write_queue_options(dir, o, 42);
  const auto back = daemon::read_queue_options(dir);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->policy.max_deliveries, 7u);
  EXPECT_EQ(back->policy.dead_letter, "dead");
  EXPECT_EQ(back->policy.ack_timeout, 1500ms);
  EXPECT_EQ(back->policy.ttl, 2min);
  // A file an earlier shmqd wrote: no policy keys, no policy.
  {
    std::ofstream old(dir / "queue.json", std::ios::trunc);
    old << R"({"capacity": 65536, "max_message": 256, "max_producers": 64, "max_groups": 16,)"
        << R"( "max_consumers": 16, "mode": 384, "journal_id": 42})" << "\n";
  }
  const auto old = daemon::read_queue_options(dir);
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->policy.any());
  // And a queue without a policy writes none of the keys.
  daemon::write_queue_options(dir, QueueOptions{}, 42);
  std::ifstream in(dir / "queue.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("dead"), std::string::npos) << text;
  EXPECT_EQ(text.find("max_deliveries"), std::string::npos) << text;
  fs::remove_all(dir);
}

// The dead-letter queue is not durable: gone with the power, it is not there
// when the rebuild runs, which must not refuse the policy that names it.
TEST_F(PolicyDaemonTest, APolicyComesBackWithTheQueueAfterAPowerLoss) {
  QueueOptions dead;
  dead.capacity = 64 << 10;
  dead.max_message = 1024;
  (void)Queue::create("dlq", dead);
  const DeliveryPolicy policy{.max_deliveries = 5, .dead_letter = "dlq", .ack_timeout = 300ms, .ttl = 10s};
  (void)Queue::create("dq", durable_with(policy));
  Daemon d = start_daemon();
  {
    Queue q = Queue::open("dq");
    ASSERT_TRUE(d.serves(q));
    auto p = Producer::attach(q, "p");
    ASSERT_EQ(p.send(bytes_of(payload_for(1)), 5s), Status::Ok);
    ASSERT_EQ(p.wait_durable(10s), Status::Ok);  // journaling began: queue.json is written
  }
  EXPECT_NE(slurp((journal() / "queue.json").string()).find("\"dead_letter\": \"dlq\""), std::string::npos);
  power_loss(d, {}, {"dq", "dlq"});

  Daemon again = rebuilt_by_a_new_daemon(1);
  Queue q = Queue::open("dq");
  const DeliveryPolicy back = q.options().policy;
  EXPECT_EQ(back.max_deliveries, policy.max_deliveries);
  EXPECT_EQ(back.dead_letter, policy.dead_letter);
  EXPECT_EQ(back.ack_timeout, policy.ack_timeout);
  EXPECT_EQ(back.ttl, policy.ttl);
  EXPECT_EQ(q.info().policy.dead_letter, "dlq");
  auto c = Consumer::join(q, "g");  // a new group starts at the oldest record
  Message m;
  ASSERT_EQ(c.receive(m, 5s), Status::Ok);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()), payload_for(1));
  EXPECT_EQ(c.ack(m), Status::Ok);
  again.terminate();
}

// The dead-letter queue may itself be durable: a rejected message is acked
// in its origin only once the dead-letter queue's journal has it, so a power
// loss right after the reject leaves it in the rebuilt dead-letter queue,
// once, and not in the origin group.
TEST_F(PolicyDaemonTest, ADurableDeadLetterQueueKeepsWhatWasRejectedAcrossAPowerLoss) {
  QueueOptions dead = durable_with({});
  dead.max_message = kMaxMessage + kDeadLetterOverhead;
  (void)Queue::create("dlq", dead);
  (void)Queue::create("dq", durable_with({.max_deliveries = 3, .dead_letter = "dlq"}));
  Daemon d = start_daemon();
  {
    Queue q = Queue::open("dq");
    ASSERT_TRUE(d.serves(q));
    ASSERT_TRUE(d.serves(Queue::open("dlq")));
    auto p = Producer::attach(q, "p");
    for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), Confirm::Durable, 10s), Status::Ok);
    auto c = Consumer::join(q, "g");
    Message m;
    ASSERT_EQ(c.receive(m, 5s), Status::Ok);
    ASSERT_EQ(c.reject(m), Status::Ok);
    ASSERT_EQ(c.receive(m, 5s), Status::Ok);
    ASSERT_EQ(c.ack(m), Status::Ok);
    std::this_thread::sleep_for(300ms);  // the origin's acks reach its journal with a checkpoint (100 ms)
  }
  power_loss(d, {}, {"dq", "dlq"});
  Daemon again = rebuilt_by_a_new_daemon(2);
  {
    auto c = Consumer::join(Queue::open("dlq"), "check");
    Message m;
    ASSERT_EQ(c.receive(m, 5s), Status::Ok);
    const auto origin = m.dead_letter();
    ASSERT_TRUE(origin.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(origin->payload.data()), origin->payload.size()), payload_for(1));
    EXPECT_EQ(origin->origin_sequence, 1u);
    EXPECT_EQ(origin->reason, DeadLetterReason::Rejected);
    EXPECT_EQ(c.ack(m), Status::Ok);
    EXPECT_EQ(c.receive(m, 200ms), Status::Timeout) << "one copy only";
  }
  // Acks a checkpoint had not written yet come again, flagged (as any
  // consumer's): whatever comes before the third message is one of those.
  auto c = Consumer::join(Queue::open("dq"), "g");
  Message m;
  do {
    ASSERT_EQ(c.receive(m, 5s), Status::Ok);
    if (m.sequence != 3) {
      EXPECT_TRUE(m.redelivered) << m.sequence;
    }
    ASSERT_EQ(c.ack(m), Status::Ok);
  } while (m.sequence != 3);
  again.terminate();
}

// Dead-letter moves under shmqd: movers (each past max-deliveries, as a
// poison message's consumers are) are killed at random while shmqd itself
// is killed and restarted; shmqd repairs the dead movers, the survivors
// settle their half-done moves, and each message reaches the dead-letter
// queue exactly once.
TEST_F(PolicyDaemonTest, MovesStayExactlyOnceWhileMoversAndShmqdAreKilled) {
  QueueOptions dead;
  dead.capacity = 1 << 18;
  dead.max_message = kMaxMessage + kDeadLetterOverhead;
  const Queue dlq = Queue::create("dlq", dead);
  QueueOptions o;
  o.capacity = 1 << 18;
  o.max_message = kMaxMessage;
  o.policy = {.max_deliveries = 1, .dead_letter = "dlq"};
  const Queue q = Queue::create("q", o);
  constexpr int kMessages = 300;
  {
    auto p = Producer::attach(q, "p");
    for (int i = 1; i <= kMessages; ++i) ASSERT_EQ(p.try_send(bytes_of(payload_for(i))), Status::Ok);
  }
  std::mt19937 random(::getpid());
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  const auto unsettled = [&] { return q.info().groups.empty() || q.info().groups[0].lag_messages != 0; };
  for (int round = 0; round < 80 && unsettled(); ++round) {
    // Each message is delivered once and then nacked: its second take moves it.
    const pid_t mover = spawn([] {
      auto c = Consumer::join(Queue::open("q"), "g");
      Message m;
      while (c.receive(m, 50ms) == Status::Ok) {
        if (c.nack(m) != Status::Ok) return 1;
      }
      return 0;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(300 + random() % 2000));
    ::kill(mover, SIGKILL);
    wait_exit(mover);
    if (round % 7 == 3) {  // shmqd too, perhaps in the middle of its repair
      d.kill9();
      d = start_daemon();
      ASSERT_TRUE(d.serves(q));
    }
  }
  {
    auto c = Consumer::join(q, "g");
    Message m;
    while (c.receive(m, 200ms) == Status::Ok) ASSERT_EQ(c.nack(m), Status::Ok);
  }
  EXPECT_FALSE(unsettled());
  std::map<std::string, int> copies;
  auto check = Consumer::join(dlq, "check");
  Message m;
  while (check.try_receive(m) == Status::Ok) {
    const auto origin = m.dead_letter();
    ASSERT_TRUE(origin.has_value());
    ++copies[std::string(reinterpret_cast<const char*>(origin->payload.data()), origin->payload.size())];
    EXPECT_EQ(origin->reason, DeadLetterReason::MaxDeliveries);
    ASSERT_EQ(check.ack(m), Status::Ok);
  }
  EXPECT_EQ(copies.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [text, n] : copies) EXPECT_EQ(n, 1) << text << " is in the dead-letter queue " << n << " times";
}

// A message delivered three times before the power loss (nacked twice: its
// delivery word says 2, and a member holds it a third time) is delivered a
// fourth time after the rebuild, never as a first; those nobody had received
// come at most one delivery too high.
TEST_F(PolicyDaemonTest, DeliveryCountsNeverComeBackLowerAfterAPowerLoss) {
  DeliveryPolicy policy;
  policy.max_deliveries = 50;
  (void)Queue::create("dq", durable_with(policy));
  Daemon d = start_daemon();
  {
    Queue q = Queue::open("dq");
    ASSERT_TRUE(d.serves(q));
    (void)Consumer::join(q, "g");
    auto p = Producer::attach(q, "p");
    for (std::uint64_t i = 1; i <= 3; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), 5s), Status::Ok);
    ASSERT_EQ(p.wait_durable(10s), Status::Ok);
  }
  Pipe holding;
  const pid_t member = spawn([&] {
    auto c = Consumer::join(Queue::open("dq"), "g");
    // Delivered, nacked, delivered, nacked, delivered: its group's delivery
    // word says 2 (deliveries so far when it last came back), and this
    // member holds it a third time.
    Message m;
    for (std::uint32_t delivery = 1; delivery <= 3; ++delivery) {
      if (c.receive(m, 5s) != Status::Ok || m.sequence != 1 || m.deliveries != delivery) return 1;
      if (delivery < 3 && c.nack(m) != Status::Ok) return 2;
    }
    holding.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  const std::uint64_t first = layout::kFirstPosition;  // message 1's position
  // The checkpoint's counts section: one group, none unlisted, one pair (position, 2).
  std::vector<std::byte> section;
  journal::format::append_le(section, std::uint32_t{1});
  journal::format::append_le(section, std::uint8_t{0});
  journal::format::append_le(section, std::uint32_t{1});
  journal::format::append_le(section, first);
  journal::format::append_le(section, std::uint8_t{2});
  ASSERT_TRUE(eventually([&] { return journal_holds(section); }, 10s)) << "no checkpoint holds the count";
  power_loss(d, {member}, {"dq"});
  {
    const auto recovery = journal::recover(journal(), "dq");
    ASSERT_TRUE(recovery.checkpoint);
    ASSERT_EQ(recovery.checkpoint->groups.size(), 1u);
    EXPECT_EQ(recovery.checkpoint->groups[0].deliveries, (std::vector<journal::DeliveryCount>{{first, 2}}));
  }

  Daemon again = rebuilt_by_a_new_daemon(1);
  Queue q = Queue::open("dq");
  ASSERT_TRUE(again.serves(q));
  // The rebuilt words: one more than checkpointed for every record owed.
  const detail::Mapping& map = *detail::mapping_of(q);
  const std::uint32_t g = group_index(map, "g");
  EXPECT_EQ(layout::deliveries_of(map.delivery_word(g, first).load(), first), 3u);
  auto c = Consumer::join(q, "g");
  std::set<std::uint64_t> seen;
  Message m;
  while (seen.size() < 3 && c.receive(m, 5s) == Status::Ok) {
    EXPECT_TRUE(m.redelivered) << "sequence " << m.sequence;
    EXPECT_EQ(layout::deliveries_of(map.delivery_word(g, m.position).load(), m.position), m.sequence == 1 ? 3u : 1u)
        << "sequence " << m.sequence;
    EXPECT_GE(m.deliveries, m.sequence == 1 ? 4u : 1u) << "sequence " << m.sequence << ": lower than the truth";
    EXPECT_LE(m.deliveries, m.sequence == 1 ? 4u : 2u) << "sequence " << m.sequence << ": more than one too high";
    seen.insert(m.sequence);
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(seen, (std::set<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(c.try_receive(m), Status::Empty);
  again.terminate();
}

// A member stopped (SIGSTOP) while it holds messages of a queue with an ack
// timeout: shmqd takes them back (no other member calls receive meanwhile),
// logs it, and the other member gets them flagged.
TEST_F(PolicyDaemonTest, ShmqdTakesBackWhatAStoppedMemberHoldsPastTheAckTimeout) {
  QueueOptions o;
  o.capacity = 64 << 10;
  o.max_message = kMaxMessage;
  o.policy.ack_timeout = 300ms;
  Queue q = Queue::create("lq", o);
  const std::string log = dir_ + "/shmqd.log";
  Daemon d = start_daemon({}, log);
  ASSERT_TRUE(d.serves(q));
  auto other = Consumer::join(q, "g");
  constexpr std::uint64_t kHeld = 5;
  {
    auto p = Producer::attach(q, "p");
    for (std::uint64_t i = 1; i <= kHeld; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), 5s), Status::Ok);
  }
  Pipe holding;
  const pid_t stuck = spawn_consumer_stopped_holding("lq", "g", {}, kHeld, holding);
  ASSERT_TRUE(holding.wait());
  // Nobody but shmqd looks: it alone can have taken them back.
  const bool taken_back = eventually([&] { return group(q.info(), "g").lease_expired >= kHeld; }, 10s);
  EXPECT_TRUE(taken_back) << "shmqd did not take back what the stopped member held";
  std::set<std::uint64_t> got;
  Message m;
  while (taken_back && got.size() < kHeld && other.receive(m, 5s) == Status::Ok) {
    EXPECT_TRUE(m.redelivered) << "sequence " << m.sequence;
    EXPECT_GE(m.deliveries, 2u) << "sequence " << m.sequence;
    got.insert(m.sequence);
    EXPECT_EQ(other.ack(m), Status::Ok);
  }
  EXPECT_EQ(got.size(), taken_back ? kHeld : 0);
  ::kill(stuck, SIGKILL);
  wait_exit(stuck);
  d.terminate();
  if (taken_back) {
    EXPECT_NE(slurp(log).find("held past the ack timeout"), std::string::npos) << slurp(log);
  }
}

}  // namespace
}  // namespace shmq::test
