// shmq-demo: the main job of the README. One producer process streams
// messages to a group of consumer processes; midway one consumer is killed
// with SIGKILL while it holds unacknowledged messages. Its messages come back
// to the group (redelivered by shmqd when it runs) and the summary shows that
// every message arrived exactly once.
//
// usage: shmq-demo [MESSAGES] [--no-kill]
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"

namespace {

using namespace std::chrono_literals;
constexpr int kConsumers = 2;
constexpr const char* kQueue = "demo";

struct Tally {  // shared by the demo's processes (anonymous shared memory)
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> redelivered{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> ready{0};
  std::atomic<std::uint8_t>* seen = nullptr;  // [messages + 1], right after the struct
};

void count(Tally& tally, std::uint64_t seq, bool redelivered) {
  if (tally.seen[seq].fetch_add(1) != 0) tally.duplicates.fetch_add(1);
  if (redelivered) tally.redelivered.fetch_add(1);
  tally.received.fetch_add(1);
}

// A consumer of group "workers". The one to be killed (`batch` > 1) processes
// its messages in batches, acking each batch at once: when it dies, the batch
// it holds goes back to the group.
int consume(std::uint64_t total, Tally& tally, std::size_t batch) {
  auto queue = shmq::Queue::open(kQueue);
  shmq::ConsumerOptions options;
  options.prefetch = 64;
  options.wait.spin = 256;
  auto consumer = shmq::Consumer::join(queue, "workers", options);
  tally.ready.fetch_add(1);
  std::vector<shmq::Message> held;
  shmq::Message m;
  while (tally.received.load() < total) {
    if (consumer.receive(m, 100ms) != shmq::Status::Ok) continue;
    held.push_back(m);
    if (held.size() < batch) continue;
    for (const auto& h : held) count(tally, h.sequence, h.redelivered);
    consumer.ack_up_to(held.back().position);
    held.clear();
  }
  return 0;
}

// shmqd redelivers a dead consumer's messages at once. Without it, the next
// member to join the group does: join (and leave) to show that path.
void give_back_without_daemon(const shmq::Queue& queue) {
  const auto deadline = std::chrono::steady_clock::now() + 500ms;
  while (queue.info().clients_reaped == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  if (queue.info().clients_reaped != 0) {
    std::puts("shmq-demo: shmqd saw the death and gave its messages back to the group");
    return;
  }
  shmq::Consumer::join(queue, "workers");
  std::puts("shmq-demo: no shmqd running: a new member joining the group gave the messages back");
}

pid_t spawn(auto&& body) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "shmq-demo[%d]: %s\n", ::getpid(), e.what());
    }
    ::_exit(rc);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t total = 1'000'000;
  bool kill_one = true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-kill") == 0) {
      kill_one = false;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::puts("usage: shmq-demo [MESSAGES] [--no-kill]\n"
                "Streams MESSAGES (default 1000000) from one producer process to a group of two\n"
                "consumer processes, kills one consumer midway, and checks every message arrived once.");
      return 0;
    } else {
      total = std::stoull(argv[i]);
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    shmq::Queue::remove(kQueue);
    shmq::QueueOptions options;
    options.capacity = 1 << 20;
    options.max_message = 1024;
    auto queue = shmq::Queue::create(kQueue, options);
    std::printf("shmq-demo: queue '%s' in namespace '%s', %llu messages, %d consumers in group 'workers'\n",
                kQueue, queue.ns().c_str(), static_cast<unsigned long long>(total), kConsumers);

    const std::size_t bytes = sizeof(Tally) + total + 1;
    void* mem = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::runtime_error("mmap failed");
    auto& tally = *new (mem) Tally;
    tally.seen = new (static_cast<char*>(mem) + sizeof(Tally)) std::atomic<std::uint8_t>[total + 1]{};

    std::vector<pid_t> consumers;
    for (int i = 0; i < kConsumers; ++i) {
      const std::size_t batch = kill_one && i == 0 ? 64 : 1;
      consumers.push_back(spawn([&, batch] { return consume(total, tally, batch); }));
    }
    while (tally.ready.load() < kConsumers) std::this_thread::sleep_for(1ms);

    const auto start = std::chrono::steady_clock::now();
    const pid_t producer = spawn([&] {
      auto q = shmq::Queue::open(kQueue);
      auto p = shmq::Producer::attach(q, "demo-producer");
      char payload[64];
      for (std::uint64_t seq = 1; seq <= total; ++seq) {
        const int n = std::snprintf(payload, sizeof payload, "message %llu", static_cast<unsigned long long>(seq));
        const auto status = p.send(seq, {reinterpret_cast<const std::byte*>(payload), static_cast<std::size_t>(n)}, 10s);
        if (status != shmq::Status::Ok) return 1;
      }
      return 0;
    });

    if (kill_one) {
      while (tally.received.load() < total / 2) std::this_thread::sleep_for(1ms);
      ::kill(consumers[0], SIGKILL);
      std::printf("shmq-demo: killed consumer pid %d (kill -9) while it held unacknowledged messages\n",
                  consumers[0]);
      give_back_without_daemon(queue);
    }
    int failures = 0;
    int status = 0;
    ::waitpid(producer, &status, 0);
    failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const auto sent_at = std::chrono::steady_clock::now();
    for (std::size_t i = kill_one ? 1 : 0; i < consumers.size(); ++i) {
      ::waitpid(consumers[i], &status, 0);
      failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    if (kill_one) ::waitpid(consumers[0], &status, 0);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::uint64_t missing = 0;
    for (std::uint64_t seq = 1; seq <= total; ++seq) missing += tally.seen[seq].load() == 0;

    const auto info = queue.info();
    std::printf("shmq-demo: sent %llu in %.2f s, received %llu in %.2f s (%.1f million messages/s)\n",
                static_cast<unsigned long long>(total),
                std::chrono::duration<double>(sent_at - start).count(),
                static_cast<unsigned long long>(tally.received.load()), seconds, total / seconds / 1e6);
    std::printf("shmq-demo: redelivered %llu, duplicates %llu, missing %llu; daemon %s, clients reaped %llu\n",
                static_cast<unsigned long long>(tally.redelivered.load()),
                static_cast<unsigned long long>(tally.duplicates.load()), static_cast<unsigned long long>(missing),
                info.daemon_alive ? "up" : "down", static_cast<unsigned long long>(info.clients_reaped));
    const bool ok = failures == 0 && missing == 0 && tally.duplicates.load() == 0;
    std::printf("shmq-demo: %s\n", ok ? "OK: every message delivered exactly once" : "FAILED");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-demo: %s\n", e.what());
    return 1;
  }
}
