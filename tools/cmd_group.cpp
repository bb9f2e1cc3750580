// shmq group list|delete|seek: a queue's consumer groups, and who holds its ring.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/consumer.hpp"
#include "shmq/journal.hpp"
#include "text.hpp"

namespace shmq::tools {
namespace {

std::size_t live_members(const GroupInfo& group) {
  return static_cast<std::size_t>(
      std::count_if(group.consumers.begin(), group.consumers.end(), [](const ConsumerInfo& c) { return c.alive; }));
}

const GroupInfo* find_group(const QueueInfo& info, std::string_view name) {
  const auto found = std::find_if(info.groups.begin(), info.groups.end(),
                                  [&](const GroupInfo& g) { return g.name == name; });
  return found == info.groups.end() ? nullptr : &*found;
}

// The group that holds the ring longest: the lowest acked position among the
// groups that read the ring (a durable queue's group reading its journal holds none).
const GroupInfo* slowest_group(const QueueInfo& info) {
  const GroupInfo* slowest = nullptr;
  for (const GroupInfo& g : info.groups) {
    if (g.reading_journal) continue;
    if (slowest == nullptr || g.acked_position < slowest->acked_position) slowest = &g;
  }
  return slowest;
}

Failure no_such_group(const std::string& queue, const std::string& group) {
  return Failure(fmt::format("no group '{}' in queue '{}' (shmq group list {} shows them)", group, queue, queue));
}

}  // namespace

std::string describe_ring_holder(const Queue& queue) {
  const QueueInfo info = queue.info();
  const GroupInfo* slowest = slowest_group(info);
  if (info.durable && info.journal_written < info.tail_position &&
      (slowest == nullptr || info.journal_written <= slowest->acked_position)) {
    return fmt::format("shmqd has journaled only up to position {} of {}, and a durable queue keeps what it has not "
                       "journaled (is shmqd running? see shmq-stat)",
                       info.journal_written, info.tail_position);
  }
  if (slowest == nullptr) {
    return "no consumer group reads the queue, and a queue keeps its messages for the groups to come; receive them "
           "(shmq recv) or start a group at the newest message (shmq recv --from newest)";
  }
  const std::size_t live = live_members(*slowest);
  return fmt::format(
      "group '{}' holds it: acked up to position {}, {} message(s) ({}) behind, {}", slowest->name,
      slowest->acked_position, slowest->lag_messages, human_bytes(slowest->lag_bytes),
      live == 0 ? fmt::format("no live member (to skip what it has not read: shmq group seek {0} {1} --to newest; "
                              "if nothing reads it any more: shmq group delete {0} {1})",
                              info.name, slowest->name)
                : fmt::format("{} live member(s)", live));
}

int run_group_list(const GroupArgs& args, const std::string& ns) {
  const QueueInfo info = Queue::open_read_only(args.queue, ns).info();
  const GroupInfo* slowest = slowest_group(info);
  if (args.json) {
    nlohmann::ordered_json groups = nlohmann::ordered_json::array();
    for (const GroupInfo& g : info.groups) {
      groups.push_back({{"name", g.name},
                        {"exclusive", g.exclusive},
                        {"members", g.consumers.size()},
                        {"live_members", live_members(g)},
                        {"read_position", g.read_position},
                        {"acked_position", g.acked_position},
                        {"lag_messages", g.lag_messages},
                        {"lag_bytes", g.lag_bytes},
                        {"in_flight", g.in_flight},
                        {"reading_journal", g.reading_journal},
                        {"slowest", &g == slowest}});
    }
    std::cout << groups.dump() << '\n';
    return kExitOk;
  }
  std::cout << fmt::format("{:<24} {:>7} {:>5} {:>12} {:>12} {:>9} {:>10} {:>9}\n", "GROUP", "MEMBERS", "LIVE",
                           "READ", "ACKED", "LAG MSGS", "LAG BYTES", "IN FLIGHT");
  for (const GroupInfo& g : info.groups) {
    std::cout << fmt::format("{:<24} {:>7} {:>5} {:>12} {:>12} {:>9} {:>10} {:>9}{}\n", g.name, g.consumers.size(),
                             live_members(g), g.read_position, g.acked_position, g.lag_messages,
                             human_bytes(g.lag_bytes), g.in_flight,
                             g.reading_journal ? "  (reading the journal)"
                             : &g == slowest && g.lag_bytes > 0 ? "  (slowest: holds the ring)"
                                                                 : "");
  }
  if (info.groups.empty()) std::cerr << fmt::format("queue '{}' has no consumer group\n", info.name);
  return kExitOk;
}

int run_group_delete(const GroupArgs& args, const std::string& ns) {
  Queue queue = Queue::open(args.queue, ns);
  validate_name(args.group, "group");
  try {
    queue.delete_group(args.group);
  } catch (const Error& e) {
    if (e.code() == Errc::NotFound) throw no_such_group(args.queue, args.group);
    if (e.code() == Errc::NameInUse) {
      throw Failure(fmt::format("{}; stop its consumers first (shmq-stat {} shows them)", e.what(), args.queue));
    }
    throw;
  }
  return kExitOk;
}

int run_group_seek(const GroupArgs& args, const std::string& ns) {
  Queue queue = Queue::open(args.queue, ns);
  validate_name(args.group, "group");
  const QueueInfo before = queue.info();
  const GroupInfo* group = find_group(before, args.group);
  if (group == nullptr) throw no_such_group(args.queue, args.group);
  if (const std::size_t live = live_members(*group); live > 0) {
    throw Failure(fmt::format("group '{}' has {} live member(s): a seek moves only a group no consumer is in; stop "
                              "them first (shmq-stat {} shows them)",
                              args.group, live, args.queue));
  }
  // No library call moves a group: it goes, and comes back where asked. The
  // delete refuses too if a consumer joined meanwhile.
  try {
    queue.delete_group(args.group);
  } catch (const Error& e) {
    if (e.code() == Errc::NameInUse) throw Failure(fmt::format("{}; the group did not move", e.what()));
    if (e.code() == Errc::NotFound) throw no_such_group(args.queue, args.group);
    throw;
  }
  ConsumerOptions options;
  options.prefetch = 1;
  options.start = args.to.at;
  options.start_position = args.to.position;
  options.start_time_ns = args.to.time_ns;
  if (!args.data_dir.empty()) {
    options.journal_dir = journal_dir(args.data_dir, args.queue).string();
  }
  {
    const Consumer consumer = Consumer::join(queue, args.group, options);
    if (!consumer.created_group()) {
      throw Failure(fmt::format("group '{}' was created again by a consumer that joined meanwhile, at its own "
                                "start; run the seek again once it has left",
                                args.group));
    }
  }
  const QueueInfo after = queue.info();  // find_group points into it
  if (const GroupInfo* moved = find_group(after, args.group); moved != nullptr) {
    std::cout << fmt::format("group '{}' of queue '{}' now reads from position {}: {} message(s) ({}) to go\n",
                             args.group, args.queue, moved->read_position, moved->lag_messages,
                             human_bytes(moved->lag_bytes));
  }
  return kExitOk;
}

}  // namespace shmq::tools
