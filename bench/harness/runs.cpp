#include "runs.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <new>

#include "payload.hpp"
#include "shm_region.hpp"
#include "sides.hpp"

namespace bench {
namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<Transport> make(const RunOptions& o, int channels) {
  return find_transport(o.transport).make(channels, o.channel);
}

void run_or_throw(std::span<const Side> sides, const RunOptions& o, const Transport& t) {
  if (!run_sides(sides, o.cpus, t.threads(), o.timeout))
    throw RunFailed(fmt::format("{} run failed", o.transport));
}

void ping(Transport& t, const PingPongOptions& o, std::uint64_t* samples) {
  const auto out = t.sender(0, 0);
  const auto in = t.receiver(1, 0);
  std::vector<std::byte> message(o.channel.payload);
  for (std::size_t i = 0; i < o.warmup + o.iterations; ++i) {
    stamp(message, {0, i + 1});
    const auto start = std::chrono::steady_clock::now();
    out->send(message);
    out->flush();
    const auto echo = in->receive();
    const auto end = std::chrono::steady_clock::now();
    const auto s = verify(echo, o.channel.payload);
    if (!s || s->sequence != i + 1) throw std::runtime_error(fmt::format("ping-pong: bad echo of {}", i + 1));
    in->release();
    if (i >= o.warmup) samples[i - o.warmup] = static_cast<std::uint64_t>((end - start).count());
  }
}

void pong(Transport& t, const PingPongOptions& o) {
  const auto in = t.receiver(0, 0);
  const auto out = t.sender(1, 0);
  for (std::size_t i = 0; i < o.warmup + o.iterations; ++i) {
    out->send(in->receive());
    out->flush();
    in->release();
  }
}

// The throughput run's shared state.
struct alignas(64) Control {
  std::atomic<int> ready{0};
  std::atomic<int> go{0};
  std::atomic<int> producers_done{0};
  std::int64_t start_ns = 0;
};

struct alignas(64) ConsumerResult {
  std::uint64_t received = 0;
  std::uint64_t sequence_sum = 0;
  std::int64_t end_ns = 0;
};

// Lays out Control, one ConsumerResult per consumer, then a confirm slot per message.
struct Board {
  Board(std::size_t consumers, std::size_t messages)
      : block(sizeof(Control) + consumers * sizeof(ConsumerResult) + messages * sizeof(std::uint64_t)),
        control(new (block.as<std::byte>()) Control),
        results(new (block.as<std::byte>() + sizeof(Control)) ConsumerResult[consumers]),
        confirms(reinterpret_cast<std::uint64_t*>(results + consumers)) {}
  SharedBlock block;
  Control* control;
  ConsumerResult* results;
  std::uint64_t* confirms;
};

// Counts this side in; the last one in starts the clock. Then waits for it.
void start_together(Control& c, int sides) {
  if (c.ready.fetch_add(1) + 1 == sides) {
    c.start_ns = now_ns();
    c.go.store(1, std::memory_order_release);
  }
  while (c.go.load(std::memory_order_acquire) == 0) cpu_relax();
}

std::size_t share(std::size_t messages, int producers, int k) {
  const auto p = static_cast<std::size_t>(producers);
  const auto i = static_cast<std::size_t>(k);
  return messages / p + (i < messages % p ? 1 : 0);
}

void produce(Transport& t, const ThroughputOptions& o, const Board& b, int k) {
  const auto out = t.sender(0, k);
  std::vector<std::byte> message(o.channel.payload);
  const std::size_t count = share(o.messages, o.producers, k);
  start_together(*b.control, o.producers + o.consumers * o.channel.groups);
  for (std::uint64_t seq = 1; seq <= count; ++seq) {
    stamp(message, {static_cast<std::uint32_t>(k), seq});
    out->send(message);
  }
  if (b.control->producers_done.fetch_add(1) + 1 == o.producers) {
    stamp(message, {kMarkerProducer, 0});
    for (int c = 0; c < o.consumers; ++c) out->send(message);  // one end marker per consumer
  }
  out->flush();
  const auto confirms = out->drain_confirms();
  std::size_t offset = 0;
  for (int i = 0; i < k; ++i) offset += share(o.messages, o.producers, i);
  std::copy_n(confirms.begin(), std::min(confirms.size(), count), b.confirms + offset);
}

// Receives until an end marker, checking every message; throws on a mismatch.
void consume(Transport& t, const ThroughputOptions& o, const Board& b, int group, ConsumerResult& r) {
  const auto in = t.receiver(0, group);
  std::vector<std::uint64_t> last(static_cast<std::size_t>(o.producers), 0);
  start_together(*b.control, o.producers + o.consumers * o.channel.groups);
  for (;;) {
    const auto s = verify(in->receive(), o.channel.payload);
    if (!s) throw std::runtime_error(fmt::format("message {} corrupt", r.received + 1));
    in->release();
    if (s->producer == kMarkerProducer) break;
    if (s->producer >= last.size()) throw std::runtime_error(fmt::format("unknown producer {}", s->producer));
    std::uint64_t& prev = last[s->producer];
    const bool in_order = o.consumers == 1 ? s->sequence == prev + 1 : s->sequence > prev;
    if (!in_order)
      throw std::runtime_error(
          fmt::format("producer {}: sequence {} after {}", s->producer, s->sequence, prev));
    prev = s->sequence;
    ++r.received;
    r.sequence_sum += s->sequence;
  }
  r.end_ns = now_ns();
}

// Every group must have received each message exactly once.
void check_groups(const ThroughputOptions& o, const Board& b) {
  std::uint64_t want_sum = 0;
  for (int k = 0; k < o.producers; ++k) {
    const std::uint64_t n = share(o.messages, o.producers, k);
    want_sum += n * (n + 1) / 2;
  }
  for (int g = 0; g < o.channel.groups; ++g) {
    std::uint64_t received = 0, sum = 0;
    for (int c = 0; c < o.consumers; ++c) {
      received += b.results[g * o.consumers + c].received;
      sum += b.results[g * o.consumers + c].sequence_sum;
    }
    if (received != o.messages || sum != want_sum)
      throw RunFailed(fmt::format("group {} received {} of {} messages (sequence sum {}, want {})", g,
                                  received, o.messages, sum, want_sum));
  }
}

}  // namespace

std::vector<std::uint64_t> run_pingpong(const PingPongOptions& o) {
  const auto t = make(o, 2);
  SharedBlock block(std::max<std::size_t>(o.iterations, 1) * sizeof(std::uint64_t));
  auto* samples = block.as<std::uint64_t>();
  const std::vector<Side> sides{[&] { ping(*t, o, samples); }, [&] { pong(*t, o); }};
  run_or_throw(sides, o, *t);
  return {samples, samples + o.iterations};
}

ThroughputResult run_throughput(const ThroughputOptions& o) {
  if (o.producers < 1 || o.producers > static_cast<int>(kMaxProducers) || o.consumers < 1 ||
      o.channel.groups < 1)
    throw std::invalid_argument("producers must be 1..254, consumers and groups at least 1");
  const auto t = make(o, 1);
  const int consumers = o.consumers * o.channel.groups;
  const Board board(static_cast<std::size_t>(consumers), o.channel.durable ? o.messages : 0);
  std::vector<Side> sides;
  for (int k = 0; k < o.producers; ++k) sides.emplace_back([&, k] { produce(*t, o, board, k); });
  for (int i = 0; i < consumers; ++i)
    sides.emplace_back([&, i] { consume(*t, o, board, i / o.consumers, board.results[i]); });
  run_or_throw(sides, o, *t);
  check_groups(o, board);

  std::int64_t end = 0;
  for (int i = 0; i < consumers; ++i) end = std::max(end, board.results[i].end_ns);
  ThroughputResult r;
  r.messages = o.messages;
  r.seconds = static_cast<double>(end - board.control->start_ns) / 1e9;
  if (o.channel.durable) r.confirm_ns.assign(board.confirms, board.confirms + o.messages);
  return r;
}

}  // namespace bench
