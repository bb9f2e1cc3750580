// Many processes through one queue: 4 producers, 2 groups of 3 consumers,
// 1,000,000 messages of random sizes. Each group gets every message exactly
// once, each producer's sequences in increasing order, payloads intact.
#include <sys/mman.h>

#include <random>

#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr int kProducers = 4;
constexpr int kGroups = 2;
constexpr int kMembers = 3;
constexpr std::uint64_t kPerProducer = 250'000;
constexpr std::uint64_t kTotal = kProducers * kPerProducer;

struct Shared {
  std::atomic<std::uint64_t> received[kGroups];
  std::atomic<std::uint8_t> seen[kGroups][kProducers][kPerProducer + 1];
};

// [u32 producer index][u32 checksum of the rest][u64 seq][pattern bytes]
std::vector<std::byte> make_payload(std::uint32_t producer, std::uint64_t seq, std::size_t size) {
  std::vector<std::byte> p(size);
  std::memcpy(p.data(), &producer, 4);
  std::memcpy(p.data() + 8, &seq, 8);
  for (std::size_t i = 16; i < size; ++i) p[i] = static_cast<std::byte>(seq * 31 + i * 7 + producer);
  const std::uint32_t sum = checksum(std::span(p).subspan(8));
  std::memcpy(p.data() + 4, &sum, 4);
  return p;
}

class ExchangeTest : public NamespaceTest {};

TEST_F(ExchangeTest, FourProducersTwoGroupsThreeConsumersMillionMessages) {
  QueueOptions o;
  o.capacity = 1 << 20;
  o.max_message = 512;
  auto q = Queue::create("exchange", o);
  for (int g = 0; g < kGroups; ++g) Consumer::join(q, "g" + std::to_string(g));  // groups exist before any send
  void* mem = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* shared = new (mem) Shared{};

  std::vector<pid_t> children;
  for (int g = 0; g < kGroups; ++g) {
    for (int c = 0; c < kMembers; ++c) {
      children.push_back(spawn([&, g] {
        auto queue = Queue::open("exchange");
        ConsumerOptions co;
        co.wait.spin = 64;
        auto consumer = Consumer::join(queue, "g" + std::to_string(g), co);
        std::vector<std::uint64_t> last(kProducers, 0);
        Message m;
        while (shared->received[g].load() < kTotal) {
          if (consumer.receive(m, std::chrono::milliseconds(20)) != Status::Ok) continue;
          std::uint32_t producer, sum;
          std::uint64_t seq;
          if (m.payload.size() < 16) return 2;
          std::memcpy(&producer, m.payload.data(), 4);
          std::memcpy(&sum, m.payload.data() + 4, 4);
          std::memcpy(&seq, m.payload.data() + 8, 8);
          if (producer >= kProducers || seq != m.sequence || seq > kPerProducer) return 3;
          if (sum != checksum(m.payload.subspan(8))) return 4;
          if (seq <= last[producer]) return 5;  // per-producer order
          last[producer] = seq;
          shared->seen[g][producer][seq].fetch_add(1);
          if (consumer.ack(m) != Status::Ok) return 6;
          shared->received[g].fetch_add(1);
        }
        return 0;
      }));
    }
  }
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < kProducers; ++i) {
    children.push_back(spawn([&, i] {
      auto queue = Queue::open("exchange");
      ProducerOptions po;
      po.wait.spin = 64;
      auto producer = Producer::attach(queue, "p" + std::to_string(i), po);
      std::mt19937 rng(i);
      for (std::uint64_t seq = 1; seq <= kPerProducer; ++seq) {
        const auto payload = make_payload(i, seq, 16 + rng() % 300);
        if (producer.send(payload, std::chrono::seconds(30)) != Status::Ok) return 7;
      }
      return 0;
    }));
  }
  for (pid_t pid : children) EXPECT_EQ(wait_exit(pid), 0);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (int g = 0; g < kGroups; ++g) {
    EXPECT_EQ(shared->received[g].load(), kTotal);
    for (int p = 0; p < kProducers; ++p) {
      for (std::uint64_t seq = 1; seq <= kPerProducer; ++seq) {
        ASSERT_EQ(shared->seen[g][p][seq].load(), 1) << "group " << g << " producer " << p << " seq " << seq;
      }
    }
  }
  std::printf("exchange: %llu messages x %d groups in %.2f s = %.0f messages/s produced, %.0f deliveries/s\n",
              static_cast<unsigned long long>(kTotal), kGroups, seconds, kTotal / seconds,
              kGroups * kTotal / seconds);
  RecordProperty("messages_per_second", static_cast<int>(kTotal / seconds));
  ::munmap(mem, sizeof(Shared));
}

}  // namespace
}  // namespace shmq::test
