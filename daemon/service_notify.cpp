#include "service_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "unique_fd.hpp"

namespace shmq::daemon {

namespace {

std::uint64_t whole_number(const char* text) {
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  return *end == '\0' ? value : 0;
}

}  // namespace

ServiceNotifier::ServiceNotifier() {
  const char* path = std::getenv("NOTIFY_SOCKET");
  // Only a path or an abstract name fits sockaddr_un (vsock addresses are not supported).
  if (path != nullptr && (path[0] == '/' || path[0] == '@') && std::strlen(path) < sizeof(sockaddr_un::sun_path)) {
    socket_path_ = path;
  }
  const std::uint64_t for_pid = whole_number(std::getenv("WATCHDOG_PID"));
  if (for_pid == 0 || for_pid == static_cast<std::uint64_t>(::getpid())) {
    watchdog_ = std::chrono::microseconds(whole_number(std::getenv("WATCHDOG_USEC")));
  }
}

void ServiceNotifier::watchdog_tick(Clock::time_point now) {
  if (watchdog_.count() == 0 || now - last_ping_ < watchdog_ / 2) return;
  if (send("WATCHDOG=1")) last_ping_ = now;
}

bool ServiceNotifier::send(const std::string& state) const {
  if (!enabled()) return false;
  const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract: the name's length counts, no NUL
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  return ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                  length) == static_cast<ssize_t>(state.size());
}

}  // namespace shmq::daemon
