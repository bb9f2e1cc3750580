#include "stat_report.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "text.hpp"

namespace shmq::tools {
namespace {

// "", or why the journal is not being kept.
std::string journal_failing(const QueueInfo& q) {
  switch (q.journal_trouble) {
    case JournalTrouble::Conflict:
      return "  NOT JOURNALED: the segment does not continue the journal in shmqd's data directory (see its log)";
    case JournalTrouble::SetupFailing:
      return fmt::format("  FAILING: cannot set the journal up ({}), retrying",
                         std::strerror(q.journal_error != 0 ? q.journal_error : EIO));
    case JournalTrouble::None:
      break;
  }
  return q.journal_error != 0 ? fmt::format("  FAILING: {}", std::strerror(q.journal_error)) : "";
}

const char* journal_trouble_name(JournalTrouble t) {
  switch (t) {
    case JournalTrouble::SetupFailing: return "setup_failing";
    case JournalTrouble::Conflict: return "conflict";
    case JournalTrouble::None: break;
  }
  return "";
}

using nlohmann::ordered_json;

// Per-second rates of the counters of `current` against `previous`.
class Rates {
 public:
  Rates(const Sample& current, const Sample* previous) {
    if (previous == nullptr) return;
    seconds_ = std::chrono::duration<double>(current.taken - previous->taken).count();
    for (const stats::QueueSnapshot& queue : previous->queues) {
      if (!queue.info) continue;
      counters_[key(queue.name, "", "")] = queue.info->messages_total;
      for (const auto& p : queue.info->producers) {
        counters_[key(queue.name, "p", p.name)] = p.messages;
      }
      for (const auto& g : queue.info->groups) {
        counters_[key(queue.name, "g", g.name)] = g.acked;
      }
    }
  }

  [[nodiscard]] std::optional<double> queue(const QueueInfo& q) const {
    return rate(key(q.name, "", ""), q.messages_total);
  }
  [[nodiscard]] std::optional<double> producer(const QueueInfo& q, const ProducerInfo& p) const {
    return rate(key(q.name, "p", p.name), p.messages);
  }
  [[nodiscard]] std::optional<double> group(const QueueInfo& q, const GroupInfo& g) const {
    return rate(key(q.name, "g", g.name), g.acked);
  }

 private:
  static std::string key(std::string_view queue, std::string_view kind, std::string_view name) {
    return fmt::format("{}/{}/{}", queue, kind, name);
  }

  [[nodiscard]] std::optional<double> rate(const std::string& key, std::uint64_t now) const {
    const auto found = counters_.find(key);
    if (found == counters_.end() || seconds_ <= 0 || now < found->second) return std::nullopt;
    return static_cast<double>(now - found->second) / seconds_;
  }

  double seconds_ = 0;
  std::map<std::string, std::uint64_t> counters_;
};

std::string rate_text(std::optional<double> rate) {
  return rate ? fmt::format("{:.1f}", *rate) : "-";
}

ordered_json rate_json(std::optional<double> rate) {
  return rate ? ordered_json(*rate) : ordered_json();
}

// A user's or group's name where the host's databases have one, else its number.
std::string user_text(std::uint32_t uid) {
  std::vector<char> buf(4096);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->pw_name;
  return std::to_string(uid);
}

std::string group_text(std::uint32_t gid) {
  std::vector<char> buf(4096);
  group entry{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) return found->gr_name;
  return std::to_string(gid);
}

std::string pid_text(std::int64_t pid) { return pid > 0 ? std::to_string(pid) : "-"; }

// " in another pid namespace" when `pid_ns` is not ours: its pid names
// another process here, or none.
std::string other_pid_namespace(std::uint64_t pid_ns) {
  static const std::uint64_t ours = [] {
    struct stat st {};
    return ::stat("/proc/self/ns/pid", &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
  }();
  return pid_ns != 0 && pid_ns != ours ? fmt::format(" in pid namespace {}", pid_ns) : "";
}

std::string producer_state(const ProducerInfo& p) {
  if (!p.attached) return "detached";
  return p.alive ? "alive" : "dead";
}

// What the table says after a group's figures: its mode, when exclusive (who
// reads, how many stand by), and whether it reads the journal.
std::string group_notes(const GroupInfo& g) {
  std::string notes;
  if (g.exclusive) {
    const auto active = std::find_if(g.consumers.begin(), g.consumers.end(),
                                     [](const ConsumerInfo& c) { return c.active; });
    const std::size_t standing_by = g.consumers.size() - (active == g.consumers.end() ? 0 : 1);
    notes += active == g.consumers.end()
                 ? fmt::format("  exclusive: no active member, {} standby", standing_by)
                 : fmt::format("  exclusive: active member {} (pid {}), {} standby", active->index,
                               pid_text(active->pid), standing_by);
  }
  if (g.reading_journal) notes += "  (reading the journal)";
  return notes;
}

// The delivery policy's work for a group (GroupInfo's counters), shown
// under its line when the queue has a policy or the group nacked.
bool has_policy_counts(const GroupInfo& g) {
  return g.dead_lettered != 0 || g.dropped != 0 || g.expired != 0 || g.rejected != 0 || g.nacked != 0 ||
         g.lease_expired != 0;
}

std::string policy_counts_line(const GroupInfo& g) {
  return fmt::format("    dead-lettered {}, dropped {} (of which expired {}, rejected {}), nacked {}, lease expired {}\n",
                     g.dead_lettered, g.dropped, g.expired, g.rejected, g.nacked, g.lease_expired);
}

// A duration of the policy in milliseconds (a fraction below 1 ms), null for none.
ordered_json milliseconds_or_null(std::chrono::nanoseconds duration) {
  if (duration.count() == 0) return nullptr;
  if (duration.count() % 1'000'000 == 0) return duration.count() / 1'000'000;
  return static_cast<double>(duration.count()) / 1e6;
}

void table_queue(std::string& out, const QueueInfo& q, const Rates& rates) {
  const double percent =
      q.capacity ? 100.0 * static_cast<double>(q.bytes_in_use) / static_cast<double>(q.capacity)
                 : 0;
  out +=
      fmt::format("QUEUE {}  capacity {}  max message {}{}  mode {:04o} {}:{}  daemon {}\n", q.name,
                  human_bytes(q.capacity), human_bytes(q.max_message), q.durable ? "  durable" : "", q.mode,
                  user_text(q.uid), group_text(q.gid),
                  q.daemon_alive ? fmt::format("up (pid {}{})", q.daemon_pid, other_pid_namespace(q.daemon_pid_namespace))
                                 : "down");
  out += fmt::format(
      "  in use {} ({:.1f}%), {} messages  total {} messages  in {} msgs/s  head {}  tail {}\n",
      human_bytes(q.bytes_in_use), percent, q.messages_in_use, q.messages_total,
      rate_text(rates.queue(q)), q.head_position, q.tail_position);
  if (q.durable) {
    out += fmt::format("  journal: written lag {}, synced lag {}, groups switched to it {}{}\n",
                       human_bytes(stats::bytes_behind(q.tail_position, q.journal_written)),
                       human_bytes(stats::bytes_behind(q.tail_position, q.journal_synced)), q.groups_to_journal,
                       journal_failing(q));
  }
  if (q.policy.any()) out += fmt::format("  delivery policy: {}\n", describe_policy(q.policy));
  out += fmt::format("  recovery: holes skipped {}, redelivered {}, clients reaped {}\n",
                     q.holes_skipped, q.redelivered, q.clients_reaped);
  if (!q.producers.empty()) {
    out += fmt::format("  {:<24} {:>4} {:>8} {:<8} {:>12} {:>12} {:>10}\n", "PRODUCER", "ID", "PID",
                       "STATE", "LAST SEQ", "MESSAGES", "MSGS/S");
  }
  for (const ProducerInfo& p : q.producers) {
    out += fmt::format("  {:<24} {:>4} {:>8} {:<8} {:>12} {:>12} {:>10}\n", p.name, p.id,
                       pid_text(p.pid), producer_state(p), p.last_sequence, p.messages,
                       rate_text(rates.producer(q, p)));
  }
  if (!q.groups.empty()) {
    out += fmt::format("  {:<24} {:>7} {:>12} {:>12} {:>9} {:>10} {:>9} {:>11} {:>10}\n", "GROUP",
                       "MEMBERS", "READ", "ACKED", "LAG MSGS", "LAG BYTES", "IN FLIGHT",
                       "REDELIVERED", "ACKS/S");
  }
  for (const GroupInfo& g : q.groups) {
    out += fmt::format("  {:<24} {:>7} {:>12} {:>12} {:>9} {:>10} {:>9} {:>11} {:>10}{}\n", g.name,
                       g.consumers.size(), g.read_position, g.acked_position, g.lag_messages,
                       human_bytes(g.lag_bytes), g.in_flight, g.redelivered,
                       rate_text(rates.group(q, g)), group_notes(g));
    if (q.policy.any() || has_policy_counts(g)) out += policy_counts_line(g);
  }
}

ordered_json json_queue(const QueueInfo& q, const Rates& rates) {
  ordered_json out;
  out["name"] = q.name;
  out["readable"] = true;
  out["capacity"] = q.capacity;
  out["max_message"] = q.max_message;
  out["durable"] = q.durable;
  // The delivery policy: null where a part is not set.
  out["max_deliveries"] = q.policy.max_deliveries == 0 ? ordered_json() : ordered_json(q.policy.max_deliveries);
  out["dead_letter"] = q.policy.dead_letter.empty() ? ordered_json() : ordered_json(q.policy.dead_letter);
  out["ack_timeout_ms"] = milliseconds_or_null(q.policy.ack_timeout);
  out["ttl_ms"] = milliseconds_or_null(q.policy.ttl);
  out["mode"] = fmt::format("{:04o}", q.mode);
  out["owner"] = user_text(q.uid);
  out["uid"] = q.uid;
  out["group"] = group_text(q.gid);
  out["gid"] = q.gid;
  out["creator_pid"] = q.creator_pid;
  out["created"] = rfc3339(q.created_unix_ns);
  out["head_position"] = q.head_position;
  out["tail_position"] = q.tail_position;
  out["bytes_in_use"] = q.bytes_in_use;
  out["messages_in_use"] = q.messages_in_use;
  out["messages_total"] = q.messages_total;
  out["messages_per_s"] = rate_json(rates.queue(q));
  if (q.durable) {
    out["journal"] = {{"written", q.journal_written},
                      {"synced", q.journal_synced},
                      {"written_lag_bytes", stats::bytes_behind(q.tail_position, q.journal_written)},
                      {"synced_lag_bytes", stats::bytes_behind(q.tail_position, q.journal_synced)},
                      {"error", q.journal_error != 0 ? std::strerror(q.journal_error) : ""},
                      {"trouble", journal_trouble_name(q.journal_trouble)},
                      {"groups_to_journal", q.groups_to_journal}};
  }
  out["recovery"] = {{"holes_skipped", q.holes_skipped},
                     {"redelivered", q.redelivered},
                     {"clients_reaped", q.clients_reaped}};
  out["daemon"] = {{"pid", q.daemon_pid}, {"pid_namespace", q.daemon_pid_namespace}, {"alive", q.daemon_alive}};
  out["producers"] = ordered_json::array();
  for (const ProducerInfo& p : q.producers) {
    out["producers"].push_back({{"name", p.name},
                                {"id", p.id},
                                {"pid", p.pid},
                                {"pid_namespace", p.pid_namespace},
                                {"attached", p.attached},
                                {"alive", p.alive},
                                {"last_sequence", p.last_sequence},
                                {"messages", p.messages},
                                {"bytes", p.bytes},
                                {"messages_per_s", rate_json(rates.producer(q, p))}});
  }
  out["groups"] = ordered_json::array();
  for (const GroupInfo& g : q.groups) {
    ordered_json consumers = ordered_json::array();
    for (const ConsumerInfo& c : g.consumers) {
      consumers.push_back({{"index", c.index},
                           {"pid", c.pid},
                           {"pid_namespace", c.pid_namespace},
                           {"alive", c.alive},
                           {"active", c.active},
                           {"in_flight", c.in_flight},
                           {"received", c.received},
                           {"acked", c.acked}});
    }
    out["groups"].push_back({{"name", g.name},
                             {"exclusive", g.exclusive},
                             {"members", g.consumers.size()},
                             {"read_position", g.read_position},
                             {"reading_journal", g.reading_journal},
                             {"acked_position", g.acked_position},
                             {"lag_messages", g.lag_messages},
                             {"lag_bytes", g.lag_bytes},
                             {"in_flight", g.in_flight},
                             {"delivered", g.delivered},
                             {"acked", g.acked},
                             {"redelivered", g.redelivered},
                             {"dead_lettered", g.dead_lettered},
                             {"dropped", g.dropped},
                             {"expired", g.expired},
                             {"rejected", g.rejected},
                             {"nacked", g.nacked},
                             {"lease_expired", g.lease_expired},
                             {"acks_per_s", rate_json(rates.group(q, g))},
                             {"consumers", consumers}});
  }
  return out;
}

}  // namespace

Sample take_sample(const std::string& ns, const std::string& queue) {
  Sample sample{ns, {}, std::chrono::steady_clock::now(), 0, shm_dir().string()};
  sample.unix_ns = unix_now_ns();
  if (queue.empty()) {
    sample.queues = stats::snapshot_namespace(ns);
  } else {
    sample.queues.push_back(stats::snapshot_queue(queue, ns));
  }
  return sample;
}

std::string render_table(const Sample& current, const Sample* previous) {
  const Rates rates(current, previous);
  std::string out = fmt::format("shmq-stat  namespace '{}'  in {}  {}  {} queue{}\n", current.ns, current.shm_dir,
                                rfc3339(current.unix_ns).substr(0, 19) + "Z", current.queues.size(),
                                current.queues.size() == 1 ? "" : "s");
  if (current.queues.empty()) out += "(no queues)\n";
  for (const stats::QueueSnapshot& queue : current.queues) {
    out += '\n';
    if (queue.info) {
      table_queue(out, *queue.info, rates);
    } else {
      out += fmt::format("QUEUE {}  UNREADABLE: {}\n", queue.name, queue.error);
    }
  }
  return out;
}

ordered_json render_json(const Sample& current, const Sample* previous) {
  const Rates rates(current, previous);
  ordered_json out;
  out["namespace"] = current.ns;
  out["shm_dir"] = current.shm_dir;
  out["time"] = rfc3339(current.unix_ns);
  out["rate_interval_s"] =
      previous
          ? ordered_json(std::chrono::duration<double>(current.taken - previous->taken).count())
          : ordered_json();
  out["queues"] = ordered_json::array();
  for (const stats::QueueSnapshot& queue : current.queues) {
    if (queue.info) {
      out["queues"].push_back(json_queue(*queue.info, rates));
    } else {
      out["queues"].push_back({{"name", queue.name}, {"readable", false}, {"error", queue.error}});
    }
  }
  return out;
}

}  // namespace shmq::tools
