// A pipe per channel. Messages are fixed-size, so the receiver reads exactly
// one message's bytes.
#include <fcntl.h>
#include <unistd.h>

#include "fd_channel.hpp"

namespace bench {

std::unique_ptr<Transport> make_pipe(int channels, const ChannelConfig& config) {
  auto fds = std::make_unique<FdPairs>();
  for (int i = 0; i < channels; ++i) {
    int p[2];
    check_errno(pipe2(p, O_CLOEXEC) == 0, "pipe2");
    fds->add(p[0], p[1], config.wait);
  }
  return std::make_unique<FdTransport>(config.payload, std::move(fds));
}

}  // namespace bench
