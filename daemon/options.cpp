#include "options.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace shmq::daemon {

namespace fs = std::filesystem;

std::string check_whole_number(const std::string& text, std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value > max) {
    return "'" + text + "' is not a whole number from 0 to " + std::to_string(max);
  }
  return {};
}

std::string check_metrics_address(const std::string& text) {
  const std::string wanted = "expected HOST:PORT, e.g. 127.0.0.1:9464 (:9464 for every interface, [::1]:9464 "
                             "for IPv6), not '" + text + "'";
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return wanted;
  const std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
    return "port '" + port + "' is not a number from 1 to 65535: " + wanted;
  }
  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  if (!bracketed && host.find_first_of(":[]") != std::string::npos) return wanted;
  return {};
}

namespace {

constexpr gid_t kNoGroup = static_cast<gid_t>(-1);

// Gives one entry of the data directory the group: a directory 02750, a file
// g+r (never g+w). Only this user's own entries; links are left alone.
void share_entry(const fs::path& path, gid_t group) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return;  // a link (ELOOP), or gone meanwhile
  struct stat st {};
  bool ok = true;
  if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
    const mode_t mode = S_ISDIR(st.st_mode) ? (02750 | (st.st_mode & 0700)) : ((st.st_mode & 0700) | 0040);
    ok = (st.st_gid == group || ::fchown(fd, static_cast<uid_t>(-1), group) == 0) && ::fchmod(fd, mode) == 0;
  }
  const int error = errno;
  ::close(fd);
  if (!ok) {
    throw std::runtime_error("cannot give " + path.string() + " group " + std::to_string(group) + ": " +
                             std::strerror(error) +
                             (error == EPERM ? " (shmqd must run as root or as a member of that group)" : ""));
  }
}

void share_with_group(const fs::path& dir, gid_t group) {
  share_entry(dir, group);  // first: it throws when the group cannot be given at all
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    share_entry(it->path(), group);
  }
}

}  // namespace

gid_t resolve_group(const std::string& text) {
  std::uint32_t gid = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), gid);
  if (!text.empty() && ec == std::errc{} && end == text.data() + text.size() && gid != kNoGroup) return gid;
  std::vector<char> buf(16384);
  group entry{};
  group* found = nullptr;
  const bool clean = !text.empty() && text.find('\0') == std::string::npos;
  if (!clean || ::getgrnam_r(text.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    throw std::runtime_error("unknown group '" + text + "' (a group name from the group database, or a numeric gid)");
  }
  return found->gr_gid;
}

mode_t data_umask(gid_t group) noexcept { return group == kNoGroup ? 077 : 027; }

void prepare_data_dir(const fs::path& dir, gid_t group) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (!dir.parent_path().empty()) {
      // With a group, the directories above must let its members through.
      const mode_t old = group == kNoGroup ? 0 : ::umask(022);
      fs::create_directories(dir.parent_path(), ec);
      if (group != kNoGroup) ::umask(old);
    }
    // mkdir with 0700 itself, so the directory is never open to others, even briefly.
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create data directory " + dir.string() + ": " + std::strerror(errno));
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    throw std::runtime_error("cannot use data directory " + dir.string() + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) throw std::runtime_error("data directory " + dir.string() + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    throw std::runtime_error("data directory " + dir.string() + " belongs to uid " + std::to_string(st.st_uid) +
                             ", not to this user (uid " + std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
    throw std::runtime_error("data directory " + dir.string() + " is writable by group or others (mode " + mode +
                             "); run: chmod go-w " + dir.string());
  }
  if (group != kNoGroup) share_with_group(dir, group);
}

}  // namespace shmq::daemon
