#include "dead_letters.hpp"

#include <utility>

#include "workers.hpp"

namespace shmq::torture {

using ull = unsigned long long;

DeadLetterReader::DeadLetterReader(std::string ns, std::string queue, const std::string& log_path)
    : ns_(std::move(ns)), queue_(std::move(queue)), log_(log_path) {}

bool DeadLetterReader::open() {
  if (consumer_) return true;
  try {
    queue_handle_.emplace(Queue::open(queue_, ns_));
    consumer_.emplace(Consumer::join(*queue_handle_, kDeadLetterGroup));
    return true;
  } catch (const Error&) {
    consumer_.reset();
    queue_handle_.reset();
    return false;
  }
}

void DeadLetterReader::close() {
  consumer_.reset();
  queue_handle_.reset();
}

std::string DeadLetterReader::poll(int most) {
  if (!open()) return {};
  for (int n = 0; n < most; ++n) {
    Message m;
    const Status s = consumer_->try_receive(m);
    if (s == Status::Empty || s == Status::Timeout) return {};
    if (s != Status::Ok) return "the dead-letter queue's receive returned " + std::string(to_string(s));
    const auto d = m.dead_letter();
    if (!d) return "a message without an origin in the dead-letter queue at position " + std::to_string(m.position);
    const std::string_view original(reinterpret_cast<const char*>(d->payload.data()), d->payload.size());
    const auto origin = payload_origin(original, d->origin_sequence);
    const std::string mover(m.producer());
    log_.line("M %s %s %s %llu %llu %s %u %s %llu %s %llu %llu %llu %d", d->origin_queue.c_str(), d->origin_group.c_str(),
              d->origin_producer.empty() ? "-" : d->origin_producer.c_str(), static_cast<ull>(d->origin_sequence),
              static_cast<ull>(d->origin_position), std::string(to_string(d->reason)).c_str(), d->deliveries,
              origin ? origin->name.c_str() : "?", static_cast<ull>(origin ? origin->process : 0),
              mover.empty() ? "-" : mover.c_str(), static_cast<ull>(m.sequence), static_cast<ull>(m.timestamp_ns),
              static_cast<ull>(d->origin_timestamp_ns), m.redelivered ? 1 : 0);
    const Status acked = consumer_->ack(m);
    if (acked != Status::Ok) return "the dead-letter queue's ack returned " + std::string(to_string(acked));
  }
  return {};
}

}  // namespace shmq::torture
