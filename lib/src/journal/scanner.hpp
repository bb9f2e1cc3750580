// Walks the records of one segment file: good records, and damaged stretches
// between them. Reads through a window buffer with pread, never past the
// file's end, and believes no length beyond max_payload.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "journal/file.hpp"
#include "journal/format.hpp"

namespace shmq::journal {

struct ScanStep {
  enum Kind { Record, Damage, End } kind = End;
  std::uint64_t offset = 0;  // of the record or the damage
  std::uint64_t bytes = 0;   // of the record or the damage
  // Damage: a good record follows in this file (the damage is not its tail).
  bool followed = false;
  format::ParsedRecord record;  // Record: its payload is valid until the next call
};

class SegmentScanner {
 public:
  SegmentScanner(const File& file, std::uint64_t offset, std::uint32_t max_payload);

  // Damage runs from a record that does not parse to the next one that does,
  // or to the end of the file.
  [[nodiscard]] ScanStep next();
  // Goes back to `offset`, to read again what was not complete there.
  void seek(std::uint64_t offset) { offset_ = offset; }

 private:
  format::Parse parse_at(std::uint64_t offset, format::ParsedRecord& out);
  std::optional<std::uint64_t> find_good_record(std::uint64_t from);
  std::optional<std::uint64_t> find_marker(std::uint64_t from);
  // Makes the window hold [offset, offset + bytes), or what of it the file has.
  std::span<const std::byte> load(std::uint64_t offset, std::size_t bytes);

  const File* file_;
  std::uint32_t max_payload_;
  std::uint64_t offset_;
  std::uint64_t size_;
  std::vector<std::byte> window_;
  std::uint64_t window_offset_ = 0;
  std::size_t window_bytes_ = 0;  // valid bytes in window_
};

}  // namespace shmq::journal
