// shmqd: one per namespace. Watches every process attached to the
// namespace's queues and repairs after the ones that die (docs/recovery.md).
//
//   shmqd [--config FILE] [--namespace NS] [--data-dir DIR] [--standby] [--foreground]
//         [--standby-deadline MS] [--log-level debug|info|warn|error] [--log-file FILE] [--metrics HOST:PORT]
//         [--journal-segment-mib N] [--retention-mib N] [--retention-seconds N] [--salvage]
//
// Durable queues are journaled under DIR/journal/<queue>/ and rebuilt from
// there at start when their shared memory is gone (docs/journal.md).
//
// It never forks itself (--foreground is accepted for init scripts that pass
// it): run it under systemd, a supervisor, or `&`. Exit codes: 0 after
// SIGTERM/SIGINT, 1 on failure (another instance included), 2 on a usage error.
#include <signal.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <fmt/format.h>

#include "error_log_sink.hpp"
#include "health.hpp"
#include "instance_lock.hpp"
#include "logging.hpp"
#include "metrics_server.hpp"
#include "options.hpp"
#include "service_notify.hpp"
#include "shmq/stats/metrics.hpp"
#include "shmq/queue.hpp"
#include "shmq/version.hpp"
#include "shmq/sigbus.hpp"
#include "watch/watcher.hpp"

namespace {

using namespace shmq::daemon;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

volatile std::sig_atomic_t g_stop_requested = 0;

extern "C" void request_stop(int) { g_stop_requested = 1; }

// Signals that end shmqd cleanly (logged, its pid withdrawn from every
// queue), and SIGHUP, which reopens the log file: a terminal that goes away
// (`shmqd &`) or logrotate never kills it.
constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2};

extern "C" void ignore_signal(int) {}

// Until the event loop's signalfd exists, the stop signals just set a flag
// and interrupt a standby's wait for the lock (no SA_RESTART); SIGHUP does
// nothing.
void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = request_stop;
  sigemptyset(&sa.sa_mask);
  for (const int sig : kStopSignals) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = ignore_signal;
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a metrics scraper that hangs up: write() says EPIPE
}

// A crash is said on stderr before the default action (a core dump) runs.
extern "C" void log_crash(int sig) {
  char line[64] = "shmqd: fatal signal ";
  std::size_t n = std::strlen(line);
  for (const char* name = sigabbrev_np(sig); name != nullptr && *name != '\0' && n < sizeof line - 2;) {
    line[n++] = *name++;
  }
  line[n++] = '\n';
  (void)!::write(STDERR_FILENO, line, n);
  ::raise(sig);  // SA_RESETHAND: the default action now
}

void log_crashes() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return;  // the sanitizer's own handler reports a crash, with its stack
#endif
  struct sigaction sa {};
  sa.sa_handler = log_crash;
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  // Not SIGBUS: the bus guard handles it, and passes on what is not ours.
  for (const int sig : {SIGSEGV, SIGABRT, SIGFPE, SIGILL}) ::sigaction(sig, &sa, nullptr);
}

// From here on the signals queue up for the signalfd: none is lost.
UniqueFd block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (const int sig : kStopSignals) sigaddset(&set, sig);
  sigaddset(&set, SIGHUP);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) throw std::runtime_error("sigprocmask failed");
  UniqueFd fd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!fd) throw std::runtime_error("signalfd failed");
  return fd;
}

// Takes the namespace's lock, or waits for it as a standby. nullopt: exit.
std::optional<InstanceLock> take_lock(const Options& o) {
  if (auto lock = InstanceLock::try_acquire(o.ns, o.data_dir)) return lock;
  const auto holder = InstanceLock::holder(o.ns);
  const std::string who = holder ? fmt::format("pid {}, data directory {}", holder->pid, holder->data_dir.string())
                                 : std::string("its record is unreadable");
  if (!o.standby) {
    spdlog::error("another shmqd already runs for namespace '{}' ({}; lock {}); start this one with --standby to "
                  "wait as its hot standby",
                  o.ns, who, shmq::detail::daemon_record_path(o.ns));
    return std::nullopt;
  }
  spdlog::info("standby: waiting for the shmqd serving namespace '{}' ({}); fencing it if it beats no heartbeat "
               "for {} ms",
               o.ns, who, o.standby_deadline_ms);
  auto lock = InstanceLock::wait(o.ns, o.data_dir, std::chrono::milliseconds(o.standby_deadline_ms), g_stop_requested);
  if (lock) spdlog::info("standby: the lock is ours; taking over namespace '{}'", o.ns);
  return lock;
}

int serve(Options& o) {
  // Journals, queue.json and the lock file are this user's alone, or with
  // --group readable by its members (a rebuilt segment gets its recorded mode
  // explicitly).
  ::umask(data_umask(o.group));
  // A peer's truncated segment abandons its queue, not shmqd (docs/security.md).
  shmq::install_sigbus_guard();
  o.ns = o.ns.empty() ? shmq::current_namespace() : o.ns;
  shmq::validate_namespace(o.ns);
  if (o.data_dir.empty()) o.data_dir = shmq::default_data_dir(o.ns);
  prepare_data_dir(o.data_dir, o.group);
  // Where the segments (and our lock) live: a bad SHMQ_SHM_DIR stops us here.
  const std::string shm_dir = shmq::shm_dir().string();
  const auto lock = take_lock(o);
  if (!lock) return g_stop_requested != 0 ? 0 : kExitFailure;
  // The warnings and errors from here on are kept in errors.log too
  // (shmq-stat --errors), by the shmqd holding the lock only: a standby's,
  // which shares the data directory, would overwrite the serving one's.
  const auto errors = std::make_shared<ErrorLogSink>(shmq::stats::error_log_path(o.data_dir));
  set_up_logging(o, errors);
  UniqueFd signals = block_stop_signals();
  if (g_stop_requested != 0) return 0;  // arrived before the block
  spdlog::info("shmqd up: namespace '{}', data directory {}, segments in {}", o.ns, o.data_dir.string(),
               shm_dir);
  {
    // After the signals are blocked: its thread inherits the mask.
    std::optional<MetricsServer> metrics;
    if (!o.metrics.empty()) {
      metrics.emplace(o.metrics, [ns = o.ns] {
        return shmq::stats::render_prometheus(shmq::stats::snapshot_namespace(ns), ns) + render_health(ns);
      });
    }
    JournalConfig journal{o.data_dir, {}};
    journal.settings.salvage = o.salvage;
    journal.settings.segment_bytes = o.journal_segment_mib << 20;
    journal.settings.retention_bytes = o.retention_mib << 20;
    journal.settings.retention_age_ns = o.retention_seconds * 1'000'000'000;
    Watcher watcher(o.ns, std::move(signals), std::move(journal));
    watcher.on_hangup([&o, errors] { set_up_logging(o, errors); });  // the file anew, after logrotate moved it
    // systemd's Type=notify and WatchdogSec= (nothing without $NOTIFY_SOCKET).
    ServiceNotifier notifier;
    watcher.on_ready([&notifier](const std::string& summary) { notifier.ready(summary); });
    watcher.on_turn([&notifier, &errors] {
      notifier.watchdog_tick();
      errors->write_pending();  // a repeat's count, a second late at most
    });
    watcher.run();
    notifier.stopping();  // run() returns on a stop signal only
  }
  spdlog::info("shmqd stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  catch_stop_signals();  // first: a script's early `kill -TERM` still stops it cleanly
  log_crashes();
  Options o;
  CLI::App app{"shmqd: watches the processes attached to a namespace's queues and repairs after the ones "
               "that die"};
  app.set_version_flag("--version", std::string("shmqd ") + SHMQ_VERSION_STRING, "print the version and exit");
  app.add_option("-n,--namespace", o.ns, "namespace to serve (default: $SHMQ_NAMESPACE, else 'default')");
  app.add_option("--data-dir", o.data_dir,
                 "data directory (default: $SHMQ_DATA_DIR, else /var/lib/shmq/<ns> for root, "
                 "else $XDG_STATE_HOME/shmq/<ns>)");
  app.add_flag("--foreground", o.foreground, "run in the foreground (the default: shmqd never forks)");
  app.add_flag("--standby", o.standby,
               "if another shmqd serves the namespace, wait and take over when it dies or hangs");
  app.add_option("--standby-deadline", o.standby_deadline_ms,
                 "with --standby: fence (SIGKILL) a serving shmqd whose heartbeat stopped this long, in ms")
      ->check(CLI::Range(300, 600000))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.add_option("--log-file", o.log_file, "also append the log to this file");
  app.add_option("--metrics", o.metrics,
                 "serve Prometheus metrics on http://HOST:PORT/metrics (:PORT: every interface; [::1]:PORT: IPv6)")
      ->type_name("HOST:PORT")
      ->check(CLI::Validator(check_metrics_address, "", "HOST:PORT"));
  app.add_option("--journal-segment-mib", o.journal_segment_mib, "durable queues: roll journal segment files at this size")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--retention-mib", o.retention_mib,
                 "durable queues: delete the oldest journal segments beyond this total size per queue, never one "
                 "a group has not acked (0: keep all)")
      ->check(CLI::Validator([](std::string& text) { return check_whole_number(text, (1ull << 44) - 1); }, "", "MiB"));
  app.add_option("--retention-seconds", o.retention_seconds,
                 "durable queues: delete journal segments closed longer ago than this, never one a group has not "
                 "acked (0: keep all)")
      ->check(CLI::Validator([](std::string& text) { return check_whole_number(text, 10'000'000'000); }, "", "s"));
  std::string group;
  app.add_option("--group", group,
                 "let this group's members (the queues' users: shmq create --group) read the data directory "
                 "and the journals, which consumers of durable queues read themselves; only shmqd writes them. "
                 "A name or a gid; shmqd must be root or a member")
      ->type_name("GROUP");
  app.add_flag("--salvage", o.salvage,
               "rebuild a durable queue past damage in the middle of its journal, reporting what is lost (without "
               "it, such a queue is not rebuilt)");
  // Every option above is also a key of the config file; the command line wins.
  app.set_config("--config", "",
                 "read options from this file (TOML or INI: `data-dir = \"/srv/shmq\"`, `salvage = true`, one "
                 "long option a line); the command line overrides it")
      ->type_name("FILE");
  app.allow_config_extras(CLI::config_extras_mode::error);  // a misspelt key stops shmqd
  app.footer("Environment: SHMQ_NAMESPACE and SHMQ_DATA_DIR (see the options), SHMQ_SHM_DIR: the directory of the "
             "segments it watches and of its lock (default /dev/shm; the same as its clients')");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (!group.empty()) {
    try {
      o.group = resolve_group(group);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "shmqd: --group: %s\n", e.what());
      return kExitFailure;
    }
  }
  try {
    set_up_logging(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shmqd: cannot log to %s: %s\n", o.log_file.c_str(), e.what());
    return kExitFailure;
  }
  try {
    return serve(o);
  } catch (const shmq::Error& e) {
    spdlog::error("{}", e.what());
    return e.code() == shmq::Errc::InvalidName ? kExitUsage : kExitFailure;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return kExitFailure;
  }
}
