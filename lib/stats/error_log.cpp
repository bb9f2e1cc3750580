#include "shmq/stats/error_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include <nlohmann/json.hpp>

namespace shmq::stats {
namespace {

// `message` cut to kErrorMessageBytes, never inside a UTF-8 sequence.
std::string_view bounded_message(std::string_view message) {
  if (message.size() <= kErrorMessageBytes) return message;
  std::size_t end = kErrorMessageBytes;
  while (end > 0 && (static_cast<unsigned char>(message[end]) & 0xC0) == 0x80) --end;
  return message.substr(0, end);
}

std::string line_of(const ErrorEntry& e) {
  const nlohmann::ordered_json j{{"first", e.first}, {"last", e.last},   {"level", e.level},
                         {"count", e.count}, {"message", e.message}};
  // A message with bytes that are not UTF-8 (a file name) is kept, those
  // bytes replaced, rather than refused.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + '\n';
}

bool parse_line(const std::string& line, ErrorEntry& out) {
  const auto j = nlohmann::json::parse(line, nullptr, false);
  if (!j.is_object()) return false;
  const auto text = [&j](const char* key, std::string& to) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    to = it->get<std::string>();
    return true;
  };
  const auto count = j.find("count");
  if (count == j.end() || !count->is_number_unsigned()) return false;
  out.count = count->get<std::uint64_t>();
  return text("first", out.first) && text("last", out.last) && text("level", out.level) &&
         text("message", out.message);
}

}  // namespace

std::filesystem::path error_log_path(const std::filesystem::path& data_dir) { return data_dir / "errors.log"; }

std::vector<ErrorEntry> read_error_log(const std::filesystem::path& file) {
  std::vector<ErrorEntry> entries;
  std::FILE* in = std::fopen(file.c_str(), "re");
  if (in == nullptr) {
    if (errno == ENOENT) return entries;
    throw std::system_error(errno, std::generic_category(), "cannot read " + file.string());
  }
  std::string text;
  char buf[8192];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, in)) > 0;) text.append(buf, n);
  std::fclose(in);
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    ErrorEntry e;
    if (parse_line(text.substr(at, end - at), e)) entries.push_back(std::move(e));
    at = end + 1;
  }
  return entries;
}

int write_error_log(const std::filesystem::path& file, const std::vector<ErrorEntry>& entries) noexcept {
  try {
    std::string text;
    for (const ErrorEntry& e : entries) text += line_of(e);
    const std::string temporary = file.string() + ".tmp";
    // Only one shmqd writes (the one holding the namespace's lock), so one
    // temporary name will do; one a killed writer left is truncated here.
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    for (std::size_t done = 0; done < text.size();) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int error = n < 0 ? errno : EIO;
        ::close(fd);
        ::unlink(temporary.c_str());
        return error;
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    // No fsync: the file is a convenience next to the log, not a promise; a
    // power loss may lose its last changes (a reader skips what it cannot parse).
    if (::rename(temporary.c_str(), file.c_str()) != 0) {
      const int error = errno;
      ::unlink(temporary.c_str());
      return error;
    }
    return 0;
  } catch (...) {
    return ENOMEM;
  }
}

ErrorLog::ErrorLog(std::vector<ErrorEntry> entries, std::size_t capacity)
    : entries_(std::move(entries)), capacity_(std::max<std::size_t>(capacity, 1)) {
  if (entries_.size() > capacity_) entries_.erase(entries_.begin(), entries_.end() - static_cast<long>(capacity_));
}

bool ErrorLog::record(std::string_view level, std::string_view message_arg, const std::string& time) {
  const std::string_view message = bounded_message(message_arg);
  const auto same = std::find_if(entries_.begin(), entries_.end(), [&](const ErrorEntry& e) {
    return e.level == level && e.message == message;
  });
  if (same != entries_.end()) {
    ErrorEntry seen_again = std::move(*same);
    entries_.erase(same);
    ++seen_again.count;
    seen_again.last = time;
    entries_.push_back(std::move(seen_again));  // now the one seen last
    return false;
  }
  if (entries_.size() >= capacity_) entries_.erase(entries_.begin());
  entries_.push_back(ErrorEntry{time, time, std::string(level), std::string(message), 1});
  return true;
}

}  // namespace shmq::stats
