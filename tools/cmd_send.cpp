// shmq send: one message per input line.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>

#include <fmt/format.h>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/producer.hpp"

namespace shmq::tools {
namespace {

struct Line {
  std::uint64_t number = 0;
  std::optional<std::uint64_t> sequence;  // with --seq-prefix
  std::string_view payload;
};

Line split_sequence(std::uint64_t number, std::string_view text) {
  const auto tab = text.find('\t');
  if (tab == std::string_view::npos) {
    throw Failure(fmt::format("line {}: expected SEQ<TAB>PAYLOAD (--seq-prefix)", number));
  }
  try {
    return {number, parse_sequence(text.substr(0, tab)), text.substr(tab + 1)};
  } catch (const ParseError& e) {
    throw Failure(fmt::format("line {}: {}", number, e.what()));
  }
}

Failure too_large(const Line& line, std::uint32_t max_message) {
  return Failure(
      fmt::format("line {}: {} bytes is larger than the queue's maximum message size ({} bytes)",
                  line.number, line.payload.size(), max_message));
}

struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t duplicates = 0;
};

void send_line(Producer& producer, const Queue& queue, const Line& line, Duration timeout,
               Totals& totals) {
  if (line.payload.size() > queue.max_message()) throw too_large(line, queue.max_message());
  const auto payload = as_bytes(line.payload);
  const Status status = line.sequence ? producer.send(*line.sequence, payload, timeout)
                                      : producer.send(payload, timeout);
  switch (status) {
    case Status::Ok:
      ++totals.sent;
      return;
    case Status::Duplicate:
      ++totals.duplicates;
      return;
    case Status::TooLarge:
      throw too_large(line, queue.max_message());
    case Status::Timeout:
      throw Failure(fmt::format("line {}: no room in the ring before the timeout", line.number));
    default:
      throw Failure(fmt::format("line {}: send failed: {}", line.number, to_string(status)));
  }
}

}  // namespace

int run_send(const SendArgs& args, const std::string& ns) {
  std::ios::sync_with_stdio(false);
  const Queue queue = Queue::open(args.queue, ns);
  if (args.durable && !queue.durable()) {
    throw Failure(fmt::format(
        "queue '{}' is not durable; --durable needs a queue made with 'shmq create --durable'",
        args.queue));
  }
  std::ifstream file;
  if (!args.file.empty()) {
    file.open(args.file, std::ios::binary);
    if (!file) throw Failure("cannot read '" + args.file + "': " + std::strerror(errno));
  }
  std::istream& input = args.file.empty() ? std::cin : file;
  // Precise timestamps: scripts replay `recv --from TIME` against them.
  Producer producer = Producer::attach(queue, args.producer, {.precise_timestamps = true});
  const Duration timeout = args.timeout.value_or(kForever);

  Totals totals;
  const auto summary = [&] {
    std::cerr << fmt::format("sent {}, duplicates {}\n", totals.sent, totals.duplicates);
  };
  try {
    std::string text;
    for (std::uint64_t number = 1; std::getline(input, text); ++number) {
      const Line line = args.seq_prefix ? split_sequence(number, text) : Line{number, {}, text};
      send_line(producer, queue, line, timeout, totals);
    }
    if (input.bad()) throw Failure("reading the input failed");
    // One wait for all lines: shmqd's group commit syncs them together.
    if (args.durable && producer.wait_durable(timeout) != Status::Ok) {
      throw Failure("the journal did not confirm the lines within the timeout (is shmqd running? see shmq-stat)");
    }
  } catch (const Failure&) {
    summary();
    throw;
  }
  summary();
  return kExitOk;
}

}  // namespace shmq::tools
