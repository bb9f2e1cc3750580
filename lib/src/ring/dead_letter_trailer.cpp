// The dead-letter trailer (dead_letter_trailer.hpp): writing and parsing it.
#include "ring/dead_letter_trailer.hpp"

#include <cstring>
#include <string_view>

#include "journal/crc32c.hpp"

namespace shmq {

namespace detail {
namespace {

void put(std::vector<std::byte>& out, std::uint64_t value, std::size_t bytes) {
  for (std::size_t i = 0; i < bytes; ++i) out.push_back(static_cast<std::byte>(value >> (8 * i)));
}

std::uint64_t get(std::span<const std::byte> in, std::size_t at, std::size_t bytes) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < bytes; ++i) value |= std::to_integer<std::uint64_t>(in[at + i]) << (8 * i);
  return value;
}

std::string_view bounded(const std::string& name) {
  return std::string_view(name).substr(0, layout::kNameBytes - 1);
}

}  // namespace

std::vector<std::byte> with_dead_letter_trailer(std::span<const std::byte> payload, const DeadLetter& origin) {
  const std::string_view names[] = {bounded(origin.origin_queue), bounded(origin.origin_group),
                                    bounded(origin.origin_producer)};
  std::vector<std::byte> out(payload.begin(), payload.end());
  const std::size_t start = out.size();
  put(out, origin.origin_sequence, 8);
  put(out, origin.origin_position, 8);
  put(out, origin.origin_timestamp_ns, 8);
  put(out, origin.deliveries, 4);
  put(out, static_cast<std::uint8_t>(origin.reason), 1);
  for (const auto name : names) put(out, name.size(), 1);
  for (const auto name : names) {
    const auto* bytes = reinterpret_cast<const std::byte*>(name.data());
    out.insert(out.end(), bytes, bytes + name.size());
  }
  put(out, out.size() - start + kDeadLetterEndBytes, 4);
  put(out, journal::crc32c(std::span(out).subspan(start)), 4);
  put(out, kDeadLetterMagic, 8);
  return out;
}

std::optional<DeadLetter> parse_dead_letter(std::span<const std::byte> payload) {
  const std::size_t n = payload.size();
  if (n < kDeadLetterFixedBytes + kDeadLetterEndBytes || get(payload, n - 8, 8) != kDeadLetterMagic) return std::nullopt;
  const std::size_t trailer = get(payload, n - 16, 4);
  if (trailer < kDeadLetterFixedBytes + kDeadLetterEndBytes || trailer > std::min(n, kDeadLetterTrailerMax)) {
    return std::nullopt;
  }
  const std::size_t start = n - trailer;
  const auto covered = payload.subspan(start, trailer - 8);  // up to the CRC
  if (journal::crc32c(covered.first(covered.size() - 4)) != get(payload, n - 12, 4)) return std::nullopt;
  const std::size_t lengths[] = {get(payload, start + 29, 1), get(payload, start + 30, 1), get(payload, start + 31, 1)};
  if (kDeadLetterFixedBytes + lengths[0] + lengths[1] + lengths[2] + kDeadLetterEndBytes != trailer) return std::nullopt;
  const std::uint64_t reason = get(payload, start + 28, 1);
  if (reason > static_cast<std::uint8_t>(DeadLetterReason::Rejected)) return std::nullopt;
  DeadLetter d;
  d.payload = payload.first(start);
  d.origin_sequence = get(payload, start, 8);
  d.origin_position = get(payload, start + 8, 8);
  d.origin_timestamp_ns = get(payload, start + 16, 8);
  d.deliveries = static_cast<std::uint32_t>(get(payload, start + 24, 4));
  d.reason = static_cast<DeadLetterReason>(reason);
  std::size_t at = start + kDeadLetterFixedBytes;
  std::string* names[] = {&d.origin_queue, &d.origin_group, &d.origin_producer};
  for (int i = 0; i < 3; ++i) {
    names[i]->assign(reinterpret_cast<const char*>(payload.data() + at), lengths[i]);
    at += lengths[i];
  }
  return d;
}

}  // namespace detail

std::string_view to_string(DeadLetterReason reason) noexcept {
  switch (reason) {
    case DeadLetterReason::MaxDeliveries: return "max-deliveries";
    case DeadLetterReason::Expired: return "expired";
    case DeadLetterReason::Rejected: return "rejected";
  }
  return "unknown";
}

std::optional<DeadLetter> Message::dead_letter() const { return detail::parse_dead_letter(payload); }

}  // namespace shmq
