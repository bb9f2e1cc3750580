// What the bridge runs: routes from the command line or from a JSON file
// (--config; the schema is in docs/bridge.md).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "nats_client.hpp"
#include "routes.hpp"

namespace shmq::bridge {

struct Config {
  ConnectOptions nats;
  std::string metrics;  // HOST:PORT, empty for none
  std::string log_level = "info";
  std::string log_file;
  std::chrono::milliseconds drain{5000};  // SIGTERM: how long out routes wait for acks
  std::vector<OutRoute> out;
  std::vector<InRoute> in;
};

// Parses a duration: a number with a unit (ms, s, m, h), or plain seconds.
// Throws SetupError.
[[nodiscard]] std::chrono::milliseconds parse_duration(const std::string& text);

// Reads a JSON config file into `config` (fields absent keep their value).
// Throws SetupError naming the file and what is wrong.
void load_config_file(const std::string& path, Config& config);

}  // namespace shmq::bridge
