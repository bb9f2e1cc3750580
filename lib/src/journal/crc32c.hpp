// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI,
// ext4 and most storage formats. Ours, because Debian packages no C++ CRC32C
// library worth a dependency for one function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace shmq::journal {

// CRC32C of `data`, continuing from `crc` (0 to start). Uses the SSE4.2
// crc32 instruction when the CPU has it, else the portable tables.
[[nodiscard]] std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

// The table-driven (slicing-by-8) implementation, exposed so that tests can
// check both paths against each other.
[[nodiscard]] std::uint32_t crc32c_portable(std::span<const std::byte> data, std::uint32_t crc = 0) noexcept;

}  // namespace shmq::journal
