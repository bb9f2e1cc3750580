#include "child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

namespace shmq::torture {

std::string Exit::describe() const {
  return signaled ? "killed by signal " + std::to_string(code) : "exit status " + std::to_string(code);
}

pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);  // else the child would flush the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphans if the driver itself is killed
    int rc = 99;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "torture child %d: %s\n", ::getpid(), e.what());
    }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  return pid;
}

pid_t spawn_program(const std::vector<std::string>& argv, const std::string& log) {
  return fork_child([&] {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    return 127;
  });
}

namespace {

Exit exit_of(int status) {
  if (WIFSIGNALED(status)) return {true, WTERMSIG(status)};
  return {false, WEXITSTATUS(status)};
}

}  // namespace

std::optional<Exit> try_reap(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) != pid) return std::nullopt;
  return exit_of(status);
}

std::optional<Exit> reap_within(pid_t pid, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto e = try_reap(pid)) return e;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    sleep_for(Millis(2));
  }
}

std::optional<Exit> stop_and_wait(pid_t pid) {
  ::kill(pid, SIGSTOP);
  int status = 0;
  while (::waitpid(pid, &status, WUNTRACED) < 0 && errno == EINTR) {
  }
  if (WIFSTOPPED(status)) return std::nullopt;
  return exit_of(status);
}

Exit kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return exit_of(status);
}

bool catches(pid_t pid, int sig) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigCgt:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1) & 1) != 0;
  }
  return false;
}

std::optional<Footprint> footprint_of(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream status(proc + "/status");
  if (!status) return std::nullopt;
  Footprint f;
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmRSS:")) f.rss_kib = std::stoull(line.substr(6));
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(proc + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++f.fds;
  }
  if (ec) return std::nullopt;
  return f;
}

void sleep_for(Millis duration) { std::this_thread::sleep_for(duration); }

}  // namespace shmq::torture
