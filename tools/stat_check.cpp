#include "stat_check.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "parse.hpp"
#include "shmq/queue.hpp"
#include "shmq/status.hpp"
#include "text.hpp"

namespace shmq::tools {
namespace {

std::string bytes_text(std::uint64_t bytes) {
  return bytes < 1024 ? fmt::format("{} bytes", bytes)
                      : fmt::format("{} bytes ({})", bytes, human_bytes(bytes));
}

std::string seconds_text(double seconds) { return fmt::format("{:g}", seconds); }

// How old the group's oldest unacknowledged message is, in seconds; nothing
// when it has none (or none committed yet). The record at the acked position
// may be padding or a skipped hole: the first data record after it counts.
std::optional<double> oldest_unacked_age(const Queue& queue, const GroupInfo& g) {
  if (g.lag_messages == 0) return std::nullopt;
  for (const RecordInfo& r : queue.records(g.acked_position, 16)) {
    if (r.kind == RecordKind::Uncommitted) break;
    if (r.kind != RecordKind::Data) continue;
    const std::uint64_t now = unix_now_ns();
    return r.timestamp_ns < now ? static_cast<double>(now - r.timestamp_ns) / 1e9 : 0.0;
  }
  return std::nullopt;
}

// A queue no shmqd serves: a durable one always (its journal needs it);
// another with --require-daemon only while a shmqd runs that has not taken
// it (when none runs, check_queues says so once for the namespace).
void check_daemon(const QueueInfo& q, const CheckBounds& bounds, bool daemon_running, std::vector<std::string>& out) {
  if (q.daemon_alive || !(q.durable || (bounds.require_daemon && daemon_running))) return;
  const std::string why = q.durable ? "a durable queue's journal needs it" : "--require-daemon";
  out.push_back(q.daemon_pid != 0
                    ? fmt::format("{}: shmqd is down (pid {} is gone; {})", q.name, q.daemon_pid, why)
                    : fmt::format("{}: shmqd is down (never seen on this queue; {})", q.name, why));
}

void check_journal(const QueueInfo& q, std::vector<std::string>& out) {
  if (!q.durable) return;
  switch (q.journal_trouble) {
    case JournalTrouble::Conflict:
      out.push_back(fmt::format(
          "{}: journal not kept: the segment does not continue the journal in shmqd's data directory",
          q.name));
      return;
    case JournalTrouble::SetupFailing:
      out.push_back(fmt::format("{}: journal failing: cannot set it up ({})", q.name,
                                std::strerror(q.journal_error != 0 ? q.journal_error : EIO)));
      return;
    case JournalTrouble::None:
      break;
  }
  if (q.journal_error != 0) {
    out.push_back(fmt::format("{}: journal failing: {}", q.name, std::strerror(q.journal_error)));
  }
}

void check_groups(const Queue& queue, const QueueInfo& q, const CheckBounds& bounds,
                  std::vector<std::string>& out) {
  for (const GroupInfo& g : q.groups) {
    if (bounds.max_lag_messages && g.lag_messages > *bounds.max_lag_messages) {
      out.push_back(fmt::format("{}: group {} lags {} messages (bound {})", q.name, g.name,
                                g.lag_messages, *bounds.max_lag_messages));
    }
    if (bounds.max_lag_bytes && g.lag_bytes > *bounds.max_lag_bytes) {
      out.push_back(fmt::format("{}: group {} lags {} (bound {})", q.name, g.name,
                                bytes_text(g.lag_bytes), bytes_text(*bounds.max_lag_bytes)));
    }
    if (bounds.max_lag_seconds) {
      const auto age = oldest_unacked_age(queue, g);
      if (age && *age > *bounds.max_lag_seconds) {
        out.push_back(fmt::format(
            "{}: group {} lags {:.1f} seconds: its oldest unacknowledged message is that old "
            "(bound {} seconds)",
            q.name, g.name, *age, seconds_text(*bounds.max_lag_seconds)));
      }
    }
    for (const ConsumerInfo& c : g.consumers) {
      if (c.alive) continue;
      out.push_back(fmt::format(
          "{}: group {} consumer {} (pid {}) is dead and not reaped, holding {} in flight", q.name,
          g.name, c.index, c.pid, c.in_flight));
    }
  }
}

void check_producers(const QueueInfo& q, std::vector<std::string>& out) {
  for (const ProducerInfo& p : q.producers) {
    if (!p.attached || p.alive) continue;
    out.push_back(
        fmt::format("{}: producer {} (pid {}) is dead and not reaped", q.name, p.name, p.pid));
  }
}

void check_queue(const std::string& ns, const std::string& name, bool named, const CheckBounds& bounds,
                 bool daemon_running, std::vector<std::string>& out) {
  try {
    const Queue queue = Queue::open_read_only(name, ns);
    const QueueInfo q = queue.info();
    check_daemon(q, bounds, daemon_running, out);
    check_journal(q, out);
    check_producers(q, out);
    check_groups(queue, q, bounds, out);
  } catch (const Error& e) {
    if (e.code() != Errc::NotFound) {
      out.push_back(fmt::format("{}: unreadable: {}", name, e.what()));
    } else if (named) {
      out.push_back(fmt::format("{}: no such queue in namespace '{}'", name, ns));
    }  // else: deleted since it was listed; no longer a queue to check
  } catch (const std::exception& e) {
    out.push_back(fmt::format("{}: unreadable: {}", name, e.what()));
  }
}

}  // namespace

void parse_max_lag(const std::string& text, CheckBounds& bounds) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
  if (plain) {
    // A count of messages; parse_size() reads a plain number the same way.
    bounds.max_lag_messages = parse_size(text);
  } else {
    bounds.max_lag_bytes = parse_size(text);
  }
}

std::vector<std::string> check_queues(const std::string& ns, const std::vector<std::string>& queues,
                                      const CheckBounds& bounds) {
  std::vector<std::string> out;
  const bool daemon_running = daemon_pid(ns) != 0;
  if (bounds.require_daemon && !daemon_running) {
    out.push_back(fmt::format("namespace '{}': shmqd is not running (--require-daemon)", ns));
  }
  if (queues.empty()) {
    std::vector<std::string> names = Queue::list(ns);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) check_queue(ns, name, false, bounds, daemon_running, out);
  } else {
    for (const std::string& name : queues) check_queue(ns, name, true, bounds, daemon_running, out);
  }
  return out;
}

}  // namespace shmq::tools
