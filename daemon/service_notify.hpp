// systemd's service notification protocol (sd_notify(3)), spoken by hand: one
// datagram per state change, sent to the AF_UNIX socket that $NOTIFY_SOCKET
// names (a path, or an abstract name written with a leading '@'). shmqd needs
// no libsystemd for it; without $NOTIFY_SOCKET every call does nothing, so
// the same binary runs under systemd, a supervisor or a shell.
//
// shmqd sends READY=1 (with a STATUS=) once its first rescan has repaired
// every queue and rebuilt the durable ones whose segments were gone,
// STOPPING=1 when a stop signal arrives, and WATCHDOG=1 from its event loop
// every half of $WATCHDOG_USEC (systemd's WatchdogSec=) when that is set.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace shmq::daemon {

class ServiceNotifier {
 public:
  using Clock = std::chrono::steady_clock;

  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (the watchdog is
  // ours only when WATCHDOG_PID is unset or names this process).
  ServiceNotifier();

  [[nodiscard]] bool enabled() const noexcept { return !socket_path_.empty(); }
  // Zero when systemd expects no watchdog pings.
  [[nodiscard]] std::chrono::microseconds watchdog_interval() const noexcept { return watchdog_; }

  void ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }
  void stopping() { send("STOPPING=1\nSTATUS=stopping"); }
  // WATCHDOG=1 when half the watchdog interval passed since the last one.
  // Called at every turn of the event loop, which wakes at least every 100 ms.
  void watchdog_tick(Clock::time_point now = Clock::now());

  // One datagram; best effort (a lost notification is systemd's timeout to
  // report, never a reason to stop serving). Returns false when not sent.
  bool send(const std::string& state) const;

 private:
  std::string socket_path_;  // as in $NOTIFY_SOCKET ('@': abstract)
  std::chrono::microseconds watchdog_{0};
  Clock::time_point last_ping_{};
};

}  // namespace shmq::daemon
