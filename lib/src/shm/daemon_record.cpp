#include "shm/daemon_record.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

#include "shm/liveness.hpp"
#include "shmq/queue.hpp"

namespace shmq {
namespace detail {

namespace {

// "key value\n": the value is the rest of the line.
std::optional<std::string_view> field(std::string_view text, std::string_view key) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = std::min(text.find('\n', at), text.size());
    const std::string_view line = text.substr(at, end - at);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      return line.substr(key.size() + 1);
    }
    at = end + 1;
  }
  return std::nullopt;
}

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string daemon_record_path(std::string_view ns) { return (shm_dir() / ("shmqd." + std::string(ns))).string(); }

std::string format_daemon_record(const DaemonRecord& r) {
  return "pid " + std::to_string(r.pid) + "\nstart_time " + std::to_string(r.start_time) + "\npid_ns " +
         std::to_string(r.pid_ns) + "\ndata_dir " + r.data_dir.string() + "\n";
}

std::optional<DaemonRecord> parse_daemon_record(std::string_view text) {
  DaemonRecord r;
  const auto pid = field(text, "pid");
  const auto start = field(text, "start_time");
  const auto dir = field(text, "data_dir");
  if (!pid || !start || !dir || dir->empty() || !parse_number(*pid, r.pid) || !parse_number(*start, r.start_time)) {
    return std::nullopt;
  }
  if (const auto ns = field(text, "pid_ns"); ns && !parse_number(*ns, r.pid_ns)) return std::nullopt;
  r.data_dir = std::string(*dir);
  return r;
}

std::optional<DaemonRecord> read_daemon_record(std::string_view ns) {
  const int fd = ::open(daemon_record_path(ns).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  char buf[4096 + 128];
  const ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  // Probed for reading: only shmqd's write lock conflicts, a reader's read lock fakes nothing.
  struct flock live = byte_lock(F_RDLCK, kDaemonRecordLiveByte);
  const bool serving = ::fcntl(fd, F_OFD_GETLK, &live) == 0 && live.l_type != F_UNLCK;
  ::close(fd);
  if (n <= 0) return std::nullopt;
  auto record = parse_daemon_record({buf, static_cast<std::size_t>(n)});
  if (record) record->serving = serving;
  return record;
}

}  // namespace detail

std::int64_t daemon_pid(std::string_view ns_arg) {
  const std::string ns = ns_arg.empty() ? current_namespace() : std::string(ns_arg);
  validate_namespace(ns);
  const auto record = detail::read_daemon_record(ns);
  return record && record->serving ? record->pid : 0;
}

std::filesystem::path daemon_data_dir(std::string_view ns_arg) {
  const std::string ns = ns_arg.empty() ? current_namespace() : std::string(ns_arg);
  validate_namespace(ns);
  // A running shmqd's word first; then the user's; then the last shmqd's.
  auto record = detail::read_daemon_record(ns);
  if (record && record->serving) return std::move(record->data_dir);
  const char* env = std::getenv("SHMQ_DATA_DIR");
  if (record && (env == nullptr || *env == '\0')) return std::move(record->data_dir);
  return default_data_dir(ns);
}

}  // namespace shmq
