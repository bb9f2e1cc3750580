// shmq recv --exec CMD: a shell command as a queue's worker. Each message
// goes to `sh -c CMD` on its standard input, with what the message is in its
// environment; the command's exit status settles it: 0 acks, 99 rejects
// (to the dead-letter queue), anything else, or a signal, nacks (it comes
// again). docs/cli.md, "How a shell script becomes a worker".
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "shmq/consumer.hpp"

namespace shmq::tools {

// The exit status by which a command rejects its message.
inline constexpr int kRejectExitStatus = 99;

struct ExecContext {
  std::string command;  // empty: no --exec
  std::string queue;
  std::string group;
  std::string ns;           // the effective namespace, passed on as SHMQ_NAMESPACE
  std::string dead_letter;  // the queue's dead-letter queue (empty: none), for what a reject says
};

// What a consumer of the message should read: a dead letter's original
// payload (without the origin the move appended), else the payload. A view
// into the message: valid while it is held.
[[nodiscard]] std::span<const std::byte> payload_of(const Message& message);

// Runs the command for `message` (held by `consumer`), waits for it, and
// acks, rejects or nacks the message by its exit status, saying on stderr
// what became of a message it did not ack. Throws Failure when the command
// cannot be started or the message cannot be settled (it stays held, and
// goes back to the group when the consumer leaves).
void run_and_settle(Consumer& consumer, const Message& message, const ExecContext& exec);

}  // namespace shmq::tools
