// A durable queue's group whose pending redeliveries nobody takes (its only
// member died holding messages, or a rebuild owes it what it had not acked)
// switches to the journal like any slow group: those redeliveries move into
// its journal part, and it never stalls the producers (group_journal.cpp).
//
// The switch itself, deterministically (no shmqd: the test stands in for its
// journal positions), then real shmqd runs: after a rebuild, and after a
// kill -9 of a group's only member.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "daemon_support.hpp"
#include "durable/group_journal.hpp"
#include "recovery/repair.hpp"

namespace shmq::test {
namespace {

using namespace layout;


Queue make_queue() {
  QueueOptions o;
  o.capacity = kRing;
  o.max_message = 256;
  o.durable = true;
  return Queue::create("sq", o);
}

class JournalSwitchTest : public DaemonTest {
 protected:
  static GroupSlot& slot(const Queue& q, std::uint32_t group = 0) { return detail::mapping_of(q)->groups[group]; }
  static std::uint8_t code_at(const Queue& q, std::uint64_t position, std::uint32_t group = 0) {
    const std::uint64_t word = detail::mapping_of(q)->state_word(group, position).load();
    EXPECT_TRUE(state_is_for(word, position)) << "state word not for position " << position;
    return state_code(word);
  }

  // Sends sequences [first, last], each finding room within 5 s (a stalled
  // ring times out), and confirms them durable every 64.
  static void send_range(Producer& p, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      ASSERT_EQ(p.send(seq, bytes_of(payload_of(seq)), 5s), Status::Ok) << "send of " << seq << " stalled";
      if (seq % 64 == 0 || seq == last) {
        ASSERT_EQ(p.wait_durable(20s), Status::Ok) << seq;
      }
    }
  }

  // Receives and acks sequences [first, last] of producer 0, once each, in
  // order, flagged as `redelivered` says.
  static void expect_range(Consumer& c, std::uint64_t first, std::uint64_t last, bool redelivered) {
    Message m;
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      ASSERT_EQ(c.receive(m, 20s), Status::Ok) << "waiting for " << seq << ": " << c.journal_error();
      ASSERT_EQ(m.sequence, seq);
      ASSERT_EQ(m.text(), payload_of(seq));
      ASSERT_EQ(m.redelivered, redelivered) << "sequence " << seq;
      ASSERT_EQ(c.ack(m), Status::Ok);
    }
  }

  static void expect_nothing_more(Consumer& c) {
    Message m;
    EXPECT_EQ(c.receive(m, 100ms), Status::Timeout) << "an extra message, sequence " << m.sequence;
  }

  // Without shmqd: everything committed counts as journaled and synced.
  static void pretend_journaled(const Queue& q) {
    QueueHeader& h = *detail::mapping_of(q)->header;
    h.journal_written.store(h.tail.load());
    h.journal_synced.store(h.tail.load());
  }

  // A member of group "g" in a child process that takes `take` messages,
  // acks those whose index (from 0) `ack` says, and dies without leaving.
  template <class Ack>
  static void member_dies_holding(std::uint64_t take, Ack&& ack) {
    const pid_t child = spawn([&] {
      auto c = Consumer::join(Queue::open("sq"), "g", {.prefetch = 1024});
      for (std::uint64_t i = 0; i < take; ++i) {
        Message m;
        if (c.try_receive(m) != Status::Ok) return 1;
        if (ack(i) && c.ack(m) != Status::Ok) return 2;
      }
      ::_exit(0);  // as kill -9: no destructor leaves the group
    });
    ASSERT_EQ(wait_exit(child), 0);
  }

  // As a producer that needs room does: head up to the group's released.
  static void raise_head(const Queue& q) { detail::mapping_of(q)->header->head.store(slot(q).released.load()); }

  static bool offload(const Queue& q) {
    detail::SegmentLock lock(*detail::mapping_of(q));
    return detail::offload_slow_groups(*detail::mapping_of(q));
  }

  std::vector<std::uint64_t> positions_;  // of each sequence, [0] unused
  void send_and_record(Queue& q, std::uint64_t n) {
    auto p = Producer::attach(q, "p");
    positions_.assign(1, 0);
    for (std::uint64_t seq = 1; seq <= n; ++seq) {
      ASSERT_EQ(p.try_send(seq, bytes_of(payload_of(seq))), Status::Ok);
      positions_.push_back(p.last_position());
    }
    pretend_journaled(q);
  }
};

// The dead member's records, all pending, move into the journal part: the
// group pins nothing. Those it acked stay acked.
TEST_F(JournalSwitchTest, PendingRedeliveriesMoveIntoTheJournalPart) {
  Queue q = make_queue();
  Consumer::join(q, "g");
  send_and_record(q, 10);
  member_dies_holding(10, [](std::uint64_t i) { return i < 3; });  // acks 1..3, holds 4..10
  {
    detail::SegmentLock lock(*detail::mapping_of(q));
    detail::recover_dead_clients(*detail::mapping_of(q));  // what shmqd runs on the death
  }
  GroupSlot& g = slot(q);
  ASSERT_EQ(g.pending_redelivery.load(), 7u);
  ASSERT_EQ(g.released.load(), positions_[4]);
  raise_head(q);
  ASSERT_TRUE(offload(q));
  EXPECT_TRUE(detail::read_closed(g.read.load()));
  EXPECT_EQ(g.journal_from.load(), positions_[4]) << "the pending records stayed in the ring part";
  EXPECT_EQ(g.journal_read.load(), positions_[4]);
  EXPECT_EQ(g.journal_redeliver_below.load(), detail::mapping_of(q)->header->tail.load());
  EXPECT_EQ(g.pending_redelivery.load(), 0u);
  EXPECT_EQ(detail::ring_pin(g), kNoPosition);
  for (std::uint64_t seq = 4; seq <= 10; ++seq) EXPECT_EQ(code_at(q, positions_[seq]), kClosed) << seq;
}

// A member that took one redelivery holds it in the ring part; the records
// above it move; its ack then releases the group into its journal part.
TEST_F(JournalSwitchTest, ARedeliveryAMemberHoldsStaysInTheRingPart) {
  Queue q = make_queue();
  Consumer::join(q, "g");
  send_and_record(q, 10);
  member_dies_holding(10, [](std::uint64_t) { return false; });
  auto c = Consumer::join(q, "g");  // reaps the dead member: 10 pending
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  ASSERT_EQ(m.sequence, 1u);
  ASSERT_TRUE(m.redelivered);
  GroupSlot& g = slot(q);
  ASSERT_TRUE(offload(q));
  EXPECT_EQ(g.journal_from.load(), positions_[2]);
  EXPECT_EQ(g.pending_redelivery.load(), 0u);
  EXPECT_EQ(detail::ring_pin(g), positions_[1]) << "the held record must keep its ring bytes";
  EXPECT_EQ(m.text(), payload_of(1));
  ASSERT_EQ(c.ack(m), Status::Ok);
  EXPECT_EQ(g.released.load(), positions_[2]);
  EXPECT_EQ(detail::ring_pin(g), kNoPosition);
}

// Acks out of order: a pending record below an acked one stays in the ring
// part (nothing acked is read again from the journal); only the run above
// the last acked record moves.
TEST_F(JournalSwitchTest, AnAckedRecordEndsTheMove) {
  Queue q = make_queue();
  Consumer::join(q, "g");
  send_and_record(q, 10);
  member_dies_holding(10, [](std::uint64_t i) { return i == 4; });  // acks 5 only
  {
    detail::SegmentLock lock(*detail::mapping_of(q));
    detail::recover_dead_clients(*detail::mapping_of(q));
  }
  GroupSlot& g = slot(q);
  ASSERT_EQ(g.pending_redelivery.load(), 9u);
  ASSERT_TRUE(offload(q));
  EXPECT_EQ(g.journal_from.load(), positions_[6]);
  EXPECT_EQ(g.pending_redelivery.load(), 4u);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) EXPECT_EQ(code_at(q, positions_[seq]), kPendingRedelivery) << seq;
  EXPECT_EQ(code_at(q, positions_[5]), kAcked);
  for (std::uint64_t seq = 6; seq <= 10; ++seq) EXPECT_EQ(code_at(q, positions_[seq]), kClosed) << seq;
  EXPECT_EQ(detail::ring_pin(g), positions_[1]);
  // A member takes the four from the ring, flagged, and nothing acked.
  auto c = Consumer::join(q, "g", {.prefetch = 64});
  Message m;
  for (std::uint64_t seq : {1, 2, 3, 4}) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, seq);
    EXPECT_TRUE(m.redelivered);
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  EXPECT_EQ(g.released.load(), positions_[6]);
  EXPECT_EQ(detail::ring_pin(g), kNoPosition);
}

// A switch whose maker died half-way (after closing some records, before
// publishing X) is finished by the next one to take the lock, to the same
// end, with the count of pending redeliveries exact.
TEST_F(JournalSwitchTest, ASwitchLeftHalfMadeIsFinishedAlike) {
  Queue q = make_queue();
  Consumer::join(q, "g");
  send_and_record(q, 10);
  member_dies_holding(10, [](std::uint64_t i) { return i == 4; });  // acks 5 only
  {
    detail::SegmentLock lock(*detail::mapping_of(q));
    detail::recover_dead_clients(*detail::mapping_of(q));
  }
  GroupSlot& g = slot(q);
  const auto& m = *detail::mapping_of(q);
  // What a maker leaves after closing the ring and sequences 1, 2, 7.
  const std::uint64_t x0 = g.read.load();
  g.journal_to.store(0);
  g.read.store(x0 | kReadClosed);
  m.state_word(0, x0).store(make_state(x0, kClosed));
  for (std::uint64_t seq : {1, 2, 7}) {
    m.state_word(0, positions_[seq]).store(make_state(positions_[seq], kClosed));
    g.pending_redelivery.fetch_sub(1);
  }
  {
    detail::SegmentLock lock(m);
    detail::recover_dead_clients(m);  // what shmqd runs; Consumer::join settles too
  }
  EXPECT_EQ(g.journal_to.load(), kNoPosition);
  EXPECT_EQ(g.journal_from.load(), positions_[6]);
  EXPECT_EQ(g.journal_redeliver_below.load(), x0);
  EXPECT_EQ(g.pending_redelivery.load(), 4u);
  for (std::uint64_t seq = 1; seq <= 4; ++seq) EXPECT_EQ(code_at(q, positions_[seq]), kPendingRedelivery) << seq;
  for (std::uint64_t seq = 6; seq <= 10; ++seq) EXPECT_EQ(code_at(q, positions_[seq]), kClosed) << seq;
}

// Members race the switch for pending redeliveries: each record ends either
// taken by a member (in the ring part, below X) or closed in the journal
// part, never both, never neither; the count matches the words left pending.
TEST_F(JournalSwitchTest, MembersRacingTheSwitchTakeEachRecordOnceOrLeaveIt) {
  constexpr std::uint64_t kRecords = 200;
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    Queue::remove("sq");
    Queue q = make_queue();
    Consumer::join(q, "g");
    send_and_record(q, kRecords);
    member_dies_holding(kRecords, [](std::uint64_t) { return false; });
    auto c = Consumer::join(q, "g", {.prefetch = 4096});  // reaps: all pending
    GroupSlot& g = slot(q);
    ASSERT_EQ(g.pending_redelivery.load(), kRecords);
    std::vector<std::uint64_t> taken;
    std::atomic<std::uint64_t> count{0};
    std::atomic<bool> done{false};
    std::thread member([&] {
      Message m;
      for (;;) {
        const bool finished = done.load();  // then one more pass takes what the ring part kept
        while (c.try_receive(m) == Status::Ok) {
          taken.push_back(m.sequence);
          count.store(taken.size());
        }
        if (finished) break;
      }
    });
    // The switch starts while the member is taking, a little later each round.
    while (count.load() < static_cast<std::uint64_t>(round) * 15) {
    }
    const bool switched = offload(q);
    done.store(true);
    member.join();
    if (!switched) {  // the member took them all first: nothing to move
      EXPECT_EQ(taken.size(), kRecords);
      continue;
    }
    const std::uint64_t x = g.journal_from.load();
    std::uint64_t closed = 0;
    std::vector<bool> took(kRecords + 1);
    for (std::uint64_t seq : taken) {
      ASSERT_FALSE(took[seq]) << seq << " taken twice";
      took[seq] = true;
      EXPECT_LT(positions_[seq], x) << seq << " was taken, yet lies in the journal part";
    }
    for (std::uint64_t seq = 1; seq <= kRecords; ++seq) {
      const std::uint8_t code = code_at(q, positions_[seq]);
      if (positions_[seq] >= x) {
        EXPECT_EQ(code, kClosed) << seq;
        ++closed;
      } else {
        EXPECT_TRUE(took[seq]) << seq << " left in the ring part, untaken";
      }
    }
    EXPECT_EQ(g.pending_redelivery.load(), 0u);
    EXPECT_EQ(taken.size() + closed, kRecords);
  }
}

// ---- with shmqd -------------------------------------------------------------

// After a power loss the rebuild owes group "g" what it had not acked, as
// pending redeliveries in the ring. No member runs: durable producers go on
// for rings regardless, and the group, when a member comes, gets everything
// once, in order, the owed ones flagged.
TEST_F(JournalSwitchTest, ARebuiltGroupWithoutAMemberNeverStallsDurableProducers) {
  const std::uint64_t owed = kPerRing / 2;
  const std::uint64_t total = owed + 4 * kPerRing;
  {
    Queue q = make_queue();
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    Consumer::join(q, "g");
    auto p = Producer::attach(q, "p");
    send_range(p, 1, owed);
    std::this_thread::sleep_for(300ms);  // a checkpoint names the group
    d.kill9();
  }
  ASSERT_TRUE(Queue::remove("sq"));  // the power loss takes shared memory
  Daemon d = start_daemon();
  ASSERT_TRUE(eventually([] { return !Queue::list().empty(); })) << "not rebuilt";
  Queue q = Queue::open("sq");
  ASSERT_TRUE(d.serves(q));
  ASSERT_EQ(slot(q).pending_redelivery.load(), owed);
  {
    auto p = Producer::attach(q, "p");
    ASSERT_EQ(p.last_sequence(), owed);
    send_range(p, owed + 1, total);
  }
  EXPECT_GE(q.info().groups_to_journal, 1u);
  auto c = Consumer::join(q, "g");
  expect_range(c, 1, owed, /*redelivered=*/true);
  expect_range(c, owed + 1, total, /*redelivered=*/false);
  expect_nothing_more(c);
}

// A running durable queue: the only member of group "g" is killed holding
// messages (it acked the first few). Producers go on for rings; the group
// later gets the held ones flagged, then the rest, and nothing it acked.
TEST_F(JournalSwitchTest, AGroupWhoseOnlyMemberIsKilledNeverStallsDurableProducers) {
  Queue q = make_queue();
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  Consumer::join(q, "g");
  auto p = Producer::attach(q, "p");
  send_range(p, 1, 20);
  Pipe holding;
  const pid_t member = spawn_holding_consumer("sq", "g", 10, 3, holding);
  ASSERT_TRUE(holding.wait());
  ::kill(member, SIGKILL);
  wait_exit(member);
  ASSERT_TRUE(eventually([&] { return slot(q).pending_redelivery.load() == 7; })) << "shmqd did not reap it";
  const std::uint64_t total = 20 + 4 * kPerRing;
  send_range(p, 21, total);
  EXPECT_GE(q.info().groups_to_journal, 1u);
  auto c = Consumer::join(q, "g");
  expect_range(c, 4, 10, /*redelivered=*/true);
  expect_range(c, 11, total, /*redelivered=*/false);
  expect_nothing_more(c);
}

}  // namespace
}  // namespace shmq::test
