// The C API's consumers: join, receive, ack; and the sender's name.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>

#include "capi/capi.hpp"

namespace shmq::capi {
namespace {

void message_to(const Message& m, shmq_message_t* out) noexcept {
  out->payload = m.payload.data();
  out->size = m.payload.size();
  out->position = m.position;
  out->sequence = m.sequence;
  out->timestamp_ns = m.timestamp_ns;
  out->producer_id = m.producer_id;
  out->redelivered = m.redelivered;
  out->deliveries = static_cast<std::uint16_t>(std::min<std::uint32_t>(m.deliveries, UINT16_MAX));
  out->internal = m.producer_entry;
}

// The message as the C++ API handed it out (ack needs its position; nack,
// reject and dead_letter() may read the rest).
Message message_from(const shmq_message_t& m) noexcept {
  Message out;
  out.payload = std::span(static_cast<const std::byte*>(m.payload), m.size);
  out.position = m.position;
  out.sequence = m.sequence;
  out.timestamp_ns = m.timestamp_ns;
  out.producer_id = m.producer_id;
  out.redelivered = m.redelivered;
  out.deliveries = m.deliveries;
  out.producer_entry = m.internal;
  return out;
}

// `deliveries` lies in what was padding: the struct keeps its size and layout (LP64).
static_assert(sizeof(void*) != 8 ||
              (offsetof(shmq_message_t, deliveries) == 46 && offsetof(shmq_message_t, internal) == 48 &&
               sizeof(shmq_message_t) == 56));

// Copies a name into a fixed C field, cut to fit, NUL-terminated.
template <std::size_t N>
void copy_name(std::string_view name, char (&out)[N]) noexcept {
  const std::size_t n = std::min(name.size(), N - 1);
  std::memcpy(out, name.data(), n);
  out[n] = '\0';
}

void dead_letter_to(const DeadLetter& d, shmq_dead_letter_t* out) noexcept {
  *out = shmq_dead_letter_t{};
  out->payload = d.payload.data();
  out->size = d.payload.size();
  copy_name(d.origin_queue, out->origin_queue);
  copy_name(d.origin_group, out->origin_group);
  copy_name(d.origin_producer, out->origin_producer);
  out->origin_sequence = d.origin_sequence;
  out->origin_position = d.origin_position;
  out->origin_timestamp_ns = d.origin_timestamp_ns;
  out->reason = static_cast<shmq_dead_letter_reason_t>(d.reason);
  out->deliveries = d.deliveries;
}

static_assert(SHMQ_DEAD_LETTER_MAX_DELIVERIES == static_cast<int>(DeadLetterReason::MaxDeliveries));
static_assert(SHMQ_DEAD_LETTER_EXPIRED == static_cast<int>(DeadLetterReason::Expired));
static_assert(SHMQ_DEAD_LETTER_REJECTED == static_cast<int>(DeadLetterReason::Rejected));

// Fills out[count..max) with Consumer::try_receive_batch (an exclusive
// member's ring records in one cursor update), through Messages on the
// stack, a chunk at a time; returns the new count.
std::size_t fill_batch(Consumer& consumer, shmq_message_t* out, std::size_t count, std::size_t max) noexcept {
  std::array<Message, 64> chunk;
  while (count < max) {
    const std::size_t want = std::min(chunk.size(), max - count);
    const std::size_t got = consumer.try_receive_batch(std::span(chunk).first(want));
    for (std::size_t i = 0; i < got; ++i) message_to(chunk[i], &out[count++]);
    if (got < want) break;
  }
  return count;
}

StartAt start_from(shmq_start_t start) { return static_cast<StartAt>(start); }
static_assert(SHMQ_START_TIME == static_cast<int>(StartAt::Time));
// `exclusive` took a reserved word: the struct keeps the size it had with four.
static_assert(sizeof(shmq_consumer_options_t) ==
              offsetof(shmq_consumer_options_t, journal_dir) + sizeof(const char*) + 4 * sizeof(std::uint64_t));

}  // namespace
}  // namespace shmq::capi

using namespace shmq::capi;

extern "C" {

void shmq_consumer_options_init(shmq_consumer_options_t* options) {
  if (options == nullptr) return;
  const shmq::ConsumerOptions defaults;
  *options = shmq_consumer_options_t{};
  options->prefetch = defaults.prefetch;
  options->start = static_cast<shmq_start_t>(defaults.start);
  options->wait_spin = defaults.wait.spin;
}

shmq_status_t shmq_consumer_join(shmq_queue_t* queue, const char* group, const shmq_consumer_options_t* options,
                                 shmq_consumer_t** out) {
  if (out == nullptr) return null_argument("out is NULL");
  *out = nullptr;
  if (queue == nullptr || group == nullptr) return null_argument("the queue or the group name is NULL");
  // shmq_start_t has int as its underlying type in C++: any int is a value to check.
  if (options != nullptr && (options->start < SHMQ_START_OLDEST || options->start > SHMQ_START_TIME))
    return fail(SHMQ_INVALID_ARGUMENT, "start must be one of SHMQ_START_OLDEST, _NEWEST, _POSITION, _TIME");
  if (options != nullptr && !reserved_zero(options->reserved))
    return fail(SHMQ_INVALID_ARGUMENT, "consumer options: reserved words must be zero");
  return guarded([&] {
    shmq::ConsumerOptions o;
    if (options != nullptr) {
      o.prefetch = options->prefetch;
      o.start = start_from(options->start);
      o.start_position = options->start_position;
      o.start_time_ns = options->start_time_ns;
      o.wait.spin = options->wait_spin;
      if (options->journal_dir != nullptr) o.journal_dir = options->journal_dir;
      o.exclusive = options->exclusive;
    }
    *out = new shmq_consumer{shmq::Consumer::join(queue->queue, group, o)};
    return SHMQ_OK;
  });
}

void shmq_consumer_close(shmq_consumer_t* consumer) { delete consumer; }

bool shmq_consumer_created_group(const shmq_consumer_t* consumer) {
  return consumer != nullptr && consumer->consumer.created_group();
}

uint32_t shmq_consumer_index(const shmq_consumer_t* consumer) {
  return consumer == nullptr ? 0 : consumer->consumer.index();
}

uint32_t shmq_consumer_in_flight(const shmq_consumer_t* consumer) {
  return consumer == nullptr ? 0 : consumer->consumer.in_flight();
}

bool shmq_consumer_active(const shmq_consumer_t* consumer) {
  return consumer != nullptr && consumer->consumer.active();
}

const char* shmq_consumer_journal_error(const shmq_consumer_t* consumer) {
  return consumer == nullptr ? "" : consumer->consumer.journal_error().c_str();
}

shmq_status_t shmq_consumer_try_receive(shmq_consumer_t* consumer, shmq_message_t* out) {
  if (consumer == nullptr || out == nullptr) return null_argument("the consumer or out is NULL");
  shmq::Message m;
  const shmq::Status status = consumer->consumer.try_receive(m);
  if (status == shmq::Status::Ok) message_to(m, out);
  return status_of(status);
}

shmq_status_t shmq_consumer_receive(shmq_consumer_t* consumer, shmq_message_t* out, int64_t timeout_ns) {
  if (consumer == nullptr || out == nullptr) return null_argument("the consumer or out is NULL");
  shmq::Message m;
  const shmq::Status status = consumer->consumer.receive(m, timeout_of(timeout_ns));
  if (status == shmq::Status::Ok) message_to(m, out);
  return status_of(status);
}

shmq_status_t shmq_consumer_try_receive_batch(shmq_consumer_t* consumer, shmq_message_t* out, size_t max,
                                              size_t* count) {
  if (consumer == nullptr || count == nullptr || out == nullptr)
    return null_argument("the consumer, out or count is NULL");
  if (max == 0) return fail(SHMQ_INVALID_ARGUMENT, "a batch of at most 0 messages");
  *count = fill_batch(consumer->consumer, out, 0, max);
  if (*count > 0) return SHMQ_OK;
  // None: one try alone says why (Empty, InFlightLimit, or something worse),
  // or takes what came meanwhile.
  shmq::Message first;
  const shmq::Status status = consumer->consumer.try_receive(first);
  if (status != shmq::Status::Ok) return status_of(status);
  message_to(first, out);
  *count = fill_batch(consumer->consumer, out, 1, max);
  return SHMQ_OK;
}

shmq_status_t shmq_consumer_receive_batch(shmq_consumer_t* consumer, shmq_message_t* out, size_t max,
                                          int64_t timeout_ns, size_t* count) {
  if (consumer == nullptr || count == nullptr || out == nullptr)
    return null_argument("the consumer, out or count is NULL");
  if (max == 0) return fail(SHMQ_INVALID_ARGUMENT, "a batch of at most 0 messages");
  *count = fill_batch(consumer->consumer, out, 0, max);
  if (*count > 0) return SHMQ_OK;
  // None there: wait for the first, then take what else is there.
  shmq::Message first;
  const shmq::Status status = consumer->consumer.receive(first, timeout_of(timeout_ns));
  if (status != shmq::Status::Ok) return status_of(status);
  message_to(first, out);
  *count = fill_batch(consumer->consumer, out, 1, max);
  return SHMQ_OK;
}

shmq_status_t shmq_consumer_ack(shmq_consumer_t* consumer, const shmq_message_t* message) {
  if (consumer == nullptr || message == nullptr) return null_argument("the consumer or the message is NULL");
  return status_of(consumer->consumer.ack(message_from(*message)));
}

shmq_status_t shmq_consumer_nack(shmq_consumer_t* consumer, const shmq_message_t* message) {
  if (consumer == nullptr || message == nullptr) return null_argument("the consumer or the message is NULL");
  return status_of(consumer->consumer.nack(message_from(*message)));
}

shmq_status_t shmq_consumer_reject(shmq_consumer_t* consumer, const shmq_message_t* message) {
  if (consumer == nullptr || message == nullptr) return null_argument("the consumer or the message is NULL");
  return status_of(consumer->consumer.reject(message_from(*message)));
}

shmq_status_t shmq_consumer_ack_up_to(shmq_consumer_t* consumer, uint64_t position, size_t* count) {
  if (consumer == nullptr) return null_argument("the consumer is NULL");
  const std::size_t acked = consumer->consumer.ack_up_to(position);
  if (count != nullptr) *count = acked;
  return SHMQ_OK;
}

shmq_status_t shmq_message_producer(const shmq_message_t* message, char* buf, size_t size, size_t* length) {
  if (message == nullptr) return null_argument("the message is NULL");
  return copy_out(message_from(*message).producer(), buf, size, length);
}

const char* shmq_dead_letter_reason_str(shmq_dead_letter_reason_t reason) {
  // shmq_dead_letter_reason_t has int as its underlying type in C++: any int is a value to check.
  if (reason < SHMQ_DEAD_LETTER_MAX_DELIVERIES || reason > SHMQ_DEAD_LETTER_REJECTED) return "unknown";
  // to_string's views are of string literals, so NUL-terminated.
  return shmq::to_string(static_cast<shmq::DeadLetterReason>(reason)).data();
}

shmq_status_t shmq_message_dead_letter(const shmq_message_t* message, shmq_dead_letter_t* out) {
  if (message == nullptr || out == nullptr) return null_argument("the message or out is NULL");
  *out = shmq_dead_letter_t{};
  if (message->payload == nullptr && message->size != 0) return null_argument("the message's payload is NULL");
  return guarded([&] {
    const std::optional<shmq::DeadLetter> origin = message_from(*message).dead_letter();
    if (!origin) return fail(SHMQ_NOT_FOUND, "the message is not a dead letter: it carries no origin");
    dead_letter_to(*origin, out);
    return SHMQ_OK;
  });
}

}  // extern "C"
