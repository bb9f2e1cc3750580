#include "journal/segment_files.hpp"

#include <algorithm>
#include <array>
#include <system_error>

#include "journal/bytes.hpp"

namespace shmq::journal {

std::vector<SegmentFile> list_segments(const std::filesystem::path& dir) {
  std::vector<SegmentFile> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (const auto first = format::parse_segment_name(entry.path().filename().string())) {
      out.push_back({entry.path(), *first});
    }
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    throw JournalError(Errc::Io, "cannot list " + dir.string() + ": " + ec.message(), dir);
  }
  std::ranges::sort(out, {}, &SegmentFile::first_position);
  return out;
}

format::SegmentHeader read_header(const File& file, const SegmentFile& segment, std::string_view queue) {
  format::HeaderBytes bytes{};
  if (file.read_at(0, bytes) != bytes.size()) {
    const bool ours = format::get_le<std::uint64_t>(bytes.data()) == format::kFileMagic;
    throw JournalError(
        ours ? Errc::Corrupt : Errc::Foreign,
        segment.path.string() + (ours ? ": shorter than a segment header" : ": not a shmq journal segment"),
        segment.path);
  }
  auto header = format::decode_header(bytes, segment.path);
  if (header.queue != queue) {
    throw JournalError(Errc::WrongQueue,
                       segment.path.string() + ": a segment of queue '" + header.queue + "', not '" +
                           std::string(queue) + "'",
                       segment.path);
  }
  if (header.first_position != segment.first_position) {
    throw JournalError(Errc::Corrupt,
                       segment.path.string() + ": header says first position " +
                           std::to_string(header.first_position) + ", unlike its name",
                       segment.path);
  }
  return header;
}

bool is_partial_header(const File& file) {
  const std::uint64_t size = file.size();
  if (size >= format::kHeaderBytes) return false;
  std::array<std::byte, sizeof(format::kFileMagic)> magic{}, start{};
  format::put_le(magic.data(), format::kFileMagic);
  const std::size_t n = file.read_at(0, std::span(start).first(std::min<std::size_t>(size, start.size())));
  return std::equal(start.begin(), start.begin() + static_cast<std::ptrdiff_t>(n), magic.begin());
}

void check_queue_name(std::string_view queue) {
  if (queue.empty() || queue.size() >= format::kQueueNameBytes ||
      queue.find('\0') != std::string_view::npos) {
    throw JournalError(Errc::InvalidArgument, "journal queue name must be 1 to 63 bytes, without NUL");
  }
}

}  // namespace shmq::journal
