// A peer truncates a queue's segment under a running shmqd (docs/security.md,
// "A truncated segment"): shmqd abandons that queue and keeps serving the
// others, its journal holds no record read from the zeros, and the peer's
// busy producer gets Corrupt instead of SIGBUS.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "daemon_support.hpp"
#include "journal/journal.hpp"
#include "shmq/journal.hpp"
#include "shmq/sigbus.hpp"

namespace shmq::test {
namespace {

// Whether `pid` (a child of ours) has not exited.
bool running(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}

// "running", or how shmqd ended (then reaped).
std::string fate(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == 0) return "shmqd runs";
  if (WIFSIGNALED(status)) return std::string("shmqd was killed by ") + ::strsignal(WTERMSIG(status));
  return "shmqd exited with " + std::to_string(WEXITSTATUS(status));
}

QueueOptions options(bool durable) {
  QueueOptions o;
  o.capacity = 1 << 20;
  o.max_message = 256;
  o.durable = durable;
  return o;
}

class TruncatedSegmentTest : public DaemonTest {
 protected:
  std::string segment_path(const std::string& queue) const { return "/dev/shm/shmq." + ns_ + "." + queue; }
  void truncate(const std::string& queue) const {
    ASSERT_EQ(::truncate(segment_path(queue).c_str(), 4096), 0) << std::strerror(errno);
  }
  std::string log_ = "/tmp/shmqd-truncate-" + std::to_string(::getpid()) + ".log";
  void TearDown() override {
    if (HasFailure()) std::printf("shmqd's log:\n%s", slurp(log_).c_str());
    std::filesystem::remove(log_);
    DaemonTest::TearDown();
  }
  // shmqd says once that it abandoned `queue`.
  bool abandoned(const std::string& queue) const {
    return eventually(
        [&] {
          const std::string log = slurp(log_);
          return log.find("queue '" + queue + "': its segment was truncated (4096 bytes, expected ") !=
                     std::string::npos &&
                 log.find("): abandoned") != std::string::npos;
        },
        5000ms);
  }

  // What shmqd must still do for `other` (a durable queue): repair after a
  // consumer killed holding messages, and confirm durable sends.
  void expect_served(const Queue& other, const Daemon& d) {
    auto survivor = Consumer::join(other, "g");
    auto p = Producer::attach(other, "p");
    for (int i = 1; i <= 3; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), Confirm::Durable, 5s), Status::Ok);
    Pipe holding;
    const pid_t child = spawn_holding_consumer("other", "g", 3, 1, holding);
    ASSERT_TRUE(holding.wait());
    ::kill(child, SIGKILL);
    wait_exit(child);
    for (int i = 2; i <= 3; ++i) {
      Message m;
      ASSERT_EQ(survivor.receive(m, 5s), Status::Ok) << "shmqd repairs the other queue";
      EXPECT_TRUE(m.redelivered);
      EXPECT_EQ(m.text(), payload_for(i));
      EXPECT_EQ(survivor.ack(m), Status::Ok);
    }
    EXPECT_EQ(p.send(bytes_of(payload_for(4)), Confirm::Durable, 5s), Status::Ok) << "and journals it";
    EXPECT_TRUE(running(d.pid()));
  }
};

// A producer that sends until its queue reports Corrupt (exit 0): 200
// messages confirmed durable (so shmqd journals the queue), then `busy`, then
// as fast as it can.
pid_t spawn_busy_producer(const std::string& queue, const Pipe& busy) {
  return spawn([&] {
    // Where a sanitizer's SIGBUS handler is there first, libshmq's does not
    // install itself: ask for it.
    install_sigbus_guard();
    auto p = Producer::attach(Queue::open(queue), "busy");
    std::uint64_t sent = 0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      const std::uint64_t seq = p.last_sequence() + 1;
      const Status s = p.send(seq, bytes_of(payload_for(seq)), sent < 200 ? Confirm::Durable : Confirm::Shared, 5s);
      if (s == Status::Corrupt) return sent >= 200 ? 0 : 3;
      if (s != Status::Ok) return 4;
      if (++sent == 200) busy.signal();
    }
    return 5;
  });
}

// The journal of `queue` holds only what its producer sent: nothing copied
// from the zero pages that replaced the ring.
void expect_journal_holds_only_real_records(const std::string& dir, const std::string& queue) {
  auto cursor = journal::Cursor::open(journal_dir(dir, queue), queue, 0);
  std::uint64_t records = 0;
  while (const auto r = cursor.next()) {
    const std::string text(reinterpret_cast<const char*>(r->payload.data()), r->payload.size());
    ASSERT_EQ(text, payload_for(r->sequence)) << "record at position " << r->position;
    ++records;
  }
  EXPECT_GT(records, 0u);
  std::printf("%llu record(s) of the truncated queue stay journaled\n", static_cast<unsigned long long>(records));
}

// The durable victim's journal pipeline is busy when the file shrinks: its
// drain or writer thread (or the producer) meets the missing pages first.
TEST_F(TruncatedSegmentTest, ShmqdSurvivesABusyDurableQueueTruncatedAndServesTheOthers) {
  auto victim = Queue::create("victim", options(true));
  auto other = Queue::create("other", options(true));
  auto d = start_daemon({}, log_);
  ASSERT_TRUE(d.serves(victim));
  ASSERT_TRUE(d.serves(other));
  Pipe busy;
  const pid_t producer = spawn_busy_producer("victim", busy);
  ASSERT_TRUE(busy.wait());
  std::this_thread::sleep_for(20ms);
  truncate("victim");
  EXPECT_EQ(wait_exit(producer), 0) << "the producer gets Corrupt, not SIGBUS (" << 128 + SIGBUS << ")";
  ASSERT_TRUE(abandoned("victim")) << fate(d.pid());
  ASSERT_TRUE(running(d.pid()));
  expect_served(other, d);
  EXPECT_EQ(d.terminate(), 0);
  expect_journal_holds_only_real_records(dir_, "victim");
}

// An idle queue truncated, then one of its clients killed: shmqd's repair
// (main thread) must not touch the missing pages.
TEST_F(TruncatedSegmentTest, ShmqdSurvivesAClientOfATruncatedQueueDying) {
  auto victim = Queue::create("victim", options(false));
  auto other = Queue::create("other", options(true));
  {
    auto p = Producer::attach(victim, "p");
    for (int i = 1; i <= 3; ++i) ASSERT_EQ(p.try_send(bytes_of(payload_for(i))), Status::Ok);
  }
  auto d = start_daemon({}, log_);
  ASSERT_TRUE(d.serves(victim));
  ASSERT_TRUE(d.serves(other));
  Pipe holding;
  const pid_t child = spawn_holding_consumer("victim", "g", 3, 1, holding);
  ASSERT_TRUE(holding.wait());
  truncate("victim");
  ::kill(child, SIGKILL);
  wait_exit(child);
  ASSERT_TRUE(abandoned("victim")) << fate(d.pid());
  ASSERT_TRUE(running(d.pid()));
  expect_served(other, d);
  EXPECT_EQ(d.terminate(), 0);
}

}  // namespace
}  // namespace shmq::test
