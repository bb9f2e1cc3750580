// A Unix domain socket pair (SOCK_SEQPACKET, so message boundaries hold) per
// channel.
#include <sys/socket.h>

#include "fd_channel.hpp"

namespace bench {

std::unique_ptr<Transport> make_unix_socket(int channels, const ChannelConfig& config) {
  auto fds = std::make_unique<FdPairs>();
  for (int i = 0; i < channels; ++i) {
    int s[2];
    check_errno(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, s) == 0, "socketpair");
    fds->add(s[1], s[0], config.wait);
  }
  return std::make_unique<FdTransport>(config.payload, std::move(fds));
}

}  // namespace bench
