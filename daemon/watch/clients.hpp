// The client processes shmqd watches: one pidfd each, registered in the
// daemon's epoll set. A pidfd becomes readable when its process exits, so a
// death is seen at once, with no heartbeat and no timeout. A stopped
// (SIGSTOP) process is not exited: it stays watched and keeps what it holds.
// A pidfd only wakes the daemon: whether a client is dead is its entry
// locks' word (shm/liveness.hpp), read by the repair. A client of another pid
// namespace has no pidfd here: the watcher polls its entries instead.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "unique_fd.hpp"

namespace shmq::daemon {

// A client as its table entries name it: a pid, that process's start time
// (/proc/<pid>/stat) and its pid namespace. The pid means something here
// only when the namespace is ours, and the start time keeps a reused pid
// from passing for the client.
struct ClientId {
  std::int64_t pid = 0;
  std::uint64_t start_time = 0;
  std::uint64_t pid_ns = 0;
  auto operator<=>(const ClientId&) const = default;
};

enum class Watch {
  Pidfd,   // its pidfd is in the epoll set: its death is seen at once
  Polled,  // no pidfd can name it (another pid namespace, or its pid is
           // gone while its entry lock is held): its entries are polled
};

class ClientSet {
 public:
  ClientSet(int epoll_fd, std::uint64_t own_pid_ns) : epoll_fd_(epoll_fd), own_pid_ns_(own_pid_ns) {}

  // Watches `id` through a pidfd where its pid names it in our pid
  // namespace; Polled otherwise (and when its pid is gone or reused: its
  // entry locks, which repair reads, tell whether it lives).
  [[nodiscard]] Watch watch(ClientId id);
  // The process of pidfd `fd` exited: stops watching it. nullopt when `fd`
  // is not one of ours.
  std::optional<ClientId> exited(int fd);
  // Stops watching every client not in `keep` (no longer in any table).
  void prune(const std::set<ClientId>& keep);
  [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }

 private:
  void forget(std::map<ClientId, UniqueFd>::iterator it);

  int epoll_fd_;
  std::uint64_t own_pid_ns_;
  std::map<ClientId, UniqueFd> by_id_;
  std::map<int, ClientId> by_fd_;
};

}  // namespace shmq::daemon
