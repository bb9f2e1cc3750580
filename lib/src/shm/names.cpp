#include <unistd.h>

#include <cstdlib>
#include <string>

#include "shmq/queue.hpp"

namespace shmq {
namespace {

bool name_char(char c, bool allow_dot) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (allow_dot && c == '.');
}

void check(std::string_view name, std::string_view what, bool allow_dot) {
  const auto fail = [&](const std::string& why) {
    throw Error(Errc::InvalidName, "invalid " + std::string(what) + " name '" + std::string(name) +
                                       "': " + why);
  };
  if (name.empty()) fail("empty");
  if (name.size() > 63) fail("longer than 63 characters");
  if (name == "." || name == "..") fail("reserved");
  for (char c : name) {
    if (!name_char(c, allow_dot)) {
      fail(allow_dot ? "only letters, digits, '.', '_' and '-' are allowed"
                     : "only letters, digits, '_' and '-' are allowed");
    }
  }
}

}  // namespace

void validate_name(std::string_view name, std::string_view what) { check(name, what, true); }

void validate_namespace(std::string_view ns) { check(ns, "namespace", false); }

std::filesystem::path default_data_dir(std::string_view ns_arg) {
  const auto env = [](const char* name) -> const char* {
    const char* value = std::getenv(name);
    return value != nullptr && *value != '\0' ? value : nullptr;
  };
  const std::string ns = ns_arg.empty() ? current_namespace() : std::string(ns_arg);
  if (const char* dir = env("SHMQ_DATA_DIR")) return dir;
  if (::geteuid() == 0) return std::filesystem::path("/var/lib/shmq") / ns;
  if (const char* state = env("XDG_STATE_HOME")) return std::filesystem::path(state) / "shmq" / ns;
  if (const char* home = env("HOME")) return std::filesystem::path(home) / ".local/state/shmq" / ns;
  throw Error(Errc::InvalidArgument, "no data directory: set --data-dir, SHMQ_DATA_DIR, XDG_STATE_HOME or HOME");
}

std::string current_namespace() {
  const char* env = std::getenv("SHMQ_NAMESPACE");
  std::string ns = (env != nullptr && *env != '\0') ? env : "default";
  validate_namespace(ns);
  return ns;
}

}  // namespace shmq
