// A producer: the process-local handle on one producer entry of a queue.
//
// One thread at a time may use a Producer. Names are unique per queue while
// attached: a second live attach of the same name is refused (NameInUse).
// Re-attaching a name after a detach or a crash resumes its sequence.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "shmq/export.hpp"
#include "shmq/queue.hpp"
#include "shmq/status.hpp"

namespace shmq {

using Clock = std::chrono::steady_clock;
using Duration = std::chrono::nanoseconds;
inline constexpr Duration kForever = Duration::max();

struct WaitOptions {
  // Polls before a blocked call sleeps on the futex. 0 sleeps at once.
  std::uint32_t spin = 4000;
};

struct ProducerOptions {
  WaitOptions wait{};
  // Message timestamps. By default CLOCK_REALTIME_COARSE: the time of the
  // kernel's last tick (1 to 4 ms resolution, like Kafka's millisecond
  // timestamps), a few ns a send; a message may carry a time up to one tick
  // before its send, so a start "from TIME" may include or miss messages sent
  // within a tick of TIME. true: CLOCK_REALTIME, nanosecond resolution, but
  // its serialising clock read costs more than the rest of a send (measured:
  // 64 B streaming 25 M msgs/s coarse, 11 M precise; docs/benchmarks.md).
  bool precise_timestamps = false;
};

// When a send returns Ok.
enum class Confirm : std::uint8_t {
  // The record is committed in shared memory: it survives the crash of any
  // process, shmqd's included, but not of the host.
  Shared,
  // Durable queues: shmqd's journal has also synced it to disk (fdatasync):
  // it survives power loss. Waits for shmqd, whose group commit makes one
  // fsync confirm every record written meanwhile, by any producer.
  Durable,
};

class SHMQ_API Producer {
 public:
  static Producer attach(const Queue& queue, std::string_view name, ProducerOptions options = {});
  Producer(Producer&&) noexcept;
  Producer& operator=(Producer&&) noexcept;
  ~Producer();  // detaches

  [[nodiscard]] std::uint32_t id() const noexcept;
  // The last sequence the queue committed from this name.
  [[nodiscard]] std::uint64_t last_sequence() const noexcept;

  // Next sequence (last_sequence() + 1) assigned automatically.
  [[nodiscard]] Status try_send(std::span<const std::byte> payload) noexcept;
  // Explicit sequence: Duplicate (nothing enqueued) unless seq > last_sequence().
  [[nodiscard]] Status try_send(std::uint64_t seq, std::span<const std::byte> payload) noexcept;
  // Waits for room until `timeout` passes (Timeout then).
  [[nodiscard]] Status send(std::span<const std::byte> payload, Duration timeout = kForever) noexcept;
  [[nodiscard]] Status send(std::uint64_t seq, std::span<const std::byte> payload,
                            Duration timeout = kForever) noexcept;
  // With a choice of confirmation. Confirm::Durable on a queue that is not
  // durable: NotDurable (nothing sent). Timeout after the record was
  // committed but before the journal synced it: the message is in the queue,
  // its durability unconfirmed (shmqd not running, or its disk full); a retry
  // with the same sequence gets Duplicate, and wait_durable() confirms it.
  [[nodiscard]] Status send(std::span<const std::byte> payload, Confirm confirm,
                            Duration timeout = kForever) noexcept;
  [[nodiscard]] Status send(std::uint64_t seq, std::span<const std::byte> payload, Confirm confirm,
                            Duration timeout = kForever) noexcept;
  // A batch: sends the first messages of `payloads`, with the next sequences,
  // claiming ring space for all of them with one move of the tail: as many
  // as fit before the ring's end and in the room left. Returns how many were
  // sent; `status` is Ok when all were, else why the next was not (Full: no
  // room now, TooLarge: it exceeds max_message). send_batch waits up to
  // `timeout` for room for the first (Timeout then, 0 sent).
  [[nodiscard]] std::size_t try_send_batch(std::span<const std::span<const std::byte>> payloads,
                                           Status& status) noexcept;
  [[nodiscard]] std::size_t send_batch(std::span<const std::span<const std::byte>> payloads, Duration timeout,
                                       Status& status) noexcept;
  // Durable queues: waits until every record committed under this producer's
  // name is synced to disk: this handle's, and those of the handles before it
  // (an earlier run, a crashed one), whose sequences a resend finds Duplicate.
  // So a batch resent after a failure is confirmed whether it was sent now or
  // before. Send a batch with Confirm::Shared, then wait once. NotDurable on
  // a queue that is not durable; Timeout when shmqd has not synced it in time.
  [[nodiscard]] Status wait_durable(Duration timeout = kForever) noexcept;

  // Zero-copy: claim room for `size` bytes, write them into claimed(), then
  // commit(). One claim at a time; abort() turns it into a skipped record.
  // The claim is visible in shared memory, so if this process dies before
  // commit() the claim is repaired into a skipped record and the sequence is
  // not counted as sent.
  [[nodiscard]] Status try_claim(std::size_t size) noexcept;
  [[nodiscard]] Status try_claim(std::uint64_t seq, std::size_t size) noexcept;
  [[nodiscard]] Status claim(std::size_t size, Duration timeout = kForever) noexcept;
  [[nodiscard]] std::span<std::byte> claimed() noexcept;
  // Zero-copy batch: claims room for the first records of `sizes` (payload
  // bytes each), with the next sequences, with one move of the tail: as many
  // as fit in one stretch before the ring's end and in the room left. Returns
  // how many; 0 with `status` Full (no room for the first; claim_batch waits
  // up to `timeout` for it, Timeout then) or TooLarge (the first exceeds
  // max_message); `status` is Ok whenever some were claimed: claim the rest
  // after the commit. Write record i into claimed(i), i < claimed_count(),
  // then commit() commits them all, in order (returning the last one's
  // position), or abort() skips them all. If this process dies before the
  // commit, the records it committed stay and the rest are skipped, their
  // sequences not counted as sent, as in a dying try_send_batch.
  [[nodiscard]] std::size_t try_claim_batch(std::span<const std::size_t> sizes, Status& status) noexcept;
  [[nodiscard]] std::size_t claim_batch(std::span<const std::size_t> sizes, Duration timeout,
                                        Status& status) noexcept;
  // The open claim's records: 1 for a single claim, 0 when none is open.
  [[nodiscard]] std::size_t claimed_count() const noexcept;
  // Record i of the open claim (claimed(0) is claimed()); empty past the count.
  [[nodiscard]] std::span<std::byte> claimed(std::size_t i) noexcept;
  // Commits the open claim (all of a batch's records); returns the (last)
  // committed record's log position, 0 when no claim was open.
  std::uint64_t commit() noexcept;
  void abort() noexcept;

  // Log position of the last record this handle committed.
  [[nodiscard]] std::uint64_t last_position() const noexcept;

  struct SHMQ_LOCAL State;  // libshmq's own (lib/src/ring)

 private:
  explicit Producer(std::unique_ptr<State> state);
  [[nodiscard]] Status wait_durable_until(Clock::time_point deadline) noexcept;
  std::uint64_t commit_batch() noexcept;
  std::unique_ptr<State> s_;
};

inline std::span<const std::byte> as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

}  // namespace shmq
