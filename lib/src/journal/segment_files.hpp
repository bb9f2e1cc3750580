// The segment files of one journal directory: listing them, and opening one
// with its header checked against the queue and its name.
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "journal/file.hpp"
#include "journal/format.hpp"

namespace shmq::journal {

struct SegmentFile {
  std::filesystem::path path;
  std::uint64_t first_position = 0;  // from the name
};

// The files named like segments, oldest first; other files are ignored.
[[nodiscard]] std::vector<SegmentFile> list_segments(const std::filesystem::path& dir);

// Reads and checks the header of an open segment file: Foreign, NewerVersion,
// Corrupt (a damaged header, or one whose position disagrees with the file
// name) or WrongQueue. The file must hold at least a header.
format::SegmentHeader read_header(const File& file, const SegmentFile& segment, std::string_view queue);

// Whether the file is shorter than a header and holds the start of one, if
// anything: a segment the writer is creating, or a crash left torn. A short
// file that starts otherwise is not ours (read_header() refuses it).
[[nodiscard]] bool is_partial_header(const File& file);

// Throws InvalidArgument unless `queue` fits the header's name field.
void check_queue_name(std::string_view queue);

}  // namespace shmq::journal
