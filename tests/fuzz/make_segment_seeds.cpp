// Writes the seed corpus of fuzz_segment: real segments in interesting states
// (empty, with messages, in flight, pending redelivery, an uncommitted claim,
// a wrapped ring with padding and skipped records, several tables), some
// refused ones, and crafted attacks (the regressions of bugs found).
// Usage: fuzz_segment_seeds OUT_DIR   (writes OUT_DIR/<name>, 12 KiB each)
// The namespace field is set to "fuzz" (fuzz_segment substitutes its own).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shmq/shmq.hpp"

namespace {

using namespace shmq;
using namespace shmq::layout;
namespace fs = std::filesystem;

std::string ns() { return "fzseed" + std::to_string(::getpid()); }
std::string path() { return "/dev/shm/shmq." + ns() + ".q"; }

std::vector<char> snapshot() {
  std::ifstream in(path(), std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (bytes.size() >= sizeof(Superblock)) {
    char* field = bytes.data() + offsetof(Superblock, ns);
    std::memset(field, 0, kNameBytes);
    std::memcpy(field, "fuzz", 4);
  }
  return bytes;
}

void save(const fs::path& dir, const std::string& name, const std::vector<char>& bytes) {
  std::ofstream(dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s: %zu bytes\n", name.c_str(), bytes.size());
}

QueueOptions small(std::uint32_t tables = 1) {
  QueueOptions o;
  o.capacity = 4096;
  o.max_message = 200;
  o.max_producers = tables;
  o.max_groups = tables;
  o.max_consumers = tables;
  return o;
}

// Creates q, runs `fill` on it, saves a snapshot, removes q.
void seed(const fs::path& dir, const std::string& name, const QueueOptions& o,
          const std::function<void(Queue&)>& fill) {
  Queue::remove("q", ns());
  {
    Queue q = Queue::create("q", o, ns());
    fill(q);
    save(dir, name, snapshot());
  }
  Queue::remove("q", ns());
}

std::span<const std::byte> text(const std::string& s) { return as_bytes(s); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path dir = argv[1];
  fs::create_directories(dir);
  ConsumerOptions co;
  co.prefetch = 16;

  seed(dir, "empty", small(), [](Queue&) {});
  seed(dir, "messages_in_flight", small(), [&](Queue& q) {
    auto p = Producer::attach(q, "p");
    for (int i = 0; i < 6; ++i) (void)p.try_send(text("message " + std::to_string(i)));
    auto c = Consumer::join(q, "g", co);
    Message m;
    (void)c.try_receive(m);
    (void)c.ack(m);
    (void)c.try_receive(m);
    (void)c.try_receive(m);
    save(dir, "messages_in_flight_live", snapshot());  // producer and consumer attached
  });
  seed(dir, "pending_redelivery", small(), [&](Queue& q) {
    auto p = Producer::attach(q, "p");
    for (int i = 0; i < 5; ++i) (void)p.try_send(text(std::string(30 * i, 'x')));
    {
      auto c = Consumer::join(q, "g", co);
      Message m;
      for (int i = 0; i < 3; ++i) (void)c.try_receive(m);
    }  // leaves holding three: pending redelivery
  });
  seed(dir, "claim_committed_later", small(), [&](Queue& q) {
    auto p = Producer::attach(q, "p");
    (void)p.try_send(text("before the hole"));
    auto c = Consumer::join(q, "g", co);
    (void)p.try_claim(100);
    std::memset(p.claimed().data(), 'h', 100);
    save(dir, "uncommitted_claim", snapshot());
    p.commit();
  });
  seed(dir, "wrapped_padding_skipped", small(), [&](Queue& q) {
    auto p = Producer::attach(q, "p");
    auto c = Consumer::join(q, "g", co);
    Message m;
    for (int i = 0; i < 40; ++i) {
      (void)p.try_send(text(std::string(static_cast<std::size_t>(37 * i % 190), 'w')));
      if (i % 7 == 3 && p.try_claim(50) == Status::Ok) p.abort();
      while (c.try_receive(m) == Status::Ok && i < 36) (void)c.ack(m);
    }
  });
  QueueOptions durable = small(2);
  durable.durable = true;
  seed(dir, "durable_two_of_each", durable, [&](Queue& q) {
    auto p = Producer::attach(q, "p");
    auto r = Producer::attach(q, "r");
    auto g = Consumer::join(q, "g", co);
    auto h = Consumer::join(q, "h", co);
    auto h2 = Consumer::join(q, "h", co);
    for (int i = 0; i < 8; ++i) (void)(i % 2 ? p : r).try_send(text("two " + std::to_string(i)));
    Message m;
    (void)g.try_receive(m);
    (void)h.try_receive(m);
    (void)h2.try_receive(m);
  });

  // Refused outright.
  save(dir, "refused_foreign", std::vector<char>(8192, 'j'));
  save(dir, "refused_truncated", std::vector<char>{'x'});
  seed(dir, "refused_newer_version", small(), [](Queue& q) {
    detail::mapping_of(q)->header->super.layout_version.store(2);
  });

  // Crafted attacks: a record or a position a hostile peer placed so that a
  // reader would touch bytes past the ring's end (the last bytes of the
  // segment). Each must be refused (Corrupt, Empty), never followed.
  const std::uint64_t cap = 4096;
  seed(dir, "attack_data_record_crosses_ring_end", small(), [&](Queue& q) {
    auto c = Consumer::join(q, "g", co);
    const detail::Mapping& m = *detail::mapping_of(q);
    const std::uint64_t at = cap + cap - kRecordAlign;  // second lap, last chunk
    RecordFields h{};
    h.length = m.max_message;  // fits max_message, but not the 64 bytes left in the ring
    h.type = static_cast<std::uint16_t>(RecordType::Data);
    m.write_info(at, h);
    m.commit_record(at);
    m.header->head.store(at);
    m.header->tail.store(at + record_bytes(h.length));
    m.groups[0].read.store(at);
    m.groups[0].released.store(at);
  });
  seed(dir, "attack_misaligned_head_and_read", small(), [&](Queue& q) {
    auto c = Consumer::join(q, "g", co);
    const detail::Mapping& m = *detail::mapping_of(q);
    const std::uint64_t at = cap + cap - 8;  // header would straddle the ring's end
    m.record(at)->tag.store(m.tag_of(at));
    m.header->head.store(at);
    m.header->tail.store(at + 64);
    m.groups[0].read.store(at);
    m.groups[0].released.store(at);
  });
  seed(dir, "attack_misaligned_tail", small(), [&](Queue& q) {
    auto c = Consumer::join(q, "g", co);
    const detail::Mapping& m = *detail::mapping_of(q);
    const std::uint64_t at = cap + cap - 8;  // a producer would write its header past the end
    m.header->head.store(at);
    m.header->tail.store(at);
    m.groups[0].read.store(at);
    m.groups[0].released.store(at);
  });
  return 0;
}
