// out: shmq -> JetStream. See routes.hpp and docs/bridge.md.
//
// The main loop is the only user of the Consumer (one thread at a time);
// libnats' thread only reports publish acknowledgements into `results_`,
// which the loop drains and turns into shmq acks. JetStream's acks arrive in
// any order: a message is acked in shmq (ack_up_to, one call for a run of
// them) once it and every message received before it are confirmed.
//
// Per message the loop allocates only what libnats needs (its message and
// headers) and the Nats-Msg-Id it keeps for resends; see docs/benchmarks.md
// for what the bridge costs next to JetStream alone.
#include <algorithm>
#include <charconv>
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
  std::string msg_id;  // Nats-Msg-Id: <namespace>.<queue>.<producer name>.<sequence>
  Message message;  // held in shmq (its payload stays valid) until acked
  SteadyClock::time_point due;  // when to publish it (again) if still unanswered
  bool confirmed = false;  // JetStream stored it; acked in shmq once all before it are
};

// A number as text, NUL-terminated, without allocating.
struct DecimalText {
  explicit DecimalText(std::uint64_t value) { *std::to_chars(text, text + sizeof text - 1, value).ptr = '\0'; }
  char text[24];
};

class OutBridge {
 public:
  OutBridge(const ConnectOptions& nats, const OutRoute& route, Counters& counters)
      : route_(route), counters_(counters), queue_(open_queue(route.queue)), client_(nats, counters, js_options()) {
    stream_ = check_stream();
    jsPubOptions_Init(&publish_options_);
    publish_options_.ExpectStream = stream_.c_str();
    ConsumerOptions options;
    options.prefetch = std::clamp<std::uint32_t>(route.max_in_flight, 1, 65536);
    consumer_ = Consumer::join(queue_, route.group, options);
    id_prefix_ = queue_.ns() + '.' + route_.queue + '.';
    by_id_.reserve(route.max_in_flight);
    spdlog::info("{}: group '{}' of queue '{}' -> subject '{}' (stream '{}')", counters.route, route.group,
                 route.queue, route.subject, stream_);
  }

  void run(const std::atomic<bool>& stopping, std::chrono::milliseconds drain) {
    seen_reconnections_ = client_.reconnections();
    while (!stopping.load(std::memory_order_relaxed)) {
      settle();
      if (take_more()) continue;
      // At the in-flight limit, sleep until an eighth of it is answered
      // (then publish that many at once) rather than waking per ack; no
      // more than can come (what is still unconfirmed).
      const bool full = pending_.size() >= route_.max_in_flight;
      const std::size_t batch = std::min<std::size_t>(route_.max_in_flight / 8, unconfirmed_);
      wait_for_results(std::chrono::milliseconds(20), full ? std::max<std::size_t>(1, batch) : 1);
    }
    // SIGTERM: take nothing more; what JetStream acks in time is acked in
    // shmq, the rest goes back to the group when the Consumer leaves.
    const auto deadline = SteadyClock::now() + drain;
    while (!pending_.empty() && SteadyClock::now() < deadline) {
      settle();
      wait_for_results(std::chrono::milliseconds(20), 1);
    }
    settle_results();
    // Confirmed ones behind an unconfirmed one are acked one by one; the
    // rest go back to the group.
    for (const auto& [position, p] : pending_)
      if (p.confirmed) (void)consumer_->ack(p.message);
    if (unconfirmed_ != 0)
      spdlog::info("{}: stopping; {} unacknowledged message(s) go back to group '{}'", counters_.route,
                   unconfirmed_, route_.group);
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
    bool wake = false;
    {
      std::lock_guard lock(self->results_mutex_);
      self->results_.push_back(std::move(result));
      wake = self->results_.size() == self->wake_at_results_;
    }
    if (wake) self->results_ready_.notify_one();  // no futex call while the loop is busy
  }

  // Sleeps until `enough` results are in, at most `timeout`.
  void wait_for_results(std::chrono::milliseconds timeout, std::size_t enough) {
    std::unique_lock lock(results_mutex_);
    wake_at_results_ = enough;
    results_ready_.wait_for(lock, timeout, [&] { return results_.size() >= enough; });
    wake_at_results_ = 0;
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
      next_due_ = now;
    }
    if (now < next_due_) return;  // nothing can be overdue yet
    bool overdue = false;
    next_due_ = SteadyClock::time_point::max();
    for (const auto& [position, p] : pending_) {
      if (p.confirmed) continue;
      overdue = overdue || p.due <= now;
      next_due_ = std::min(next_due_, p.due);
    }
    if (overdue) resend_overdue(now);
  }

  void set_due(Pending& p, SteadyClock::time_point due) {
    p.due = due;
    next_due_ = std::min(next_due_, due);
  }

  void settle_results() {
    {
      std::lock_guard lock(results_mutex_);
      settling_.swap(results_);  // both keep their capacity: no allocation in steady state
    }
    const auto now = SteadyClock::now();
    for (PublishResult& r : settling_) {
      const auto found = by_id_.find(r.msg_id);
      if (found == by_id_.end()) continue;  // an earlier copy's answer, already settled
      Pending& p = pending_.find(found->second)->second;
      if (!r.ok) {
        spdlog::debug("{}: publish of {} failed ({}); publishing it again", counters_.route, r.msg_id, r.error);
        set_due(p, now + std::chrono::milliseconds(200));
        continue;
      }
      (r.duplicate ? counters_.duplicates : counters_.forwarded).fetch_add(1, std::memory_order_relaxed);
      by_id_.erase(found);
      p.confirmed = true;
      --unconfirmed_;
    }
    settling_.clear();
    ack_confirmed_prefix();
    counters_.in_flight.store(static_cast<std::int64_t>(unconfirmed_), std::memory_order_relaxed);
  }

  // Acks in shmq, with one ack_up_to, the oldest messages as long as they
  // are confirmed: every message this member holds up to there is.
  void ack_confirmed_prefix() {
    std::uint64_t up_to = 0;
    while (!pending_.empty() && pending_.begin()->second.confirmed) {
      up_to = pending_.begin()->first;
      pending_.erase(pending_.begin());
    }
    if (up_to != 0) (void)consumer_->ack_up_to(up_to);
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
      if (p.confirmed) continue;
      if (!publish(p)) break;
      set_due(p, now + route_.ack_wait);
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
      std::string id = msg_id(m);
      if (by_id_.contains(id)) {  // the same (producer, sequence) twice in flight: cannot happen in one group
        spdlog::warn("{}: {} received twice in flight; acking the second copy", counters_.route, id);
        (void)consumer_->ack(m);
        continue;
      }
      Pending& p = pending_.try_emplace(m.position, Pending{std::move(id), m, {}}).first->second;
      by_id_.emplace(p.msg_id, m.position);  // a view of p.msg_id: a map's node never moves
      ++unconfirmed_;
      set_due(p, SteadyClock::now() + route_.ack_wait);
      if (!publish(p)) {
        set_due(p, SteadyClock::now() + std::chrono::milliseconds(200));  // buffer full: retried then
        break;
      }
    }
    counters_.in_flight.store(static_cast<std::int64_t>(unconfirmed_), std::memory_order_relaxed);
    return took;
  }

  // <namespace>.<queue>.<producer name>.<sequence>, the producer named
  // id<N> when it has no name.
  std::string msg_id(const Message& m) const {
    std::string id;
    const std::string_view producer = m.producer();
    id.reserve(id_prefix_.size() + std::max<std::size_t>(producer.size(), 12) + 22);
    id += id_prefix_;
    if (producer.empty()) {
      id += "id";
      id += DecimalText(m.producer_id).text;
    } else {
      id += producer;
    }
    id += '.';
    id += DecimalText(m.sequence).text;
    return id;
  }

  bool publish(const Pending& p) {
    const std::string& id = p.msg_id;
    natsMsg* msg = nullptr;
    const auto& payload = p.message.payload;
    natsStatus s = natsMsg_Create(&msg, route_.subject.c_str(), nullptr, reinterpret_cast<const char*>(payload.data()),
                                  static_cast<int>(payload.size()));
    // The producer's name is the id's part between the prefix and the last
    // dot; libnats copies each header value, so one scratch string serves.
    producer_scratch_.assign(id, id_prefix_.size(), id.rfind('.') - id_prefix_.size());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Producer", producer_scratch_.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Seq", DecimalText(p.message.sequence).text);
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Shmq-Timestamp", DecimalText(p.message.timestamp_ns).text);
    if (s == NATS_OK) s = js_PublishMsgAsync(client_.jetstream(), &msg, &publish_options_);
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
  std::size_t wake_at_results_ = 0;  // the loop sleeps on results_ready_ until results_ has this many; 0: it does not
  jsOptions js_options_{};
  Queue queue_;
  NatsClient client_;
  std::string stream_;
  std::optional<Consumer> consumer_;  // after client_: leaves (giving back) before the connection closes
  std::map<std::uint64_t, Pending> pending_;  // by queue position: the order received
  std::size_t unconfirmed_ = 0;  // entries of pending_ JetStream has not confirmed
  std::unordered_map<std::string_view, std::uint64_t> by_id_;  // unconfirmed: Nats-Msg-Id -> position
  SteadyClock::time_point next_due_ = SteadyClock::time_point::max();  // no unconfirmed one is due before
  std::vector<PublishResult> settling_;  // the loop's side of results_
  std::string id_prefix_;  // "<namespace>.<queue>."
  std::string producer_scratch_;
  jsPubOptions publish_options_{};  // ExpectStream: stored by the stream checked at start, or refused
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
