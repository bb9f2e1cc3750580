// The two kinds of route the bridge runs, each on a thread of its own with
// its own NATS connection.
//
//   out: a member of group G of an shmq queue publishes each message to a
//        JetStream subject and acks it in shmq only after JetStream acked it.
//   in:  a producer of an shmq queue sends each message of a stream, in
//        stream order, with shmq sequence = stream sequence; shmq's producer
//        state (last_sequence) is the cursor.
//
// docs/bridge.md gives the exactly-once argument for both.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "counters.hpp"
#include "nats_client.hpp"

namespace shmq::bridge {

struct OutRoute {
  std::string queue;
  std::string group;
  std::string subject;
  std::string stream;  // optional: created (capturing `subject`) when missing
  std::chrono::seconds duplicate_window{120};  // for a stream the bridge creates
  int replicas = 1;                            // for a stream the bridge creates
  std::uint32_t max_in_flight = 1024;          // publishes awaiting JetStream's ack
  std::chrono::milliseconds ack_wait{5000};    // then published again (same id)
};

struct InRoute {
  std::string stream;
  std::string filter;    // optional subject filter
  std::string queue;
  std::string producer;  // default bridge.<stream>
};

// Run until `stopping` (SIGTERM) or a fatal error. Throw SetupError for what
// the user must fix (reported, exit 1). On stop: out waits up to
// `drain` for the acks of what it published, acks those in shmq and gives
// the rest back to the group (redelivered to the next member); in finishes
// the send under way.
// `ready` is called once the route is set up (connected, stream checked or
// created, group joined or producer attached).
void run_out(const ConnectOptions& nats, const OutRoute& route, Counters& counters,
             const std::atomic<bool>& stopping, std::chrono::milliseconds drain, const std::function<void()>& ready);
void run_in(const ConnectOptions& nats, const InRoute& route, Counters& counters,
            const std::atomic<bool>& stopping, const std::function<void()>& ready);

}  // namespace shmq::bridge
