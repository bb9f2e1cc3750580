// Shared helpers for shmq tests: every test gets its own namespace, and its
// segments are removed afterwards, so tests run in parallel (ctest -j).
#pragma once

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"

namespace shmq::test {

inline std::string unique_namespace() {
  static std::atomic<int> counter{0};
  return "t" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1));
}

inline void remove_namespace_segments(const std::string& ns) {
  std::error_code ec;
  std::filesystem::path dir = "/dev/shm";
  try {
    dir = shm_dir();  // $SHMQ_SHM_DIR when the test set it
  } catch (const Error&) {
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    // Its queues, segments being built, and its shmqd's record.
    const std::string file = entry.path().filename().string();
    if (file.starts_with("shmq." + ns + ".") || file.starts_with("shmq-creating." + ns + ".") ||
        file == "shmqd." + ns) {
      std::filesystem::remove(entry.path(), ec);
    }
  }
}

// Sets SHMQ_NAMESPACE for the test (children inherit it) and cleans up after.
class NamespaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = unique_namespace();
    // A test process killed before its TearDown (a timeout) leaves its
    // segments; a later test that reuses its pid must not find them.
    remove_namespace_segments(ns_);
    ::setenv("SHMQ_NAMESPACE", ns_.c_str(), 1);
  }
  void TearDown() override { remove_namespace_segments(ns_); }
  std::string ns_;
};

// A NamespaceTest with a private, empty shmqd data directory, named to every
// client (and forked child) by SHMQ_DATA_DIR, as users name it.
class DataDirTest : public NamespaceTest {
 protected:
  void SetUp() override {
    NamespaceTest::SetUp();
    std::string dir = (std::filesystem::temp_directory_path() / "shmq-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    ::setenv("SHMQ_DATA_DIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("SHMQ_DATA_DIR");
    NamespaceTest::TearDown();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
};

// Called in a forked child, before anything else: the kernel kills it
// (SIGKILL) when the thread that forked it ends, so a test process that
// aborts (a sanitizer's report, a crash) leaves no shmqd or helper behind,
// orphaned and holding ctest's pipes open. It survives exec. `parent` is the
// forker's pid, read before fork(): when it already died before the prctl,
// the signal would never come, so the child leaves at once. getppid() is 0
// for the first child after unshare(CLONE_NEWPID) (its parent is outside its
// namespace): there the check cannot tell, and is skipped. (Fork only from a
// thread that outlives the child: the signal follows the thread.)
inline void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  const pid_t now = ::getppid();
  if (now != parent && now != 0) ::_exit(127);
}

// Runs `body` in a forked child; the child exits with body's return value
// (or 99 on an exception), and dies with the test (die_with_parent). Returns
// the pid.
inline pid_t spawn(const std::function<int()>& body) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    die_with_parent(parent);
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  return pid;
}

// Waits for `pid`; returns its exit status, or 128+signal.
inline int wait_exit(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline std::span<const std::byte> bytes_of(const std::string& s) { return as_bytes(s); }

// The code of the shmq::Error that `f` throws; fails the test when it throws none.
inline Errc code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no shmq::Error thrown";
  return Errc::System;
}

inline std::uint32_t checksum(std::span<const std::byte> data) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (std::byte b : data) h = (h ^ static_cast<std::uint8_t>(b)) * 16777619u;
  return h;
}

}  // namespace shmq::test

namespace shmq::test {

// A one-way pipe for "I am there" signals between a child and its parent.
class Pipe {
 public:
  Pipe() {
    if (::pipe(fds_) != 0) throw std::runtime_error("pipe");
  }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void signal(char c = '!') const { (void)!::write(fds_[1], &c, 1); }
  // Waits for one byte; false after `timeout`.
  bool wait(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const {
    pollfd p{fds_[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    char c;
    return ::read(fds_[0], &c, 1) == 1;
  }

 private:
  int fds_[2];
};

}  // namespace shmq::test

namespace shmq::test {

// A child in `group` of `queue` that takes `take` messages, signals `holding`,
// waits for `go_on`, then acks them all (exit 0 when every ack succeeded).
inline pid_t spawn_consumer_acking_on_signal(const std::string& queue, const std::string& group, std::size_t take,
                                             const Pipe& holding, const Pipe& go_on) {
  return spawn([&] {
    auto c = Consumer::join(Queue::open(queue), group);
    std::vector<Message> held(take);
    for (auto& m : held) {
      if (c.try_receive(m) != Status::Ok) return 1;
    }
    holding.signal();
    if (!go_on.wait()) return 2;
    for (auto& m : held) {
      if (c.ack(m) != Status::Ok) return 3;
    }
    return 0;
  });
}

// A child in `group` of `queue` (joined with `options`) that receives `take`
// messages, signals `holding` and stops itself (SIGSTOP) holding them: a
// stuck consumer. Exit 1 when the messages did not come; kill it to end it.
inline pid_t spawn_consumer_stopped_holding(const std::string& queue, const std::string& group,
                                            const ConsumerOptions& options, std::size_t take, const Pipe& holding) {
  return spawn([&] {
    auto c = Consumer::join(Queue::open(queue), group, options);
    std::vector<Message> held(take);
    for (auto& m : held) {
      if (c.receive(m, std::chrono::seconds(5)) != Status::Ok) return 1;
    }
    holding.signal();
    ::raise(SIGSTOP);
    ::pause();
    return 0;
  });
}

}  // namespace shmq::test
