// The delivery policy's set-up: what a segment records of it, and the checks
// of a dead-letter queue at creation. (What the policy does: ring/dead_letter.cpp.)
#include <cstring>
#include <set>

#include "ring/dead_letter_trailer.hpp"
#include "shm/segment.hpp"

namespace shmq::detail {

using namespace layout;

DeliveryPolicy policy_of(const QueueHeader& h) {
  DeliveryPolicy p;
  p.max_deliveries = h.max_deliveries;
  // Clamped: a peer's scribble must not make a negative duration.
  p.ack_timeout = std::chrono::nanoseconds(static_cast<std::int64_t>(h.ack_timeout_ns & (~std::uint64_t{0} >> 1)));
  p.ttl = std::chrono::nanoseconds(static_cast<std::int64_t>(h.ttl_ns & (~std::uint64_t{0} >> 1)));
  p.dead_letter.assign(h.dead_letter, ::strnlen(h.dead_letter, kNameBytes));
  return p;
}

void copy_policy(Mapping& m, const DeliveryPolicy& p) {
  m.policy = p.any();
  m.max_deliveries = p.max_deliveries;
  m.ack_timeout_ns = static_cast<std::uint64_t>(p.ack_timeout.count());
  m.ttl_ns = static_cast<std::uint64_t>(p.ttl.count());
  m.dead_letter = p.dead_letter;
}

void check_dead_letter_queue(const std::string& ns, std::string_view queue, const QueueOptions& options) {
  const std::string& dead_letter = options.policy.dead_letter;
  if (dead_letter.empty()) return;
  const auto refuse = [&](Errc code, const std::string& why) {
    throw Error(code, "cannot create queue '" + std::string(queue) + "' with dead-letter queue '" + dead_letter +
                          "': " + why);
  };
  if (dead_letter == queue) refuse(Errc::InvalidArgument, "a queue cannot be its own dead-letter queue");
  std::optional<Queue> target;
  try {
    target = Queue::open_read_only(dead_letter, ns);
  } catch (const Error& e) {
    if (e.code() == Errc::NotFound) {
      refuse(Errc::NotFound, "it does not exist in namespace '" + ns + "' (create it first)");
    }
    refuse(e.code(), e.what());
  }
  const std::uint64_t needed = std::uint64_t{options.max_message} + kDeadLetterTrailerMax;
  if (target->max_message() < needed) {
    refuse(Errc::InvalidArgument, "its max message size (" + std::to_string(target->max_message()) +
                                      " bytes) cannot hold this queue's largest message with its origin (" +
                                      std::to_string(needed) + " bytes)");
  }
  // Where its own dead letters go, and theirs: never back here.
  std::set<std::string> seen{std::string(queue), dead_letter};
  std::string next = target->options().policy.dead_letter;
  while (!next.empty()) {
    if (next == queue) refuse(Errc::InvalidArgument, "its dead letters lead back to '" + std::string(queue) + "' (a loop)");
    if (!seen.insert(next).second) break;  // a loop among others: not ours to refuse
    try {
      next = Queue::open_read_only(next, ns).options().policy.dead_letter;
    } catch (const Error&) {
      break;  // the chain ends at a queue that is gone (or closed to us)
    }
  }
}

}  // namespace shmq::detail
