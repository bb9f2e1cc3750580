// The C API's queues: create, open, remove, options, names.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "capi/capi.hpp"

namespace shmq::capi {
namespace {

// A policy word the caller left out of range: refused, naming the option.
std::chrono::nanoseconds duration_from(std::int64_t ns, const char* what) {
  if (ns < 0)
    throw Error(Errc::InvalidArgument, std::string("delivery policy: ") + what + " " + std::to_string(ns) +
                                           " ns is negative (0: none)");
  return std::chrono::nanoseconds(ns);
}

DeliveryPolicy policy_from(const shmq_delivery_policy_t& c) {
  if (!reserved_zero(c.reserved))
    throw Error(Errc::InvalidArgument, "delivery policy: reserved words must be zero");
  DeliveryPolicy p;
  p.max_deliveries = c.max_deliveries;  // the library refuses more than kMaxDeliveriesLimit, naming it
  if (c.dead_letter != nullptr) p.dead_letter = c.dead_letter;
  p.ack_timeout = duration_from(c.ack_timeout_ns, "ack_timeout_ns");
  p.ttl = duration_from(c.ttl_ns, "ttl_ns");
  return p;
}

static_assert(SHMQ_MAX_DELIVERIES_LIMIT == kMaxDeliveriesLimit);
static_assert(SHMQ_DEAD_LETTER_OVERHEAD == kDeadLetterOverhead);
// `policy` took a reserved word: the struct keeps the size it had with three.
static_assert(sizeof(shmq_queue_options_t) ==
              offsetof(shmq_queue_options_t, group) + sizeof(std::int64_t) + 3 * sizeof(std::uint64_t));

QueueOptions options_from(const shmq_queue_options_t* c) {
  QueueOptions o;
  if (c == nullptr) return o;
  if (!reserved_zero(c->reserved)) throw Error(Errc::InvalidArgument, "queue options: reserved words must be zero");
  o.capacity = c->capacity;
  o.max_message = c->max_message;
  o.durable = c->durable;
  o.mode = static_cast<mode_t>(c->mode);
  o.max_producers = c->max_producers;
  o.max_groups = c->max_groups;
  o.max_consumers = c->max_consumers;
  if (c->group != SHMQ_NO_GROUP) {
    if (c->group < 0 || c->group >= static_cast<std::int64_t>(kNoGroup)) {
      throw Error(Errc::InvalidArgument, "queue options: group " + std::to_string(c->group) +
                                             " is not a group id (SHMQ_NO_GROUP: the creator's)");
    }
    o.group = static_cast<gid_t>(c->group);
  }
  if (c->policy != nullptr) o.policy = policy_from(*c->policy);
  return o;
}

// The policy is left NULL: shmq_queue_get_options points it at the handle's.
void options_to(const QueueOptions& o, shmq_queue_options_t* c) noexcept {
  *c = shmq_queue_options_t{};
  c->capacity = o.capacity;
  c->max_message = o.max_message;
  c->durable = o.durable;
  c->mode = static_cast<std::uint32_t>(o.mode);
  c->max_producers = o.max_producers;
  c->max_groups = o.max_groups;
  c->max_consumers = o.max_consumers;
  c->group = o.group == kNoGroup ? SHMQ_NO_GROUP : static_cast<std::int64_t>(o.group);
}

// Opens (or creates) a queue into *out with `make`, which returns a shmq::Queue.
template <class Make>
shmq_status_t make_queue(const char* name, shmq_queue_t** out, Make&& make) noexcept {
  if (out == nullptr) return null_argument("out is NULL");
  *out = nullptr;
  if (name == nullptr) return null_argument("the queue name is NULL");
  return guarded([&] {
    *out = new shmq_queue{make()};
    return SHMQ_OK;
  });
}

// shmq_queue_list's allocation: the C view first, so that the pointer the
// caller holds is the holder's (both members standard-layout).
struct NameList {
  shmq_name_list_t view;
  struct Storage {
    std::vector<std::string> names;
    std::vector<const char*> pointers;
  }* storage;
};

}  // namespace
}  // namespace shmq::capi

shmq_queue::shmq_queue(shmq::Queue q) : queue(std::move(q)) {
  const shmq::DeliveryPolicy p = queue.options().policy;
  dead_letter = p.dead_letter;
  policy = shmq::capi::policy_view(p, dead_letter);
}

using namespace shmq::capi;

extern "C" {

void shmq_delivery_policy_init(shmq_delivery_policy_t* policy) {
  if (policy != nullptr) *policy = shmq_delivery_policy_t{};
}

void shmq_queue_options_init(shmq_queue_options_t* options) {
  if (options != nullptr) options_to(shmq::QueueOptions{}, options);
}

shmq_status_t shmq_queue_create(const char* name, const shmq_queue_options_t* options, const char* ns,
                                shmq_queue_t** out) {
  return make_queue(name, out, [&] { return shmq::Queue::create(name, options_from(options), ns_of(ns)); });
}

shmq_status_t shmq_queue_open(const char* name, const char* ns, shmq_queue_t** out) {
  return make_queue(name, out, [&] { return shmq::Queue::open(name, ns_of(ns)); });
}

shmq_status_t shmq_queue_open_read_only(const char* name, const char* ns, shmq_queue_t** out) {
  return make_queue(name, out, [&] { return shmq::Queue::open_read_only(name, ns_of(ns)); });
}

shmq_status_t shmq_queue_open_or_create(const char* name, const shmq_queue_options_t* options, const char* ns,
                                        int64_t wait_for_rebuild_ms, shmq_queue_t** out) {
  // Negative: as long as it takes (a century, which steady_clock's deadline arithmetic holds).
  const auto wait = wait_for_rebuild_ms < 0 ? std::chrono::milliseconds(std::chrono::hours(24 * 365 * 100))
                                            : std::chrono::milliseconds(wait_for_rebuild_ms);
  return make_queue(name, out,
                    [&] { return shmq::Queue::open_or_create(name, options_from(options), ns_of(ns), wait); });
}

shmq_status_t shmq_queue_remove(const char* name, const char* ns, bool* existed) {
  if (name == nullptr) return null_argument("the queue name is NULL");
  return guarded([&] {
    const bool removed = shmq::Queue::remove(name, ns_of(ns));
    if (existed != nullptr) *existed = removed;
    return SHMQ_OK;
  });
}

void shmq_queue_close(shmq_queue_t* queue) { delete queue; }

const char* shmq_queue_name(const shmq_queue_t* queue) {
  return queue == nullptr ? "" : queue->queue.name().c_str();
}

const char* shmq_queue_namespace(const shmq_queue_t* queue) {
  return queue == nullptr ? "" : queue->queue.ns().c_str();
}

shmq_status_t shmq_queue_get_options(const shmq_queue_t* queue, shmq_queue_options_t* out) {
  if (queue == nullptr || out == nullptr) return null_argument("the queue or out is NULL");
  options_to(queue->queue.options(), out);
  out->policy = &queue->policy;
  return SHMQ_OK;
}

bool shmq_queue_deleted(const shmq_queue_t* queue) { return queue != nullptr && queue->queue.deleted(); }

shmq_status_t shmq_queue_delete_group(shmq_queue_t* queue, const char* group) {
  if (queue == nullptr || group == nullptr) return null_argument("the queue or the group name is NULL");
  return guarded([&] {
    queue->queue.delete_group(group);
    return SHMQ_OK;
  });
}

shmq_status_t shmq_queue_producer_name(const shmq_queue_t* queue, uint32_t producer_id, char* buf, size_t size,
                                       size_t* length) {
  if (queue == nullptr) return null_argument("the queue is NULL");
  return guarded([&] {
    const std::uint32_t entries = queue->queue.options().max_producers;
    if (producer_id >= entries)
      return fail(SHMQ_INVALID_ARGUMENT, "producer id " + std::to_string(producer_id) + " is beyond the table (" +
                                             std::to_string(entries) + " entries)");
    return copy_out(queue->queue.producer_name(producer_id), buf, size, length);
  });
}

shmq_status_t shmq_segment_bytes(const shmq_queue_options_t* options, uint64_t* out) {
  if (out == nullptr) return null_argument("out is NULL");
  return guarded([&] {
    *out = shmq::Queue::segment_bytes(options_from(options));
    return SHMQ_OK;
  });
}

shmq_status_t shmq_shm_dir(char* buf, size_t size, size_t* length) {
  return guarded([&] { return copy_out(shmq::shm_dir().string(), buf, size, length); });
}

shmq_status_t shmq_daemon_pid(const char* ns, int64_t* pid) {
  if (pid == nullptr) return null_argument("pid is NULL");
  *pid = 0;
  return guarded([&] {
    *pid = shmq::daemon_pid(ns_of(ns));
    return SHMQ_OK;
  });
}

shmq_status_t shmq_daemon_data_dir(const char* ns, char* buf, size_t size, size_t* length) {
  return guarded([&] { return copy_out(shmq::daemon_data_dir(ns_of(ns)).string(), buf, size, length); });
}

shmq_status_t shmq_queue_list(const char* ns, shmq_name_list_t** out) {
  if (out == nullptr) return null_argument("out is NULL");
  *out = nullptr;
  return guarded([&] {
    auto storage = std::make_unique<NameList::Storage>();
    storage->names = shmq::Queue::list(ns_of(ns));
    for (const std::string& n : storage->names) storage->pointers.push_back(n.c_str());
    auto* list = new NameList{{storage->names.size(), storage->pointers.data()}, storage.get()};
    storage.release();
    *out = &list->view;
    return SHMQ_OK;
  });
}

void shmq_name_list_free(shmq_name_list_t* list) {
  if (list == nullptr) return;
  auto* holder = reinterpret_cast<NameList*>(list);
  delete holder->storage;
  delete holder;
}

}  // extern "C"
