// The durable promise at the seams of shmqd's own life: the boot order of an
// application and shmqd after a power loss, a rebuild killed half-way, a full
// data disk at start, two daemons, a hung daemon and its standby. Real shmqd,
// real files, real kill -9; a power loss is every process killed and the
// segment removed (shared memory does not survive a reboot).
#include <sys/mount.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>

#include "daemon_support.hpp"
#include "journal/journal.hpp"
#include "shmq/journal.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::uint64_t kLargeJournal = 16 << 20;  // sanitized daemons are 5-20x slower
#else
constexpr std::uint64_t kLargeJournal = 100 << 20;
#endif

QueueOptions durable_options(std::uint64_t capacity = 1 << 20, std::uint32_t max_message = 1024) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.durable = true;
  return o;
}

std::string text_of(const Message& m) { return {reinterpret_cast<const char*>(m.payload.data()), m.payload.size()}; }

class LifecycleTest : public DaemonTest {
 protected:
  // Sends "<prefix><i>" for i in [from, to] as producer `producer`, each
  // confirmed durable.
  static void send_durable(Queue& q, const std::string& producer, const std::string& prefix, int from, int to) {
    auto p = Producer::attach(q, producer);
    for (int i = from; i <= to; ++i) {
      ASSERT_EQ(p.send(static_cast<std::uint64_t>(i), bytes_of(prefix + std::to_string(i)), Confirm::Durable, 10s),
                Status::Ok)
          << i;
    }
  }

  // Everything a new group replaying from the oldest message receives.
  static std::vector<std::string> replay_all(const std::string& queue, const std::string& group) {
    std::vector<std::string> got;
    Queue q = Queue::open(queue);
    auto c = Consumer::join(q, group, {.start = StartAt::Oldest});
    Message m;
    while (c.receive(m, 500ms) == Status::Ok) {
      got.push_back(text_of(m));
      EXPECT_EQ(c.ack(m), Status::Ok);
    }
    return got;
  }

  static std::vector<std::string> expected(const std::string& prefix, int from, int to) {
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i) out.push_back(prefix + std::to_string(i));
    return out;
  }

  static void power_loss(Daemon& d, const std::string& queue) {
    d.kill9();
    ASSERT_TRUE(Queue::remove(queue));
  }

  // Queue "rq", journaled by shmqd, with "old-1".."old-<count>" from producer
  // "old" confirmed durable; then a power loss.
  void journal_then_lose_power(int count) {
    Queue q = Queue::create("rq", durable_options());
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    send_durable(q, "old", "old-", 1, count);
    power_loss(d, "rq");
  }

  std::string log_path(const std::string& name) const { return dir_ + "/" + name + ".log"; }
};

// ---- boot order (item 1) ------------------------------------------------------

// The application starts first after a reboot: create refuses (NeedsRebuild)
// instead of making an empty queue shmqd would journal over the old one;
// open_or_create waits for shmqd's rebuild and gets the old messages and the
// producers' sequences; new sends are journaled after them.
TEST_F(LifecycleTest, AnApplicationStartingBeforeShmqdGetsTheRebuiltQueue) {
  journal_then_lose_power(2000);
  try {
    (void)Queue::create("rq", durable_options());
    FAIL() << "created a durable queue over its journal";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::NeedsRebuild) << e.what();
    EXPECT_NE(std::string(e.what()).find("start shmqd"), std::string::npos) << e.what();
  }
  // The application waits in open_or_create while shmqd starts.
  Pipe opened;
  const pid_t app = spawn([&] {
    Queue q = Queue::open_or_create("rq", durable_options(), {}, 20s);
    auto p = Producer::attach(q, "old");
    if (p.last_sequence() != 2000) return 1;  // the producer resumes where it stopped
    opened.signal();
    send_durable(q, "new", "new-", 1, 1000);
    return ::testing::Test::HasFailure() ? 2 : 0;
  });
  std::this_thread::sleep_for(200ms);
  Daemon d = start_daemon();
  ASSERT_TRUE(opened.wait());
  ASSERT_EQ(wait_exit(app), 0);
  power_loss(d, "rq");
  Daemon again = start_daemon();
  ASSERT_TRUE(eventually([] { return fs::exists("/dev/shm/shmq." + current_namespace() + ".rq"); }));
  auto want = expected("old-", 1, 2000);
  const auto more = expected("new-", 1, 1000);
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_EQ(replay_all("rq", "R"), want);
}

// shmqd first: it rebuilds the queue, and the application's open_or_create
// simply opens it.
TEST_F(LifecycleTest, ShmqdStartingFirstRebuildsBeforeTheApplicationOpens) {
  journal_then_lose_power(500);
  Daemon d = start_daemon();
  ASSERT_TRUE(eventually([] { return fs::exists("/dev/shm/shmq." + current_namespace() + ".rq"); }));
  Queue q = Queue::open_or_create("rq", durable_options());
  ASSERT_TRUE(d.serves(q));
  try {
    (void)Queue::create("rq", durable_options());
    FAIL() << "created a queue that exists";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::AlreadyExists) << "it exists, journal or not: " << e.what();
  }
  send_durable(q, "new", "new-", 1, 500);
  auto want = expected("old-", 1, 500);
  const auto more = expected("new-", 1, 500);
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_EQ(replay_all("rq", "R"), want);
}

// An application that looks for the journal in the wrong place creates the
// queue anew anyway: shmqd refuses to journal that segment (no send is
// confirmed durable against a journal that does not hold it), says so, and
// once the segment is removed rebuilds the queue from the journal.
TEST_F(LifecycleTest, ASegmentCreatedAnewOverAJournalIsNeverJournaled) {
  journal_then_lose_power(300);
  ::setenv("SHMQ_DATA_DIR", "/nonexistent-shmq-data", 1);  // the application's wrong idea
  Queue q = Queue::create("rq", durable_options());
  ::setenv("SHMQ_DATA_DIR", dir_.c_str(), 1);
  const std::string log = log_path("conflict");
  Daemon d = start_daemon({}, log);
  ASSERT_TRUE(d.serves(q));
  ASSERT_TRUE(eventually([&] { return q.info().journal_trouble == JournalTrouble::Conflict; }));
  auto p = Producer::attach(q, "new");
  EXPECT_EQ(p.send(bytes_of("new-1"), Confirm::Durable, 500ms), Status::Timeout) << "never confirmed";
  EXPECT_NE(slurp(log).find("created anew"), std::string::npos) << slurp(log);
  EXPECT_TRUE(replay_all("rq", "peek").empty()) << "consumers of a durable queue get only what is on disk";

  ASSERT_TRUE(Queue::remove("rq"));  // the remedy the log gives
  ASSERT_TRUE(eventually([] { return fs::exists("/dev/shm/shmq." + current_namespace() + ".rq"); }, 5s))
      << "rebuilt by the next rescan";
  EXPECT_EQ(replay_all("rq", "R"), expected("old-", 1, 300));
}

// ---- a rebuild killed half-way (item 2) -----------------------------------------

// kill -9 of shmqd at random moments of the rebuild of a large journal, again
// and again: the next shmqd redoes it, and every confirmed message is there.
// The group has acked all but the last 30 MiB, which the rebuild writes back
// into the 32 MiB ring: most of its time.
TEST_F(LifecycleTest, ARebuildKilledHalfWayIsRedone) {
  constexpr std::uint32_t kPayload = 1000;
  const int messages = static_cast<int>(kLargeJournal / kPayload);
  const int acked = messages - static_cast<int>(std::min<std::uint64_t>(30 << 20, kLargeJournal / 2) / kPayload);
  {
    Queue q = Queue::create("big", durable_options(32 << 20, kPayload));
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    auto g = Consumer::join(q, "g");
    auto p = Producer::attach(q, "p");
    const std::string filler(kPayload - 16, '.');
    for (int i = 1; i <= messages; ++i) {
      ASSERT_EQ(p.send(bytes_of(std::to_string(i) + ":" + filler), Confirm::Shared, 20s), Status::Ok) << i;
    }
    ASSERT_EQ(p.wait_durable(60s), Status::Ok);
    Message m;
    for (int i = 1; i <= acked; ++i) {  // all synced: no wait for the disk
      ASSERT_EQ(g.receive(m, 20s), Status::Ok);
      ASSERT_EQ(g.ack(m), Status::Ok);
    }
    std::this_thread::sleep_for(300ms);  // the last acks checkpointed (every 100 ms)
    power_loss(d, "big");
  }
  const auto rebuilt = [] { return fs::exists("/dev/shm/shmq." + current_namespace() + ".big"); };
  const auto start = std::chrono::steady_clock::now();
  {
    Daemon d = start_daemon();
    ASSERT_TRUE(eventually(rebuilt, 60s));
  }
  const auto rebuild_time =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  std::printf("a rebuild took %lld ms\n", static_cast<long long>(rebuild_time.count()));
  ASSERT_TRUE(Queue::remove("big"));
  std::mt19937 random(std::random_device{}());
  for (int round = 0; round < 6; ++round) {
    Daemon d = start_daemon();
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<long long>(0, rebuild_time.count())(random)));
    d.kill9();
    try {
      (void)Queue::open("big");
      Queue::remove("big");  // the rebuild finished: lose it again
    } catch (const Error&) {
      // not rebuilt yet (and nothing half-built may carry its name)
    }
  }
  Daemon d = start_daemon();
  ASSERT_TRUE(eventually(rebuilt, 60s));
  Queue q = Queue::open("big");
  auto g = Consumer::join(q, "g");
  Message m;
  int next = acked + 1;
  while (g.receive(m, 2s) == Status::Ok) {
    const std::string text = text_of(m);
    ASSERT_EQ(text.substr(0, text.find(':')), std::to_string(next)) << "in order, none lost, none twice";
    ASSERT_EQ(g.ack(m), Status::Ok);
    ++next;
  }
  EXPECT_EQ(next - 1, messages);
  EXPECT_TRUE(eventually(
      [&] {
        for (const auto& e : fs::directory_iterator("/dev/shm")) {
          if (e.path().filename().string().starts_with("shmq-creating." + ns_ + ".")) return false;
        }
        return true;
      },
      8s))
      << "shmqd removes what a killed rebuild left";
}

// ---- a full data disk at start (item 3) -------------------------------------------

// shmqd starting on a full disk cannot set up the journal: it says so, shows
// it (shmq-stat), retries, and confirms once space comes back.
TEST_F(LifecycleTest, AJournalThatCannotBeSetUpIsRetried) {
  const std::string mnt = dir_ + "/small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs here (" << std::strerror(errno)
                 << "): needs root or CAP_SYS_ADMIN; a full disk at start is untested on this machine";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    filler << std::string(1 << 20, 'x');  // fills it: the write stops at 256 KiB
  }
  Queue q = Queue::create("dq", durable_options(64 << 10, 256));
  const std::string log = log_path("full");
  Daemon d = Daemon::start(mnt, {}, log);
  ASSERT_TRUE(d.serves(q));
  ASSERT_TRUE(eventually([&] { return q.info().journal_trouble == JournalTrouble::SetupFailing; }));
  EXPECT_NE(q.info().journal_error, 0);
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.send(bytes_of("m1"), Confirm::Durable, 500ms), Status::Timeout);
  fs::remove(mnt + "/filler");
  EXPECT_EQ(p.wait_durable(10s), Status::Ok) << slurp(log);
  EXPECT_EQ(q.info().journal_trouble, JournalTrouble::None);
  EXPECT_EQ(q.info().journal_error, 0);
  EXPECT_EQ(p.send(bytes_of("m2"), Confirm::Durable, 10s), Status::Ok);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("retrying"), std::string::npos) << text;
  EXPECT_EQ(text.find("retrying"), text.rfind("retrying")) << "said once, not every retry: " << text;
}

// ---- two daemons (item 4) -----------------------------------------------------

TEST_F(LifecycleTest, ASecondShmqdWithAnotherDataDirRefusesNamingTheFirst) {
  Queue q = Queue::create("dq", durable_options());
  Daemon first = start_daemon();
  ASSERT_TRUE(first.serves(q));
  const std::string other = dir_ + "/other";
  const std::string log = log_path("second");
  EXPECT_EQ(Daemon::start(other, {}, log).exit_code(), 1);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("pid " + std::to_string(first.pid())), std::string::npos) << text;
  EXPECT_NE(text.find(fs::absolute(dir_).string()), std::string::npos) << "names its data directory: " << text;
  EXPECT_FALSE(fs::exists(journal_dir(other, "dq"))) << "the second journaled nothing";
  EXPECT_EQ(daemon_data_dir(), fs::absolute(dir_)) << "clients find the running shmqd's data directory";
}

// ---- a hung daemon (item 6) ---------------------------------------------------

// A stopped primary keeps its lock; the standby sees its heartbeat stop,
// fences it (SIGKILL) after its deadline, takes over, and repairs: a consumer
// killed while the primary hung gets its messages back to the group.
TEST_F(LifecycleTest, AStandbyFencesAHungPrimaryAndTakesOver) {
  Queue q = Queue::create("q", QueueOptions{});
  Daemon primary = start_daemon();
  ASSERT_TRUE(primary.serves(q));
  const std::string log = log_path("standby");
  Daemon standby = start_daemon({"--standby", "--standby-deadline", "400"}, log);
  std::this_thread::sleep_for(600ms);
  EXPECT_EQ(daemon_pid_of(q), primary.pid()) << "a live primary is never fenced";

  auto p = Producer::attach(q, "p");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  auto survivor = Consumer::join(q, "g");
  ASSERT_EQ(::kill(primary.pid(), SIGSTOP), 0);
  const auto stopped = std::chrono::steady_clock::now();
  kill_a_consumer_holding("q", "g", 3);

  ASSERT_TRUE(standby.serves(q, 10s)) << slurp(log);
  std::printf("the standby took over %.0f ms after the primary stopped (deadline 400 ms)\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - stopped).count());
  EXPECT_EQ(primary.exit_code(), 128 + SIGKILL) << "fenced";
  Message m;
  ASSERT_EQ(survivor.receive(m, 5s), Status::Ok);
  EXPECT_TRUE(m.redelivered);
  EXPECT_NE(slurp(log).find("fencing"), std::string::npos) << slurp(log);
}

}  // namespace
}  // namespace shmq::test
