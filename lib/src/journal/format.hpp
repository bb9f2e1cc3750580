// The byte layout of segment files (docs/journal.md): the file header, the
// record header and the checkpoint payload. All integers are little-endian,
// whatever the host.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/journal.hpp"

namespace shmq::journal::format {

inline constexpr std::uint64_t kFileMagic = 0x4c4e524a514d4853ULL;  // "SHMQJRNL"
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kHeaderBytes = 128;
inline constexpr std::size_t kQueueNameBytes = 64;  // 63 bytes and a NUL
inline constexpr std::size_t kHeaderCrcOffset = kHeaderBytes - 4;

inline constexpr std::uint32_t kRecordMagic = 0x3152'4a53u;  // "SJR1"
inline constexpr std::size_t kRecordHeaderBytes = 48;
inline constexpr std::size_t kRecordCrcStart = 8;  // the CRC covers [8, end of payload)

enum class RecordKind : std::uint16_t { Data = 1, Checkpoint = 2 };

struct SegmentHeader {
  std::uint32_t version = kVersion;
  std::uint64_t first_position = 0;
  std::uint64_t created_ns = 0;
  std::string queue;
};

using HeaderBytes = std::array<std::byte, kHeaderBytes>;
[[nodiscard]] HeaderBytes encode_header(const SegmentHeader& header);
// Throws JournalError: Foreign (no magic), NewerVersion, Corrupt (bad CRC or fields).
[[nodiscard]] SegmentHeader decode_header(const HeaderBytes& bytes, const std::filesystem::path& file);

struct RecordFields {
  RecordKind kind = RecordKind::Data;
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t position = 0;
  std::uint64_t timestamp_ns = 0;
};

struct ParsedRecord {
  RecordFields fields;
  std::span<const std::byte> payload;
  [[nodiscard]] std::size_t bytes() const { return kRecordHeaderBytes + payload.size(); }
};

void append_record(std::vector<std::byte>& out, const RecordFields& fields,
                   std::span<const std::byte> payload);

enum class Parse { Ok, Incomplete, Bad };
// The whole record's size from its header, or nullopt when the header cannot
// start a record (no marker, or a length beyond max_payload).
[[nodiscard]] std::optional<std::size_t> record_size(std::span<const std::byte, kRecordHeaderBytes> header,
                                                     std::uint32_t max_payload);
// Parses the record at the start of `bytes`, which may hold less than the
// record (Incomplete) or more.
[[nodiscard]] Parse parse_record(std::span<const std::byte> bytes, std::uint32_t max_payload,
                                 ParsedRecord& out);

[[nodiscard]] std::vector<std::byte> encode_checkpoint(const Checkpoint& checkpoint);
// Throws JournalError(Corrupt) when the payload does not parse.
[[nodiscard]] Checkpoint decode_checkpoint(std::span<const std::byte> payload);

// "00000000000000000064.journal": 20 digits hold any 64-bit position, and
// names sort as positions do.
[[nodiscard]] std::string segment_name(std::uint64_t first_position);
[[nodiscard]] std::optional<std::uint64_t> parse_segment_name(std::string_view name);

}  // namespace shmq::journal::format
