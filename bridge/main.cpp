// shmq-bridge: moves messages between shmq queues and NATS JetStream streams,
// exactly once both ways (docs/bridge.md).
//
//   shmq-bridge --nats URL out QUEUE --group G --subject SUBJECT [--stream STREAM]
//   shmq-bridge --nats URL in STREAM [--filter SUBJECT] --queue QUEUE [--producer NAME]
//   shmq-bridge --config FILE
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "config.hpp"
#include "logging.hpp"         // shmqd's (daemon/, library shmq_service)
#include "metrics_server.hpp"  // shmqd's
#include "shmq/shmq.hpp"

namespace shmq::bridge {
namespace {

struct CommandLine {
  std::string config_file;
  std::string duplicate_window = "2m";
  std::string connect_timeout;
  std::string drain_timeout;
  OutRoute out;
  InRoute in;
};

// Signals go to one thread (sigtimedwait below): blocked before any thread,
// libnats' included, starts.
sigset_t termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Runs every route on its own thread until SIGTERM/SIGINT or until one fails
// (then the others stop too). Routes are set up one after the other, in the
// order given, out routes first: an in route may read a stream an out route
// creates. Returns the exit status.
int run_routes(const Config& config, CounterRegistry& registry) {
  std::atomic<bool> stopping{false};
  std::atomic<bool> failed{false};
  std::atomic<int> running{0};
  std::vector<std::thread> threads;
  const sigset_t signals = termination_signals();
  const timespec tick{0, 100'000'000};
  // Waits for a signal (or a route's end) up to a tick; false once stopping.
  auto watch_signals = [&] {
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig > 0 && !stopping.exchange(true)) spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return !stopping.load();
  };
  auto start = [&](auto body, Counters& counters) {
    auto set_up = std::make_shared<std::atomic<bool>>(false);
    running.fetch_add(1);
    threads.emplace_back([&, body, set_up, c = &counters] {
      try {
        body(*c, [&set_up] { set_up->store(true); });
      } catch (const std::exception& e) {
        spdlog::error("{}: {}", c->route, e.what());
        failed = true;
        stopping = true;
      }
      set_up->store(true);
      running.fetch_sub(1);
    });
    while (!set_up->load() && watch_signals()) {
    }
  };
  for (const OutRoute& r : config.out) {
    if (stopping) break;
    Counters& c = registry.add("out:" + r.queue + ":" + r.subject, "out");
    start([&config, &r, &stopping](Counters& counters, const std::function<void()>& ready) {
      run_out(config.nats, r, counters, stopping, config.drain, ready);
    }, c);
  }
  for (const InRoute& r : config.in) {
    if (stopping) break;
    Counters& c = registry.add("in:" + r.stream + ":" + r.queue, "in");
    start([&config, &r, &stopping](Counters& counters, const std::function<void()>& ready) {
      run_in(config.nats, r, counters, stopping, ready);
    }, c);
  }
  while (running.load() > 0) watch_signals();
  for (auto& t : threads) t.join();
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace shmq::bridge

int main(int argc, char** argv) {
  using namespace shmq::bridge;
  const sigset_t signals = termination_signals();
  ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Config config;
  config.nats.url = "nats://127.0.0.1:4222";
  CommandLine cl;
  CLI::App app{"shmq-bridge: moves messages between shmq queues and NATS JetStream streams, exactly once "
               "both ways (docs/bridge.md)"};
  app.add_option("--nats", config.nats.url, "nats-server URL(s), comma-separated")->capture_default_str();
  app.add_option("--config", cl.config_file, "JSON file of routes and settings (schema: docs/bridge.md)");
  app.add_option("--metrics", config.metrics, "serve the bridge's counters on http://HOST:PORT/metrics");
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--log-file", config.log_file, "also log to this file (stderr is journald-aware, as shmqd's)");
  app.add_option("--connect-timeout", cl.connect_timeout, "give up connecting at start after this (default 2s)");
  app.add_option("--drain-timeout", cl.drain_timeout,
                 "SIGTERM: wait this long for JetStream's acks of what is in flight (default 5s)");

  CLI::App* out = app.add_subcommand("out", "shmq -> JetStream: publish group G's messages of QUEUE to SUBJECT");
  out->add_option("QUEUE", cl.out.queue, "the shmq queue")->required();
  out->add_option("--group", cl.out.group, "the consumer group the bridge joins")->required();
  out->add_option("--subject", cl.out.subject, "the subject published to")->required();
  out->add_option("--stream", cl.out.stream, "the stream capturing SUBJECT; created when missing");
  out->add_option("--duplicate-window", cl.duplicate_window,
                  "a created stream's duplicate window (longer than the bridge may be down)")
      ->capture_default_str();
  out->add_option("--replicas", cl.out.replicas, "a created stream's replicas (1, 3, 5)")->capture_default_str();
  out->add_option("--max-in-flight", cl.out.max_in_flight, "publishes awaiting JetStream's ack at once")
      ->check(CLI::Range(1, 65536))
      ->capture_default_str();

  CLI::App* in = app.add_subcommand("in", "JetStream -> shmq: send STREAM's messages to QUEUE, seq = stream seq");
  in->add_option("STREAM", cl.in.stream, "the JetStream stream")->required();
  in->add_option("--filter", cl.in.filter, "only the stream's messages on this subject");
  in->add_option("--queue", cl.in.queue, "the shmq queue")->required();
  in->add_option("--producer", cl.in.producer, "the shmq producer name (default bridge.<STREAM>)");
  app.require_subcommand(0, 1);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (!cl.config_file.empty()) load_config_file(cl.config_file, config);
    if (!cl.connect_timeout.empty()) config.nats.connect_timeout = parse_duration(cl.connect_timeout);
    if (!cl.drain_timeout.empty()) config.drain = parse_duration(cl.drain_timeout);
    if (out->parsed()) {
      cl.out.duplicate_window = std::chrono::duration_cast<std::chrono::seconds>(parse_duration(cl.duplicate_window));
      config.out.push_back(cl.out);
    }
    if (in->parsed()) {
      if (cl.in.producer.empty()) cl.in.producer = "bridge." + cl.in.stream;
      config.in.push_back(cl.in);
    }
    if (config.out.empty() && config.in.empty()) throw SetupError("nothing to do: give a route (out, in) or --config");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-bridge: %s\n", e.what());
    return 1;
  }
  CounterRegistry registry;
  std::optional<shmq::daemon::MetricsServer> metrics;
  try {
    shmq::daemon::set_up_logging("shmq-bridge", config.log_level, config.log_file);
    if (!config.metrics.empty()) metrics.emplace(config.metrics, [&registry] { return registry.prometheus_text(); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-bridge: %s\n", e.what());
    return 1;
  }
  const int rc = run_routes(config, registry);
  metrics.reset();
  nats_Close();
  return rc;
}
