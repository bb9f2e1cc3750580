// Small text helpers for the tools' output.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shmq/queue.hpp"

namespace shmq::tools {

[[nodiscard]] bool is_utf8(std::string_view text) noexcept;

[[nodiscard]] std::string base64(std::string_view bytes);

// Now, as CLOCK_REALTIME nanoseconds (the clock of message timestamps).
[[nodiscard]] std::uint64_t unix_now_ns() noexcept;

// CLOCK_REALTIME nanoseconds as RFC 3339 in UTC: "2026-11-29T14:00:00.123456789Z".
[[nodiscard]] std::string rfc3339(std::uint64_t unix_ns);

// "512 B", "64.0 KiB", "1.5 GiB".
[[nodiscard]] std::string human_bytes(std::uint64_t bytes);

// A duration in the largest unit that holds it exactly, as parse_duration()
// reads it back: "2m", "3s", "1500ms", "250ns"; "0" for none.
[[nodiscard]] std::string human_duration(std::chrono::nanoseconds duration);

// A queue's delivery policy in words, every part named:
// "max deliveries 3, dead-letter queue 'orders.dlq', ack timeout 30s, ttl none".
[[nodiscard]] std::string describe_policy(const DeliveryPolicy& policy);

// `bytes` with anything unprintable as \xNN, cut to `max_chars` with "...".
[[nodiscard]] std::string printable(std::string_view bytes, std::size_t max_chars);

[[nodiscard]] inline std::string_view as_text(std::span<const std::byte> bytes) noexcept {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace shmq::tools
