// An exclusive group of a durable queue survives a power loss as exclusive:
// shmqd checkpoints each group's mode and the rebuild restores it, so the
// first member to join again is the active one, the others stand by, and
// what the group had not acked comes back, flagged, to the active member.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "daemon_support.hpp"
#include "journaling/writer.hpp"
#include "shmq/journal.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kExclusiveGroup = "exclusive-orders";  // easy to find in the journal's bytes
constexpr std::uint64_t kSent = 10;

class ExclusiveRebuildTest : public DaemonTest {
 protected:
  fs::path journal() const { return journal_dir(dir_, "dq"); }

  // Whether a segment of the journal holds `text` (a checkpoint naming a group).
  bool journal_holds(const std::string& text) const {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(journal(), ec)) {
      if (entry.path().extension() == ".journal" && slurp(entry.path().string()).find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

  static ConsumerOptions exclusive() {
    ConsumerOptions o;
    o.exclusive = true;
    return o;
  }
};

TEST_F(ExclusiveRebuildTest, AnExclusiveGroupIsStillExclusiveAfterAPowerLossAndGetsWhatItOwedFlagged) {
  {
    QueueOptions o;
    o.capacity = 64 << 10;
    o.max_message = 256;
    o.durable = true;
    Queue q = Queue::create("dq", o);
    (void)Consumer::join(q, "competing");
    (void)Consumer::join(q, kExclusiveGroup, exclusive());
  }
  Daemon d = start_daemon();
  {
    Queue q = Queue::open("dq");
    ASSERT_TRUE(d.serves(q));
    auto p = Producer::attach(q, "p");
    for (std::uint64_t i = 1; i <= kSent; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), 5s), Status::Ok);
    ASSERT_EQ(p.wait_durable(10s), Status::Ok);
    ASSERT_TRUE(eventually([&] { return journal_holds(kExclusiveGroup); }, 10s)) << "no checkpoint names the group";
  }
  // The active member takes 1..6, acks 1, 2 and 4, holds the rest.
  Pipe holding;
  const pid_t active = spawn([&] {
    auto c = Consumer::join(Queue::open("dq"), kExclusiveGroup, exclusive());
    if (!c.active()) return 1;
    std::vector<Message> held(6);
    for (auto& m : held) {
      if (c.receive(m, 5s) != Status::Ok) return 2;
    }
    for (int i : {0, 1, 3}) {
      if (c.ack(held[static_cast<std::size_t>(i)]) != Status::Ok) return 3;
    }
    holding.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(holding.wait());

  // The power loss: everything dies at once, and shared memory is gone.
  ::kill(active, SIGKILL);
  d.kill9();
  wait_exit(active);
  ASSERT_TRUE(Queue::remove("dq"));
  {
    // What the journal says (read before shmqd opens it again): the group, exclusive.
    const auto recovery = journal::recover(journal(), "dq");
    ASSERT_TRUE(recovery.checkpoint);
    std::map<std::string, bool> modes;
    for (const auto& g : recovery.checkpoint->groups) modes[g.name] = g.exclusive;
    EXPECT_EQ(modes, (std::map<std::string, bool>{{"competing", false}, {kExclusiveGroup, true}}));
  }

  Daemon again = start_daemon();
  ASSERT_TRUE(eventually([] { return Queue::list().size() == 1; }, 10s)) << "shmqd did not rebuild the queue";
  Queue q = Queue::open("dq");
  ASSERT_TRUE(again.serves(q));
  const QueueInfo info = q.info();
  EXPECT_TRUE(group(info, kExclusiveGroup).exclusive) << "the rebuilt group came back competing";
  EXPECT_FALSE(group(info, "competing").exclusive);
  try {
    (void)Consumer::join(q, kExclusiveGroup);
    ADD_FAILURE() << "a competing join of the rebuilt exclusive group was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::InvalidArgument) << e.what();
  }

  auto first = Consumer::join(q, kExclusiveGroup, exclusive());
  auto standby = Consumer::join(q, kExclusiveGroup, exclusive());
  EXPECT_TRUE(first.active()) << "the first member to join after the rebuild reads";
  EXPECT_FALSE(standby.active());
  Message m;
  EXPECT_EQ(standby.try_receive(m), Status::Empty) << "a standby reads nothing";
  // Everything from the checkpointed ack on comes again, flagged: at least
  // what the killed member held (3, 5, 6) and what nobody took (7..10); 1, 2
  // and 4 too if their acks came after the last checkpoint.
  std::set<std::uint64_t> again_delivered;
  while (first.try_receive(m) == Status::Ok) {
    EXPECT_TRUE(m.redelivered) << "sequence " << m.sequence;
    EXPECT_TRUE(again_delivered.insert(m.sequence).second) << "sequence " << m.sequence << " twice";
    EXPECT_EQ(first.ack(m), Status::Ok);
  }
  for (std::uint64_t seq : {3, 5, 6, 7, 8, 9, 10}) EXPECT_TRUE(again_delivered.contains(seq)) << seq << " lost";
  EXPECT_LE(again_delivered.size(), kSent);
  EXPECT_EQ(standby.try_receive(m), Status::Empty);
  // New messages, first deliveries: unflagged, to the active member.
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.last_sequence(), kSent);
  ASSERT_EQ(p.send(kSent + 1, bytes_of(payload_for(kSent + 1)), 5s), Status::Ok);
  ASSERT_EQ(first.receive(m, 5s), Status::Ok);
  EXPECT_EQ(m.sequence, kSent + 1);
  EXPECT_FALSE(m.redelivered);
  EXPECT_EQ(first.ack(m), Status::Ok);
  again.terminate();
}

}  // namespace
}  // namespace shmq::test
