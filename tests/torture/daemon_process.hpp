// The real shmqd, run as a child of the driver, in one namespace with one
// data directory; its stderr is appended to a log in the round's log dir.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "child.hpp"
#include "shmq/queue.hpp"

namespace shmq::torture {

class DaemonProcess {
 public:
  // extra_args: appended to every start (a standby round: --standby --standby-deadline MS).
  DaemonProcess(std::string ns, std::string data_dir, std::string log, std::vector<std::string> extra_args = {});
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;
  ~DaemonProcess();  // kills a daemon still running

  void start();
  Exit kill9();
  // SIGTERM; its exit, or nullopt if it did not end within `timeout` (then killed).
  std::optional<Exit> terminate(Millis timeout);
  // Its exit if it ended by itself (it never should); nullopt while it runs or when none runs.
  std::optional<Exit> ended();
  // Waits until `queue`'s header names this daemon: it has repaired and watches it.
  [[nodiscard]] bool serves(const Queue& queue, Millis timeout) const;
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running() const { return pid_ > 0; }
  // A standby round's takeover: the standby becomes the daemon and the other
  // way round (both run with the same namespace, data directory and options).
  void exchange_with(DaemonProcess& other) noexcept;
  // Appends a line to the daemon's log, so that the driver's faults show
  // between shmqd's own lines (one write(2) on an O_APPEND file).
  void note(const std::string& line) const;

 private:
  std::string ns_, data_dir_, log_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = 0;
};

}  // namespace shmq::torture
