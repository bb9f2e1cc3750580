// Little-endian integers in byte buffers, independent of the host's order.
#pragma once

#include <concepts>
#include <cstddef>
#include <vector>

namespace shmq::journal::format {

template <std::unsigned_integral T>
void put_le(std::byte* p, T value) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::byte>(value >> (8 * i));
}

template <std::unsigned_integral T>
[[nodiscard]] T get_le(const std::byte* p) {
  T value = 0;
  for (std::size_t i = sizeof(T); i-- > 0;) value = static_cast<T>(value << 8) | std::to_integer<T>(p[i]);
  return value;
}

template <std::unsigned_integral T>
void append_le(std::vector<std::byte>& out, T value) {
  out.resize(out.size() + sizeof(T));
  put_le(out.data() + out.size() - sizeof(T), value);
}

}  // namespace shmq::journal::format
