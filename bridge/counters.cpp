#include "counters.hpp"

#include <sstream>

namespace shmq::bridge {
namespace {

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

Counters& CounterRegistry::add(std::string route, std::string direction) {
  std::lock_guard lock(mutex_);
  Counters& c = routes_.emplace_back();
  c.route = std::move(route);
  c.direction = std::move(direction);
  return c;
}

std::string CounterRegistry::prometheus_text() const {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    std::int64_t (*read)(const Counters&);
  };
  static const Metric kMetrics[] = {
      {"shmq_bridge_forwarded_total", "counter", "Messages delivered to the other side and confirmed there.",
       [](const Counters& c) { return static_cast<std::int64_t>(c.forwarded.load(std::memory_order_relaxed)); }},
      {"shmq_bridge_duplicates_dropped_total", "counter",
       "Messages the other side already held (JetStream's duplicate window, shmq's Duplicate).",
       [](const Counters& c) { return static_cast<std::int64_t>(c.duplicates.load(std::memory_order_relaxed)); }},
      {"shmq_bridge_redelivered_total", "counter",
       "Out: messages shmq redelivered (a bridge before this one died holding them).",
       [](const Counters& c) { return static_cast<std::int64_t>(c.redelivered.load(std::memory_order_relaxed)); }},
      {"shmq_bridge_republished_total", "counter",
       "Out: publishes sent again after an error or no acknowledgement in time.",
       [](const Counters& c) { return static_cast<std::int64_t>(c.republished.load(std::memory_order_relaxed)); }},
      {"shmq_bridge_reconnects_total", "counter", "Reconnections to nats-server.",
       [](const Counters& c) { return static_cast<std::int64_t>(c.reconnects.load(std::memory_order_relaxed)); }},
      {"shmq_bridge_in_flight", "gauge", "Out: messages published and not yet acknowledged by JetStream.",
       [](const Counters& c) { return c.in_flight.load(std::memory_order_relaxed); }},
      {"shmq_bridge_connected", "gauge", "1 while the route is connected to nats-server.",
       [](const Counters& c) { return c.connected.load(std::memory_order_relaxed); }},
  };
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  for (const Metric& m : kMetrics) {
    out << "# HELP " << m.name << ' ' << m.help << '\n' << "# TYPE " << m.name << ' ' << m.type << '\n';
    for (const Counters& c : routes_) {
      out << m.name << "{route=\"" << escape_label(c.route) << "\",direction=\"" << c.direction << "\"} "
          << m.read(c) << '\n';
    }
  }
  return out.str();
}

}  // namespace shmq::bridge
