// shmq-stat's views of a sample of queues: a text table and JSON, with rates
// computed against an earlier sample when there is one.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shmq/stats/metrics.hpp"

namespace shmq::tools {

struct Sample {
  std::string ns;
  std::vector<stats::QueueSnapshot> queues;
  std::chrono::steady_clock::time_point taken;
  std::uint64_t unix_ns = 0;  // CLOCK_REALTIME when taken
  std::string shm_dir;        // where the segments were read (shm_dir())
};

// Reads the namespace's queues, or only `queue` when it is not empty.
[[nodiscard]] Sample take_sample(const std::string& ns, const std::string& queue);

// `previous` may be null: rates are then unknown ("-" in the table, null in JSON).
[[nodiscard]] std::string render_table(const Sample& current, const Sample* previous);
[[nodiscard]] nlohmann::ordered_json render_json(const Sample& current, const Sample* previous);

}  // namespace shmq::tools
