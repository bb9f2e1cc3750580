#include "watch/clients.hpp"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <spdlog/spdlog.h>

#include "shm/process.hpp"

namespace shmq::daemon {

Watch ClientSet::watch(ClientId id) {
  if (by_id_.contains(id)) return Watch::Pidfd;
  // A pid from another namespace names some other process here, or none.
  if (id.pid_ns == 0 || id.pid_ns != own_pid_ns_ || id.pid <= 0 || id.pid > INT_MAX) return Watch::Polled;
  const auto pid = static_cast<pid_t>(id.pid);
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) {
    // ESRCH: died since the repair saw its entries held (or handed a
    // descriptor of them to a child). Out of descriptors, say: the same.
    if (errno != ESRCH) spdlog::warn("cannot watch pid {}: pidfd_open: {}", pid, std::strerror(errno));
    return Watch::Polled;
  }
  // The pidfd names whatever process has the pid now. Only if that process
  // started when the table entry says is it the client; checked after the
  // open, so a client that died just before it is never watched as alive.
  if (detail::process_start_time(pid) != id.start_time) return Watch::Polled;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    spdlog::warn("cannot watch pid {}: epoll_ctl: {}", pid, std::strerror(errno));
    return Watch::Polled;
  }
  spdlog::debug("watching client pid {}", pid);
  by_fd_.emplace(fd.get(), id);
  by_id_.emplace(id, std::move(fd));
  return Watch::Pidfd;
}

void ClientSet::forget(std::map<ClientId, UniqueFd>::iterator it) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second.get(), nullptr);
  by_fd_.erase(it->second.get());
  by_id_.erase(it);
}

std::optional<ClientId> ClientSet::exited(int fd) {
  const auto found = by_fd_.find(fd);
  if (found == by_fd_.end()) return std::nullopt;
  const ClientId id = found->second;
  forget(by_id_.find(id));
  return id;
}

void ClientSet::prune(const std::set<ClientId>& keep) {
  for (auto it = by_id_.begin(); it != by_id_.end();) {
    const auto next = std::next(it);
    if (!keep.contains(it->first)) forget(it);
    it = next;
  }
}

}  // namespace shmq::daemon
