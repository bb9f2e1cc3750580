// The client processes shmqd watches: one pidfd each, registered in the
// daemon's epoll set. A pidfd becomes readable when its process exits, so a
// death is seen at once, with no heartbeat and no timeout. A stopped
// (SIGSTOP) process is not exited: it stays watched and keeps what it holds.
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>

#include "unique_fd.hpp"

namespace shmq::daemon {

// A client as its table entries name it: a pid and that process's start time
// (/proc/<pid>/stat), so a reused pid is never taken for the same client.
struct ClientId {
  std::int64_t pid = 0;
  std::uint64_t start_time = 0;
  auto operator<=>(const ClientId&) const = default;
};

class ClientSet {
 public:
  explicit ClientSet(int epoll_fd) : epoll_fd_(epoll_fd) {}

  // Watches `id`. False when that process is gone already, or its pid now
  // belongs to another process: the caller must repair after it now.
  [[nodiscard]] bool watch(ClientId id);
  // The process of pidfd `fd` exited: stops watching it. nullopt when `fd`
  // is not one of ours.
  std::optional<ClientId> exited(int fd);
  // Stops watching every client not in `keep` (no longer in any table).
  void prune(const std::set<ClientId>& keep);
  [[nodiscard]] std::size_t size() const noexcept { return by_id_.size(); }

 private:
  void forget(std::map<ClientId, UniqueFd>::iterator it);

  int epoll_fd_;
  std::map<ClientId, UniqueFd> by_id_;
  std::map<int, ClientId> by_fd_;
};

}  // namespace shmq::daemon
