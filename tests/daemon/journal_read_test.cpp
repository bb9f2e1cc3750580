// Groups of a durable queue that read the journal: a group that falls a ring
// behind (it never stalls the producers), a backlog larger than the ring after
// a rebuild, and replays of a new group from the oldest record, a position or
// a time. Real shmqd, real journal files.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "daemon_support.hpp"
#include "shm/process.hpp"

namespace shmq::test {
namespace {


Queue make_small_durable_queue() {
  QueueOptions o;
  o.capacity = kRing;
  o.max_message = 256;
  o.durable = true;
  return Queue::create("jq", o);
}

class JournalReadTest : public DaemonTest {
 protected:
  // The small durable queue, journaled by a shmqd of this test's.
  Queue start_queue() {
    Queue q = make_small_durable_queue();
    daemon_ = start_daemon();
    EXPECT_TRUE(daemon_.serves(q));
    return q;
  }

  // Sends sequences [first, last]; each send must find room (a stalled ring
  // would leave it waiting until the timeout).
  static void send_range(Producer& p, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      ASSERT_EQ(p.send(bytes_of(payload_of(seq)), 20s), Status::Ok) << "send of " << seq << " stalled";
    }
  }

  // Receives and acks sequences [first, last] of producer "p", each once, in
  // order; `redelivered` says how they must be flagged.
  static void expect_range(Consumer& c, std::uint64_t first, std::uint64_t last, bool redelivered = false) {
    Message m;
    std::uint64_t last_position = 0;
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      ASSERT_EQ(c.receive(m, 20s), Status::Ok) << "waiting for " << seq << ": " << c.journal_error();
      ASSERT_EQ(m.sequence, seq);
      ASSERT_EQ(m.text(), payload_of(seq));
      ASSERT_EQ(m.producer(), "p");  // from the ring or the journal alike
      ASSERT_GT(m.position, last_position);
      ASSERT_EQ(m.redelivered, redelivered) << "sequence " << seq;
      last_position = m.position;
      ASSERT_EQ(c.ack(m), Status::Ok);
    }
  }

  static void expect_nothing_more(Consumer& c) {
    Message m;
    EXPECT_EQ(c.receive(m, 100ms), Status::Timeout) << "an extra message, sequence " << m.sequence;
  }

  Daemon daemon_;
};

// The case: one group stops while producers write ten rings; the
// producers and the other group never wait for it; resumed, it gets every
// message once, in order, first from the journal, then from the ring.
TEST_F(JournalReadTest, AStoppedGroupReadsTheJournalAndNeverStallsProducers) {
  Queue q = start_queue();
  auto stopped = Consumer::join(q, "stopped");
  auto fast = Consumer::join(q, "fast");
  auto p = Producer::attach(q, "p");
  const std::uint64_t total = 10 * kPerRing;
  std::thread fast_reader([&] { expect_range(fast, 1, total); });
  send_range(p, 1, total);
  fast_reader.join();
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  EXPECT_TRUE(group(q.info(), "stopped").reading_journal);
  EXPECT_GE(q.info().groups_to_journal, 1u);

  expect_range(stopped, 1, total);
  expect_nothing_more(stopped);
  // Caught up, it reads the ring again: new messages come from there.
  EXPECT_FALSE(group(q.info(), "stopped").reading_journal);
  EXPECT_EQ(group(q.info(), "stopped").acked_position, q.info().tail_position);
  send_range(p, total + 1, total + 10);
  expect_range(stopped, total + 1, total + 10);
  expect_range(fast, total + 1, total + 10);
  expect_nothing_more(stopped);
}

// Messages a member holds when its group switches to the journal stay valid
// (they are in the ring part), and the group goes on after them without a gap.
TEST_F(JournalReadTest, MessagesHeldAcrossTheSwitchStayValid) {
  Queue q = start_queue();
  auto slow = Consumer::join(q, "slow");
  auto p = Producer::attach(q, "p");
  send_range(p, 1, 3);
  Message held[3];
  for (auto& m : held) ASSERT_EQ(slow.receive(m, 20s), Status::Ok);
  // The ring cannot reuse the held records: producers wait for their acks,
  // then go on while the group reads the journal.
  std::thread acker([&] {
    std::this_thread::sleep_for(200ms);
    for (std::uint64_t i = 0; i < 3; ++i) EXPECT_EQ(held[i].text(), payload_of(i + 1));
    for (auto& m : held) EXPECT_EQ(slow.ack(m), Status::Ok);
  });
  send_range(p, 4, 4 * kPerRing);
  acker.join();
  expect_range(slow, 4, 4 * kPerRing);
  expect_nothing_more(slow);
}

// A member that dies holding messages read from the journal: the next member
// gets them again, flagged, then the rest, unflagged.
TEST_F(JournalReadTest, AJournalReaderThatLeavesHasItsMessagesRedelivered) {
  Queue q = start_queue();
  auto p = Producer::attach(q, "p");
  auto first = std::make_unique<Consumer>(Consumer::join(q, "g"));
  send_range(p, 1, 3 * kPerRing);
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  ASSERT_TRUE(group(q.info(), "g").reading_journal);
  expect_range(*first, 1, 10);
  Message m;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(first->receive(m, 20s), Status::Ok);  // 11..15, not acked
  first.reset();  // leaves holding them
  auto second = Consumer::join(q, "g");
  expect_range(second, 11, 15, /*redelivered=*/true);
  expect_range(second, 16, 3 * kPerRing);
  expect_nothing_more(second);
}

// A group of two members falls behind: one reads the journal while the other
// waits, then both share the ring again. Every message once, across both.
TEST_F(JournalReadTest, MembersOfAGroupReadingTheJournalShareItsMessagesOnce) {
  Queue q = start_queue();
  auto a = Consumer::join(q, "g", {.prefetch = 16});
  auto b = Consumer::join(q, "g", {.prefetch = 16});
  auto p = Producer::attach(q, "p");
  const std::uint64_t total = 6 * kPerRing;
  send_range(p, 1, 3 * kPerRing);  // a ring behind: the group reads the journal
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  ASSERT_TRUE(group(q.info(), "g").reading_journal);
  std::vector<std::uint64_t> got_a, got_b;
  std::atomic<std::uint64_t> received{0};
  const auto take = [&](Consumer& c, std::vector<std::uint64_t>& got) {
    Message batch[8];
    while (received.load() < total) {
      std::size_t n = 0;
      while (n < 8 && c.try_receive(batch[n]) == Status::Ok) ++n;
      if (n == 0) {
        if (c.receive(batch[0], 50ms) != Status::Ok) continue;
        n = 1;
      }
      for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(batch[i].text(), payload_of(batch[i].sequence));
        EXPECT_FALSE(batch[i].redelivered);
        got.push_back(batch[i].sequence);
      }
      // Acks the batch at once, journal copies and ring views alike.
      EXPECT_EQ(c.ack_up_to(batch[n - 1].position), n);
      received += n;
    }
  };
  std::thread ta([&] { take(a, got_a); });
  std::thread tb([&] { take(b, got_b); });
  send_range(p, 3 * kPerRing + 1, total);
  ta.join();
  tb.join();
  std::vector<std::uint64_t> all = got_a;
  all.insert(all.end(), got_b.begin(), got_b.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), total);
  for (std::uint64_t i = 0; i < total; ++i) ASSERT_EQ(all[i], i + 1) << "missing or twice";
  // Each member got its share in order.
  EXPECT_TRUE(std::is_sorted(got_a.begin(), got_a.end()));
  EXPECT_TRUE(std::is_sorted(got_b.begin(), got_b.end()));
  expect_nothing_more(a);
  expect_nothing_more(b);
  EXPECT_FALSE(group(q.info(), "g").reading_journal);
  EXPECT_EQ(group(q.info(), "g").acked_position, q.info().tail_position);
}

// After a power loss, a group that was reading the journal is owed more than
// the ring holds: it reads the journal, then the ring, and loses nothing.
TEST_F(JournalReadTest, ABacklogLargerThanTheRingIsServedFromTheJournalAfterARebuild) {
  const std::uint64_t total = 5 * kPerRing;
  {
    Queue q = make_small_durable_queue();
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    auto behind = Consumer::join(q, "behind");
    expect_nothing_more(behind);
    auto p = Producer::attach(q, "p");
    send_range(p, 1, total);
    ASSERT_EQ(p.wait_durable(20s), Status::Ok);
    std::this_thread::sleep_for(300ms);  // a checkpoint names the group
    d.kill9();
  }
  ASSERT_TRUE(Queue::remove("jq"));  // the power loss takes shared memory
  Daemon d = start_daemon();
  ASSERT_TRUE(eventually([] { return !Queue::list().empty(); })) << "not rebuilt";
  Queue q = Queue::open("jq");
  ASSERT_TRUE(d.serves(q));
  EXPECT_TRUE(group(q.info(), "behind").reading_journal);
  auto behind = Consumer::join(q, "behind");
  // shmqd cannot know what the group had received: every one comes flagged.
  expect_range(behind, 1, total, /*redelivered=*/true);
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.last_sequence(), total);
  send_range(p, total + 1, total + 5);
  expect_range(behind, total + 1, total + 5);
  expect_nothing_more(behind);
}

class ReplayTest : public JournalReadTest {
 protected:
  // Ten rings of messages, all acked by group "live": the ring holds only the
  // last of them, the journal all. Returns the position of each sequence.
  std::vector<std::uint64_t> fill(Queue& q, Producer& p) {
    auto live = Consumer::join(q, "live");
    std::vector<std::uint64_t> positions(1);
    for (std::uint64_t seq = 1; seq <= total_; ++seq) {
      if (seq == total_ / 2 + 1) {
        std::this_thread::sleep_for(5ms);  // sequences from here on are later than `middle_time_`
        middle_time_ = detail::unix_time_ns();
        std::this_thread::sleep_for(5ms);
      }
      EXPECT_EQ(p.send(bytes_of(payload_of(seq)), 20s), Status::Ok);
      Message m;
      EXPECT_EQ(live.receive(m, 20s), Status::Ok);
      positions.push_back(m.position);
      EXPECT_EQ(live.ack(m), Status::Ok);
    }
    EXPECT_EQ(p.wait_durable(20s), Status::Ok);
    return positions;
  }

  const std::uint64_t total_ = 10 * kPerRing;
  std::uint64_t middle_time_ = 0;
};

TEST_F(ReplayTest, ANewGroupReplaysFromTheOldestAPositionOrATime) {
  Queue q = start_queue();
  auto p = Producer::attach(q, "p", {.precise_timestamps = true});
  const auto positions = fill(q, p);
  ASSERT_GT(q.info().head_position, positions[2]) << "the ring still holds the oldest: no replay tested";

  auto oldest = Consumer::join(q, "oldest", {.start = StartAt::Oldest});
  EXPECT_TRUE(group(q.info(), "oldest").reading_journal);
  expect_range(oldest, 1, total_);

  const std::uint64_t from_seq = 1234;
  auto at_position = Consumer::join(q, "at-position", {.start = StartAt::Position, .start_position = positions[from_seq]});
  expect_range(at_position, from_seq, total_);

  // A position between records starts at the next record.
  auto between = Consumer::join(q, "between", {.start = StartAt::Position, .start_position = positions[from_seq] + 1});
  expect_range(between, from_seq + 1, total_);

  auto at_time = Consumer::join(q, "at-time", {.start = StartAt::Time, .start_time_ns = middle_time_});
  expect_range(at_time, total_ / 2 + 1, total_);

  // Every replaying group goes on in the ring, like any other.
  send_range(p, total_ + 1, total_ + 3);
  for (Consumer* c : {&oldest, &at_position, &between, &at_time}) {
    expect_range(*c, total_ + 1, total_ + 3);
    expect_nothing_more(*c);
  }
}

}  // namespace
}  // namespace shmq::test
