// The C API's producers: attach, send, durable confirms, zero-copy claims.
#include <span>
#include <string>
#include <vector>

#include "capi/capi.hpp"

namespace shmq::capi {
namespace {

std::span<const std::byte> bytes_of(const void* data, std::size_t size) noexcept {
  return {static_cast<const std::byte*>(data), size};
}

// A payload pointer may be NULL only for an empty payload.
bool bad_payload(const void* data, std::size_t size) noexcept { return data == nullptr && size != 0; }

// The sequence a send committed: `explicit_seq` (0: the next one) when the
// producer's last sequence reached it, else 0.
std::uint64_t committed_sequence(const Producer& p, std::uint64_t before, std::uint64_t explicit_seq) noexcept {
  const std::uint64_t last = p.last_sequence();
  if (explicit_seq == 0) return last > before ? last : 0;
  return last >= explicit_seq && explicit_seq > before ? explicit_seq : 0;
}

// The C batch as C++ spans (each payload checked as a single send's is).
bool batch_of(const shmq_payload_t* payloads, size_t count, std::vector<std::span<const std::byte>>& out) {
  if (payloads == nullptr && count != 0) return false;
  out.clear();
  for (size_t i = 0; i < count; ++i) {
    if (bad_payload(payloads[i].data, payloads[i].size)) return false;
    out.push_back(bytes_of(payloads[i].data, payloads[i].size));
  }
  return true;
}

// Runs a batch send and reports it the C way.
template <class Send>
shmq_status_t send_batch_with(shmq_producer_t* producer, const shmq_payload_t* payloads, size_t count, size_t* sent,
                              Send&& send) {
  if (sent != nullptr) *sent = 0;
  // Reused: no allocation per batch once a thread has sent its largest.
  thread_local std::vector<std::span<const std::byte>> spans;
  if (producer == nullptr || !batch_of(payloads, count, spans))
    return null_argument("the producer, the payloads or a payload is NULL");
  shmq::Status status = shmq::Status::Ok;
  const std::size_t n = send(spans, status);
  if (sent != nullptr) *sent = n;
  return status_of(status);
}

// Runs a batch claim and reports it the C way.
template <class Claim>
shmq_status_t claim_batch_with(shmq_producer_t* producer, const size_t* sizes, size_t count, size_t* claimed,
                               Claim&& claim) {
  if (claimed != nullptr) *claimed = 0;
  if (producer == nullptr || (sizes == nullptr && count != 0))
    return null_argument("the producer or the sizes are NULL");
  shmq::Status status = shmq::Status::Ok;
  const std::size_t n = claim(std::span<const std::size_t>(sizes, count), status);
  if (claimed != nullptr) *claimed = n;
  return status_of(status);
}

}  // namespace
}  // namespace shmq::capi

using namespace shmq::capi;

extern "C" {

void shmq_producer_options_init(shmq_producer_options_t* options) {
  if (options == nullptr) return;
  const shmq::ProducerOptions defaults;
  *options = shmq_producer_options_t{};
  options->wait_spin = defaults.wait.spin;
  options->precise_timestamps = defaults.precise_timestamps;
}

shmq_status_t shmq_producer_attach(shmq_queue_t* queue, const char* name, const shmq_producer_options_t* options,
                                   shmq_producer_t** out) {
  if (out == nullptr) return null_argument("out is NULL");
  *out = nullptr;
  if (queue == nullptr || name == nullptr) return null_argument("the queue or the producer name is NULL");
  return guarded([&] {
    shmq::ProducerOptions o;
    if (options != nullptr && !reserved_zero(options->reserved))
      return fail(SHMQ_INVALID_ARGUMENT, "producer options: reserved words must be zero");
    if (options != nullptr) {
      o.wait.spin = options->wait_spin;
      o.precise_timestamps = options->precise_timestamps;
    }
    *out = new shmq_producer{shmq::Producer::attach(queue->queue, name, o)};
    return SHMQ_OK;
  });
}

void shmq_producer_close(shmq_producer_t* producer) { delete producer; }

uint32_t shmq_producer_id(const shmq_producer_t* producer) {
  return producer == nullptr ? 0 : producer->producer.id();
}

uint64_t shmq_producer_last_sequence(const shmq_producer_t* producer) {
  return producer == nullptr ? 0 : producer->producer.last_sequence();
}

uint64_t shmq_producer_last_position(const shmq_producer_t* producer) {
  return producer == nullptr ? 0 : producer->producer.last_position();
}

shmq_status_t shmq_producer_try_send(shmq_producer_t* producer, const void* data, size_t size, uint64_t* sequence) {
  if (producer == nullptr || bad_payload(data, size)) return null_argument("the producer or the payload is NULL");
  const shmq::Status status = producer->producer.try_send(bytes_of(data, size));
  if (status == shmq::Status::Ok && sequence != nullptr) *sequence = producer->producer.last_sequence();
  return status_of(status);
}

shmq_status_t shmq_producer_send(shmq_producer_t* producer, const void* data, size_t size, int64_t timeout_ns,
                                 uint64_t* sequence) {
  if (producer == nullptr || bad_payload(data, size)) return null_argument("the producer or the payload is NULL");
  const shmq::Status status = producer->producer.send(bytes_of(data, size), timeout_of(timeout_ns));
  if (status == shmq::Status::Ok && sequence != nullptr) *sequence = producer->producer.last_sequence();
  return status_of(status);
}


shmq_status_t shmq_producer_try_send_batch(shmq_producer_t* producer, const shmq_payload_t* payloads, size_t count,
                                           size_t* sent) {
  return send_batch_with(producer, payloads, count, sent, [&](const auto& spans, shmq::Status& status) {
    return producer->producer.try_send_batch(spans, status);
  });
}

shmq_status_t shmq_producer_send_batch(shmq_producer_t* producer, const shmq_payload_t* payloads, size_t count,
                                       int64_t timeout_ns, size_t* sent) {
  return send_batch_with(producer, payloads, count, sent, [&](const auto& spans, shmq::Status& status) {
    return producer->producer.send_batch(spans, timeout_of(timeout_ns), status);
  });
}

shmq_status_t shmq_producer_try_send_seq(shmq_producer_t* producer, uint64_t sequence, const void* data,
                                         size_t size) {
  if (producer == nullptr || bad_payload(data, size)) return null_argument("the producer or the payload is NULL");
  return status_of(producer->producer.try_send(sequence, bytes_of(data, size)));
}

shmq_status_t shmq_producer_send_seq(shmq_producer_t* producer, uint64_t sequence, const void* data, size_t size,
                                     int64_t timeout_ns) {
  if (producer == nullptr || bad_payload(data, size)) return null_argument("the producer or the payload is NULL");
  return status_of(producer->producer.send(sequence, bytes_of(data, size), timeout_of(timeout_ns)));
}

shmq_status_t shmq_producer_send_confirm(shmq_producer_t* producer, uint64_t sequence, const void* data,
                                         size_t size, shmq_confirm_t confirm, int64_t timeout_ns,
                                         uint64_t* sent_sequence) {
  if (producer == nullptr || bad_payload(data, size)) return null_argument("the producer or the payload is NULL");
  if (confirm != SHMQ_CONFIRM_SHARED && confirm != SHMQ_CONFIRM_DURABLE)
    return fail(SHMQ_INVALID_ARGUMENT, "confirm must be SHMQ_CONFIRM_SHARED or SHMQ_CONFIRM_DURABLE");
  shmq::Producer& p = producer->producer;
  const auto how = confirm == SHMQ_CONFIRM_DURABLE ? shmq::Confirm::Durable : shmq::Confirm::Shared;
  const std::uint64_t before = p.last_sequence();
  const shmq::Status status = sequence == 0 ? p.send(bytes_of(data, size), how, timeout_of(timeout_ns))
                                            : p.send(sequence, bytes_of(data, size), how, timeout_of(timeout_ns));
  if (sent_sequence != nullptr) *sent_sequence = committed_sequence(p, before, sequence);
  return status_of(status);
}

shmq_status_t shmq_producer_wait_durable(shmq_producer_t* producer, int64_t timeout_ns) {
  if (producer == nullptr) return null_argument("the producer is NULL");
  return status_of(producer->producer.wait_durable(timeout_of(timeout_ns)));
}

shmq_status_t shmq_producer_try_claim(shmq_producer_t* producer, uint64_t sequence, size_t size, void** buffer) {
  if (producer == nullptr || buffer == nullptr) return null_argument("the producer or buffer is NULL");
  shmq::Producer& p = producer->producer;
  const shmq::Status status = sequence == 0 ? p.try_claim(size) : p.try_claim(sequence, size);
  *buffer = status == shmq::Status::Ok ? p.claimed().data() : nullptr;
  return status_of(status);
}

shmq_status_t shmq_producer_claim(shmq_producer_t* producer, size_t size, int64_t timeout_ns, void** buffer) {
  if (producer == nullptr || buffer == nullptr) return null_argument("the producer or buffer is NULL");
  shmq::Producer& p = producer->producer;
  const shmq::Status status = p.claim(size, timeout_of(timeout_ns));
  *buffer = status == shmq::Status::Ok ? p.claimed().data() : nullptr;
  return status_of(status);
}

shmq_status_t shmq_producer_try_claim_batch(shmq_producer_t* producer, const size_t* sizes, size_t count,
                                            size_t* claimed) {
  return claim_batch_with(producer, sizes, count, claimed, [&](std::span<const std::size_t> s, shmq::Status& status) {
    return producer->producer.try_claim_batch(s, status);
  });
}

shmq_status_t shmq_producer_claim_batch(shmq_producer_t* producer, const size_t* sizes, size_t count,
                                        int64_t timeout_ns, size_t* claimed) {
  return claim_batch_with(producer, sizes, count, claimed, [&](std::span<const std::size_t> s, shmq::Status& status) {
    return producer->producer.claim_batch(s, timeout_of(timeout_ns), status);
  });
}

size_t shmq_producer_claimed_count(const shmq_producer_t* producer) {
  return producer == nullptr ? 0 : producer->producer.claimed_count();
}

shmq_status_t shmq_producer_claimed(shmq_producer_t* producer, size_t index, void** buffer, size_t* size) {
  if (buffer != nullptr) *buffer = nullptr;
  if (size != nullptr) *size = 0;
  if (producer == nullptr) return null_argument("the producer is NULL");
  const std::size_t count = producer->producer.claimed_count();
  if (count == 0) return fail(SHMQ_INVALID_ARGUMENT, "no claim is open");
  if (index >= count) {
    return guarded([&] {  // the message allocates
      return fail(SHMQ_INVALID_ARGUMENT, "record " + std::to_string(index) + " is past the open claim's " +
                                             std::to_string(count) + (count == 1 ? " record" : " records"));
    });
  }
  const std::span<std::byte> record = producer->producer.claimed(index);
  if (buffer != nullptr) *buffer = record.data();
  if (size != nullptr) *size = record.size();
  return SHMQ_OK;
}

shmq_status_t shmq_producer_commit(shmq_producer_t* producer, uint64_t* position) {
  if (producer == nullptr) return null_argument("the producer is NULL");
  if (producer->producer.claimed_count() == 0) return fail(SHMQ_INVALID_ARGUMENT, "commit without a claim");
  const std::uint64_t committed = producer->producer.commit();
  if (position != nullptr) *position = committed;
  return SHMQ_OK;
}

void shmq_producer_abort(shmq_producer_t* producer) {
  if (producer != nullptr) producer->producer.abort();
}

}  // extern "C"
