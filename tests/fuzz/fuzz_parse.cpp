// Fuzz target: the command line's value parsers (tools/parse.hpp) and the name
// checks. Each must return or throw its documented error (ParseError, or
// shmq::Error InvalidName), never crash, overflow or throw anything else, and
// whatever it accepts must satisfy its contract.
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "parse.hpp"
#include "shmq/queue.hpp"

namespace {

using namespace shmq;
using shmq::tools::ParseError;

[[noreturn]] void fail(const char* why, std::string_view input) {
  std::fprintf(stderr, "fuzz_parse: %s for input of %zu bytes\n", why, input.size());
  std::abort();
}

template <class F>
void parse(F&& f) {
  try {
    f();
  } catch (const ParseError&) {
  }
}

bool name_char(char c, bool dot) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
         (dot && c == '.');
}

void check_name(std::string_view text, bool is_namespace) {
  bool accepted = true;
  try {
    if (is_namespace) {
      validate_namespace(text);
    } else {
      validate_name(text);
    }
  } catch (const Error& e) {
    if (e.code() != Errc::InvalidName) fail("name check threw a code other than InvalidName", text);
    accepted = false;
  }
  if (!accepted) return;
  // Accepted: it cannot leave /dev/shm/shmq.<ns>.<queue>.
  if (text.empty() || text.size() > 63 || text == "." || text == "..") fail("accepted a reserved name", text);
  for (char c : text) {
    if (!name_char(c, !is_namespace)) fail("accepted a character outside [A-Za-z0-9._-]", text);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  parse([&] {
    const std::uint64_t bytes = tools::parse_size(text);
    // Plain digits mean bytes.
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos &&
        std::to_string(bytes) != std::string(text.substr(text.find_first_not_of('0') == std::string_view::npos
                                                              ? text.size() - 1
                                                              : text.find_first_not_of('0')))) {
      fail("parse_size of digits is not their value", text);
    }
  });
  parse([&] {
    if (tools::parse_duration(text).count() < 0) fail("negative duration", text);
  });
  parse([&] {
    if (tools::parse_mode(text) > 0777) fail("mode above 0777", text);
  });
  parse([&] {
    if (tools::parse_sequence(text) == 0) fail("sequence 0 accepted", text);
  });
  parse([&] {
    const std::uint64_t ns = tools::parse_time(text);
    // Nanoseconds since 1970 in an int64 end in April 2262: a later RFC 3339
    // time must be refused, not wrapped around.
    if (ns > static_cast<std::uint64_t>(INT64_MAX)) fail("time beyond int64 nanoseconds", text);
    if (text.size() >= 4 && text.front() != '@' && std::atoi(std::string(text.substr(0, 4)).c_str()) >= 2263) {
      fail("accepted an RFC 3339 year past 2262 (int64 nanoseconds overflow)", text);
    }
  });
  parse([&] {
    const tools::StartPoint start = tools::parse_start(text);
    if (start.at == StartAt::Time && start.time_ns > static_cast<std::uint64_t>(INT64_MAX)) {
      fail("start time beyond int64 nanoseconds", text);
    }
  });
  check_name(text, false);
  check_name(text, true);
  return 0;
}
