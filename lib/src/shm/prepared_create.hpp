// QueueAccess, the friend of Queue inside libshmq: creating a queue whose
// contents are set up before anyone can open it (how shmqd rebuilds a durable
// queue from its journal after a reboot: openers wait for the layout version,
// which is published only after `prepare`), and the mapping behind a handle
// (detail::mapping_of, shm/mapping.hpp).
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "shm/mapping.hpp"
#include "shmq/queue.hpp"

namespace shmq::detail {

using PrepareSegment = std::function<void(const Mapping&)>;

struct QueueAccess {
  // Queue::create, calling `prepare` (if any) on the initialised segment
  // before publishing it. If `prepare` throws, the segment is removed.
  // owner: the segment file's owner (-1: this process's; another needs root),
  // as shmqd's rebuild gives back the one a queue had.
  static Queue create_prepared(std::string_view name, const QueueOptions& options, std::string_view ns,
                               const PrepareSegment& prepare, uid_t owner);
  static const std::shared_ptr<Mapping>& mapping(const Queue& queue) noexcept { return queue.map_; }
};

}  // namespace shmq::detail
