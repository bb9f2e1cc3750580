// Producers across processes: sequences survive re-attach, duplicates are
// refused, a name is held by one live process at a time; an idle consumer
// sleeps without burning CPU.
#include <csignal>
#include <ctime>

#include "test_support.hpp"

namespace shmq::test {
namespace {

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

}  // namespace
}  // namespace shmq::test
