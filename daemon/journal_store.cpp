#include "journal_store.hpp"

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mapping.hpp"

namespace shmq::daemon {

namespace fs = std::filesystem;

namespace {

constexpr const char* kOptionsFile = "queue.json";

}  // namespace

fs::path journal_dir(const fs::path& data_dir, std::string_view queue) { return data_dir / "journal" / queue; }

void write_queue_options(const fs::path& dir, const QueueOptions& o) {
  const nlohmann::json j = {{"capacity", o.capacity},           {"max_message", o.max_message},
                            {"max_producers", o.max_producers}, {"max_groups", o.max_groups},
                            {"max_consumers", o.max_consumers}, {"mode", o.mode}};
  // Written aside and renamed: a crash never leaves half a file.
  const fs::path tmp = dir / (std::string(kOptionsFile) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << '\n';
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, dir / kOptionsFile);
}

std::optional<QueueOptions> read_queue_options(const fs::path& dir) {
  const fs::path file = dir / kOptionsFile;
  std::ifstream in(file);
  if (!in) return std::nullopt;
  try {
    const auto j = nlohmann::json::parse(in);
    QueueOptions o;
    o.capacity = j.at("capacity").get<std::uint64_t>();
    o.max_message = j.at("max_message").get<std::uint32_t>();
    o.max_producers = j.at("max_producers").get<std::uint32_t>();
    o.max_groups = j.at("max_groups").get<std::uint32_t>();
    o.max_consumers = j.at("max_consumers").get<std::uint32_t>();
    o.mode = j.at("mode").get<mode_t>();
    o.durable = true;
    return o;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("unreadable " + file.string() + ": " + e.what());
  }
}

journal::Options journal_options(std::uint32_t max_message, bool salvage) {
  // A checkpoint of 64 groups and 255 producers, names of 255 bytes each, is
  // well below 1 MiB.
  constexpr std::uint32_t kCheckpointRoom = 1u << 20;
  journal::Options o;
  o.max_payload = std::max(max_message, kCheckpointRoom);
  o.salvage = salvage;
  return o;
}

QueueOptions options_of(const Queue& queue) {
  const detail::Mapping& m = *queue.mapping();
  QueueOptions o;
  o.capacity = m.capacity;
  o.max_message = m.max_message;
  o.max_producers = m.max_producers;
  o.max_groups = m.max_groups;
  o.max_consumers = m.max_consumers;
  o.mode = m.header->super.mode & 0777;
  o.durable = m.durable;
  return o;
}

JournaledProducers journaled_producers(const fs::path& dir, std::string_view queue,
                                       const std::optional<journal::Checkpoint>& latest,
                                       const journal::Options& options) {
  JournaledProducers producers;
  std::uint64_t from = 0;
  if (latest) {
    for (const auto& p : latest->producers) producers[p.id] = {p.name, p.sequence};
    from = latest->position;
  }
  // A checkpoint names every producer before its first record, so each id
  // after it is named above; sequences only grow.
  auto cursor = journal::Cursor::open(dir, queue, from, options);
  while (const auto record = cursor.next()) {
    auto& p = producers[record->producer_id];
    p.sequence = std::max(p.sequence, record->sequence);
  }
  return producers;
}

}  // namespace shmq::daemon
