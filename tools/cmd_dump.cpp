// shmq dump: the ring (or a durable queue's journal), record by record, for
// debugging. Read-only.
#include <algorithm>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/journal.hpp"
#include "shmq/producer.hpp"
#include "text.hpp"

namespace shmq::tools {
namespace {

constexpr std::size_t kPage = 1000;  // records copied per call
constexpr std::size_t kPreviewChars = 60;

std::string_view kind_name(RecordKind kind) {
  switch (kind) {
    case RecordKind::Data:
      return "data";
    case RecordKind::Padding:
      return "padding";
    case RecordKind::Skipped:
      return "skipped";
    case RecordKind::Uncommitted:
      return "uncommitted";
  }
  return "unknown";
}

std::string_view payload_text(const RecordInfo& record) {
  return {reinterpret_cast<const char*>(record.payload.data()), record.payload.size()};
}

void print_json(const RecordInfo& record) {
  nlohmann::ordered_json line;
  line["position"] = record.position;
  line["kind"] = kind_name(record.kind);
  line["length"] = record.length;
  if (record.kind == RecordKind::Data) {
    line["producer_id"] = record.producer_id;
    line["seq"] = record.sequence;
    line["timestamp"] = rfc3339(record.timestamp_ns);
    const std::string_view payload = payload_text(record);
    if (is_utf8(payload)) {
      line["payload"] = payload;
    } else {
      line["payload"] = base64(payload);
      line["encoding"] = "base64";
    }
  }
  std::cout << line.dump() << '\n';
}

void print_text(const RecordInfo& record) {
  if (record.kind != RecordKind::Data) {
    std::cout << fmt::format("{:>12}  {:<11}  {:>8}\n", record.position, kind_name(record.kind),
                             record.length);
    return;
  }
  std::cout << fmt::format("{:>12}  {:<11}  {:>8}  {:>8}  {:>10}  {}  {}\n", record.position,
                           kind_name(record.kind), record.length, record.producer_id,
                           record.sequence, rfc3339(record.timestamp_ns),
                           printable(payload_text(record), kPreviewChars));
}

void print_header(const QueueInfo& info) {
  std::cout << fmt::format(
      "queue '{}' in namespace '{}': capacity {}, max message {}, head {}, tail {}, {} messages\n",
      info.name, info.ns, human_bytes(info.capacity), human_bytes(info.max_message),
      info.head_position, info.tail_position, info.messages_in_use);
  std::cout << fmt::format("{:>12}  {:<11}  {:>8}  {:>8}  {:>10}  {:<30}  {}\n", "POSITION", "KIND",
                           "LENGTH", "PRODUCER", "SEQ", "TIMESTAMP", "PAYLOAD");
}

}  // namespace

// The journal's data records, from shmqd's data directory. Read-only: it
// reads alongside a running shmqd and cuts nothing (a torn tail just ends it).
void dump_journal(const DumpArgs& args, const std::string& ns) {
  validate_name(args.queue);
  const std::filesystem::path data_dir = data_dir_or_daemons(args.data_dir, ns);
  const std::filesystem::path dir = journal_dir(data_dir, args.queue);
  if (!std::filesystem::is_directory(dir)) {
    throw Failure(fmt::format("no journal of queue '{}' in {} (is it durable? is --data-dir shmqd's?)", args.queue,
                              data_dir.string()));
  }
  const auto print = args.json ? print_json : print_text;
  if (!args.json) {
    std::cout << fmt::format("journal of queue '{}' in {}\n", args.queue, dir.string());
    std::cout << fmt::format("{:>12}  {:<11}  {:>8}  {:>8}  {:>10}  {:<30}  {}\n", "POSITION", "KIND", "LENGTH",
                             "PRODUCER", "SEQ", "TIMESTAMP", "PAYLOAD");
  }
  std::uint64_t left = args.limit.value_or(UINT64_MAX);
  try {
    auto cursor = JournalCursor::open(args.queue, data_dir, args.from.value_or(0));
    for (auto entry = cursor.next(); entry && left > 0; entry = cursor.next(), --left) {
      RecordInfo info;
      info.position = entry->position;
      info.length = static_cast<std::uint32_t>(entry->payload.size());
      info.producer_id = entry->producer_id;
      info.sequence = entry->sequence;
      info.timestamp_ns = entry->timestamp_ns;
      info.payload = std::move(entry->payload);
      print(info);
    }
  } catch (const Error& e) {
    throw Failure(fmt::format("journal of queue '{}': {}", args.queue, e.what()));
  }
}

namespace {

// Prints the records as they are committed, from `from` on, until `limit`
// records, `timeout` without one, or a stop signal. Read-only: it joins no
// group, so it holds nothing of the ring (and misses records released before
// it could read them: it cannot fall behind the way a group would stall the ring).
void follow(const Queue& queue, const DumpArgs& args, std::uint64_t from) {
  constexpr auto kPoll = std::chrono::milliseconds(10);
  const auto print = args.json ? print_json : print_text;
  std::uint64_t left = args.limit.value_or(UINT64_MAX);
  auto last_record = Clock::now();
  while (left > 0 && stop_signal() == 0) {
    bool printed = false;
    for (const RecordInfo& record :
         queue.records(from, static_cast<std::size_t>(std::min<std::uint64_t>(left, kPage)))) {
      if (record.kind == RecordKind::Uncommitted) break;  // not yet: wait for its commit
      print(record);
      printed = true;
      from = record.position + 1;
      --left;
    }
    std::cout.flush();
    if (printed) {
      last_record = Clock::now();
      continue;
    }
    if (args.timeout && Clock::now() - last_record >= *args.timeout) return;
    std::this_thread::sleep_for(kPoll);
  }
}

}  // namespace

int run_dump(const DumpArgs& args, const std::string& ns) {
  if (args.journal) {
    dump_journal(args, ns);
    return kExitOk;
  }
  const Queue queue = Queue::open_read_only(args.queue, ns);
  const QueueInfo info = queue.info();
  if (!args.json) print_header(info);
  if (args.follow) {
    {
      const StopSignals stop_signals;
      follow(queue, args, args.from.value_or(info.tail_position));
    }
    if (const int signal = stop_signal(); signal != 0) std::raise(signal);  // ends as by the signal, as recv
    return kExitOk;
  }
  const auto print = args.json ? print_json : print_text;
  std::uint64_t left = args.limit.value_or(UINT64_MAX);
  std::uint64_t from = args.from.value_or(0);
  while (left > 0) {
    const auto page =
        queue.records(from, static_cast<std::size_t>(std::min<std::uint64_t>(left, kPage)));
    for (const RecordInfo& record : page) print(record);
    left -= page.size();
    if (page.size() < kPage || page.back().kind == RecordKind::Uncommitted) break;
    from = page.back().position + 1;
  }
  return kExitOk;
}

}  // namespace shmq::tools
