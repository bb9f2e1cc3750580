// Status codes of the data path and the one exception type of set-up.
//
// The data path (send, receive, ack) never throws: it returns a Status.
// Set-up (create, open, attach, join) throws shmq::Error, whose code() says
// exactly what is wrong.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "shmq/export.hpp"

namespace shmq {

enum class Status : std::uint8_t {
  Ok,             // done
  Empty,          // nothing to receive
  Full,           // no room in the ring: every group still holds the space
  Duplicate,      // the sequence is not above the producer's last committed one
  Timeout,        // a blocking call reached its deadline
  TooLarge,       // the payload is larger than the queue's max message size
  InFlightLimit,  // the consumer holds `prefetch` unacknowledged messages
  NotInFlight,    // ack of a message this consumer does not hold
  Corrupt,        // the segment holds something impossible (a bug or a hostile peer)
  NotDurable,     // a durable confirm asked of a queue that is not durable
  JournalUnreadable,  // the group reads the journal, which cannot be read (Consumer::journal_error says why)
  Deleted,        // a blocking call found the queue deleted (its segment has no name left): nothing more comes
  // ack, nack or reject of a message whose ack deadline (DeliveryPolicy::ack_timeout)
  // passed: it went back to the group, and another member may hold it now
  LeaseExpired,
};

[[nodiscard]] SHMQ_API std::string_view to_string(Status status) noexcept;

enum class Errc : std::uint8_t {
  InvalidName,       // a queue, group, producer or namespace name outside [A-Za-z0-9._-]{1,63}
  InvalidArgument,   // a capacity, size or option out of range
  NotFound,          // no such queue
  AlreadyExists,     // create of a queue that exists
  PermissionDenied,  // the segment's mode denies this user
  NotReady,          // the creator has not finished initialising the segment
  Incompatible,      // another layout version, or not an shmq segment at all
  Corrupt,           // a header whose sizes or offsets do not add up
  WrongNamespace,    // the segment was created for another namespace or name
  TableFull,         // no free producer, group or consumer entry
  NameInUse,         // a live producer already attached under this name
  NoSpace,           // the shm directory (/dev/shm) cannot hold the segment
  NeedsRebuild,      // create of a durable queue whose journal exists: shmqd rebuilds it from there
  System,            // any other failing system call (errno in the message)
};

[[nodiscard]] SHMQ_API std::string_view to_string(Errc code) noexcept;

// Exported, so that its type is one and the same on both sides of libshmq.so:
// a program catches what the library throws.
class SHMQ_API Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
  [[nodiscard]] Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace shmq
