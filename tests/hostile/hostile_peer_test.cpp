// A hostile peer: a process with write access scribbles random bytes and
// plausible-but-wrong words over a live queue's header, tables, commit and
// state words and ring, while a producer, consumers and shmq-stat-like readers
// (info(), records()) keep working on it. None may crash (SIGSEGV, SIGBUS,
// abort), touch memory outside the segment (guard pages around every mapping
// turn that into a crash), hand out a payload outside the ring or longer than
// max_message, or hang (every wait has a timeout, every child a deadline; a
// child still running at the test's deadline is killed and fails the test).
//
// The scribbles are reproducible from the printed seed (SHMQ_HOSTILE_SEED=<n>
// replays them); their timing against the other processes is not.
#include <execinfo.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "guarded_mapping.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;
using layout::kRecordAlign;

constexpr auto kScribbleTime = 6s;        // how long the hostile peer writes
constexpr auto kDeadlineSlack = 6s;       // then every child must be done within this
constexpr int kBadPayload = 3;            // a child's exit code: a payload outside the ring
constexpr int kCannotOpen = 4;

// In a child: on a crash, print where (then die of the same signal).
void on_crash(int sig) {
  void* frames[32];
  const int n = ::backtrace(frames, 32);
  const char* what = sig == SIGSEGV ? "SIGSEGV\n" : sig == SIGBUS ? "SIGBUS\n" : "SIGABRT\n";
  (void)!::write(2, what, std::strlen(what));
  ::backtrace_symbols_fd(frames, n, 2);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

void report_crashes() {
  for (int sig : {SIGSEGV, SIGBUS, SIGABRT}) ::signal(sig, on_crash);
}

std::uint64_t seed_from_env() {
  if (const char* env = std::getenv("SHMQ_HOSTILE_SEED"); env != nullptr && *env != '\0') {
    return std::strtoull(env, nullptr, 10);
  }
  return std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
}

// Opens the queue in this process (own descriptor, so the segment lock works
// between processes) and guards its mapping.
struct Opened {
  Queue queue;
  Guard guard;
  explicit Opened(Queue q) : queue(std::move(q)) {
    if (!guard.protect(queue)) throw std::runtime_error("cannot guard the mapping");
  }
};

volatile unsigned g_sink;  // keeps the payload reads

bool payload_ok(const Queue& q, const Message& m) {
  const detail::Mapping& map = *detail::mapping_of(q);
  if (m.payload.size() > q.max_message()) return false;
  // A durable queue's group that fell a ring behind (scribbled cursors make
  // that likely) reads the journal: its payloads are copies, not views.
  const bool in_ring =
      m.payload.data() >= map.ring && m.payload.data() + m.payload.size() <= map.ring + map.capacity;
  if (!m.payload.empty() && !in_ring && !q.durable()) return false;
  unsigned sum = 0;
  for (std::byte b : m.payload) sum += static_cast<unsigned>(b);  // touch every byte
  g_sink = sum;
  return true;
}

int consumer_main(const std::string& group, Clock::time_point until, std::uint64_t seed) {
  std::unique_ptr<Opened> o;
  try {
    o = std::make_unique<Opened>(Queue::open("victim"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return kCannotOpen;
  }
  std::mt19937_64 rng(seed);
  ConsumerOptions options;
  options.prefetch = 8;
  options.wait.spin = 100;
  std::uint64_t received = 0, corrupt = 0, rejoins = 0;
  while (Clock::now() < until) {
    try {
      auto c = Consumer::join(o->queue, group, options);
      ++rejoins;
      std::uint64_t last = 0;  // position of the last message received
      for (int i = 0; i < 200 && Clock::now() < until; ++i) {
        Message m;
        const Status s = c.receive(m, 20ms);
        if (s == Status::Ok) {
          if (!payload_ok(o->queue, m)) {
            std::fprintf(stderr, "consumer %s: payload of %zu bytes outside the ring at position %llu\n",
                         group.c_str(), m.payload.size(), static_cast<unsigned long long>(m.position));
            return kBadPayload;
          }
          ++received;
          last = m.position;
          if (rng() % 4 != 0) (void)c.ack(m);
        } else if (s == Status::Corrupt) {
          ++corrupt;
        } else {  // nothing new (or the prefetch limit): ack what is held, so space is released
          (void)c.ack_up_to(last);
        }
      }
    } catch (const Error&) {
      std::this_thread::sleep_for(5ms);  // e.g. TableFull after a scribble: retry
    }
  }
  std::fprintf(stderr, "consumer %s: %llu received, %llu corrupt reports, %llu joins\n", group.c_str(),
               static_cast<unsigned long long>(received), static_cast<unsigned long long>(corrupt),
               static_cast<unsigned long long>(rejoins));
  return 0;
}

int producer_main(Clock::time_point until, std::uint64_t seed) {
  std::unique_ptr<Opened> o;
  try {
    o = std::make_unique<Opened>(Queue::open("victim"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "producer: %s\n", e.what());
    return kCannotOpen;
  }
  std::mt19937_64 rng(seed);
  std::uint64_t sent = 0;
  const std::string payload(o->queue.max_message(), 'p');
  while (Clock::now() < until) {
    try {
      auto p = Producer::attach(o->queue, "p");
      for (int i = 0; i < 500 && Clock::now() < until; ++i) {
        const auto size = static_cast<std::size_t>(rng() % (payload.size() + 1));
        if (p.send(as_bytes(std::string_view(payload).substr(0, size)), 5ms) == Status::Ok) ++sent;
      }
    } catch (const Error&) {
      std::this_thread::sleep_for(5ms);
    }
  }
  std::fprintf(stderr, "producer: %llu sent\n", static_cast<unsigned long long>(sent));
  return 0;
}

int reader_main(Clock::time_point until) {
  std::unique_ptr<Opened> o;
  try {
    o = std::make_unique<Opened>(Queue::open_read_only("victim"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reader: %s\n", e.what());
    return kCannotOpen;
  }
  std::uint64_t snapshots = 0, records = 0;
  while (Clock::now() < until) {
    const QueueInfo info = o->queue.info();
    (void)info;
    for (const RecordInfo& r : o->queue.records(0, 1000)) {
      if (r.payload.size() > o->queue.max_message()) {
        std::fprintf(stderr, "reader: records() payload of %zu bytes\n", r.payload.size());
        return kBadPayload;
      }
      ++records;
    }
    ++snapshots;
  }
  std::fprintf(stderr, "reader: %llu snapshots, %llu records\n", static_cast<unsigned long long>(snapshots),
               static_cast<unsigned long long>(records));
  return 0;
}

// The hostile peer. Writes are mostly 8-byte words at 8-byte offsets of a
// chosen area, with values a confused peer would write: positions near the
// tail (aligned or not), huge or zero lengths, small integers, random bits.
int scribbler_main(Clock::time_point until, std::uint64_t seed) {
  Queue q = Queue::open("victim");
  const detail::Mapping& m = *detail::mapping_of(q);
  auto* base = static_cast<unsigned char*>(m.base);
  const auto offset_of = [&](const void* p) { return static_cast<std::size_t>(static_cast<const unsigned char*>(p) - base); };
  struct Area {
    std::size_t begin, bytes;
  };
  const Area areas[] = {
      {0, sizeof(layout::QueueHeader)},
      {offset_of(m.producers), sizeof(layout::ProducerSlot) * m.max_producers},
      {offset_of(m.groups), sizeof(layout::GroupSlot) * m.max_groups},
      {offset_of(m.consumers), sizeof(layout::ConsumerSlot) * m.max_groups * m.max_consumers},
      {offset_of(m.states), 8 * m.chunks * m.max_groups},
      {offset_of(m.ring), m.capacity},
  };
  std::mt19937_64 rng(seed);
  std::uint64_t writes = 0;
  // SHMQ_HOSTILE_QUIET=1: a peer that writes nothing (to see the others' rates undisturbed).
  const bool quiet = std::getenv("SHMQ_HOSTILE_QUIET") != nullptr;
  while (Clock::now() < until && quiet) std::this_thread::sleep_for(10ms);
  while (Clock::now() < until) {
    const Area& area = areas[rng() % std::size(areas)];
    const std::uint64_t tail = m.header->tail.load(std::memory_order_relaxed);
    std::uint64_t value = 0;
    switch (rng() % 8) {
      case 0: value = rng(); break;
      case 1: value = tail + kRecordAlign * (rng() % 64); break;
      case 2: value = tail - kRecordAlign * (rng() % 64); break;
      case 3: value = tail + (rng() % 4096) - 2048; break;  // often misaligned
      case 4: value = rng() % 512; break;
      case 5: value = 0xffffffffu - rng() % 4; break;
      case 6: value = (rng() % 2) ? 0 : ~std::uint64_t{0}; break;
      case 7: value = (tail / kRecordAlign) << 8 | (rng() % 256); break;  // a plausible state word
    }
    if (rng() % 4 == 0) {
      base[area.begin + rng() % area.bytes] = static_cast<unsigned char>(value);
    } else {
      const std::size_t at = area.begin + (rng() % (area.bytes / 8)) * 8;
      reinterpret_cast<std::atomic<std::uint64_t>*>(base + at)->store(value, std::memory_order_relaxed);
    }
    ++writes;
    // Bursts of a few writes, then a pause in which the others run on what is left.
    if (writes % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 10000));
  }
  std::fprintf(stderr, "scribbler: %llu writes\n", static_cast<unsigned long long>(writes));
  return 0;
}

class HostilePeerTest : public NamespaceTest {
 protected:
  // The scribbles against the producer, consumers and readers; with `daemon`,
  // on a durable queue that a real shmqd repairs and journals meanwhile.
  void run(bool daemon);
};

TEST_F(HostilePeerTest, ScribblesNeverCrashOrHangOtherProcesses) { run(false); }

#ifdef SHMQD_PATH
// shmqd too: it reads the same scribbled tables (repair) and ring (journal).
// It must neither crash nor hang, and must stop cleanly on SIGTERM.
TEST_F(HostilePeerTest, ScribblesNeverCrashOrHangShmqdJournalingADurableQueue) { run(true); }

// shmqd in a child, with a data directory of its own; stderr to the test's.
pid_t start_shmqd(const std::string& data_dir) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(SHMQD_PATH, SHMQD_PATH, "--data-dir", data_dir.c_str(), "--log-level", "warn", nullptr);
    ::_exit(127);
  }
  return pid;
}
#endif

void HostilePeerTest::run(bool daemon) {
  const std::uint64_t seed = seed_from_env();
  std::printf("hostile peer seed: %llu (replay with SHMQ_HOSTILE_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  RecordProperty("seed", std::to_string(seed));
  QueueOptions o;
  o.capacity = 16384;
  o.max_message = 512;
  o.max_producers = 4;
  o.max_groups = 3;
  o.max_consumers = 4;
  o.durable = daemon;
  Queue::create("victim", o);
  std::string data_dir;
  pid_t shmqd = 0;
#ifdef SHMQD_PATH
  if (daemon) {
    char tmpl[] = "/tmp/shmq-hostile-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    data_dir = tmpl;
    shmqd = start_shmqd(data_dir);
  }
#endif

  const auto start = Clock::now();
  const auto until = start + 500ms + kScribbleTime;
  Pipe ready;
  struct Child {
    std::string role;
    pid_t pid;
  };
  std::vector<Child> children;
  const auto start_child = [&](const std::string& role, std::function<int()> body) {
    children.push_back({role, spawn([&ready, body = std::move(body)] {
                          report_crashes();
                          ready.signal();
                          return body();
                        })});
  };
  start_child("producer", [&] { return producer_main(until, seed + 1); });
  start_child("consumer g/1", [&] { return consumer_main("g", until, seed + 2); });
  start_child("consumer g/2", [&] { return consumer_main("g", until, seed + 3); });
  start_child("consumer h", [&] { return consumer_main("h", until, seed + 4); });
  start_child("reader", [&] { return reader_main(until); });
  for (std::size_t i = 0; i < children.size(); ++i) ASSERT_TRUE(ready.wait());
  std::this_thread::sleep_for(300ms);  // let them open, attach and exchange a little first
  start_child("scribbler", [&] { return scribbler_main(until, seed); });

  // Collect, with a deadline: a child still running then is hung.
  const auto deadline = until + kDeadlineSlack;
  std::vector<bool> done(children.size(), false);
  std::size_t remaining = children.size();
  while (remaining > 0 && Clock::now() < deadline) {
    for (std::size_t i = 0; i < children.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      const pid_t r = ::waitpid(children[i].pid, &status, WNOHANG);
      if (r != children[i].pid) continue;
      done[i] = true;
      --remaining;
      if (WIFSIGNALED(status)) {
        ADD_FAILURE() << children[i].role << " died of signal " << WTERMSIG(status) << " (" << ::strsignal(WTERMSIG(status))
                      << "); seed " << seed;
      } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        ADD_FAILURE() << children[i].role << " exited with " << WEXITSTATUS(status) << "; seed " << seed;
      }
    }
    std::this_thread::sleep_for(10ms);
  }
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (done[i]) continue;
    ::kill(children[i].pid, SIGKILL);
    (void)wait_exit(children[i].pid);
    ADD_FAILURE() << children[i].role << " (pid " << children[i].pid << ") hung past the deadline; seed " << seed;
  }
  if (shmqd != 0) {
    // Alive through it all, and a clean stop within the deadline.
    EXPECT_EQ(::waitpid(shmqd, nullptr, WNOHANG), 0) << "shmqd died under the scribbles; seed " << seed;
    ::kill(shmqd, SIGTERM);
    int status = -1;
    const auto stop_deadline = Clock::now() + kDeadlineSlack;
    while (::waitpid(shmqd, &status, WNOHANG) == 0 && Clock::now() < stop_deadline) std::this_thread::sleep_for(10ms);
    if (Clock::now() >= stop_deadline) {
      ::kill(shmqd, SIGKILL);
      (void)wait_exit(shmqd);
      ADD_FAILURE() << "shmqd hung on SIGTERM after the scribbles; seed " << seed;
    } else {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "shmqd status " << status << "; seed " << seed;
    }
    std::error_code ec;
    std::filesystem::remove_all(data_dir, ec);
  }
  // The segment is wrecked, but opening and looking at it still work or fail cleanly.
  try {
    Queue q = Queue::open_read_only("victim");
    Guard guard;
    ASSERT_TRUE(guard.protect(q));
    const QueueInfo info = q.info();
    std::printf("after: head %llu tail %llu", static_cast<unsigned long long>(info.head_position),
                static_cast<unsigned long long>(info.tail_position));
    for (const GroupInfo& g : info.groups) {
      std::printf("; group %s read %llu acked %llu in flight %llu", g.name.c_str(),
                  static_cast<unsigned long long>(g.read_position), static_cast<unsigned long long>(g.acked_position),
                  static_cast<unsigned long long>(g.in_flight));
    }
    std::printf("\n");
    (void)q.records();
  } catch (const Error& e) {
    std::printf("reopen after the scribbles: %s\n", e.what());
  }
  EXPECT_LT(Clock::now() - start, 20s);
}

}  // namespace
}  // namespace shmq::test
