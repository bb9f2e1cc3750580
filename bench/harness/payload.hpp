// The self-checking messages of the throughput and ping-pong runs.
//
// The first 8 bytes hold producer:8 | sequence:40 | check:16; the rest is a
// filler that depends on the sequence. The check covers the producer, the
// sequence and the sum of the filler words, so a torn, stale or misrouted
// message fails verify().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace bench {

inline constexpr std::size_t kMinPayload = 8;
inline constexpr std::uint32_t kMarkerProducer = 255;  // end of stream
inline constexpr std::uint32_t kMaxProducers = 254;

struct Stamp {
  std::uint32_t producer = 0;
  std::uint64_t sequence = 0;
};

namespace detail {

inline constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;
inline constexpr std::uint64_t kSequenceMask = (1ull << 40) - 1;

inline std::uint64_t load_word(const std::byte* p, std::size_t n = 8) {
  std::uint64_t w = 0;
  std::memcpy(&w, p, n);
  return w;
}

// Sum of the words after the first, the last one zero-padded.
inline std::uint64_t body_sum(std::span<const std::byte> message) {
  std::uint64_t sum = 0;
  std::size_t i = 8;
  for (; i + 8 <= message.size(); i += 8) sum += load_word(message.data() + i);
  if (i < message.size()) sum += load_word(message.data() + i, message.size() - i);
  return sum;
}

inline std::uint64_t head_word(Stamp s, std::uint64_t body) {
  const std::uint64_t id = (std::uint64_t{s.producer} << 56) | ((s.sequence & kSequenceMask) << 16);
  std::uint64_t h = (id ^ body) * kGolden;
  h ^= h >> 32;
  return id | ((h ^ (h >> 16)) & 0xFFFF);
}

}  // namespace detail

// Writes a full message of message.size() (>= kMinPayload) bytes.
inline void stamp(std::span<std::byte> message, Stamp s) {
  std::uint64_t word = (s.sequence + 1) * detail::kGolden;
  std::size_t i = 8;
  for (; i + 8 <= message.size(); i += 8, word += detail::kGolden) std::memcpy(message.data() + i, &word, 8);
  if (i < message.size()) std::memcpy(message.data() + i, &word, message.size() - i);
  const std::uint64_t head = detail::head_word(s, detail::body_sum(message));
  std::memcpy(message.data(), &head, 8);
}

// The stamp of an intact message of `size` bytes, else nothing.
inline std::optional<Stamp> verify(std::span<const std::byte> message, std::size_t size) {
  if (message.size() != size || size < kMinPayload) return std::nullopt;
  const std::uint64_t head = detail::load_word(message.data());
  const Stamp s{static_cast<std::uint32_t>(head >> 56), (head >> 16) & detail::kSequenceMask};
  if (detail::head_word(s, detail::body_sum(message)) != head) return std::nullopt;
  return s;
}

}  // namespace bench
