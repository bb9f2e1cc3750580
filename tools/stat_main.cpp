// shmq-stat: what the queues of a namespace hold and do, read straight from
// their shared-memory segments (read-only; no daemon needed).
#include <chrono>
#include <iostream>
#include <string>
#include <vector>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "shmq/stats/metrics.hpp"
#include "shmq/version.hpp"
#include "stat_check.hpp"
#include "stat_errors.hpp"
#include "stat_report.hpp"
#include "stat_watch.hpp"

using namespace shmq::tools;

namespace {

struct StatArgs {
  std::string ns;
  std::vector<std::string> queues;  // one at most, but with --check
  bool check = false;
  bool errors = false;
  bool json = false;
  bool prometheus = false;
  std::string watch_interval;  // empty with --watch: one second
  std::chrono::nanoseconds sample = std::chrono::milliseconds(250);
  std::vector<std::string> max_lag;  // --check's --max-lag, each N or SIZE
  CheckBounds bounds;
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

// --check: nothing printed and 0 when healthy, else one line per problem and 1.
int run_check(const std::string& ns, StatArgs& args) {
  for (const std::string& text : args.max_lag) {
    try {
      parse_max_lag(text, args.bounds);
    } catch (const ParseError& e) {
      throw Failure(std::string("--max-lag: ") + e.what(), kExitUsage);
    }
  }
  const std::vector<std::string> problems = check_queues(ns, args.queues, args.bounds);
  for (const std::string& line : problems) std::cout << line << '\n';
  std::cout << std::flush;
  return problems.empty() ? kExitOk : kExitFailure;
}

int run_stat(StatArgs& args, bool watching, bool checking) {
  const std::string ns = shmq::tools::effective_namespace(args.ns);
  shmq::validate_namespace(ns);
  for (const std::string& queue : args.queues) shmq::validate_name(queue);
  if (checking) return run_check(ns, args);
  if (args.errors) {
    if (!args.queues.empty()) throw Failure("--errors takes no QUEUE: it shows shmqd's, for the namespace", kExitUsage);
    return print_daemon_errors(ns, args.json);
  }
  if (args.queues.size() > 1) {
    throw Failure("one QUEUE at most (several only with --check)", kExitUsage);
  }
  const std::string queue = args.queues.empty() ? std::string() : args.queues.front();
  if (watching) return watch(ns, queue, watch_interval(args.watch_interval));
  Sample first = take_sample(ns, queue);
  if (!queue.empty() && !first.queues.front().info) throw Failure(first.queues.front().error);
  if (args.prometheus) {
    std::cout << shmq::stats::render_prometheus(first.queues, ns);
    return kExitOk;
  }
  std::optional<Sample> second;
  if (args.sample.count() > 0) {
    std::this_thread::sleep_for(args.sample);
    second = take_sample(ns, queue);
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
      "Never changes a segment; shows an unreadable one with the reason.\n"
      "--check: a health check (cron, systemd, Kubernetes, Nagios): exit 0 and no output when\n"
      "healthy; else exit 1 and one line per problem: a queue missing or unreadable, shmqd down\n"
      "(for a durable queue always; for any with --require-daemon), a journal failing, a dead\n"
      "producer or consumer not reaped, a group lagging past --max-lag/--max-lag-seconds.\n"
      "--errors: the last 100 distinct warnings and errors shmqd logged (its data directory's\n"
      "errors.log), each with a count and when first and last seen; exit 0, also when none.",
      "shmq-stat"};
  StatArgs args;
  add_version_flag(app, SHMQ_VERSION_STRING);
  app.footer("Environment: SHMQ_NAMESPACE (the namespace), SHMQ_SHM_DIR (the directory of every segment, default "
             "/dev/shm), SHMQ_DATA_DIR (--errors: shmqd's data directory when no shmqd runs)");
  add_namespace_option(app, args.ns);
  app.add_option("QUEUE", args.queues, "Show only this queue (--check: only these queues)");
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
  auto* check = app.add_flag("--check", args.check,
                             "Health check: exit 0 silently when healthy, else exit 1 and one line "
                             "per problem");
  auto* max_lag =
      app.add_option("--max-lag", args.max_lag,
                     "--check: a group lagging more than N messages (a plain number) or SIZE bytes "
                     "(with a unit: 64K, 64MiB, 1G) is a problem; may be given twice, N and SIZE")
          ->type_name("N|SIZE")
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  auto* max_lag_seconds =
      app.add_option_function<double>(
             "--max-lag-seconds", [&args](double seconds) { args.bounds.max_lag_seconds = seconds; },
             "--check: a group whose oldest unacknowledged message is older than S seconds is a "
             "problem")
          ->type_name("S")
          ->check(CLI::NonNegativeNumber);
  auto* require_daemon =
      app.add_flag("--require-daemon", args.bounds.require_daemon,
                   "--check: shmqd down is a problem for every queue (always for a durable one)");
  auto* errors = app.add_flag("--errors", args.errors,
                              "Print the warnings and errors shmqd kept (errors.log in its data directory: the "
                              "last 100 distinct, with counts), the latest last; with --json, a JSON array");
  json->excludes(prometheus);
  errors->excludes(prometheus)->excludes(watch_option)->excludes(check);
  watch_option->excludes(json)->excludes(prometheus);
  check->excludes(json)->excludes(prometheus)->excludes(watch_option);
  max_lag->needs(check);
  max_lag_seconds->needs(check);
  require_daemon->needs(check);
  return run_main(app, argc, argv, [&] {
    return run_stat(args, watch_option->count() > 0, args.check);
  });
}
