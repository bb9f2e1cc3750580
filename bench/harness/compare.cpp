#include "compare.hpp"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cpu.hpp"
#include "report.hpp"
#include "stats.hpp"

namespace bench {
namespace {

// shmq's extra rows: an exclusive group, and one read and written in batches.
constexpr std::size_t kCompareBatch = 32;
constexpr std::string_view kExclusiveRow = "shmq-x";
constexpr std::string_view kExclusiveBatchRow = "shmq-x-b32";

struct Row {
  std::string label;      // the table's name for the row
  std::string transport;  // what runs it
  bool exclusive = false;
  std::size_t batch = 1;
  Wait wait = Wait::Spin;
  std::vector<std::uint64_t> one_way;  // sorted once complete
  Percentiles latency;                 // one way
  std::size_t messages = 0;            // streamed, over all rounds
  double seconds = 0;
  std::string error;
  [[nodiscard]] double msgs_per_s() const {
    return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
  }
};

Row make_row(std::string_view label, const std::string& transport, Wait wait, bool exclusive = false,
             std::size_t batch = 1) {
  Row row;
  row.label = label;
  row.transport = transport;
  row.wait = wait;
  row.exclusive = exclusive;
  row.batch = batch;
  return row;
}

Wait parse_wait(const std::string& w) { return w == "block" ? Wait::Block : Wait::Spin; }

RunOptions base(const CompareOptions& o, const Row& row) {
  RunOptions r;
  r.transport = row.transport;
  r.channel.payload = o.payload;
  r.channel.ring_bytes = o.ring_bytes;
  r.channel.wait = row.wait;
  r.channel.exclusive = row.exclusive;
  r.channel.batch = row.batch;
  r.cpus = o.cpus;
  r.timeout = o.timeout;
  return r;
}

// Runs `what`, keeping the first error in the row instead of stopping the comparison.
template <class F>
void attempt(Row& row, F what) {
  if (!row.error.empty()) return;
  try {
    what();
  } catch (const std::exception& e) {
    row.error = e.what();
    std::cerr << fmt::format("shmq-bench compare: {} ({}): {}\n", row.label, to_string(row.wait),
                             e.what());
  }
}

void pingpong_round(const CompareOptions& o, Row& row) {
  PingPongOptions p;
  static_cast<RunOptions&>(p) = base(o, row);
  const std::size_t total = row.wait == Wait::Spin ? o.spin_iterations : o.block_iterations;
  p.iterations = std::max<std::size_t>(total / static_cast<std::size_t>(o.rounds), 1);
  p.warmup = o.warmup;
  attempt(row, [&] {
    for (const std::uint64_t rtt : run_pingpong(p)) row.one_way.push_back(rtt / 2);
  });
}

void throughput_round(const CompareOptions& o, Row& row) {
  ThroughputOptions t;
  static_cast<RunOptions&>(t) = base(o, row);
  const std::size_t total = row.wait == Wait::Spin ? o.spin_messages : o.block_messages;
  t.messages = std::max<std::size_t>(total / static_cast<std::size_t>(o.rounds), 1);
  attempt(row, [&] {
    const auto r = run_throughput(t);
    row.messages += r.messages;
    row.seconds += r.seconds;
  });
}

std::vector<Row> measure(const CompareOptions& o, const std::vector<std::string>& names) {
  std::vector<Row> rows;
  for (const auto& w : o.waits) {
    const std::size_t first = rows.size();
    for (const auto& n : names) {
      rows.push_back(make_row(n, n, parse_wait(w)));
      if (n != "shmq") continue;
      rows.push_back(make_row(kExclusiveRow, n, parse_wait(w), true));
      rows.push_back(make_row(kExclusiveBatchRow, n, parse_wait(w), true, kCompareBatch));
    }
    for (int round = 0; round < o.rounds; ++round) {
      for (std::size_t i = first; i < rows.size(); ++i) pingpong_round(o, rows[i]);
      for (std::size_t i = first; i < rows.size(); ++i) throughput_round(o, rows[i]);
    }
  }
  for (auto& r : rows)
    if (r.error.empty()) r.latency = percentiles(r.one_way);
  return rows;
}

const Row* shmq_row(const std::vector<Row>& rows, Wait wait) {
  for (const auto& r : rows)
    if (r.label == "shmq" && r.wait == wait && r.error.empty()) return &r;
  return nullptr;
}

std::string ratio(double x, double shmq) {
  return shmq > 0 && std::isfinite(x / shmq) ? fmt::format("{:.2f}x", x / shmq) : "-";
}

std::string table(const std::vector<Row>& rows, std::size_t payload) {
  std::string out = fmt::format("{:<12}{:<6}{:>10}{:>10}{:>10}{:>13}{:>9}{:>10}{:>10}\n", "transport", "wait",
                                "p50 ns", "p99 ns", "p99.9 ns", "msgs/s", "MB/s", "p50/shmq", "tput/shmq");
  for (const auto& r : rows) {
    if (!r.error.empty()) {
      out += fmt::format("{:<12}{:<6}failed: {}\n", r.label, to_string(r.wait), r.error);
      continue;
    }
    const Row* s = shmq_row(rows, r.wait);
    const double mps = r.msgs_per_s();
    out += fmt::format(
        "{:<12}{:<6}{:>10}{:>10}{:>10}{:>13.0f}{:>9.1f}{:>10}{:>10}\n", r.label, to_string(r.wait),
        r.latency.p50, r.latency.p99, r.latency.p999, mps, mps * static_cast<double>(payload) / 1e6,
        s ? ratio(static_cast<double>(r.latency.p50), static_cast<double>(s->latency.p50)) : "-",
        s ? ratio(mps, s->msgs_per_s()) : "-");
  }
  return out;
}

const Row* find(const std::vector<Row>& rows, std::string_view name) {
  for (const auto& r : rows)
    if (r.label == name && r.wait == Wait::Spin && r.error.empty()) return &r;
  return nullptr;
}

// The targets, checked on the spin rows of this run.
std::string targets(const std::vector<Row>& rows) {
  const Row* shmq = find(rows, "shmq");
  if (shmq == nullptr) return {};
  std::string out = "targets (spin, this run):\n";
  const auto line = [&](std::string_view what, double value, bool ok, std::string_view want) {
    out += fmt::format("  {:<34}{:>8.2f}  want {:<8}{}\n", what, value, want, ok ? "met" : "MISSED");
  };
  const auto p50 = [](const Row* r) { return static_cast<double>(r->latency.p50); };
  const auto at_most = [&](std::string_view what, double value, double bound) {
    line(what, value, value <= bound, fmt::format("<= {}", bound));
  };
  const auto at_least = [&](std::string_view what, double value, double bound) {
    line(what, value, value >= bound, fmt::format(">= {}", bound));
  };
  if (const Row* bare = find(rows, "bare-ring")) {
    const auto p999 = [](const Row* r) { return static_cast<double>(r->latency.p999); };
    const auto tput = [&](const Row* r) { return r->msgs_per_s() / bare->msgs_per_s(); };
    at_most("one-way p50 shmq / bare-ring", p50(shmq) / p50(bare), 1.3);
    at_most("one-way p99.9 shmq / bare-ring", p999(shmq) / p999(bare), 1.0);
    if (const Row* x = find(rows, kExclusiveRow)) {
      at_most("one-way p50 shmq-x / bare-ring", p50(x) / p50(bare), 1.15);
      at_most("one-way p99.9 shmq-x / bare-ring", p999(x) / p999(bare), 1.0);
      at_least("msgs/s shmq-x / bare-ring", tput(x), 1.0);
    }
    if (const Row* xb = find(rows, kExclusiveBatchRow)) at_least("msgs/s shmq-x-b32 / bare-ring", tput(xb), 1.5);
  }
  for (const char* name : {"boost-mq", "posix-mq", "unix-socket"})
    if (const Row* r = find(rows, name))
      line(fmt::format("one-way p50 {} / shmq", name), p50(r) / p50(shmq), p50(r) >= 10 * p50(shmq), ">= 10");
  const double mmps = shmq->msgs_per_s() / 1e6;
  at_least("shmq M msgs/s", mmps, 15);
  return out;
}

nlohmann::json compare_json(const std::vector<Row>& rows, const Probe& probe, const CompareOptions& o) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j{{"transport", r.label}, {"wait", to_string(r.wait)}};
    if (r.transport == "shmq") {
      j["exclusive"] = r.exclusive;
      j["batch"] = r.batch;
    }
    if (!r.error.empty()) {
      j["error"] = r.error;
    } else {
      j["one_way_ns"] = bench::to_json(r.latency);
      j["msgs_per_s"] = r.msgs_per_s();
      j["mb_per_s"] = r.msgs_per_s() * static_cast<double>(o.payload) / 1e6;
    }
    list.push_back(j);
  }
  return {{"payload", o.payload}, {"probe_ns", bench::to_json(probe)}, {"results", list}};
}

// One file per waiting mode: a row per plotted percentile, a column per transport.
void write_dat(const std::vector<Row>& rows, const std::string& prefix) {
  for (const Wait wait : {Wait::Spin, Wait::Block}) {
    std::vector<const Row*> cols;
    for (const auto& r : rows)
      if (r.wait == wait && r.error.empty()) cols.push_back(&r);
    if (cols.empty()) continue;
    std::ofstream f(fmt::format("{}-{}.dat", prefix, to_string(wait)));
    f << "percentile nines";
    for (const Row* r : cols) f << ' ' << r->label;
    f << '\n';
    for (const double p : kPlotPercentiles) {
      // x = 1 / (1 - p): 2 at p50, 10 at p90, ...; the max is drawn at 10^5.
      f << (p == 100 ? std::string("max") : fmt::format("{}", p)) << ' '
        << (p == 100 ? 1e5 : 100 / (100 - p));
      for (const Row* r : cols) f << ' ' << percentile(r->one_way, p);
      f << '\n';
    }
  }
}

}  // namespace

int run_compare(const CompareOptions& o) {
  std::vector<std::string> names = o.transports;
  if (names.empty())
    for (const auto& t : transports()) names.emplace_back(t.name);
  Probe probe{probe_cache_line(o.cpus), {}};
  const auto rows = measure(o, names);
  probe.after_ns = probe_cache_line(o.cpus);

  if (!o.dat.empty()) write_dat(rows, o.dat);
  if (o.json) {
    std::cout << compare_json(rows, probe, o).dump(2) << '\n';
  } else {
    std::cout << fmt::format("shmq-bench compare: {} B payload, one-way latency (round trip / 2), cpus {}\n",
                             o.payload, cpus_text(o.cpus))
              << probe_line(probe) << table(rows, o.payload) << targets(rows);
  }
  for (const auto& r : rows)
    if (!r.error.empty()) return 1;
  return 0;
}

}  // namespace bench
