// shmqd's event loop: one epoll set over
//   - an inotify watch on shm_dir(): queues created, deleted, and touched by
//     every attach and join (IN_ATTRIB: "a new client, read my tables");
//   - a pidfd per client process of our pid namespace: readable when it
//     dies (clients of other namespaces have their entry locks polled);
//   - a signalfd for the stop signals and SIGHUP;
//   - a timerfd: a full rescan every second (the safety net), quick retries
//     while a repair waits for a live peer or a segment is still being
//     created, the entry locks of clients without a pidfd polled every
//     kPollPeriod, journal set-ups retried every 200 ms, ack deadlines
//     checked every 10 ms while some queue has an ack timeout, and a
//     heartbeat at least every 100 ms (instance_lock.hpp).
// Every repair is the library's recover_dead_clients under the segment lock:
// idempotent, so a daemon killed half-way simply redoes it when it restarts.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <map>
#include <set>
#include <string>

#include "watch/clients.hpp"
#include "journaling/pipeline.hpp"
#include "shmq/queue.hpp"
#include "unique_fd.hpp"

namespace shmq::daemon {

// Where durable queues' journals live, and how they are kept.
struct JournalConfig {
  std::filesystem::path data_dir;
  JournalSettings settings;
};

class Watcher {
 public:
  // `stop_signals`: a signalfd for the signals that end run().
  Watcher(std::string ns, UniqueFd stop_signals, JournalConfig journal);
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  ~Watcher();  // withdraws the daemon's identity from every queue

  // Repairs whatever an earlier daemon left half-done, then watches until a
  // stop signal (SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2).
  void run();
  // What SIGHUP does (reopen the log file); it is logged, and shmqd goes on.
  void on_hangup(std::function<void()> reopen) { on_hangup_ = std::move(reopen); }
  // Called once, when the first rescan has repaired every queue and rebuilt
  // the durable ones that were gone (shmqd serves), with a one-line summary;
  // and at every turn of the event loop, which wakes at least every 100 ms
  // (kDaemonHeartbeat). service_notify.hpp: READY=1 and WATCHDOG=1.
  void on_ready(std::function<void(const std::string&)> ready) { on_ready_ = std::move(ready); }
  void on_turn(std::function<void()> turn) { on_turn_ = std::move(turn); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Watched {
    Queue queue;
    std::set<ClientId> attached;
    bool settled = true;  // its last repair ran (the segment lock was free)
    bool polled = false;  // some attached client has no pidfd here: its entries are polled
  };

  // Why a durable queue is not journaled yet, and when to try again.
  struct JournalRetry {
    Clock::time_point next;
    std::string error;      // last logged: logged again only when it changes
    bool conflict = false;  // the segment does not continue the journal (not ours to set aside)
  };

  const std::string shm_dir_ = shmq::shm_dir().string();  // $SHMQ_SHM_DIR, else /dev/shm

  // The event loop (watcher.cpp).
  void dispatch(int fd);
  void on_inotify();
  void on_client_exit(int pidfd);
  void on_timer();
  void arm_timer();

  // The queues watched and their repair (watcher_queues.cpp).
  void rescan_directory();
  void refresh(const std::string& name);
  void forget(const std::string& name);
  [[nodiscard]] std::string path_of(const std::string& name) const;  // <shm_dir>/shmq.<ns>.<name>
  void service(Watched& queue);
  void service_all();
  void poll_entries();
  void remove_abandoned_creations();

  // Ack deadlines: leases past their queue's ack timeout (watcher_leases.cpp).
  [[nodiscard]] bool any_ack_timeout() const;
  void expire_leases();

  // Durable queues' journals: rebuild, set-up, retries (watcher_journals.cpp).
  void rebuild_missing_queues();
  void not_rebuilt(const std::string& name, const std::filesystem::path& dir, const std::exception& e);
  void start_next_journal();
  void start_journal(const std::string& name, const Queue& queue);
  void journal_not_started(const std::string& name, const Queue& queue, const std::string& why, bool conflict,
                           int error);
  void retry_journals();
  void set_journal_aside(const std::string& name);

  std::string ns_;
  std::string prefix_;  // "shmq.<ns>."
  JournalConfig journal_;
  UniqueFd epoll_, inotify_, signals_, timer_;
  ClientSet clients_;
  std::map<std::string, Watched> queues_;
  std::map<std::string, Clock::time_point> pending_;  // seen, not yet initialised: since when
  std::map<std::string, std::string> unusable_;        // cannot be opened: the error last logged
  std::map<std::string, std::unique_ptr<JournalPipeline>> journals_;  // durable queues
  // Durable queues watched (repaired) whose journal is not set up yet: set up
  // after every repair waiting, so a takeover repairs every queue first.
  std::set<std::string> journals_to_start_;
  std::map<std::string, JournalRetry> journal_retry_;  // set-up failed: retried
  struct Unrebuildable {
    std::string error;  // logged
    Clock::time_point next;
  };
  std::map<std::string, Unrebuildable> unrebuildable_;  // journals the rebuild refused
  Clock::time_point next_rescan_{};
  Clock::time_point next_poll_{};
  Clock::time_point next_lease_check_{};
  bool stop_ = false;
  std::function<void()> on_hangup_;
  std::function<void(const std::string&)> on_ready_;
  std::function<void()> on_turn_;
};

}  // namespace shmq::daemon
