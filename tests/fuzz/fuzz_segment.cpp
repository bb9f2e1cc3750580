// Fuzz target: the bytes of a segment file, as a hostile or broken peer could
// leave it in /dev/shm. Queue::open (and open_read_only) must refuse it with an
// Error or accept it; whatever it accepts, info(), records(), a consumer and a
// producer must work on without crashing, reading out of bounds or hanging.
//
// The segment's namespace field: seeds say "fuzz", which this target replaces
// with its own per-process namespace (fz<pid>), so runs never collide; any
// other value is left as it is (and must be refused as WrongNamespace).
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "guarded_mapping.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shmq/shmq.hpp"

namespace {

using namespace shmq;
using namespace std::chrono_literals;

constexpr const char* kSeedNamespace = "fuzz";
constexpr const char* kQueue = "q";

const std::string& own_namespace() {
  static const std::string ns = "fz" + std::to_string(::getpid());
  return ns;
}

[[noreturn]] void fail(const char* why) {
  std::fprintf(stderr, "fuzz_segment: %s\n", why);
  std::abort();
}

volatile unsigned g_sink;  // keeps the payload reads

// Every payload must lie inside the ring and be at most max_message bytes;
// every byte of it is read, so a bad view faults here.
void check_payload(const Queue& q, std::span<const std::byte> payload) {
  const detail::Mapping& m = *detail::mapping_of(q);
  if (payload.size() > q.max_message()) fail("payload longer than max_message");
  const auto* begin = m.ring;
  const auto* end = m.ring + m.capacity;
  if (!payload.empty() && (payload.data() < begin || payload.data() + payload.size() > end)) {
    fail("payload outside the ring");
  }
  unsigned sum = 0;
  for (std::byte b : payload) sum += static_cast<unsigned>(b);
  g_sink = sum;
}

void read_side(const Queue& q) {
  (void)q.info();
  for (const RecordInfo& r : q.records(0, 256)) {
    if (r.payload.size() > q.max_message()) fail("records() returned a payload longer than max_message");
    if (r.kind != RecordKind::Uncommitted && r.position % layout::kRecordAlign != 0) {
      fail("records() returned a record at a misaligned position");
    }
  }
}

void consume(const Queue& q, const char* group, StartAt start) {
  ConsumerOptions options;
  options.prefetch = 4;
  options.wait.spin = 0;
  options.start = start;
  options.start_position = 4096;
  options.start_time_ns = 1;
  try {
    auto c = Consumer::join(q, group, options);
    Message m;
    for (int i = 0; i < 8; ++i) {
      const Status s = i == 0 ? c.receive(m, 200us) : c.try_receive(m);
      if (s != Status::Ok) break;
      check_payload(q, m.payload);
      if (i % 3 != 2) (void)c.ack(m);  // leave some in flight: the destructor gives them back
    }
  } catch (const Error&) {
  }
}

// An exclusive member: joining "g" works only where the fuzzed mode says
// exclusive (else InvalidArgument), "x" is created exclusive; batches take
// the ring's records with one cursor update.
void consume_exclusive(const Queue& q, const char* group) {
  ConsumerOptions options;
  options.prefetch = 8;
  options.wait.spin = 0;
  options.exclusive = true;
  try {
    auto c = Consumer::join(q, group, options);
    std::array<Message, 8> batch;
    const std::size_t n = c.try_receive_batch(batch);
    for (std::size_t i = 0; i < n; ++i) {
      check_payload(q, batch[i].payload);
      if (i % 3 != 2) (void)c.ack(batch[i]);
    }
  } catch (const Error&) {
  }
}

void produce(const Queue& q) {
  ProducerOptions options;
  options.wait.spin = 0;
  try {
    auto p = Producer::attach(q, "p", options);
    (void)p.try_send(as_bytes("fuzz"));
    if (p.try_claim(8) == Status::Ok) p.abort();
  } catch (const Error&) {
  }
}

void exercise(Queue& q) {
  read_side(q);
  consume(q, "g", StartAt::Oldest);
  produce(q);
  consume(q, "h", StartAt::Position);
  consume(q, "t", StartAt::Time);
  consume_exclusive(q, "g");
  consume_exclusive(q, "x");
  try {
    q.delete_group("h");
  } catch (const Error&) {
  }
  read_side(q);
}

template <class Open>
void try_open(Open&& open, bool write) {
  try {
    Queue q = open();
    test::Guard guard;
    guard.protect(q);  // before any handle copies table pointers
    if (write) {
      exercise(q);
    } else {
      read_side(q);
    }
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (std::size_t{1} << 20)) return 0;
  std::vector<std::uint8_t> bytes(data, data + size);
  // An unversioned (or empty) segment is "still being created": open retries
  // for 100 ms before NotReady. ValidationTest covers that; skip it here.
  if (bytes.size() < sizeof(layout::Superblock)) {
    if (bytes.empty()) return 0;
  } else {
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + offsetof(layout::Superblock, layout_version), sizeof version);
    if (version == 0) return 0;
    char* ns = reinterpret_cast<char*>(bytes.data()) + offsetof(layout::Superblock, ns);
    if (::strnlen(ns, layout::kNameBytes) == std::strlen(kSeedNamespace) &&
        std::strncmp(ns, kSeedNamespace, layout::kNameBytes) == 0) {
      std::memset(ns, 0, layout::kNameBytes);
      std::memcpy(ns, own_namespace().data(), own_namespace().size());
    }
  }
  const std::string path = "/dev/shm/shmq." + own_namespace() + "." + kQueue;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot write the segment file");
  if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) fail("short write");
  ::close(fd);
  try_open([] { return Queue::open_read_only(kQueue, own_namespace()); }, false);
  try_open([] { return Queue::open(kQueue, own_namespace()); }, true);
  ::unlink(path.c_str());
  return 0;
}
