// The C API's queue info: shmq::QueueInfo, the figures shmq-stat shows, as C
// structs whose strings and arrays live as long as the snapshot.
#include <memory>
#include <vector>

#include "capi/capi.hpp"

namespace shmq::capi {
namespace {

// shmq_queue_info's allocation: the C view first, so that the pointer the
// caller holds is the holder's (both members standard-layout).
struct InfoHolder {
  shmq_queue_info_t view;
  struct Storage {
    QueueInfo info;  // owns the strings the views point at
    std::vector<shmq_producer_info_t> producers;
    std::vector<shmq_group_info_t> groups;
    std::vector<std::vector<shmq_consumer_info_t>> consumers;  // per group
    std::vector<shmq_group_info_ext_t> groups_ext;
    std::vector<std::unique_ptr<bool[]>> consumer_active;  // per group
    std::vector<shmq_group_delivery_info_t> groups_delivery;
  }* storage;
};

shmq_producer_info_t producer_view(const ProducerInfo& p) noexcept {
  return {p.id, p.name.c_str(), p.pid, p.attached, p.alive, p.last_sequence, p.messages, p.bytes};
}

shmq_consumer_info_t consumer_view(const ConsumerInfo& c) noexcept {
  return {c.index, c.pid, c.alive, c.in_flight, c.received, c.acked};
}

shmq_group_info_t group_view(const GroupInfo& g, const std::vector<shmq_consumer_info_t>& consumers) noexcept {
  return {g.name.c_str(), g.read_position, g.reading_journal, g.acked_position, g.lag_bytes,     g.lag_messages,
          g.in_flight,    g.delivered,     g.acked,           g.redelivered,    consumers.size(), consumers.data()};
}

shmq_group_delivery_info_t delivery_view(const GroupInfo& g) noexcept {
  shmq_group_delivery_info_t v{};
  v.dead_lettered = g.dead_lettered;
  v.dropped = g.dropped;
  v.expired = g.expired;
  v.rejected = g.rejected;
  v.nacked = g.nacked;
  v.lease_expired = g.lease_expired;
  return v;
}

shmq_queue_info_t queue_view(const InfoHolder::Storage& s) noexcept {
  const QueueInfo& i = s.info;
  shmq_queue_info_t v{};
  v.name = i.name.c_str();
  v.ns = i.ns.c_str();
  v.capacity = i.capacity;
  v.max_message = i.max_message;
  v.durable = i.durable;
  v.mode = i.mode;
  v.uid = i.uid;
  v.gid = i.gid;
  v.daemon_pid_namespace = i.daemon_pid_namespace;
  v.creator_pid = i.creator_pid;
  v.created_unix_ns = i.created_unix_ns;
  v.head_position = i.head_position;
  v.tail_position = i.tail_position;
  v.bytes_in_use = i.bytes_in_use;
  v.messages_in_use = i.messages_in_use;
  v.messages_total = i.messages_total;
  v.journal_written = i.journal_written;
  v.journal_synced = i.journal_synced;
  v.journal_error = i.journal_error;
  v.journal_trouble = static_cast<shmq_journal_trouble_t>(i.journal_trouble);
  v.groups_to_journal = i.groups_to_journal;
  v.holes_skipped = i.holes_skipped;
  v.redelivered = i.redelivered;
  v.clients_reaped = i.clients_reaped;
  v.daemon_pid = i.daemon_pid;
  v.daemon_alive = i.daemon_alive;
  v.producer_count = s.producers.size();
  v.producers = s.producers.data();
  v.group_count = s.groups.size();
  v.groups = s.groups.data();
  v.groups_ext = s.groups_ext.data();
  v.groups_delivery = s.groups_delivery.data();
  v.policy = policy_view(i.policy, i.policy.dead_letter);
  return v;
}

static_assert(SHMQ_JOURNAL_SETUP_FAILING == static_cast<int>(JournalTrouble::SetupFailing));
static_assert(SHMQ_JOURNAL_CONFLICT == static_cast<int>(JournalTrouble::Conflict));

}  // namespace
}  // namespace shmq::capi

using namespace shmq::capi;

extern "C" {

shmq_status_t shmq_queue_info(const shmq_queue_t* queue, shmq_queue_info_t** out) {
  if (queue == nullptr || out == nullptr) return null_argument("the queue or out is NULL");
  *out = nullptr;
  return guarded([&] {
    auto s = std::make_unique<InfoHolder::Storage>();
    s->info = queue->queue.info();
    for (const shmq::ProducerInfo& p : s->info.producers) s->producers.push_back(producer_view(p));
    // Every group's consumers first: the group views point into these vectors.
    for (const shmq::GroupInfo& g : s->info.groups) {
      auto& consumers = s->consumers.emplace_back();
      for (const shmq::ConsumerInfo& c : g.consumers) consumers.push_back(consumer_view(c));
    }
    for (std::size_t i = 0; i < s->info.groups.size(); ++i)
      s->groups.push_back(group_view(s->info.groups[i], s->consumers[i]));
    for (const shmq::GroupInfo& g : s->info.groups) {
      auto& active = s->consumer_active.emplace_back(std::make_unique<bool[]>(g.consumers.size()));
      for (std::size_t c = 0; c < g.consumers.size(); ++c) active[c] = g.consumers[c].active;
      s->groups_ext.push_back({g.exclusive, active.get()});
      s->groups_delivery.push_back(delivery_view(g));
    }
    auto* holder = new InfoHolder{queue_view(*s), s.get()};
    s.release();
    *out = &holder->view;
    return SHMQ_OK;
  });
}

void shmq_queue_info_free(shmq_queue_info_t* info) {
  if (info == nullptr) return;
  auto* holder = reinterpret_cast<InfoHolder*>(info);
  delete holder->storage;
  delete holder;
}

}  // extern "C"
