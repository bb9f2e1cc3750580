// Micro benchmarks of one queue inside one process: the cost of the data-path
// calls without a second CPU. Payloads of 8 B, 64 B, 1 KiB and 16 KiB.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "shmq/shmq.hpp"

namespace {

constexpr std::size_t kBatch = 64;

// A fresh queue with one producer and one consumer, removed afterwards.
class Fixture {
 public:
  explicit Fixture(std::size_t payload)
      : name_("micro-" + std::to_string(getpid())),
        queue_(shmq::Queue::create(name_, options())),
        consumer_(shmq::Consumer::join(queue_, "g")),
        producer_(shmq::Producer::attach(queue_, "p")),
        payload_(payload, std::byte{0x5A}) {}
  ~Fixture() { shmq::Queue::remove(name_); }
  Fixture(const Fixture&) = delete;
  Fixture& operator=(const Fixture&) = delete;

  shmq::Producer& producer() { return producer_; }
  shmq::Consumer& consumer() { return consumer_; }
  std::span<const std::byte> payload() const { return payload_; }

 private:
  static shmq::QueueOptions options() {
    shmq::QueueOptions o;
    o.capacity = 8u << 20;  // room for a batch of 16 KiB messages
    o.max_message = 16u << 10;
    return o;
  }
  std::string name_;
  shmq::Queue queue_;
  shmq::Consumer consumer_;
  shmq::Producer producer_;
  std::vector<std::byte> payload_;
};

void require(bool ok, benchmark::State& state, const char* what) {
  if (!ok) state.SkipWithError(what);
}

void set_counters(benchmark::State& state, std::size_t per_iteration) {
  const auto items = static_cast<std::int64_t>(state.iterations() * per_iteration);
  state.SetItemsProcessed(items);
  state.SetBytesProcessed(items * state.range(0));
}

// try_send, try_receive and ack of one message.
void BM_SendReceive(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  shmq::Message m;
  for (auto _ : state) {
    require(f.producer().try_send(f.payload()) == shmq::Status::Ok, state, "try_send");
    require(f.consumer().try_receive(m) == shmq::Status::Ok, state, "try_receive");
    benchmark::DoNotOptimize(m.payload.data());
    require(f.consumer().ack(m) == shmq::Status::Ok, state, "ack");
  }
  set_counters(state, 1);
}

// Zero-copy send: try_claim, write the payload in place, commit; then receive and ack.
void BM_ClaimCommit(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  shmq::Message m;
  for (auto _ : state) {
    require(f.producer().try_claim(f.payload().size()) == shmq::Status::Ok, state, "try_claim");
    std::memcpy(f.producer().claimed().data(), f.payload().data(), f.payload().size());
    benchmark::DoNotOptimize(f.producer().commit());
    require(f.consumer().try_receive(m) == shmq::Status::Ok, state, "try_receive");
    require(f.consumer().ack(m) == shmq::Status::Ok, state, "ack");
  }
  set_counters(state, 1);
}

// Sends and receives kBatch messages, then acks them: one by one, or with one ack_up_to.
template <bool kEach>
void BM_Ack(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::array<shmq::Message, kBatch> held;
  for (auto _ : state) {
    for (auto& m : held) {
      require(f.producer().try_send(f.payload()) == shmq::Status::Ok, state, "try_send");
      require(f.consumer().try_receive(m) == shmq::Status::Ok, state, "try_receive");
    }
    if constexpr (kEach) {
      for (const auto& m : held) require(f.consumer().ack(m) == shmq::Status::Ok, state, "ack");
    } else {
      require(f.consumer().ack_up_to(held.back().position) == kBatch, state, "ack_up_to");
    }
  }
  set_counters(state, kBatch);
}

// Sends kBatch messages, takes them with one try_receive_batch, acks with ack_up_to.
void BM_BatchReceive(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  std::array<shmq::Message, kBatch> batch;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i)
      require(f.producer().try_send(f.payload()) == shmq::Status::Ok, state, "try_send");
    require(f.consumer().try_receive_batch(batch) == kBatch, state, "try_receive_batch");
    require(f.consumer().ack_up_to(batch.back().position) == kBatch, state, "ack_up_to");
  }
  set_counters(state, kBatch);
}

void payloads(benchmark::internal::Benchmark* b) { b->Arg(8)->Arg(64)->Arg(1024)->Arg(16384); }

BENCHMARK(BM_SendReceive)->Apply(payloads);
BENCHMARK(BM_ClaimCommit)->Apply(payloads);
BENCHMARK(BM_Ack<true>)->Name("BM_AckEach")->Apply(payloads);
BENCHMARK(BM_Ack<false>)->Name("BM_AckUpTo")->Apply(payloads);
BENCHMARK(BM_BatchReceive)->Apply(payloads);

}  // namespace

BENCHMARK_MAIN();
