#include "shmq/stats/metrics.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <cstring>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "shmq/version.hpp"

namespace shmq::stats {
namespace {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

std::string escape_label(std::string_view value) {
  std::string out;
  for (const char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    out += c == '\n' ? std::string("\\n") : std::string(1, c);
  }
  return out;
}

// Collects samples by metric family, so that each family's HELP and TYPE
// lines come once, followed by all its samples, in order of first use.
class Exposition {
 public:
  void gauge(std::string_view name, std::string_view help, const Labels& labels,
             std::uint64_t value) {
    add(name, help, "gauge", labels, value);
  }
  void counter(std::string_view name, std::string_view help, const Labels& labels,
               std::uint64_t value) {
    add(name, help, "counter", labels, value);
  }
  // A duration gauge, in seconds (a fraction where it has one).
  void gauge_seconds(std::string_view name, std::string_view help, const Labels& labels,
                     std::chrono::nanoseconds value) {
    add(name, help, "gauge", labels, static_cast<double>(value.count()) / 1e9);
  }

  [[nodiscard]] std::string text() const {
    std::string out;
    for (const Family& family : families_) {
      out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name, family.help, family.name,
                         family.type);
      out += family.samples;
    }
    return out;
  }

 private:
  struct Family {
    std::string_view name, help, type;
    std::string samples;
  };

  template <class Value>
  void add(std::string_view name, std::string_view help, std::string_view type,
           const Labels& labels, Value value) {
    auto found = std::find_if(families_.begin(), families_.end(),
                              [&](const Family& f) { return f.name == name; });
    if (found == families_.end()) found = families_.insert(found, Family{name, help, type, {}});
    std::string label_text;
    for (const auto& [key, label_value] : labels) {
      label_text +=
          fmt::format("{}{}=\"{}\"", label_text.empty() ? "" : ",", key, escape_label(label_value));
    }
    found->samples += fmt::format("{}{{{}}} {}\n", name, label_text, value);
  }

  std::vector<Family> families_;
};

// The errno's symbolic name ("ENOSPC"), a bounded label value.
std::string errno_label(int error) {
  if (error == 0) return {};
  const char* name = ::strerrorname_np(error);
  return name != nullptr ? name : fmt::format("E{}", error);
}

// The queue's delivery policy (DeliveryPolicy): 0 where a part is not set;
// the dead-letter queue as a label of an _info gauge, only where it is.
void add_policy(Exposition& out, const Labels& l, const DeliveryPolicy& p) {
  out.gauge("shmq_queue_max_deliveries", "Deliveries of a message to a group before it is dead-lettered; 0: no limit",
            l, p.max_deliveries);
  out.gauge_seconds("shmq_queue_ack_timeout_seconds",
                    "How long a member may hold a message before it goes back to its group; 0: no limit", l,
                    p.ack_timeout);
  out.gauge_seconds("shmq_queue_ttl_seconds",
                    "Age past which a message due to a group is dead-lettered (expired) instead; 0: no limit", l,
                    p.ttl);
  if (!p.dead_letter.empty()) {
    Labels with_target = l;
    with_target.emplace_back("dead_letter", p.dead_letter);
    out.gauge("shmq_queue_dead_letter_info", "Always 1: label dead_letter names the queue's dead-letter queue",
              with_target, 1);
  }
}

// What the delivery policy did to a group's messages (GroupInfo's counters).
void add_policy_counters(Exposition& out, const Labels& gl, const GroupInfo& g) {
  out.counter("shmq_group_dead_lettered_total", "Messages moved to the dead-letter queue (any reason)", gl,
              g.dead_lettered);
  out.counter("shmq_group_dropped_total",
              "Messages that would have been dead-lettered, dropped: the queue has no dead-letter queue", gl,
              g.dropped);
  out.counter("shmq_group_expired_total", "Messages past the queue's ttl when due (dead-lettered or dropped)", gl,
              g.expired);
  out.counter("shmq_group_rejected_total", "Messages a consumer rejected (dead-lettered or dropped)", gl,
              g.rejected);
  out.counter("shmq_group_nacked_total", "Messages a consumer gave back (nack)", gl, g.nacked);
  out.counter("shmq_group_lease_expired_total", "Messages taken back from a member held past the ack timeout", gl,
              g.lease_expired);
}

void add_queue(Exposition& out, std::string_view ns, const QueueInfo& q) {
  const Labels l{{"namespace", ns}, {"queue", q.name}};
  out.gauge("shmq_queue_readable", "1 when the segment could be read, 0 when not", l, 1);
  out.gauge("shmq_queue_capacity_bytes", "Ring size in bytes", l, q.capacity);
  out.gauge("shmq_queue_max_message_bytes", "Largest payload the queue takes", l, q.max_message);
  out.gauge("shmq_queue_durable", "1 for a durable (journaled) queue", l, q.durable ? 1 : 0);
  out.gauge("shmq_queue_in_use_bytes", "Ring bytes between head and tail", l, q.bytes_in_use);
  out.gauge("shmq_queue_messages_in_use", "Messages retained in the ring", l, q.messages_in_use);
  out.counter("shmq_queue_messages_total", "Messages ever committed", l, q.messages_total);
  out.gauge("shmq_queue_head_position_bytes", "Oldest retained log position (a byte offset)", l, q.head_position);
  out.gauge("shmq_queue_tail_position_bytes", "Next log position a producer claims (a byte offset)", l,
              q.tail_position);
  if (q.durable) {
    out.gauge("shmq_journal_written_lag_bytes",
              "Bytes committed but not yet written to the journal", l,
              bytes_behind(q.tail_position, q.journal_written));
    out.gauge("shmq_journal_synced_lag_bytes", "Bytes committed but not yet synced to disk", l,
              bytes_behind(q.tail_position, q.journal_synced));
    // No errno as a value: 1 with the errno's name as a label while failing.
    const std::string error = errno_label(q.journal_error);
    Labels failing = l;
    failing.emplace_back("errno", error);
    out.gauge("shmq_journal_failing",
              "1 while the journal's writes or syncs fail, errno naming why (ENOSPC: disk full); 0 when fine", failing,
              q.journal_error != 0 ? 1 : 0);
    // A state set: one series per state, 1 for the current one.
    constexpr std::pair<JournalTrouble, std::string_view> kStates[] = {
        {JournalTrouble::None, "ok"}, {JournalTrouble::SetupFailing, "setup_failing"},
        {JournalTrouble::Conflict, "conflict"}};
    for (const auto& [trouble, state] : kStates) {
      Labels stated = l;
      stated.emplace_back("state", state);
      out.gauge("shmq_journal_state",
                "1 for the journal's state: ok (no trouble; shmqd journals it when it runs); setup_failing (shmqd "
                "cannot set it up, retrying); conflict (the segment does not continue the journal in shmqd's data "
                "directory: not journaled)",
                stated, q.journal_trouble == trouble ? 1 : 0);
    }
    out.counter("shmq_journal_group_switches_total",
                "Times a group fell a ring behind and switched to reading the journal", l, q.groups_to_journal);
  }
  out.counter("shmq_queue_holes_skipped_total",
              "Claims of dead producers turned into skipped records", l, q.holes_skipped);
  out.counter("shmq_queue_redelivered_total", "Messages redelivered after a consumer died", l,
              q.redelivered);
  out.counter("shmq_queue_clients_reaped_total", "Table entries of dead clients freed", l,
              q.clients_reaped);
  out.gauge("shmq_daemon_up", "1 when the queue's shmqd is alive", l, q.daemon_alive ? 1 : 0);
  add_policy(out, l, q.policy);

  for (const ProducerInfo& p : q.producers) {
    // Only entries a process holds (alive, or dead and not yet reaped): a
    // detached entry, left by a producer that detached or was reaped, has
    // no series, so a namespace's producer label values are bounded by the
    // producers attached now, not by every name ever used. Its counters
    // continue from where they were if the name attaches again
    // (docs/metrics.md).
    if (!p.attached) continue;
    const Labels pl{{"namespace", ns}, {"queue", q.name}, {"producer", p.name}};
    out.gauge("shmq_producer_attached",
              "Always 1: a producer has series only while a process holds its entry", pl, 1);
    out.gauge("shmq_producer_alive", "1 while the producer's process runs", pl, p.alive ? 1 : 0);
    out.gauge("shmq_producer_last_sequence", "Last sequence committed by the producer", pl,
              p.last_sequence);
    out.counter("shmq_producer_messages_total", "Messages committed by the producer", pl,
                p.messages);
    out.counter("shmq_producer_bytes_total", "Payload bytes committed by the producer", pl,
                p.bytes);
  }
  for (const GroupInfo& g : q.groups) {
    const Labels gl{{"namespace", ns}, {"queue", q.name}, {"group", g.name}};
    out.gauge("shmq_group_members", "Consumers in the group", gl, g.consumers.size());
    out.gauge("shmq_group_exclusive",
              "1 for an exclusive group (one active member reads, the others stand by); 0 for a competing one",
              gl, g.exclusive ? 1 : 0);
    out.gauge("shmq_group_read_position_bytes", "Next log position handed out to the group (a byte offset)", gl,
              g.read_position);
    out.gauge("shmq_group_reading_journal",
              "1 while the group, a ring behind or replaying, reads the durable queue's journal", gl,
              g.reading_journal ? 1 : 0);
    out.gauge("shmq_group_acked_position_bytes",
              "Log position below which the group acked everything (a byte offset)", gl, g.acked_position);
    out.gauge("shmq_group_lag_messages", "Committed messages the group has not acked", gl,
              g.lag_messages);
    out.gauge("shmq_group_lag_bytes", "Ring bytes the group has not acked", gl, g.lag_bytes);
    out.gauge("shmq_group_in_flight_messages", "Messages received but not yet acked", gl, g.in_flight);
    out.counter("shmq_group_delivered_total", "Messages delivered to the group", gl, g.delivered);
    out.counter("shmq_group_acked_total", "Messages the group acked", gl, g.acked);
    out.counter("shmq_group_redelivered_total", "Messages redelivered to the group", gl,
                g.redelivered);
    add_policy_counters(out, gl, g);
    // One series per member (its index: at most --max-consumers per group).
    for (const ConsumerInfo& c : g.consumers) {
      const std::string index = std::to_string(c.index);
      const Labels cl{{"namespace", ns}, {"queue", q.name}, {"group", g.name}, {"consumer", index}};
      out.gauge("shmq_consumer_active",
                "1 while the member reads: always in a competing group; in an exclusive group, the active member "
                "(0: a standby)",
                cl, c.active ? 1 : 0);
    }
  }
}

}  // namespace

QueueSnapshot snapshot_queue(std::string_view name, std::string_view ns) {
  QueueSnapshot snapshot{std::string(name), std::nullopt, {}};
  try {
    snapshot.info = Queue::open_read_only(name, ns).info();
  } catch (const std::exception& e) {
    snapshot.error = e.what();
  }
  return snapshot;
}

std::vector<QueueSnapshot> snapshot_namespace(std::string_view ns) {
  std::vector<std::string> names = Queue::list(ns);
  std::sort(names.begin(), names.end());
  std::vector<QueueSnapshot> snapshots;
  for (const std::string& name : names) snapshots.push_back(snapshot_queue(name, ns));
  return snapshots;
}

std::string render_prometheus(const std::vector<QueueSnapshot>& queues, std::string_view ns) {
  const std::string name_space = ns.empty() ? current_namespace() : std::string(ns);
  Exposition out;
  out.gauge("shmq_build_info", "Always 1; the version of shmq that renders these metrics",
            {{"namespace", name_space}, {"version", SHMQ_VERSION_STRING}}, 1);
  for (const QueueSnapshot& queue : queues) {
    if (queue.info) {
      add_queue(out, name_space, *queue.info);
    } else {
      out.gauge("shmq_queue_readable", "1 when the segment could be read, 0 when not",
                {{"namespace", name_space}, {"queue", queue.name}}, 0);
    }
  }
  return out.text();
}

}  // namespace shmq::stats
