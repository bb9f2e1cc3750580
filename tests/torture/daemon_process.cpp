#include "daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <utility>

namespace shmq::torture {

DaemonProcess::DaemonProcess(std::string ns, std::string data_dir, std::string log,
                             std::vector<std::string> extra_args)
    : ns_(std::move(ns)), data_dir_(std::move(data_dir)), log_(std::move(log)), extra_args_(std::move(extra_args)) {}

DaemonProcess::~DaemonProcess() {
  if (running()) kill9();
}

void DaemonProcess::start() {
  std::vector<std::string> argv{SHMQD_PATH, "--namespace", ns_, "--data-dir", data_dir_, "--foreground"};
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  pid_ = spawn_program(argv, log_);
}

// Never kill(0, ...) nor waitpid(0, ...): those mean the driver's whole process group.
Exit DaemonProcess::kill9() {
  if (!running()) return Exit{true, SIGKILL};
  return kill_and_reap(std::exchange(pid_, 0));
}

std::optional<Exit> DaemonProcess::terminate(Millis timeout) {
  if (!running()) return Exit{};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!catches(pid_, SIGTERM) && std::chrono::steady_clock::now() < deadline) sleep_for(Millis(1));
  ::kill(pid_, SIGTERM);
  if (auto e = reap_within(pid_, timeout)) {
    pid_ = 0;
    return e;
  }
  kill9();
  return std::nullopt;
}

std::optional<Exit> DaemonProcess::ended() {
  if (!running()) return std::nullopt;
  auto e = try_reap(pid_);
  if (e) pid_ = 0;
  return e;
}

bool DaemonProcess::serves(const Queue& queue, Millis timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (queue.info().daemon_pid != pid_ || pid_ <= 0) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    sleep_for(Millis(5));
  }
  return true;
}

void DaemonProcess::exchange_with(DaemonProcess& other) noexcept {
  std::swap(pid_, other.pid_);
  std::swap(log_, other.log_);
  std::swap(extra_args_, other.extra_args_);
}

void DaemonProcess::note(const std::string& line) const {
  const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const std::string text = "--- shmq-torture: " + line + "\n";
  [[maybe_unused]] const auto n = ::write(fd, text.data(), text.size());
  ::close(fd);
}

}  // namespace shmq::torture
