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

bool ClientSet::watch(ClientId id) {
  if (by_id_.contains(id)) return true;
  if (id.pid <= 0 || id.pid > INT_MAX) return false;  // a nonsense entry: recovery frees it
  const auto pid = static_cast<pid_t>(id.pid);
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) {
    if (errno == ESRCH) return false;
    // Out of descriptors, say: the periodic rescan still sees its death.
    spdlog::warn("cannot watch pid {}: pidfd_open: {}", pid, std::strerror(errno));
    return true;
  }
  // The pidfd names whatever process has the pid now. Only if that process
  // started when the table entry says is it the client; checked after the
  // open, so a client that died just before it is never watched as alive.
  if (detail::process_start_time(pid) != id.start_time) return false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd.get();
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    spdlog::warn("cannot watch pid {}: epoll_ctl: {}", pid, std::strerror(errno));
    return true;
  }
  spdlog::debug("watching client pid {}", pid);
  by_fd_.emplace(fd.get(), id);
  by_id_.emplace(id, std::move(fd));
  return true;
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
