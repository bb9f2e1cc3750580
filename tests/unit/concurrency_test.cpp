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
  std::atomic<int> producers_gone{0};  // finished, or stopped by a failed ASSERT
  struct CountsExit {
    std::atomic<int>& gone;
    ~CountsExit() { gone.fetch_add(1); }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kProducers; ++i) {
    threads.emplace_back([&, i] {
      const CountsExit exit{producers_gone};
      ProducerOptions po;
      po.wait.spin = 100;
      auto p = Producer::attach(q, "p" + std::to_string(i), po);
      ids[i] = p.id();
      const auto payload_of = [i](int seq) {
        return std::to_string(i) + ":" + std::to_string(seq) + std::string(seq % 97, '.');
      };
      // Producer 0 sends one at a time, 1 in copied batches, 2 in zero-copy ones,
      // each waiting for room at most kRoomWait (consumers that failed stop taking).
      constexpr auto kRoomWait = std::chrono::seconds(30);
      for (int seq = 1; seq <= kPerProducer;) {
        const int n = i == 0 ? 1 : std::min(1 + seq % 7, kPerProducer + 1 - seq);
        std::vector<std::string> payloads;
        for (int k = 0; k < n; ++k) payloads.push_back(payload_of(seq + k));
        Status status = Status::Ok;
        std::size_t sent = 0;
        if (i == 0) {
          status = p.send(bytes_of(payloads[0]), kRoomWait);
          sent = status == Status::Ok ? 1 : 0;
        } else if (i == 1) {
          std::vector<std::span<const std::byte>> spans;
          for (const auto& text : payloads) spans.push_back(bytes_of(text));
          sent = p.send_batch(spans, kRoomWait, status);
        } else {
          std::vector<std::size_t> sizes;
          for (const auto& text : payloads) sizes.push_back(text.size());
          sent = p.claim_batch(sizes, kRoomWait, status);
          for (std::size_t k = 0; k < sent; ++k) std::memcpy(p.claimed(k).data(), payloads[k].data(), sizes[k]);
          p.commit();
        }
        // A batch may go in part (the rest did not fit): status then says why, and the rest goes next.
        ASSERT_GT(sent, 0u) << to_string(status);
        seq += static_cast<int>(sent);
      }
    });
  }
  for (int g = 0; g < kGroups; ++g) {
    for (int c = 0; c < kMembers; ++c) {
      threads.emplace_back([&, g, c] {
        Consumer& consumer = consumers[static_cast<std::size_t>(g * kMembers + c)];
        std::vector<std::uint64_t> last(kProducers, 0);
        Message m;
        int idle_after_producers = 0;  // 10 ms receives that found nothing once every producer was gone
        while (done_groups[g].load() < kProducers * kPerProducer) {
          if (consumer.receive(m, std::chrono::milliseconds(10)) != Status::Ok) {
            // Nothing more comes: stop, and let the tally below say what is missing (no hang).
            if (producers_gone.load() == kProducers && ++idle_after_producers > 200) return;
            continue;
          }
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
