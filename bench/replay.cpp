// shmq-replay-bench: how fast one member of a group reads a durable queue's
// journal, against the ring, in one run. Needs shmqd in the namespace
// (bench/durable.sh starts one). For each side it sends N 64-byte messages,
// waits until they are on disk, then times one consumer receiving and acking
// them all:
//   journal  1 MiB ring, no group while sending (the ring keeps only the
//            journal's unwritten tail); then a new group from the oldest
//            record reads them all from the journal files
//   ring     a ring large enough for all N, its group joined before the
//            sends: all N from the ring
// Usage: shmq-replay-bench [MESSAGES] (default 500000)
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shmq/shmq.hpp"

namespace {

using namespace shmq;
using Clock = std::chrono::steady_clock;
constexpr std::chrono::seconds kTimeout{60};

void check(Status status, const char* what) {
  if (status != Status::Ok) {
    std::fprintf(stderr, "shmq-replay-bench: %s: %s\n", what, std::string(to_string(status)).c_str());
    std::exit(1);
  }
}

Queue durable_queue(const std::string& name, std::uint64_t capacity) {
  Queue::remove(name);
  QueueOptions o;
  o.capacity = capacity;
  o.max_message = 1024;
  o.durable = true;
  return Queue::create(name, o);
}

void send_all(const Queue& q, std::uint64_t n) {
  auto p = Producer::attach(q, "bench");
  const std::string payload(64, 'r');
  for (std::uint64_t i = 0; i < n; ++i) check(p.send(as_bytes(payload), kTimeout), "send");
  check(p.wait_durable(kTimeout), "wait_durable");
}

// Receives and acks n messages; returns messages a second.
double drain(Consumer& c, std::uint64_t n) {
  const auto start = Clock::now();
  Message m;
  for (std::uint64_t i = 0; i < n; ++i) {
    check(c.receive(m, kTimeout), "receive");
    check(c.ack(m), "ack");
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 500000;
  try {
    Queue journaled = durable_queue("replay-journal", 1 << 20);
    send_all(journaled, n);
    auto replay = Consumer::join(journaled, "replay", {.start = StartAt::Oldest});
    const double journal_rate = drain(replay, n);

    Queue ringed = durable_queue("replay-ring", std::bit_ceil(n * 128));  // 64 B payloads take 128 ring bytes
    auto live = Consumer::join(ringed, "live");
    send_all(ringed, n);
    const double ring_rate = drain(live, n);

    std::printf("%llu messages of 64 B, one consumer, receive + ack each\n", static_cast<unsigned long long>(n));
    std::printf("ring:    %12.0f msgs/s\njournal: %12.0f msgs/s (%.2fx the ring)\n", ring_rate, journal_rate,
                journal_rate / ring_rate);
    Queue::remove("replay-journal");
    Queue::remove("replay-ring");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-replay-bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
