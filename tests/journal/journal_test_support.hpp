// Helpers for the journal tests: a temporary directory per test, records with
// recognisable payloads, and raw access to segment files.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journaling/writer.hpp"

namespace shmq::journal::test {

inline constexpr std::string_view kQueue = "orders";

// 4 KiB segments, so that a few hundred records roll many times.
inline Options small_segments(bool salvage = false) {
  Options options;
  options.segment_bytes = 4096;
  options.salvage = salvage;
  return options;
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shmq-journal-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::filesystem::path journal() const { return path_ / kQueue; }

 private:
  std::filesystem::path path_;
};

// Record i: position 64 + 64 i (as a ring would space small records), a
// payload of 0..99 bytes that depend on i, a timestamp of 1000 i.
inline std::uint64_t position_of(std::size_t i) { return kDefaultFirstPosition + 64 * i; }

inline std::vector<std::byte> payload_of(std::size_t i) {
  std::vector<std::byte> payload((i * 37) % 100);
  for (std::size_t k = 0; k < payload.size(); ++k) payload[k] = static_cast<std::byte>(i * 131 + k * 7);
  return payload;
}

// A copy of a record as read, outliving the cursor's buffer.
struct Stored {
  std::uint64_t position;
  std::uint32_t producer_id;
  std::uint64_t sequence;
  std::uint64_t timestamp_ns;
  std::vector<std::byte> payload;
  bool operator==(const Stored&) const = default;
};

inline Stored expected(std::size_t i) {
  return {position_of(i), static_cast<std::uint32_t>(i % 5), i + 1, 1000 * i, payload_of(i)};
}

// Appends records [first, last) in batches of `batch`.
inline void append_range(Writer& writer, std::size_t first, std::size_t last, std::size_t batch = 7) {
  for (std::size_t begin = first; begin < last; begin += batch) {
    std::vector<Stored> owned;
    for (std::size_t i = begin; i < std::min(last, begin + batch); ++i) owned.push_back(expected(i));
    std::vector<Record> records;
    for (const auto& s : owned)
      records.push_back({s.position, s.producer_id, s.sequence, s.timestamp_ns, s.payload});
    writer.append(records);
  }
}

inline std::vector<Stored> drain(Cursor& cursor) {
  std::vector<Stored> out;
  while (const auto r = cursor.next()) {
    out.push_back(
        {r->position, r->producer_id, r->sequence, r->timestamp_ns, {r->payload.begin(), r->payload.end()}});
  }
  return out;
}

inline std::vector<Stored> read_all(const std::filesystem::path& dir, std::uint64_t from = 0,
                                    const Options& options = {}) {
  auto cursor = Cursor::open(dir, kQueue, from, options);
  return drain(cursor);
}

inline std::vector<Stored> expected_range(std::size_t first, std::size_t last) {
  std::vector<Stored> out;
  for (std::size_t i = first; i < last; ++i) out.push_back(expected(i));
  return out;
}

inline std::vector<std::byte> read_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

inline void write_bytes(const std::filesystem::path& file, std::span<const std::byte> bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Index of the first record a segment can hold (its name is one past the
// position of the record before it).
inline std::size_t first_index(std::uint64_t segment_first_position) {
  return (segment_first_position - kDefaultFirstPosition + 63) / 64;
}

// Byte offset of record i in the segment starting at `segment_first_position`,
// when the journal has no checkpoints.
inline std::uint64_t record_offset(std::uint64_t segment_first_position, std::size_t i) {
  std::uint64_t offset = format::kHeaderBytes;
  for (std::size_t j = first_index(segment_first_position); j < i; ++j) {
    offset += format::kRecordHeaderBytes + payload_of(j).size();
  }
  return offset;
}

inline std::uint64_t first_position_of(const std::filesystem::path& segment) {
  return std::stoull(segment.filename().string());
}

// Segment files in order, as the writer left them.
inline std::vector<std::filesystem::path> segment_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".journal") out.push_back(entry.path());
  }
  std::ranges::sort(out);
  return out;
}

}  // namespace shmq::journal::test
