// shmq-bridge-bench: the bridge's forwarding rate, out (shmq -> JetStream)
// and in (JetStream -> shmq), next to JetStream alone measured in the same
// run against the same nats-server (publishing the same messages, with the
// same Nats-Msg-Id headers; reading a stream with an ordered consumer), so
// the bridge's own cost is visible. Results and the command: docs/benchmarks.md.
//
//   nats-server -js -sd /tmp/bench-js &
//   shmq-bridge-bench --nats nats://127.0.0.1:4222 --messages 100000 --size 64 --size 1024
//   (--durable: also into a durable queue, with shmqd running in SHMQ_NAMESPACE)
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "routes.hpp"
#include "shmq/shmq.hpp"

namespace shmq::bridge {
namespace {

using BenchClock = std::chrono::steady_clock;

// A measurement: messages per second, and this process's CPU time (all its
// threads: ours and libnats') per message, which shows the client side's
// cost even when the wall-clock rate is bound by nats-server or a busy host.
struct Measure {
  double rate = 0;
  double cpu_us_per_message = 0;
};

class Stopwatch {
 public:
  Stopwatch() : wall_(BenchClock::now()), cpu_(process_cpu_seconds()) {}
  [[nodiscard]] Measure stop(std::uint64_t count) const {
    const double wall = std::chrono::duration<double>(BenchClock::now() - wall_).count();
    const double cpu = process_cpu_seconds() - cpu_;
    const auto n = static_cast<double>(count);
    return {n / wall, 1e6 * cpu / n};
  }

 private:
  static double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
  BenchClock::time_point wall_;
  double cpu_;
};

// The bench's own JetStream connection: a NatsClient (the routes' client),
// with the out route's default publish window.
class Js {
 public:
  explicit Js(const ConnectOptions& nats) : client_(nats, counters_, publish_window()) {}
  [[nodiscard]] jsCtx* js() const noexcept { return client_.jetstream(); }
  // A fresh stream (an earlier run's deleted first).
  void add_stream(const std::string& name, const std::string& subject) {
    drop(name);
    client_.create_stream(name, subject, std::chrono::minutes(2), 1);
  }
  void drop(const std::string& stream) { js_DeleteStream(js(), stream.c_str(), nullptr, nullptr); }

 private:
  jsOptions* publish_window() {
    jsOptions_Init(&options_);
    options_.PublishAsync.MaxPending = OutRoute{}.max_in_flight;  // the bridge's default max in flight
    return &options_;
  }
  CounterRegistry registry_;
  Counters& counters_ = registry_.add("bench", "bench");
  jsOptions options_{};
  NatsClient client_;
};

// JetStream alone: async publishes with the bridge's headers, max 1024 in flight.
Measure jetstream_publish(Js& js, const std::string& subject, std::uint64_t count, std::size_t size) {
  const std::string payload(size, 'x');
  const Stopwatch watch;
  for (std::uint64_t i = 1; i <= count; ++i) {
    natsMsg* m = nullptr;
    natsMsg_Create(&m, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
    const std::string seq = std::to_string(i);
    natsMsgHeader_Set(m, "Nats-Msg-Id", ("bench.q.p." + seq).c_str());
    natsMsgHeader_Set(m, "Shmq-Producer", "p");
    natsMsgHeader_Set(m, "Shmq-Seq", seq.c_str());
    natsMsgHeader_Set(m, "Shmq-Timestamp", "1764424800000000000");
    if (js_PublishMsgAsync(js.js(), &m, nullptr) != NATS_OK) throw SetupError("publish failed");
    natsMsg_Destroy(m);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 60000;
  if (js_PublishAsyncComplete(js.js(), &po) != NATS_OK) throw SetupError("publish acks missing");
  return watch.stop(count);
}

// JetStream alone: an ordered consumer reading the whole stream.
Measure jetstream_read(Js& js, const std::string& stream, std::uint64_t count) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  natsSubscription* sub = nullptr;
  const Stopwatch watch;
  if (js_SubscribeSync(&sub, js.js(), ">", nullptr, &so, nullptr) != NATS_OK) throw SetupError("subscribe failed");
  for (std::uint64_t got = 0; got < count; ++got) {
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK) throw SetupError("read stalled");
    natsMsg_Destroy(m);
  }
  const Measure rate = watch.stop(count);
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
  return rate;
}

// The out route: a producer thread sends `count` messages into a queue while
// the route forwards them; timed until the stream holds them all.
Measure bridge_out(const ConnectOptions& nats, std::uint64_t count, std::size_t size) {
  QueueOptions qo;
  qo.capacity = 16u << 20;
  Queue::remove("bench-out");
  const Queue q = Queue::create("bench-out", qo);
  OutRoute route{"bench-out", "js", "bench.out", "BENCH_OUT"};
  CounterRegistry registry;
  Counters& counters = registry.add("out", "out");
  std::atomic<bool> stopping{false};
  std::atomic<bool> ready{false};
  std::thread bridge([&] { run_out(nats, route, counters, stopping, std::chrono::seconds(5), [&] { ready = true; }); });
  while (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Stopwatch watch;
  std::thread producer([&] {
    Producer p = Producer::attach(q, "p");
    const std::string payload(size, 'x');
    for (std::uint64_t i = 0; i < count; ++i) (void)p.send(as_bytes(payload));
  });
  while (counters.forwarded.load() + counters.duplicates.load() < count)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Measure rate = watch.stop(count);
  stopping = true;
  producer.join();
  bridge.join();
  Queue::remove("bench-out");
  return rate;
}

// The in route: a stream of `count` messages into a queue a consumer drains;
// timed until the queue has them all. A durable queue needs a shmqd running
// in the namespace (its consumers see only what the journal synced).
Measure bridge_in(const ConnectOptions& nats, const std::string& stream, std::uint64_t count, bool durable) {
  QueueOptions qo;
  qo.capacity = 16u << 20;
  qo.durable = durable;
  Queue::remove("bench-in");
  const Queue q = Queue::create("bench-in", qo);
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> received{0};
  Consumer c = Consumer::join(q, "drain");
  std::thread drain([&] {
    Message m;
    while (!done) {
      if (c.receive(m, std::chrono::milliseconds(10)) != Status::Ok) continue;
      received.fetch_add(1);
      (void)c.ack(m);
    }
  });
  InRoute route{stream, "", "bench-in", "bridge." + stream};
  CounterRegistry registry;
  Counters& counters = registry.add("in", "in");
  std::atomic<bool> stopping{false};
  const Stopwatch watch;
  std::thread bridge([&] { run_in(nats, route, counters, stopping, [] {}); });
  while (received.load() < count) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const Measure rate = watch.stop(count);
  stopping = true;
  bridge.join();
  done = true;
  drain.join();
  Queue::remove("bench-in");
  return rate;
}

}  // namespace
}  // namespace shmq::bridge

int main(int argc, char** argv) {
  using namespace shmq::bridge;
  ConnectOptions nats;
  nats.url = "nats://127.0.0.1:4222";
  std::uint64_t count = 100'000;
  std::vector<std::size_t> sizes;
  bool durable = false;
  CLI::App app{"shmq-bridge-bench: the bridge's forwarding rate next to JetStream alone (docs/benchmarks.md)"};
  app.add_option("--nats", nats.url, "nats-server with JetStream")->capture_default_str();
  app.add_option("--messages", count, "messages per measurement")->capture_default_str();
  app.add_option("--size", sizes, "payload bytes (repeatable; default 64 and 1024)");
  app.add_flag("--durable", durable,
               "also the in route into a durable queue (row in-d; needs shmqd running in SHMQ_NAMESPACE)");
  CLI11_PARSE(app, argc, argv);
  if (sizes.empty()) sizes = {64, 1024};
  spdlog::set_level(spdlog::level::warn);
  try {
    Js js(nats);
    std::printf("%-6s %-4s %12s %12s %8s %10s %10s\n", "size", "dir", "JetStream/s", "bridge/s", "bridge%",
                "JS cpu/msg", "br cpu/msg");
    const auto row = [](std::size_t size, const char* dir, const Measure& js_alone, const Measure& bridge) {
      std::printf("%-6zu %-4s %12.0f %12.0f %7.0f%% %8.2fus %8.2fus\n", size, dir, js_alone.rate, bridge.rate,
                  100.0 * bridge.rate / js_alone.rate, js_alone.cpu_us_per_message, bridge.cpu_us_per_message);
      std::fflush(stdout);
    };
    for (std::size_t size : sizes) {
      js.add_stream("BENCH_JS", "bench.js");
      const Measure js_pub = jetstream_publish(js, "bench.js", count, size);
      js.add_stream("BENCH_OUT", "bench.out");
      row(size, "out", js_pub, bridge_out(nats, count, size));
      const Measure js_read = jetstream_read(js, "BENCH_JS", count);
      row(size, "in", js_read, bridge_in(nats, "BENCH_JS", count, false));
      if (durable) row(size, "in-d", js_read, bridge_in(nats, "BENCH_JS", count, true));
      js.drop("BENCH_JS");
      js.drop("BENCH_OUT");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-bridge-bench: %s\n", e.what());
    return 1;
  }
  nats_Close();
  return 0;
}
