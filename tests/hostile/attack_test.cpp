// Crafted attacks: a peer with write access places one record or position so
// that a reader or writer that trusts it would touch bytes past the ring's
// end (the last bytes of the segment), or changes a length between two reads
// of it. Guard pages around the mapping turn any such access into SIGSEGV, so
// every risky call runs in a forked child and the test checks how it ended.
#include <thread>

#include "guarded_mapping.hpp"
#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace layout;
using namespace std::chrono_literals;

class AttackTest : public NamespaceTest {
 protected:
  void SetUp() override {
    NamespaceTest::SetUp();
    QueueOptions o;
    o.capacity = kCapacity;
    o.max_message = 200;
    queue_.emplace(Queue::create("q", o));
    ASSERT_TRUE(guard_.protect(*queue_));
  }
  void TearDown() override {
    queue_.reset();
    NamespaceTest::TearDown();
  }
  const detail::Mapping& map() const { return *detail::mapping_of(*queue_); }
  // Sets head, tail and group 0's cursors.
  void place(std::uint64_t head, std::uint64_t tail, std::uint64_t read) const {
    map().header->head.store(head);
    map().header->tail.store(tail);
    map().groups[0].read.store(read);
    map().groups[0].released.store(read);
  }
  // Runs `body` in a child; "" when it exited 0, else how it ended.
  static std::string in_child(const std::function<int()>& body) {
    const int rc = wait_exit(spawn(body));
    if (rc == 0) return "";
    if (rc > 128) return std::string("killed by ") + ::strsignal(rc - 128);
    return "exit code " + std::to_string(rc);
  }

  static constexpr std::uint64_t kCapacity = 4096;
  std::optional<Queue> queue_;  // reset before the guard goes
  Guard guard_;
};

bool inside_ring(const detail::Mapping& m, const Message& msg) {
  return msg.payload.size() <= m.max_message &&
         (msg.payload.empty() || (msg.payload.data() >= m.ring && msg.payload.data() + msg.payload.size() <= m.ring + m.capacity));
}

// A committed Data record in the ring's last chunk whose length fits
// max_message but not the 64 bytes left before the ring's end.
TEST_F(AttackTest, DataRecordCrossingTheRingEndIsNotFollowed) {
  auto c = Consumer::join(*queue_, "g");
  const std::uint64_t at = 2 * kCapacity - kRecordAlign;
  RecordFields h{};
  h.length = 200;
  h.type = static_cast<std::uint16_t>(RecordType::Data);
  map().write_info(at, h);
  map().commit_record(at);
  place(at, at + record_bytes(h.length), at);

  const std::string records_copy = in_child([&] { return static_cast<int>(queue_->records().size() > 1); });
  EXPECT_EQ(records_copy, "")
      << "records() must stop at the record, not copy past the ring's end";
  Message m;
  const Status s = c.try_receive(m);
  EXPECT_TRUE(s != Status::Ok || inside_ring(map(), m))
      << "try_receive handed out a payload of " << m.payload.size() << " bytes starting "
      << (m.payload.data() - map().ring) << " bytes into a " << kCapacity << "-byte ring";
}

// head and a group's read cursor 8 bytes before the ring's end, with a
// matching tag: a record header read there straddles the end.
TEST_F(AttackTest, MisalignedPositionsAreNotFollowed) {
  auto c = Consumer::join(*queue_, "g");
  const std::uint64_t at = 2 * kCapacity - 8;
  map().record(at)->tag.store(map().tag_of(at));
  place(at, at + kRecordAlign, at);
  const std::string records_misaligned = in_child([&] {
              (void)queue_->records();
              return 0;
            });
  EXPECT_EQ(records_misaligned, "")
      << "records() from a misaligned head";
  const std::string receive_misaligned = in_child([&] {
              Message m;
              (void)c.try_receive(m);
              return 0;
            });
  EXPECT_EQ(receive_misaligned, "")
      << "try_receive from a misaligned read cursor";
}

// A misaligned tail 8 bytes before the ring's end: the producer's padding
// header written there would reach past the segment (an out-of-bounds write).
TEST_F(AttackTest, MisalignedTailNeverMakesAProducerWriteOutsideTheRing) {
  auto c = Consumer::join(*queue_, "g");
  const std::uint64_t at = 2 * kCapacity - 8;
  place(at, at, at);
  const std::string producer_misaligned = in_child([&] {
              auto p = Producer::attach(*queue_, "p");
              (void)p.try_send(as_bytes("x"));
              return 0;
            });
  EXPECT_EQ(producer_misaligned, "");
}

// A peer rewrites a record's length between the consumer's check of it and
// its use: the length must be read once.
TEST_F(AttackTest, ConsumerReadsARecordLengthOnce) {
  auto p = Producer::attach(*queue_, "p");
  auto c = Consumer::join(*queue_, "g");
  // The flipper rewrites the length of the record at `target` as fast as it
  // can; `epoch`/`seen` is the handshake that takes it off a record.
  std::atomic<std::uint64_t> target{kNoPosition};
  std::atomic<std::uint64_t> epoch{0}, seen{0}, flips{0};
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    const std::uint32_t lengths[2] = {10, 0xfffffff0u};
    for (unsigned i = 0; !stop.load(); ++i) {
      const std::uint64_t e = epoch.load();
      const std::uint64_t at = target.load();
      if (at != kNoPosition) {
        reinterpret_cast<std::atomic<std::uint32_t>*>(map().record(at))->store(lengths[i & 1], std::memory_order_relaxed);
        flips.fetch_add(1);
      }
      seen.store(e);
    }
  });
  int bad = 0, delivered = 0, rounds = 0;
  const std::string ten(10, 'x');
  const auto until = Clock::now() + 3s;
  for (; rounds < 200000 && bad == 0 && Clock::now() < until; ++rounds) {
    ASSERT_EQ(p.try_send(as_bytes(ten)), Status::Ok);
    const std::uint64_t before = flips.load();
    target.store(p.last_position());
    while (flips.load() < before + 2) std::this_thread::yield();
    Message m;
    const Status s = c.try_receive(m);
    target.store(kNoPosition);
    const std::uint64_t e = epoch.fetch_add(1) + 1;
    while (seen.load() < e) std::this_thread::yield();  // the flipper is off the record
    if (s == Status::Ok) {
      ++delivered;
      if (!inside_ring(map(), m)) ++bad;
    }
    reinterpret_cast<std::atomic<std::uint32_t>*>(map().record(p.last_position()))->store(10);
    if (s == Status::Ok) {
      (void)c.ack(m);
    } else {  // refused as corrupt: it stays at the cursor, so step over it
      map().groups[0].read.store(map().header->tail.load());
      map().groups[0].released.store(map().header->tail.load());
    }
  }
  stop = true;
  flipper.join();
  EXPECT_EQ(bad, 0) << "after " << rounds << " rounds (" << delivered << " delivered) a payload of ~4 GiB was "
                    << "handed out: its length was checked in record_span() and then read again from shared memory";
}

// The same for records(), which copies the payload: a second read of a length
// that changed would copy gigabytes from past the ring's end.
TEST_F(AttackTest, RecordsReadsARecordLengthOnce) {
  auto p = Producer::attach(*queue_, "p");
  for (int i = 0; i < 8; ++i) ASSERT_EQ(p.try_send(as_bytes("0123456789")), Status::Ok);
  const std::uint64_t first = kFirstPosition;
  const std::string records_flipped = in_child([&] {
              std::atomic<bool> stop{false};
              std::atomic<bool> flipping{false};
              std::thread flipper([&] {
                auto* length = reinterpret_cast<std::atomic<std::uint32_t>*>(map().record(first));
                for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
                  length->store(i & 1 ? 0xfffffff0u : 10u, std::memory_order_relaxed);
                  flipping.store(true, std::memory_order_relaxed);
                }
              });
              while (!flipping.load()) std::this_thread::yield();
              int rc = 0;
              const auto until = Clock::now() + 2s;
              while (rc == 0 && Clock::now() < until) {
                for (int i = 0; i < 1000 && rc == 0; ++i) {
                  try {
                    for (const RecordInfo& r : queue_->records(0, 1)) {
                      if (r.payload.size() > 200) rc = 3;
                    }
                  } catch (const std::bad_alloc&) {
                    rc = 4;
                  }
                }
              }
              stop = true;
              flipper.join();
              return rc;
            });
  EXPECT_EQ(records_flipped, "");
}

}  // namespace
}  // namespace shmq::test
