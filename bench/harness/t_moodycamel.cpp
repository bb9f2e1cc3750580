// moodycamel ConcurrentQueue between two threads of one process: the
// in-process reference. A message travels as ceil(payload / 64) chunks of
// 64 bytes through a bounded queue (try_enqueue never allocates). Spin mode
// polls a ConcurrentQueue; block mode sleeps in a BlockingConcurrentQueue's
// wait_dequeue (its producer, having no blocking enqueue, yields while full).
#include <concurrentqueue/blockingconcurrentqueue.h>
#include <concurrentqueue/concurrentqueue.h>

#include <array>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include "transport.hpp"

namespace bench {
namespace {

constexpr std::size_t kChunk = 64;
using Chunk = std::array<std::byte, kChunk>;
// Like the other transports' block mode, a waiting consumer sleeps at once
// (the default spins 10000 times first).
struct SleepAtOnce : moodycamel::ConcurrentQueueDefaultTraits {
  static const int MAX_SEMA_SPINS = 0;
};
using SpinQueue = moodycamel::ConcurrentQueue<Chunk>;
using BlockQueue = moodycamel::BlockingConcurrentQueue<Chunk, SleepAtOnce>;

std::size_t chunks_for(std::size_t payload) { return (payload + kChunk - 1) / kChunk; }

template <class Queue>
class ChunkSender final : public Sender {
 public:
  ChunkSender(Queue& q, Wait wait) : q_(q), token_(q), wait_(wait) {}
  void send(std::span<const std::byte> message) override {
    chunks_.resize(chunks_for(message.size()));
    std::memcpy(chunks_.data(), message.data(), message.size());
    while (!enqueue()) {
      if (wait_ == Wait::Spin)
        cpu_relax();
      else
        std::this_thread::yield();
    }
  }

 private:
  bool enqueue() {
    if (chunks_.size() == 1) return q_.try_enqueue(token_, chunks_.front());
    return q_.try_enqueue_bulk(token_, chunks_.begin(), chunks_.size());
  }

  Queue& q_;
  moodycamel::ProducerToken token_;
  std::vector<Chunk> chunks_;
  Wait wait_;
};

template <class Queue>
class ChunkReceiver final : public Receiver {
 public:
  ChunkReceiver(Queue& q, std::size_t payload)
      : q_(q), token_(q), payload_(payload), chunks_(chunks_for(payload)) {}
  std::span<const std::byte> receive() override {
    std::size_t got = 0;
    while (got < chunks_.size())
      got += take(chunks_.begin() + static_cast<std::ptrdiff_t>(got), chunks_.size() - got);
    return {chunks_.front().data(), payload_};
  }

 private:
  std::size_t take(std::vector<Chunk>::iterator out, std::size_t max) {
    if constexpr (std::is_same_v<Queue, BlockQueue>) {
      if (max > 1) return q_.wait_dequeue_bulk(token_, out, max);
      q_.wait_dequeue(token_, *out);
      return 1;
    } else {
      const std::size_t n =
          max > 1 ? q_.try_dequeue_bulk(token_, out, max) : std::size_t{q_.try_dequeue(token_, *out)};
      if (n == 0) cpu_relax();
      return n;
    }
  }
  Queue& q_;
  moodycamel::ConsumerToken token_;
  std::size_t payload_;
  std::vector<Chunk> chunks_;
};

template <class Queue>
class Moodycamel final : public Transport {
 public:
  Moodycamel(int channels, const ChannelConfig& c) : config_(c) {
    for (int i = 0; i < channels; ++i) queues_.emplace_back(std::max<std::size_t>(c.ring_bytes / kChunk, 64));
  }
  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    return std::make_unique<ChunkSender<Queue>>(queues_.at(channel), config_.wait);
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    return std::make_unique<ChunkReceiver<Queue>>(queues_.at(channel), config_.payload);
  }
  [[nodiscard]] bool threads() const override { return true; }

 private:
  ChannelConfig config_;
  std::deque<Queue> queues_;
};

}  // namespace

std::unique_ptr<Transport> make_moodycamel(int channels, const ChannelConfig& config) {
  if (config.wait == Wait::Block) return std::make_unique<Moodycamel<BlockQueue>>(channels, config);
  return std::make_unique<Moodycamel<SpinQueue>>(channels, config);
}

}  // namespace bench
