// Durable queues: shmqd journals them, confirms durable sends after fsync, and
// rebuilds them from the journal when shared memory is gone (a simulated
// power loss: every process killed with kill -9, the segment removed).
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "daemon_support.hpp"
#include "journal/journal.hpp"
#include "shmq/journal.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

Queue make_durable_queue(std::uint64_t capacity = 64 << 10, std::uint32_t max_message = 256) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = max_message;
  o.durable = true;
  return Queue::create("dq", o);
}

class DurableTest : public DaemonTest {
 protected:
  fs::path journal() const { return journal_dir(dir_, "dq"); }

  // The journal's data records as "producer:seq" in position order.
  std::vector<std::string> journaled() const {
    std::vector<std::string> out;
    auto cursor = journal::Cursor::open(journal(), "dq", 0);
    while (const auto r = cursor.next()) out.push_back(std::to_string(r->producer_id) + ":" + std::to_string(r->sequence));
    return out;
  }

  static void remove_segment() { ASSERT_TRUE(Queue::remove("dq")); }
};

TEST_F(DurableTest, DurableSendReturnsOnceTheJournalSyncedIt) {
  Queue q = make_durable_queue();
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  auto p = Producer::attach(q, "p");
  for (int i = 1; i <= 50; ++i) {
    ASSERT_EQ(p.send(bytes_of(payload_for(i)), Confirm::Durable, 10s), Status::Ok);
    // Confirmed: the journal's synced position is past the record.
    EXPECT_GT(q.info().journal_synced, p.last_position());
  }
  const auto records = journaled();
  ASSERT_EQ(records.size(), 50u);
  EXPECT_EQ(records.front(), "0:1");
  EXPECT_EQ(records.back(), "0:50");
  // The journal holds every message: its directory and files are the user's alone.
  struct stat st {};
  ASSERT_EQ(::stat(journal().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& e : fs::directory_iterator(journal())) {
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << e.path();
  }
}

TEST_F(DurableTest, DurableConfirmOnAQueueThatIsNotDurableIsRefused) {
  Queue q = make_crash_queue();
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.send(bytes_of("x"), Confirm::Durable, 1s), Status::NotDurable);
  EXPECT_EQ(p.last_sequence(), 0u);  // nothing sent
  EXPECT_EQ(p.wait_durable(1s), Status::NotDurable);
}

// Without shmqd nothing is journaled: durable confirms time out, consumers
// receive nothing (a durable queue delivers only what is on disk), and the
// ring never reuses a record the journal has not written, even when the only
// group starts after it. When shmqd comes, it journals the backlog and confirms.
TEST_F(DurableTest, TheRingKeepsWhatTheJournalHasNotWritten) {
  Queue q = make_durable_queue(16 << 10, 64);
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.send(bytes_of("first"), Confirm::Durable, 50ms), Status::Timeout);
  EXPECT_EQ(p.last_sequence(), 1u);  // committed in shared memory, durability unconfirmed
  Message m;
  {
    auto oldest = Consumer::join(q, "oldest");
    EXPECT_EQ(oldest.receive(m, 50ms), Status::Timeout) << "delivered a record that is not on disk";
  }
  q.delete_group("oldest");
  std::uint64_t sent = 1;
  while (p.try_send(bytes_of("more")) == Status::Ok) ++sent;
  EXPECT_EQ(sent, (16u << 10) / 64);  // one ring, then Full
  // A group that starts at the newest position holds nothing back; the
  // journal still does.
  auto newest = Consumer::join(q, "newest", {.start = StartAt::Newest});
  EXPECT_EQ(p.try_send(bytes_of("more")), Status::Full) << "reused ring bytes the journal has not written";

  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  EXPECT_EQ(p.wait_durable(10s), Status::Ok);
  EXPECT_EQ(journaled().size(), sent);
  EXPECT_EQ(p.send(bytes_of("after"), Confirm::Durable, 10s), Status::Ok);
  ASSERT_EQ(newest.receive(m, 10s), Status::Ok);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()), "after");
}

// A durable confirm covers what the producer's name committed before this
// handle: a resend after an unconfirmed run (or a crash) finds its sequences
// Duplicate and sends nothing, yet must not be confirmed until they are on
// disk. (`shmq send --durable` run twice without shmqd once exited 0 the
// second time, with nothing on disk.)
TEST_F(DurableTest, AResendOfDuplicatesIsConfirmedOnlyOnceTheyAreOnDisk) {
  Queue q = make_durable_queue();
  {
    auto p = Producer::attach(q, "p");
    for (std::uint64_t seq = 1; seq <= 3; ++seq) ASSERT_EQ(p.send(seq, bytes_of(payload_for(seq)), 1s), Status::Ok);
    EXPECT_EQ(p.wait_durable(50ms), Status::Timeout);  // no shmqd
  }  // detached
  // A predecessor that dies (no detach) after sending more.
  const pid_t crashed = spawn([] {
    auto p = Producer::attach(Queue::open("dq"), "p");
    for (std::uint64_t seq = 4; seq <= 5; ++seq) {
      if (p.send(seq, bytes_of(payload_for(seq)), 1s) != Status::Ok) return 2;
    }
    ::_exit(0);  // as a crash: no destructor detaches
  });
  ASSERT_EQ(wait_exit(crashed), 0);
  auto p = Producer::attach(q, "p");
  EXPECT_EQ(p.last_sequence(), 5u);
  for (std::uint64_t seq = 1; seq <= 5; ++seq) EXPECT_EQ(p.send(seq, bytes_of(payload_for(seq)), 1s), Status::Duplicate);
  EXPECT_EQ(p.wait_durable(100ms), Status::Timeout) << "confirmed durable what only shared memory holds";
  EXPECT_EQ(p.send(5, bytes_of(payload_for(5)), Confirm::Durable, 100ms), Status::Duplicate);
  EXPECT_EQ(p.wait_durable(0ms), Status::Timeout);

  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  EXPECT_EQ(p.wait_durable(10s), Status::Ok);
  EXPECT_EQ(journaled(), (std::vector<std::string>{"0:1", "0:2", "0:3", "0:4", "0:5"}));
  // Another name waits for nothing of p's.
  EXPECT_EQ(Producer::attach(q, "other").wait_durable(0ms), Status::Ok);
}

// shmqd killed while producers go on: the next one continues the journal
// where it stopped, with no record missing or written twice.
TEST_F(DurableTest, ARestartedDaemonContinuesTheJournalWithoutGapOrDuplicate) {
  Queue q = make_durable_queue();
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  Message m;
  for (int round = 0; round < 3; ++round) {
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    for (int i = 0; i < 300; ++i) {
      ASSERT_EQ(p.send(bytes_of("m"), 10s), Status::Ok);
      while (c.try_receive(m) == Status::Ok) ASSERT_EQ(c.ack(m), Status::Ok);
    }
    d.kill9();
  }
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  ASSERT_EQ(p.wait_durable(10s), Status::Ok);
  const auto records = journaled();
  ASSERT_EQ(records.size(), 900u);
  for (std::size_t i = 0; i < records.size(); ++i) ASSERT_EQ(records[i], "0:" + std::to_string(i + 1));
}

// A segment that vanishes while shmqd journals it (not `shmq delete`, which
// removes the journal first: say, systemd-logind's RemoveIPC) loses nothing:
// the journal is set aside, and the next shmqd does not rebuild the queue.
TEST_F(DurableTest, AJournaledQueueDeletedUnderShmqdKeepsItsJournalAside) {
  {
    Queue q = make_durable_queue();
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    auto p = Producer::attach(q, "p");
    ASSERT_EQ(p.send(bytes_of("kept"), Confirm::Durable, 10s), Status::Ok);
    remove_segment();
    const fs::path aside = fs::path(dir_) / "journal-deleted";
    ASSERT_TRUE(eventually([&] { return fs::exists(aside) && !fs::is_empty(aside); })) << "journal not set aside";
    EXPECT_FALSE(fs::exists(journal()));
    auto kept = fs::directory_iterator(aside)->path();
    auto cursor = journal::Cursor::open(kept, "dq", 0);
    const auto first = cursor.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(first->payload.data()), first->payload.size()), "kept");
  }
  Daemon again = start_daemon();
  std::this_thread::sleep_for(300ms);  // it would have rebuilt by now
  EXPECT_TRUE(Queue::list().empty());
}

// Retention by size deletes the oldest segments, but never one a group has
// not acked: a lagging group keeps them all until it acks.
TEST_F(DurableTest, RetentionKeepsWhatAGroupHasNotAcked) {
  const auto segments = [&] {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(journal())) n += e.path().extension() == ".journal" ? 1 : 0;
    return n;
  };
  Queue q = make_durable_queue(8 << 20, 4096);
  Daemon d = start_daemon({"--journal-segment-mib", "1", "--retention-mib", "1"});
  ASSERT_TRUE(d.serves(q));
  auto lagging = Consumer::join(q, "lagging", {.prefetch = 4096});
  auto p = Producer::attach(q, "p");
  const std::string payload(4000, 'r');
  for (int i = 0; i < 1500; ++i) ASSERT_EQ(p.send(bytes_of(payload), 10s), Status::Ok);  // ~6 MiB
  ASSERT_EQ(p.wait_durable(10s), Status::Ok);
  std::this_thread::sleep_for(300ms);  // checkpoints and retention passes go by
  EXPECT_GE(segments(), 5u) << "deleted segments the lagging group has not acked";

  Message m;
  while (lagging.try_receive(m) == Status::Ok) ASSERT_EQ(lagging.ack(m), Status::Ok);
  EXPECT_TRUE(eventually([&] { return segments() <= 2; })) << segments() << " segments left";
  // What is left still reads back, up to the last record.
  auto cursor = journal::Cursor::open(journal(), "dq", 0);
  std::uint64_t last = 0;
  while (const auto r = cursor.next()) last = r->sequence;
  EXPECT_EQ(last, 1500u);
}

// ---- the simulated power loss -----------------------------------------------

// One line per event, written with one write(2) (O_APPEND) before the next
// step, so a kill -9 loses at most the event in progress.
void log_line(int fd, const std::string& line) { (void)!::write(fd, (line + "\n").data(), line.size() + 1); }

int open_log(const std::string& path) { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600); }

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Sends sequences from `from` to `to`, durably, alternating single durable
// sends with batches confirmed by one wait_durable; logs each confirmed one.
pid_t spawn_durable_producer(const std::string& name, std::uint64_t from, std::uint64_t to, const std::string& log) {
  return spawn([=] {
    auto p = Producer::attach(Queue::open("dq"), name);
    const int fd = open_log(log);
    std::uint64_t seq = std::max(from, p.last_sequence() + 1);
    while (seq <= to) {
      const std::uint64_t batch_end = std::min(to, seq + (seq % 3 == 0 ? 7 : 0));
      const std::uint64_t first = seq;
      for (; seq <= batch_end; ++seq) {
        if (p.send(seq, bytes_of(name + "/" + std::to_string(seq)), 10s) != Status::Ok) return 2;
      }
      if (p.wait_durable(10s) != Status::Ok) return 3;
      for (std::uint64_t s = first; s < seq; ++s) log_line(fd, std::to_string(s));
    }
    return 0;
  });
}

// Receives in `group` until killed (or, with `idle`, until nothing came for
// that long); logs "producer seq redelivered" before each ack.
pid_t spawn_logging_consumer(const std::string& group, const std::string& log, Duration idle = kForever) {
  return spawn([=] {
    Queue q = Queue::open("dq");
    auto c = Consumer::join(q, group);
    const int fd = open_log(log);
    Message m;
    for (;;) {
      const Status s = c.receive(m, idle);
      if (s == Status::Timeout) return 0;
      if (s != Status::Ok) return 2;
      const std::string payload(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
      log_line(fd, payload + " " + (m.redelivered ? "1" : "0"));
      if (c.ack(m) != Status::Ok) return 3;
    }
  });
}

struct Delivery {
  std::string message;  // "producer/seq"
  bool redelivered = false;
};

std::vector<Delivery> deliveries(const std::string& log) {
  std::vector<Delivery> out;
  for (const std::string& line : read_lines(log)) {
    std::istringstream in(line);
    Delivery d;
    int flag = -1;
    if (in >> d.message >> flag) out.push_back({d.message, flag == 1});
  }
  return out;
}

// Every confirmed message reaches every group after the power loss; a message
// delivered twice is flagged the second time; each producer resumes its
// sequence, and its resent confirmed sequences are refused.
TEST_F(DurableTest, PowerLossLosesNothingConfirmedDurable) {
  const std::vector<std::string> producers{"pa", "pb", "pc"};
  const std::vector<std::string> groups{"g1", "g2"};
  constexpr std::uint64_t kPerProducer = 400;
  std::mt19937 rng(static_cast<std::uint32_t>(::getpid()));
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string logs = dir_ + "/round" + std::to_string(round);
    fs::create_directories(logs);
    const auto sent_log = [&](const std::string& p) { return logs + "/sent." + p; };
    const auto got_log = [&](const std::string& g) { return logs + "/got." + g; };
    Queue::remove("dq");
    fs::remove_all(journal());
    {
      // The groups exist before anything is sent: a group created later would
      // start after what the others had already acked.
      Queue q = make_durable_queue();
      for (const auto& g : groups) Consumer::join(q, g);
    }

    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(Queue::open("dq")));
    std::vector<pid_t> pids;
    for (const auto& g : groups) pids.push_back(spawn_logging_consumer(g, got_log(g)));
    for (const auto& p : producers) pids.push_back(spawn_durable_producer(p, 1, kPerProducer, sent_log(p)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 200));
    // The power loss: everything dies at once, and shared memory is gone.
    ::kill(d.pid(), SIGKILL);
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    d.kill9();
    for (pid_t pid : pids) wait_exit(pid);
    remove_segment();

    Daemon again = start_daemon();
    ASSERT_TRUE(eventually([] { return Queue::list().size() == 1; })) << "shmqd did not rebuild the queue";
    Queue q = Queue::open("dq");
    ASSERT_TRUE(again.serves(q));
    // Producers resume: a resent confirmed sequence is refused, then they finish.
    for (const auto& name : producers) {
      auto p = Producer::attach(q, name);
      const auto confirmed = read_lines(sent_log(name));
      if (!confirmed.empty()) {
        const std::uint64_t last = std::stoull(confirmed.back());
        EXPECT_GE(p.last_sequence(), last) << name;
        EXPECT_EQ(p.send(last, bytes_of("again"), 1s), Status::Duplicate) << name;
      }
    }
    std::vector<pid_t> consumers, finish;
    for (const auto& g : groups) consumers.push_back(spawn_logging_consumer(g, got_log(g)));
    for (const auto& p : producers) finish.push_back(spawn_durable_producer(p, 1, kPerProducer, sent_log(p)));
    for (pid_t pid : finish) ASSERT_EQ(wait_exit(pid), 0);
    // Every group acked everything (a consumer logs a message before its
    // ack): then the consumers stop. Not an idle timeout, which a slow
    // journal set-up after the rebuild (TSan, a loaded host) would outlast.
    const auto drained = [&] {
      const QueueInfo info = q.info();
      return std::all_of(groups.begin(), groups.end(), [&](const std::string& g) {
        const GroupInfo& gi = group(info, g);
        return gi.lag_messages == 0 && gi.in_flight == 0;
      });
    };
    EXPECT_TRUE(eventually(drained, 60s)) << "the groups never caught up";
    for (pid_t pid : consumers) {
      ::kill(pid, SIGKILL);
      wait_exit(pid);
    }

    for (const auto& g : groups) {
      SCOPED_TRACE("group " + g);
      std::set<std::string> seen;
      std::map<std::string, std::uint64_t> last_first_delivery;
      for (const Delivery& dl : deliveries(got_log(g))) {
        const bool again_delivered = !seen.insert(dl.message).second;
        EXPECT_TRUE(!again_delivered || dl.redelivered) << dl.message << " delivered twice, unflagged";
        const auto slash = dl.message.find('/');
        const std::string producer = dl.message.substr(0, slash);
        const std::uint64_t seq = std::stoull(dl.message.substr(slash + 1));
        if (!again_delivered && !dl.redelivered) {
          EXPECT_GT(seq, last_first_delivery[producer]) << dl.message << " out of order";
          last_first_delivery[producer] = seq;
        }
      }
      for (const auto& p : producers) {
        for (const std::string& s : read_lines(sent_log(p))) {
          EXPECT_TRUE(seen.contains(p + "/" + s)) << p << "/" << s << " confirmed durable, never delivered";
        }
        // What was journaled but not yet confirmed survives too, and what was
        // lost unjournaled was resent: in the end every sequence is there.
        for (std::uint64_t seq = 1; seq <= kPerProducer; ++seq) {
          EXPECT_TRUE(seen.contains(p + "/" + std::to_string(seq))) << p << "/" << seq << " never delivered";
        }
      }
    }
    again.terminate();
  }
}

// ---- a failed fdatasync ("fsyncgate") -------------------------------------------

// What a power loss leaves of the bytes the shim says a failed fdatasync may
// have lost (tests/daemon/fail_sync_shim.cpp): zeroes, unless written anew
// (cut by a later truncate, then written and synced again).
void lose_unsynced_bytes(const std::string& log) {
  std::map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> lost;
  std::ifstream in(log);
  std::string kind, path;
  while (in >> kind >> path) {
    std::uint64_t a = 0, b = 0;
    if (kind == "lost" && in >> a >> b) lost[path].push_back({a, b});
    if (kind == "truncate" && in >> a) {
      for (auto& [from, to] : lost[path]) to = std::min(to, std::max(from, a));
    }
  }
  for (const auto& [file, ranges] : lost) {
    const int fd = ::open(file.c_str(), O_WRONLY);
    if (fd < 0) continue;  // deleted since: nothing of it is read again
    const auto size = static_cast<std::uint64_t>(::lseek(fd, 0, SEEK_END));
    for (const auto& [from, to] : ranges) {
      if (from >= std::min(to, size)) continue;
      const std::vector<char> zeros(std::min(to, size) - from, 0);
      EXPECT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(from)),
                static_cast<ssize_t>(zeros.size()));
    }
    ::close(fd);
  }
}

// Linux may drop the pages a failed fdatasync could not write while they read
// back fine from the page cache. shmqd must not trust them: it writes again
// everything since its last good sync, and confirms only after a sync that
// succeeded. The shim fails one fdatasync and records what it "lost"; the
// simulated power loss zeroes that: every confirmed message must survive.
TEST_F(DurableTest, AFailedSyncIsWrittenAgainNotTrusted) {
  Queue q = make_durable_queue();
  const std::string trigger = dir_ + "/fail-next-sync";
  const std::string lost_log = dir_ + "/lost.log";
  const char* asan = std::getenv("ASAN_OPTIONS");
  ::setenv("LD_PRELOAD", FAIL_SYNC_SHIM, 1);
  ::setenv("ASAN_OPTIONS", (std::string(asan ? asan : "") + ":verify_asan_link_order=0").c_str(), 1);
  ::setenv("SHMQ_TEST_FAIL_SYNC", trigger.c_str(), 1);
  ::setenv("SHMQ_TEST_LOST_LOG", lost_log.c_str(), 1);
  Daemon d = start_daemon();
  ::unsetenv("LD_PRELOAD");
  asan ? ::setenv("ASAN_OPTIONS", asan, 1) : ::unsetenv("ASAN_OPTIONS");
  ASSERT_TRUE(d.serves(q));
  {
    auto p = Producer::attach(q, "p");
    for (int i = 1; i <= 400; ++i) {
      if (i == 201) std::ofstream(trigger).put('x');
      ASSERT_EQ(p.send(bytes_of(payload_for(i)), Confirm::Durable, 20s), Status::Ok) << i;
    }
  }
  EXPECT_FALSE(fs::exists(trigger)) << "no fdatasync failed";
  EXPECT_NE(slurp(lost_log).find("lost "), std::string::npos);
  d.kill9();
  lose_unsynced_bytes(lost_log);
  const auto records = journaled();  // throws at damage in the middle
  ASSERT_EQ(records.size(), 400u);
  for (std::size_t i = 0; i < records.size(); ++i) ASSERT_EQ(records[i], "0:" + std::to_string(i + 1));
}

// ---- damaged journals ---------------------------------------------------------

class DamagedJournalTest : public DurableTest {
 protected:
  // 100 durable messages, shmqd stopped, the segment gone: the journal is all.
  void journal_100_and_lose_memory() {
    Queue q = make_durable_queue();
    {
      Daemon d = start_daemon();
      ASSERT_TRUE(d.serves(q));
      auto c = Consumer::join(q, "g");  // a group, so that the rebuild owes it everything
      auto p = Producer::attach(q, "p");
      for (int i = 1; i <= 100; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), 10s), Status::Ok);
      ASSERT_EQ(p.wait_durable(10s), Status::Ok);
      // The checkpoint (group g at its start) is written within 100 ms, and at stop.
      ASSERT_EQ(d.terminate(), 0);
    }
    remove_segment();
  }

  fs::path only_segment() const {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(journal())) {
      if (e.path().extension() == ".journal") files.push_back(e.path());
    }
    EXPECT_EQ(files.size(), 1u);
    return files.front();
  }

  // Starts shmqd, waits for the rebuild (or not), returns what group g gets.
  std::vector<std::string> rebuild_and_receive(const std::vector<std::string>& args, const std::string& log) {
    Daemon d = start_daemon(args, log);
    std::vector<std::string> got;
    if (!eventually([] { return Queue::list().size() == 1; }, 3000ms)) return got;
    Queue q = Queue::open("dq");
    auto c = Consumer::join(q, "g");
    Message m;
    while (c.receive(m, 300ms) == Status::Ok) {
      got.emplace_back(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
      EXPECT_TRUE(m.redelivered);
      EXPECT_EQ(c.ack(m), Status::Ok);
    }
    return got;
  }
};

// A torn tail is cut at the last good record and reported: the file cut
// inside the last data record (the checkpoint after it goes too) leaves the
// 99 before it; a flipped byte in the file's last record (the checkpoint
// written at shmqd's stop) leaves all 100.
TEST_F(DamagedJournalTest, ATornTailIsCutAndEveryGoodRecordComesBack) {
  for (const int damage : {1, 5, 8, -1}) {  // bytes of the last payload cut off; -1: flip the file's last byte
    SCOPED_TRACE("damage " + std::to_string(damage));
    fs::remove_all(journal());
    Queue::remove("dq");
    journal_100_and_lose_memory();
    const fs::path file = only_segment();
    // The last record ends the file unless a checkpoint follows it: cut or
    // flip inside the last data record, found by its payload.
    std::string bytes = slurp(file.string());
    const auto last = bytes.rfind(payload_for(100));
    ASSERT_NE(last, std::string::npos);
    if (damage > 0) {
      fs::resize_file(file, last + payload_for(100).size() - static_cast<std::size_t>(damage));
    } else {
      bytes.back() ^= 0x40;
      std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    }
    const std::size_t expected = damage > 0 ? 99 : 100;
    const std::string log = dir_ + "/shmqd.log";
    const auto got = rebuild_and_receive({}, log);
    ASSERT_EQ(got.size(), expected) << slurp(log);
    EXPECT_EQ(got.front(), payload_for(1));
    EXPECT_EQ(got.back(), payload_for(expected));
    EXPECT_NE(slurp(log).find("torn"), std::string::npos) << slurp(log);
  }
}

// Damage in the middle stops the rebuild with a clear error; --salvage
// rebuilds without the damaged record and says so.
TEST_F(DamagedJournalTest, DamageInTheMiddleStopsTheRebuildUnlessSalvaged) {
  journal_100_and_lose_memory();
  const fs::path file = only_segment();
  std::string bytes = slurp(file.string());
  const auto middle = bytes.find(payload_for(50));
  ASSERT_NE(middle, std::string::npos);
  bytes[middle] ^= 0x40;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;

  const std::string log = dir_ + "/refused.log";
  EXPECT_TRUE(rebuild_and_receive({}, log).empty());
  EXPECT_TRUE(Queue::list().empty());
  EXPECT_NE(slurp(log).find("not rebuilt"), std::string::npos) << slurp(log);
  EXPECT_NE(slurp(log).find("--salvage"), std::string::npos) << slurp(log);

  const std::string salvage_log = dir_ + "/salvaged.log";
  const auto got = rebuild_and_receive({"--salvage"}, salvage_log);
  EXPECT_EQ(got.size(), 99u) << slurp(salvage_log);
  EXPECT_EQ(std::count(got.begin(), got.end(), payload_for(50)), 0);
  EXPECT_NE(slurp(salvage_log).find("skipped"), std::string::npos) << slurp(salvage_log);
}

// ---- disk full ----------------------------------------------------------------

// The data directory on a 1 MiB tmpfs: once the journal fills it, durable
// sends wait (Timeout) instead of confirming, the header reports the error;
// when space comes back, the journal catches up and confirms.
TEST_F(DurableTest, ADiskFullJournalDelaysConfirmsAndNeverConfirmsWhatIsNotOnDisk) {
  const std::string mnt = dir_ + "/small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a 1 MiB tmpfs here (" << std::strerror(errno)
                 << "): needs root or CAP_SYS_ADMIN; the disk-full path is untested on this machine";
  }
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mnt};
  // Most of the space taken by a file we can delete later.
  {
    std::ofstream filler(mnt + "/filler", std::ios::binary);
    filler << std::string(900 << 10, 'x');
  }
  Queue q = make_durable_queue(256 << 10, 4096);
  const std::string log = dir_ + "/full.log";
  Daemon d = Daemon::start(mnt, {}, log);
  ASSERT_TRUE(d.serves(q));
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  const std::string payload(4000, 'd');
  Status s = Status::Ok;
  std::uint64_t confirmed = 0;
  while ((s = p.send(bytes_of(payload), Confirm::Durable, 500ms)) == Status::Ok) {
    ++confirmed;
    Message m;
    while (c.try_receive(m) == Status::Ok) ASSERT_EQ(c.ack(m), Status::Ok);
    ASSERT_LT(confirmed, 1000u) << "1 MiB never filled up";
  }
  EXPECT_EQ(s, Status::Timeout);
  EXPECT_EQ(q.info().journal_error, ENOSPC) << "the header reports the failing journal (shmq-stat shows it)";
  // Nothing unconfirmed is reported synced.
  EXPECT_LE(q.info().journal_synced, p.last_position());

  fs::remove(mnt + "/filler");
  EXPECT_EQ(p.wait_durable(10s), Status::Ok);
  EXPECT_EQ(q.info().journal_error, 0);
  EXPECT_EQ(p.send(bytes_of(payload), Confirm::Durable, 10s), Status::Ok);
  // Every retry reopens the journal; the log says so once per failure.
  const std::string text = slurp(log);
  EXPECT_EQ(text.find("journal reopened"), text.rfind("journal reopened")) << text;
}

}  // namespace
}  // namespace shmq::test
