#include "verify.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "shmq/status.hpp"

namespace shmq::torture {

namespace {

namespace fs = std::filesystem;

// Violations by kind; each kind lists its first few cases and counts the rest.
class Findings {
 public:
  void add(const std::string& kind, const std::string& text) {
    auto& k = kinds_[kind];
    if (k.listed.size() < 8) k.listed.push_back(text);
    ++k.count;
  }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const auto& [kind, k] : kinds_) {
      for (const auto& text : k.listed) out.push_back(kind + ": " + text);
      if (k.count > k.listed.size()) out.push_back(kind + ": ... and " + std::to_string(k.count - k.listed.size()) + " more");
    }
    return out;
  }

 private:
  struct Kind {
    std::vector<std::string> listed;
    std::uint64_t count = 0;
  };
  std::map<std::string, Kind> kinds_;
};

// The lines of `path` that were written whole (a worker killed mid-write may
// leave a partial last line).
std::vector<std::string> complete_lines(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<std::string> lines;
  for (std::size_t start = 0, end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    lines.push_back(text.substr(start, end - start));
  }
  return lines;
}

struct ProducerLog {
  std::string name;
  std::optional<std::uint32_t> id;
  std::set<std::uint64_t> confirmed;
};

struct Delivery {
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t position = 0;
  bool redelivered = false;
  bool acked = false;
  std::uint64_t epoch = 0;  // power losses before its consumer joined
};

struct ConsumerLog {
  std::string file;
  std::string group;
  bool quit = false;  // stopped cleanly; without Q it was killed
  std::vector<Delivery> deliveries;
};

void read_producer_line(const std::string& line, ProducerLog& log, std::uint64_t& floor, bool durable,
                        Findings& findings, Tally& tally) {
  std::istringstream in(line.substr(1));
  const std::string who = "producer " + log.name;
  switch (line[0]) {
    case 'A': {
      std::uint32_t id = 0;
      std::uint64_t last = 0;
      in >> id >> last;
      // A power loss may leave a producer no journaled record, hence no entry
      // in the rebuilt queue: it may then get another id. Otherwise never.
      const bool forgotten = durable && last == 0;
      if (log.id && *log.id != id && !forgotten) {
        findings.add("producer id changed", who + " re-attached as id " + std::to_string(id));
      }
      log.id = id;
      if (!log.confirmed.empty() && last < *log.confirmed.rbegin()) {
        findings.add("sequence rollback", who + " re-attached with last sequence " + std::to_string(last) +
                                              " below its confirmed " + std::to_string(*log.confirmed.rbegin()));
      }
      floor = last;
      break;
    }
    case 'R': {
      std::uint64_t seq = 0;
      std::string status;
      in >> seq >> status;
      if (status == to_string(Status::Duplicate)) {
        ++tally.duplicates_refused;
      } else {
        findings.add("resent duplicate not refused", who + " sequence " + std::to_string(seq) + ": " + status);
      }
      break;
    }
    case 'C': {
      std::uint64_t seq = 0;
      in >> seq;
      if (seq <= floor) findings.add("confirm out of order", who + " sequence " + std::to_string(seq));
      floor = seq;
      log.confirmed.insert(seq);
      break;
    }
    case 'E': findings.add("worker error", who + ": " + line.substr(2)); break;
    default: break;
  }
}

ProducerLog read_producer_log(const fs::path& path, const std::string& name, bool durable, Findings& findings,
                              Tally& tally) {
  ProducerLog log;
  log.name = name;
  std::uint64_t floor = 0;
  for (const auto& line : complete_lines(path)) {
    if (!line.empty()) read_producer_line(line, log, floor, durable, findings, tally);
  }
  tally.confirmed += log.confirmed.size();
  return log;
}

// consumer-<group>-<member>-<incarnation>.log; group names hold no '-'.
std::string group_of(const std::string& file) {
  const std::size_t start = std::string("consumer-").size();
  return file.substr(start, file.find('-', start) - start);
}

ConsumerLog read_consumer_log(const fs::path& path, Findings& findings, Tally& tally) {
  ConsumerLog log;
  log.file = path.filename().string();
  log.group = group_of(log.file);
  std::map<std::uint64_t, std::size_t> by_position;  // for the K lines
  std::uint64_t epoch = 0;
  for (const auto& line : complete_lines(path)) {
    std::istringstream in(line.empty() ? "" : line.substr(1));
    if (line.starts_with("J")) {
      in >> epoch;
    } else if (line.starts_with("D")) {
      Delivery d;
      d.epoch = epoch;
      int flag = 0;
      std::string group;
      in >> group >> d.producer_id >> d.sequence >> d.position >> flag;
      d.redelivered = flag != 0;
      by_position[d.position] = log.deliveries.size();
      log.deliveries.push_back(d);
      ++tally.delivered;
      tally.redelivered += d.redelivered ? 1 : 0;
    } else if (line.starts_with("K")) {
      std::uint64_t position = 0;
      in >> position;
      if (auto it = by_position.find(position); it != by_position.end()) log.deliveries[it->second].acked = true;
    } else if (line.starts_with("E")) {
      findings.add("worker error", log.file + ": " + line.substr(2));
    } else if (line == "Q") {
      log.quit = true;
    }
  }
  return log;
}

using Key = std::pair<std::uint32_t, std::uint64_t>;  // (producer id, sequence)

std::string describe(const Key& key, const std::vector<ProducerLog>& producers) {
  std::string name = "id " + std::to_string(key.first);
  for (const auto& p : producers) {
    if (p.id == key.first) name = p.name + " (id " + std::to_string(key.first) + ")";
  }
  return "producer " + name + " sequence " + std::to_string(key.second);
}

struct GroupView {
  std::map<Key, std::vector<const Delivery*>> deliveries;
  bool a_consumer_died = false;
};

std::map<std::string, GroupView> by_group(const std::vector<ConsumerLog>& consumers) {
  std::map<std::string, GroupView> groups;
  for (const auto& c : consumers) {
    auto& view = groups[c.group];
    view.a_consumer_died |= !c.quit;
    for (const auto& d : c.deliveries) view.deliveries[{d.producer_id, d.sequence}].push_back(&d);
  }
  return groups;
}

// Every sequence 1..messages of every producer reached the group.
void check_nothing_lost(const std::string& group, const GroupView& view, const std::vector<ProducerLog>& producers,
                        const Expectation& expected, Findings& findings, Tally& tally) {
  for (const auto& p : producers) {
    if (!p.id) {
      findings.add("producer never attached", p.name);
      continue;
    }
    for (std::uint64_t seq = 1; seq <= expected.messages; ++seq) {
      if (view.deliveries.contains({*p.id, seq})) continue;
      ++tally.lost;
      const char* how = p.confirmed.contains(seq) ? "confirmed" : "never confirmed (its producer died before the Ok)";
      findings.add("lost", "group " + group + " never got " + describe({*p.id, seq}, producers) + ", " + how);
    }
  }
}

// Once unflagged, acked at most once, flagged only after a consumer died.
void check_duplicates(const std::string& group, const GroupView& view, const std::vector<ProducerLog>& producers,
                      const Expectation& expected, Findings& findings, Tally& tally) {
  std::set<std::uint32_t> ids;
  for (const auto& p : producers) {
    if (p.id) ids.insert(*p.id);
  }
  for (const auto& [key, list] : view.deliveries) {
    const std::string what = "group " + group + ", " + describe(key, producers);
    if (!ids.contains(key.first) || key.second == 0 || key.second > expected.messages) {
      findings.add("phantom delivery", what + " was never sent");
    }
    const auto unflagged = std::count_if(list.begin(), list.end(), [](auto* d) { return !d->redelivered; });
    std::map<std::uint64_t, int> acks_by_epoch;
    for (const Delivery* d : list) acks_by_epoch[d->epoch] += d->acked ? 1 : 0;
    const auto acked = std::max_element(acks_by_epoch.begin(), acks_by_epoch.end(),
                                        [](const auto& a, const auto& b) { return a.second < b.second; })
                           ->second;
    if (unflagged > 1) {
      tally.unflagged_duplicates += static_cast<std::uint64_t>(unflagged - 1);
      findings.add("unflagged duplicate", what + " delivered " + std::to_string(unflagged) + " times unflagged");
    }
    if (acked > 1) {
      findings.add("delivered again after ack", what + " acked " + std::to_string(acked) + " times between power losses");
    }
    if (unflagged < static_cast<long>(list.size()) && !view.a_consumer_died) {
      findings.add("redelivered without a death", what + " flagged redelivered, but no consumer of the group died");
    }
  }
}

// One record per (producer, sequence), and a producer's records in sequence order.
void check_log_order(const std::vector<ConsumerLog>& consumers, const std::vector<ProducerLog>& producers,
                     Findings& findings) {
  std::map<Key, std::uint64_t> position_of;
  for (const auto& c : consumers) {
    for (const auto& d : c.deliveries) {
      const auto [it, fresh] = position_of.emplace(Key{d.producer_id, d.sequence}, d.position);
      if (!fresh && it->second != d.position) {
        findings.add("enqueued twice", describe(it->first, producers) + " at positions " + std::to_string(it->second) +
                                           " and " + std::to_string(d.position));
      }
    }
  }
  std::map<std::uint32_t, std::map<std::uint64_t, std::uint64_t>> by_producer;  // id -> position -> sequence
  for (const auto& [key, position] : position_of) by_producer[key.first][position] = key.second;
  for (const auto& [id, records] : by_producer) {
    std::uint64_t previous = 0;
    for (const auto& [position, seq] : records) {
      if (seq <= previous) {
        findings.add("log order", describe({id, seq}, producers) + " at position " + std::to_string(position) +
                                      " follows sequence " + std::to_string(previous));
      }
      previous = seq;
    }
  }
}

// Each consumer takes its first deliveries in position order (so each
// producer's sequences in increasing order); redeliveries may come between.
void check_consumer_order(const std::vector<ConsumerLog>& consumers, const std::vector<ProducerLog>& producers,
                          Findings& findings) {
  for (const auto& c : consumers) {
    std::uint64_t previous = 0;
    for (const auto& d : c.deliveries) {
      if (d.redelivered) continue;
      if (d.position <= previous) {
        findings.add("delivery order", c.file + ": " + describe({d.producer_id, d.sequence}, producers) +
                                           " at position " + std::to_string(d.position) + " after position " +
                                           std::to_string(previous));
      }
      previous = d.position;
    }
  }
}

}  // namespace

Verdict verify_logs(const std::string& log_dir, const Expectation& expected) {
  Verdict verdict;
  Findings findings;
  std::vector<ProducerLog> producers;
  for (std::size_t k = 0; k < expected.producers.size(); ++k) {
    const fs::path path = fs::path(log_dir) / ("producer-" + std::to_string(k) + ".log");
    producers.push_back(read_producer_log(path, expected.producers[k], expected.durable, findings, verdict.tally));
  }
  std::vector<ConsumerLog> consumers;
  for (const auto& entry : fs::directory_iterator(log_dir)) {
    if (entry.path().filename().string().starts_with("consumer-")) {
      consumers.push_back(read_consumer_log(entry.path(), findings, verdict.tally));
    }
  }
  if (expected.completed) {
    const auto groups = by_group(consumers);
    for (const auto& name : expected.groups) {
      const auto it = groups.find(name);
      const GroupView empty;
      const GroupView& view = it == groups.end() ? empty : it->second;
      check_nothing_lost(name, view, producers, expected, findings, verdict.tally);
      check_duplicates(name, view, producers, expected, findings, verdict.tally);
    }
    check_log_order(consumers, producers, findings);
    check_consumer_order(consumers, producers, findings);
  }
  verdict.violations = findings.lines();
  return verdict;
}

}  // namespace shmq::torture
