// Threads of one process sharing one mapping, so ThreadSanitizer sees every
// access: producers race on the tail, members of a group race on records.
#include <mutex>
#include <set>

#include "test_support.hpp"

namespace shmq::test {
namespace {

class ConcurrencyTest : public NamespaceTest {};

struct Tally {
  std::mutex mutex;
  std::vector<std::vector<int>> seen;  // [producer][seq] deliveries
};

TEST_F(ConcurrencyTest, ProducersAndCompetingConsumersExactlyOncePerGroup) {
  constexpr int kProducers = 3;
  constexpr int kPerProducer = 20000;
  constexpr int kGroups = 2;
  constexpr int kMembers = 2;
  QueueOptions o;
  o.capacity = 1 << 14;
  o.max_message = 256;
  auto q = Queue::create("threads", o);
  std::vector<Tally> tallies(kGroups);
  std::vector<std::uint32_t> ids(kProducers);
  for (auto& t : tallies) t.seen.assign(kProducers, std::vector<int>(kPerProducer + 1, 0));
  std::vector<Consumer> consumers;
  for (int g = 0; g < kGroups; ++g) {
    for (int c = 0; c < kMembers; ++c) {
      ConsumerOptions co;
      co.prefetch = 8;
      co.wait.spin = 100;
      consumers.push_back(Consumer::join(q, "g" + std::to_string(g), co));
    }
  }
  std::atomic<int> done_groups[kGroups] = {};
  std::vector<std::thread> threads;
  for (int i = 0; i < kProducers; ++i) {
    threads.emplace_back([&, i] {
      ProducerOptions po;
      po.wait.spin = 100;
      auto p = Producer::attach(q, "p" + std::to_string(i), po);
      ids[i] = p.id();
      for (int seq = 1; seq <= kPerProducer; ++seq) {
        const std::string payload = std::to_string(i) + ":" + std::to_string(seq) + std::string(seq % 97, '.');
        ASSERT_EQ(p.send(bytes_of(payload)), Status::Ok);
      }
    });
  }
  for (int g = 0; g < kGroups; ++g) {
    for (int c = 0; c < kMembers; ++c) {
      threads.emplace_back([&, g, c] {
        Consumer& consumer = consumers[static_cast<std::size_t>(g * kMembers + c)];
        std::vector<std::uint64_t> last(kProducers, 0);
        Message m;
        while (done_groups[g].load() < kProducers * kPerProducer) {
          if (consumer.receive(m, std::chrono::milliseconds(10)) != Status::Ok) continue;
          const std::string text(m.text());
          const int producer = std::stoi(text.substr(0, text.find(':')));
          ASSERT_EQ(std::stoull(text.substr(text.find(':') + 1)), m.sequence);
          ASSERT_GT(m.sequence, last[static_cast<std::size_t>(producer)]) << "per-producer order";
          last[static_cast<std::size_t>(producer)] = m.sequence;
          {
            std::lock_guard lock(tallies[g].mutex);
            ++tallies[g].seen[static_cast<std::size_t>(producer)][m.sequence];
          }
          ASSERT_EQ(consumer.ack(m), Status::Ok);
          done_groups[g].fetch_add(1);
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  for (int g = 0; g < kGroups; ++g) {
    for (int i = 0; i < kProducers; ++i) {
      for (int seq = 1; seq <= kPerProducer; ++seq) {
        ASSERT_EQ(tallies[g].seen[i][seq], 1) << "group " << g << " producer " << i << " seq " << seq;
      }
    }
  }
}

// Threads of one process share the segment's descriptor, and flock does not
// exclude them from each other: attach and join must still hand out
// distinct entries (they once did not).
TEST_F(ConcurrencyTest, ConcurrentAttachesAndJoinsGetDistinctEntries) {
  auto q = Queue::create("attach");
  constexpr int kThreads = 8;
  for (int round = 0; round < 20; ++round) {
    std::atomic<bool> go{false};
    std::vector<std::uint32_t> producer_ids(kThreads), consumer_ids(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) {
        }
        auto p = Producer::attach(q, "p" + std::to_string(i));
        auto c = Consumer::join(q, "g");
        producer_ids[static_cast<std::size_t>(i)] = p.id();
        consumer_ids[static_cast<std::size_t>(i)] = c.index();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // all attached at once
      });
    }
    go.store(true);
    for (auto& t : threads) t.join();
    EXPECT_EQ(std::set<std::uint32_t>(producer_ids.begin(), producer_ids.end()).size(), kThreads);
  }
}

}  // namespace
}  // namespace shmq::test
