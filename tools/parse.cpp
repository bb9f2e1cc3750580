#include "parse.hpp"

#include <grp.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <vector>
#include <utility>
#include <limits>
#include <string>

namespace shmq::tools {
namespace {

using namespace std::chrono;

std::string quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

// Reads the decimal digits at the front of `text`; false when there are none or they overflow.
bool take_digits(std::string_view& text, std::uint64_t& value) {
  const auto* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr == text.data()) return false;
  text.remove_prefix(static_cast<std::size_t>(ptr - text.data()));
  return true;
}

bool checked_multiply(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  return !__builtin_mul_overflow(a, b, &out);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::uint64_t unit_ns(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us") return 1'000;
  if (unit == "ms") return 1'000'000;
  if (unit == "s") return 1'000'000'000;
  if (unit == "m") return 60'000'000'000;
  if (unit == "h") return 3'600'000'000'000;
  return 0;
}

// "<digits>[.<digits>]" then a unit; the fraction is cut at nanoseconds.
std::uint64_t duration_ns(std::string_view text, std::string_view what, bool unit_required) {
  const std::string_view original = text;
  std::uint64_t whole = 0;
  if (!take_digits(text, whole)) {
    throw ParseError("invalid " + std::string(what) + " " + quoted(original) +
                     ": expected a number with a unit (ns, us, ms, s, m, h), e.g. 500ms");
  }
  std::uint64_t fraction = 0;  // in units of 10^-9
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    std::uint64_t scale = 100'000'000;
    if (text.empty() || text.front() < '0' || text.front() > '9') {
      throw ParseError("invalid " + std::string(what) + " " + quoted(original));
    }
    while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
      fraction += static_cast<std::uint64_t>(text.front() - '0') * scale;
      scale /= 10;
      text.remove_prefix(1);
    }
  }
  std::uint64_t unit = text.empty() && !unit_required ? unit_ns("s") : unit_ns(text);
  if (unit == 0) {
    throw ParseError("invalid " + std::string(what) + " " + quoted(original) +
                     ": the unit must be one of ns, us, ms, s, m, h");
  }
  // fraction < 10^9, so neither product below can overflow.
  const std::uint64_t fraction_total =
      unit >= 1'000'000'000 ? fraction * (unit / 1'000'000'000) : fraction * unit / 1'000'000'000;
  std::uint64_t total = 0;
  if (!checked_multiply(whole, unit, total) ||
      __builtin_add_overflow(total, fraction_total, &total) ||
      total > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw ParseError(std::string(what) + " " + quoted(original) + " is too large");
  }
  return total;
}

[[noreturn]] void bad_time(std::string_view original) {
  throw ParseError("invalid time " + quoted(original) +
                   ": expected RFC 3339 like 2026-11-29T14:00:00Z, or @SECONDS");
}

int fixed_digits(std::string_view& text, std::size_t count, std::string_view original) {
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (text.empty() || text.front() < '0' || text.front() > '9') bad_time(original);
    value = value * 10 + (text.front() - '0');
    text.remove_prefix(1);
  }
  return value;
}

void expect_char(std::string_view& text, std::string_view allowed, std::string_view original) {
  if (text.empty() || allowed.find(text.front()) == std::string_view::npos) bad_time(original);
  text.remove_prefix(1);
}

std::uint64_t rfc3339_ns(std::string_view text) {
  const std::string_view original = text;
  const int y = fixed_digits(text, 4, original);
  expect_char(text, "-", original);
  const int mo = fixed_digits(text, 2, original);
  expect_char(text, "-", original);
  const int d = fixed_digits(text, 2, original);
  expect_char(text, "Tt ", original);
  const int h = fixed_digits(text, 2, original);
  expect_char(text, ":", original);
  const int mi = fixed_digits(text, 2, original);
  expect_char(text, ":", original);
  const int s = fixed_digits(text, 2, original);
  std::int64_t fraction_ns = 0;
  if (!text.empty() && text.front() == '.') {
    text.remove_prefix(1);
    std::int64_t scale = 100'000'000;
    const std::size_t before = text.size();
    while (!text.empty() && text.front() >= '0' && text.front() <= '9') {
      fraction_ns += (text.front() - '0') * scale;
      scale /= 10;
      text.remove_prefix(1);
    }
    if (text.size() == before) bad_time(original);
  }
  int offset_minutes = 0;
  if (!text.empty() && (text.front() == 'Z' || text.front() == 'z')) {
    text.remove_prefix(1);
  } else {
    const bool negative = !text.empty() && text.front() == '-';
    expect_char(text, "+-", original);
    const int oh = fixed_digits(text, 2, original);
    expect_char(text, ":", original);
    const int om = fixed_digits(text, 2, original);
    if (oh > 23 || om > 59) bad_time(original);
    offset_minutes = (negative ? -1 : 1) * (oh * 60 + om);
  }
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)},
                            day{static_cast<unsigned>(d)}};
  if (!text.empty() || !date.ok() || h > 23 || mi > 59 || s > 59) bad_time(original);
  const auto since_epoch = sys_days{date}.time_since_epoch() + hours{h} + minutes{mi} + seconds{s} -
                           minutes{offset_minutes};
  // In seconds first: nanoseconds since 1970 overflow an int64 in April 2262.
  const std::int64_t secs = duration_cast<seconds>(since_epoch).count();
  if (secs < 0) throw ParseError("time " + quoted(original) + " is before 1970");
  if (secs > (std::numeric_limits<std::int64_t>::max() - fraction_ns) / 1'000'000'000) {
    throw ParseError("time " + quoted(original) + " is after 2262");
  }
  return static_cast<std::uint64_t>(secs * 1'000'000'000 + fraction_ns);
}

// Bytes per unit of a size suffix ("", "K", "MiB", ...); 0 when it is none.
std::uint64_t size_unit(std::string_view suffix) {
  const std::string unit = lower(suffix);
  if (unit.empty() || unit == "b") return 1;
  if (unit == "k" || unit == "kb" || unit == "kib") return 1ull << 10;
  if (unit == "m" || unit == "mb" || unit == "mib") return 1ull << 20;
  if (unit == "g" || unit == "gb" || unit == "gib") return 1ull << 30;
  if (unit == "t" || unit == "tb" || unit == "tib") return 1ull << 40;
  return 0;
}

// "1.5G": refused, naming the same size in a smaller unit when there is one.
[[noreturn]] void fraction_of_size(std::string_view original, std::uint64_t whole, std::string_view rest) {
  __extension__ using Wide = unsigned __int128;
  std::size_t digits = 0;
  Wide fraction = 0;
  Wide scale = 1;
  for (; digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9' && digits < 9; ++digits) {
    fraction = fraction * 10 + static_cast<unsigned>(rest[digits] - '0');
    scale *= 10;
  }
  const std::string message = "invalid size " + quoted(original) + ": fractions are not supported";
  const std::uint64_t unit = size_unit(rest.substr(digits));
  if (digits == 0 || unit == 0 || whole > (1ull << 40)) {
    throw ParseError(message + "; use whole numbers with K, M, G or T");
  }
  const Wide scaled = (static_cast<Wide>(whole) * scale + fraction) * unit;
  if (scaled % scale == 0 && scaled / scale <= UINT64_MAX) {
    const auto bytes = static_cast<std::uint64_t>(scaled / scale);
    constexpr std::pair<const char*, int> kUnits[] = {{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}, {"", 0}};
    for (const auto& [suffix, size] : kUnits) {
      if (bytes % (1ull << size) == 0) {
        throw ParseError(message + "; write " + std::to_string(bytes >> size) + suffix);
      }
    }
  }
  throw ParseError(message + "; use a whole number of a smaller unit (K, M, G) or of bytes");
}

}  // namespace

std::uint64_t parse_size(std::string_view text) {
  const std::string_view original = text;
  std::uint64_t number = 0;
  if (!take_digits(text, number)) {
    throw ParseError("invalid size " + quoted(original) +
                     ": expected bytes like 4096, 64K, 16M or 1G");
  }
  if (!text.empty() && text.front() == '.') fraction_of_size(original, number, text.substr(1));
  const std::uint64_t multiplier = size_unit(text);
  if (multiplier == 0) {
    throw ParseError("invalid size " + quoted(original) + ": the suffix must be K, M, G or T");
  }
  std::uint64_t bytes = 0;
  if (!checked_multiply(number, multiplier, bytes)) {
    throw ParseError("size " + quoted(original) + " is too large");
  }
  return bytes;
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  if (text == "0") return nanoseconds{0};
  return nanoseconds{static_cast<std::int64_t>(duration_ns(text, "duration", true))};
}

mode_t parse_mode(std::string_view text) {
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value > 0777) {
    throw ParseError("invalid mode " + quoted(text) +
                     ": expected octal permissions like 600 or 0660");
  }
  return static_cast<mode_t>(value);
}

gid_t parse_group(std::string_view text) {
  if (text.empty() || text.find('\0') != std::string_view::npos) throw ParseError("invalid group name");
  std::uint32_t gid = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), gid, 10);
  if (ec == std::errc{} && ptr == text.data() + text.size()) {
    if (static_cast<gid_t>(gid) == static_cast<gid_t>(-1)) throw ParseError("invalid group id " + quoted(text));
    return static_cast<gid_t>(gid);
  }
  const std::string name(text);
  std::vector<char> buf(16384);
  group entry{};
  group* found = nullptr;
  const int rc = ::getgrnam_r(name.c_str(), &entry, buf.data(), buf.size(), &found);
  if (rc != 0 || found == nullptr) {
    throw ParseError("unknown group " + quoted(text) + (rc != 0 ? std::string(": ") + std::strerror(rc) : "") +
                     " (a group name from the group database, or a numeric gid)");
  }
  return found->gr_gid;
}

mode_t parse_segment_mode(std::string_view text) {
  const mode_t mode = parse_mode(text);
  if ((mode & 0111) != 0) {
    char without[8];
    std::snprintf(without, sizeof without, "%o", static_cast<unsigned>(mode & 0666));
    throw ParseError("invalid mode " + quoted(text) + ": a queue segment is never executed, so execute bits are " +
                     "refused; write " + without);
  }
  return mode;
}

std::uint64_t parse_sequence(std::string_view text) {
  std::uint64_t value = 0;
  std::string_view rest = text;
  if (!take_digits(rest, value) || !rest.empty() || value == 0) {
    throw ParseError("invalid sequence " + quoted(text) + ": expected an integer from 1 to 2^64-1");
  }
  return value;
}

std::uint64_t parse_time(std::string_view text) {
  if (!text.empty() && text.front() == '@') return duration_ns(text.substr(1), "Unix time", false);
  return rfc3339_ns(text);
}

StartPoint parse_start(std::string_view text) {
  if (text == "oldest") return {StartAt::Oldest};
  if (text == "newest") return {StartAt::Newest};
  std::uint64_t position = 0;
  std::string_view rest = text;
  if (take_digits(rest, position) && rest.empty()) return {StartAt::Position, position};
  try {
    return {StartAt::Time, 0, parse_time(text)};
  } catch (const ParseError&) {
    throw ParseError("invalid start " + quoted(text) +
                     ": expected oldest, newest, a position (integer) or a time "
                     "(2026-11-29T14:00:00Z or @SECONDS)");
  }
}

}  // namespace shmq::tools
