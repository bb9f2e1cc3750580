// Child processes of the torture driver: fork, signal, reap, and what /proc
// says about them. The driver is single-threaded, so a plain fork is safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace shmq::torture {

using Millis = std::chrono::milliseconds;

// How a child ended: exited(code) or killed by a signal.
struct Exit {
  bool signaled = false;
  int code = 0;  // exit status, or the signal number
  [[nodiscard]] bool clean() const { return !signaled && code == 0; }
  [[nodiscard]] std::string describe() const;
};

// Runs `body` in a forked child, which exits with its return value (99 on an
// exception, printed to stderr). Leaves through _exit: no atexit handlers.
pid_t fork_child(const std::function<int()>& body);

// Runs `argv` (argv[0] a path) in a child with stderr appended to `log`.
pid_t spawn_program(const std::vector<std::string>& argv, const std::string& log);

// Reaps `pid` if it has ended; nullopt while it runs.
std::optional<Exit> try_reap(pid_t pid);
// Waits for `pid` at most `timeout`; nullopt when it still runs.
std::optional<Exit> reap_within(pid_t pid, Millis timeout);
// SIGSTOP, then waits until it is stopped; its exit if it ended instead.
std::optional<Exit> stop_and_wait(pid_t pid);
// SIGKILL, then waits: the kernel has torn the process down on return.
Exit kill_and_reap(pid_t pid);
// Whether `pid` has a handler for `sig` (its SigCgt mask): a process that
// has not installed its own yet would die of the signal instead.
bool catches(pid_t pid, int sig);

// shmqd's footprint, for the soak: VmRSS and the number of open fds.
struct Footprint {
  std::uint64_t rss_kib = 0;
  std::uint64_t fds = 0;
};
std::optional<Footprint> footprint_of(pid_t pid);

void sleep_for(Millis duration);

}  // namespace shmq::torture
