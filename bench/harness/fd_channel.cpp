#include "fd_channel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace bench {

FdPairs::~FdPairs() {
  for (auto [r, w] : fds_) {
    close(r);
    close(w);
  }
}

void FdPairs::add(int read_end, int write_end, Wait wait) {
  fds_.emplace_back(read_end, write_end);
  if (wait == Wait::Block) return;
  for (int fd : {read_end, write_end})
    check_errno(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "fcntl O_NONBLOCK");
}

void write_all(int fd, std::span<const std::byte> message) {
  while (!message.empty()) {
    const ssize_t n = write(fd, message.data(), message.size());
    if (n > 0) {
      message = message.subspan(static_cast<std::size_t>(n));
      continue;
    }
    check_errno(n < 0 && (errno == EAGAIN || errno == EINTR), "write");
    cpu_relax();
  }
}

std::span<const std::byte> FdReceiver::receive() {
  std::size_t got = 0;
  while (got < buffer_.size()) {
    const ssize_t n = read(fd_, buffer_.data() + got, buffer_.size() - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      continue;
    }
    check_errno(n < 0 && (errno == EAGAIN || errno == EINTR), n == 0 ? "read: end of file" : "read");
    cpu_relax();
  }
  return buffer_;
}

}  // namespace bench
