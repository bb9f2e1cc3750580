// shmq recv: print each message, then ack it.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/consumer.hpp"
#include "shmq/journal.hpp"
#include "recv_exec.hpp"
#include "text.hpp"

namespace shmq::tools {
namespace {

nlohmann::ordered_json name_or_null(std::string_view name) {
  return name.empty() ? nlohmann::ordered_json() : nlohmann::ordered_json(name);
}

// Made while the message is held, when its producer's name is the sender's.
// A dead letter shows where it came from, and its original payload.
std::string json_line(const Message& message) {
  nlohmann::ordered_json line;
  line["producer"] = name_or_null(message.producer());
  line["producer_id"] = message.producer_id;
  line["seq"] = message.sequence;
  line["position"] = message.position;
  line["timestamp"] = rfc3339(message.timestamp_ns);
  line["timestamp_ns"] = message.timestamp_ns;
  line["redelivered"] = message.redelivered;
  line["deliveries"] = message.deliveries;
  const std::optional<DeadLetter> origin = message.dead_letter();
  if (origin) {
    line["reason"] = to_string(origin->reason);
    line["origin_queue"] = origin->origin_queue;
    line["origin_group"] = origin->origin_group;
    line["origin_producer"] = name_or_null(origin->origin_producer);
    line["origin_seq"] = origin->origin_sequence;
    line["origin_position"] = origin->origin_position;
    line["origin_timestamp"] = rfc3339(origin->origin_timestamp_ns);
    line["origin_timestamp_ns"] = origin->origin_timestamp_ns;
    line["origin_deliveries"] = origin->deliveries;
  }
  const std::string_view payload = origin ? as_text(origin->payload) : message.text();
  if (is_utf8(payload)) {
    line["payload"] = payload;
  } else {
    line["payload"] = base64(payload);
    line["encoding"] = "base64";
  }
  return line.dump() + '\n';
}

// Text: the payload (a dead letter's original one, so that `shmq recv DLQ |
// shmq send QUEUE` sends dead letters back as they were).
void print(const Message& message, bool json) {
  const std::string text = json ? json_line(message) : std::string(as_text(payload_of(message))) + '\n';
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    throw Failure("writing the output failed; the message stays unacknowledged");
  }
}

void receive_messages(Consumer& consumer, const Queue& queue, const RecvArgs& args, const std::string& ns) {
  const ExecContext exec{args.exec, queue.name(), args.group, effective_namespace(ns),
                         queue.options().policy.dead_letter};
  using std::chrono::milliseconds;
  constexpr Duration kSlice = milliseconds(100);  // how soon a stop signal is noticed
  const auto idle_limit = args.timeout.value_or(Duration::max());
  auto last_arrival = Clock::now();
  for (std::uint64_t received = 0; !args.count || received < *args.count;) {
    if (stop_signal() != 0) return;
    const Duration idle = Clock::now() - last_arrival;
    if (idle >= idle_limit) return;
    Message message;
    const Status status = consumer.receive(message, std::min(kSlice, idle_limit - idle));
    if (status == Status::Timeout || status == Status::Empty) continue;
    if (status == Status::Deleted) {
      throw Failure(fmt::format("queue '{}' was deleted: nothing more will come", queue.name()));
    }
    if (status == Status::JournalUnreadable) {
      throw Failure(fmt::format("receive failed: {}: {}", to_string(status), consumer.journal_error()));
    }
    if (status != Status::Ok) throw Failure(fmt::format("receive failed: {}", to_string(status)));
    if (args.exec.empty()) {
      print(message, args.json);
      if (const Status acked = consumer.ack(message); acked != Status::Ok) {
        throw Failure(fmt::format("ack of position {} failed: {}", message.position, to_string(acked)));
      }
    } else {
      run_and_settle(consumer, message, exec);
    }
    ++received;
    last_arrival = Clock::now();
  }
}

}  // namespace

// Says at once what would otherwise look like a hang or a short replay.
void warn_about_the_journal(const Queue& queue, const RecvArgs& args, const std::filesystem::path& journal) {
  if (!queue.durable()) return;
  if (!queue.info().daemon_alive) {
    warn("queue '" + args.queue + "' is durable: nothing is delivered until shmqd runs (consumers get only what "
         "it has synced to disk)");
  }
  std::error_code ec;
  if (args.from && !std::filesystem::exists(journal, ec)) {
    warn("no journal of queue '" + args.queue + "' in " + journal.string() +
         ": replaying only what the ring holds (is --data-dir shmqd's?)");
  }
}

int run_recv(const RecvArgs& args, const std::string& ns) {
  const Queue queue = Queue::open(args.queue, ns);
  ConsumerOptions options;
  options.prefetch = 1;  // each message is acked before the next is taken
  std::filesystem::path journal;
  try {
    journal = journal_dir(data_dir_or_daemons(args.data_dir, ns), args.queue);
    options.journal_dir = journal.string();
  } catch (const Error&) {
    // no data directory can be named (no HOME): a group that must read the journal says so
  }
  warn_about_the_journal(queue, args, journal);
  options.exclusive = args.exclusive;
  if (args.from) {
    options.start = args.from->at;
    options.start_position = args.from->position;
    options.start_time_ns = args.from->time_ns;
  }
  {
    const StopSignals stop_signals;
    Consumer consumer = Consumer::join(queue, args.group, options);
    if (args.from && !consumer.created_group()) {
      warn("group '" + args.group + "' exists; --from applies only to a new group and is ignored");
    }
    if (!consumer.active()) {
      note("another member reads exclusive group '" + args.group + "': standing by until it exits or dies");
    }
    receive_messages(consumer, queue, args, ns);
  }
  if (const int signal = stop_signal(); signal != 0) std::raise(signal);  // default action again
  return kExitOk;
}

}  // namespace shmq::tools
