// shmqd repairs after clients killed with a real SIGKILL. No consumer looks at
// the queue until the daemon has done its part, so the repair checked is the
// daemon's, not the library's own fallback.
#include <csignal>
#include <map>
#include <random>

#include "daemon_support.hpp"

namespace shmq::test {
namespace {

struct Got {
  std::string text;
  std::uint64_t sequence = 0;
  bool redelivered = false;
};

// Takes (and acks) everything a consumer can take now.
std::vector<Got> drain(Consumer& c) {
  std::vector<Got> out;
  Message m;
  while (c.try_receive(m) == Status::Ok) {
    out.push_back({std::string(m.text()), m.sequence, m.redelivered});
    EXPECT_EQ(c.ack(m), Status::Ok);
  }
  return out;
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

class DaemonRecoveryTest : public DaemonTest {
 protected:
  static Queue make() { return make_crash_queue(); }
};

// A producer that commits `from`..`to`, then claims `to + 1` and parks.
pid_t park_after(std::uint64_t from, std::uint64_t to, const Pipe& parked) {
  return spawn([=, &parked] {
    auto p = Producer::attach(Queue::open("crash"), "dying");
    if (p.last_sequence() != from - 1) return 1;
    for (std::uint64_t seq = from; seq <= to; ++seq) {
      if (p.try_send(seq, bytes_of(payload_for(seq))) != Status::Ok) return 2;
    }
    if (p.try_claim(to + 1, 16) != Status::Ok) return 3;
    std::memcpy(p.claimed().data(), "never committed", 16);
    parked.signal();
    ::pause();
    return 0;
  });
}

// The restarted producer, same name, same input: what was committed is
// refused as a duplicate, the rest is accepted.
int resend(std::uint64_t from, std::uint64_t to, std::uint64_t committed) {
  auto p = Producer::attach(Queue::open("crash"), "dying");
  if (p.last_sequence() != committed) return 1;
  for (std::uint64_t seq = from; seq <= to; ++seq) {
    const Status expected = seq <= committed ? Status::Duplicate : Status::Ok;
    if (p.try_send(seq, bytes_of(payload_for(seq))) != expected) return 2;
  }
  return 0;
}

TEST_F(DaemonRecoveryTest, ProducerKilledBetweenClaimAndCommit) {
  auto q = make();
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  Consumer groups[] = {Consumer::join(q, "a"), Consumer::join(q, "b")};
  auto steady = Producer::attach(q, "steady");
  std::mt19937 rng(11);
  std::uint64_t last = 0;
  double worst = 0;
  for (int iteration = 0; iteration < 20; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    const std::uint64_t k = rng() % 8;
    Pipe parked;
    const pid_t child = park_after(last + 1, last + k, parked);
    ASSERT_TRUE(parked.wait());
    ASSERT_EQ(steady.try_send(bytes_of("marker")), Status::Ok);  // behind the hole
    const std::uint64_t holes = q.info().holes_skipped;
    const auto killed = std::chrono::steady_clock::now();
    ::kill(child, SIGKILL);
    ASSERT_TRUE(eventually([&] { return q.info().holes_skipped == holes + 1; }, 2000ms));
    worst = std::max(worst, ms_since(killed));
    wait_exit(child);
    for (auto& c : groups) {
      const auto got = drain(c);
      ASSERT_EQ(got.size(), k + 1) << "the consumers move past the hole";
      for (std::uint64_t i = 0; i < k; ++i) EXPECT_EQ(got[i].text, payload_for(last + 1 + i));
      EXPECT_EQ(got[k].text, "marker");
    }
    const pid_t again = spawn([&] { return resend(last + 1, last + k + 1, last + k); });
    ASSERT_EQ(wait_exit(again), 0) << "exact last sequence, duplicates refused";
    for (auto& c : groups) {
      const auto got = drain(c);
      ASSERT_EQ(got.size(), 1u);
      EXPECT_EQ(got[0].sequence, last + k + 1);
      EXPECT_EQ(got[0].text, payload_for(last + k + 1));
    }
    last += k + 1;
  }
  std::printf("worst time from kill to the daemon's skip: %.3f ms\n", worst);
}

// A producer killed anywhere (before attach, mid-send, between claim and
// commit), then restarted with the same input: each group sees every
// sequence once, in order.
TEST_F(DaemonRecoveryTest, ProducerKilledAtRandomPoints) {
  constexpr std::uint64_t kMessages = 2000;
  auto q = make();
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  Consumer groups[] = {Consumer::join(q, "a"), Consumer::join(q, "b")};
  std::mt19937 rng(5);
  int before = 0, partial = 0, after = 0;  // where the kills landed
  for (int iteration = 0; iteration < 40; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    const std::string name = "p" + std::to_string(iteration);
    // Sends 1..kMessages, every third by claim and commit; with `strict`, a
    // sequence is Duplicate exactly when the queue had it before this run.
    Pipe started;
    const auto run = [&](bool strict) {
      auto p = Producer::attach(Queue::open("crash"), name);
      const std::uint64_t committed = p.last_sequence();
      started.signal();
      for (std::uint64_t seq = 1; seq <= kMessages; ++seq) {
        // A few microseconds a message, so the stream lasts long enough to be hit.
        for (const auto t = std::chrono::steady_clock::now(); std::chrono::steady_clock::now() - t < 2us;) {
        }
        const std::string text = payload_for(seq);
        Status s;
        if (seq % 3 == 0) {
          if ((s = p.try_claim(seq, text.size())) == Status::Ok) {
            std::memcpy(p.claimed().data(), text.data(), text.size());
            p.commit();
          }
        } else {
          s = p.try_send(seq, bytes_of(text));
        }
        if (s != (seq <= committed ? Status::Duplicate : Status::Ok) && (strict || s != Status::Duplicate)) return 1;
      }
      return 0;
    };
    const pid_t first = spawn([&] { return run(false); });
    if (iteration % 8 != 0) {  // else it dies at once, before it attaches or mid-attach
      ASSERT_TRUE(started.wait());
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2500));
    }
    ::kill(first, SIGKILL);
    wait_exit(first);
    // The daemon lets go of its entry (and skips its claim, if it had one).
    ASSERT_TRUE(eventually([&] {
      for (const auto& p : q.info().producers) {
        if (p.name == name && p.attached) return false;
      }
      return true;
    }, 2000ms));
    std::vector<std::uint64_t> seen[2];
    for (int g = 0; g < 2; ++g) {
      for (const auto& m : drain(groups[g])) seen[g].push_back(m.sequence);
      const auto info = q.info();
      EXPECT_EQ(info.groups[g].read_position, info.tail_position) << "no hole left to stall on";
    }
    ++(seen[0].empty() ? before : seen[0].size() < kMessages ? partial : after);
    const pid_t second = spawn([&] { return run(true); });
    ASSERT_EQ(wait_exit(second), 0);
    for (int g = 0; g < 2; ++g) {
      for (const auto& m : drain(groups[g])) {
        EXPECT_EQ(m.text, payload_for(m.sequence));
        seen[g].push_back(m.sequence);
      }
      ASSERT_EQ(seen[g].size(), kMessages);
      for (std::uint64_t i = 0; i < kMessages; ++i) ASSERT_EQ(seen[g][i], i + 1) << "exactly once, in order";
    }
  }
  std::printf("kills before the first send: %d, mid-stream: %d, after the last: %d; holes skipped: %llu\n", before,
              partial, after, static_cast<unsigned long long>(q.info().holes_skipped));
}

// The survivor is already a member, blocked in receive: only the daemon can
// hand it what the dead member held.
TEST_F(DaemonRecoveryTest, ConsumerKilledHoldingMessagesTheSurvivorGetsThem) {
  auto q = make();
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  auto p = Producer::attach(q, "p");
  auto survivor = Consumer::join(q, "g");
  std::mt19937 rng(3);
  std::uint64_t sent = 0, returned = 0;
  double worst = 0;
  for (int iteration = 0; iteration < 10; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    constexpr std::uint64_t n = 10;
    for (std::uint64_t i = 1; i <= n; ++i) ASSERT_EQ(p.try_send(sent + i, bytes_of(payload_for(sent + i))), Status::Ok);
    const std::uint64_t take = 2 + rng() % 8, acked = rng() % take;
    Pipe holding;
    const pid_t child = spawn_holding_consumer("crash", "g", take, acked, holding);
    ASSERT_TRUE(holding.wait());
    const auto rest = drain(survivor);
    ASSERT_EQ(rest.size(), n - take);
    std::vector<Got> got;
    std::chrono::steady_clock::time_point first{};
    std::thread blocked([&] {
      Message m;
      while (got.size() < take - acked && survivor.receive(m, 5s) == Status::Ok) {
        if (got.empty()) first = std::chrono::steady_clock::now();
        got.push_back({std::string(m.text()), m.sequence, m.redelivered});
        EXPECT_EQ(survivor.ack(m), Status::Ok);
      }
    });
    std::this_thread::sleep_for(20ms);  // asleep in receive
    const auto killed = std::chrono::steady_clock::now();
    ::kill(child, SIGKILL);
    blocked.join();
    wait_exit(child);
    ASSERT_EQ(got.size(), take - acked);
    worst = std::max(worst, std::chrono::duration<double, std::milli>(first - killed).count());
    for (std::uint64_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].sequence, sent + acked + 1 + i);
      EXPECT_EQ(got[i].text, payload_for(got[i].sequence));
      EXPECT_TRUE(got[i].redelivered);
    }
    EXPECT_TRUE(drain(survivor).empty()) << "nothing acked comes back";
    sent += n;
    returned += take - acked;
  }
  // The reaper counts a client once its repair is done, just after the
  // repair woke the survivor: the last count may lag the last redelivery.
  EXPECT_TRUE(eventually([&] { return q.info().clients_reaped == 10; }));
  const auto info = q.info();
  EXPECT_EQ(info.redelivered, returned);
  EXPECT_EQ(info.groups[0].lag_messages, 0u) << "nothing lost";
  std::printf("worst time from kill to the first redelivery: %.3f ms\n", worst);
}

TEST_F(DaemonRecoveryTest, RedeliveriesComeBeforeNewerMessages) {
  auto q = make();
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  auto p = Producer::attach(q, "p");
  auto survivor = Consumer::join(q, "g");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(p.try_send(bytes_of("old")), Status::Ok);
  Pipe holding;
  const pid_t child = spawn([&] {
    auto c = Consumer::join(Queue::open("crash"), "g");
    std::vector<Message> held(5);
    for (auto& m : held) {
      if (c.try_receive(m) != Status::Ok) return 1;
    }
    if (c.ack(held[0]) != Status::Ok) return 2;
    holding.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());
  ::kill(child, SIGKILL);
  wait_exit(child);
  ASSERT_TRUE(eventually([&] { return q.info().redelivered == 4; }, 2000ms));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.try_send(bytes_of("new")), Status::Ok);
  const auto got = drain(survivor);
  ASSERT_EQ(got.size(), 7u);
  for (std::uint64_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].sequence, i + 2);
    EXPECT_EQ(got[i].redelivered, i < 4) << i;
  }
}

}  // namespace
}  // namespace shmq::test
