// Real kill -9 at the worst moments, with no daemon: the library's own repair
// (a stalled consumer, a re-attaching producer, a joining consumer) restores
// every invariant.
#include <csignal>
#include <random>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

class CrashTest : public NamespaceTest {
 protected:
  Queue make() {
    QueueOptions o;
    o.capacity = 1 << 18;
    o.max_message = 256;
    return Queue::create("crash", o);
  }
  static void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    EXPECT_EQ(wait_exit(pid), 128 + SIGKILL);
  }
};

// A child that commits seqs 1..5, then claims seq 6 and parks before commit.
pid_t park_between_claim_and_commit(const Pipe& parked) {
  return spawn([&] {
    auto queue = Queue::open("crash");
    auto p = Producer::attach(queue, "dying");
    for (int i = 0; i < 5; ++i) {
      if (p.try_send(bytes_of("committed")) != Status::Ok) return 1;
    }
    if (p.try_claim(9) != Status::Ok) return 2;
    std::memcpy(p.claimed().data(), "half-done", 9);
    parked.signal();
    ::pause();
    return 0;
  });
}

TEST_F(CrashTest, ProducerKilledBetweenClaimAndCommitIsSkipped) {
  auto q = make();
  auto c = Consumer::join(q, "g");
  Pipe parked;
  kill_and_reap(([&] {
    const pid_t pid = park_between_claim_and_commit(parked);
    EXPECT_TRUE(parked.wait());
    return pid;
  })());
  auto other = Producer::attach(q, "other");
  ASSERT_EQ(other.try_send(bytes_of("after the hole")), Status::Ok);
  Message m;
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(c.receive(m, std::chrono::seconds(5)), Status::Ok);
    EXPECT_EQ(m.sequence, static_cast<std::uint64_t>(i));
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(c.receive(m, std::chrono::seconds(5)), Status::Ok) << "the consumer repairs the dead claim itself";
  EXPECT_EQ(m.text(), "after the hole");
  std::printf("stalled consumer moved past the dead claim in %.3f ms\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  EXPECT_EQ(q.info().holes_skipped, 1u);
  auto again = Producer::attach(q, "dying");
  EXPECT_EQ(again.last_sequence(), 5u) << "the unconfirmed sequence is not counted";
  ASSERT_EQ(again.try_send(6, bytes_of("resent")), Status::Ok);
  ASSERT_EQ(c.receive(m, std::chrono::seconds(5)), Status::Ok);
  EXPECT_EQ(m.sequence, 6u);
  EXPECT_EQ(m.text(), "resent");
}

// The window between storing last_seq and the commit word: the repair must
// roll last_seq back, or the resend would be refused and the message lost.
TEST_F(CrashTest, DeathAfterCountingButBeforeCommitRollsTheSequenceBack) {
  auto q = make();
  Pipe parked;
  const pid_t pid = park_between_claim_and_commit(parked);
  ASSERT_TRUE(parked.wait());
  auto& slot = detail::mapping_of(q)->producers[0];
  ASSERT_EQ(slot.claim_seq.load(), 6u);
  slot.last_seq.store(6);  // as if the child died right after counting seq 6
  kill_and_reap(pid);
  auto again = Producer::attach(q, "dying");  // attach reaps the dead entry
  EXPECT_EQ(again.last_sequence(), 5u);
  ASSERT_EQ(again.try_send(6, bytes_of("resent")), Status::Ok);
  auto c = Consumer::join(q, "g");
  Message m;
  std::vector<std::uint64_t> seqs;
  while (c.try_receive(m) == Status::Ok) seqs.push_back(m.sequence);
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
}

// A producer killed at random moments, then restarted with the same input:
// the consumer sees every sequence exactly once, in order.
TEST_F(CrashTest, ProducerKilledAtRandomPointsResendsExactlyOnce) {
  constexpr std::uint64_t kMessages = 3000;
  constexpr int kIterations = 20;
  std::mt19937 rng(7);
  for (int iteration = 0; iteration < kIterations; ++iteration) {
    const std::string queue_name = "crash";
    auto q = make();
    auto c = Consumer::join(q, "g");
    const auto run = [&] {
      auto queue = Queue::open(queue_name);
      auto p = Producer::attach(queue, "restarting");
      for (std::uint64_t seq = 1; seq <= kMessages; ++seq) {
        const Status s = p.send(seq, bytes_of("payload " + std::to_string(seq)));
        if (s != Status::Ok && s != Status::Duplicate) return 1;
      }
      return 0;
    };
    const pid_t first = spawn(run);
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    ::kill(first, SIGKILL);
    wait_exit(first);
    const pid_t second = spawn(run);
    ASSERT_EQ(wait_exit(second), 0);
    Message m;
    for (std::uint64_t expected = 1; expected <= kMessages; ++expected) {
      ASSERT_EQ(c.receive(m, std::chrono::seconds(5)), Status::Ok) << "iteration " << iteration;
      ASSERT_EQ(m.sequence, expected) << "iteration " << iteration;
      ASSERT_EQ(m.text(), "payload " + std::to_string(expected));
      ASSERT_EQ(c.ack(m), Status::Ok);
    }
    EXPECT_EQ(c.try_receive(m), Status::Empty);
    Queue::remove(queue_name);
  }
}

TEST_F(CrashTest, ConsumerKilledHoldingMessagesTheyAreRedelivered) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  for (int i = 0; i < 20; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  Pipe holding;
  const pid_t child = spawn([&] {
    auto queue = Queue::open("crash");
    auto c = Consumer::join(queue, "g");
    Message m;
    for (int i = 1; i <= 10; ++i) {
      if (c.try_receive(m) != Status::Ok) return 1;
      if (i <= 4 && c.ack(m) != Status::Ok) return 2;
    }
    holding.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  kill_and_reap(child);
  auto survivor = Consumer::join(q, "g");  // joining reaps the dead member
  Message m;
  for (std::uint64_t seq = 5; seq <= 20; ++seq) {
    ASSERT_EQ(survivor.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, seq);
    EXPECT_EQ(m.redelivered, seq <= 10) << seq;
    ASSERT_EQ(survivor.ack(m), Status::Ok);
  }
  EXPECT_EQ(survivor.try_receive(m), Status::Empty) << "nothing acked comes back";
  EXPECT_EQ(q.info().redelivered, 6u);
  EXPECT_EQ(q.info().groups[0].lag_messages, 0u);
}

TEST_F(CrashTest, StoppedConsumerKeepsWhatItHolds) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  for (int i = 0; i < 6; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  Pipe holding, go_on;
  const pid_t child = spawn_consumer_acking_on_signal("crash", "g", 3, holding, go_on);
  ASSERT_TRUE(holding.wait());
  ::kill(child, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  {
    auto other = Consumer::join(q, "g");
    Message m;
    for (std::uint64_t seq = 4; seq <= 6; ++seq) {
      ASSERT_EQ(other.try_receive(m), Status::Ok);
      EXPECT_EQ(m.sequence, seq);
      EXPECT_FALSE(m.redelivered);
      ASSERT_EQ(other.ack(m), Status::Ok);
    }
    EXPECT_EQ(other.try_receive(m), Status::Empty);
    EXPECT_EQ(q.info().redelivered, 0u);
  }
  ::kill(child, SIGCONT);
  go_on.signal();
  EXPECT_EQ(wait_exit(child), 0);
  const auto info = q.info();
  EXPECT_EQ(info.groups[0].acked, 6u);
  EXPECT_EQ(info.groups[0].lag_messages, 0u);
}

// Liveness is the entry's lock, never its pid: an entry that names a live
// process (this one, with its true start time) but whose lock nobody holds
// is a dead client, and its name attaches again; while a live producer
// holds the entry, its name is in use.
TEST_F(CrashTest, AnEntryLivesByItsLockNotByItsPid) {
  auto q = make();
  {
    auto p = Producer::attach(q, "ghost");
    ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  }
  auto& slot = detail::mapping_of(q)->producers[0];
  slot.pid.store(::getpid());
  slot.start_time.store(detail::self_start_time());
  slot.state.store(static_cast<std::uint32_t>(layout::SlotState::Attached));
  auto p = Producer::attach(q, "ghost");
  EXPECT_EQ(p.last_sequence(), 1u);
  EXPECT_EQ(code_of([&] { (void)Producer::attach(q, "ghost"); }), Errc::NameInUse);
}

// A child forked without exec shares its parent's open files, and would
// share its entry locks: the library lets go of them in the child at fork,
// so the parent's death is seen while the child lives on. The child is a
// plain fork (not spawn: that would die with the forking parent and prove
// nothing); it reports its pid once running (its fork handlers have run
// by then) and ends when the test's end of `hold` closes.
TEST_F(CrashTest, AForkedChildDoesNotKeepItsParentsEntriesAlive) {
  auto q = make();
  int report[2];
  int hold[2];
  ASSERT_EQ(::pipe(report), 0);
  ASSERT_EQ(::pipe(hold), 0);
  const pid_t parent = spawn([&] {
    auto p = Producer::attach(q, "forker");
    if (p.try_send(bytes_of("x")) != Status::Ok) return 1;
    if (::fork() == 0) {
      ::close(hold[1]);
      const pid_t self = ::getpid();
      (void)!::write(report[1], &self, sizeof self);
      char end;
      (void)!::read(hold[0], &end, 1);  // EOF once the test (and the parent) are gone
      ::_exit(0);
    }
    ::pause();
    return 0;
  });
  ::close(report[1]);  // so that a parent that dies before its child reports ends the read, not hangs it
  ::close(hold[0]);
  pid_t child = 0;
  const ssize_t got = ::read(report[0], &child, sizeof child);
  ::close(report[0]);
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof child)) << "the forking process failed: exit " << wait_exit(parent);
  ASSERT_TRUE(q.info().producers.at(0).alive);
  ::kill(parent, SIGKILL);
  wait_exit(parent);
  ASSERT_EQ(::kill(child, 0), 0) << "the forked child should still run";
  EXPECT_FALSE(q.info().producers.at(0).alive) << "the forked child kept its parent's entry alive";
  auto again = Producer::attach(q, "forker");
  EXPECT_EQ(again.last_sequence(), 1u);
  ::close(hold[1]);  // the child ends; not ours to wait for: init reaps it
}

}  // namespace
}  // namespace shmq::test
