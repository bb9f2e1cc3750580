// The worker processes of a round: producers and consumers, each run in a
// forked child and logging what it did, in these formats (verify.cpp reads
// them back after the round).
//
// Producer log (producer-<k>.log, transient-<j>.log in a names round; appended
// by every process of the name; <time> is CLOCK_MONOTONIC in ns):
//   A <producer id> <last sequence> <end> <process> <epoch> <began> <time>
//                                     attached (<began>: before the attach call
//                                     that succeeded, <time>: after it returned);
//                                     last_sequence() the queue reported; it
//                                     sends up to <end>; <process>: the number
//                                     of this process of the name (also in every
//                                     payload it sends); <epoch>: power losses
//                                     before it started
//   T <time>                          attach refused with TableFull (first refusal;
//                                     in-memory rounds it waits and tries again, a
//                                     durable round's transient producer gives up)
//   R <sequence> <status>             resent an already committed sequence (must be Duplicate)
//   C <sequence>                      confirmed: the send returned Ok (durable rounds: once
//                                     its durable confirm, or the burst's wait_durable, did)
//   E <text>                          an error; the worker exits non-zero
//   F                                 sent everything, detaching
// Consumer log (consumer-<group>-<member>-<incarnation>.log, one per process):
//   J <epoch>                         joined, after <epoch> power losses of the round
//   D <group> <producer id> <sequence> <position> <redelivered 0|1> <name> <process> <time>
//                                     received, before the ack; <name> and
//                                     <process> read from the payload; <time>:
//                                     CLOCK_MONOTONIC ns after the receive returned
//   K <position> <time>               acked (after the ack returned Ok); <time>:
//                                     CLOCK_MONOTONIC ns taken before the ack call
// Policy rounds also append <deliveries> (Message::deliveries) to D, and log
//   I <position> <a|n|r>              about to ack, nack or reject it (so a kill
//                                     between the call and its result line leaves
//                                     the outcome unknown, not "not done")
//   N <position>                      nacked (nack returned Ok): it comes again
//   X <position>                      rejected (reject returned Ok): in the dead-letter queue
//   L <position> <a|n|r>              the ack, nack or reject returned LeaseExpired:
//                                     it went back to the group (not acked by this one)
//   S <ms>                            stalls that long holding its batch (past the ack timeout)
//   E <text>                          an error; the worker exits non-zero (or,
//                                     for a mislabelled or foreign payload, logs on)
//   Q                                 told to stop, holds nothing, left the group
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shmq::torture {

struct ProducerJob {
  std::string ns, queue, name, log;
  std::uint64_t messages = 0;       // sends sequences up to messages
  std::uint64_t chunk = 0;          // > 0 (a transient producer): sends this many past its last sequence instead
  std::uint64_t process = 0;        // the number of this process of the name (1, 2, ...), in its payloads
  std::uint64_t epoch = 0;          // power losses before this process started
  // TableFull at attach: give up (log T, exit 0: a durable round's transient
  // producer, for which it is the expected answer), or wait for an entry up to
  // attach_wait (in-memory names rounds, where detached entries are recycled).
  bool give_up_when_full = false;
  std::chrono::milliseconds attach_wait{0};
  std::uint32_t max_payload = 0;    // payload sizes are drawn from [8, max_payload]
  std::uint32_t mean_gap_us = 0;    // mean pause between bursts of sends
  std::uint64_t seed = 0;           // differs per incarnation
  bool durable = false;             // confirm durably (a durable queue)
};

struct ConsumerJob {
  std::string ns, queue, group, log;
  std::string journal_dir;  // shmqd's, for a group that falls behind the ring
  std::uint32_t prefetch = 0;
  std::uint32_t max_batch = 1;  // takes up to this many before acking them
  std::uint32_t work_us = 0;    // mean time it holds a batch before acking
  std::uint64_t seed = 0;
  std::uint64_t epoch = 0;      // power losses before this consumer started
  bool exclusive = false;       // joins as a member of an exclusive group
  // Policy rounds (PolicyPlan): how it settles each message instead of acking it.
  bool policy = false;
  std::uint32_t nack_per_mille = 0, reject_per_mille = 0;
  std::uint64_t poison_every = 0;
  std::uint32_t stall_per_mille = 0, stall_ms = 0;
};

// The payload of a sequence: "#<sequence>|<name>|<process>|", then a filler
// derived from the sequence, so a consumer can tell a payload that belongs to
// another record, and which name (and which process of it) sent it.
std::string payload_of(std::uint64_t sequence, std::string_view name, std::uint64_t process, std::size_t size);
struct PayloadOrigin {
  std::string name;
  std::uint64_t process = 0;
};
// The sender named in `payload` when it is exactly payload_of(sequence, ...).
std::optional<PayloadOrigin> payload_origin(std::string_view payload, std::uint64_t sequence);

int run_producer(const ProducerJob& job);
// Runs until SIGTERM; then acks what it holds, leaves and exits 0.
int run_consumer(const ConsumerJob& job);

}  // namespace shmq::torture
