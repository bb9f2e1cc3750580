// shmqd itself killed with SIGKILL around a client's death (before it, or
// right after, so possibly mid-repair) and restarted: the restarted daemon
// finishes or redoes the repair, and every invariant holds.
#include <csignal>
#include <random>

#include "daemon_support.hpp"

namespace shmq::test {
namespace {

class DaemonRestartTest : public DaemonTest {
 protected:
  static Queue make() { return make_crash_queue(); }
  // Kills the client and the daemon: the daemon first on even iterations (so
  // the death happens while it is down), else the client, then the daemon
  // up to a millisecond later (often mid-repair).
  static void kill_both(pid_t client, Daemon& d, int iteration, std::mt19937& rng) {
    if (iteration % 2 == 0) {
      d.kill9();
      ::kill(client, SIGKILL);
    } else {
      ::kill(client, SIGKILL);
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
      d.kill9();
    }
    wait_exit(client);
  }
};

std::vector<std::uint64_t> drain(Consumer& c, std::vector<bool>* redelivered = nullptr) {
  std::vector<std::uint64_t> seqs;
  Message m;
  while (c.try_receive(m) == Status::Ok) {
    seqs.push_back(m.sequence);
    if (redelivered != nullptr) redelivered->push_back(m.redelivered);
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  return seqs;
}

TEST_F(DaemonRestartTest, DaemonKilledAroundAProducersDeath) {
  auto q = make();
  auto steady = Producer::attach(q, "steady");
  auto a = Consumer::join(q, "a");
  std::mt19937 rng(17);
  std::uint64_t last = 0;
  for (int iteration = 0; iteration < 12; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    auto d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    const std::uint64_t k = rng() % 4;
    Pipe parked;
    const pid_t child = spawn([&] {
      auto p = Producer::attach(Queue::open("crash"), "dying");
      for (std::uint64_t seq = last + 1; seq <= last + k; ++seq) {
        if (p.try_send(seq, bytes_of(payload_for(seq))) != Status::Ok) return 1;
      }
      if (p.try_claim(last + k + 1, 8) != Status::Ok) return 2;
      parked.signal();
      ::pause();
      return 0;
    });
    ASSERT_TRUE(parked.wait());
    ASSERT_EQ(steady.try_send(0, bytes_of("marker")), Status::Duplicate) << "sequence 0 is never new";
    ASSERT_EQ(steady.try_send(bytes_of("marker")), Status::Ok);
    const std::uint64_t holes = q.info().holes_skipped;
    kill_both(child, d, iteration, rng);
    auto restarted = start_daemon();
    ASSERT_TRUE(restarted.serves(q));
    ASSERT_TRUE(eventually([&] { return q.info().holes_skipped == holes + 1; }, 2000ms));
    EXPECT_FALSE(q.info().producers.at(1).attached);
    auto seqs = drain(a);
    ASSERT_EQ(seqs.size(), k + 1);
    const pid_t again = spawn([&] {
      auto p = Producer::attach(Queue::open("crash"), "dying");
      if (p.last_sequence() != last + k) return 1;
      return p.try_send(last + k + 1, bytes_of(payload_for(last + k + 1))) == Status::Ok ? 0 : 2;
    });
    ASSERT_EQ(wait_exit(again), 0);
    seqs = drain(a);
    ASSERT_EQ(seqs, std::vector<std::uint64_t>{last + k + 1});
    last += k + 1;
    EXPECT_EQ(restarted.terminate(), 0);
  }
}

TEST_F(DaemonRestartTest, DaemonKilledAroundAConsumersDeath) {
  auto q = make();
  auto p = Producer::attach(q, "p");
  auto survivor = Consumer::join(q, "g");
  std::mt19937 rng(23);
  std::uint64_t sent = 0, returned = 0;
  for (int iteration = 0; iteration < 12; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    auto d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    constexpr std::uint64_t n = 8;
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
    const std::uint64_t acked = rng() % n;
    Pipe holding;
    const pid_t child = spawn_holding_consumer("crash", "g", n, acked, holding);
    ASSERT_TRUE(holding.wait());
    std::vector<std::uint64_t> got;
    std::vector<bool> flags;
    std::thread blocked([&] {
      Message m;
      while (got.size() < n - acked && survivor.receive(m, 5s) == Status::Ok) {
        got.push_back(m.sequence);
        flags.push_back(m.redelivered);
        EXPECT_EQ(survivor.ack(m), Status::Ok);
      }
    });
    std::this_thread::sleep_for(10ms);
    kill_both(child, d, iteration, rng);
    auto restarted = start_daemon();
    blocked.join();
    ASSERT_EQ(got.size(), n - acked);
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i], sent + acked + 1 + i);
      EXPECT_TRUE(flags[i]);
    }
    EXPECT_TRUE(drain(survivor).empty()) << "nothing acked comes back";
    ASSERT_TRUE(restarted.serves(q));
    sent += n;
    returned += n - acked;
    EXPECT_EQ(q.info().redelivered, returned) << "a redone repair counts nothing twice";
    EXPECT_EQ(restarted.terminate(), 0);
  }
  EXPECT_EQ(q.info().groups[0].lag_messages, 0u);
}

}  // namespace
}  // namespace shmq::test
