#include "daemon_process.hpp"

#include <signal.h>

#include <utility>

namespace shmq::torture {

DaemonProcess::DaemonProcess(std::string ns, std::string data_dir, std::string log)
    : ns_(std::move(ns)), data_dir_(std::move(data_dir)), log_(std::move(log)) {}

DaemonProcess::~DaemonProcess() {
  if (running()) kill9();
}

void DaemonProcess::start() {
  pid_ = spawn_program({SHMQD_PATH, "--namespace", ns_, "--data-dir", data_dir_, "--foreground"}, log_);
}

Exit DaemonProcess::kill9() { return kill_and_reap(std::exchange(pid_, 0)); }

std::optional<Exit> DaemonProcess::terminate(Millis timeout) {
  ::kill(pid_, SIGTERM);
  if (auto e = reap_within(pid_, timeout)) {
    pid_ = 0;
    return e;
  }
  kill9();
  return std::nullopt;
}

std::optional<Exit> DaemonProcess::ended() {
  auto e = try_reap(pid_);
  if (e) pid_ = 0;
  return e;
}

bool DaemonProcess::serves(const Queue& queue, Millis timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (queue.info().daemon_pid != pid_) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleep_for(Millis(5));
  }
  return true;
}

}  // namespace shmq::torture
