#include "journal/scanner.hpp"

#include <algorithm>
#include <array>

#include "journal/bytes.hpp"

namespace shmq::journal {
namespace {

// Reads at least this much at a time, so that small records cost no system call each.
constexpr std::size_t kReadAhead = 256u << 10;

}  // namespace

SegmentScanner::SegmentScanner(const File& file, std::uint64_t offset, std::uint32_t max_payload)
    : file_(&file), max_payload_(max_payload), offset_(offset), size_(file.size()) {}

ScanStep SegmentScanner::next() {
  format::ParsedRecord record;
  auto parsed = parse_at(offset_, record);
  if (parsed != format::Parse::Ok) {
    size_ = file_->size();  // the writer may have added to it since
    parsed = parse_at(offset_, record);
  }
  if (parsed == format::Parse::Ok) {
    ScanStep step{ScanStep::Record, offset_, record.bytes(), false, record};
    offset_ += record.bytes();
    return step;
  }
  if (offset_ >= size_) return ScanStep{ScanStep::End, offset_, 0, false, {}};
  const auto good = find_good_record(offset_);
  ScanStep step{ScanStep::Damage, offset_, good.value_or(size_) - offset_, good.has_value(), {}};
  offset_ = good.value_or(size_);
  return step;
}

format::Parse SegmentScanner::parse_at(std::uint64_t offset, format::ParsedRecord& out) {
  const auto header = load(offset, format::kRecordHeaderBytes);
  if (header.size() < format::kRecordHeaderBytes) return format::Parse::Incomplete;
  const auto size = format::record_size(header.first<format::kRecordHeaderBytes>(), max_payload_);
  if (!size) return format::Parse::Bad;
  return format::parse_record(load(offset, *size), max_payload_, out);
}

// The damage ends where a whole, good record starts. A record's marker is
// not CRC-protected, so look for markers and let the CRC decide.
std::optional<std::uint64_t> SegmentScanner::find_good_record(std::uint64_t from) {
  format::ParsedRecord ignored;
  for (auto at = find_marker(from + 1); at; at = find_marker(*at + 1)) {
    if (parse_at(*at, ignored) == format::Parse::Ok) return at;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> SegmentScanner::find_marker(std::uint64_t from) {
  std::array<std::byte, 4> marker{};
  format::put_le(marker.data(), format::kRecordMagic);
  while (from + format::kRecordHeaderBytes <= size_) {
    const auto bytes = load(from, kReadAhead);
    if (bytes.size() < format::kRecordHeaderBytes) return std::nullopt;  // the file shrank under us
    // std::search, not std::ranges::search: clang 14 cannot compile the
    // latter's subrange result with libstdc++ 12 (the fuzz build uses clang).
    const auto hit = std::search(bytes.begin(), bytes.end(), marker.begin(), marker.end());
    if (hit != bytes.end()) return from + static_cast<std::uint64_t>(hit - bytes.begin());
    // A marker may straddle the window's end: look again from its last 3 bytes.
    from += bytes.size() - (marker.size() - 1);
  }
  return std::nullopt;
}

std::span<const std::byte> SegmentScanner::load(std::uint64_t offset, std::size_t bytes) {
  const std::uint64_t available = offset < size_ ? size_ - offset : 0;
  const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(bytes, available));
  if (offset < window_offset_ || offset + want > window_offset_ + window_bytes_) {
    window_.resize(std::max(want, kReadAhead));
    const auto read = static_cast<std::size_t>(std::min<std::uint64_t>(window_.size(), available));
    window_offset_ = offset;
    window_bytes_ = file_->read_at(offset, std::span(window_).first(read));
  }
  const auto start = static_cast<std::size_t>(offset - window_offset_);
  return std::span<const std::byte>(window_).subspan(start, std::min(want, window_bytes_ - start));
}

}  // namespace shmq::journal
