#include "sides.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cpu.hpp"

namespace bench {
namespace {

int cpu_for(std::span<const int> cpus, std::size_t i) { return cpus.empty() ? -1 : cpus[i % cpus.size()]; }

// Pins, runs the side, and says whether it succeeded.
bool run_one(const Side& side, int cpu) noexcept {
  try {
    pin_to(cpu);
    side();
    return true;
  } catch (const std::exception& e) {
    std::cerr << "shmq-bench: " << e.what() << std::endl;
  }
  return false;
}

bool run_threads(std::span<const Side> sides, std::span<const int> cpus) {
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < sides.size(); ++i) {
    threads.emplace_back([&, i] {
      if (!run_one(sides[i], cpu_for(cpus, i))) std::_Exit(1);  // the others may wait forever
    });
  }
  return true;
}

// The children of the run in progress, for the timeout handler.
constexpr std::size_t kMaxChildren = 256;
pid_t g_children[kMaxChildren];
volatile sig_atomic_t g_child_count = 0;
volatile sig_atomic_t g_timed_out = 0;

void kill_children() {
  for (sig_atomic_t i = 0; i < g_child_count; ++i)
    if (g_children[i] > 0) kill(g_children[i], SIGKILL);
}

void on_alarm(int /*signal*/) {
  g_timed_out = 1;
  kill_children();
}

// Ctrl-C or a kill ends the children; the run then fails and the parent
// removes its channels on the way out.
void on_stop(int /*signal*/) { kill_children(); }

void forget_child(pid_t pid) {
  for (sig_atomic_t i = 0; i < g_child_count; ++i)
    if (g_children[i] == pid) g_children[i] = 0;
}

bool run_processes(std::span<const Side> sides, std::span<const int> cpus, std::chrono::seconds timeout) {
  if (sides.size() > kMaxChildren) throw std::invalid_argument("too many sides");
  std::fflush(nullptr);
  std::cout.flush();
  g_child_count = 0;
  g_timed_out = 0;
  for (std::size_t i = 0; i < sides.size(); ++i) {
    const pid_t pid = fork();
    // exit(), not _exit(): libraries that registered the process (iceoryx's
    // runtime) deregister in their static destructors.
    if (pid == 0) std::exit(run_one(sides[i], cpu_for(cpus, i)) ? 0 : 1);
    if (pid < 0) {
      kill_children();
      break;
    }
    g_children[g_child_count] = pid;
    g_child_count = g_child_count + 1;
  }
  bool ok = g_child_count == static_cast<sig_atomic_t>(sides.size());
  std::signal(SIGALRM, on_alarm);
  const auto old_int = std::signal(SIGINT, on_stop);
  const auto old_term = std::signal(SIGTERM, on_stop);
  alarm(static_cast<unsigned>(timeout.count()));
  for (sig_atomic_t left = g_child_count; left > 0;) {
    int status = 0;
    const pid_t pid = wait(&status);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
    --left;
    forget_child(pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ok = false;
      kill_children();
    }
  }
  alarm(0);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (g_timed_out != 0) std::cerr << "shmq-bench: timed out after " << timeout.count() << " s\n";
  g_child_count = 0;
  return ok && g_timed_out == 0;
}

}  // namespace

bool run_sides(std::span<const Side> sides, std::span<const int> cpus, bool threads,
               std::chrono::seconds timeout) {
  return threads ? run_threads(sides, cpus) : run_processes(sides, cpus, timeout);
}

}  // namespace bench
