// Where segments live: $SHMQ_SHM_DIR, else /dev/shm (shmq::shm_dir), and
// what the file system there asks of a segment's size (hugetlbfs).
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "shm/segment.hpp"

#ifndef HUGETLBFS_MAGIC
#define HUGETLBFS_MAGIC 0x958458f6
#endif

namespace shmq {

std::filesystem::path shm_dir() {
  const char* env = std::getenv("SHMQ_SHM_DIR");
  std::string dir = (env != nullptr && *env != '\0') ? env : "/dev/shm";
  const auto bad = [&](const std::string& why) {
    throw Error(Errc::InvalidArgument, "the shm directory '" + dir + "' (SHMQ_SHM_DIR) " + why);
  };
  if (dir.front() != '/') bad("is not an absolute path");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();  // "/x/" names what "/x" does
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) bad(errno == ENOENT ? "does not exist" : std::string(": ") + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) bad("is not a directory");
  return dir;
}

namespace detail {

std::string segment_path(std::string_view ns, std::string_view queue) {
  return shm_dir().string() + segment_name(ns, queue);
}

std::uint64_t segment_file_bytes(int fd, std::uint64_t segment_bytes) {
  struct statfs fs {};
  if (::fstatfs(fd, &fs) != 0 || static_cast<std::uint64_t>(fs.f_type) != HUGETLBFS_MAGIC || fs.f_bsize <= 0) {
    return segment_bytes;
  }
  // hugetlbfs sizes files, and maps them, in whole huge pages only.
  const auto huge_page = static_cast<std::uint64_t>(fs.f_bsize);
  return (segment_bytes + huge_page - 1) / huge_page * huge_page;
}

}  // namespace detail
}  // namespace shmq
