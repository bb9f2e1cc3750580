// Queue::segment_bytes: the size of a queue's segment, from its layout.
#include "shm/layout.hpp"
#include "shm/segment.hpp"
#include "shmq/queue.hpp"

namespace shmq {

std::uint64_t Queue::segment_bytes(const QueueOptions& options) {
  detail::validate_queue_options(options);
  return layout::geometry(options.capacity, options.max_producers, options.max_groups, options.max_consumers)
      .segment_bytes;
}

}  // namespace shmq
