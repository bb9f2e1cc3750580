// in: JetStream -> shmq. See routes.hpp and docs/bridge.md.
//
// The cursor is the shmq producer's last_sequence(): every message sent is
// confirmed (durably on a durable queue) before the next is sent, so what
// shmq holds of this producer is always a prefix of the stream (gaps being
// stream sequences that are deleted or filtered out), and a restart reads
// the stream from last_sequence() + 1. JetStream keeps no state for us.
#include <thread>

#include <spdlog/spdlog.h>

#include "routes.hpp"
#include "shmq/shmq.hpp"

namespace shmq::bridge {
namespace {

constexpr auto kPoll = std::chrono::milliseconds(200);

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
    (void)client_.stream_subjects(route.stream);  // throws when it does not exist
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
    const Confirm confirm = queue_.durable() ? Confirm::Durable : Confirm::Shared;
    bool committed_before = false;
    for (;;) {
      const Status s = producer_.send(seq, payload, confirm, kPoll);
      if (s == Status::Ok) break;
      if (s == Status::Duplicate) {  // committed before (a durable confirm timed out, or an earlier run)
        committed_before = true;
        if (!queue_.durable()) break;
        const Status d = producer_.wait_durable(kPoll);
        if (d == Status::Ok) break;
      } else if (s == Status::TooLarge) {
        throw SetupError("stream sequence " + std::to_string(seq) + " (" + std::to_string(payload.size()) +
                         " bytes) is larger than queue '" + route_.queue + "' accepts (" +
                         std::to_string(queue_.max_message()) + ")");
      } else if (s == Status::Deleted) {
        throw SetupError("queue '" + route_.queue + "' was deleted");
      } else if (s != Status::Timeout) {
        throw SetupError("send to queue '" + route_.queue + "': " + std::string(to_string(s)));
      }
      // Full (Timeout), or shmqd has not synced yet: hold, the stream keeps it.
      if (stopping.load(std::memory_order_relaxed)) return false;
    }
    cursor_ = seq;
    (committed_before ? counters_.duplicates : counters_.forwarded).fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  const InRoute& route_;
  Counters& counters_;
  Queue queue_;
  Producer producer_;
  NatsClient client_;
  std::string subject_;
  std::uint64_t cursor_ = 0;  // the last stream sequence shmq holds (confirmed)
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
