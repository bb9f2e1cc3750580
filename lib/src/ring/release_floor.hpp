// The producers' release floor (ring/release_floor.cpp).
#pragma once

#include <cstdint>

#include "shm/mapping.hpp"

namespace shmq::detail {

// Raises head to the release floor (the lowest position any group still
// needs, never past journal_written in a durable queue) and returns the new
// claim limit, head + capacity. Never waits for the segment lock: while a
// group's creation stays in progress (a stopped joiner), the limit from head
// as it is, so a claim past it is Full.
std::uint64_t refresh_limit(const Mapping& map);

}  // namespace shmq::detail
