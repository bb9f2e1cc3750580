// shmq-bench: cross-process latency and throughput of shmq and its baselines.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "compare.hpp"
#include "cpu.hpp"
#include "latency.hpp"
#include "report.hpp"
#include "runs.hpp"
#include "stats.hpp"

namespace bench {
namespace {

std::vector<std::string> transport_names() {
  std::vector<std::string> names;
  for (const auto& t : transports()) names.emplace_back(t.name);
  return names;
}

// Adds the options of pingpong and throughput; --wait is parsed into `wait`.
void add_common(CLI::App& cmd, RunOptions& o, std::string& wait) {
  cmd.add_option("--transport", o.transport, "What to measure")
      ->check(CLI::IsMember(transport_names()))
      ->capture_default_str();
  cmd.add_option("--wait", wait, "spin: poll; block: sleep in the kernel (futex) at once")
      ->check(CLI::IsMember({"spin", "block"}))
      ->capture_default_str();
  cmd.add_option("--payload", o.channel.payload, "Bytes per message")
      ->check(CLI::Range(8, 1 << 24))
      ->capture_default_str();
  cmd.add_option("--ring-bytes", o.channel.ring_bytes, "Buffer per channel (a power of two for shmq)")
      ->capture_default_str();
  cmd.add_option("--cpus", o.cpus, "CPUs to pin the sides to, in turn (-1: unpinned)")
      ->delimiter(',')
      ->capture_default_str();
  cmd.add_option("--timeout", o.timeout, "Seconds before a stuck run is killed and fails")
      ->capture_default_str();
  cmd.add_flag("--exclusive", o.channel.exclusive, "shmq: the consumers' groups are exclusive");
  cmd.add_option("--batch", o.channel.batch, "shmq: receive and send up to N per call (1: single calls)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
}

void pingpong(const PingPongOptions& o, bool json) {
  Probe p{probe_cache_line(o.cpus), {}};
  auto rtt = run_pingpong(o);
  p.after_ns = probe_cache_line(o.cpus);
  const Percentiles pc = percentiles(rtt);
  if (json) {
    std::cout << nlohmann::json{{"transport", o.transport},         {"wait", to_string(o.channel.wait)},
                                {"payload", o.channel.payload},     {"iterations", o.iterations},
                                {"probe_ns", to_json(p)},           {"rtt_ns", to_json(pc)},
                                {"one_way_ns", to_json(halved(pc))}}
                     .dump(2)
              << '\n';
    return;
  }
  std::cout << fmt::format("shmq-bench pingpong: {}, {}, {} B, {} round trips after {} warm-up, cpus {}\n",
                           o.transport, to_string(o.channel.wait), o.channel.payload, o.iterations, o.warmup,
                           cpus_text(o.cpus))
            << probe_line(p) << latency_table(pc);
}

void throughput(const ThroughputOptions& o, bool json) {
  const auto sides = static_cast<std::size_t>(o.producers + o.consumers * o.channel.groups);
  if (o.channel.wait == Wait::Spin && sides > o.cpus.size())
    std::cerr << "shmq-bench: note: more spinning sides than --cpus; sides sharing a CPU spin away its time "
                 "slices (--wait block suits this)\n";
  Probe p{probe_cache_line(o.cpus), {}};
  auto r = run_throughput(o);
  p.after_ns = probe_cache_line(o.cpus);
  const double mb = r.msgs_per_s() * static_cast<double>(o.channel.payload) / 1e6;
  std::optional<Percentiles> confirm;
  if (o.channel.durable) confirm = percentiles(r.confirm_ns);
  if (json) {
    nlohmann::json j{{"transport", o.transport},
                     {"wait", to_string(o.channel.wait)},
                     {"payload", o.channel.payload},
                     {"messages", r.messages},
                     {"producers", o.producers},
                     {"consumers", o.consumers},
                     {"groups", o.channel.groups},
                     {"durable", o.channel.durable},
                     {"exclusive", o.channel.exclusive},
                     {"batch", o.channel.batch},
                     {"seconds", r.seconds},
                     {"msgs_per_s", r.msgs_per_s()},
                     {"mb_per_s", mb},
                     {"probe_ns", to_json(p)}};
    if (confirm) j["confirm_ns"] = to_json(*confirm);
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format(
                   "shmq-bench throughput: {}, {}, {} B, {} producer(s) -> {} group(s) x {} consumer(s){}, "
                   "cpus {}\n",
                   o.transport, to_string(o.channel.wait), o.channel.payload, o.producers, o.channel.groups,
                   o.consumers, o.channel.durable ? ", durable" : "", cpus_text(o.cpus))
            << probe_line(p)
            << fmt::format("{:.0f} msgs/s, {:.1f} MB/s ({} messages in {:.3f} s, every one verified)\n",
                           r.msgs_per_s(), mb, r.messages, r.seconds);
  if (confirm) {
    std::cout << fmt::format("confirm ns: p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}\n", confirm->p50,
                             confirm->p90, confirm->p99, confirm->p999, confirm->p9999, confirm->max);
  }
}

void add_compare(CLI::App& cmd, CompareOptions& o) {
  cmd.add_option("--payload", o.payload, "Bytes per message")
      ->check(CLI::Range(8, 1 << 24))
      ->capture_default_str();
  cmd.add_option("--ring-bytes", o.ring_bytes, "Buffer per channel")->capture_default_str();
  cmd.add_option("--iterations", o.spin_iterations, "Round trips per transport, spin mode")
      ->capture_default_str();
  cmd.add_option("--block-iterations", o.block_iterations, "Round trips per transport, block mode")
      ->capture_default_str();
  cmd.add_option("--warmup", o.warmup, "Warm-up round trips per transport and round")->capture_default_str();
  cmd.add_option("--messages", o.spin_messages, "Streamed messages per transport, spin mode")
      ->capture_default_str();
  cmd.add_option("--block-messages", o.block_messages, "Streamed messages per transport, block mode")
      ->capture_default_str();
  cmd.add_option("--rounds", o.rounds, "Rounds, each running every transport in turn")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd.add_option("--transports", o.transports, "Transports (default: all)")
      ->delimiter(',')
      ->check(CLI::IsMember(transport_names()));
  cmd.add_option("--waits", o.waits, "Waiting modes")
      ->delimiter(',')
      ->check(CLI::IsMember({"spin", "block"}))
      ->capture_default_str();
  cmd.add_option("--cpus", o.cpus, "The two CPUs to pin the sides to")->delimiter(',')->capture_default_str();
  cmd.add_option("--timeout", o.timeout, "Seconds before a stuck run is killed and fails")
      ->capture_default_str();
  cmd.add_flag("--json", o.json, "Print one JSON object");
  cmd.add_option("--dat", o.dat,
                 "Also write gnuplot data to <PREFIX>-spin.dat and <PREFIX>-block.dat (bench/plot.sh)");
}

int run(int argc, char** argv) {
  CLI::App app{"shmq-bench: latency and throughput of shmq against baselines, across processes"};
  app.require_subcommand(1);
  bool json = false;
  std::string wait = "spin";

  PingPongOptions ping;
  auto* pp = app.add_subcommand("pingpong", "Round trips between two processes");
  add_common(*pp, ping, wait);
  pp->add_option("--iterations", ping.iterations, "Measured round trips")->capture_default_str();
  pp->add_option("--warmup", ping.warmup, "Round trips before measuring")->capture_default_str();
  pp->add_flag("--json", json, "Print one JSON object");

  ThroughputOptions tput;
  tput.messages = 1'000'000;
  auto* tp = app.add_subcommand("throughput", "One-way streaming, every message verified");
  add_common(*tp, tput, wait);
  tp->add_option("--messages", tput.messages, "Messages in all")->capture_default_str();
  tp->add_option("--producers", tput.producers, "Producer processes")
      ->check(CLI::Range(1, 254))
      ->capture_default_str();
  tp->add_option("--consumers", tput.consumers, "Consumer processes per group")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  tp->add_option("--groups", tput.channel.groups, "Consumer groups (each gets every message)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  tp->add_flag("--durable", tput.channel.durable, "Durable queue (needs shmqd); reports confirm latency");
  tp->add_flag("--confirm-each", tput.channel.confirm_each,
               "With --durable: each send waits for its own durable confirm (Confirm::Durable)");
  tp->add_flag("--json", json, "Print one JSON object");

  CompareOptions cmp;
  auto* cp = app.add_subcommand("compare", "shmq against every baseline, in one run");
  add_compare(*cp, cmp);

  LatencyOptions lat;
  auto* lp = app.add_subcommand("latency", "One-way latency at fixed rates: waiting modes and baselines, one run");
  lp->add_option("--rate", lat.rates, "Messages a second (repeat, or a comma list)")
      ->delimiter(',')
      ->capture_default_str();
  lp->add_option("--seconds", lat.seconds, "Measured seconds per row (at least 1000 messages)")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  lp->add_option("--payload", lat.payload, "Bytes per message (at least 16)")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  lp->add_option("--cpus", lat.cpus, "The two CPUs to pin the sides to")->delimiter(',')->capture_default_str();
  lp->add_option("--timeout", lat.timeout, "Seconds before a stuck row is killed and fails")->capture_default_str();
  lp->add_flag("--json", lat.json, "Print one JSON object");

  CLI11_PARSE(app, argc, argv);
  ping.channel.wait = tput.channel.wait = wait == "block" ? Wait::Block : Wait::Spin;
  try {
    for (const RunOptions* o : {static_cast<const RunOptions*>(&ping), static_cast<const RunOptions*>(&tput)}) {
      if (o->transport != "shmq" && (o->channel.exclusive || o->channel.batch != 1))
        throw std::invalid_argument("--exclusive and --batch are shmq's: not for " + o->transport);
    }
    if (tput.channel.exclusive && tput.consumers != 1)
      throw std::invalid_argument("--exclusive: one consumer per group (the others would only stand by)");
    if (pp->parsed()) pingpong(ping, json);
    if (tp->parsed()) {
      const auto& info = find_transport(tput.transport);
      if (!info.multi &&
          (tput.producers != 1 || tput.consumers != 1 || tput.channel.groups != 1 || tput.channel.durable))
        throw std::invalid_argument(tput.transport +
                                    " has one producer and one consumer, no groups, nothing durable");
      throughput(tput, json);
    }
    if (cp->parsed()) return run_compare(cmp);
    if (lp->parsed()) return run_latency(lat);
  } catch (const std::exception& e) {
    std::cerr << "shmq-bench: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) { return bench::run(argc, argv); }
