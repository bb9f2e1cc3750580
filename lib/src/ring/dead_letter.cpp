// The delivery policy on the data path: nack, reject, dead-letter moves.
#include "recovery/repair.hpp"
#include "ring/consumer_state.hpp"

namespace shmq {

Status Consumer::nack(const Message&) noexcept { return Status::NotInFlight; }
Status Consumer::reject(const Message&) noexcept { return Status::NotInFlight; }

namespace detail {
std::uint64_t expire_leases(const Mapping&, bool* busy) {
  if (busy != nullptr) *busy = false;
  return 0;
}
}  // namespace detail

}  // namespace shmq
