// shmq create, delete and list.
#include <algorithm>
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

int run_delete(const std::string& queue, const std::string& ns) {
  validate_name(queue);
  if (!Queue::remove(queue, ns)) {
    throw Failure("queue '" + queue + "' in namespace '" + effective_namespace(ns) + "' not found");
  }
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
