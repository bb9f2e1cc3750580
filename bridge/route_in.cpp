// in: JetStream -> shmq. See routes.hpp and docs/bridge.md.
//
// The cursor is the shmq producer's last_sequence(): messages are sent one
// at a time in stream order with explicit sequence = stream sequence, each
// committed in shared memory before the next is sent, so what shmq holds of
// this producer is always a prefix of the stream (gaps being stream
// sequences that are deleted or filtered out), and a restart reads the
// stream from last_sequence() + 1. On a durable queue a batch of such sends
// is confirmed durable by one wait_durable(): shmqd journals in ring order
// and a power loss cuts the journal's tail, so what survives of this
// producer is a prefix again (docs/bridge.md). JetStream keeps no state for
// us.
#include <thread>

#include <spdlog/spdlog.h>

#include "routes.hpp"
#include "shmq/shmq.hpp"

namespace shmq::bridge {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(200);
// Durable queues: sends committed in shared memory that one wait_durable()
// confirms; fewer when the stream has nothing more buffered right now.
constexpr std::uint32_t kMaxUnconfirmed = 1024;
// On SIGTERM, how long to wait for the last batch's durable confirm (only
// the counters depend on it: the batch is in shmq either way).
constexpr auto kStopConfirmWait = std::chrono::seconds(2);

struct SubscriptionDeleter {
  void operator()(natsSubscription* s) const noexcept {
    natsSubscription_Unsubscribe(s);
    natsSubscription_Destroy(s);
  }
};
using SubscriptionPtr = std::unique_ptr<natsSubscription, SubscriptionDeleter>;

struct MetaDeleter {
  void operator()(jsMsgMetaData* m) const noexcept { jsMsgMetaData_Destroy(m); }
};

Queue open_queue(const std::string& name) {
  try {
    return Queue::open(name);
  } catch (const Error& e) {
    throw SetupError(e.what());
  }
}

Producer attach_producer(const Queue& queue, const std::string& name) {
  try {
    return Producer::attach(queue, name);
  } catch (const Error& e) {
    throw SetupError("producer '" + name + "' of queue '" + queue.name() + "': " + e.what());
  }
}

class InBridge {
 public:
  InBridge(const ConnectOptions& nats, const InRoute& route, Counters& counters)
      : route_(route),
        counters_(counters),
        queue_(open_queue(route.queue)),
        producer_(attach_producer(queue_, route.producer)),
        client_(nats, counters) {
    // Only a limits stream keeps a message once our consumer (no acks) was
    // handed it: interest and work-queue streams drop it, before shmq (or
    // its journal) has it.
    if (client_.stream_retention(route.stream) != js_LimitsPolicy)  // throws when it does not exist
      throw SetupError("stream '" + route.stream +
                       "' has interest or work-queue retention: it may drop a message the bridge read before "
                       "shmq holds it (the in route needs limits retention)");
    // A subscription needs a subject: the filter, else ">" (bound to the
    // stream, the whole stream).
    subject_ = route.filter.empty() ? ">" : route.filter;
    cursor_ = producer_.last_sequence();
    subscribe();  // a filter the stream does not capture fails here, at start
    spdlog::info("{}: stream '{}'{} -> queue '{}' as producer '{}', from stream sequence {}", counters.route,
                 route.stream, route.filter.empty() ? "" : " (filter " + route.filter + ")", route.queue,
                 route.producer, cursor_ + 1);
  }

  void run(const std::atomic<bool>& stopping) {
    std::uint64_t seen_reconnections = client_.reconnections();
    while (!stopping.load(std::memory_order_relaxed)) {
      if (unconfirmed_ > 0 && (unconfirmed_ >= kMaxUnconfirmed || !more_buffered())) {
        if (!confirm_durable(stopping)) break;
      }
      if (client_.reconnections() != seen_reconnections || subscription_ == nullptr) {
        // The server may have lost our ephemeral consumer: start a new one
        // where shmq says we are.
        seen_reconnections = client_.reconnections();
        if (!try_subscribe()) {
          std::this_thread::sleep_for(kPoll);
          continue;
        }
      }
      natsMsg* raw = nullptr;
      const natsStatus s = natsSubscription_NextMsg(&raw, subscription_.get(), kPoll.count());
      if (s == NATS_TIMEOUT) continue;
      if (s != NATS_OK) {
        spdlog::warn("{}: {}; reading the stream again from sequence {}", counters_.route,
                     natsStatus_GetText(s), cursor_ + 1);
        subscription_.reset();
        continue;
      }
      NatsMsgPtr msg(raw);
      if (!deliver(msg.get(), stopping)) break;  // stopping while shmq was full: the stream keeps it
    }
    if (unconfirmed_ > 0 && !confirm_durable_within(kStopConfirmWait)) {
      spdlog::info("{}: stopping; {} message(s) are in queue '{}' (shared memory), their journal sync not yet "
                   "confirmed",
                   counters_.route, unconfirmed_, route_.queue);
    }
  }

 private:
  void subscribe() {
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = route_.stream.c_str();
    options.Ordered = true;  // flow control and heartbeats; libnats restarts it on a gap
    if (cursor_ > 0) {
      options.Config.DeliverPolicy = js_DeliverByStartSequence;
      options.Config.OptStartSeq = cursor_ + 1;
    }
    natsSubscription* sub = nullptr;
    jsErrCode code{};
    const natsStatus s = js_SubscribeSync(&sub, client_.jetstream(), subject_.c_str(),
                                          nullptr, &options, &code);
    if (s != NATS_OK) {
      throw SetupError(nats_error("reading stream '" + route_.stream + "'" +
                                      (route_.filter.empty() ? "" : " with filter '" + route_.filter + "'"),
                                  s));
    }
    subscription_.reset(sub);
  }

  bool try_subscribe() {
    try {
      subscribe();
      return true;
    } catch (const SetupError& e) {
      spdlog::warn("{}: {}; retrying", counters_.route, e.what());
      return false;
    }
  }

  // Sends one stream message to shmq; false when stopping before it could.
  bool deliver(natsMsg* msg, const std::atomic<bool>& stopping) {
    jsMsgMetaData* raw_meta = nullptr;
    if (natsMsg_GetMetaData(&raw_meta, msg) != NATS_OK) {
      spdlog::warn("{}: a message without JetStream metadata; ignored", counters_.route);
      return true;
    }
    const std::unique_ptr<jsMsgMetaData, MetaDeleter> meta(raw_meta);
    const std::uint64_t seq = meta->Sequence.Stream;
    if (seq <= cursor_) {  // read again after a consumer reset: shmq has it
      counters_.redelivered.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    const std::span<const std::byte> payload(reinterpret_cast<const std::byte*>(natsMsg_GetData(msg)),
                                             static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    bool committed_before = false;
    for (;;) {
      // Shared: committed in shared memory before the next send; a durable
      // queue's batch is confirmed durable by one wait_durable (run()).
      const Status s = producer_.send(seq, payload, Confirm::Shared, kPoll);
      if (s == Status::Ok) break;
      if (s == Status::Duplicate) {  // committed by an earlier run (the cursor lagged behind shmq)
        committed_before = true;
        break;
      }
      if (s == Status::TooLarge) {
        throw SetupError("stream sequence " + std::to_string(seq) + " (" + std::to_string(payload.size()) +
                         " bytes) is larger than queue '" + route_.queue + "' accepts (" +
                         std::to_string(queue_.max_message()) + ")");
      }
      if (s != Status::Timeout) throw_send_error(s);
      // Full: hold, the stream keeps it.
      if (stopping.load(std::memory_order_relaxed)) return false;
    }
    cursor_ = seq;
    ++(committed_before ? unconfirmed_duplicates_ : unconfirmed_forwarded_);
    if (queue_.durable()) {
      ++unconfirmed_;
    } else {
      count_confirmed();
    }
    return true;
  }

  // Whether the subscription holds more messages already received.
  [[nodiscard]] bool more_buffered() const {
    int messages = 0;
    int bytes = 0;
    return natsSubscription_GetPending(subscription_.get(), &messages, &bytes) == NATS_OK && messages > 0;
  }

  // Waits until shmqd's journal synced every send so far (it holds meanwhile:
  // shmqd absent or its disk full); false when stopping first.
  bool confirm_durable(const std::atomic<bool>& stopping) {
    while (!confirm_durable_within(kPoll)) {
      if (stopping.load(std::memory_order_relaxed)) return false;
    }
    return true;
  }

  bool confirm_durable_within(std::chrono::milliseconds timeout) {
    const Status s = producer_.wait_durable(timeout);
    if (s == Status::Timeout) return false;
    if (s != Status::Ok) throw_send_error(s);
    count_confirmed();
    return true;
  }

  void count_confirmed() {
    counters_.forwarded.fetch_add(unconfirmed_forwarded_, std::memory_order_relaxed);
    counters_.duplicates.fetch_add(unconfirmed_duplicates_, std::memory_order_relaxed);
    unconfirmed_ = unconfirmed_forwarded_ = unconfirmed_duplicates_ = 0;
  }

  [[noreturn]] void throw_send_error(Status s) const {
    if (s == Status::Deleted) throw SetupError("queue '" + route_.queue + "' was deleted");
    throw SetupError("send to queue '" + route_.queue + "': " + std::string(to_string(s)));
  }

  const InRoute& route_;
  Counters& counters_;
  Queue queue_;
  Producer producer_;
  NatsClient client_;
  std::string subject_;
  std::uint64_t cursor_ = 0;  // the last stream sequence shmq holds (committed in shared memory)
  // Durable queues: sends committed since the last wait_durable, and how
  // the counters will count them once it confirms them.
  std::uint32_t unconfirmed_ = 0;
  std::uint64_t unconfirmed_forwarded_ = 0;
  std::uint64_t unconfirmed_duplicates_ = 0;
  SubscriptionPtr subscription_;  // after client_: gone before the connection
};

}  // namespace

void run_in(const ConnectOptions& nats, const InRoute& route, Counters& counters,
            const std::atomic<bool>& stopping, const std::function<void()>& ready) {
  InBridge bridge(nats, route, counters);
  ready();
  bridge.run(stopping);
}

}  // namespace shmq::bridge
