#include <fmt/format.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "shmq/queue.hpp"
#include "transport.hpp"

namespace bench {

std::string_view to_string(Wait wait) { return wait == Wait::Spin ? "spin" : "block"; }

std::span<const TransportInfo> transports() {
  static constexpr std::array kAll{
      TransportInfo{"shmq", "shmq queue", true, make_shmq},
      TransportInfo{"bare-ring", "bare SPSC ring in shared memory (the floor)", false, make_bare_ring},
      TransportInfo{"boost-mq", "Boost.Interprocess message_queue", false, make_boost_mq},
      TransportInfo{"posix-mq", "POSIX message queue", false, make_posix_mq},
      TransportInfo{"unix-socket", "Unix domain socket (SOCK_SEQPACKET)", false, make_unix_socket},
      TransportInfo{"pipe", "pipe", false, make_pipe},
      TransportInfo{"moodycamel", "moodycamel ConcurrentQueue, two threads", false, make_moodycamel},
#ifdef SHMQ_BENCH_ICEORYX
      TransportInfo{"iceoryx", "Eclipse iceoryx 2.0 (its own RouDi per run)", false, make_iceoryx},
#endif
  };
  return kAll;
}

const TransportInfo& find_transport(std::string_view name) {
  for (const auto& t : transports())
    if (t.name == name) return t;
  throw std::invalid_argument(fmt::format("unknown transport '{}'", name));
}

std::string resource_name(std::string_view kind, int channel) {
  return fmt::format("shmq-bench.{}.{}.{}{}", shmq::current_namespace(), getpid(), kind, channel);
}

void check_errno(bool ok, std::string_view what) {
  if (!ok) throw std::system_error(errno, std::generic_category(), std::string(what));
}

}  // namespace bench
