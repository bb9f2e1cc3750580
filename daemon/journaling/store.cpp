#include "journaling/store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <system_error>
#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "shm/prepared_create.hpp"
#include "shm/segment.hpp"
#include "unique_fd.hpp"

namespace shmq::daemon {

namespace fs = std::filesystem;

namespace {

constexpr const char* kOptionsFile = "queue.json";

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return nullptr;
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("unreadable " + file.string() + ": " + e.what());
  }
}

// Writes `text` to `file` durably: aside, fsynced, renamed, the directory
// fsynced. A crash leaves the old file or the new one, never half of one.
void write_durably(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.string() + ".tmp";
  const UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot write " + tmp.string());
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot rename " + tmp.string());
  }
  const UniqueFd dir(::open(file.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) {
    throw std::system_error(errno, std::generic_category(), "cannot sync " + file.parent_path().string());
  }
}

// The delivery policy, for the rebuild to recreate the queue with it. Only
// the keys of the parts set: a queue without a policy keeps the file earlier
// versions wrote (and read: they ignore unknown keys anyway).
void add_policy(nlohmann::json& j, const DeliveryPolicy& p) {
  if (p.max_deliveries != 0) j["max_deliveries"] = p.max_deliveries;
  if (!p.dead_letter.empty()) j["dead_letter"] = p.dead_letter;
  if (p.ack_timeout.count() != 0) j["ack_timeout_ns"] = p.ack_timeout.count();
  if (p.ttl.count() != 0) j["ttl_ns"] = p.ttl.count();
}

// Absent keys (files written before policies existed): none of it.
DeliveryPolicy read_policy(const nlohmann::json& j) {
  DeliveryPolicy p;
  if (j.contains("max_deliveries")) p.max_deliveries = j["max_deliveries"].get<std::uint32_t>();
  if (j.contains("dead_letter")) p.dead_letter = j["dead_letter"].get<std::string>();
  if (j.contains("ack_timeout_ns")) p.ack_timeout = std::chrono::nanoseconds(j["ack_timeout_ns"].get<std::int64_t>());
  if (j.contains("ttl_ns")) p.ttl = std::chrono::nanoseconds(j["ttl_ns"].get<std::int64_t>());
  return p;
}

}  // namespace

void write_queue_options(const fs::path& dir, const QueueOptions& o, std::uint64_t journal_id, uid_t owner) {
  const fs::path file = dir / kOptionsFile;
  const nlohmann::json old = read_json(file);
  if (journal_id == 0 && old.is_object() && old.contains("journal_id")) journal_id = old["journal_id"];
  nlohmann::json j = {{"capacity", o.capacity},           {"max_message", o.max_message},
                      {"max_producers", o.max_producers}, {"max_groups", o.max_groups},
                      {"max_consumers", o.max_consumers}, {"mode", o.mode}};
  if (journal_id != 0) j["journal_id"] = journal_id;
  add_policy(j, o.policy);
  // The segment file's owner and group, so that a rebuild gives the queue
  // back to the users who could use it (docs/security.md).
  if (owner == kNoOwner && old.is_object() && old.contains("uid")) owner = old["uid"].get<uid_t>();
  if (owner != kNoOwner) j["uid"] = owner;
  if (o.group != kNoGroup) {
    j["gid"] = o.group;
  } else if (old.is_object() && old.contains("gid")) {
    j["gid"] = old["gid"];
  }
  if (j == old) return;  // every start would otherwise pay two fsyncs per queue
  write_durably(file, j.dump(2) + "\n");
}

std::optional<QueueOptions> read_queue_options(const fs::path& dir) {
  const fs::path file = dir / kOptionsFile;
  const nlohmann::json j = read_json(file);
  if (j.is_null()) return std::nullopt;
  try {
    QueueOptions o;
    o.capacity = j.at("capacity").get<std::uint64_t>();
    o.max_message = j.at("max_message").get<std::uint32_t>();
    o.max_producers = j.at("max_producers").get<std::uint32_t>();
    o.max_groups = j.at("max_groups").get<std::uint32_t>();
    o.max_consumers = j.at("max_consumers").get<std::uint32_t>();
    o.mode = j.at("mode").get<mode_t>();
    // Absent in files written before shmq kept them: the creator's group.
    if (j.contains("gid")) o.group = j["gid"].get<gid_t>();
    o.durable = true;
    o.policy = read_policy(j);
    return o;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("unreadable " + file.string() + ": " + e.what());
  }
}

void write_queue_options(const fs::path& dir, const Queue& queue, std::uint64_t journal_id) {
  write_queue_options(dir, queue.options(), journal_id, detail::file_owner(detail::QueueAccess::mapping(queue)->fd).uid);
}

uid_t read_queue_owner(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / kOptionsFile);
  if (!j.is_object() || !j.contains("uid") || !j["uid"].is_number_unsigned()) return kNoOwner;
  return j["uid"].get<uid_t>();
}

std::uint64_t read_journal_id(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / kOptionsFile);
  if (!j.is_object() || !j.contains("journal_id") || !j["journal_id"].is_number_unsigned()) return 0;
  return j["journal_id"].get<std::uint64_t>();
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
