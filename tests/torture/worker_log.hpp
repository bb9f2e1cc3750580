// A worker's log: one line per write(2) on an O_APPEND file, no user-space
// buffer, so a line is in the file before the worker does its next step (a
// consumer logs a delivery before it acks it). A worker killed mid-write may
// leave a partial last line; the reader ignores it.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>

namespace shmq::torture {

class WorkerLog {
 public:
  explicit WorkerLog(const std::string& path) : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600)) {
    if (fd_ < 0) throw std::runtime_error("cannot open log " + path);
  }
  WorkerLog(const WorkerLog&) = delete;
  WorkerLog& operator=(const WorkerLog&) = delete;
  ~WorkerLog() { ::close(fd_); }

  template <class... Args>
  void line(const char* format, Args... args) {
    char buffer[1024];
    int n = std::snprintf(buffer, sizeof buffer - 1, format, args...);
    if (n < 0) return;
    if (n > static_cast<int>(sizeof buffer) - 2) n = sizeof buffer - 2;
    buffer[n] = '\n';
    (void)!::write(fd_, buffer, static_cast<std::size_t>(n) + 1);
  }

 private:
  int fd_;
};

}  // namespace shmq::torture
