// What a dead-letter move appends to a message's payload: its origin. In the
// payload, not the record header, so that it travels wherever payloads do
// (journals, rebuilds, bridges) and costs the data path nothing: only
// Message::dead_letter() looks for it.
//
//   [original payload]
//   [u64 origin sequence][u64 origin position][u64 origin timestamp]
//   [u32 deliveries][u8 reason][u8 queue length][u8 group length][u8 producer length]
//   [origin queue][origin group][origin producer]
//   [u32 trailer bytes][u32 CRC32C of the trailer up to here][u64 kDeadLetterMagic]
//
// Little-endian. The magic and the CRC make a user payload that merely ends
// like a trailer a 2^-96 accident.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "shm/layout.hpp"
#include "shmq/consumer.hpp"
#include "shmq/queue.hpp"

namespace shmq::detail {

inline constexpr std::uint64_t kDeadLetterMagic = 0x3151'4c44'514d'4853ULL;  // "SHMQDLQ1" little-endian
inline constexpr std::size_t kDeadLetterFixedBytes = 8 + 8 + 8 + 4 + 4;
inline constexpr std::size_t kDeadLetterEndBytes = 4 + 4 + 8;
// The most a trailer adds to a payload (three names at their longest).
inline constexpr std::size_t kDeadLetterTrailerMax =
    kDeadLetterFixedBytes + 3 * (layout::kNameBytes - 1) + kDeadLetterEndBytes;
static_assert(kDeadLetterTrailerMax == kDeadLetterOverhead, "the public figure (shmq/queue.hpp) is this one");

// `payload` with `origin`'s trailer appended (origin.payload is ignored).
std::vector<std::byte> with_dead_letter_trailer(std::span<const std::byte> payload, const DeadLetter& origin);

// The origin a payload's trailer records, its payload view set to the part
// before the trailer; nullopt when the payload carries none.
std::optional<DeadLetter> parse_dead_letter(std::span<const std::byte> payload);

}  // namespace shmq::detail
