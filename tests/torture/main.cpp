// shmq-torture: a randomized crash test of libshmq and shmqd with real
// processes. Each round runs producers and consumer groups in forked workers
// against a real shmqd, kill -9s producers, consumers and the daemon and
// SIGSTOPs consumers at random moments (durable rounds: and simulates power
// losses), then checks from the workers' logs that nothing confirmed was lost,
// nothing was delivered twice unflagged, and order held. docs/reliability.md describes it; --help lists the options.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "daemon_process.hpp"
#include "lifecycle.hpp"
#include "options.hpp"
#include "round.hpp"
#include "soak.hpp"

namespace shmq::torture {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A round's seed depends only on the run's seed and the round's number, so
// `--seed S --round R` replays round R alone.
std::uint64_t round_seed(std::uint64_t seed, int round) { return splitmix64(seed ^ splitmix64(round)); }

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

class Run {
 public:
  explicit Run(const TortureOptions& options)
      : o_(options), dir_(fs::path(options.log_root) / ("shmq-torture-" + std::to_string(::getpid()))) {}

  int execute() {
    fs::create_directories(dir_);
    if (o_.minutes > 0) {
      soak();
    } else if (o_.only_round) {
      round_with_own_daemon(*o_.only_round);
    } else {
      for (int r = 1; r <= o_.rounds; ++r) round_with_own_daemon(r);
    }
    print_summary();
    std::error_code ec;
    fs::remove(dir_, ec);  // only when empty: failed rounds' logs stay
    return failed_rounds_ == 0 ? 0 : 1;
  }

 private:
  RoundPlan plan(int r, const std::string& ns, const std::string& queue, const std::string& data_dir) const {
    RoundPlan p = plan_round(o_, r, round_seed(o_.seed, r));
    p.ns = ns;
    p.queue = queue;
    p.log_dir = (dir_ / ("round-" + std::to_string(r))).string();
    p.data_dir = data_dir.empty() ? p.log_dir + "/data" : data_dir;
    return p;
  }

  // A round in a namespace of its own, with an shmqd of its own that it may kill.
  void round_with_own_daemon(int r) {
    const RoundPlan p = plan(r, "torture-" + std::to_string(::getpid()) + "-" + std::to_string(r), "torture", "");
    fs::create_directories(p.log_dir);
    const auto start = Clock::now();
    RoundResult result;
    {
      // FullDisk: the data directory is a tmpfs the size of the round's journal, which the round fills up.
      std::optional<TmpfsMount> disk;
      if (p.lifecycle == Lifecycle::FullDisk) {
        disk.emplace(p.data_dir, p.data_disk_bytes());
        if (!disk->mounted()) {
          std::printf("round %d: %s\n  SKIPPED: a full-disk round needs a tmpfs of its own: %s\n", r,
                      p.describe().c_str(), disk->error().c_str());
          ++total_.skipped;
          std::error_code ec;
          fs::remove_all(p.log_dir, ec);
          return;
        }
      }
      // The round's own data directory: its journal survives the round's power losses.
      DaemonProcess daemon(p.ns, p.data_dir, p.log_dir + "/shmqd.log", p.daemon_args());
      daemon.start();
      result = run_round(p, daemon);
      const auto e = daemon.terminate(std::chrono::seconds(o_.stall_seconds));
      if (!e || !e->clean()) {
        result.violations.push_back("shmqd did not exit cleanly on SIGTERM: " + (e ? e->describe() : "still running"));
      }
      wipe_namespace_shm(p.ns);  // shmqd's record, and segments half-built by a shmqd killed mid-rebuild
    }
    report(p, result, seconds_since(start));
  }

  // Rounds for o_.minutes in one namespace, one queue each, against one shmqd
  // that is never killed, whose footprint is watched. Durable rounds run
  // there too, without power losses (they kill shmqd).
  void soak() {
    const std::string ns = "torture-" + std::to_string(::getpid()) + "-soak";
    const std::string data_dir = (dir_ / "soak-data").string();
    DaemonProcess daemon(ns, data_dir, (dir_ / "shmqd-soak.log").string());
    daemon.start();
    FootprintWatch watch(daemon.pid());
    const auto start = Clock::now();
    auto last_report = start;
    for (int r = 1; seconds_since(start) < o_.minutes * 60; ++r) {
      RoundPlan p = plan(r, ns, "soak" + std::to_string(r), data_dir);
      p.daemon_faults = false;
      p.lifecycle = Lifecycle::None;  // each kills or stops shmqd
      fs::create_directories(p.log_dir);
      const auto round_start = Clock::now();
      RoundResult result = run_round(p, daemon);
      if (auto violation = watch.sample()) result.violations.push_back(*violation);
      report(p, result, seconds_since(round_start));
      if (!result.passed() || seconds_since(last_report) >= 30) {
        std::printf("soak: %.0f s, %d rounds: %s\n", seconds_since(start), r, watch.describe().c_str());
        last_report = Clock::now();
      }
      if (!result.passed()) break;  // keep the evidence as it is
    }
    std::printf("soak: done after %.0f s: %s\n", seconds_since(start), watch.describe().c_str());
    if (!daemon.terminate(std::chrono::seconds(o_.stall_seconds))) ++failed_rounds_;
    fs::remove_all(dir_ / "soak-data");
    if (failed_rounds_ == 0 && !o_.keep_logs) fs::remove(dir_ / "shmqd-soak.log");
  }

  void report(const RoundPlan& p, const RoundResult& result, double seconds) {
    total_.add(result.tally);
    const Tally& t = result.tally;
    std::printf("round %d: %s\n  confirmed %llu, delivered %llu (redelivered %llu), kills producer %llu consumer %llu "
                "daemon %llu, stops %llu, power losses %llu, groups switched to the journal %llu: %s (%.1f s)\n",
                p.number, p.describe().c_str(), ull(t.confirmed), ull(t.delivered), ull(t.redelivered),
                ull(t.producer_kills), ull(t.consumer_kills), ull(t.daemon_kills), ull(t.stops), ull(t.power_losses),
                ull(t.journal_switches),
                result.passed() ? "PASS" : "FAIL", seconds);
    if (p.lifecycle != Lifecycle::None && p.daemon_faults) {
      std::printf("  lifecycle %s: application first %llu, shmqd killed in a rebuild %llu (mid-rebuild %llu), "
                  "disk filled %llu times (shmqd reported %llu), shmqd started on it %llu times, fencings %llu (longest %ld ms), takeovers %llu\n",
                  lifecycle_name(p.lifecycle), ull(t.app_first), ull(t.rebuild_kills), ull(t.mid_rebuild_kills),
                  ull(t.full_disks), ull(t.full_disk_failures), ull(t.full_disk_starts), ull(t.fencings), result.longest_fencing_ms,
                  ull(t.takeovers));
    }
    if (t.active_kills + t.active_stops + t.exclusive_takeovers != 0) {
      std::printf("  exclusive group: active member killed %llu, stopped %llu, takeovers %llu\n", ull(t.active_kills),
                  ull(t.active_stops), ull(t.exclusive_takeovers));
    }
    if (t.names_rounds != 0) {
      std::printf("  names: transient attaches %llu, incarnations in a recycled entry %llu, names back at a fresh "
                  "sequence %llu, TableFull answers %llu\n",
                  ull(t.transient_attaches), ull(t.recycled), ull(t.new_incarnations), ull(t.table_full));
    }
    if (t.policy_rounds != 0) {
      std::printf("  policy: nacks %llu, rejects %llu, late acks/nacks/rejects refused (lease expired) %llu, stalls "
                  "%llu; dead letters %llu (max-deliveries %llu, expired %llu, rejected %llu)\n",
                  ull(t.nacks), ull(t.rejects), ull(t.lease_expired), ull(t.stalls), ull(t.dead_letters),
                  ull(t.dead_max_deliveries), ull(t.dead_expired), ull(t.dead_rejected));
    }
    if (result.passed()) {
      if (!o_.keep_logs) fs::remove_all(p.log_dir);
    } else {
      print_failure(p, result);
    }
    std::fflush(stdout);
  }

  void print_failure(const RoundPlan& p, const RoundResult& result) {
    ++failed_rounds_;
    std::printf("torture: FAIL in round %d of seed %llu: %zu violation(s)\n", p.number, ull(o_.seed),
                result.violations.size());
    for (const auto& v : result.violations) std::printf("  %s\n", v.c_str());
    const std::string lifecycle = o_.lifecycle_fault ? std::string(" --lifecycle-fault ") + lifecycle_name(*o_.lifecycle_fault)
                                  : o_.lifecycle    ? " --lifecycle"
                                                    : "";
    std::printf("  replay: shmq-torture --seed %llu --round %d --messages %llu --producer-ms %d%s%s%s%s%s\n",
                ull(o_.seed), p.number, ull(o_.messages), o_.producer_ms, o_.durable ? " --durable" : "",
                lifecycle.c_str(), o_.names ? " --names" : "", o_.policy ? " --policy" : "",
                o_.minutes > 0 ? " (ran in the soak: no daemon kills, no power losses)" : "");
    std::printf("  logs: %s\n", p.log_dir.c_str());
  }

  void print_summary() const {
    const Tally& t = total_;
    std::printf("torture: rounds=%llu confirmed=%llu delivered=%llu redelivered=%llu duplicates_refused=%llu "
                "producer_kills=%llu consumer_kills=%llu daemon_kills=%llu stops=%llu power_losses=%llu journal_switches=%llu "
                "app_first=%llu rebuild_kills=%llu mid_rebuild_kills=%llu full_disks=%llu full_disk_starts=%llu "
                "full_disk_failures=%llu "
                "fencings=%llu takeovers=%llu skipped_rounds=%llu names_rounds=%llu transient_attaches=%llu "
                "recycled=%llu new_incarnations=%llu table_full=%llu active_kills=%llu active_stops=%llu "
                "exclusive_takeovers=%llu policy_rounds=%llu nacks=%llu rejects=%llu lease_expired=%llu stalls=%llu "
                "dead_letters=%llu lost=%llu "
                "unflagged_duplicates=%llu failed_rounds=%d seed=%llu result=%s\n",
                ull(t.rounds), ull(t.confirmed), ull(t.delivered), ull(t.redelivered), ull(t.duplicates_refused),
                ull(t.producer_kills), ull(t.consumer_kills), ull(t.daemon_kills), ull(t.stops), ull(t.power_losses),
                ull(t.journal_switches), ull(t.app_first), ull(t.rebuild_kills), ull(t.mid_rebuild_kills),
                ull(t.full_disks), ull(t.full_disk_starts), ull(t.full_disk_failures), ull(t.fencings), ull(t.takeovers),
                ull(t.skipped), ull(t.names_rounds), ull(t.transient_attaches), ull(t.recycled),
                ull(t.new_incarnations), ull(t.table_full), ull(t.active_kills), ull(t.active_stops),
                ull(t.exclusive_takeovers), ull(t.policy_rounds), ull(t.nacks), ull(t.rejects), ull(t.lease_expired),
                ull(t.stalls), ull(t.dead_letters), ull(t.lost),
                ull(t.unflagged_duplicates), failed_rounds_, ull(o_.seed), failed_rounds_ == 0 ? "PASS" : "FAIL");
  }

  static unsigned long long ull(std::uint64_t v) { return v; }

  TortureOptions o_;
  fs::path dir_;
  Tally total_;
  int failed_rounds_ = 0;
};

std::uint64_t fresh_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32 | device()) | 1;  // never 0, which means "draw one"
}

void add_options(CLI::App& app, TortureOptions& o) {
  app.add_option("--seed", o.seed, "Seed of the run (default: a fresh one, printed)");
  app.add_option("--rounds", o.rounds, "Rounds to run")->check(CLI::PositiveNumber);
  app.add_option("--round", o.only_round, "Run only round N of --seed (replays a failing round)")
      ->check(CLI::PositiveNumber);
  app.add_option("--minutes", o.minutes, "Soak: run rounds for this long against one shmqd, watching its footprint")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--messages", o.messages, "Messages per producer per round")->check(CLI::PositiveNumber);
  app.add_option("--producer-ms", o.producer_ms, "About how long producers take to send them (ms)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--stall-seconds", o.stall_seconds, "Bound of every wait for progress before a stall is reported")
      ->check(CLI::PositiveNumber);
  app.add_flag("--keep-logs", o.keep_logs, "Keep the logs of passing rounds too");
  app.add_option("--log-dir", o.log_root, "Where the run's log directory goes");
  app.add_flag("--durable", o.durable,
               "Every round durable, with simulated power losses (default: every even-numbered round)");
  app.add_flag("--lifecycle", o.lifecycle,
               "Every round a lifecycle round (durable), the faults app-first, rebuild-kill, full-disk and standby in "
               "turn (default: every fourth round, its fault drawn from the seed)");
  app.add_flag("--names", o.names,
               "Every round that is no lifecycle round a names round: a producer table of 2 to 4 entries and more "
               "names attaching over the round (default: one round in two, drawn from its seed)");
  app.add_flag("--policy", o.policy,
               "Every round that is no lifecycle round a policy round: a delivery policy and a dead-letter queue, "
               "consumers that nack, reject and stall (default: rounds 2 and 3 of every 4)");
  app.add_option_function<std::string>(
         "--lifecycle-fault",
         [&o](const std::string& name) {
           o.lifecycle_fault = lifecycle_from_name(name);
           o.lifecycle = true;
         },
         "Every round a lifecycle round with this fault")
      ->check(CLI::IsMember({"app-first", "rebuild-kill", "full-disk", "standby"}));
}

}  // namespace
}  // namespace shmq::torture

int main(int argc, char** argv) {
  using namespace shmq::torture;
  TortureOptions options;
  CLI::App app{"shmq-torture: randomized crash test of libshmq and shmqd (docs/reliability.md)"};
  add_options(app, options);
  CLI11_PARSE(app, argc, argv);
  if (options.seed == 0) options.seed = fresh_seed();
  std::printf("torture: seed %llu (replay: shmq-torture --seed %llu)\n", static_cast<unsigned long long>(options.seed),
              static_cast<unsigned long long>(options.seed));
  std::fflush(stdout);
  try {
    return Run(options).execute();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmq-torture: %s (seed %llu)\n", e.what(), static_cast<unsigned long long>(options.seed));
    return 1;
  }
}
