// shmq-takeover-bench: how long a standby shmqd takes, from the serving
// shmqd's death, to redeliver what a consumer that died meanwhile held, in a
// namespace of many durable queues with a large journal (docs/recovery.md,
// "Takeover order"; issue: 200 queues, a 256 MiB journal, under 100 ms).
//
// Set-up: --queues durable queues q000.. (the first holds --journal-mib MiB of
// journal, the others a few records each), all journaled by a primary shmqd.
// Each iteration: a standby shmqd waits; a consumer child of the last queue
// takes a message and holds it; the primary is stopped (SIGSTOP, so it cannot
// repair), the child killed, then the primary killed (t0). A member of the
// child's group, asleep in receive, gets the message back (t1): t1 - t0 is the
// takeover. The standby then serves, and the next iteration's standby waits
// behind it.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
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
using shmq::Confirm;
using shmq::Consumer;
using shmq::Message;
using shmq::Producer;
using shmq::Queue;
using shmq::QueueOptions;
using shmq::Status;

std::string queue_name(int i) {
  char name[16];
  std::snprintf(name, sizeof name, "q%03d", i);
  return name;
}

std::vector<pid_t> g_daemons;  // every shmqd started: killed at the end, however it ends

pid_t start_shmqd(const std::string& shmqd, const std::string& data_dir, bool standby) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);  // its log: one line per queue and event
    std::vector<std::string> args{shmqd, "--data-dir", data_dir};
    if (standby) args.emplace_back("--standby");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  g_daemons.push_back(pid);
  return pid;
}

void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

QueueOptions durable(std::uint64_t capacity) {
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = 4096;
  o.durable = true;
  return o;
}

// The namespace: --queues durable queues, the first with a large journal.
void populate(int queues, std::uint64_t journal_mib, pid_t primary) {
  for (int i = 0; i < queues; ++i) {
    Queue q = Queue::create(queue_name(i), durable(i == 0 ? 4 << 20 : 64 << 10));
    if (!wait_until([&] { return q.info().daemon_pid == primary; }, 10s)) {
      throw std::runtime_error("shmqd did not start serving " + queue_name(i));
    }
    auto p = Producer::attach(q, "p");
    const std::string payload(i == 0 ? 4000 : 64, 'x');
    const std::uint64_t count = i == 0 ? (journal_mib << 20) / 4096 : 3;
    for (std::uint64_t n = 0; n < count; ++n) {
      if (p.send(shmq::as_bytes(payload), 30s) != Status::Ok) throw std::runtime_error("send failed");
    }
    if (p.wait_durable(60s) != Status::Ok) throw std::runtime_error("the journal did not confirm");
  }
}

// The consumer that dies holding a message.
pid_t spawn_holder(const std::string& queue, int ready_fd) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    auto c = Consumer::join(Queue::open(queue), "g");
    Message m;
    if (c.receive(m, 10s) != Status::Ok) ::_exit(1);
    (void)!::write(ready_fd, "!", 1);
    ::pause();
    ::_exit(0);
  }
  return pid;
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int run(const std::string& shmqd, int queues, std::uint64_t journal_mib, int iterations, bool json) {
  for (const std::string& name : Queue::list()) Queue::remove(name);  // an earlier run's, cut short
  char tmpl[] = "/tmp/shmq-takeover-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  const std::string data_dir = tmpl;
  pid_t primary = start_shmqd(shmqd, data_dir, false);
  std::this_thread::sleep_for(100ms);
  populate(queues, journal_mib, primary);
  const std::string victim = queue_name(queues - 1);
  Queue q = Queue::open(victim);
  auto survivor = Consumer::join(q, "g", {.start = shmq::StartAt::Newest});  // not populate()'s messages
  auto producer = Producer::attach(q, "victim");
  std::vector<double> ms;
  for (int i = 0; i < iterations; ++i) {
    const pid_t standby = start_shmqd(shmqd, data_dir, true);
    std::this_thread::sleep_for(200ms);  // blocked on the lock
    if (producer.send(shmq::as_bytes("held"), Confirm::Durable, 10s) != Status::Ok) {
      throw std::runtime_error("send to the victim queue failed");
    }
    int ready[2];
    if (::pipe(ready) != 0) throw std::runtime_error("pipe failed");
    const pid_t holder = spawn_holder(victim, ready[1]);
    char c;
    if (::read(ready[0], &c, 1) != 1) throw std::runtime_error("the holder died");
    ::close(ready[0]);
    ::close(ready[1]);
    // The survivor sleeps in receive; nothing is there until the repair.
    auto redelivered = std::async(std::launch::async, [&] {
      Message m;
      const Status s = survivor.receive(m, 30s);
      const auto at = Clock::now();
      if (s != Status::Ok || !m.redelivered || survivor.ack(m) != Status::Ok) {
        throw std::runtime_error(std::string("no redelivery after the takeover: ") + shmq::to_string(s).data() +
                                 (m.redelivered ? "" : ", not flagged redelivered"));
      }
      return at;
    });
    std::this_thread::sleep_for(20ms);
    ::kill(primary, SIGSTOP);
    kill_and_reap(holder);
    const auto killed = Clock::now();
    kill_and_reap(primary);
    ms.push_back(std::chrono::duration<double, std::milli>(redelivered.get() - killed).count());
    primary = standby;
    // Let the new primary set up every journal before the next round.
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + queues * 2));
  }
  kill_and_reap(primary);
  for (int i = 0; i < queues; ++i) Queue::remove(queue_name(i));
  std::filesystem::remove_all(data_dir);
  std::filesystem::remove("/dev/shm/shmqd." + shmq::current_namespace());  // the daemons' record
  if (json) {
    std::printf("%s\n", nlohmann::json{{"queues", queues},
                                       {"journal_mib", journal_mib},
                                       {"iterations", iterations},
                                       {"takeover_p50_ms", percentile(ms, 50)},
                                       {"takeover_p99_ms", percentile(ms, 99)},
                                       {"takeover_max_ms", percentile(ms, 100)}}
                            .dump()
                            .c_str());
  } else {
    std::printf("takeover with %d durable queues and a %llu MiB journal, %d iterations: "
                "p50 %.1f ms  p99 %.1f ms  max %.1f ms (primary's kill to the first redelivery)\n",
                queues, static_cast<unsigned long long>(journal_mib), iterations, percentile(ms, 50),
                percentile(ms, 99), percentile(ms, 100));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shmq-takeover-bench: a standby shmqd's takeover, from the primary's kill to the first redelivery"};
  std::string shmqd;
#ifdef SHMQD_PATH
  shmqd = SHMQD_PATH;
#endif
  int queues = 200, iterations = 10;
  std::uint64_t journal_mib = 256;
  app.add_option("--shmqd", shmqd, "the shmqd binary to start")->capture_default_str();
  app.add_option("--queues", queues, "durable queues in the namespace")->check(CLI::Range(1, 999))->capture_default_str();
  app.add_option("--journal-mib", journal_mib, "MiB journaled in the first queue")->capture_default_str();
  app.add_option("--iterations", iterations, "takeovers measured")->check(CLI::Range(1, 1000))->capture_default_str();
  bool json = false;
  app.add_flag("--json", json, "print JSON");
  CLI11_PARSE(app, argc, argv);
  if (shmqd.empty()) {
    std::fprintf(stderr, "shmq-takeover-bench: give --shmqd PATH\n");
    return 2;
  }
  if (std::getenv("SHMQ_NAMESPACE") == nullptr) ::setenv("SHMQ_NAMESPACE", "shmq-takeover-bench", 1);
  int rc = 1;
  try {
    rc = run(shmqd, queues, journal_mib, iterations, json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-takeover-bench: %s\n", e.what());
  }
  for (const pid_t pid : g_daemons) kill_and_reap(pid);  // reaped ones: ESRCH/ECHILD, harmless
  return rc;
}
