// shmqd's systemd notifications (daemon/service_notify.hpp) without systemd:
// the test binds the datagram socket that $NOTIFY_SOCKET names, as systemd
// does for a Type=notify unit, and reads what shmqd sends. READY=1 must come
// only once a durable queue whose segment was gone is rebuilt; STOPPING=1
// after SIGTERM; WATCHDOG=1 when $WATCHDOG_USEC is set. And shmqd --config
// FILE, which the unit passes when /etc/shmq/<namespace>.conf exists.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <fstream>

#include "daemon_support.hpp"
#include "journaling/pipeline.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

// The socket systemd would listen on: abstract ("@name") or a path.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@') addr.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), length) != 0) {
      throw std::runtime_error("bind " + name + ": " + std::strerror(errno));
    }
  }
  ~NotifySocket() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  // The next datagram, or "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout = 10s) const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
  }
  // Reads until a datagram with `line` as one of its lines arrives; returns it ("" if none did).
  std::string await(const std::string& line, std::chrono::milliseconds timeout = 10s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      const std::string got = next(left);
      if (got.empty()) return {};
      if (("\n" + got + "\n").find("\n" + line + "\n") != std::string::npos) return got;
    }
  }

 private:
  std::string name_;
  int fd_ = -1;
};

class NotifyTest : public DaemonTest {
 protected:
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    DaemonTest::TearDown();
  }
  std::string abstract_name() const { return "@shmq-notify-test-" + std::to_string(::getpid()) + "-" + ns_; }

  // A durable queue "dq" with 10 messages in its journal (shmqd's own
  // pipeline, in this process), then its segment removed: the next shmqd
  // rebuilds it from <data dir>/journal/dq before it serves.
  void journal_then_remove() {
    QueueOptions o;
    o.capacity = kRing;
    o.max_message = 256;
    o.durable = true;
    Queue q = Queue::create("dq", o);
    (void)Consumer::join(q, "g");
    {
      daemon::JournalPipeline pipeline(q, fs::path(dir_) / "journal" / "dq", {});
      auto p = Producer::attach(q, "p");
      for (int i = 1; i <= 10; ++i) ASSERT_EQ(p.send(bytes_of(payload_of(i)), 10s), Status::Ok);
      ASSERT_EQ(p.wait_durable(10s), Status::Ok);
    }
    ASSERT_TRUE(Queue::remove("dq"));
  }
};

TEST_F(NotifyTest, ReadyComesAfterTheRebuildAndStoppingAfterSigterm) {
  journal_then_remove();
  ASSERT_FALSE(fs::exists(shm_dir() / ("shmq." + ns_ + ".dq")));
  const NotifySocket socket(abstract_name());
  ::setenv("NOTIFY_SOCKET", abstract_name().c_str(), 1);
  auto d = start_daemon();
  const std::string ready = socket.await("READY=1");
  ASSERT_FALSE(ready.empty()) << "no READY=1 from shmqd within 10 s";
  EXPECT_NE(ready.find("STATUS=watching namespace '" + ns_ + "'"), std::string::npos) << ready;
  // The rebuild came first: the queue is back with its messages.
  Queue q = Queue::open("dq");
  EXPECT_EQ(group(q.info(), "g").lag_messages, 10u);
  EXPECT_EQ(d.terminate(), 0);
  EXPECT_FALSE(socket.await("STOPPING=1", 2s).empty()) << "no STOPPING=1 after SIGTERM";
}

TEST_F(NotifyTest, WatchdogPingsWhenAskedAtAPathSocket) {
  const std::string path = dir_ + "/notify.sock";
  const NotifySocket socket(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "400000", 1);  // a ping every 200 ms
  auto d = start_daemon();
  ASSERT_FALSE(socket.await("READY=1").empty());
  EXPECT_FALSE(socket.await("WATCHDOG=1").empty());
  EXPECT_FALSE(socket.await("WATCHDOG=1").empty()) << "one ping only";
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(NotifyTest, NoWatchdogPingsUnlessAsked) {
  const NotifySocket socket(abstract_name());
  ::setenv("NOTIFY_SOCKET", abstract_name().c_str(), 1);
  auto d = start_daemon();
  ASSERT_FALSE(socket.await("READY=1").empty());
  EXPECT_EQ(d.terminate(), 0);
  // Everything after READY=1 up to the stop: no WATCHDOG=1 among it.
  for (std::string got = socket.next(2s); !got.empty(); got = socket.next(2s)) {
    EXPECT_EQ(got.find("WATCHDOG=1"), std::string::npos) << got;
    if (got.find("STOPPING=1") != std::string::npos) break;
  }
}

// shmqd started with exactly `args` (no --data-dir of the test's: the config
// file gives it), stderr to `log`.
Daemon start_plain(const std::vector<std::string>& args, const std::string& log) {
  std::vector<std::string> argv{SHMQD_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    die_with_parent(parent);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 2);
    ::dup2(fd, 1);
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    ::execv(c[0], c.data());
    ::_exit(127);
  }
  return Daemon::adopt(pid);
}

class ConfigTest : public NotifyTest {
 protected:
  std::string write_config(const std::string& text) {
    const std::string path = dir_ + "/shmqd.conf";
    std::ofstream(path) << text;
    return path;
  }
  std::string log_ = "";
  void SetUp() override {
    NotifyTest::SetUp();
    log_ = dir_ + "/stderr.log";
  }
};

TEST_F(ConfigTest, EveryKeyIsALongOption) {
  const std::string data = dir_ + "/from-config";
  const std::string config = write_config("# shmqd's options\n"
                                          "namespace = \"" + ns_ + "\"\n"
                                          "data-dir = \"" + data + "\"\n"
                                          "log-level = \"debug\"\n"
                                          "log-file = \"" + dir_ + "/shmqd.log\"\n"
                                          "journal-segment-mib = 2\n"
                                          "retention-seconds = 3600\n"
                                          "foreground = true\n"
                                          "salvage = false\n");
  ::unsetenv("SHMQ_NAMESPACE");  // the namespace comes from the file
  const NotifySocket socket(abstract_name());
  ::setenv("NOTIFY_SOCKET", abstract_name().c_str(), 1);
  auto d = start_plain({"--config", config}, log_);
  ::setenv("SHMQ_NAMESPACE", ns_.c_str(), 1);
  ASSERT_FALSE(socket.await("READY=1").empty()) << slurp(log_);
  EXPECT_TRUE(fs::is_directory(data)) << "data-dir from the file";
  const std::string log = slurp(dir_ + "/shmqd.log");
  EXPECT_NE(log.find("shmqd up: namespace '" + ns_ + "', data directory " + data), std::string::npos) << log;
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(ConfigTest, TheCommandLineWins) {
  const std::string config = write_config("data-dir = \"" + dir_ + "/from-config\"\n");
  const std::string data = dir_ + "/from-command-line";
  const NotifySocket socket(abstract_name());
  ::setenv("NOTIFY_SOCKET", abstract_name().c_str(), 1);
  auto d = start_plain({"--config", config, "--data-dir", data}, log_);
  ASSERT_FALSE(socket.await("READY=1").empty()) << slurp(log_);
  EXPECT_TRUE(fs::is_directory(data));
  EXPECT_FALSE(fs::exists(dir_ + "/from-config"));
  EXPECT_EQ(d.terminate(), 0);
}

TEST_F(ConfigTest, AnUnknownKeyABadValueOrAMissingFileIsAUsageError) {
  auto d = start_plain({"--config", write_config("data-dir = \"" + dir_ + "\"\nretension-mib = 5\n")}, log_);
  EXPECT_EQ(d.exit_code(), 2);
  EXPECT_NE(slurp(log_).find("retension-mib"), std::string::npos) << slurp(log_);
  d = start_plain({"--config", write_config("metrics = \"nowhere\"\n")}, log_);
  EXPECT_EQ(d.exit_code(), 2);
  EXPECT_NE(slurp(log_).find("HOST:PORT"), std::string::npos) << slurp(log_);
  d = start_plain({"--config", dir_ + "/absent.conf"}, log_);
  EXPECT_EQ(d.exit_code(), 2);
  EXPECT_NE(slurp(log_).find("absent.conf"), std::string::npos) << slurp(log_);
}

}  // namespace
}  // namespace shmq::test
