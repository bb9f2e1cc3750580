// shmq-stat: what the queues of a namespace hold and do, read straight from
// their shared-memory segments (read-only; no daemon needed).
#include <chrono>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "shmq/stats/metrics.hpp"
#include "shmq/version.hpp"
#include "stat_report.hpp"
#include "stat_watch.hpp"

using namespace shmq::tools;

namespace {

struct StatArgs {
  std::string ns;
  std::string queue;
  bool json = false;
  bool prometheus = false;
  std::string watch_interval;  // empty with --watch: one second
  std::chrono::nanoseconds sample = std::chrono::milliseconds(250);
};

std::chrono::nanoseconds watch_interval(const std::string& text) {
  if (text.empty()) return std::chrono::seconds(1);
  try {
    const auto interval = parse_duration(text);
    if (interval.count() <= 0) throw ParseError("the interval must be above 0");
    return interval;
  } catch (const ParseError& e) {
    throw Failure(std::string("--watch: ") + e.what(), kExitUsage);
  }
}

int run_stat(const StatArgs& args, bool watching) {
  const std::string ns = shmq::tools::effective_namespace(args.ns);
  shmq::validate_namespace(ns);
  if (!args.queue.empty()) shmq::validate_name(args.queue);
  if (watching) return watch(ns, args.queue, watch_interval(args.watch_interval));
  Sample first = take_sample(ns, args.queue);
  if (!args.queue.empty() && !first.queues.front().info) throw Failure(first.queues.front().error);
  if (args.prometheus) {
    std::cout << shmq::stats::render_prometheus(first.queues);
    return kExitOk;
  }
  std::optional<Sample> second;
  if (args.sample.count() > 0) {
    std::this_thread::sleep_for(args.sample);
    second = take_sample(ns, args.queue);
  }
  const Sample& current = second ? *second : first;
  const Sample* previous = second ? &first : nullptr;
  if (args.json) {
    std::cout << render_json(current, previous).dump(2) << '\n';
  } else {
    std::cout << render_table(current, previous);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "shmq-stat: the queues of a namespace (or one queue), read straight from shared memory.\n"
      "Never changes a segment; shows an unreadable one with the reason.",
      "shmq-stat"};
  StatArgs args;
  add_version_flag(app, SHMQ_VERSION_STRING);
  add_namespace_option(app, args.ns);
  app.add_option("QUEUE", args.queue, "Show only this queue");
  auto* json = app.add_flag("--json", args.json, "Print JSON for scripts");
  auto* prometheus = app.add_flag("--prometheus", args.prometheus,
                                  "Print the Prometheus text format (shmq_* metrics)");
  auto* watch_option =
      app.add_option("-w,--watch", args.watch_interval,
                     "Live view, redrawn every INTERVAL (default 1s); q or Ctrl-C quits")
          ->expected(0, 1)
          ->type_name("[INTERVAL]");
  add_parsed_option(
      app, "--sample", args.sample, parse_duration,
      "One-shot: measure rates over DUR before printing; 0s: no rates (default 250ms)")
      ->type_name("DUR");
  json->excludes(prometheus);
  watch_option->excludes(json)->excludes(prometheus);
  return run_main(app, argc, argv, [&] { return run_stat(args, watch_option->count() > 0); });
}
