// shmq send: one message per input line.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>

#include <fmt/format.h>

#include "cli.hpp"
#include "commands.hpp"
#include "shmq/producer.hpp"

namespace shmq::tools {
namespace {

// How soon a blocked send, or a wait for the journal, notices a stop signal.
constexpr Duration kSlice = std::chrono::milliseconds(100);

struct Line {
  std::uint64_t number = 0;
  std::optional<std::uint64_t> sequence;  // with --seq-prefix
  std::string_view payload;
};

// The input's lines, read with read(2) so that a stop signal interrupts a
// read that waits for input (StopSignals' handler does not restart it).
class LineReader {
 public:
  explicit LineReader(int fd) : fd_(fd) {}

  // The next line, without its newline; false at the end of the input, on a
  // read error (failed()) or when a stop signal came (stop_signal()).
  bool next(std::string_view& line) {
    for (;;) {
      const auto newline = buffer_.find('\n', start_);
      if (newline != std::string::npos) {
        line = std::string_view(buffer_).substr(start_, newline - start_);
        start_ = newline + 1;
        return true;
      }
      if (eof_) {
        if (start_ == buffer_.size()) return false;
        line = std::string_view(buffer_).substr(start_);  // a last line without a newline
        start_ = buffer_.size();
        return true;
      }
      buffer_.erase(0, start_);
      start_ = 0;
      char chunk[64 << 10];
      const ssize_t count = ::read(fd_, chunk, sizeof chunk);
      if (count > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(count));
      } else if (count == 0) {
        eof_ = true;
      } else if (errno == EINTR) {
        if (stop_signal() != 0) return false;
      } else {
        error_ = errno;
        return false;
      }
    }
  }

  [[nodiscard]] int error() const noexcept { return error_; }

 private:
  int fd_;
  std::string buffer_;
  std::size_t start_ = 0;
  bool eof_ = false;
  int error_ = 0;
};

class Input {
 public:
  explicit Input(const std::string& file) {
    if (file.empty()) return;
    fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Failure("cannot read '" + file + "': " + std::strerror(errno));
  }
  Input(const Input&) = delete;
  Input& operator=(const Input&) = delete;
  ~Input() {
    if (fd_ != STDIN_FILENO) ::close(fd_);
  }
  [[nodiscard]] int fd() const noexcept { return fd_; }

 private:
  int fd_ = STDIN_FILENO;
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

std::string signal_name(int signal) { return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "a signal"; }

// A stop signal ended the command: after the summary, the process ends by it.
class Interrupted : public Failure {
 public:
  Interrupted(int signal, const std::string& what) : Failure("interrupted by " + signal_name(signal) + what) {}
};

struct Totals {
  std::uint64_t sent = 0;
  std::uint64_t duplicates = 0;
};

// Until `deadline` (none: forever) in slices, so that a stop signal is seen.
Status send_in_slices(Producer& producer, const Line& line, std::optional<Clock::time_point> deadline) {
  const auto payload = as_bytes(line.payload);
  for (;;) {
    Duration slice = kSlice;
    if (deadline) slice = std::clamp<Duration>(*deadline - Clock::now(), Duration::zero(), kSlice);
    const Status status = line.sequence ? producer.send(*line.sequence, payload, slice)
                                        : producer.send(payload, slice);
    if (status != Status::Timeout) return status;
    if (stop_signal() != 0 || (deadline && Clock::now() >= *deadline)) return status;
  }
}

void send_line(Producer& producer, const Queue& queue, const Line& line, std::optional<Duration> timeout,
               Totals& totals) {
  if (line.payload.size() > queue.max_message()) throw too_large(line, queue.max_message());
  const Status status = send_in_slices(producer, line, timeout ? std::optional(Clock::now() + *timeout) : std::nullopt);
  switch (status) {
    case Status::Ok:
      ++totals.sent;
      return;
    case Status::Duplicate:
      ++totals.duplicates;
      return;
    case Status::TooLarge:
      throw too_large(line, queue.max_message());
    case Status::Deleted:
      throw Failure(fmt::format("line {}: queue '{}' was deleted while this send waited for room: every line "
                                "sent to it is lost", line.number, queue.name()));
    case Status::Timeout:
      if (const int signal = stop_signal(); signal != 0) {
        throw Interrupted(signal, fmt::format(" at line {}, waiting for room in the ring: {}", line.number,
                                              describe_ring_holder(queue)));
      }
      throw Failure(fmt::format("line {}: no room in the ring before the timeout: {}", line.number,
                                describe_ring_holder(queue)));
    default:
      throw Failure(fmt::format("line {}: send failed: {}", line.number, to_string(status)));
  }
}

// Waits in slices until the journal has synced every line this producer name sent.
void wait_durable(Producer& producer, std::optional<Duration> timeout) {
  const auto deadline = timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
  for (;;) {
    Duration slice = kSlice;
    if (deadline) slice = std::clamp<Duration>(*deadline - Clock::now(), Duration::zero(), kSlice);
    const Status status = producer.wait_durable(slice);
    if (status == Status::Ok) return;
    if (const int signal = stop_signal(); signal != 0) {
      throw Interrupted(signal, " while waiting for the journal to confirm the lines (they are in the queue, their "
                                "durability unconfirmed)");
    }
    if (status != Status::Timeout || (deadline && Clock::now() >= *deadline)) {
      throw Failure("the journal did not confirm the lines within the timeout (is shmqd running? see shmq-stat)");
    }
  }
}

// Sends the input; Queue and Producer live only in here, so the producer has
// detached when it returns or throws.
void send_input(const SendArgs& args, const std::string& ns, Totals& totals) {
  const Queue queue = Queue::open(args.queue, ns);
  if (args.durable && !queue.durable()) {
    throw Failure(fmt::format(
        "queue '{}' is not durable; --durable needs a queue made with 'shmq create --durable'",
        args.queue));
  }
  const Input input(args.file);
  // Precise timestamps: scripts replay `recv --from TIME` against them.
  Producer producer = Producer::attach(queue, args.producer, {.precise_timestamps = true});
  LineReader reader(input.fd());
  std::string_view text;
  std::uint64_t number = 1;
  for (; reader.next(text); ++number) {
    if (stop_signal() != 0) break;
    const Line line = args.seq_prefix ? split_sequence(number, text) : Line{number, {}, text};
    send_line(producer, queue, line, args.timeout, totals);
  }
  if (const int signal = stop_signal(); signal != 0) {
    throw Interrupted(signal, fmt::format(" before line {} of the input", number));
  }
  if (reader.error() != 0) throw Failure(std::string("reading the input failed: ") + std::strerror(reader.error()));
  // One wait for all lines: shmqd's group commit syncs them together.
  if (args.durable) wait_durable(producer, args.timeout);
  // Sent into a segment nobody can open any more: nothing reaches a consumer.
  if (queue.deleted()) {
    throw Failure(fmt::format("queue '{}' was deleted while this send ran: every line sent to it is lost",
                              args.queue));
  }
}

}  // namespace

int run_send(const SendArgs& args, const std::string& ns) {
  Totals totals;
  const auto summary = [&] {
    std::cerr << fmt::format("sent {}, duplicates {}\n", totals.sent, totals.duplicates);
  };
  int interrupted_by = 0;
  {
    const StopSignals stop_signals;
    try {
      send_input(args, ns, totals);
    } catch (const Interrupted& e) {
      summary();
      report_error(e.what());
      interrupted_by = stop_signal();
    } catch (...) {
      summary();  // also when it fails (docs/cli.md), whatever the failure
      throw;
    }
  }
  if (interrupted_by != 0) std::raise(interrupted_by);  // the default action: ends as by the signal
  summary();
  return kExitOk;
}

}  // namespace shmq::tools
