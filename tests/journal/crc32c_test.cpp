#include "journal/crc32c.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string_view>
#include <vector>

namespace shmq::journal {
namespace {

std::span<const std::byte> bytes_of(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc32c({}), 0u);
  EXPECT_EQ(crc32c(bytes_of("123456789")), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(bytes_of("123456789")), 0xE3069283u);
  // RFC 3720, appendix B.4.
  std::vector<std::byte> zeros(32, std::byte{0}), ones(32, std::byte{0xff}), ascending(32);
  for (std::size_t i = 0; i < ascending.size(); ++i) ascending[i] = static_cast<std::byte>(i);
  for (const auto& [data, crc] :
       {std::pair{zeros, 0x8A9136AAu}, {ones, 0x62A8AB43u}, {ascending, 0x46DD794Eu}}) {
    EXPECT_EQ(crc32c(data), crc);
    EXPECT_EQ(crc32c_portable(data), crc);
  }
}

TEST(Crc32c, FastPathMatchesPortableAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::vector<std::byte> data(300);
  for (auto& b : data) b = static_cast<std::byte>(rng());
  for (std::size_t start = 0; start < 8; ++start) {
    for (std::size_t length = 0; start + length <= data.size(); ++length) {
      const auto part = std::span(data).subspan(start, length);
      ASSERT_EQ(crc32c(part), crc32c_portable(part)) << start << " " << length;
    }
  }
}

TEST(Crc32c, ContinuesAcrossPieces) {
  const auto whole = bytes_of("the quick brown fox jumps over the lazy dog");
  for (std::size_t cut = 0; cut <= whole.size(); ++cut) {
    EXPECT_EQ(crc32c(whole.subspan(cut), crc32c(whole.first(cut))), crc32c(whole));
    EXPECT_EQ(crc32c_portable(whole.subspan(cut), crc32c_portable(whole.first(cut))), crc32c(whole));
  }
}

}  // namespace
}  // namespace shmq::journal
