#include "stat_errors.hpp"

#include <filesystem>
#include <iostream>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "shmq/queue.hpp"
#include "shmq/stats/error_log.hpp"
#include "text.hpp"

namespace shmq::tools {
namespace {

nlohmann::ordered_json as_json(const std::vector<stats::ErrorEntry>& entries) {
  auto array = nlohmann::ordered_json::array();
  for (const stats::ErrorEntry& e : entries) {
    array.push_back({{"first", e.first}, {"last", e.last}, {"level", e.level}, {"count", e.count},
                     {"message", e.message}});
  }
  return array;
}

void print_table(const std::vector<stats::ErrorEntry>& entries) {
  std::size_t time_width = 10;
  for (const stats::ErrorEntry& e : entries) time_width = std::max({time_width, e.first.size(), e.last.size()});
  std::cout << fmt::format("{:<{}}  {:<{}}  {:>7}  {:<8}  {}\n", "FIRST SEEN", time_width, "LAST SEEN", time_width,
                           "COUNT", "LEVEL", "MESSAGE");
  for (const stats::ErrorEntry& e : entries) {
    std::cout << fmt::format("{:<{}}  {:<{}}  {:>7}  {:<8}  {}\n", e.first, time_width, e.last, time_width, e.count,
                             e.level, printable(e.message, 4 * stats::kErrorMessageBytes));
  }
}

}  // namespace

int print_daemon_errors(const std::string& ns, bool json) {
  const std::filesystem::path file = stats::error_log_path(daemon_data_dir(ns));
  std::vector<stats::ErrorEntry> entries;
  try {
    entries = stats::read_error_log(file);
  } catch (const std::system_error& e) {
    throw Failure(e.what());
  }
  if (json) {
    std::cout << as_json(entries).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  } else if (entries.empty()) {
    std::cout << fmt::format("no warnings or errors recorded by shmqd for namespace '{}' ({} {})\n", ns,
                             file.string(), std::filesystem::exists(file) ? "is empty" : "does not exist");
  } else {
    std::cout << fmt::format("shmqd's warnings and errors for namespace '{}' ({}), the latest last:\n", ns,
                             file.string());
    print_table(entries);
  }
  return kExitOk;
}

}  // namespace shmq::tools
