// Writes the seed corpus of fuzz_journal: journals written by the real Writer
// (empty, a few records, checkpoints, several segments), and damaged ones (a
// torn tail, a flipped byte, a short header, a missing segment, a foreign
// file). Each seed is fuzz_journal's input: a flags byte, then the segment
// files one after the other (see fuzz_journal.cpp).
// Usage: fuzz_journal_seeds OUT_DIR   (writes OUT_DIR/seed_<name> and OUT_DIR/regress_<name>)
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <stdexcept>
#include <iterator>
#include <string>
#include <vector>

#include "journal/journal.hpp"
#include "journaling/writer.hpp"

namespace {

namespace fs = std::filesystem;
using namespace shmq::journal;

constexpr std::string_view kQueue = "orders";  // the queue fuzz_journal opens
constexpr std::uint8_t kRepairCrcs = 1, kMisnameLast = 2, kCursorAtSecond = 4;

using Files = std::vector<std::vector<char>>;  // segment files, oldest first

fs::path make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "shmq-journal-seeds-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

Files read_segments(const fs::path& dir) {
  std::vector<fs::path> paths;
  for (const auto& entry : fs::directory_iterator(dir)) paths.push_back(entry.path());
  std::ranges::sort(paths);  // 20-digit names sort as positions do
  Files files;
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    files.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

// Record i: position 64 + 64 i, a payload of (i * 13) % 40 bytes, timestamp 1000 i.
void append(Writer& writer, std::size_t first, std::size_t last) {
  for (std::size_t i = first; i < last; ++i) {
    const std::string payload((i * 13) % 40, static_cast<char>('a' + i % 26));
    const Record record{kDefaultFirstPosition + 64 * i, static_cast<std::uint32_t>(i % 3), i + 1, 1000 * i,
                        std::as_bytes(std::span(payload))};
    writer.append(std::span(&record, 1));
  }
}

Checkpoint checkpoint_at(std::uint64_t acked) {
  return {0, 5000, {{"billing", acked}, {"audit", kDefaultFirstPosition}}, {{1, "web", 7}, {2, "batch", 3}}};
}

// Writes a journal with `fill`, returns its segment files.
Files journal(std::uint64_t segment_bytes, std::string_view queue, const std::function<void(Writer&)>& fill) {
  const fs::path dir = make_temp_dir();
  Options options;
  options.segment_bytes = segment_bytes;
  {
    auto writer = Writer::open(dir, queue, options);
    fill(writer);
  }
  Files files = read_segments(dir);
  fs::remove_all(dir);
  return files;
}

Files journal(std::uint64_t segment_bytes, const std::function<void(Writer&)>& fill) {
  return journal(segment_bytes, kQueue, fill);
}

void save(const fs::path& dir, const std::string& name, std::uint8_t flags, const Files& files) {
  std::vector<char> bytes{static_cast<char>(flags)};
  for (const auto& f : files) bytes.insert(bytes.end(), f.begin(), f.end());
  std::ofstream(dir / name, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::printf("%s: %zu files, %zu bytes\n", name.c_str(), files.size(), bytes.size());
}

constexpr std::uint64_t kLarge = 1u << 20;  // one segment
constexpr std::uint64_t kSmall = 600;       // a few records a segment

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out);

  const auto records = journal(kLarge, [](Writer& w) { append(w, 0, 6); });
  const auto with_checkpoint = journal(kLarge, [](Writer& w) {
    append(w, 0, 4);
    w.checkpoint(checkpoint_at(kDefaultFirstPosition + 64));
    append(w, 4, 7);
  });
  // An exclusive group: the checkpoint carries its trailing modes section.
  const auto with_exclusive_group = journal(kLarge, [](Writer& w) {
    append(w, 0, 4);
    Checkpoint c = checkpoint_at(kDefaultFirstPosition + 64);
    c.groups[1].exclusive = true;
    w.checkpoint(c);
    append(w, 4, 7);
  });
  // Three segments; the checkpoint is copied to the start of the later ones.
  const auto segments = journal(kSmall, [](Writer& w) {
    append(w, 0, 3);
    w.checkpoint(checkpoint_at(kDefaultFirstPosition + 128));
    append(w, 3, 16);
  });

  save(out, "seed_empty", 0, journal(kLarge, [](Writer&) {}));
  save(out, "seed_records", 0, records);
  save(out, "seed_records_cursor_at_second", kCursorAtSecond, records);
  save(out, "seed_checkpoint", 0, with_checkpoint);
  save(out, "seed_checkpoint_exclusive_group", 0, with_exclusive_group);
  save(out, "seed_segments", 0, segments);
  save(out, "seed_segments_misnamed_last", kMisnameLast, segments);
  save(out, "seed_segments_repair_crcs", kRepairCrcs, segments);
  save(out, "seed_wrong_queue", 0, journal(kLarge, "payments", [](Writer& w) { append(w, 0, 2); }));

  // Damage.
  Files torn = records;
  torn.back().resize(torn.back().size() - 10);  // the last record half written
  save(out, "seed_torn_tail", 0, torn);
  Files flipped = segments;
  flipped.front()[128 + 32] ^= 0x40;  // the first record's position (64 to 0): damage followed by good records
  save(out, "seed_flipped_byte", 0, flipped);
  save(out, "seed_flipped_byte_repaired", kRepairCrcs, flipped);  // the same byte, its CRC made good: out of order
  Files short_header = segments;
  short_header.back().resize(60);  // the writer crashed while creating the last segment
  save(out, "seed_short_last_header", 0, short_header);
  Files gap = segments;
  gap.erase(gap.begin() + 1);  // a segment file removed
  save(out, "seed_missing_segment", 0, gap);
  save(out, "seed_foreign", 0, {std::vector<char>(300, 'j')});

  // A crash right after a roll: the last segment holds the copied checkpoint
  // and a torn record. This checkpoint is larger than fuzz_journal's 4 KiB
  // segments, so the next append rolls again: the Writer used to roll to a
  // segment of the same name, and fail on every reopen.
  Files big_checkpoint = journal(kSmall, [](Writer& w) {
    append(w, 0, 2);
    Checkpoint c = checkpoint_at(kDefaultFirstPosition + 64);
    for (int i = 0; i < 230; ++i) c.groups.push_back({"group-" + std::to_string(i), kDefaultFirstPosition});
    w.checkpoint(c);
    append(w, 2, 4);
  });
  big_checkpoint.back().resize(big_checkpoint.back().size() - 5);
  save(out, "regress_torn_after_roll_big_checkpoint", 0, big_checkpoint);
  return 0;
}
