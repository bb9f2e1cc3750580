// shmq create, delete and list.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"

namespace shmq::tools {

int run_create(const CreateArgs& args, const std::string& ns) {
  QueueOptions options = args.options;
  constexpr std::uint32_t kDefaultMaxMessage = 64 << 10;
  options.max_message = args.max_message.value_or(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(kDefaultMaxMessage, options.capacity / 8)));
  (void)Queue::create(args.queue, options, ns);
  return kExitOk;
}

int run_delete(const std::string& queue, const std::string& ns, const std::string& data_dir) {
  validate_name(queue);
  // A durable queue's journal goes too, or the next shmqd would rebuild the
  // queue from it. First: a running shmqd sets aside the journal of a queue
  // whose segment vanishes (docs/journal.md).
  std::filesystem::path dir;
  try {
    dir = (data_dir.empty() ? default_data_dir(ns) : std::filesystem::path(data_dir)) / "journal" / queue;
  } catch (const Error&) {
    // No data directory can be named (no HOME): then there is no journal either.
  }
  std::error_code ec;
  const bool journal = !dir.empty() && std::filesystem::remove_all(dir, ec) > 0;
  if (ec) throw Failure("cannot remove the journal " + dir.string() + ": " + ec.message());
  const bool deleted = Queue::remove(queue, ns);
  if (!deleted && !journal) {
    throw Failure("queue '" + queue + "' in namespace '" + effective_namespace(ns) + "' not found");
  }
  if (journal) std::cerr << "removed the journal " << dir.string() << '\n';
  return kExitOk;
}

int run_list(bool json, const std::string& ns) {
  std::vector<std::string> names = Queue::list(ns);
  std::sort(names.begin(), names.end());
  if (json) {
    std::cout << nlohmann::json(names).dump() << '\n';
  } else {
    for (const std::string& name : names) std::cout << name << '\n';
  }
  return kExitOk;
}

}  // namespace shmq::tools
