// The worker processes of a round: producers and consumers, each run in a
// forked child and logging what it did, in these formats (verify.cpp reads
// them back after the round).
//
// Producer log (producer-<k>.log, appended by every incarnation):
//   A <producer id> <last sequence>   attached; last_sequence() the queue reported
//   R <sequence> <status>             resent an already committed sequence (must be Duplicate)
//   C <sequence>                      confirmed: the send returned Ok (durable rounds: once
//                                     its durable confirm, or the burst's wait_durable, did)
//   E <text>                          an error; the worker exits non-zero
//   F                                 sent everything, detaching
// Consumer log (consumer-<group>-<member>-<incarnation>.log, one per process):
//   J <epoch>                         joined, after <epoch> power losses of the round
//   D <group> <producer id> <sequence> <position> <redelivered 0|1>   received, before the ack
//   K <position>                      acked (after the ack returned Ok)
//   E <text>                          an error; the worker exits non-zero
//   Q                                 told to stop, holds nothing, left the group
#pragma once

#include <cstdint>
#include <string>

namespace shmq::torture {

struct ProducerJob {
  std::string ns, queue, name, log;
  std::uint64_t messages = 0;       // sends sequences 1..messages
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
};

// The payload of a sequence: its number, then a filler derived from it, so a
// consumer can tell a payload that belongs to another record.
std::string payload_of(std::uint64_t sequence, std::size_t size);
bool payload_matches(std::string_view payload, std::uint64_t sequence);

int run_producer(const ProducerJob& job);
// Runs until SIGTERM; then acks what it holds, leaves and exits 0.
int run_consumer(const ConsumerJob& job);

}  // namespace shmq::torture
