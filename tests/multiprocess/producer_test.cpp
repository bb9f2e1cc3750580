// Producers across processes: sequences survive re-attach, duplicates are
// refused, a name is held by one live process at a time; an idle consumer
// sleeps without burning CPU.
#include <csignal>
#include <ctime>
#include <future>

#include "shm/groups_epoch.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

class ProducerTest : public NamespaceTest {};

TEST_F(ProducerTest, ReattachResumesTheExactLastSequence) {
  auto q = Queue::create("q");
  auto c = Consumer::join(q, "g");
  const pid_t child = spawn([] {
    auto queue = Queue::open("q");
    auto p = Producer::attach(queue, "resumer");
    for (std::uint64_t seq = 1; seq <= 100; ++seq) {
      if (p.try_send(seq * 2, bytes_of("m")) != Status::Ok) return 1;
    }
    return 0;
  });
  ASSERT_EQ(wait_exit(child), 0);
  auto p = Producer::attach(q, "resumer");
  EXPECT_EQ(p.last_sequence(), 200u);
  EXPECT_EQ(p.try_send(200, bytes_of("dup")), Status::Duplicate);
  EXPECT_EQ(p.try_send(150, bytes_of("dup")), Status::Duplicate);
  EXPECT_EQ(p.try_send(bytes_of("next")), Status::Ok);
  EXPECT_EQ(p.last_sequence(), 201u);
  const auto info = q.info();
  EXPECT_EQ(info.messages_total, 101u);
  EXPECT_EQ(info.groups[0].lag_messages, 101u);
}

TEST_F(ProducerTest, SecondLiveAttachIsRefused) {
  auto q = Queue::create("q");
  Pipe attached;
  const pid_t child = spawn([&] {
    auto queue = Queue::open("q");
    auto p = Producer::attach(queue, "only-one");
    (void)p.try_send(bytes_of("x"));
    attached.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(attached.wait());
  try {
    Producer::attach(q, "only-one");
    FAIL() << "second attach accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::NameInUse);
    EXPECT_NE(std::string(e.what()).find(std::to_string(child)), std::string::npos) << e.what();
  }
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_exit(child), 128 + SIGKILL);
  auto p = Producer::attach(q, "only-one");  // the dead holder is reaped
  EXPECT_EQ(p.last_sequence(), 1u);
  EXPECT_EQ(q.info().clients_reaped, 1u);
}

TEST_F(ProducerTest, TableFullIsAClearError) {
  QueueOptions o;
  o.max_producers = 2;
  auto q = Queue::create("q", o);
  auto a = Producer::attach(q, "a");
  auto b = Producer::attach(q, "b");
  try {
    Producer::attach(q, "c");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::TableFull);
  }
}

// A detached name keeps its entry, and so its identity and last sequence,
// while any message of it is still in the queue: a new name finds the table
// full rather than take the entry (a rerun of the old name would otherwise
// resend its sequences, and its messages would show the new name).
TEST_F(ProducerTest, ADetachedNameKeepsItsEntryWhileItsMessagesAreInTheQueue) {
  QueueOptions o;
  o.max_producers = 1;
  auto q = Queue::create("q", o);
  {
    auto old = Producer::attach(q, "old");
    for (std::uint64_t seq = 1; seq <= 3; ++seq) ASSERT_EQ(old.try_send(seq, bytes_of("m")), Status::Ok);
  }
  try {
    (void)Producer::attach(q, "new");
    FAIL() << "a new name took the entry of a name whose messages are still queued";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::TableFull);
    EXPECT_NE(std::string(e.what()).find("--max-producers"), std::string::npos) << e.what();
  }
  auto again = Producer::attach(q, "old");
  EXPECT_EQ(again.last_sequence(), 3u);
  EXPECT_EQ(again.try_send(3, bytes_of("m")), Status::Duplicate);
  auto c = Consumer::join(q, "g");
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(q.info().producers.at(m.producer_id).name, "old");
}

// Once every group has released the messages of a detached name, its entry
// may serve a new name (the attach moves head past them, as a claim would:
// not even a new group could see them any more).
TEST_F(ProducerTest, AnEntryIsRecycledOnlyOnceItsMessagesAreGone) {
  QueueOptions o;
  o.max_producers = 2;
  auto q = Queue::create("q", o);
  auto c = Consumer::join(q, "g");
  {
    auto gone = Producer::attach(q, "gone");
    ASSERT_EQ(gone.try_send(bytes_of("m")), Status::Ok);
  }
  auto steady = Producer::attach(q, "steady");
  EXPECT_THROW((void)Producer::attach(q, "fresh"), Error) << "\"gone\"'s message is not acked yet";
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  ASSERT_EQ(c.ack(m), Status::Ok);
  auto fresh = Producer::attach(q, "fresh");  // the entry of "gone"
  EXPECT_EQ(fresh.last_sequence(), 0u);
  EXPECT_THROW((void)Producer::attach(q, "gone"), Error) << "its name is forgotten only now: the table is full";
}

// A queue deleted under its clients: waits notice it (the segment file has
// no name left) and return Deleted instead of waiting for ever; a sender can
// tell its messages are lost.
TEST_F(ProducerTest, WaitsOnADeletedQueueReturnDeleted) {
  QueueOptions o;
  o.capacity = 4096;
  o.max_message = 64;
  auto q = Queue::create("q", o);
  auto c = Consumer::join(q, "g");
  auto p = Producer::attach(q, "p");
  EXPECT_FALSE(q.deleted());
  ASSERT_TRUE(Queue::remove("q"));
  EXPECT_TRUE(q.deleted());
  Message m;
  EXPECT_EQ(c.receive(m, 10s), Status::Deleted);
  while (p.try_send(bytes_of("x")) == Status::Ok) {
  }
  EXPECT_EQ(p.send(bytes_of("x"), 10s), Status::Deleted) << "a full ring of a deleted queue never drains";
  auto again = Queue::create("q", o);  // the name, taken by a new queue
  EXPECT_TRUE(q.deleted());
  EXPECT_FALSE(again.deleted());
}

TEST_F(ProducerTest, IdleConsumerUsesNoCpu) {
  auto q = Queue::create("q");
  const pid_t child = spawn([] {
    auto queue = Queue::open("q");
    auto c = Consumer::join(queue, "idle");
    timespec before{}, after{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &before);
    Message m;
    if (c.receive(m, std::chrono::seconds(1)) != Status::Timeout) return 1;
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &after);
    const double cpu_ms = (after.tv_sec - before.tv_sec) * 1e3 + (after.tv_nsec - before.tv_nsec) / 1e6;
    std::printf("idle consumer: %.3f ms CPU over 1 s blocked in receive\n", cpu_ms);
    return cpu_ms < 20.0 ? 0 : 2;
  });
  EXPECT_EQ(wait_exit(child), 0);
}

TEST_F(ProducerTest, BlockedConsumerWakesOnSend) {
  auto q = Queue::create("q");
  auto c = Consumer::join(q, "g");
  Pipe ready;
  const pid_t child = spawn([&] {
    auto queue = Queue::open("q");
    auto p = Producer::attach(queue, "p");
    ready.wait();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return p.try_send(bytes_of("wake")) == Status::Ok ? 0 : 1;
  });
  ready.signal();
  Message m;
  ASSERT_EQ(c.receive(m, std::chrono::seconds(10)), Status::Ok);
  EXPECT_EQ(m.text(), "wake");
  EXPECT_EQ(wait_exit(child), 0);
}

// A joiner stopped inside a group's creation holds the segment lock with the
// groups_epoch window open. No try_ call may wait for it: try_send on a full
// ring returns Full at once (it cannot see a new floor), and send with a
// timeout retries until its deadline.
TEST_F(ProducerTest, AJoinerStoppedInsideGroupCreationDoesNotHangTrySend) {
  QueueOptions o;
  o.capacity = 4096;
  o.max_message = 64;
  auto q = Queue::create("q", o);
  ProducerOptions few_spins;  // each attempt spins while the window is open
  few_spins.wait.spin = 1;
  auto p = Producer::attach(q, "p", few_spins);
  while (p.try_send(bytes_of("fill")) == Status::Ok) {  // no group: nothing is released
  }
  Pipe inside;
  const pid_t joiner = spawn([&] {
    auto queue = Queue::open("q");  // its own descriptor: its own flock
    const detail::SegmentLock lock(*detail::mapping_of(queue));
    const detail::GroupsEpochWindow window(*detail::mapping_of(queue));  // as create_group's
    inside.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(inside.wait());
  auto sent = std::async(std::launch::async, [&] { return p.try_send(bytes_of("x")); });
  const bool prompt = sent.wait_for(5s) == std::future_status::ready;
  const Status timed = prompt ? p.send(bytes_of("x"), 200ms) : Status::Ok;
  ::kill(joiner, SIGKILL);  // the kernel drops its lock: a try_send stuck on it goes on
  EXPECT_EQ(wait_exit(joiner), 128 + SIGKILL);
  ASSERT_TRUE(prompt) << "try_send waited for the segment lock of a stopped joiner";
  EXPECT_EQ(sent.get(), Status::Full);
  EXPECT_EQ(timed, Status::Timeout);
  // The dead joiner's window is settled (by the next join, or a claim):
  // once a group releases the ring, claims go on.
  auto c = Consumer::join(q, "g");
  Message m;
  while (c.try_receive(m) == Status::Ok) ASSERT_EQ(c.ack(m), Status::Ok);
  EXPECT_EQ(p.try_send(bytes_of("x")), Status::Ok);
}

}  // namespace
}  // namespace shmq::test
