// Parsers for the command-line values of shmq and shmq-stat: sizes, durations,
// file modes, sequences and --from start points. Each throws ParseError with a
// message fit for the user; none trusts its input (a fuzz target drives them).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "shmq/consumer.hpp"

namespace shmq::tools {

class ParseError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Bytes: "4096", "64K", "16M", "1G", "1T" (powers of 1024; case-insensitive).
// No fractions: "1.5G" is refused, naming the size in a smaller unit (1536M).
[[nodiscard]] std::uint64_t parse_size(std::string_view text);

// A number with a unit: "250ns", "10us", "500ms", "1.5s", "2m", "1h"; or "0".
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text);

// A file mode in octal: "600", "0640" (at most 0777).
[[nodiscard]] mode_t parse_mode(std::string_view text);

// A queue segment's mode: parse_mode(), without execute bits (never useful
// on a segment, and refused by docs/security.md's rules).
[[nodiscard]] mode_t parse_segment_mode(std::string_view text);

// A group, by name (looked up in the group database) or as a numeric gid.
// An unknown name or a gid out of range: ParseError naming it.
[[nodiscard]] gid_t parse_group(std::string_view text);

// A producer sequence: a decimal integer from 1 to 2^64-1.
[[nodiscard]] std::uint64_t parse_sequence(std::string_view text);

// A point in time as CLOCK_REALTIME nanoseconds since the epoch:
// RFC 3339 ("2026-11-29T14:00:00Z", "2026-11-29T14:00:00.5+01:00"),
// or "@" and a Unix time: "@1764424800" (seconds), "@1764424800123456789ns",
// "@1764424800500ms" (any duration unit).
[[nodiscard]] std::uint64_t parse_time(std::string_view text);

// Where a new consumer group starts: "oldest", "newest", a log position
// (a plain integer), or a time as parse_time() reads it.
struct StartPoint {
  StartAt at = StartAt::Oldest;
  std::uint64_t position = 0;
  std::uint64_t time_ns = 0;
};
[[nodiscard]] StartPoint parse_start(std::string_view text);

}  // namespace shmq::tools
