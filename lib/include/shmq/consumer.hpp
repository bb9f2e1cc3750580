// A consumer: one member of a named consumer group.
//
// Every group sees every message (fan-out); members of one group compete,
// each message going to one of them. A received message stays in flight,
// owned by this consumer, until it is acknowledged; its payload view is valid
// until then. If the consumer's process dies, what it held goes back to the
// group, flagged `redelivered` (shmqd, or the next member to join, does that).
//
// One thread at a time may use a Consumer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "shmq/export.hpp"
#include "shmq/producer.hpp"
#include "shmq/queue.hpp"
#include "shmq/status.hpp"

namespace shmq {

// Why a message was dead-lettered.
enum class DeadLetterReason : std::uint8_t {
  MaxDeliveries,  // delivered DeliveryPolicy::max_deliveries times, never acked
  Expired,        // older than DeliveryPolicy::ttl when due
  Rejected,       // Consumer::reject
};
// "max-deliveries", "expired", "rejected".
[[nodiscard]] SHMQ_API std::string_view to_string(DeadLetterReason reason) noexcept;

// Where a message of a dead-letter queue came from (Message::dead_letter).
struct DeadLetter {
  std::span<const std::byte> payload;  // the original payload (a view into the message's)
  std::string origin_queue;
  std::string origin_group;
  std::string origin_producer;  // its producer's name in the origin queue (empty: unknown)
  std::uint64_t origin_sequence = 0;
  std::uint64_t origin_position = 0;
  std::uint64_t origin_timestamp_ns = 0;
  DeadLetterReason reason = DeadLetterReason::Rejected;
  std::uint32_t deliveries = 0;  // deliveries to the origin group before it was dead-lettered
};

struct Message {
  std::span<const std::byte> payload;  // a view into the ring (a copy, if read from the journal), valid until acked
  std::uint64_t position = 0;          // log position: the queue's total order
  std::uint64_t sequence = 0;          // the producer's sequence
  std::uint64_t timestamp_ns = 0;      // CLOCK_REALTIME at send
  std::uint32_t producer_id = 0;
  bool redelivered = false;  // delivered before: its holder died, nacked it or passed its ack deadline
  // Deliveries of this message to this group, this one included: 1 the first
  // time. Survives consumer crashes and shmqd restarts; after a durable
  // queue's rebuild it may be one higher than the truth, never lower. It
  // saturates at kMaxDeliveriesLimit + 1.
  std::uint32_t deliveries = 1;
  // libshmq's own: the producer table entry producer() reads (not read at
  // receive, which would cost a cache line the producer writes per send).
  const void* producer_entry = nullptr;

  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
  // The name of the producer that sent it, where the queue knows it (its
  // producer table); empty otherwise. A view into shared memory: read it
  // while the message is held, when the name is provably the sender's (an
  // entry goes to another name only once none of its messages is unreleased;
  // a durable queue's entries never do). Copy it to keep it.
  [[nodiscard]] SHMQ_API std::string_view producer() const noexcept;
  // A message of a dead-letter queue carries its origin after the original
  // payload (the move appends it, so it survives journals and bridges):
  // this parses it. nullopt for any other message.
  [[nodiscard]] SHMQ_API std::optional<DeadLetter> dead_letter() const;
};

// Where a new group starts. A durable queue's journal reaches further back
// than its ring: Oldest, Position and Time start there (a replay), reading
// the journal and then the ring.
enum class StartAt : std::uint8_t {
  Oldest,  // the oldest message retained (durable: in the journal; else in the ring)
  Newest,  // only messages sent after the group is created
  Position,  // the first record at or after ConsumerOptions::start_position
  Time,      // the first record sent at or after ConsumerOptions::start_time_ns
};

struct ConsumerOptions {
  std::uint32_t prefetch = 256;  // most unacknowledged messages held at once (1..65536)
  StartAt start = StartAt::Oldest;  // where a new group starts; ignored when it exists
  std::uint64_t start_position = 0;  // for StartAt::Position (clamped to what is retained)
  std::uint64_t start_time_ns = 0;   // for StartAt::Time (CLOCK_REALTIME ns)
  WaitOptions wait{};
  // Durable queues: the journal's directory, read by a group that fell a ring
  // behind or replays. Empty: daemon_data_dir(namespace)/journal/<queue>,
  // which is shmqd's when it runs without --data-dir.
  std::string journal_dir{};
  // An exclusive group (set when join creates the group; joining an existing
  // group must say the same): one member at a time reads it, in order, and
  // takes records without a CAS each; the others stand by and take over when
  // it leaves or dies (like RabbitMQ's single active consumer, or a Kafka
  // partition's owner). docs/design.md, "Exclusive groups".
  bool exclusive = false;
};

class SHMQ_API Consumer {
 public:
  static Consumer join(const Queue& queue, std::string_view group, ConsumerOptions options = {});
  Consumer(Consumer&&) noexcept;
  Consumer& operator=(Consumer&&) noexcept;
  ~Consumer();  // leaves; what it still holds goes back to the group, redelivered

  // True when join() created the group (so `start` applied).
  [[nodiscard]] bool created_group() const noexcept;
  [[nodiscard]] std::uint32_t index() const noexcept;
  [[nodiscard]] std::uint32_t in_flight() const noexcept;
  // Whether this member reads: always in a competing group; in an exclusive
  // group, once it is the active member (a standby's receive waits for that).
  [[nodiscard]] bool active() const noexcept;
  // Why the last receive returned Status::JournalUnreadable.
  [[nodiscard]] const std::string& journal_error() const noexcept;

  [[nodiscard]] Status try_receive(Message& out) noexcept;
  [[nodiscard]] Status receive(Message& out, Duration timeout = kForever) noexcept;
  // Fills up to out.size() messages without waiting; returns how many. In an
  // exclusive group, the ring's records come with one cursor update.
  [[nodiscard]] std::size_t try_receive_batch(std::span<Message> out) noexcept;
  // Waits up to `timeout` for the first message, then fills the rest as
  // try_receive_batch does. Returns how many (0: see `status`, as receive's).
  [[nodiscard]] std::size_t receive_batch(std::span<Message> out, Duration timeout, Status& status) noexcept;

  // Ok, NotInFlight (not held by this consumer), or LeaseExpired (held past
  // the queue's ack timeout: it went back to the group, whose next holder acks it).
  [[nodiscard]] Status ack(const Message& message) noexcept;
  // Gives a held message back to its group at once: it comes again (to any
  // member), flagged redelivered, before newer messages, and counts a
  // delivery (past the queue's max_deliveries, it is dead-lettered instead).
  [[nodiscard]] Status nack(const Message& message) noexcept;
  // Sends a held message to the queue's dead-letter queue (reason rejected),
  // or drops it, counted, where the queue has none. Exactly once, even if
  // this process dies during the move. Ok, NotInFlight, LeaseExpired; Full
  // or Timeout when the dead-letter queue has no room (the message stays
  // held: try again, or nack it).
  [[nodiscard]] Status reject(const Message& message) noexcept;
  // Acks every message this consumer holds at a position <= `position`.
  std::size_t ack_up_to(std::uint64_t position) noexcept;

  struct SHMQ_LOCAL State;  // libshmq's own (lib/src/ring)

 private:
  explicit Consumer(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace shmq
