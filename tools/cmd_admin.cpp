// shmq create, delete and list.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/journal.hpp"
#include "text.hpp"

namespace shmq::tools {

namespace {

// What a queue's segment takes of shm_dir() (Queue::segment_bytes): the ring,
// the tables, and per consumer group entry a state word and a delivery word per 64-byte chunk of
// the ring, whether or not the group exists.
std::string segment_size_line(const std::string& queue, const QueueOptions& o) {
  const std::uint64_t segment_bytes = Queue::segment_bytes(o);
  const std::uint64_t per_group = o.capacity / 64 * 16;  // an 8-byte state word and delivery word per 64-byte chunk
  const std::uint64_t rest = segment_bytes - o.capacity - per_group * o.max_groups;
  return fmt::format("created queue '{}': {} ring, {} of {} ({} groups x {} of delivery state: fewer "
                     "with --max-groups; {} of tables)\n",
                     queue, human_bytes(o.capacity), human_bytes(segment_bytes), shm_dir().string(), o.max_groups,
                     human_bytes(per_group), human_bytes(rest));
}

// Queue::create, whose refusal of the dead-letter queue (missing, this queue
// itself, a loop, too small a max message) exits 1, not 2: the arguments are
// well-formed, the queues named are not fit. Every check of the options
// alone runs first (Queue::segment_bytes), so that a bad value still exits 2.
void create_with_policy(const std::string& queue, const QueueOptions& options, const std::string& ns) {
  (void)Queue::segment_bytes(options);
  try {
    (void)Queue::create(queue, options, ns);
  } catch (const Error& e) {
    if (options.policy.dead_letter.empty() || e.code() != Errc::InvalidArgument) throw;
    throw Failure(e.what());
  }
}

}  // namespace

int run_create(const CreateArgs& args, const std::string& ns) {
  QueueOptions options = args.options;
  constexpr std::uint32_t kDefaultMaxMessage = 64 << 10;
  options.max_message = args.max_message.value_or(static_cast<std::uint32_t>(
      std::min<std::uint64_t>(kDefaultMaxMessage, options.capacity / 8)));
  if (!args.group.empty()) {
    try {
      options.group = parse_group(args.group);
    } catch (const ParseError& e) {
      throw Failure(std::string("--group: ") + e.what());
    }
  }
  create_with_policy(args.queue, options, ns);
  std::cout << segment_size_line(args.queue, options);
  if (options.policy.any()) std::cout << "  delivery policy: " << describe_policy(options.policy) << '\n';
  if (options.group != kNoGroup && (options.mode & 0060) == 0) {
    warn(fmt::format("mode {:o} gives group '{}' no access to queue '{}': add --mode 660 for its members to use it",
                     options.mode, args.group, args.queue));
  }
  if ((options.mode & S_IWOTH) != 0) {
    warn(fmt::format("mode {:o} lets every user of this host write to queue '{}', and so corrupt or delete what "
                     "it holds (docs/security.md); {:o} keeps other users out",
                     options.mode, args.queue, options.mode & 0770));
  }
  return kExitOk;
}

namespace {

// What deleting the queue would destroy that no group has acknowledged: its
// messages from the segment's counts when it opens; otherwise (the segment
// gone, or half-built) any record its journal holds.
std::string unacked_messages(const std::string& queue, const std::string& ns,
                             const std::filesystem::path& data_dir) {
  try {
    const QueueInfo q = Queue::open_read_only(queue, ns).info();
    std::uint64_t unacked = 0;
    for (const GroupInfo& g : q.groups) unacked = std::max(unacked, g.lag_messages);
    if (q.groups.empty()) unacked = q.messages_in_use;  // kept for the groups to come (replay)
    return unacked == 0 ? "" : std::to_string(unacked) + " message(s) no group has acknowledged";
  } catch (const Error&) {
    try {
      if (!JournalCursor::open(queue, data_dir).next()) return "";
    } catch (const Error&) {
      // damaged: it may still hold messages
    }
    return "messages (its queue is not there to tell which are acknowledged)";
  }
}

}  // namespace

int run_delete(const DeleteArgs& args, const std::string& ns) {
  validate_name(args.queue);
  // A durable queue's journal goes too, or the next shmqd would rebuild the
  // queue from it. First: a running shmqd sets aside the journal of a queue
  // whose segment vanishes (docs/journal.md).
  std::filesystem::path data_dir;
  std::filesystem::path dir;
  try {
    data_dir = data_dir_or_daemons(args.data_dir, ns);
    dir = journal_dir(data_dir, args.queue);
  } catch (const Error&) {
    // No data directory can be named (no HOME): then there is no journal either.
  }
  std::error_code ec;
  const bool has_journal = !dir.empty() && std::filesystem::exists(dir, ec);
  if (has_journal && !args.force) {
    const std::string unacked = unacked_messages(args.queue, ns, data_dir);
    if (!unacked.empty()) {
      throw Failure("queue '" + args.queue + "' is durable: deleting it destroys its journal " + dir.string() +
                    ", which holds " + unacked + "; add --force to destroy them");
    }
  }
  const bool journal = has_journal && std::filesystem::remove_all(dir, ec) > 0;
  if (ec) throw Failure("cannot remove the journal " + dir.string() + ": " + ec.message());
  const bool deleted = Queue::remove(args.queue, ns);
  if (!deleted && !journal) {
    throw Failure("queue '" + args.queue + "' in namespace '" + effective_namespace(ns) + "' not found");
  }
  if (journal) std::cerr << "removed the journal " << dir.string() << " and every message in it\n";
  return kExitOk;
}

int run_list(bool json, const std::string& ns) {
  std::vector<std::string> names = Queue::list(ns);
  std::sort(names.begin(), names.end());
  if (names.empty()) report_error("namespace '" + effective_namespace(ns) + "' has no queues");
  if (json) {
    std::cout << nlohmann::json(names).dump() << '\n';
  } else {
    for (const std::string& name : names) std::cout << name << '\n';
  }
  return kExitOk;
}

}  // namespace shmq::tools
