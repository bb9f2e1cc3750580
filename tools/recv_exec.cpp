// shmq recv --exec: a command per message, the message settled by its exit status.
#include "recv_exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cli.hpp"

extern char** environ;  // NOLINT: POSIX names it so

namespace shmq::tools {

std::span<const std::byte> payload_of(const Message& message) {
  const std::optional<DeadLetter> origin = message.dead_letter();
  return origin ? origin->payload : message.payload;
}

namespace {

// The variables a command gets from us; the same names in our own
// environment are not passed on, so that a message that is no dead letter
// never shows an inherited origin.
constexpr std::string_view kOurVariables[] = {
    "SHMQ_NAMESPACE",     "SHMQ_QUEUE",         "SHMQ_GROUP",          "SHMQ_PRODUCER",
    "SHMQ_PRODUCER_ID",   "SHMQ_SEQ",           "SHMQ_POSITION",       "SHMQ_TIMESTAMP_NS",
    "SHMQ_DELIVERIES",    "SHMQ_REDELIVERED",   "SHMQ_REASON",         "SHMQ_ORIGIN_QUEUE",
    "SHMQ_ORIGIN_GROUP",  "SHMQ_ORIGIN_PRODUCER", "SHMQ_ORIGIN_SEQ",   "SHMQ_ORIGIN_POSITION",
    "SHMQ_ORIGIN_DELIVERIES"};

bool is_ours(std::string_view name) {
  return std::find(std::begin(kOurVariables), std::end(kOurVariables), name) != std::end(kOurVariables);
}

// Our environment, less kOurVariables, plus what the command should know
// of the message. Made while the message is held (its producer's name).
std::vector<std::string> worker_environment(const Message& m, const ExecContext& exec) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (!is_ours(text.substr(0, text.find('=')))) env.emplace_back(text);
  }
  const auto set = [&env](std::string_view name, const auto& value) { env.push_back(fmt::format("{}={}", name, value)); };
  set("SHMQ_NAMESPACE", exec.ns);
  set("SHMQ_QUEUE", exec.queue);
  set("SHMQ_GROUP", exec.group);
  set("SHMQ_PRODUCER", m.producer());
  set("SHMQ_PRODUCER_ID", m.producer_id);
  set("SHMQ_SEQ", m.sequence);
  set("SHMQ_POSITION", m.position);
  set("SHMQ_TIMESTAMP_NS", m.timestamp_ns);
  set("SHMQ_DELIVERIES", m.deliveries);
  set("SHMQ_REDELIVERED", m.redelivered ? 1 : 0);
  if (const std::optional<DeadLetter> origin = m.dead_letter()) {
    set("SHMQ_REASON", to_string(origin->reason));
    set("SHMQ_ORIGIN_QUEUE", origin->origin_queue);
    set("SHMQ_ORIGIN_GROUP", origin->origin_group);
    set("SHMQ_ORIGIN_PRODUCER", origin->origin_producer);
    set("SHMQ_ORIGIN_SEQ", origin->origin_sequence);
    set("SHMQ_ORIGIN_POSITION", origin->origin_position);
    set("SHMQ_ORIGIN_DELIVERIES", origin->deliveries);
  }
  return env;
}

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  [[nodiscard]] int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// Starts `sh -c command` with `stdin_fd` as its standard input. The child
// gets SIGPIPE's default action back (we ignore it) and an empty signal
// mask; our other descriptors are all close-on-exec (libshmq's too), so it
// holds none of our entry locks: if we die, our messages come back even
// while it runs on.
pid_t spawn_shell(const std::string& command, int stdin_fd, std::vector<std::string>& env) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attributes);
  ::posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  ::posix_spawnattr_setsigdefault(&attributes, &defaults);
  sigset_t none;
  sigemptyset(&none);
  ::posix_spawnattr_setsigmask(&attributes, &none);
  ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string sh = "sh", dash_c = "-c", script = command;
  char* argv[] = {sh.data(), dash_c.data(), script.data(), nullptr};
  pid_t child = -1;
  const int error = ::posix_spawn(&child, "/bin/sh", &actions, &attributes, argv, envp.data());
  ::posix_spawnattr_destroy(&attributes);
  ::posix_spawn_file_actions_destroy(&actions);
  if (error != 0) throw Failure(fmt::format("cannot run /bin/sh for --exec: {}", std::strerror(error)));
  return child;
}

// Whether `child` has ended, without reaping it (wait_for does that).
bool has_ended(pid_t child) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == child;
}

// Writes the payload into the command's standard input, never waiting on a
// command that does not read it: the pipe does not block, and we stop when
// the command closed its end (EPIPE; SIGPIPE is ignored) or ended. What it
// did not read is its own affair: its exit status settles the message.
void feed(int fd, std::span<const std::byte> payload, pid_t child) {
  constexpr int kPollMs = 50;  // how soon a command that ended without reading is noticed
  while (!payload.empty()) {
    const ssize_t written = ::write(fd, payload.data(), payload.size());
    if (written > 0) {
      payload = payload.subspan(static_cast<std::size_t>(written));
      continue;
    }
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && errno != EAGAIN) return;  // EPIPE: it closed its standard input
    if (has_ended(child)) return;
    pollfd room{fd, POLLOUT, 0};
    (void)::poll(&room, 1, kPollMs);
  }
}

// Waits for the command to end, also through a stop signal (SIGINT or
// SIGTERM, which StopSignals turns into EINTR here): its message is settled
// by how it ends, and then recv stops.
int wait_for(pid_t child) {
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) throw Failure(fmt::format("waiting for the --exec command failed: {}", std::strerror(errno)));
  }
  return status;
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) {
    const char* name = ::sigabbrev_np(WTERMSIG(status));
    return fmt::format("was killed by signal {} (SIG{})", WTERMSIG(status), name != nullptr ? name : "?");
  }
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

std::string describe(const Message& m) {
  return fmt::format("message at position {} (seq {}, delivery {})", m.position, m.sequence, m.deliveries);
}

void refuse_unexpected(const Message& m, std::string_view what, Status status) {
  throw Failure(fmt::format("{} of position {} failed: {}", what, m.position, to_string(status)));
}

// An ack, reject or nack refused because the message was held past the
// queue's ack timeout: it went back to the group (another member may be
// running it already), so there is nothing left to settle here.
void warn_lease_expired(const Message& m, std::string_view what) {
  warn(fmt::format("{}: held past the queue's ack timeout, it went back to its group; the {} was refused and it "
                   "will be delivered again",
                   describe(m), what));
}

void settle(Consumer& consumer, const Message& m, int status, const ExecContext& exec) {
  const bool exited = WIFEXITED(status);
  if (exited && WEXITSTATUS(status) == 0) {
    const Status acked = consumer.ack(m);
    if (acked == Status::LeaseExpired) return warn_lease_expired(m, "ack");
    if (acked != Status::Ok) refuse_unexpected(m, "ack", acked);
    return;
  }
  if (exited && WEXITSTATUS(status) == kRejectExitStatus) {
    const Status rejected = consumer.reject(m);
    if (rejected == Status::Ok) {
      note(fmt::format("{}: the command exited with status {}: rejected, {}", describe(m), kRejectExitStatus,
                       exec.dead_letter.empty() ? "dropped (the queue has no dead-letter queue)"
                                                : "moved to dead-letter queue '" + exec.dead_letter + "'"));
      return;
    }
    if (rejected == Status::LeaseExpired) return warn_lease_expired(m, "reject");
    if (rejected != Status::Full && rejected != Status::Timeout) refuse_unexpected(m, "reject", rejected);
    warn(fmt::format("{}: the command rejected it but dead-letter queue '{}' has no room: giving it back (nack)",
                     describe(m), exec.dead_letter));
  }
  const Status nacked = consumer.nack(m);
  if (nacked == Status::LeaseExpired) return warn_lease_expired(m, "nack");
  if (nacked == Status::NotInFlight) {
    // A message a group a ring behind read from a durable queue's journal
    // cannot be given back alone (docs/design.md, "Delivery policy").
    throw Failure(fmt::format("{}: the command {}, but it cannot be nacked (read from the journal?); leaving: it "
                              "comes back to the group, redelivered",
                              describe(m), how_it_ended(status)));
  }
  if (nacked != Status::Ok) refuse_unexpected(m, "nack", nacked);
  note(fmt::format("{}: the command {}: nacked, it will be delivered again", describe(m), how_it_ended(status)));
}

}  // namespace

void run_and_settle(Consumer& consumer, const Message& message, const ExecContext& exec) {
  // A command that closes its standard input early must not kill us (feed
  // sees EPIPE instead); the command itself gets the default back.
  static const bool sigpipe_ignored = std::signal(SIGPIPE, SIG_IGN) != SIG_ERR;
  (void)sigpipe_ignored;
  int ends[2] = {-1, -1};
  if (::pipe2(ends, O_CLOEXEC) != 0) throw Failure(fmt::format("cannot make a pipe: {}", std::strerror(errno)));
  Fd read_end(ends[0]);
  Fd write_end(ends[1]);
  if (::fcntl(write_end.get(), F_SETFL, O_NONBLOCK) != 0) {
    throw Failure(fmt::format("cannot make a pipe non-blocking: {}", std::strerror(errno)));
  }
  std::vector<std::string> env = worker_environment(message, exec);
  const pid_t child = spawn_shell(exec.command, read_end.get(), env);
  read_end.reset();
  feed(write_end.get(), payload_of(message), child);
  write_end.reset();  // end of input: the command sees EOF
  settle(consumer, message, wait_for(child), exec);
}

}  // namespace shmq::tools
