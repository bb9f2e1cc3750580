// shmq: one queue per channel, created in the parent with its consumer groups
// (g0, g1, ...) so that nothing sent before a consumer joins is released.
// Spin mode polls try_send/try_receive; block mode calls send/receive with a
// spin budget of ChannelConfig::block_spin (0 unless asked: a side that must
// wait sleeps on the futex at once).
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "shmq/shmq.hpp"
#include "transport.hpp"

namespace bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

void check(shmq::Status status, std::string_view what) {
  if (status != shmq::Status::Ok)
    throw std::runtime_error(fmt::format("shmq {}: {}", what, shmq::to_string(status)));
}

shmq::WaitOptions wait_options(const ChannelConfig& c) {
  shmq::WaitOptions w;
  if (c.wait == Wait::Block) w.spin = c.block_spin;
  return w;
}

std::string group_name(int group) { return fmt::format("g{}", group); }

// Matches a durable producer's send times against the journal's synced
// position, polled by a thread of its own while the producer sends.
class ConfirmWatch {
 public:
  explicit ConfirmWatch(const shmq::Queue& queue)
      : queue_(queue), poller_([this](std::stop_token stop) { poll(stop); }) {}

  void sent(std::uint64_t position) {
    const std::lock_guard lock(mutex_);
    pending_.push_back({position, SteadyClock::now()});
  }

  // Waits until every record sent is synced; returns the confirm latencies.
  std::vector<std::uint64_t> drain() {
    while (!idle()) std::this_thread::sleep_for(kPoll);
    poller_.request_stop();
    poller_.join();
    return std::move(latencies_);
  }

 private:
  static constexpr auto kPoll = std::chrono::microseconds(100);
  struct Pending {
    std::uint64_t position;
    SteadyClock::time_point at;
  };

  bool idle() {
    const std::lock_guard lock(mutex_);
    return pending_.empty();
  }

  void poll(const std::stop_token& stop) {
    while (!stop.stop_requested()) {
      const std::uint64_t synced = queue_.info().journal_synced;
      {
        const std::lock_guard lock(mutex_);
        // After the lock: every entry below was sent before this moment (one
        // sent after a `now` taken earlier could already be synced).
        const auto now = SteadyClock::now();
        for (; !pending_.empty() && pending_.front().position < synced; pending_.pop_front())
          latencies_.push_back(static_cast<std::uint64_t>((now - pending_.front().at).count()));
      }
      std::this_thread::sleep_for(kPoll);
    }
  }

  shmq::Queue queue_;
  std::mutex mutex_;
  std::deque<Pending> pending_;
  std::vector<std::uint64_t> latencies_;
  std::jthread poller_;  // last: starts once the rest is built
};

class ShmqSender final : public Sender {
 public:
  ShmqSender(const shmq::Queue& q, int producer, const ChannelConfig& c)
      : producer_(shmq::Producer::attach(q, fmt::format("p{}", producer), {wait_options(c)})),
        wait_(c.wait),
        confirm_each_(c.confirm_each),
        batch_(c.confirm_each ? 1 : c.batch) {
    if (q.durable() && !confirm_each_) confirms_ = std::make_unique<ConfirmWatch>(q);
  }

  void send(std::span<const std::byte> message) override {
    if (batch_ > 1) {
      buffer(message);
      if (pending_ == batch_) flush();
      return;
    }
    if (confirm_each_) {
      const auto start = SteadyClock::now();
      check(producer_.send(message, shmq::Confirm::Durable), "durable send");
      latencies_.push_back(static_cast<std::uint64_t>((SteadyClock::now() - start).count()));
      return;
    }
    if (wait_ == Wait::Block) {
      check(producer_.send(message), "send");
    } else {
      shmq::Status st;
      while ((st = producer_.try_send(message)) == shmq::Status::Full) cpu_relax();
      check(st, "try_send");
    }
    if (confirms_) confirms_->sent(producer_.last_position());
  }

  // One try_send_batch (or send_batch) for what send() buffered.
  void flush() override {
    std::size_t sent = 0;
    while (sent < pending_) {
      const auto rest = std::span(spans_).subspan(sent, pending_ - sent);
      shmq::Status st = shmq::Status::Ok;
      if (wait_ == Wait::Block) {
        sent += producer_.send_batch(rest, shmq::kForever, st);
      } else {
        std::size_t n = 0;
        while ((n = producer_.try_send_batch(rest, st)) == 0 && st == shmq::Status::Full) cpu_relax();
        sent += n;
      }
      if (st != shmq::Status::Ok && st != shmq::Status::Full) check(st, "send batch");
    }
    if (confirms_ && pending_ != 0) confirms_->sent(producer_.last_position());
    pending_ = 0;
  }

  std::vector<std::uint64_t> drain_confirms() override {
    if (confirm_each_) return std::move(latencies_);
    return confirms_ ? confirms_->drain() : std::vector<std::uint64_t>{};
  }

 private:
  // Copies a message into the batch (the harness reuses its buffer).
  void buffer(std::span<const std::byte> message) {
    if (copies_.size() < batch_) {
      copies_.resize(batch_);
      spans_.resize(batch_);
    }
    copies_[pending_].assign(message.begin(), message.end());
    spans_[pending_] = copies_[pending_];
    ++pending_;
  }

  shmq::Producer producer_;
  Wait wait_;
  bool confirm_each_;
  std::size_t batch_;
  std::size_t pending_ = 0;
  std::vector<std::vector<std::byte>> copies_;
  std::vector<std::span<const std::byte>> spans_;
  std::vector<std::uint64_t> latencies_;  // confirm_each: each send's own wait
  std::unique_ptr<ConfirmWatch> confirms_;  // durable queues only
};

class ShmqReceiver final : public Receiver {
 public:
  ShmqReceiver(const shmq::Queue& q, int group, const ChannelConfig& c)
      : consumer_(shmq::Consumer::join(q, group_name(group), {.wait = wait_options(c), .exclusive = c.exclusive})),
        wait_(c.wait),
        batch_(c.batch) {}

  std::span<const std::byte> receive() override {
    if (batch_ > 1) return next_of_batch();
    shmq::Status st = consumer_.try_receive(message_);
    if (st == shmq::Status::Empty) {
      flush_acks();  // never wait while holding messages: producers may wait for that space
      if (wait_ == Wait::Block) {
        st = consumer_.receive(message_);
      } else {
        while ((st = consumer_.try_receive(message_)) == shmq::Status::Empty) cpu_relax();
      }
    }
    check(st, "receive");
    return message_.payload;
  }

  // What is still unacknowledged when a consumer leaves goes back to its
  // group and would be delivered again (flagged): ack it first.
  ~ShmqReceiver() override { flush_acks(); }

  // Acks in batches with ack_up_to (AMQP's "multiple" acks): one release of
  // ring space per kAckBatch messages instead of one per message.
  void release() override {
    last_position_ = message_.position;
    if (++unacked_ == kAckBatch) flush_acks();
  }

 private:
  // Hands out the messages of one batch receive in turn.
  std::span<const std::byte> next_of_batch() {
    if (next_ == received_) {
      if (batch_messages_.size() < batch_) batch_messages_.resize(batch_);
      next_ = 0;
      received_ = consumer_.try_receive_batch(batch_messages_);
      if (received_ == 0) {
        flush_acks();  // never wait while holding messages: producers may wait for that space
        shmq::Status st = shmq::Status::Ok;
        if (wait_ == Wait::Block) {
          received_ = consumer_.receive_batch(batch_messages_, shmq::kForever, st);
        } else {
          while ((received_ = consumer_.try_receive_batch(batch_messages_)) == 0) cpu_relax();
        }
        check(st, "receive batch");
      }
    }
    message_ = batch_messages_[next_++];
    return message_.payload;
  }

  void flush_acks() {
    if (unacked_ == 0) return;
    consumer_.ack_up_to(last_position_);
    unacked_ = 0;
  }

  static constexpr int kAckBatch = 32;
  shmq::Consumer consumer_;
  shmq::Message message_;
  Wait wait_;
  std::size_t batch_;
  std::vector<shmq::Message> batch_messages_;
  std::size_t next_ = 0, received_ = 0;
  int unacked_ = 0;
  std::uint64_t last_position_ = 0;
};

// Whether shmqd has taken every queue (it notices new ones within milliseconds).
bool daemon_takes(const std::vector<std::string>& names) {
  const auto deadline = SteadyClock::now() + std::chrono::seconds(2);
  for (const auto& name : names) {
    const shmq::Queue q = shmq::Queue::open(name);
    while (!q.info().daemon_alive) {
      if (SteadyClock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return true;
}

class Shmq final : public Transport {
 public:
  Shmq(int channels, const ChannelConfig& c) : config_(c), owner_(getpid()) {
    try {
      for (int i = 0; i < channels; ++i) create(fmt::format("bench-{}-{}", owner_, i));
      if (c.durable && !daemon_takes(names_)) {
        throw std::runtime_error("--durable needs shmqd running in namespace " + shmq::current_namespace());
      }
    } catch (...) {
      remove_all();
      throw;
    }
  }
  ~Shmq() override {
    if (getpid() == owner_) remove_all();
  }
  Shmq(const Shmq&) = delete;
  Shmq& operator=(const Shmq&) = delete;

  std::unique_ptr<Sender> sender(int channel, int producer) override {
    return std::make_unique<ShmqSender>(shmq::Queue::open(names_.at(channel)), producer, config_);
  }
  std::unique_ptr<Receiver> receiver(int channel, int group) override {
    return std::make_unique<ShmqReceiver>(shmq::Queue::open(names_.at(channel)), group, config_);
  }

 private:
  void create(const std::string& name) {
    shmq::QueueOptions options;
    options.capacity = config_.ring_bytes;
    options.max_message = static_cast<std::uint32_t>(config_.payload);
    options.durable = config_.durable;
    const auto queue = shmq::Queue::create(name, options);
    names_.push_back(name);
    for (int g = 0; g < config_.groups; ++g)
      (void)shmq::Consumer::join(queue, group_name(g), {.exclusive = config_.exclusive});
  }

  void remove_all() noexcept {
    for (const auto& n : names_) {
      try {
        shmq::Queue::remove(n);
      } catch (const std::exception&) {  // best effort: the run's result stands
      }
    }
  }

  ChannelConfig config_;
  pid_t owner_;
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Transport> make_shmq(int channels, const ChannelConfig& config) {
  return std::make_unique<Shmq>(channels, config);
}

}  // namespace bench
