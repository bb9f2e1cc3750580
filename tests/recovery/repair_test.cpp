// The repairs after a dead client (lib/src/recovery/repair.hpp), one scenario
// at a time and deterministically: a child process claims or takes records
// and exits (so its recorded pid is provably dead), then the test calls the
// repair itself and checks every field it must change, and those it must not
// (docs/recovery.md, "The repair, step by step").
#include "recovery/repair.hpp"

#include <cstring>
#include <string>

#include "recovery_support.hpp"

namespace shmq::test {
namespace {

using namespace layout;
using detail::RepairResult;

constexpr std::uint64_t kRing = 4096;
constexpr std::uint64_t kSmall = 64;          // ring bytes of a message of up to 32 bytes
constexpr std::size_t kLargePayload = 100;    // takes 192 ring bytes
constexpr std::uint64_t kLarge = record_bytes(kLargePayload);
static_assert(kLarge == 192);

constexpr std::uint32_t attached = static_cast<std::uint32_t>(SlotState::Attached);

class RepairTest : public RecoveryTest {
 protected:
  static Queue make_queue() {
    QueueOptions o;
    o.capacity = kRing;
    o.max_message = 512;
    return Queue::create("rq", o);
  }

  // A producer `name` in a child process: sends sequences 1..committed, then
  // claims sequence committed + 1 (`size` payload bytes) and exits without
  // committing it, as one killed between claim and commit.
  static void producer_dies_claiming(std::uint64_t committed, std::size_t size, const std::string& name = "dead") {
    const pid_t child = spawn([&] {
      auto p = Producer::attach(Queue::open("rq"), name);
      for (std::uint64_t seq = 1; seq <= committed; ++seq) {
        if (p.try_send(seq, bytes_of("sent")) != Status::Ok) return 1;
      }
      if (p.try_claim(committed + 1, size) != Status::Ok) return 2;
      ::_exit(0);  // as kill -9: no destructor detaches
    });
    ASSERT_EQ(wait_exit(child), 0);
  }

  static RepairResult repair(const Queue& q, std::uint64_t at) {
    const detail::SegmentLock lock(map(q));
    return detail::repair_hole(map(q), at);
  }

  static RecordFields record_at(const Queue& q, std::uint64_t position) {
    RecordFields h;
    std::memcpy(&h, &map(q).record(position)->info, sizeof h);
    return h;
  }

  static void expect_skipped(const Queue& q, std::uint64_t at, std::uint64_t bytes) {
    const RecordFields h = record_at(q, at);
    EXPECT_EQ(h.type, static_cast<std::uint16_t>(RecordType::Skipped));
    EXPECT_EQ(h.length, bytes) << "a skipped record covers the claim, header included";
    EXPECT_TRUE(map(q).committed(at)) << "committed, so every group steps over it";
  }

  static void expect_nothing_more(Consumer& c) {
    Message m;
    EXPECT_EQ(c.try_receive(m), Status::Empty) << "an extra message, sequence " << m.sequence;
  }
};

// ---- repair_hole ------------------------------------------------------------

TEST_F(RepairTest, ADeadProducersClaimAtTheTailBecomesASkippedRecord) {
  Queue q = make_queue();
  auto c = Consumer::join(q, "g");
  producer_dies_claiming(1, kLargePayload);
  const std::uint64_t at = kFirstPosition + kSmall;
  ProducerSlot& dead = producer_named(q, "dead");
  ASSERT_EQ(header(q).tail.load(), at + kLarge) << "the claim is the last thing in the ring";
  ASSERT_EQ(dead.state.load(), attached) << "the entry of a killed producer stays attached";
  ASSERT_EQ(dead.claim_pos.load(), at);
  ASSERT_EQ(dead.claim_bytes.load(), kLarge);
  ASSERT_EQ(dead.claim_seq.load(), 2u);
  ASSERT_EQ(dead.claim_prev_seq.load(), 1u);
  ASSERT_EQ(dead.last_seq.load(), 1u);
  ASSERT_FALSE(map(q).committed(at));

  EXPECT_EQ(repair(q, at), RepairResult::Repaired);
  expect_skipped(q, at, kLarge);
  EXPECT_EQ(header(q).holes_skipped.load(), 1u);
  EXPECT_EQ(header(q).tail.load(), at + kLarge);
  EXPECT_EQ(dead.last_seq.load(), 1u) << "sequence 2 was never counted: nothing to take back";
  EXPECT_EQ(dead.state.load(), attached) << "detaching is reap_producer's job";
  EXPECT_EQ(dead.claim_pos.load(), at);

  EXPECT_EQ(repair(q, at), RepairResult::NotAHole) << "a repaired hole is committed";
  EXPECT_EQ(header(q).holes_skipped.load(), 1u) << "counted once";

  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 1u);
  ASSERT_EQ(c.ack(m), Status::Ok);
  expect_nothing_more(c);
  EXPECT_EQ(group(q).read.load(), at + kLarge);
  EXPECT_EQ(group(q).released.load(), at + kLarge) << "a skipped record is acked at once";
}

TEST_F(RepairTest, AHoleBeforeACommittedRecordCoversExactlyTheClaim) {
  Queue q = make_queue();
  auto c = Consumer::join(q, "g");
  producer_dies_claiming(0, kLargePayload);
  auto live = Producer::attach(q, "live");
  ASSERT_EQ(live.try_send(1, bytes_of("after the hole")), Status::Ok);
  const std::uint64_t at = kFirstPosition;
  ASSERT_EQ(live.last_position(), at + kLarge);

  EXPECT_EQ(repair(q, at), RepairResult::Repaired);
  expect_skipped(q, at, kLarge);
  EXPECT_EQ(header(q).holes_skipped.load(), 1u);
  EXPECT_EQ(repair(q, at + kLarge), RepairResult::NotAHole) << "the live producer's record is committed";

  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.position, at + kLarge);
  EXPECT_EQ(m.text(), "after the hole");
  expect_nothing_more(c);
}

// A producer killed inside commit(), after counting the sequence as sent and
// before its commit word: the repair takes the count back, so a re-attach
// resends the sequence instead of finding it Duplicate.
TEST_F(RepairTest, ASequenceCountedBeforeTheDeathIsTakenBack) {
  Queue q = make_queue();
  producer_dies_claiming(1, 4);
  ProducerSlot& dead = producer_named(q, "dead");
  dead.last_seq.store(2);  // commit() stores last_seq before the commit word

  EXPECT_EQ(repair(q, kFirstPosition + kSmall), RepairResult::Repaired);
  EXPECT_EQ(dead.last_seq.load(), 1u) << "rolled back to claim_prev_seq";
  expect_skipped(q, kFirstPosition + kSmall, kSmall);
}

// A hole is repaired only when every producer whose announcement covers it
// is dead: a live one may be its owner, or a peer about to retry its claim.
TEST_F(RepairTest, AClaimWhoseProducerLivesIsLeftAlone) {
  Queue q = make_queue();
  auto c = Consumer::join(q, "g");
  auto live = Producer::attach(q, "live");
  ASSERT_EQ(live.try_claim(1, 4), Status::Ok);
  const std::uint64_t at = kFirstPosition;

  EXPECT_EQ(repair(q, at), RepairResult::OwnerAlive);
  EXPECT_FALSE(map(q).committed(at));
  EXPECT_EQ(record_at(q, at).type, 0u) << "nothing written into the claim";
  EXPECT_EQ(header(q).holes_skipped.load(), 0u);
  {
    const detail::SegmentLock lock(map(q));
    const detail::RecoveryCounts counts = detail::recover_dead_clients(map(q));
    EXPECT_EQ(counts.holes_repaired, 0u);
    EXPECT_EQ(counts.producers_reaped, 0u);
  }
  std::memcpy(live.claimed().data(), "mine", 4);
  EXPECT_EQ(live.commit(), at);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.text(), "mine");
}

TEST_F(RepairTest, ALivePeersOverlappingAnnouncementDefersTheRepair) {
  Queue q = make_queue();
  producer_dies_claiming(0, 4);
  const std::uint64_t at = kFirstPosition;
  auto peer = Producer::attach(q, "peer");
  ProducerSlot& announcer = producer_named(q, "peer");
  // The peer announced a claim at the same tail and has not yet seen its CAS fail.
  announcer.claim_bytes.store(kSmall);
  announcer.claim_pos.store(at);
  EXPECT_EQ(repair(q, at), RepairResult::OwnerAlive);
  EXPECT_EQ(header(q).holes_skipped.load(), 0u);
  announcer.claim_pos.store(kNoPosition);  // its retry moved on
  EXPECT_EQ(repair(q, at), RepairResult::Repaired);
  expect_skipped(q, at, kSmall);
}

TEST_F(RepairTest, NothingClaimedOrUnexplainedIsNotRepaired) {
  Queue q = make_queue();
  auto live = Producer::attach(q, "live");
  ASSERT_EQ(live.try_send(1, bytes_of("one")), Status::Ok);
  const std::uint64_t tail = kFirstPosition + kSmall;
  EXPECT_EQ(repair(q, kFirstPosition), RepairResult::NotAHole) << "committed";
  EXPECT_EQ(repair(q, tail), RepairResult::NotAHole) << "nothing claimed at the tail yet";
  EXPECT_EQ(repair(q, kFirstPosition + 1), RepairResult::Unprovable) << "never a header off a record boundary";
  // A tail moved past a claim nobody announced: corruption, left alone.
  header(q).tail.store(tail + kSmall);
  EXPECT_EQ(repair(q, tail), RepairResult::Unprovable);
  EXPECT_FALSE(map(q).committed(tail));
  EXPECT_EQ(header(q).holes_skipped.load(), 0u);
}

// A claim across the ring's end: its padding (committed by the claim itself)
// stays padding, and only the record at the ring's start becomes skipped.
TEST_F(RepairTest, AClaimAcrossTheRingsEndKeepsItsPaddingAndSkipsItsRecord) {
  Queue q = make_queue();
  auto c = Consumer::join(q, "g");
  auto live = Producer::attach(q, "live");
  for (std::uint64_t seq = 1; header(q).tail.load() != kRing - kSmall; ++seq) {
    ASSERT_EQ(live.try_send(seq, bytes_of("fill")), Status::Ok);
    Message m;
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  producer_dies_claiming(0, kLargePayload);
  const std::uint64_t pad_at = kRing - kSmall;
  const std::uint64_t at = kRing;  // the ring's start, one lap on
  ProducerSlot& dead = producer_named(q, "dead");
  ASSERT_EQ(dead.claim_pos.load(), pad_at) << "the announcement starts at the padding";
  ASSERT_EQ(dead.claim_bytes.load(), kLarge) << "padding excluded";
  ASSERT_EQ(header(q).tail.load(), at + kLarge);
  const RecordFields pad = record_at(q, pad_at);
  ASSERT_EQ(pad.type, static_cast<std::uint16_t>(RecordType::Padding));
  ASSERT_EQ(pad.length, kSmall);

  EXPECT_EQ(repair(q, pad_at), RepairResult::NotAHole) << "the padding is committed";
  EXPECT_EQ(repair(q, at), RepairResult::Repaired);
  expect_skipped(q, at, kLarge);
  EXPECT_EQ(record_at(q, pad_at).type, static_cast<std::uint16_t>(RecordType::Padding));
  EXPECT_EQ(header(q).holes_skipped.load(), 1u);
  expect_nothing_more(c);
  EXPECT_EQ(group(q).released.load(), at + kLarge);
}

// ---- reap_producer ----------------------------------------------------------

TEST_F(RepairTest, ReapingADeadProducerRepairsItsClaimAndKeepsItsName) {
  Queue q = make_queue();
  producer_dies_claiming(3, 4);
  ProducerSlot& dead = producer_named(q, "dead");
  const auto index = static_cast<std::uint32_t>(&dead - map(q).producers);
  {
    const detail::SegmentLock lock(map(q));
    EXPECT_TRUE(detail::reap_producer(map(q), index));
  }
  expect_skipped(q, kFirstPosition + 3 * kSmall, kSmall);
  EXPECT_EQ(dead.state.load(), static_cast<std::uint32_t>(SlotState::Detached));
  EXPECT_EQ(dead.pid.load(), 0);
  EXPECT_EQ(dead.claim_pos.load(), kNoPosition);
  EXPECT_EQ(dead.last_seq.load(), 3u);
  EXPECT_STREQ(dead.name, "dead");
  EXPECT_EQ(header(q).clients_reaped.load(), 1u);
  EXPECT_EQ(header(q).holes_skipped.load(), 1u);
  auto again = Producer::attach(q, "dead");
  EXPECT_EQ(again.last_sequence(), 3u);
  EXPECT_EQ(again.try_send(4, bytes_of("resent")), Status::Ok);
}

// ---- release_consumer -------------------------------------------------------

class ReleaseConsumerTest : public RepairTest {
 protected:
  // Sends sequences 1..n of producer "p" (4-byte payloads, one chunk each).
  static void send(Queue& q, std::uint64_t n) {
    auto p = Producer::attach(q, "p");
    for (std::uint64_t seq = 1; seq <= n; ++seq) {
      ASSERT_EQ(p.try_send(seq, bytes_of("m" + std::to_string(seq))), Status::Ok);
    }
  }
  static std::uint64_t position_of(std::uint64_t seq) { return kFirstPosition + (seq - 1) * kSmall; }

  // The first member of group "g" (index 0 of group 0), in a child process:
  // takes `take` messages, acks those `ack` says (by sequence), and dies.
  template <class Ack>
  static void member_dies_holding(std::uint64_t take, Ack&& ack) {
    const pid_t child = spawn([&] {
      auto c = Consumer::join(Queue::open("rq"), "g");
      if (c.index() != 0) return 1;
      for (std::uint64_t i = 0; i < take; ++i) {
        Message m;
        if (c.try_receive(m) != Status::Ok) return 2;
        if (ack(m.sequence) && c.ack(m) != Status::Ok) return 3;
      }
      ::_exit(0);  // as kill -9: no destructor leaves the group
    });
    ASSERT_EQ(wait_exit(child), 0);
  }

  static std::uint64_t release(const Queue& q, std::uint32_t index = 0) {
    const detail::SegmentLock lock(map(q));
    return detail::release_consumer(map(q), 0, index);
  }

  // Receives the next message, waiting a little (a redelivery just past the
  // read cursor takes a second look).
  static Message next(Consumer& c) {
    Message m;
    EXPECT_EQ(c.receive(m, std::chrono::seconds(5)), Status::Ok);
    return m;
  }
};

TEST_F(ReleaseConsumerTest, ADeadMembersRecordsGoBackToItsGroup) {
  Queue q = make_queue();
  send(q, 4);
  member_dies_holding(3, [](std::uint64_t seq) { return seq == 2; });  // holds 1 and 3
  GroupSlot& g = group(q);
  ConsumerSlot& dead = map(q).consumer(0, 0);
  ASSERT_EQ(dead.state.load(), attached);
  ASSERT_EQ(dead.delivered.load(), 3u);
  ASSERT_EQ(dead.acked.load(), 1u);
  ASSERT_EQ(g.read.load(), position_of(4));
  ASSERT_EQ(g.released.load(), position_of(1)) << "1 is not acked: nothing released";
  ASSERT_EQ(code_at(q, position_of(2)), kAcked);

  EXPECT_EQ(release(q), 2u);
  EXPECT_EQ(code_at(q, position_of(1)), kPendingRedelivery);
  EXPECT_EQ(code_at(q, position_of(2)), kAcked) << "nothing acked is delivered again";
  EXPECT_EQ(code_at(q, position_of(3)), kPendingRedelivery);
  EXPECT_FALSE(state_is_for(map(q).state_word(0, position_of(4)).load(), position_of(4))) << "4 was never taken";
  EXPECT_EQ(g.pending_redelivery.load(), 2u);
  EXPECT_EQ(g.redelivered.load(), 2u);
  EXPECT_EQ(header(q).redelivered.load(), 2u);
  EXPECT_EQ(g.read.load(), position_of(4)) << "the read cursor does not move back";
  EXPECT_EQ(g.released.load(), position_of(1)) << "the returned records stay unreleased";
  EXPECT_EQ(g.retired_delivered.load(), 3u) << "the member's counters stay the group's";
  EXPECT_EQ(g.retired_acked.load(), 1u);
  EXPECT_EQ(dead.state.load(), static_cast<std::uint32_t>(SlotState::Free));
  EXPECT_EQ(dead.pid.load(), 0);
  EXPECT_EQ(dead.delivered.load(), 0u);
  EXPECT_EQ(dead.acked.load(), 0u);
  EXPECT_EQ(dead.in_flight.load(), 0u);

  EXPECT_EQ(release(q), 0u) << "run again, the walk finds nothing the member holds";
  EXPECT_EQ(g.pending_redelivery.load(), 2u);
  EXPECT_EQ(g.redelivered.load(), 2u);
  EXPECT_EQ(header(q).redelivered.load(), 2u);
  EXPECT_EQ(g.retired_delivered.load(), 3u);

  // The next member gets them first, flagged, then the rest.
  auto c = Consumer::join(q, "g");
  const std::pair<std::uint64_t, bool> expected[] = {{1, true}, {3, true}, {4, false}};
  for (const auto& [seq, redelivered] : expected) {
    const Message m = next(c);
    EXPECT_EQ(m.sequence, seq);
    EXPECT_EQ(m.redelivered, redelivered) << "sequence " << seq;
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  expect_nothing_more(c);
  EXPECT_EQ(g.pending_redelivery.load(), 0u);
  EXPECT_EQ(g.released.load(), position_of(5));
  EXPECT_EQ(g.read.load(), position_of(5));
}

// A member that won the record at the read cursor (its state CAS) and died
// before moving the cursor past it: the walk looks just past `read` too.
TEST_F(ReleaseConsumerTest, ARecordTakenJustBeforeTheDeathIsReturnedToo) {
  Queue q = make_queue();
  send(q, 2);
  member_dies_holding(1, [](std::uint64_t) { return false; });
  GroupSlot& g = group(q);
  ASSERT_EQ(g.read.load(), position_of(2));
  map(q).state_word(0, position_of(2)).store(make_state(position_of(2), 0));  // taken by index 0, read not moved

  EXPECT_EQ(release(q), 2u);
  EXPECT_EQ(code_at(q, position_of(1)), kPendingRedelivery);
  EXPECT_EQ(code_at(q, position_of(2)), kPendingRedelivery);
  EXPECT_EQ(g.pending_redelivery.load(), 2u);
  EXPECT_EQ(g.read.load(), position_of(2));

  auto c = Consumer::join(q, "g");
  for (std::uint64_t seq : {1, 2}) {
    const Message m = next(c);
    EXPECT_EQ(m.sequence, seq);
    EXPECT_TRUE(m.redelivered) << "sequence " << seq;
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
  expect_nothing_more(c);
  EXPECT_EQ(g.released.load(), position_of(3));
}

// Another member's records, and the records of a member that acked all it
// took, are not touched.
TEST_F(ReleaseConsumerTest, OnlyTheDeadMembersRecordsAreReturned) {
  Queue q = make_queue();
  send(q, 3);
  member_dies_holding(1, [](std::uint64_t) { return false; });  // holds 1
  auto live = Consumer::join(q, "g");
  ASSERT_EQ(live.index(), 0u) << "join reaped the dead member and took its entry";
  ASSERT_EQ(group(q).pending_redelivery.load(), 1u);
  Message m1, m2;
  ASSERT_EQ(live.try_receive(m1), Status::Ok);  // the redelivery of 1
  ASSERT_EQ(live.try_receive(m2), Status::Ok);  // 2
  ASSERT_EQ(m1.sequence, 1u);
  ASSERT_EQ(m2.sequence, 2u);
  auto other = Consumer::join(q, "g");
  ASSERT_EQ(other.index(), 1u);
  Message m3;
  ASSERT_EQ(other.try_receive(m3), Status::Ok);
  ASSERT_EQ(m3.sequence, 3u);
  constexpr std::uint8_t redelivered_by_0 = kRedeliveredBit | 0;
  ASSERT_EQ(code_at(q, position_of(1)), redelivered_by_0);
  // The repair of member 1 (as if it had died) returns only 3.
  EXPECT_EQ(release(q, 1), 1u);
  EXPECT_EQ(code_at(q, position_of(1)), redelivered_by_0);
  EXPECT_EQ(code_at(q, position_of(2)), 0u) << "still member 0's";
  EXPECT_EQ(code_at(q, position_of(3)), kPendingRedelivery);
  EXPECT_EQ(group(q).pending_redelivery.load(), 1u);
}

}  // namespace
}  // namespace shmq::test
