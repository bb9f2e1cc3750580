// Who owns a segment file, giving a new one its owner and group, and saying
// clearly why another user's segment cannot be opened (docs/security.md).
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <vector>

#include "shm/segment.hpp"

namespace shmq::detail {
namespace {

std::string user_name(uid_t uid) {
  std::vector<char> buf(4096);
  passwd entry{};
  passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return std::string(found->pw_name) + " (" + std::to_string(uid) + ")";
  }
  return std::to_string(uid);
}

std::string group_name(gid_t gid) {
  std::vector<char> buf(4096);
  group entry{};
  group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return std::string(found->gr_name) + " (" + std::to_string(gid) + ")";
  }
  return std::to_string(gid);
}

std::string octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

FileOwner file_owner(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return {};
  return {st.st_uid, st.st_gid};
}

void apply_owner(int fd, uid_t owner, gid_t group, const std::string& what) {
  if (owner == static_cast<uid_t>(-1) && group == kNoGroup) return;
  if (::fchown(fd, owner, group) == 0) return;
  const int error = errno;
  std::string whom;
  if (owner != static_cast<uid_t>(-1)) whom = "owner " + user_name(owner);
  if (group != kNoGroup) whom += std::string(whom.empty() ? "" : " and ") + "group " + group_name(group);
  errno = error;
  throw_errno(error == EPERM ? Errc::PermissionDenied : Errc::System,
              "cannot give " + what + " the " + whom +
                  (error == EPERM ? " (only root, or for a group a member of it, may)" : ""));
}

void throw_open_denied(const std::string& path, bool read_only, const std::string& what) {
  struct stat st {};
  std::string file = path;
  if (::stat(path.c_str(), &st) == 0) {
    file += " is mode " + octal(st.st_mode) + ", owner " + user_name(st.st_uid) + ", group " +
            group_name(st.st_gid);
  }
  throw Error(Errc::PermissionDenied,
              "cannot open " + what + (read_only ? " for reading" : " for writing") + ": permission denied (" +
                  file + "; this process is uid " + std::to_string(::geteuid()) + ", gid " +
                  std::to_string(::getegid()) + (read_only ? "" : "; a reader may still use open_read_only") +
                  ")");
}

}  // namespace shmq::detail
