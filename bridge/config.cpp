#include "config.hpp"

#include <charconv>
#include <fstream>

#include <nlohmann/json.hpp>

namespace shmq::bridge {
namespace {

using nlohmann::json;

std::string required_string(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key) || !object[key].is_string() || object[key].get<std::string>().empty())
    throw SetupError(where + ": \"" + key + "\" (a non-empty string) is required");
  return object[key].get<std::string>();
}

std::string optional_string(const json& object, const char* key, const std::string& where,
                            std::string fallback = {}) {
  if (!object.contains(key)) return fallback;
  if (!object[key].is_string()) throw SetupError(where + ": \"" + key + "\" must be a string");
  return object[key].get<std::string>();
}

template <class Int>
Int optional_int(const json& object, const char* key, const std::string& where, Int fallback, Int min, Int max) {
  if (!object.contains(key)) return fallback;
  if (!object[key].is_number_integer()) throw SetupError(where + ": \"" + key + "\" must be an integer");
  const auto value = object[key].get<long long>();
  if (value < static_cast<long long>(min) || value > static_cast<long long>(max))
    throw SetupError(where + ": \"" + key + "\" must be within " + std::to_string(min) + ".." + std::to_string(max));
  return static_cast<Int>(value);
}

std::chrono::milliseconds optional_duration(const json& object, const char* key, const std::string& where,
                                            std::chrono::milliseconds fallback) {
  if (!object.contains(key)) return fallback;
  if (!object[key].is_string()) throw SetupError(where + ": \"" + key + "\" must be a duration string like \"2m\"");
  return parse_duration(object[key].get<std::string>());
}

void check_keys(const json& object, std::initializer_list<const char*> known, const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) throw SetupError(where + ": unknown key \"" + key + "\"");
  }
}

}  // namespace

std::chrono::milliseconds parse_duration(const std::string& text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string unit(end, text.data() + text.size());
  double ms = -1;
  if (error == std::errc{} && value >= 0) {
    if (unit.empty() || unit == "s") ms = value * 1000;
    else if (unit == "ms") ms = value;
    else if (unit == "m") ms = value * 60'000;
    else if (unit == "h") ms = value * 3'600'000;
  }
  if (ms < 0) throw SetupError("'" + text + "' is not a duration (like 500ms, 30s, 2m, 1h)");
  return std::chrono::milliseconds(static_cast<long long>(ms));
}

void load_config_file(const std::string& path, Config& config) {
  std::ifstream in(path);
  if (!in) throw SetupError("cannot read config file " + path);
  const json doc = json::parse(in, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw SetupError(path + ": not a JSON object");
  check_keys(doc, {"nats", "metrics", "log_level", "log_file", "connect_timeout", "drain_timeout", "routes"}, path);
  config.nats.url = optional_string(doc, "nats", path, config.nats.url);
  config.metrics = optional_string(doc, "metrics", path, config.metrics);
  config.log_level = optional_string(doc, "log_level", path, config.log_level);
  config.log_file = optional_string(doc, "log_file", path, config.log_file);
  config.nats.connect_timeout = optional_duration(doc, "connect_timeout", path, config.nats.connect_timeout);
  config.drain = optional_duration(doc, "drain_timeout", path, config.drain);
  if (!doc.contains("routes") || !doc["routes"].is_array()) throw SetupError(path + ": \"routes\" (an array) is required");
  int index = 0;
  for (const json& r : doc["routes"]) {
    const std::string where = path + ": routes[" + std::to_string(index++) + "]";
    if (!r.is_object()) throw SetupError(where + ": not an object");
    const std::string direction = required_string(r, "direction", where);
    if (direction == "out") {
      check_keys(r, {"direction", "queue", "group", "subject", "stream", "duplicate_window", "replicas",
                     "max_in_flight", "ack_wait"}, where);
      OutRoute o;
      o.queue = required_string(r, "queue", where);
      o.group = required_string(r, "group", where);
      o.subject = required_string(r, "subject", where);
      o.stream = optional_string(r, "stream", where);
      o.duplicate_window = std::chrono::duration_cast<std::chrono::seconds>(
          optional_duration(r, "duplicate_window", where, o.duplicate_window));
      o.replicas = optional_int(r, "replicas", where, o.replicas, 1, 5);
      o.max_in_flight = optional_int<std::uint32_t>(r, "max_in_flight", where, o.max_in_flight, 1, 65536);
      o.ack_wait = optional_duration(r, "ack_wait", where, o.ack_wait);
      config.out.push_back(std::move(o));
    } else if (direction == "in") {
      check_keys(r, {"direction", "stream", "filter", "queue", "producer"}, where);
      InRoute i;
      i.stream = required_string(r, "stream", where);
      i.filter = optional_string(r, "filter", where);
      i.queue = required_string(r, "queue", where);
      i.producer = optional_string(r, "producer", where, "bridge." + i.stream);
      config.in.push_back(std::move(i));
    } else {
      throw SetupError(where + ": \"direction\" must be \"out\" or \"in\", not \"" + direction + "\"");
    }
  }
}

}  // namespace shmq::bridge
