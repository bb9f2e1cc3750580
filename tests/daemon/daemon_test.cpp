// shmqd as a process: its command line, its lock, standby takeover, queue
// discovery, clean shutdown, and what it must not take for a death.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "daemon_support.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"

namespace shmq::test {
namespace {

Queue make_queue(const std::string& name = "q") {
  QueueOptions o;
  o.capacity = 1 << 16;
  o.max_message = 256;
  return Queue::create(name, o);
}

TEST_F(DaemonTest, UsageErrorsExitWith2) {
  EXPECT_EQ(Daemon::start(dir_, {"--no-such-option"}).exit_code(), 2);
  EXPECT_EQ(Daemon::start(dir_, {"--log-level", "loud"}).exit_code(), 2);
  EXPECT_EQ(Daemon::start(dir_, {"--namespace", "not.valid"}).exit_code(), 2);
}

TEST_F(DaemonTest, CreatesAMissingDataDirPrivate) {
  const std::string nested = dir_ + "/a/b";
  auto d = Daemon::start(nested);
  auto q = make_queue();
  ASSERT_TRUE(d.serves(q));
  struct stat st {};
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(std::filesystem::exists("/dev/shm/shmqd." + ns_)) << "the namespace's lock and record";
}

TEST_F(DaemonTest, RefusesADataDirOthersMayWrite) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  const std::string log = "/tmp/" + ns_ + ".log";
  EXPECT_EQ(Daemon::start(dir_, {}, log).exit_code(), 1);
  EXPECT_NE(slurp(log).find("writable by group or others"), std::string::npos) << slurp(log);
  std::filesystem::remove(log);
}

TEST_F(DaemonTest, CleanShutdownOnSigtermAndSigintWithdrawsItsIdentity) {
  auto q = make_queue();
  for (int sig : {SIGTERM, SIGINT}) {
    auto d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    EXPECT_TRUE(q.info().daemon_alive);
    EXPECT_EQ(daemon_pid(), d.pid()) << "its record names it";
    EXPECT_EQ(d.terminate(sig), 0);
    EXPECT_EQ(daemon_pid_of(q), 0) << "shmq-stat must not show a daemon that left";
    EXPECT_EQ(daemon_pid(), 0) << "a record naming a process gone is no running shmqd";
  }
}

TEST_F(DaemonTest, SecondInstanceExitsWithAClearMessage) {
  auto first = start_daemon();
  auto q = make_queue();
  ASSERT_TRUE(first.serves(q));
  const std::string log = dir_ + "/second.log";
  EXPECT_EQ(Daemon::start(dir_, {}, log).exit_code(), 1);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("already runs"), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(first.pid())), std::string::npos) << "names the holder: " << text;
  EXPECT_NE(text.find("--standby"), std::string::npos) << text;
  EXPECT_EQ(daemon_pid_of(q), first.pid());
}

// The takeover time is printed, not asserted: speed is measured in bench/,
// and a loaded 2-core CI machine can delay any process by hundreds of ms.
TEST_F(DaemonTest, StandbyTakesOverAndRepairs) {
  auto q = make_queue();
  auto first = start_daemon();
  ASSERT_TRUE(first.serves(q));
  auto standby = start_daemon({"--standby"});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(daemon_pid_of(q), first.pid()) << "a standby waits";
  const auto killed = std::chrono::steady_clock::now();
  first.kill9();
  ASSERT_TRUE(standby.serves(q, 2000ms));
  const auto took = std::chrono::steady_clock::now() - killed;
  std::printf("standby took over in %.3f ms\n", std::chrono::duration<double, std::milli>(took).count());

  // It repairs: a consumer killed holding messages has them redelivered.
  auto p = Producer::attach(q, "p");
  for (int i = 0; i < 3; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  auto survivor = Consumer::join(q, "g");
  kill_a_consumer_holding("q", "g", 3);
  Message m;
  ASSERT_EQ(survivor.receive(m, 5s), Status::Ok);
  EXPECT_TRUE(m.redelivered);
}

// `shmqd &` dies with its terminal unless SIGHUP is handled: it reopens the
// log file (logrotate moved it), says so, and goes on serving.
TEST_F(DaemonTest, SighupReopensTheLogAndKeepsServing) {
  auto q = make_queue();
  const std::string log = dir_ + "/shmqd.log";
  auto d = start_daemon({"--log-file", log});
  ASSERT_TRUE(d.serves(q));
  std::filesystem::rename(log, log + ".1");
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return slurp(log).find("SIGHUP") != std::string::npos; })) << "a new log file";
  // Still serving: a consumer killed holding a message gets it redelivered.
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  auto survivor = Consumer::join(q, "g");
  kill_a_consumer_holding("q", "g", 1);
  Message m;
  EXPECT_EQ(survivor.receive(m, 5s), Status::Ok);
  EXPECT_EQ(daemon_pid_of(q), d.pid());
}

// Its stderr lines fit where they go: the journal (JOURNAL_STREAM names its
// stderr) gets a syslog priority prefix and no time; anything else an ISO-8601
// time with its UTC offset.
TEST_F(DaemonTest, LogLinesFitTheJournalOrCarryAnIsoTime) {
  const std::regex journal_line(R"(<[0-7]>[^<].*)");
  const std::regex timestamped_line(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}[+-]\d\d:\d\d \w+ shmqd\[\d+\]: .*)");
  const std::string log = dir_ + "/stderr.log";
  const auto lines_of_a_run = [&](const char* journal_stream) {
    std::ofstream(log).flush();  // the file the daemon's stderr will be (O_TRUNC keeps its inode)
    struct stat st {};
    EXPECT_EQ(::stat(log.c_str(), &st), 0);
    const std::string here = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    if (journal_stream != nullptr) ::setenv("JOURNAL_STREAM", *journal_stream ? journal_stream : here.c_str(), 1);
    auto d = start_daemon({"--log-level", "info"}, log);
    ::unsetenv("JOURNAL_STREAM");
    auto q = make_queue("logged");
    EXPECT_TRUE(d.serves(q));
    EXPECT_EQ(d.terminate(SIGTERM), 0);
    std::vector<std::string> lines;
    std::istringstream text(slurp(log));
    for (std::string line; std::getline(text, line);) lines.push_back(line);
    EXPECT_FALSE(lines.empty());
    Queue::remove("logged");
    return lines;
  };
  for (const auto& line : lines_of_a_run(""))  // JOURNAL_STREAM names stderr
    EXPECT_TRUE(std::regex_match(line, journal_line)) << line;
  for (const char* other : {static_cast<const char*>(nullptr), "1:1", "junk"})  // stderr is not the journal
    for (const auto& line : lines_of_a_run(other))
      EXPECT_TRUE(std::regex_match(line, timestamped_line)) << (other ? other : "(unset)") << ": " << line;
}

// Every other signal that would end it is logged, and it ends cleanly.
TEST_F(DaemonTest, StopSignalsAreLoggedAndEndItCleanly) {
  for (const int sig : {SIGTERM, SIGQUIT, SIGUSR1}) {
    auto q = make_queue("q" + std::to_string(sig));
    const std::string log = dir_ + "/stop.log";
    auto d = start_daemon({}, log);
    ASSERT_TRUE(d.serves(q));
    EXPECT_EQ(d.terminate(sig), 0) << ::strsignal(sig);
    EXPECT_NE(slurp(log).find("shutting down"), std::string::npos) << slurp(log);
    EXPECT_EQ(daemon_pid_of(q), 0);
  }
}

TEST_F(DaemonTest, StandbyStopsCleanlyWhileWaiting) {
  auto first = start_daemon();
  auto q = make_queue();
  ASSERT_TRUE(first.serves(q));
  auto standby = start_daemon({"--standby"});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(standby.terminate(), 0);
  EXPECT_EQ(daemon_pid_of(q), first.pid());
}

// Queues created after the daemon are found (inotify), served, and let go of
// when deleted.
TEST_F(DaemonTest, FindsQueuesAsTheyAreCreatedAndDeleted) {
  auto d = start_daemon();
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists("/dev/shm/shmqd." + ns_); }));
  std::this_thread::sleep_for(100ms);  // the daemon is in its loop, or about to scan
  auto q = make_queue("late");
  ASSERT_TRUE(d.serves(q, 500ms)) << "found by inotify, not by the 1 s rescan";
  const std::string maps = "/proc/" + std::to_string(d.pid()) + "/maps";
  EXPECT_NE(slurp(maps).find("shmq." + ns_ + ".late"), std::string::npos);
  ASSERT_TRUE(Queue::remove("late"));
  EXPECT_TRUE(eventually([&] { return slurp(maps).find("shmq." + ns_ + ".late") == std::string::npos; }, 500ms))
      << "the daemon unmaps a deleted queue";
  auto again = make_queue("late");  // the same name, a new segment
  EXPECT_TRUE(d.serves(again, 500ms));
}

// A stopped process is alive: nothing is taken from it, and its acks count.
TEST_F(DaemonTest, StoppedConsumerKeepsWhatItHolds) {
  auto q = make_queue();
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  auto p = Producer::attach(q, "p");
  for (int i = 0; i < 6; ++i) ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  auto other = Consumer::join(q, "g");
  Pipe holding, go_on;
  const pid_t child = spawn_consumer_acking_on_signal("q", "g", 3, holding, go_on);
  ASSERT_TRUE(holding.wait());
  ::kill(child, SIGSTOP);
  std::this_thread::sleep_for(1s);
  Message m;
  for (std::uint64_t seq = 4; seq <= 6; ++seq) {
    ASSERT_EQ(other.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, seq);
    EXPECT_FALSE(m.redelivered);
    ASSERT_EQ(other.ack(m), Status::Ok);
  }
  EXPECT_EQ(other.receive(m, 200ms), Status::Timeout) << "nothing of the stopped consumer comes back";
  auto info = q.info();
  EXPECT_EQ(info.redelivered, 0u);
  EXPECT_EQ(info.clients_reaped, 0u);
  ASSERT_EQ(info.groups[0].consumers.size(), 2u);
  ::kill(child, SIGCONT);
  go_on.signal();
  EXPECT_EQ(wait_exit(child), 0);
  info = q.info();
  EXPECT_EQ(info.groups[0].acked, 6u);
  EXPECT_EQ(info.groups[0].lag_messages, 0u);
  EXPECT_EQ(info.redelivered, 0u);
}

// A client stopped while it holds one queue's lock (in attach, say) must not
// hang the daemon: other queues are still repaired, and that one is as soon
// as the lock is free.
TEST_F(DaemonTest, AQueueLockHeldByAStoppedClientHangsNothingElse) {
  auto busy = make_queue("busy");
  auto q = make_queue("q");
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(busy));
  ASSERT_TRUE(d.serves(q));
  Pipe locked;
  const pid_t holder = spawn([&] {
    auto queue = Queue::open("busy");
    detail::SegmentLock lock(*detail::mapping_of(queue));
    locked.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(locked.wait());
  ::kill(holder, SIGSTOP);
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(bytes_of("m")), Status::Ok);
  auto survivor = Consumer::join(q, "g");
  kill_a_consumer_holding("q", "g", 1);
  Message m;
  ASSERT_EQ(survivor.receive(m, 2s), Status::Ok) << "the other queue is repaired";
  EXPECT_TRUE(m.redelivered);
  ::kill(holder, SIGKILL);
  wait_exit(holder);
  EXPECT_TRUE(d.serves(busy));
}

// A port nobody listens on now (the kernel's pick for a throwaway socket).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One HTTP/1.0 exchange; empty when nothing listens.
std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    (void)!::write(fd, request.data(), request.size());
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) reply.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return reply;
}

TEST_F(DaemonTest, ServesPrometheusMetrics) {
  auto q = make_queue("observed");
  const int port = free_port();
  auto d = start_daemon({"--metrics", "127.0.0.1:" + std::to_string(port)});
  ASSERT_TRUE(d.serves(q));
  std::string reply;
  ASSERT_TRUE(eventually([&] { return !(reply = http_get(port, "/metrics")).empty(); }));
  EXPECT_TRUE(reply.starts_with("HTTP/1.0 200 OK")) << reply;
  EXPECT_NE(reply.find("text/plain; version=0.0.4"), std::string::npos) << reply;
  EXPECT_NE(reply.find("queue=\"observed\""), std::string::npos) << reply;
  EXPECT_TRUE(http_get(port, "/other").starts_with("HTTP/1.0 404"));
  EXPECT_EQ(d.terminate(), 0);
}

// An entry that names a live process, with its true start time, but whose
// entry lock nobody holds (fabricated, or left by a client of another pid
// namespace whose pid this one reuses) is a dead client: the daemon reaps it.
// Liveness is the lock's word, never the pid's (pid_namespace_test.cpp has
// the live entries that name dead pids).
TEST_F(DaemonTest, AnEntryNamingALiveProcessWithoutItsLockIsReaped) {
  auto q = make_queue();
  {
    auto p = Producer::attach(q, "ghost");
    ASSERT_EQ(p.try_send(bytes_of("x")), Status::Ok);
  }
  auto d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  {
    auto& slot = detail::mapping_of(q)->producers[0];
    detail::SegmentLock lock(*detail::mapping_of(q));
    slot.pid.store(::getpid());
    slot.start_time.store(detail::self_start_time());
    slot.pid_ns.store(detail::self_pid_namespace());
    slot.state.store(static_cast<std::uint32_t>(layout::SlotState::Attached));
    announce(q);
  }
  EXPECT_TRUE(eventually([&] { return !q.info().producers.at(0).attached; }, 2000ms));
  EXPECT_EQ(q.info().clients_reaped, 1u);
  auto again = Producer::attach(q, "ghost");
  EXPECT_EQ(again.last_sequence(), 1u);
}

}  // namespace
}  // namespace shmq::test
