// Where a durable queue's new group starts when no other group pins the ring
// (shm/groups_epoch.hpp, "S = head, durable"): a producer whose floor scan
// preceded the group's creation raises head, after it, to the journal_written
// that scan loaded. A group started in the ring below that position would see
// its first records overwritten; it starts in the journal instead, which holds
// every record below journal_written.
//
// Deterministic: the test takes that producer's scan by hand before the join
// (with no group attached, release_floor returns journal_written) and makes
// its head CAS after the join, as refresh_limit does with a floor it computed
// before; then a producer writes most of a ring, over the group's first
// records. Real shmqd, real journal files. Before the fix, the four tests of
// a start below journal_written failed so: the group's first receive returned
// Corrupt (the ring held a later lap there).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "daemon_support.hpp"
#include "shm/process.hpp"

namespace shmq::test {
namespace {

using namespace layout;

// Sent before the group exists: journaled, and still in the ring.
constexpr std::uint64_t kBefore = 100;
// Sent after it: from the stale head on, past the ring's end over the first
// 90 of those, every start tested below (and less than a ring past that
// head: no send waits for room).
constexpr std::uint64_t kAfter = kPerRing - 10;

class NewGroupStartTest : public DaemonTest {
 protected:
  Queue start_queue() {
    QueueOptions o;
    o.capacity = kRing;
    o.max_message = 256;
    o.durable = true;
    Queue q = Queue::create("nq", o);
    daemon_ = start_daemon();
    EXPECT_TRUE(daemon_.serves(q));
    return q;
  }

  static QueueHeader& header(const Queue& q) { return *detail::mapping_of(q)->header; }

  // Sends sequences [first, last], recording each position; no send may wait
  // for room (a stalled ring times out).
  void send_range(Producer& p, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      if (seq == kBefore / 2 + 1) {
        std::this_thread::sleep_for(5ms);  // sequences from here on are later than middle_time_
        middle_time_ = detail::unix_time_ns();
        std::this_thread::sleep_for(5ms);
      }
      ASSERT_EQ(p.send(bytes_of(payload_of(seq)), 5s), Status::Ok) << "send of " << seq << " stalled";
      positions_.resize(seq + 1);
      positions_[seq] = p.last_position();
    }
  }

  // The scan of a producer that computes its floor now, with no group
  // attached: journal_written (release_floor). Head has not got there yet.
  static std::uint64_t stale_floor(const Queue& q) {
    const std::uint64_t floor = header(q).journal_written.load();
    EXPECT_LT(header(q).head.load(), floor) << "head is at journal_written already: nothing tested";
    return floor;
  }

  // That producer's CAS of head, after the group's creation (refresh_limit).
  static void raise_head(const Queue& q, std::uint64_t floor) {
    std::uint64_t head = header(q).head.load();
    while (at_or_after(floor, head + 1) && !header(q).head.compare_exchange_weak(head, floor)) {
    }
  }

  // Receives and acks sequences [first, last] of the producer, once each, in order.
  static void expect_range(Consumer& c, std::uint64_t first, std::uint64_t last) {
    Message m;
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      const Status status = c.receive(m, 5s);
      ASSERT_EQ(status, Status::Ok) << to_string(status) << " waiting for " << seq << ": " << c.journal_error();
      ASSERT_EQ(m.sequence, seq);
      ASSERT_EQ(m.text(), payload_of(seq));
      ASSERT_FALSE(m.redelivered);
      ASSERT_EQ(c.ack(m), Status::Ok);
    }
    EXPECT_EQ(c.receive(m, 100ms), Status::Timeout) << "an extra message, sequence " << m.sequence;
  }

  // The whole case: kBefore messages journaled, the stale scan, the join
  // with the options `start` makes (once the first positions and times are
  // known), the stale CAS, kAfter messages; the group gets every message from
  // `first` on.
  template <class Start>
  void expect_every_message_from(Start&& start, std::uint64_t first) {
    Queue q = start_queue();
    auto p = Producer::attach(q, "p", {.precise_timestamps = true});
    send_range(p, 1, kBefore);
    ASSERT_EQ(p.wait_durable(20s), Status::Ok);
    const std::uint64_t floor = stale_floor(q);
    auto c = Consumer::join(q, "late", start());
    EXPECT_TRUE(group(q.info(), "late").reading_journal) << "started in the ring below journal_written";
    raise_head(q, floor);
    send_range(p, kBefore + 1, kBefore + kAfter);
    ASSERT_EQ(p.wait_durable(20s), Status::Ok);
    expect_range(c, first, kBefore + kAfter);
    EXPECT_FALSE(group(q.info(), "late").reading_journal) << "caught up, it reads the ring again";
  }

  Daemon daemon_;
  std::vector<std::uint64_t> positions_{0};  // of each sequence, [0] unused
  std::uint64_t middle_time_ = 0;
};

TEST_F(NewGroupStartTest, OldestBelowJournalWrittenStartsInTheJournal) {
  expect_every_message_from([] { return ConsumerOptions{.start = StartAt::Oldest}; }, 1);
}

TEST_F(NewGroupStartTest, APositionBelowJournalWrittenStartsInTheJournal) {
  expect_every_message_from(
      [&] { return ConsumerOptions{.start = StartAt::Position, .start_position = positions_[kBefore / 2]}; },
      kBefore / 2);
}

TEST_F(NewGroupStartTest, ATimeBelowJournalWrittenStartsInTheJournal) {
  expect_every_message_from([&] { return ConsumerOptions{.start = StartAt::Time, .start_time_ns = middle_time_}; },
                            kBefore / 2 + 1);
}

// shmqd died after journaling: journal_written stays where it was, and the
// group reads what lies below it from the journal files at once; the rest,
// which consumers take only once it is synced, when shmqd is back.
TEST_F(NewGroupStartTest, WithShmqdGoneTheGroupReadsTheJournalItLeft) {
  Queue q = start_queue();
  auto p = Producer::attach(q, "p");
  send_range(p, 1, kBefore);
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  daemon_.kill9();
  const std::uint64_t floor = stale_floor(q);
  auto c = Consumer::join(q, "late", {.start = StartAt::Oldest});
  EXPECT_TRUE(group(q.info(), "late").reading_journal) << "started in the ring below journal_written";
  raise_head(q, floor);
  send_range(p, kBefore + 1, kBefore + kAfter);
  Message m;
  for (std::uint64_t seq = 1; seq <= kBefore; ++seq) {
    const Status status = c.receive(m, 5s);
    ASSERT_EQ(status, Status::Ok) << to_string(status) << " waiting for " << seq << ": " << c.journal_error();
    ASSERT_EQ(m.sequence, seq);
    ASSERT_EQ(m.text(), payload_of(seq));
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  daemon_ = start_daemon();
  ASSERT_TRUE(daemon_.serves(q));
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  expect_range(c, kBefore + 1, kBefore + kAfter);
}

// A consumer that cannot find the journal (here, told the wrong directory)
// cannot be served below journal_written: its group starts there, in the
// ring, as a replay without its journal gets only what the ring keeps.
TEST_F(NewGroupStartTest, WithoutItsJournalTheGroupStartsWhereTheJournalEnds) {
  Queue q = start_queue();
  auto p = Producer::attach(q, "p");
  send_range(p, 1, kBefore);
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  const std::uint64_t floor = stale_floor(q);
  auto c = Consumer::join(q, "late", {.start = StartAt::Oldest, .journal_dir = dir_ + "/elsewhere"});
  EXPECT_FALSE(group(q.info(), "late").reading_journal);
  EXPECT_EQ(group(q.info(), "late").read_position, floor);
  raise_head(q, floor);
  send_range(p, kBefore + 1, kBefore + kAfter);
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  expect_range(c, kBefore + 1, kBefore + kAfter);
}

// shmqd never ran: nothing is journaled (journal_written is the first
// position, and there are no journal files), so nothing can pass the group's
// start in the ring; it gets every message once shmqd journals them.
TEST_F(NewGroupStartTest, BeforeShmqdEverRanTheGroupStartsInTheRing) {
  QueueOptions o;
  o.capacity = kRing;
  o.max_message = 256;
  o.durable = true;
  Queue q = Queue::create("nq", o);
  auto p = Producer::attach(q, "p");
  send_range(p, 1, kBefore);
  EXPECT_EQ(header(q).journal_written.load(), kFirstPosition);
  auto c = Consumer::join(q, "early", {.start = StartAt::Oldest});
  EXPECT_FALSE(group(q.info(), "early").reading_journal);
  send_range(p, kBefore + 1, kBefore + 10);
  daemon_ = start_daemon();
  ASSERT_TRUE(daemon_.serves(q));
  ASSERT_EQ(p.wait_durable(20s), Status::Ok);
  expect_range(c, 1, kBefore + 10);
}

}  // namespace
}  // namespace shmq::test
