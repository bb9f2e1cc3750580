// The shared-memory side of a durable queue's group that reads the journal
// (lib/src/durable/group_journal.hpp; docs/journal.md, "Groups that fall
// behind"), deterministically and without shmqd: the test stands in for the
// journal writer's positions (pretend_journaled) and, where the member's
// reader in lib/src/ring/consumer.cpp would act on journal files, for its
// steps on the group's fields. Switches with pending redeliveries, and races
// with members, are in tests/daemon/journal_switch_test.cpp.
#include "durable/group_journal.hpp"

#include "recovery/repair.hpp"
#include "recovery_support.hpp"

namespace shmq::test {
namespace {

using namespace layout;

constexpr std::uint64_t kSmall = 64;  // ring bytes of each message here

std::uint64_t position_of(std::uint64_t seq) { return kFirstPosition + (seq - 1) * kSmall; }

class GroupJournalTest : public RecoveryTest {
 protected:
  static Queue make_queue() {
    QueueOptions o;
    o.capacity = 4096;
    o.max_message = 512;
    o.durable = true;
    return Queue::create("jq", o);
  }

  // Sends sequences first..last of `p`; the journal then holds them, synced.
  static void send(const Queue& q, Producer& p, std::uint64_t first, std::uint64_t last) {
    for (std::uint64_t seq = first; seq <= last; ++seq) {
      ASSERT_EQ(p.try_send(seq, bytes_of("m" + std::to_string(seq))), Status::Ok);
      ASSERT_EQ(p.last_position(), position_of(seq));
    }
    pretend_journaled(q);
  }

  static bool offload(const Queue& q) {
    const detail::SegmentLock lock(map(q));
    return detail::offload_slow_groups(map(q));
  }

  static std::uint64_t pin_ring(const Queue& q, std::uint32_t index = 0) {
    const detail::SegmentLock lock(map(q));
    return detail::pin_ring_at_journal_end(map(q), group(q, index));
  }

  static Message take(Consumer& c) {
    Message m;
    EXPECT_EQ(c.try_receive(m), Status::Ok);
    return m;
  }
};

TEST_F(GroupJournalTest, ASlowGroupSwitchesToTheJournalAndBack) {
  Queue q = make_queue();
  auto c = Consumer::join(q, "g");
  auto p = Producer::attach(q, "p");
  send(q, p, 1, 5);
  const Message m1 = take(c);
  const Message m2 = take(c);
  GroupSlot& g = group(q);
  ASSERT_EQ(g.read.load(), position_of(3));
  ASSERT_EQ(g.released.load(), position_of(1));
  ASSERT_EQ(g.journal_to.load(), 0u) << "a group that never switched";
  ASSERT_EQ(detail::ring_pin(g), position_of(1));
  ASSERT_EQ(header(q).head.load(), position_of(1)) << "the group holds the ring's oldest record";

  // To the journal: X is where the read stopped; the two records members
  // hold stay in the ring part [released, X).
  const std::uint64_t x = position_of(3);
  EXPECT_TRUE(offload(q));
  EXPECT_EQ(g.read.load(), x | kReadClosed) << "no member takes a ring record any more";
  EXPECT_EQ(code_at(q, x), kClosed);
  EXPECT_EQ(g.journal_from.load(), x);
  EXPECT_EQ(g.journal_to.load(), kNoPosition) << "P open: the reader has not caught up";
  EXPECT_EQ(g.journal_read.load(), x);
  EXPECT_EQ(g.journal_acked.load(), x);
  EXPECT_EQ(g.journal_redeliver_below.load(), 0u) << "nothing below X moved: nothing comes flagged";
  EXPECT_EQ(g.journal_reader.load(), 0u);
  EXPECT_EQ(g.pending_redelivery.load(), 0u);
  EXPECT_EQ(header(q).groups_to_journal.load(), 1u);
  EXPECT_EQ(detail::ring_pin(g), position_of(1)) << "the records members hold keep their ring bytes";
  EXPECT_FALSE(detail::in_journal_part(g, position_of(1)));
  EXPECT_TRUE(detail::in_journal_part(g, x));
  EXPECT_EQ(detail::past_journal_part(g, position_of(1)), position_of(1));
  EXPECT_EQ(detail::past_journal_part(g, x), kNoPosition);
  EXPECT_FALSE(offload(q)) << "already reading the journal";
  EXPECT_EQ(header(q).groups_to_journal.load(), 1u);

  // The acks release the ring part; then the group pins no ring record.
  ASSERT_EQ(c.ack(m1), Status::Ok);
  ASSERT_EQ(c.ack(m2), Status::Ok);
  EXPECT_EQ(g.released.load(), x);
  EXPECT_EQ(detail::ring_pin(g), kNoPosition);

  // The reader (consumer.cpp) hands out 3..5 from the journal and they are
  // acked; caught up with what is synced, it pins the ring at the journal's end.
  const std::uint64_t end = header(q).journal_written.load();
  ASSERT_EQ(end, position_of(6));
  g.journal_read.store(end);
  g.journal_acked.store(end);
  const std::uint64_t epoch = header(q).groups_epoch.load();
  EXPECT_EQ(pin_ring(q), end);
  EXPECT_EQ(g.journal_to.load(), end) << "P";
  EXPECT_EQ(header(q).groups_epoch.load(), epoch + 2) << "inside a groups_epoch window, closed again";
  EXPECT_EQ(detail::ring_pin(g), end) << "the ring keeps the group's records from P";
  EXPECT_EQ(detail::past_journal_part(g, x), end);

  // ... and opens the ring read at P (finish_journal_part).
  g.read.store(end);
  send(q, p, 6, 6);
  // As a producer that needs room raises it: the group holds the oldest record.
  ASSERT_TRUE(at_or_after(g.released.load(), header(q).head.load()));
  header(q).head.store(g.released.load());
  EXPECT_FALSE(offload(q)) << "one journal part at a time: [X, P) is not yet released";

  // Acks of the journal part release it, lock-free.
  std::uint64_t released = g.released.load();
  EXPECT_TRUE(detail::release_journal_acked(g, released));
  EXPECT_EQ(released, end);
  EXPECT_EQ(g.released.load(), end);
  EXPECT_FALSE(detail::release_journal_acked(g, released)) << "nothing more to release";
  EXPECT_EQ(detail::ring_pin(g), end);

  // Back on the ring.
  const Message m6 = take(c);
  EXPECT_EQ(m6.sequence, 6u);
  EXPECT_EQ(m6.position, end);
  EXPECT_FALSE(m6.redelivered);
  ASSERT_EQ(c.ack(m6), Status::Ok);
  EXPECT_EQ(g.read.load(), position_of(7));
  EXPECT_EQ(g.released.load(), position_of(7));
  EXPECT_EQ(detail::ring_pin(g), position_of(7));
}

// Only a group that holds the ring's oldest record and is slower than the
// disk switches.
TEST_F(GroupJournalTest, OnlyTheGroupHoldingTheRingSwitches) {
  Queue q = make_queue();
  auto slow = Consumer::join(q, "slow");
  auto fast = Consumer::join(q, "fast");
  auto done = Consumer::join(q, "done");
  auto p = Producer::attach(q, "p");
  send(q, p, 1, 3);
  ASSERT_EQ(fast.ack(take(fast)), Status::Ok);  // released past the oldest record
  for (int i = 0; i < 3; ++i) (void)take(done);  // took all that is synced: waits for the disk, not the other way
  EXPECT_TRUE(offload(q));
  EXPECT_TRUE(detail::read_closed(group(q, 0).read.load()));
  EXPECT_EQ(group(q, 0).journal_from.load(), position_of(1));
  EXPECT_EQ(detail::ring_pin(group(q, 0)), kNoPosition) << "nothing taken: no ring part";
  for (std::uint32_t other : {1u, 2u}) {
    EXPECT_FALSE(detail::read_closed(group(q, other).read.load())) << other;
    EXPECT_EQ(group(q, other).journal_to.load(), 0u) << other;
  }
  EXPECT_EQ(header(q).groups_to_journal.load(), 1u);
}

// A new group (or a rebuilt one) that starts in the journal.
TEST_F(GroupJournalTest, AGroupStartingInTheJournalPinsNothing) {
  GroupSlot g{};
  const std::uint64_t from = position_of(10);
  detail::start_in_journal(g, from, position_of(4));
  EXPECT_EQ(g.read.load(), from | kReadClosed);
  EXPECT_EQ(g.released.load(), from);
  EXPECT_EQ(g.journal_from.load(), from);
  EXPECT_EQ(g.journal_to.load(), kNoPosition);
  EXPECT_EQ(g.journal_read.load(), from);
  EXPECT_EQ(g.journal_acked.load(), from);
  EXPECT_EQ(g.journal_redeliver_below.load(), position_of(4));
  EXPECT_EQ(g.journal_reader.load(), 0u);
  EXPECT_EQ(detail::ring_pin(g), kNoPosition);
  EXPECT_TRUE(detail::in_journal_part(g, from));
}

// A switch whose maker died after closing the read (and perhaps the record
// at it) is finished by the next lock holder, at the same X.
TEST_F(GroupJournalTest, ASwitchLeftHalfMadeIsSettled) {
  for (const bool word_closed : {false, true}) {
    SCOPED_TRACE(word_closed ? "the record at X closed" : "only the read closed");
    Queue::remove("jq");
    Queue q = make_queue();
    auto c = Consumer::join(q, "g");
    auto p = Producer::attach(q, "p");
    send(q, p, 1, 4);
    const Message m1 = take(c);
    GroupSlot& g = group(q);
    const std::uint64_t x = position_of(2);
    {
      const detail::SegmentLock lock(map(q));
      detail::settle_journal_switch(map(q), 0);
    }
    EXPECT_EQ(header(q).groups_to_journal.load(), 0u) << "no switch under way: nothing to settle";
    g.journal_to.store(0);
    g.read.store(x | kReadClosed);
    if (word_closed) map(q).state_word(0, x).store(make_state(x, kClosed));
    {
      const detail::SegmentLock lock(map(q));
      detail::settle_journal_switch(map(q), 0);
    }
    EXPECT_EQ(g.read.load(), x | kReadClosed);
    EXPECT_EQ(code_at(q, x), kClosed);
    EXPECT_EQ(g.journal_from.load(), x);
    EXPECT_EQ(g.journal_to.load(), kNoPosition);
    EXPECT_EQ(g.journal_read.load(), x);
    EXPECT_EQ(g.journal_acked.load(), x);
    EXPECT_EQ(header(q).groups_to_journal.load(), 1u);
    EXPECT_EQ(detail::ring_pin(g), position_of(1));
    ASSERT_EQ(c.ack(m1), Status::Ok);
    EXPECT_EQ(detail::ring_pin(g), kNoPosition);
  }
}

// A member that dies holding the journal lease: what it read and did not ack
// is read again, flagged; what it held in the ring part goes back to pending.
TEST_F(GroupJournalTest, ADeadReadersJournalRecordsAreReadAgain) {
  Queue q = make_queue();
  // Made before anything is journaled, so it starts in the ring (made after,
  // it would start in the journal: ring/group.cpp, create_group).
  Consumer::join(q, "g");
  {
    auto p = Producer::attach(q, "p");
    send(q, p, 1, 6);
  }
  const pid_t child = spawn([] {
    auto c = Consumer::join(Queue::open("jq"), "g");
    Message m;
    if (c.index() != 0 || c.try_receive(m) != Status::Ok || c.try_receive(m) != Status::Ok) return 1;
    ::_exit(0);  // dies holding 1 and 2
  });
  ASSERT_EQ(wait_exit(child), 0);
  GroupSlot& g = group(q);
  ASSERT_TRUE(offload(q));
  const std::uint64_t x = position_of(3);
  ASSERT_EQ(g.journal_from.load(), x);
  // Before dying it held the lease, had read 3..5 from the journal, acked 3.
  g.journal_reader.store(1);
  g.journal_read.store(position_of(6));
  g.journal_acked.store(position_of(4));

  // Another member's leaving does not touch the lease.
  detail::drop_journal_reader(g, 5);
  EXPECT_EQ(g.journal_reader.load(), 1u);
  EXPECT_EQ(g.journal_read.load(), position_of(6));

  {
    const detail::SegmentLock lock(map(q));
    EXPECT_EQ(detail::release_consumer(map(q), 0, 0), 2u) << "the ring part: 1 and 2";
  }
  EXPECT_EQ(code_at(q, position_of(1)), kPendingRedelivery);
  EXPECT_EQ(code_at(q, position_of(2)), kPendingRedelivery);
  EXPECT_EQ(g.pending_redelivery.load(), 2u);
  EXPECT_EQ(g.journal_reader.load(), 0u) << "the lease is free";
  EXPECT_EQ(g.journal_read.load(), position_of(4)) << "read again from the oldest unacked";
  EXPECT_EQ(g.journal_acked.load(), position_of(4));
  EXPECT_EQ(g.journal_redeliver_below.load(), position_of(6)) << "4 and 5 come flagged";
  EXPECT_EQ(g.journal_from.load(), x);
  EXPECT_EQ(g.journal_to.load(), kNoPosition);
  EXPECT_EQ(g.read.load(), x | kReadClosed);
  EXPECT_EQ(map(q).consumer(0, 0).state.load(), static_cast<std::uint32_t>(SlotState::Free));
}

}  // namespace
}  // namespace shmq::test
