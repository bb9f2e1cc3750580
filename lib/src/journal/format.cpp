// Segment headers, record headers and segment names (docs/journal.md).
#include "journal/format.hpp"

#include <charconv>
#include <cstring>

#include "journal/bytes.hpp"
#include "journal/crc32c.hpp"

namespace shmq::journal::format {
namespace {

// Header field offsets.
constexpr std::size_t kMagicAt = 0, kVersionAt = 8, kHeaderBytesAt = 12, kFirstAt = 16, kCreatedAt = 24,
                      kNameAt = 32;
// Record field offsets.
constexpr std::size_t kRecMagicAt = 0, kCrcAt = 4, kLengthAt = 8, kKindAt = 12, kFlagsAt = 14,
                      kProducerAt = 16, kReservedAt = 20, kSequenceAt = 24, kPositionAt = 32,
                      kTimestampAt = 40;
constexpr std::string_view kSuffix = ".journal";
constexpr std::size_t kNameDigits = 20;

[[noreturn]] void corrupt_header(const std::filesystem::path& file, const std::string& why) {
  throw JournalError(Errc::Corrupt, file.string() + ": damaged segment header: " + why, file, 0);
}

bool known_kind(std::uint16_t kind) {
  return kind == static_cast<std::uint16_t>(RecordKind::Data) ||
         kind == static_cast<std::uint16_t>(RecordKind::Checkpoint);
}

}  // namespace

HeaderBytes encode_header(const SegmentHeader& header) {
  HeaderBytes out{};
  put_le(&out[kMagicAt], kFileMagic);
  put_le(&out[kVersionAt], header.version);
  put_le(&out[kHeaderBytesAt], static_cast<std::uint32_t>(kHeaderBytes));
  put_le(&out[kFirstAt], header.first_position);
  put_le(&out[kCreatedAt], header.created_ns);
  std::memcpy(&out[kNameAt], header.queue.data(), std::min(header.queue.size(), kQueueNameBytes - 1));
  put_le(&out[kHeaderCrcOffset], crc32c(std::span(out).first(kHeaderCrcOffset)));
  return out;
}

SegmentHeader decode_header(const HeaderBytes& bytes, const std::filesystem::path& file) {
  // Magic and version first: a newer format may lay out everything after them differently.
  if (get_le<std::uint64_t>(&bytes[kMagicAt]) != kFileMagic) {
    throw JournalError(Errc::Foreign, file.string() + ": not a shmq journal segment", file, 0);
  }
  SegmentHeader header;
  header.version = get_le<std::uint32_t>(&bytes[kVersionAt]);
  if (header.version > kVersion) {
    throw JournalError(Errc::NewerVersion,
                       file.string() + ": journal format version " + std::to_string(header.version) +
                           " is newer than this build reads (" + std::to_string(kVersion) + ")",
                       file, 0);
  }
  if (header.version == 0) corrupt_header(file, "version 0");
  if (get_le<std::uint32_t>(&bytes[kHeaderCrcOffset]) != crc32c(std::span(bytes).first(kHeaderCrcOffset))) {
    corrupt_header(file, "CRC mismatch");
  }
  if (get_le<std::uint32_t>(&bytes[kHeaderBytesAt]) != kHeaderBytes) corrupt_header(file, "header size");
  const auto* name = reinterpret_cast<const char*>(&bytes[kNameAt]);
  const std::size_t name_length = ::strnlen(name, kQueueNameBytes);
  if (name_length == kQueueNameBytes) corrupt_header(file, "queue name not terminated");
  header.queue.assign(name, name_length);
  header.first_position = get_le<std::uint64_t>(&bytes[kFirstAt]);
  header.created_ns = get_le<std::uint64_t>(&bytes[kCreatedAt]);
  return header;
}

void append_record(std::vector<std::byte>& out, const RecordFields& fields,
                   std::span<const std::byte> payload) {
  const std::size_t start = out.size();
  out.resize(start + kRecordHeaderBytes + payload.size());
  std::byte* p = out.data() + start;
  put_le(p + kRecMagicAt, kRecordMagic);
  put_le(p + kLengthAt, static_cast<std::uint32_t>(payload.size()));
  put_le(p + kKindAt, static_cast<std::uint16_t>(fields.kind));
  put_le(p + kFlagsAt, std::uint16_t{0});
  put_le(p + kProducerAt, fields.producer_id);
  put_le(p + kReservedAt, std::uint32_t{0});
  put_le(p + kSequenceAt, fields.sequence);
  put_le(p + kPositionAt, fields.position);
  put_le(p + kTimestampAt, fields.timestamp_ns);
  if (!payload.empty()) std::memcpy(p + kRecordHeaderBytes, payload.data(), payload.size());
  const std::span<const std::byte> covered(p + kRecordCrcStart, out.size() - start - kRecordCrcStart);
  put_le(p + kCrcAt, crc32c(covered));
}

std::optional<std::size_t> record_size(std::span<const std::byte, kRecordHeaderBytes> header,
                                       std::uint32_t max_payload) {
  if (get_le<std::uint32_t>(&header[kRecMagicAt]) != kRecordMagic) return std::nullopt;
  const auto length = get_le<std::uint32_t>(&header[kLengthAt]);
  if (length > max_payload) return std::nullopt;
  return kRecordHeaderBytes + length;
}

Parse parse_record(std::span<const std::byte> bytes, std::uint32_t max_payload, ParsedRecord& out) {
  if (bytes.size() < kRecordHeaderBytes) return Parse::Incomplete;
  const auto size = record_size(bytes.first<kRecordHeaderBytes>(), max_payload);
  if (!size) return Parse::Bad;
  if (bytes.size() < *size) return Parse::Incomplete;
  const std::byte* p = bytes.data();
  if (get_le<std::uint32_t>(p + kCrcAt) != crc32c(bytes.subspan(kRecordCrcStart, *size - kRecordCrcStart))) {
    return Parse::Bad;
  }
  const auto kind = get_le<std::uint16_t>(p + kKindAt);
  // Reserved fields are zero in version 1: anything else is not ours.
  if (!known_kind(kind) || get_le<std::uint16_t>(p + kFlagsAt) != 0 ||
      get_le<std::uint32_t>(p + kReservedAt) != 0) {
    return Parse::Bad;
  }
  // No Writer appends a data record at kUnknownPosition (append refuses it),
  // and one past it would wrap recovery's written() around to 0, letting
  // records out of order in after it (found by fuzz_journal).
  if (kind == static_cast<std::uint16_t>(RecordKind::Data) &&
      get_le<std::uint64_t>(p + kPositionAt) == kUnknownPosition) {
    return Parse::Bad;
  }
  out.fields = RecordFields{static_cast<RecordKind>(kind), get_le<std::uint32_t>(p + kProducerAt),
                            get_le<std::uint64_t>(p + kSequenceAt), get_le<std::uint64_t>(p + kPositionAt),
                            get_le<std::uint64_t>(p + kTimestampAt)};
  out.payload = bytes.subspan(kRecordHeaderBytes, *size - kRecordHeaderBytes);
  return Parse::Ok;
}

std::string segment_name(std::uint64_t first_position) {
  std::string digits = std::to_string(first_position);
  return std::string(kNameDigits - digits.size(), '0') + digits + std::string(kSuffix);
}

std::optional<std::uint64_t> parse_segment_name(std::string_view name) {
  if (name.size() != kNameDigits + kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  std::uint64_t position = 0;
  const char* end = name.data() + kNameDigits;
  const auto [ptr, ec] = std::from_chars(name.data(), end, position);
  if (ec != std::errc{} || ptr != end) return std::nullopt;
  return position;
}

}  // namespace shmq::journal::format
