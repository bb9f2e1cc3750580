// Fuzz target: the segment files of a journal directory (daemon/journaling), as a
// crash, a bad disk or a hostile user could leave them. recover() (with and
// without salvage), a Cursor read to its end, first_at_or_after_time() and a
// Writer opened on what recovery kept must each succeed or throw JournalError;
// never crash, read out of bounds, hang or allocate without bound. What they
// accept must agree: a recovered journal reads back as recovery counted it.
//
// Input: a flags byte, then the bytes of one or more segment files, one after
// the other; each file but the first starts at an occurrence of the segment
// magic "SHMQJRNL" (at most kMaxFiles files). Each file is named by the first
// position its header holds (the name the writer gives it), or 64 when it is
// too short to hold one. Flags:
//   bit 0  repair CRCs: before writing, recompute the header CRC and the CRC of
//          every whole record (following the length fields), so that mutated
//          fields and payloads get past the checksums to the logic behind them;
//   bit 1  name the last file one past its header's position (a misnamed file);
//   bit 2  also open a Cursor at the second record's position.
// make_journal_seeds.cpp writes the seeds (real journals, and damaged ones).
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "journal/bytes.hpp"
#include "journal/crc32c.hpp"
#include "journal/format.hpp"
#include "journal/journal.hpp"
#include "journaling/writer.hpp"

namespace {

namespace fs = std::filesystem;
using namespace shmq::journal;

constexpr std::string_view kQueue = "orders";  // make_journal_seeds.cpp writes this queue's journals
constexpr std::size_t kMaxFiles = 4;
constexpr std::size_t kMaxInput = 1u << 20;
constexpr std::uint8_t kRepairCrcs = 1, kMisnameLast = 2, kCursorAtSecond = 4;

// No record above 64 KiB is believed, so the work per input stays small.
Options bounded(bool salvage) {
  Options options;
  options.max_payload = 64u << 10;
  options.segment_bytes = 4096;  // a Writer appending to a fuzzed journal rolls soon
  options.salvage = salvage;
  return options;
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "fuzz_journal: %s\n", why.c_str());
  std::abort();
}

// One directory per process, emptied for each input. tmpfs when there is one:
// recovery and the Writer fdatasync.
const fs::path& journal_dir() {
  static const fs::path dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    fs::path d = base / ("shmq-fuzz-journal." + std::to_string(::getpid()));
    fs::create_directories(d);
    std::atexit([] {
      std::error_code ignored;
      fs::remove_all(journal_dir(), ignored);
    });
    return d;
  }();
  return dir;
}

void empty_dir(const fs::path& dir) {
  fs::create_directories(dir);  // again, should something have removed it
  for (const auto& entry : fs::directory_iterator(dir)) fs::remove_all(entry.path());
}

struct SegmentBytes {
  std::uint64_t first_position;
  std::vector<std::byte> bytes;
};

// Splits the input at each occurrence of the segment magic after its start.
std::vector<std::vector<std::byte>> split_files(std::span<const std::byte> input) {
  std::array<std::byte, 8> magic{};
  format::put_le(magic.data(), format::kFileMagic);
  std::vector<std::vector<std::byte>> files;
  std::size_t start = 0;
  while (files.size() + 1 < kMaxFiles) {
    const auto rest = input.subspan(std::min(start + 1, input.size()));
    const auto hit = std::search(rest.begin(), rest.end(), magic.begin(), magic.end());
    if (hit == rest.end()) break;
    const auto at = static_cast<std::size_t>(&*hit - input.data());
    files.emplace_back(input.begin() + static_cast<std::ptrdiff_t>(start),
                       input.begin() + static_cast<std::ptrdiff_t>(at));
    start = at;
  }
  files.emplace_back(input.begin() + static_cast<std::ptrdiff_t>(start), input.end());
  return files;
}

void repair_crcs(std::vector<std::byte>& file) {
  if (file.size() < format::kHeaderBytes) return;
  const auto header = std::span(file).first(format::kHeaderCrcOffset);
  format::put_le(file.data() + format::kHeaderCrcOffset, crc32c(header));
  std::size_t at = format::kHeaderBytes;
  while (at + format::kRecordHeaderBytes <= file.size()) {
    const auto size = format::record_size(std::span(file).subspan(at).first<format::kRecordHeaderBytes>(),
                                          bounded(false).max_payload);
    if (!size || *size > file.size() - at) return;
    const auto covered = std::span(file).subspan(at + format::kRecordCrcStart, *size - format::kRecordCrcStart);
    format::put_le(file.data() + at + 4, crc32c(covered));  // the CRC field follows the 4-byte marker
    at += *size;
  }
}

std::uint64_t header_position(const std::vector<std::byte>& file) {
  constexpr std::size_t kFirstAt = 16;  // docs/journal.md, "Segment header"
  if (file.size() < kFirstAt + 8) return kDefaultFirstPosition;
  return format::get_le<std::uint64_t>(file.data() + kFirstAt);
}

std::vector<SegmentBytes> decode_input(std::uint8_t flags, std::span<const std::byte> input) {
  std::vector<SegmentBytes> out;
  for (auto& bytes : split_files(input)) {
    if (flags & kRepairCrcs) repair_crcs(bytes);
    out.push_back({header_position(bytes), std::move(bytes)});
  }
  if (flags & kMisnameLast) ++out.back().first_position;
  return out;
}

void write_files(const std::vector<SegmentBytes>& files) {
  empty_dir(journal_dir());
  for (const auto& f : files) {
    // Two files that claim one position: the later one wins, as in a directory.
    std::ofstream out(journal_dir() / format::segment_name(f.first_position), std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(f.bytes.data()), static_cast<std::streamsize>(f.bytes.size()));
    if (!out) fail("cannot write a segment file");
  }
}

struct Read {
  std::vector<std::uint64_t> positions;
  std::vector<std::uint64_t> timestamps;
};

// Reads every record, checking each payload against max_payload (and
// touching each byte, so that a bad view faults here).
Read drain(std::uint64_t from, const Options& options) {
  Read out;
  auto cursor = Cursor::open(journal_dir(), kQueue, from, options);
  volatile unsigned sink = 0;
  while (const auto record = cursor.next()) {
    if (record->payload.size() > options.max_payload) fail("a record longer than max_payload");
    if (record->position < from) fail("a record before the cursor's start");
    for (const std::byte b : record->payload) sink = sink + static_cast<unsigned>(b);
    out.positions.push_back(record->position);
    out.timestamps.push_back(record->timestamp_ns);
    if (out.positions.size() > kMaxInput) fail("more records than input bytes: a cursor that loops");
  }
  return out;
}

// SHMQ_FUZZ_VERBOSE=1: say which errors an input met (to see what a seed reaches).
template <class Fn>
void allowing_errors(const char* step, Fn&& fn) {
  static const bool verbose = std::getenv("SHMQ_FUZZ_VERBOSE") != nullptr;
  try {
    fn();
    if (verbose) std::fprintf(stderr, "fuzz_journal: %s: ok\n", step);
  } catch (const JournalError& e) {
    if (verbose) std::fprintf(stderr, "fuzz_journal: %s: %s\n", step, e.what());
  }
}

// Read-only: the files are as the input says.
void read_side(std::uint8_t flags, bool salvage) {
  const Options options = bounded(salvage);
  allowing_errors(salvage ? "read (salvage)" : "read", [&] {
    const Read all = drain(0, options);
    if ((flags & kCursorAtSecond) && all.positions.size() > 1) (void)drain(all.positions[1], options);
    const std::uint64_t time = all.timestamps.size() > 1 ? all.timestamps[1] : 1;
    (void)first_at_or_after_time(journal_dir(), kQueue, time, options);
  });
}

// A journal that recover() accepted reads back as it counted: the same
// number of records, in strictly increasing positions below written.
void check_recovered(const Recovery& recovery, bool salvage) {
  const Read read = drain(0, bounded(salvage));
  if (read.positions.size() != recovery.records) {
    fail("a cursor read " + std::to_string(read.positions.size()) + " records of a recovered journal, recovery counted " +
         std::to_string(recovery.records));
  }
  for (std::size_t i = 0; i < read.positions.size(); ++i) {
    if (i > 0 && read.positions[i] <= read.positions[i - 1]) fail("recovered records out of position order");
    if (read.positions[i] >= recovery.written) fail("a recovered record at or above written");
  }
}

// Appends after what recovery kept and reads it back.
void append_after(bool salvage) {
  std::uint64_t at = 0;
  {
    auto writer = Writer::open(journal_dir(), kQueue, bounded(salvage));
    at = writer.written();
    if (at == kUnknownPosition) return;  // no position left to append at
    const std::byte payload[3] = {std::byte{'f'}, std::byte{'u'}, std::byte{'z'}};
    const Record record{at, 1, 1, 1, payload};
    writer.append(std::span(&record, 1));
    writer.checkpoint({0, 2, {{"g", at}, {"x", at, true}}, {{1, "p", 1}}});
  }  // one Writer at a time: the second open would be Busy
  {
    const auto reopened = Writer::open(journal_dir(), kQueue, bounded(salvage));  // recovers what the first one wrote
    const auto& c = reopened.last_checkpoint();
    if (!c || c->groups.size() != 2 || c->groups[0].exclusive || !c->groups[1].exclusive) {
      fail("the checkpoint written last (an exclusive group and a competing one) is not read back as written");
    }
  }
  const Read read = drain(at, bounded(salvage));
  if (read.positions.empty() || read.positions.front() != at) fail("a record appended is not read back");
}

void recover_side(const std::vector<SegmentBytes>& files, bool salvage) {
  write_files(files);
  allowing_errors(salvage ? "recover (salvage)" : "recover", [&] {
    const Recovery recovery = recover(journal_dir(), kQueue, bounded(salvage));
    check_recovered(recovery, salvage);
    try {
      append_after(salvage);
    } catch (const JournalError& e) {
      // The files are on tmpfs: a failed system call is the Writer's doing
      // (a segment created twice, say), not the disk's.
      if (e.code() == Errc::Io) fail(std::string("a Writer on a recovered journal: ") + e.what());
      throw;
    }
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > kMaxInput) return 0;
  const std::uint8_t flags = data[0];
  const auto files = decode_input(flags, std::as_bytes(std::span(data + 1, size - 1)));
  write_files(files);
  read_side(flags, false);
  read_side(flags, true);
  recover_side(files, false);
  recover_side(files, true);
  empty_dir(journal_dir());
  return 0;
}
