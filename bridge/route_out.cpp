// out: shmq -> JetStream. See routes.hpp and docs/bridge.md.
//
// The main loop is the only user of the Consumer (one thread at a time);
// libnats' thread only reports publish acknowledgements into `results_`,
// which the loop drains and turns into shmq acks, one message at a time
// (acks arrive in any order; an ack_up_to could release an unconfirmed one).
#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "routes.hpp"
#include "shmq/shmq.hpp"

namespace shmq::bridge {
namespace {

using SteadyClock = std::chrono::steady_clock;

struct PublishResult {
  std::string msg_id;
  bool ok = false;
  bool duplicate = false;
  std::string error;
};

struct Pending {
  std::string msg_id;  // Nats-Msg-Id
  Message message;  // held in shmq (its payload stays valid) until acked
  std::string producer;
  SteadyClock::time_point due;  // when to publish it (again) if still unanswered
};

class OutBridge {
 public:
  OutBridge(const ConnectOptions& nats, const OutRoute& route, Counters& counters)
      : route_(route), counters_(counters), queue_(open_queue(route.queue)), client_(nats, counters, js_options()) {
    stream_ = check_stream();
    ConsumerOptions options;
    options.prefetch = std::clamp<std::uint32_t>(route.max_in_flight, 1, 65536);
    consumer_ = Consumer::join(queue_, route.group, options);
    spdlog::info("{}: group '{}' of queue '{}' -> subject '{}' (stream '{}')", counters.route, route.group,
                 route.queue, route.subject, stream_);
  }

  void run(const std::atomic<bool>& stopping, std::chrono::milliseconds drain) {
    seen_reconnections_ = client_.reconnections();
    while (!stopping.load(std::memory_order_relaxed)) {
      settle();
      if (!take_more()) wait_for_results(std::chrono::milliseconds(20));
    }
    // SIGTERM: take nothing more; what JetStream acks in time is acked in
    // shmq, the rest goes back to the group when the Consumer leaves.
    const auto deadline = SteadyClock::now() + drain;
    while (!pending_.empty() && SteadyClock::now() < deadline) {
      settle();
      wait_for_results(std::chrono::milliseconds(20));
    }
    settle_results();
    if (!pending_.empty())
      spdlog::info("{}: stopping; {} unacknowledged message(s) go back to group '{}'", counters_.route,
                   pending_.size(), route_.group);
    counters_.in_flight.store(0, std::memory_order_relaxed);
  }

 private:
  static Queue open_queue(const std::string& name) {
    try {
      return Queue::open(name);
    } catch (const Error& e) {
      throw SetupError(e.what());
    }
  }

  jsOptions* js_options() {
    jsOptions_Init(&js_options_);
    js_options_.PublishAsync.MaxPending = static_cast<int64_t>(route_.max_in_flight) * 2;  // room for resends
    js_options_.PublishAsync.AckHandler = &OutBridge::on_publish_ack;
    js_options_.PublishAsync.AckHandlerClosure = this;
    return &js_options_;
  }

  // The stream that captures the subject: created when --stream names one
  // that does not exist; an error when none does (the publishes would never
  // be stored).
  std::string check_stream() {
    if (!route_.stream.empty() && !client_.stream_exists(route_.stream)) {
      client_.create_stream(route_.stream, route_.subject, route_.duplicate_window, route_.replicas);
    }
    const auto streams = client_.streams_capturing(route_.subject);
    if (!route_.stream.empty() && std::find(streams.begin(), streams.end(), route_.stream) == streams.end())
      throw SetupError("stream '" + route_.stream + "' does not capture subject '" + route_.subject + "'");
    if (streams.empty())
      throw SetupError("no JetStream stream captures subject '" + route_.subject +
                       "' (name one with --stream to create it)");
    return route_.stream.empty() ? streams.front() : route_.stream;
  }

  static void on_publish_ack(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
    auto* self = static_cast<OutBridge*>(closure);
    PublishResult result;
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) result.msg_id = id;
    if (ack != nullptr) {
      result.ok = true;
      result.duplicate = ack->Duplicate;
    } else if (error != nullptr) {
      result.error = error->ErrText != nullptr ? error->ErrText : natsStatus_GetText(error->Err);
    }
    natsMsg_Destroy(msg);
    {
      std::lock_guard lock(self->results_mutex_);
      self->results_.push_back(std::move(result));
    }
    self->results_ready_.notify_one();
  }

  void wait_for_results(std::chrono::milliseconds timeout) {
    std::unique_lock lock(results_mutex_);
    results_ready_.wait_for(lock, timeout, [&] { return !results_.empty(); });
  }

  // Acks what JetStream confirmed, republishes what failed or went
  // unanswered.
  void settle() {
    settle_results();
    if (!client_.connected()) return;  // hold: resend only to a live server
    const auto now = SteadyClock::now();
    const std::uint64_t reconnections = client_.reconnections();
    if (reconnections != seen_reconnections_) {
      // What was in flight when the connection broke may never be answered:
      // publish it all again now, in the order received, before anything new.
      seen_reconnections_ = reconnections;
      for (auto& [position, p] : pending_) p.due = now;
    }
    bool overdue = false;
    for (const auto& [position, p] : pending_) overdue = overdue || p.due <= now;
    if (overdue) resend_overdue(now);
  }

  void settle_results() {
    std::vector<PublishResult> results;
    {
      std::lock_guard lock(results_mutex_);
      results.swap(results_);
    }
    const auto now = SteadyClock::now();
    for (PublishResult& r : results) {
      const auto found = by_id_.find(r.msg_id);
      if (found == by_id_.end()) continue;  // an earlier copy's answer, already settled
      const auto it = pending_.find(found->second);
      if (!r.ok) {
        spdlog::debug("{}: publish of {} failed ({}); publishing it again", counters_.route, r.msg_id, r.error);
        it->second.due = now + std::chrono::milliseconds(200);
        continue;
      }
      const Status s = consumer_->ack(it->second.message);
      if (s != Status::Ok) spdlog::warn("{}: shmq ack of {}: {}", counters_.route, r.msg_id, to_string(s));
      (r.duplicate ? counters_.duplicates : counters_.forwarded).fetch_add(1, std::memory_order_relaxed);
      by_id_.erase(found);
      pending_.erase(it);
    }
    counters_.in_flight.store(static_cast<std::int64_t>(pending_.size()), std::memory_order_relaxed);
  }

  // Republishes (same Nats-Msg-Id: JetStream drops a copy it already
  // stored) every message whose due time passed. Copies libnats still waits
  // on are dropped from its pending list first, so that they never fill it.
  void resend_overdue(SteadyClock::time_point now) {
    natsMsgList stale{};
    if (js_PublishAsyncGetPendingList(&stale, client_.jetstream()) == NATS_OK) natsMsgList_Destroy(&stale);
    std::size_t resent = 0;
    for (auto& [position, p] : pending_) {
      // Dropping libnats' list dropped every copy: all are resent, in the
      // order received (a producer's order).
      if (!publish(p)) break;
      p.due = now + route_.ack_wait;
      ++resent;
    }
    counters_.republished.fetch_add(resent, std::memory_order_relaxed);
    spdlog::info("{}: published {} unacknowledged message(s) again", counters_.route, resent);
  }

  // Receives and publishes while there is room; false when it took nothing.
  bool take_more() {
    if (!client_.connected()) return false;  // hold: the ring fills, producers wait
    bool took = false;
    while (pending_.size() < route_.max_in_flight) {
      Message m;
      const Status s = took ? consumer_->try_receive(m) : consumer_->receive(m, std::chrono::milliseconds(20));
      if (s != Status::Ok) {
        if (s != Status::Empty && s != Status::Timeout) {
          if (s == Status::Deleted) throw SetupError("queue '" + route_.queue + "' was deleted");
          spdlog::warn("{}: receive: {}", counters_.route, to_string(s));
        }
        break;
      }
      took = true;
      if (m.redelivered) counters_.redelivered.fetch_add(1, std::memory_order_relaxed);
      std::string producer(m.producer());
      if (producer.empty()) producer = "id" + std::to_string(m.producer_id);
      std::string id = queue_.ns() + '.' + route_.queue + '.' + producer + '.' + std::to_string(m.sequence);
      if (by_id_.contains(id)) {  // the same (producer, sequence) twice in flight: cannot happen in one group
        spdlog::warn("{}: {} received twice in flight; acking the second copy", counters_.route, id);
        (void)consumer_->ack(m);
        continue;
      }
      by_id_.emplace(id, m.position);
      auto [it, inserted] = pending_.try_emplace(m.position, Pending{std::move(id), m, std::move(producer), {}});
      it->second.due = SteadyClock::now() + route_.ack_wait;
      if (!publish(it->second)) {
        it->second.due = SteadyClock::now() + std::chrono::milliseconds(200);  // buffer full: retried then
        break;
      }
    }
    counters_.in_flight.store(static_cast<std::int64_t>(pending_.size()), std::memory_order_relaxed);
    return took;
  }

  bool publish(const Pending& p) {
    const std::string& id = p.msg_id;
    natsMsg* msg = nullptr;
    const auto& payload = p.message.payload;
    natsStatus s = natsMsg_Create(&msg, route_.subject.c_str(), nullptr, reinterpret_cast<const char*>(payload.data()),
                                  static_cast<int>(payload.size()));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Producer", p.producer.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Seq", std::to_string(p.message.sequence).c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Timestamp", std::to_string(p.message.timestamp_ns).c_str());
    jsPubOptions options;
    jsPubOptions_Init(&options);
    options.ExpectStream = stream_.c_str();  // stored by the stream checked at start, or refused
    if (s == NATS_OK) s = js_PublishMsgAsync(client_.jetstream(), &msg, &options);
    natsMsg_Destroy(msg);  // a no-op when libnats took it
    if (s != NATS_OK) {
      spdlog::debug("{}: publish of {}: {}", counters_.route, id, natsStatus_GetText(s));
      return false;
    }
    return true;
  }

  const OutRoute& route_;
  Counters& counters_;
  // Before client_: libnats' thread may report into them until the
  // connection is destroyed.
  std::mutex results_mutex_;
  std::condition_variable results_ready_;
  std::vector<PublishResult> results_;
  jsOptions js_options_{};
  Queue queue_;
  NatsClient client_;
  std::string stream_;
  std::optional<Consumer> consumer_;  // after client_: leaves (giving back) before the connection closes
  std::map<std::uint64_t, Pending> pending_;  // by queue position: the order received
  std::unordered_map<std::string, std::uint64_t> by_id_;  // Nats-Msg-Id -> position
  std::uint64_t seen_reconnections_ = 0;
};

}  // namespace

void run_out(const ConnectOptions& nats, const OutRoute& route, Counters& counters,
             const std::atomic<bool>& stopping, std::chrono::milliseconds drain, const std::function<void()>& ready) {
  OutBridge bridge(nats, route, counters);
  ready();
  bridge.run(stopping, drain);
}

}  // namespace shmq::bridge
