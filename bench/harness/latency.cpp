#include "latency.hpp"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <new>
#include <optional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "cpu.hpp"
#include "report.hpp"
#include "runs.hpp"
#include "shm_region.hpp"
#include "sides.hpp"
#include "stats.hpp"
#include "transport.hpp"

namespace bench {
namespace {

// What shmq's WaitOptions polls before sleeping, unless told otherwise.
constexpr std::uint32_t kShmqDefaultSpin = 4000;
// A message: its sequence, then the time it was sent; zeros after.
constexpr std::size_t kMinLatencyPayload = 16;

struct Row {
  std::string_view label;
  std::string_view transport;
  Wait wait;
  std::uint32_t block_spin;
};

constexpr Row kRows[] = {
    {"shmq, consumer polls (the floor)", "shmq", Wait::Spin, 0},
    {"shmq, default wait (spin, then futex)", "shmq", Wait::Block, kShmqDefaultSpin},
    {"shmq, futex at once", "shmq", Wait::Block, 0},
    {"bare ring, futex", "bare-ring", Wait::Block, 0},
    {"unix socket, blocking", "unix-socket", Wait::Block, 0},
};

std::int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for both processes
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Sleeps until shortly before `deadline`, then polls up to it: the kernel's
// timer slack would make a plain sleep late by tens of microseconds.
void pace_until(std::int64_t deadline) {
  constexpr std::int64_t kPollLast = 60'000;
  if (const std::int64_t wake = deadline - kPollLast; wake > now_ns()) {
    const timespec ts{static_cast<time_t>(wake / 1'000'000'000), static_cast<long>(wake % 1'000'000'000)};
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
  while (now_ns() < deadline) cpu_relax();
}

// Shared between the sides: the receiver's CPU time and its samples.
struct ReceiverTimes {
  std::int64_t cpu_ns = 0;
  std::int64_t wall_ns = 0;
};
struct Board {
  explicit Board(std::size_t total)
      : block(sizeof(ReceiverTimes) + total * sizeof(std::uint64_t)),
        times(new (block.as<std::byte>()) ReceiverTimes),
        samples(reinterpret_cast<std::uint64_t*>(block.as<std::byte>() + sizeof(ReceiverTimes))) {}
  SharedBlock block;
  ReceiverTimes* times;
  std::uint64_t* samples;
};

struct Measured {
  Percentiles one_way;
  double receiver_cpu = 0;  // share of one CPU the receiver used while measured
};

void send_paced(Transport& t, double rate, std::size_t total, std::size_t payload) {
  const auto out = t.sender(0, 0);
  std::vector<std::byte> message(payload);
  const auto period = static_cast<std::int64_t>(1e9 / rate);
  std::int64_t next = now_ns() + period;
  for (std::uint64_t i = 0; i < total; ++i, next += period) {
    pace_until(next);
    const std::int64_t sent = now_ns();
    std::memcpy(message.data(), &i, 8);
    std::memcpy(message.data() + 8, &sent, 8);
    out->send(message);
    out->flush();
  }
}

void receive_timed(Transport& t, std::size_t warmup, std::size_t total, const Board& b) {
  const auto in = t.receiver(0, 0);
  std::int64_t cpu_start = 0, wall_start = 0;
  for (std::uint64_t i = 0; i < total; ++i) {
    if (i == warmup) {
      cpu_start = thread_cpu_ns();
      wall_start = now_ns();
    }
    const auto message = in->receive();
    const std::int64_t received = now_ns();
    std::uint64_t seq = 0;
    std::int64_t sent = 0;
    std::memcpy(&seq, message.data(), 8);
    std::memcpy(&sent, message.data() + 8, 8);
    in->release();
    if (seq != i) throw std::runtime_error(fmt::format("message {} arrived as {}", i, seq));
    b.samples[i] = static_cast<std::uint64_t>(received - sent);
  }
  b.times->cpu_ns = thread_cpu_ns() - cpu_start;
  b.times->wall_ns = now_ns() - wall_start;
}

Measured measure(const Row& row, double rate, const LatencyOptions& o) {
  ChannelConfig c;
  c.payload = o.payload;
  c.wait = row.wait;
  c.block_spin = row.block_spin;
  const auto t = find_transport(row.transport).make(1, c);
  const auto warmup = static_cast<std::size_t>(std::max(rate / 10, 100.0));
  const auto total = warmup + static_cast<std::size_t>(std::max(rate * o.seconds, 1000.0));
  const Board board(total);
  const std::vector<Side> sides{[&] { send_paced(*t, rate, total, o.payload); },
                                [&] { receive_timed(*t, warmup, total, board); }};
  if (!run_sides(sides, o.cpus, t->threads(), o.timeout))
    throw RunFailed(fmt::format("{} at {} msgs/s failed", row.label, rate));
  std::vector<std::uint64_t> samples(board.samples + warmup, board.samples + total);
  const ReceiverTimes& times = *board.times;
  return {percentiles(samples),
          times.wall_ns > 0 ? static_cast<double>(times.cpu_ns) / static_cast<double>(times.wall_ns) : 0};
}

std::string us(std::uint64_t ns) { return fmt::format("{:.1f}", static_cast<double>(ns) / 1000); }

}  // namespace

int run_latency(const LatencyOptions& o) {
  if (o.payload < kMinLatencyPayload) throw std::invalid_argument("--payload must be at least 16 bytes");
  Probe probe{probe_cache_line(o.cpus), {}};
  nlohmann::json rows = nlohmann::json::array();
  std::string table;
  int status = 0;
  for (const double rate : o.rates) {
    if (rate <= 0 || rate > 10e6) throw std::invalid_argument("--rate must be 1..10000000 messages a second");
    table += fmt::format("\n{:.0f} msgs/s, {} B ({} s a row)\n{:<40}{:>9}{:>9}{:>9}{:>9}{:>12}\n", rate,
                         o.payload, o.seconds, "one-way, us", "p50", "p99", "p99.9", "max", "recv CPU");
    std::optional<std::uint64_t> floor_p50;
    for (const Row& row : kRows) {
      try {
        const Measured m = measure(row, rate, o);
        if (row.wait == Wait::Spin) floor_p50 = m.one_way.p50;
        std::string ratio;
        if (floor_p50 && *floor_p50 > 0 && row.wait != Wait::Spin)
          ratio = fmt::format("  {:.1f}x the floor", static_cast<double>(m.one_way.p50) / *floor_p50);
        table += fmt::format("{:<40}{:>9}{:>9}{:>9}{:>9}{:>11.0f}%{}\n", row.label, us(m.one_way.p50),
                             us(m.one_way.p99), us(m.one_way.p999), us(m.one_way.max), 100 * m.receiver_cpu, ratio);
        rows.push_back({{"rate", rate},
                        {"row", row.label},
                        {"transport", row.transport},
                        {"wait", to_string(row.wait)},
                        {"spin", row.block_spin},
                        {"receiver_cpu", m.receiver_cpu},
                        {"one_way_ns", to_json(m.one_way)}});
      } catch (const std::exception& e) {
        table += fmt::format("{:<40}failed: {}\n", row.label, e.what());
        rows.push_back({{"rate", rate}, {"row", row.label}, {"error", e.what()}});
        status = 1;
      }
    }
  }
  probe.after_ns = probe_cache_line(o.cpus);
  if (o.json) {
    std::cout << nlohmann::json{{"payload", o.payload}, {"seconds", o.seconds}, {"probe_ns", to_json(probe)},
                                {"rows", rows}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << fmt::format("shmq-bench latency: one-way latency at fixed rates, cpus {}\n", cpus_text(o.cpus))
              << probe_line(probe) << table;
  }
  return status;
}

}  // namespace bench
