#include "options.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace shmq::daemon {

namespace fs = std::filesystem;

void prepare_data_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (!dir.parent_path().empty()) fs::create_directories(dir.parent_path(), ec);
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
}

}  // namespace shmq::daemon
