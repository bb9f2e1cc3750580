// Producer batches: several records claimed with one move of the tail,
// copied (try_send_batch) or written in place (try_claim_batch), and what a
// producer that dies in the middle of one leaves (the committed records stay,
// the rest is skipped, its sequences may be sent again).
#include <csignal>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

class BatchTest : public NamespaceTest {
 protected:
  Queue make(std::uint64_t capacity) {
    QueueOptions o;
    o.capacity = capacity;
    o.max_message = 256;
    return Queue::create("batch", o);
  }
  // Keeps the payloads alive for the spans.
  struct Payloads {
    std::vector<std::string> text;
    std::vector<std::span<const std::byte>> spans;
    explicit Payloads(std::vector<std::string> t) : text(std::move(t)) {
      for (const auto& s : text) spans.push_back(std::as_bytes(std::span(s)));
    }
  };
  static std::vector<std::string> numbered(int from, int to, std::size_t bytes = 8) {
    std::vector<std::string> out;
    for (int i = from; i <= to; ++i) {
      std::string s = "m" + std::to_string(i);
      s.resize(std::max(bytes, s.size()), '.');
      out.push_back(s);
    }
    return out;
  }
  static std::string text(const Message& m) { return {reinterpret_cast<const char*>(m.payload.data()), m.payload.size()}; }
};

TEST_F(BatchTest, OneClaimForTheWholeBatchInOrder) {
  auto q = make(1 << 16);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  const Payloads batch(numbered(1, 10));
  Status status = Status::Corrupt;
  ASSERT_EQ(p.try_send_batch(batch.spans, status), 10u);
  EXPECT_EQ(status, Status::Ok);
  EXPECT_EQ(p.last_sequence(), 10u);
  const auto& slot = detail::mapping_of(q)->producers[p.id()];
  EXPECT_EQ(slot.claim_bytes.load(), 10 * layout::record_bytes(8)) << "one claim announced for all ten";
  Message m;
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, static_cast<std::uint64_t>(i));
    EXPECT_EQ(text(m), batch.text[i - 1]);
  }
  EXPECT_EQ(q.info().producers.at(p.id()).messages, 10u);
}

TEST_F(BatchTest, ABatchAcrossTheRingsEndAndOneThatDoesNotFit) {
  auto q = make(4096);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  Status status = Status::Ok;
  const Payloads first(numbered(1, 40));  // 40 x 64 bytes of a 4096-byte ring
  ASSERT_EQ(p.try_send_batch(first.spans, status), 40u);
  Message m;
  for (int i = 0; i < 40; ++i) ASSERT_EQ(c.try_receive(m), Status::Ok);
  c.ack_up_to(m.position);
  // Wraps: 23 fit before the ring's end, a padding-free second claim takes the rest.
  const Payloads second(numbered(41, 100));
  EXPECT_EQ(p.try_send_batch(second.spans, status), 60u);
  EXPECT_EQ(status, Status::Ok);
  for (std::uint64_t i = 41; i <= 100; ++i) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, i);
  }
  // Unacked, the ring holds 4 more records of 64 bytes: 4 of 10 go, then Full.
  const Payloads third(numbered(101, 110));
  EXPECT_EQ(p.try_send_batch(third.spans, status), 4u);
  EXPECT_EQ(status, Status::Full);
  EXPECT_EQ(p.last_sequence(), 104u);
}

TEST_F(BatchTest, ATooLargeMessageEndsTheBatchBeforeIt) {
  auto q = make(1 << 16);
  auto p = Producer::attach(q, "p");
  std::vector<std::string> t = numbered(1, 3);
  t.insert(t.begin() + 2, std::string(300, 'x'));
  const Payloads batch(t);
  Status status = Status::Ok;
  EXPECT_EQ(p.try_send_batch(batch.spans, status), 2u);
  EXPECT_EQ(status, Status::TooLarge);
  EXPECT_EQ(p.try_send_batch(std::span(batch.spans).subspan(2), status), 0u);
  EXPECT_EQ(status, Status::TooLarge);
}

// A producer dies inside a batch of 3: records 1 and 2 committed, record 3
// counted (last_seq) but never tagged. The group gets 1 and 2, a skip for 3,
// and the name's next producer may send sequence 3 again.
TEST_F(BatchTest, AProducerThatDiesInsideABatchLeavesWhatItCommitted) {
  auto q = make(1 << 16);
  auto c = Consumer::join(q, "g");
  Pipe parked;
  const pid_t child = spawn([&] {
    auto queue = Queue::open("batch");
    auto p = Producer::attach(queue, "dying");
    const Payloads batch(numbered(1, 3));
    Status status = Status::Ok;
    if (p.try_send_batch(batch.spans, status) != 3) return 1;
    // What dying between record 3's last_seq and its tag leaves: its tag is not there.
    const detail::Mapping& m = *detail::mapping_of(queue);
    m.record(p.last_position())->tag.store(0);
    parked.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(parked.wait());
  ::kill(child, SIGKILL);
  ASSERT_EQ(wait_exit(child), 128 + SIGKILL);
  Message m;
  for (std::uint64_t i = 1; i <= 2; ++i) {
    ASSERT_EQ(c.receive(m, 5s), Status::Ok);
    EXPECT_EQ(m.sequence, i);
  }
  auto again = Producer::attach(q, "dying");  // reaps the dead one: repairs its claim
  EXPECT_EQ(again.last_sequence(), 2u) << "sequence 3 was never committed";
  ASSERT_EQ(again.try_send(3, bytes_of("m3 again")), Status::Ok);
  ASSERT_EQ(c.receive(m, 5s), Status::Ok);
  EXPECT_EQ(m.sequence, 3u);
  EXPECT_EQ(text(m), "m3 again");
  EXPECT_EQ(q.info().holes_skipped, 1u);
}

// Writes `text` into a claimed record (sized for it).
void write_into(std::span<std::byte> record, const std::string& text) {
  ASSERT_EQ(record.size(), text.size());
  std::memcpy(record.data(), text.data(), text.size());
}

TEST_F(BatchTest, AZeroCopyBatchIsOneClaimCommittedInOrder) {
  auto q = make(1 << 16);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  ASSERT_EQ(p.try_claim(5), Status::Ok);  // a single claim before: its size must not leak into the batch's
  p.abort();
  const std::vector<std::string> sent = numbered(1, 10, 20);
  const std::vector<std::size_t> sizes(sent.size(), 20);
  Status status = Status::Corrupt;
  ASSERT_EQ(p.try_claim_batch(sizes, status), 10u);
  EXPECT_EQ(status, Status::Ok);
  ASSERT_EQ(p.claimed_count(), 10u);
  EXPECT_TRUE(p.claimed(10).empty());
  EXPECT_EQ(p.claimed().data(), p.claimed(0).data()) << "claimed() is the batch's first record";
  EXPECT_EQ(p.claimed().size(), 20u);
  const auto& slot = detail::mapping_of(q)->producers[p.id()];
  EXPECT_EQ(slot.claim_bytes.load(), 10 * layout::record_bytes(20)) << "one claim announced for all ten";
  for (std::size_t i = 10; i-- > 0;) write_into(p.claimed(i), sent[i]);  // any order
  Message m;
  EXPECT_EQ(c.try_receive(m), Status::Empty) << "nothing is visible before the commit";
  EXPECT_EQ(p.last_sequence(), 0u);
  const std::uint64_t last = p.commit();
  EXPECT_EQ(p.claimed_count(), 0u);
  EXPECT_EQ(p.last_sequence(), 10u);
  EXPECT_EQ(last, p.last_position());
  for (int i = 1; i <= 10; ++i) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, static_cast<std::uint64_t>(i));
    EXPECT_EQ(text(m), sent[i - 1]);
  }
  EXPECT_EQ(m.position, last);
  EXPECT_EQ(q.info().producers.at(p.id()).messages, 10u);
  EXPECT_EQ(q.info().producers.at(p.id()).bytes, 200u);
}

TEST_F(BatchTest, AZeroCopyBatchStopsAtTheRingsEndAndAtTheRoomLeft) {
  auto q = make(4096);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  const std::vector<std::size_t> forty(40, 8);  // 40 x 64 bytes of a 4096-byte ring
  Status status = Status::Corrupt;
  ASSERT_EQ(p.try_claim_batch(forty, status), 40u);
  p.commit();
  Message m;
  for (int i = 0; i < 40; ++i) ASSERT_EQ(c.try_receive(m), Status::Ok);
  c.ack_up_to(m.position);
  // 23 records fit before the ring's end: one stretch, Ok; the rest after the commit.
  const std::vector<std::size_t> sixty(60, 8);
  ASSERT_EQ(p.try_claim_batch(sixty, status), 23u);
  EXPECT_EQ(status, Status::Ok);
  p.commit();
  ASSERT_EQ(p.try_claim_batch(std::span(sixty).subspan(23), status), 37u);
  p.commit();
  for (std::uint64_t i = 41; i <= 100; ++i) {
    ASSERT_EQ(c.try_receive(m), Status::Ok);
    EXPECT_EQ(m.sequence, i);
  }
  // Unacked, the ring holds 4 more records: 4 of 10, then none (Full).
  ASSERT_EQ(p.try_claim_batch(std::span(sixty).first(10), status), 4u);
  p.commit();
  EXPECT_EQ(p.try_claim_batch(std::span(sixty).first(10), status), 0u);
  EXPECT_EQ(status, Status::Full);
  EXPECT_EQ(p.claim_batch(std::span(sixty).first(10), std::chrono::milliseconds(20), status), 0u);
  EXPECT_EQ(status, Status::Timeout);
  EXPECT_EQ(p.last_sequence(), 104u);
}

TEST_F(BatchTest, AZeroCopyBatchEndsBeforeATooLargeRecord) {
  auto q = make(1 << 16);
  auto p = Producer::attach(q, "p");
  const std::vector<std::size_t> sizes{8, 256, 257, 8};
  Status status = Status::Corrupt;
  EXPECT_EQ(p.try_claim_batch(sizes, status), 2u);
  EXPECT_EQ(status, Status::Ok);
  p.commit();
  EXPECT_EQ(p.try_claim_batch(std::span(sizes).subspan(2), status), 0u);
  EXPECT_EQ(status, Status::TooLarge);
  EXPECT_EQ(p.claimed_count(), 0u);
  EXPECT_EQ(p.try_claim_batch(std::span<const std::size_t>{}, status), 0u);
  EXPECT_EQ(status, Status::Ok) << "an empty batch claims nothing and is no error";
}

TEST_F(BatchTest, AnAbortedZeroCopyBatchIsSkippedWhole) {
  auto q = make(1 << 16);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  const std::vector<std::size_t> sizes{8, 100, 8};
  Status status = Status::Corrupt;
  ASSERT_EQ(p.try_claim_batch(sizes, status), 3u);
  p.abort();
  EXPECT_EQ(p.claimed_count(), 0u);
  EXPECT_EQ(p.commit(), 0u) << "nothing left to commit";
  ASSERT_EQ(p.try_send(bytes_of("after")), Status::Ok);
  Message m;
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 1u) << "the aborted records took no sequences";
  EXPECT_EQ(text(m), "after");
  EXPECT_EQ(c.try_receive(m), Status::Empty);
  // A new claim aborts an open batch the same way.
  ASSERT_EQ(p.try_claim_batch(sizes, status), 3u);
  ASSERT_EQ(p.try_claim(5), Status::Ok);
  EXPECT_EQ(p.claimed_count(), 1u);
  write_into(p.claimed(0), "again");
  p.commit();
  ASSERT_EQ(c.try_receive(m), Status::Ok);
  EXPECT_EQ(m.sequence, 2u);
  EXPECT_EQ(text(m), "again");
}

// A producer dies holding a written but uncommitted zero-copy batch: none of
// it is delivered, and the name's next producer sends its sequences again.
TEST_F(BatchTest, AProducerThatDiesBeforeCommittingAZeroCopyBatchLeavesNothing) {
  auto q = make(1 << 16);
  auto c = Consumer::join(q, "g");
  Pipe parked;
  const pid_t child = spawn([&] {
    auto queue = Queue::open("batch");
    auto p = Producer::attach(queue, "dying");
    if (p.try_send(bytes_of("m1")) != Status::Ok) return 1;
    const std::vector<std::size_t> sizes{2, 2, 2};
    Status status = Status::Ok;
    if (p.try_claim_batch(sizes, status) != 3) return 1;
    for (std::size_t i = 0; i < 3; ++i) std::memcpy(p.claimed(i).data(), "mX", 2);
    parked.signal();
    ::pause();
    return 0;
  });
  ASSERT_TRUE(parked.wait());
  ::kill(child, SIGKILL);
  ASSERT_EQ(wait_exit(child), 128 + SIGKILL);
  Message m;
  ASSERT_EQ(c.receive(m, 5s), Status::Ok);
  EXPECT_EQ(text(m), "m1");
  auto again = Producer::attach(q, "dying");  // reaps the dead one: repairs its claim
  EXPECT_EQ(again.last_sequence(), 1u) << "the batch was never committed";
  ASSERT_EQ(again.try_send(bytes_of("m2")), Status::Ok);
  ASSERT_EQ(c.receive(m, 5s), Status::Ok);
  EXPECT_EQ(m.sequence, 2u);
  EXPECT_EQ(text(m), "m2");
  EXPECT_EQ(c.try_receive(m), Status::Empty);
}

}  // namespace
}  // namespace shmq::test
