// shmq-repair-bench: repair latency, from a client's SIGKILL to its peers
// moving on.
//
//   producer death: a producer dies between claim and commit, a consumer is
//     asleep in receive behind its hole with a newer message waiting; measured
//     from kill() to that consumer's receive returning the newer message.
//   consumer death: a consumer dies holding messages; another member of its
//     group is asleep in receive; measured from kill() to its first redelivery.
//
// Both need nothing but shmqd (started here, in a namespace of its own). With
// --no-daemon only the first runs: the stalled consumer then repairs the hole
// itself (the library's fallback), and the second could never finish.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "shmq/shmq.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using shmq::Consumer;
using shmq::Message;
using shmq::Producer;
using shmq::Queue;
using shmq::Status;

constexpr const char* kQueue = "repair";

// A child's "I am in place" byte.
class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~Pipe() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  void signal() const { (void)!::write(fds_[1], "!", 1); }
  void wait() const {
    char c;
    if (::read(fds_[0], &c, 1) != 1) throw std::runtime_error("a child died before it was in place");
  }

 private:
  int fds_[2];
};

// Forks a child that runs `body`, then waits to be killed.
template <class Body>
pid_t spawn_parked(const Pipe& ready, Body&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      body();
      ready.signal();
      ::pause();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: %s\n", e.what());
    }
    ::_exit(1);
  }
  if (pid < 0) throw std::runtime_error("fork failed");
  return pid;
}

// The same, as pid 1 of a new pid namespace (a container's client): returns
// its pid here, or -1 when unshare(CLONE_NEWPID) is not permitted. `outer`
// gets the process that made the namespace, for the caller to reap.
template <class Body>
pid_t spawn_parked_in_new_pid_namespace(const Pipe& ready, Body&& body, pid_t& outer) {
  int report[2];
  if (::pipe(report) != 0) throw std::runtime_error("pipe failed");
  outer = ::fork();
  if (outer == 0) {
    const pid_t inner = ::unshare(CLONE_NEWPID) == 0 ? spawn_parked(ready, body) : -1;
    (void)!::write(report[1], &inner, sizeof inner);
    if (inner > 0) ::waitpid(inner, nullptr, 0);
    ::_exit(0);
  }
  if (outer < 0) throw std::runtime_error("fork failed");
  pid_t inner = -1;
  if (::read(report[0], &inner, sizeof inner) != sizeof inner) inner = -1;
  ::close(report[0]);
  ::close(report[1]);
  if (inner < 0) ::waitpid(outer, nullptr, 0);
  return inner;
}

struct Latency {
  double from_kill_us, from_exit_us;
};

// Runs `receive` in a thread (asleep in the library's futex by the time the
// child is killed) and times its return from kill(), and from the moment the
// kernel reports the child gone (its pidfd readable: the process is torn
// down, which alone takes a few hundred microseconds).
template <class Receive>
Latency time_kill(pid_t child, Receive&& receive, std::mt19937& rng) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  if (pidfd < 0) throw std::runtime_error("pidfd_open failed");
  Clock::time_point received{};
  std::thread consumer([&] { received = receive(); });
  // 2..4 ms: asleep by then, at a random phase of any polling it does.
  std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 2000));
  const auto killed = Clock::now();
  ::kill(child, SIGKILL);
  pollfd pfd{pidfd, POLLIN, 0};
  ::poll(&pfd, 1, -1);
  const auto exited = Clock::now();
  consumer.join();
  ::close(pidfd);
  ::waitpid(child, nullptr, 0);  // fails, harmlessly, for a child's child
  if (received == Clock::time_point{}) throw std::runtime_error("the consumer never moved on");
  const auto us = [&](Clock::time_point from) { return std::chrono::duration<double, std::micro>(received - from).count(); };
  return {us(killed), us(exited)};
}

Latency producer_death(Consumer& c, Producer& steady, std::mt19937& rng) {
  Pipe parked;
  const pid_t child = spawn_parked(parked, [&] {
    static auto p = Producer::attach(Queue::open(kQueue), "dying");  // static: survives into pause()
    if (p.try_claim(16) != Status::Ok) throw std::runtime_error("claim failed");
  });
  parked.wait();
  if (steady.try_send(shmq::as_bytes("newer")) != Status::Ok) throw std::runtime_error("send failed");
  return time_kill(child, [&] {
    Message m;
    if (c.receive(m, 5s) != Status::Ok) return Clock::time_point{};
    const auto now = Clock::now();
    (void)c.ack(m);
    return now;
  }, rng);
}

// A consumer dies holding 4 messages; `other_pid_namespace`: it runs as
// pid 1 of a new pid namespace, which shmqd cannot watch with a pidfd
// (nullopt when that is not permitted here).
std::optional<Latency> consumer_death(Consumer& survivor, Producer& p, std::mt19937& rng,
                                      bool other_pid_namespace = false) {
  constexpr int kHeld = 4;
  for (int i = 0; i < kHeld; ++i) {
    if (p.try_send(shmq::as_bytes("held")) != Status::Ok) throw std::runtime_error("send failed");
  }
  Pipe holding;
  const auto hold = [&] {
    static auto c = Consumer::join(Queue::open(kQueue), "g");
    Message m;
    for (int i = 0; i < kHeld; ++i) {
      if (c.try_receive(m) != Status::Ok) throw std::runtime_error("receive failed");
    }
  };
  pid_t outer = -1;
  const pid_t child =
      other_pid_namespace ? spawn_parked_in_new_pid_namespace(holding, hold, outer) : spawn_parked(holding, hold);
  if (child < 0) return std::nullopt;
  holding.wait();
  const auto reap_outer = [&] {
    if (outer > 0) ::waitpid(outer, nullptr, 0);
  };
  const Latency l = time_kill(child, [&] {
    Message m;
    Clock::time_point first{};
    for (int i = 0; i < kHeld; ++i) {
      if (survivor.receive(m, 5s) != Status::Ok || !m.redelivered) return Clock::time_point{};
      if (i == 0) first = Clock::now();
      (void)survivor.ack(m);
    }
    return first;
  }, rng);
  reap_outer();
  return l;
}

struct Summary {
  std::string name;
  std::vector<double> us;

  [[nodiscard]] double percentile(double p) const {
    std::vector<double> s = us;
    std::sort(s.begin(), s.end());
    return s[std::min(s.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(s.size())))];
  }
  [[nodiscard]] double mean() const { return std::accumulate(us.begin(), us.end(), 0.0) / static_cast<double>(us.size()); }
  [[nodiscard]] nlohmann::json json() const {
    return {{"scenario", name}, {"iterations", us.size()}, {"p50_us", percentile(50)}, {"p90_us", percentile(90)},
            {"p99_us", percentile(99)}, {"max_us", percentile(100)}, {"mean_us", mean()}};
  }
};

// shmqd for the bench's namespace, in a private data directory.
class Daemon {
 public:
  Daemon(const std::string& path, const std::string& ns) : ns_(ns) {
    char tmpl[] = "/tmp/shmq-repair-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(path.c_str(), path.c_str(), "--namespace", ns.c_str(), "--data-dir", dir_.c_str(), "--log-level",
              "warn", static_cast<char*>(nullptr));
      std::fprintf(stderr, "cannot run %s: %s\n", path.c_str(), std::strerror(errno));
      ::_exit(127);
    }
  }
  ~Daemon() {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::remove("/dev/shm/shmqd." + ns_, ec);  // its record (the namespace's lock)
  }
  // Waits until the daemon has published itself in `q`'s header.
  void wait_serving(const Queue& q) const {
    for (int i = 0; i < 5000 && q.info().daemon_pid != pid_; ++i) std::this_thread::sleep_for(1ms);
    if (q.info().daemon_pid != pid_) throw std::runtime_error("shmqd did not start serving the queue");
  }

 private:
  std::string ns_;
  std::string dir_;
  pid_t pid_ = 0;
};

void print(const std::vector<Summary>& results, bool json, const std::string& mode) {
  if (json) {
    nlohmann::json out = {{"mode", mode}, {"results", nlohmann::json::array()}};
    for (const auto& r : results) out["results"].push_back(r.json());
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("repair latency (%s), microseconds\n", mode.c_str());
  std::printf("%-50s %8s %8s %8s %8s %8s\n", "scenario", "p50", "p90", "p99", "max", "mean");
  for (const auto& r : results) {
    std::printf("%-50s %8.1f %8.1f %8.1f %8.1f %8.1f\n", r.name.c_str(), r.percentile(50), r.percentile(90),
                r.percentile(99), r.percentile(100), r.mean());
  }
}

int run(int iterations, const std::string& shmqd, bool no_daemon, bool json) {
  const char* env = std::getenv("SHMQ_NAMESPACE");
  const std::string ns = env != nullptr && *env != '\0' ? env : "repair-bench-" + std::to_string(::getpid());
  ::setenv("SHMQ_NAMESPACE", ns.c_str(), 1);
  Queue::remove(kQueue);
  shmq::QueueOptions o;
  o.capacity = 1 << 20;
  o.max_message = 256;
  auto q = Queue::create(kQueue, o);
  std::vector<Summary> results;
  {
    std::optional<Daemon> daemon;
    if (!no_daemon) {
      daemon.emplace(shmqd, ns);
      daemon->wait_serving(q);
    }
    auto steady = Producer::attach(q, "steady");
    auto c = Consumer::join(q, "g");
    constexpr int kWarmup = 3;
    std::mt19937 rng(1);
    const auto measure = [&](const std::string& name, auto&& once) {
      Summary from_kill{name + " (from kill)", {}}, from_exit{name + " (from exit)", {}};
      for (int i = 0; i < iterations + kWarmup; ++i) {
        const std::optional<Latency> measured = once();
        if (!measured) {
          std::fprintf(stderr, "%s: skipped (unshare(CLONE_NEWPID) is not permitted here)\n", name.c_str());
          return;
        }
        const Latency& l = *measured;
        if (i < kWarmup) continue;
        from_kill.us.push_back(l.from_kill_us);
        from_exit.us.push_back(l.from_exit_us);
      }
      results.push_back(from_kill);
      results.push_back(from_exit);
    };
    measure("producer death -> consumer moves on", [&] { return producer_death(c, steady, rng); });
    if (!no_daemon) {
      measure("consumer death -> first redelivery", [&] { return consumer_death(c, steady, rng); });
      measure("other pid namespace: consumer death -> redelivery",
              [&] { return consumer_death(c, steady, rng, true); });
    }
  }
  Queue::remove(kQueue);
  print(results, json, no_daemon ? "no daemon: the stalled consumer repairs" : "shmqd");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmq-repair-bench: time from a client's SIGKILL to its peers moving on"};
  int iterations = 200;
  std::string shmqd;
#ifdef SHMQD_PATH
  shmqd = SHMQD_PATH;
#endif
  bool no_daemon = false, json = false;
  app.add_option("--iterations", iterations, "deaths per scenario")->check(CLI::Range(1, 100000));
  app.add_option("--shmqd", shmqd, "the shmqd binary to start")->capture_default_str();
  app.add_flag("--no-daemon", no_daemon, "no shmqd: measure the library's own repair of a dead producer's hole");
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  if (!no_daemon && shmqd.empty()) {
    std::fprintf(stderr, "shmq-repair-bench: give --shmqd PATH or --no-daemon\n");
    return 2;
  }
  try {
    return run(iterations, shmqd, no_daemon, json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-repair-bench: %s\n", e.what());
    return 1;
  }
}
