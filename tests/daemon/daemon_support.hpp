// Helpers for the shmqd tests: a daemon process to start and kill, a private
// data directory, and polling with a deadline.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "shm/layout.hpp"
#include "shm/liveness.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {

using namespace std::chrono_literals;

// The journal tests' queue: a 64 KiB ring, whose 100-byte payloads
// (payload_of) take 192 ring bytes, about 341 records a ring.
constexpr std::uint64_t kRing = 64 << 10;
constexpr std::size_t kPerRing = kRing / 192;

// "message <seq> " padded with dots to 100 bytes.
inline std::string payload_of(std::uint64_t seq) {
  std::string s = "message " + std::to_string(seq) + " ";
  s.resize(100, '.');
  return s;
}

// The group named `name` in a snapshot; throws when there is none.
inline const GroupInfo& group(const QueueInfo& info, const std::string& name) {
  for (const auto& g : info.groups) {
    if (g.name == name) return g;
  }
  throw std::runtime_error("no group " + name);
}

// Polls `done` every 200 us until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred&& done, std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

inline std::int64_t daemon_pid_of(const Queue& q) {
  return detail::mapping_of(q)->header->daemon_pid.load(std::memory_order_acquire);
}

// Tells a running shmqd that the queue's tables changed, as attach and join do.
inline void announce(const Queue& q) { detail::announce_table_change(*detail::mapping_of(q)); }

// One shmqd process, serving the test's namespace ($SHMQ_NAMESPACE).
class Daemon {
 public:
  Daemon() = default;
  // Starts `shmqd --data-dir DIR --foreground ARGS...`; its stderr goes to
  // `log` when given, else to the test's.
  static Daemon start(const std::string& data_dir, const std::vector<std::string>& args = {},
                      const std::string& log = {}) {
    std::vector<std::string> argv{SHMQD_PATH, "--data-dir", data_dir, "--foreground"};
    argv.insert(argv.end(), args.begin(), args.end());
    Daemon d;
    const pid_t parent = ::getpid();
    d.pid_ = ::fork();
    if (d.pid_ == 0) {
      die_with_parent(parent);  // no orphaned shmqd when the test aborts
      if (!log.empty()) {
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 2);
      }
      std::vector<char*> c;
      for (auto& a : argv) c.push_back(a.data());
      c.push_back(nullptr);
      ::execv(c[0], c.data());
      ::_exit(127);
    }
    return d;
  }
  // Takes over a shmqd process started some other way.
  static Daemon adopt(pid_t pid) {
    Daemon d;
    d.pid_ = pid;
    return d;
  }
  Daemon(Daemon&& o) noexcept : pid_(std::exchange(o.pid_, 0)) {}
  Daemon& operator=(Daemon&& o) noexcept {
    std::swap(pid_, o.pid_);
    return *this;
  }
  ~Daemon() {
    if (pid_ > 0) kill9();
  }

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Waits until `q`'s header names this daemon: it has repaired and watches the queue.
  [[nodiscard]] bool serves(const Queue& q, std::chrono::milliseconds timeout = 5000ms) const {
    return eventually([&] {
      return daemon_pid_of(q) == pid_ && detail::entry_held(*detail::mapping_of(q), detail::daemon_lock_byte());
    }, timeout);
  }
  int kill9() { return signal_and_wait(SIGKILL); }
  int terminate(int sig = SIGTERM) { return signal_and_wait(sig); }
  // Waits for it to exit by itself; returns its exit status.
  int exit_code() { return wait_exit(std::exchange(pid_, 0)); }

 private:
  int signal_and_wait(int sig) {
    ::kill(pid_, sig);
    return wait_exit(std::exchange(pid_, 0));
  }
  pid_t pid_ = 0;
};

// A DataDirTest whose data directory is shmqd's: consumers find its journal
// the way users do (a group that falls a ring behind reads it).
class DaemonTest : public DataDirTest {
 protected:
  Daemon start_daemon(const std::vector<std::string>& args = {}, const std::string& log = {}) {
    return Daemon::start(dir_, args, log);
  }
  static std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// The queue the daemon's crash tests share: 1 MiB ring, 256-byte messages.
inline Queue make_crash_queue() {
  QueueOptions o;
  o.capacity = 1 << 20;
  o.max_message = 256;
  return Queue::create("crash", o);
}

inline std::string payload_for(std::uint64_t seq) { return "payload " + std::to_string(seq); }

// A child process in `group` of `queue` that takes `take` messages, acks the
// first `acked` of them, signals `holding`, and waits to be killed.
inline pid_t spawn_holding_consumer(const std::string& queue, const std::string& group, std::uint64_t take,
                                    std::uint64_t acked, const Pipe& holding) {
  return spawn([&] {
    auto c = Consumer::join(Queue::open(queue), group);
    std::vector<Message> held(take);
    for (auto& m : held) {
      if (c.try_receive(m) != Status::Ok) return 1;
    }
    for (std::uint64_t i = 0; i < acked; ++i) {
      if (c.ack(held[i]) != Status::Ok) return 2;
    }
    holding.signal();
    ::pause();
    return 0;
  });
}

// Kills (SIGKILL) a consumer of `group` of `queue` while it holds `take`
// messages it never acked: whoever repairs gives them back to the group.
inline void kill_a_consumer_holding(const std::string& queue, const std::string& group, std::uint64_t take) {
  Pipe holding;
  const pid_t child = spawn_holding_consumer(queue, group, take, 0, holding);
  ASSERT_TRUE(holding.wait());
  ::kill(child, SIGKILL);
  wait_exit(child);
}

}  // namespace shmq::test
