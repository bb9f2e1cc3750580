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

// One process of a name: its A line.
struct Process {
  std::uint32_t id = 0;
  std::size_t incarnation = 0;  // index into ProducerLog::incarnations
};

// An incarnation of a name: processes that continue one sequence.
struct Incarnation {
  std::uint32_t id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t began_ns = 0;  // its first attach returned
  std::set<std::uint64_t> confirmed;
  std::uint64_t reported = 0;  // highest last sequence an attach reported (all committed)
  std::uint64_t end = 0;       // highest sequence a process of it meant to send
  // Filled in from the deliveries:
  std::uint64_t delivered_max = 0;
  std::uint64_t first_position = 0, last_position = 0;  // 0: none delivered
  std::uint64_t released_ns = 0;    // latest time an ack of one of its messages began
  std::string released_what;        // which one
};

struct Attach {
  std::string name;
  std::uint32_t id = 0;
  std::uint64_t epoch = 0;
  std::uint64_t began_ns = 0;
};

struct ProducerLog {
  std::string name;
  bool regular = true;
  std::vector<Incarnation> incarnations;
  std::map<std::uint64_t, Process> processes;  // by process number
  std::vector<std::uint64_t> refusals;         // times of TableFull answers
  [[nodiscard]] std::uint64_t confirmed_max() const {
    return incarnations.empty() || incarnations.back().confirmed.empty() ? 0
                                                                          : *incarnations.back().confirmed.rbegin();
  }
};

struct Delivery {
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t position = 0;
  bool redelivered = false;
  bool acked = false;
  std::uint64_t acked_ns = 0;  // when its ack began (0: no time logged)
  std::uint64_t epoch = 0;     // power losses before its consumer joined
  std::string name;            // the sender its payload names
  std::uint64_t process = 0;
  std::uint64_t received_ns = 0;  // when its receive had returned
  // Policy rounds:
  std::uint32_t deliveries = 1;  // Message::deliveries
  char intent = 0;               // 'a', 'n', 'r': the last ack, nack or reject begun (I line)
  char outcome = 0;              // 'K', 'N', 'X', 'L': its result; 0 with an intent: its consumer died first
};

struct ConsumerLog {
  std::string file;
  std::string group;
  bool quit = false;  // stopped cleanly; without Q it was killed
  bool nacked = false;  // policy rounds: a nack of it returned Ok
  std::vector<Delivery> deliveries;
};

void read_attach(std::istringstream& in, ProducerLog& log, std::uint64_t& floor, const Expectation& expected,
                 std::vector<Attach>& attaches, Findings& findings, Tally& tally) {
  const std::string who = "producer " + log.name;
  std::uint32_t id = 0;
  std::uint64_t last = 0, end = 0, process = 0, epoch = 0, began = 0, attached = 0;
  in >> id >> last >> end >> process >> epoch >> began >> attached;
  attaches.push_back({.name = log.name, .id = id, .epoch = epoch, .began_ns = began});
  if (!log.regular) ++tally.transient_attaches;
  // A fresh sequence (last 0) after an earlier one: a new incarnation where
  // the name may have lost its entry (recycled; or, durable, forgotten by a
  // power loss and given another id); otherwise it continues the last one.
  const bool fresh = !log.incarnations.empty() && last == 0 &&
                     (expected.recycling() || (expected.durable && id != log.incarnations.back().id));
  if (log.incarnations.empty() || fresh) {
    // Durable: forgotten only when the journal held nothing of it, so nothing was confirmed.
    if (fresh && expected.durable && log.confirmed_max() != 0) {
      findings.add("sequence rollback", who + " re-attached with last sequence 0 and another id, below its confirmed " +
                                            std::to_string(log.confirmed_max()));
    }
    Incarnation inc;
    inc.id = id;
    inc.epoch = epoch;
    inc.began_ns = attached;
    log.incarnations.push_back(std::move(inc));
  } else {
    if (log.incarnations.back().id != id) {
      findings.add("producer id changed", who + " re-attached as id " + std::to_string(id) + " (was " +
                                              std::to_string(log.incarnations.back().id) + ")");
    }
    if (last < log.confirmed_max()) {
      findings.add("sequence rollback", who + " re-attached with last sequence " + std::to_string(last) +
                                            " below its confirmed " + std::to_string(log.confirmed_max()));
    }
  }
  Incarnation& inc = log.incarnations.back();
  inc.reported = std::max(inc.reported, last);
  inc.end = std::max(inc.end, end);
  log.processes[process] = {.id = id, .incarnation = log.incarnations.size() - 1};
  floor = last;
}

void read_producer_line(const std::string& line, ProducerLog& log, std::uint64_t& floor, const Expectation& expected,
                        std::vector<Attach>& attaches, Findings& findings, Tally& tally) {
  std::istringstream in(line.substr(1));
  const std::string who = "producer " + log.name;
  switch (line[0]) {
    case 'A': read_attach(in, log, floor, expected, attaches, findings, tally); break;
    case 'T': {
      std::uint64_t at = 0;
      in >> at;
      log.refusals.push_back(at);
      ++tally.table_full;
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
      if (log.incarnations.empty()) {
        findings.add("confirm out of order", who + " confirmed sequence " + std::to_string(seq) + " before attaching");
      } else {
        log.incarnations.back().confirmed.insert(seq);
      }
      ++tally.confirmed;
      break;
    }
    case 'E': findings.add("worker error", who + ": " + line.substr(2)); break;
    default: break;
  }
}

ProducerLog read_producer_log(const fs::path& path, const std::string& name, bool regular,
                              const Expectation& expected, std::vector<Attach>& attaches, Findings& findings,
                              Tally& tally) {
  ProducerLog log;
  log.name = name;
  log.regular = regular;
  std::uint64_t floor = 0;
  for (const auto& line : complete_lines(path)) {
    if (!line.empty()) read_producer_line(line, log, floor, expected, attaches, findings, tally);
  }
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
      in >> group >> d.producer_id >> d.sequence >> d.position >> flag >> d.name >> d.process >> d.received_ns;
      if (!(in >> d.deliveries)) d.deliveries = 1;  // not a policy round
      d.redelivered = flag != 0;
      by_position[d.position] = log.deliveries.size();
      log.deliveries.push_back(d);
      ++tally.delivered;
      tally.redelivered += d.redelivered ? 1 : 0;
    } else if (line.starts_with("K")) {
      std::uint64_t position = 0, at = 0;
      in >> position >> at;
      if (auto it = by_position.find(position); it != by_position.end()) {
        log.deliveries[it->second].acked = true;
        log.deliveries[it->second].acked_ns = at;
        log.deliveries[it->second].outcome = 'K';
      }
    } else if (line.starts_with("I") || line.starts_with("N") || line.starts_with("X") || line.starts_with("L")) {
      std::uint64_t position = 0;
      char action = 0;
      in >> position >> action;
      const auto it = by_position.find(position);
      if (it == by_position.end()) continue;
      Delivery& d = log.deliveries[it->second];
      if (line[0] == 'I') {
        d.intent = action;
        continue;
      }
      d.outcome = line[0];
      if (line[0] == 'N') {
        log.nacked = true;
        ++tally.nacks;
      }
      tally.rejects += line[0] == 'X' ? 1 : 0;
      tally.lease_expired += line[0] == 'L' ? 1 : 0;
    } else if (line.starts_with("S")) {
      ++tally.stalls;
    } else if (line.starts_with("E")) {
      findings.add("worker error", log.file + ": " + line.substr(2));
    } else if (line == "Q") {
      log.quit = true;
    }
  }
  return log;
}

// A message: (name, incarnation, sequence).
struct Key {
  std::string name;
  std::size_t incarnation = 0;
  std::uint64_t sequence = 0;
  auto operator<=>(const Key&) const = default;
};

std::string describe(const Key& key, std::optional<std::uint32_t> id = std::nullopt) {
  return "producer " + key.name + (key.incarnation == 0 ? "" : " incarnation " + std::to_string(key.incarnation + 1)) +
         (id ? " (id " + std::to_string(*id) + ")" : "") + " sequence " + std::to_string(key.sequence);
}

using Producers = std::map<std::string, ProducerLog>;

// The message a delivery is, from the sender its payload names; nullopt (and
// a finding) when no process of that name logged an attach.
std::optional<Key> key_of(const Delivery& d, const Producers& producers, Findings& findings) {
  const auto p = producers.find(d.name);
  const auto process = p == producers.end() ? nullptr : &p->second.processes;
  const auto it = process == nullptr ? decltype(p->second.processes.cend()){} : process->find(d.process);
  if (process == nullptr || it == process->end()) {
    findings.add("phantom delivery", "producer id " + std::to_string(d.producer_id) + " sequence " +
                                         std::to_string(d.sequence) + " at position " + std::to_string(d.position) +
                                         ": its payload names " + d.name + " process " + std::to_string(d.process) +
                                         ", which never attached");
    return std::nullopt;
  }
  const Key key{.name = d.name, .incarnation = it->second.incarnation, .sequence = d.sequence};
  if (it->second.id != d.producer_id) {
    findings.add("wrong producer id", describe(key) + " at position " + std::to_string(d.position) +
                                          " carries producer id " + std::to_string(d.producer_id) +
                                          ", its process attached as id " + std::to_string(it->second.id));
  }
  return key;
}

// A copy in the dead-letter queue (dead-letters.log, dead_letters.hpp).
struct DeadLetterCopy {
  std::string queue, group, producer, reason, name, mover;
  std::uint64_t sequence = 0, position = 0, process = 0, mover_sequence = 0, timestamp_ns = 0, origin_timestamp_ns = 0;
  std::uint32_t deliveries = 0;
  std::uint64_t epoch = 0;  // power losses before it was moved
  [[nodiscard]] std::string describe() const {
    return "dead letter " + mover + " #" + std::to_string(mover_sequence) + " (reason " + reason + ", deliveries " +
           std::to_string(deliveries) + ")";
  }
};

struct GroupView {
  std::map<Key, std::vector<const Delivery*>> deliveries;
  std::map<Key, std::vector<const DeadLetterCopy*>> dead;  // policy rounds
  bool a_consumer_died = false;
  bool a_consumer_nacked = false;
};

std::map<std::string, GroupView> by_group(const std::vector<ConsumerLog>& consumers, const Producers& producers,
                                          Findings& findings) {
  std::map<std::string, GroupView> groups;
  for (const auto& c : consumers) {
    auto& view = groups[c.group];
    view.a_consumer_died |= !c.quit;
    view.a_consumer_nacked |= c.nacked;
    for (const auto& d : c.deliveries) {
      if (const auto key = key_of(d, producers, findings)) view.deliveries[*key].push_back(&d);
    }
  }
  return groups;
}

// Policy rounds: the dead-letter queue's copies (dead-letters.log), each
// once (the driver may have read one twice: a power loss forgets its ack).
std::vector<DeadLetterCopy> read_dead_letters(const fs::path& path, const Expectation& expected, Tally& tally) {
  std::vector<DeadLetterCopy> copies;
  std::set<std::pair<std::string, std::uint64_t>> seen;  // (mover, its sequence)
  for (const auto& line : complete_lines(path)) {
    if (!line.starts_with("M ")) continue;
    std::istringstream in(line.substr(2));
    DeadLetterCopy c;
    int redelivered = 0;
    in >> c.queue >> c.group >> c.producer >> c.sequence >> c.position >> c.reason >> c.deliveries >> c.name >>
        c.process >> c.mover >> c.mover_sequence >> c.timestamp_ns >> c.origin_timestamp_ns >> redelivered;
    if (!seen.emplace(c.mover, c.mover_sequence).second) continue;
    c.epoch = static_cast<std::uint64_t>(std::count_if(expected.power_loss_ns.begin(), expected.power_loss_ns.end(),
                                                       [&](std::uint64_t at) { return at < c.timestamp_ns; }));
    ++tally.dead_letters;
    tally.dead_max_deliveries += c.reason == "max-deliveries" ? 1 : 0;
    tally.dead_expired += c.reason == "expired" ? 1 : 0;
    tally.dead_rejected += c.reason == "rejected" ? 1 : 0;
    copies.push_back(std::move(c));
  }
  return copies;
}

// Files each dead letter under its origin group and message, checking that
// its origin is one of the round's (queue, group, the sender its payload names).
void add_dead_letters(std::map<std::string, GroupView>& groups, const std::vector<DeadLetterCopy>& copies,
                      const Producers& producers, const Expectation& expected, Findings& findings) {
  const std::set<std::string> known(expected.groups.begin(), expected.groups.end());
  for (const DeadLetterCopy& c : copies) {
    const std::string what = c.describe() + " (origin " + c.queue + " group " + c.group + " producer " + c.producer +
                             " sequence " + std::to_string(c.sequence) + ")";
    if (c.queue != expected.queue || !known.contains(c.group)) {
      findings.add("dead letter's origin", what + ": not a queue and group of the round");
      continue;
    }
    if (c.name == "?") {
      findings.add("dead letter's origin", what + ": its payload is not the one of that sequence");
      continue;
    }
    if (c.producer != "-" && c.producer != c.name) {
      findings.add("dead letter's origin", what + ": its payload was sent by " + c.name);
    }
    const auto p = producers.find(c.name);
    const auto process = p == producers.end() ? nullptr : &p->second.processes;
    const auto it = process == nullptr ? decltype(p->second.processes.cend()){} : process->find(c.process);
    if (process == nullptr || it == process->end()) {
      findings.add("phantom dead letter", what + ": its payload names " + c.name + " process " +
                                              std::to_string(c.process) + ", which never attached");
      continue;
    }
    groups[c.group].dead[Key{.name = c.name, .incarnation = it->second.incarnation, .sequence = c.sequence}].push_back(
        &c);
  }
}

// Policy rounds: in the group each message is acked or dead-lettered, once
// per power epoch and at least once; counts and reasons are consistent.
void check_policy(const std::string& group, const GroupView& view, const Expectation& expected,
                  Findings& findings) {
  std::set<Key> keys;
  for (const auto& [key, list] : view.deliveries) keys.insert(key);
  for (const auto& [key, copies] : view.dead) keys.insert(key);
  static const std::vector<const Delivery*> kNone;
  static const std::vector<const DeadLetterCopy*> kNoCopies;
  for (const Key& key : keys) {
    const auto d_it = view.deliveries.find(key);
    const auto c_it = view.dead.find(key);
    const auto& list = d_it == view.deliveries.end() ? kNone : d_it->second;
    const auto& copies = c_it == view.dead.end() ? kNoCopies : c_it->second;
    const std::string what = "group " + group + ", " + describe(key);
    std::map<std::uint64_t, std::pair<int, int>> by_epoch;  // epoch -> (acks, dead letters)
    std::uint64_t unknown = 0;  // acks and rejects whose consumer died before their result line
    for (const Delivery* d : list) {
      if (d->acked) ++by_epoch[d->epoch].first;
      if ((d->intent == 'a' || d->intent == 'r') && d->outcome == 0) ++unknown;
    }
    for (const DeadLetterCopy* c : copies) ++by_epoch[c->epoch].second;
    std::uint64_t total = unknown;
    for (const auto& [epoch, outcome] : by_epoch) {
      total += static_cast<std::uint64_t>(outcome.first + outcome.second);
      if (outcome.second > 1) {
        findings.add("dead-lettered twice", what + " is " + std::to_string(outcome.second) +
                                                " times in the dead-letter queue (power epoch " +
                                                std::to_string(epoch) + ")");
      }
      if (outcome.first > 0 && outcome.second > 0) {
        findings.add("acked and dead-lettered", what + " was acked and is in the dead-letter queue (" +
                                                    copies.front()->describe() + "; power epoch " +
                                                    std::to_string(epoch) + ")");
      }
    }
    if (total == 0) {
      findings.add("neither acked nor dead-lettered",
                   what + ": delivered " + std::to_string(list.size()) + " times, never acked, not in the dead-letter queue");
    }
    // Delivery counts.
    std::set<std::uint32_t> counts;
    for (const Delivery* d : list) {
      const std::string at = what + " at position " + std::to_string(d->position) + " delivered with deliveries " +
                             std::to_string(d->deliveries);
      if (d->redelivered && d->deliveries < 2) findings.add("delivery count", at + ", flagged redelivered");
      if (!expected.durable && !d->redelivered && d->deliveries != 1) {
        findings.add("delivery count", at + ", not flagged redelivered");
      }
      if (expected.max_deliveries != 0 && d->deliveries > expected.max_deliveries) {
        findings.add("delivered past max-deliveries", at + " (max-deliveries " +
                                                          std::to_string(expected.max_deliveries) + ")");
      }
      // In memory every delivery counts one more than the one before it.
      if (!expected.durable && !counts.insert(d->deliveries).second) {
        findings.add("delivery count", at + ", as an earlier delivery of it was");
      }
    }
    // Reasons.
    for (const DeadLetterCopy* c : copies) {
      const std::string at = what + ": " + c->describe();
      if (c->reason == "max-deliveries") {
        if (expected.max_deliveries == 0) {
          findings.add("dead letter's reason", at + " without a max-deliveries");
        } else if (c->deliveries < expected.max_deliveries) {  // more when a mover died holding it
          findings.add("dead letter's reason", at + ", max-deliveries " + std::to_string(expected.max_deliveries));
        }
      } else if (c->reason == "expired") {
        // Both timestamps come from coarse clocks: 20 ms of slack.
        constexpr std::uint64_t kSlackNs = 20'000'000;
        if (expected.ttl_ns == 0) {
          findings.add("dead letter's reason", at + " without a TTL");
        } else if (c->timestamp_ns + kSlackNs < c->origin_timestamp_ns + expected.ttl_ns) {
          findings.add("dead letter's reason", at + " moved " +
                                                   std::to_string((c->timestamp_ns - c->origin_timestamp_ns) / 1000000) +
                                                   " ms after it was sent, within its TTL");
        }
      } else if (c->reason == "rejected") {
        const bool asked = std::any_of(list.begin(), list.end(), [&](const Delivery* d) {
          return d->intent == 'r' && d->deliveries == c->deliveries;
        });
        if (!asked) findings.add("dead letter's reason", at + ": no member rejected that delivery");
      } else {
        findings.add("dead letter's reason", at + ": unknown reason");
      }
      if (!expected.durable && c->deliveries < list.size()) {
        findings.add("delivery count", at + " counts fewer deliveries than the " + std::to_string(list.size()) +
                                           " logged");
      }
    }
  }
}

// What the deliveries say of each incarnation: its highest sequence
// delivered, its first and last positions, and when its last release began.
void note_deliveries(const std::map<std::string, GroupView>& groups, Producers& producers) {
  for (const auto& [group, view] : groups) {
    for (const auto& [key, copies] : view.dead) {
      Incarnation& inc = producers.at(key.name).incarnations[key.incarnation];
      inc.delivered_max = std::max(inc.delivered_max, key.sequence);
    }
    for (const auto& [key, list] : view.deliveries) {
      Incarnation& inc = producers.at(key.name).incarnations[key.incarnation];
      inc.delivered_max = std::max(inc.delivered_max, key.sequence);
      for (const Delivery* d : list) {
        if (inc.first_position == 0 || d->position < inc.first_position) inc.first_position = d->position;
        inc.last_position = std::max(inc.last_position, d->position);
        if (d->acked && d->acked_ns > inc.released_ns) {
          inc.released_ns = d->acked_ns;
          inc.released_what = describe(key) + " at position " + std::to_string(d->position) + " in group " + group;
        }
      }
    }
  }
}

// Every sequence of every incarnation reached the group.
void check_nothing_lost(const std::string& group, const GroupView& view, const Producers& producers,
                        const Expectation& expected, Findings& findings, Tally& tally) {
  for (const auto& [name, p] : producers) {
    if (p.incarnations.empty()) {
      if (p.regular) findings.add("producer never attached", p.name);
      continue;
    }
    for (std::size_t i = 0; i < p.incarnations.size(); ++i) {
      const Incarnation& inc = p.incarnations[i];
      const bool last = i + 1 == p.incarnations.size();
      std::uint64_t expect = std::max(inc.delivered_max, inc.confirmed.empty() ? 0 : *inc.confirmed.rbegin());
      // In memory what an attach reported committed stays in the ring until
      // released; a power loss may take what the journal had not synced.
      if (!expected.durable) expect = std::max(expect, inc.reported);
      if (p.regular && last) expect = std::max(expect, expected.messages);
      for (std::uint64_t seq = 1; seq <= expect; ++seq) {
        const Key key{.name = name, .incarnation = i, .sequence = seq};
        if (view.deliveries.contains(key) || view.dead.contains(key)) continue;
        ++tally.lost;
        const char* how = inc.confirmed.contains(seq) ? "confirmed" : "never confirmed (its producer died before the Ok)";
        findings.add("lost", "group " + group + " never got " + describe(key, inc.id) + ", " + how);
      }
    }
  }
}

// Once unflagged, acked at most once, flagged only after a consumer died.
void check_duplicates(const std::string& group, const GroupView& view, const Producers& producers,
                      const Expectation& expected, Findings& findings, Tally& tally) {
  // Policy rounds: a nack, or a lease that expired, brings a message back too.
  const bool excused_redeliveries = expected.ack_timeout || view.a_consumer_nacked;
  for (const auto& [key, list] : view.deliveries) {
    const std::string what = "group " + group + ", " + describe(key);
    if (key.sequence == 0 || key.sequence > producers.at(key.name).incarnations[key.incarnation].end) {
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
    if (unflagged < static_cast<long>(list.size()) && !view.a_consumer_died && !excused_redeliveries) {
      findings.add("redelivered without a death", what + " flagged redelivered, but no consumer of the group died");
    }
  }
}

// One record per message and one message per record, an incarnation's
// records in sequence order, and a name's incarnations one after another.
void check_log_order(const std::map<std::string, GroupView>& groups, const Producers& producers, Findings& findings) {
  std::map<Key, std::uint64_t> position_of;
  std::map<std::uint64_t, Key> key_at;
  for (const auto& [group, view] : groups) {
    for (const auto& [key, list] : view.deliveries) {
      for (const Delivery* d : list) {
        const auto [it, fresh] = position_of.emplace(key, d->position);
        if (!fresh && it->second != d->position) {
          findings.add("enqueued twice", describe(key) + " at positions " + std::to_string(it->second) + " and " +
                                             std::to_string(d->position));
        }
        const auto [at, new_position] = key_at.emplace(d->position, key);
        if (!new_position && at->second != key) {
          findings.add("two messages at one position", "position " + std::to_string(d->position) + " delivered as " +
                                                           describe(at->second) + " and as " + describe(key));
        }
      }
    }
  }
  for (const auto& [group, view] : groups) {
    for (const auto& [key, copies] : view.dead) {
      for (const DeadLetterCopy* c : copies) {
        const auto [it, fresh] = position_of.emplace(key, c->position);
        if (!fresh && it->second != c->position) {
          findings.add("dead letter's origin", c->describe() + " of group " + group + ", " + describe(key) +
                                                   " names position " + std::to_string(c->position) +
                                                   ", delivered at " + std::to_string(it->second));
        }
      }
    }
  }
  std::map<std::pair<std::string, std::size_t>, std::map<std::uint64_t, std::uint64_t>> by_incarnation;
  for (const auto& [key, position] : position_of) by_incarnation[{key.name, key.incarnation}][position] = key.sequence;
  for (const auto& [who, records] : by_incarnation) {
    std::uint64_t previous = 0;
    for (const auto& [position, seq] : records) {
      if (seq <= previous) {
        findings.add("log order", describe({who.first, who.second, seq}) + " at position " + std::to_string(position) +
                                      " follows sequence " + std::to_string(previous));
      }
      previous = seq;
    }
  }
  for (const auto& [name, p] : producers) {
    std::uint64_t previous_last = 0;
    for (std::size_t i = 0; i < p.incarnations.size(); ++i) {
      const Incarnation& inc = p.incarnations[i];
      if (inc.first_position == 0) continue;
      if (previous_last != 0 && inc.first_position <= previous_last) {
        findings.add("log order", "producer " + name + " incarnation " + std::to_string(i + 1) + " begins at position " +
                                      std::to_string(inc.first_position) + ", before its previous one ended (" +
                                      std::to_string(previous_last) + ")");
      }
      previous_last = inc.last_position;
    }
  }
}

// Each consumer takes its first deliveries in position order (so each
// producer's sequences in increasing order); redeliveries may come between.
void check_consumer_order(const std::vector<ConsumerLog>& consumers, Findings& findings) {
  for (const auto& c : consumers) {
    std::uint64_t previous = 0;
    for (const auto& d : c.deliveries) {
      if (d.redelivered) continue;
      if (d.position <= previous) {
        findings.add("delivery order", c.file + ": producer " + d.name + " sequence " + std::to_string(d.sequence) +
                                           " at position " + std::to_string(d.position) + " after position " +
                                           std::to_string(previous));
      }
      previous = d.position;
    }
  }
}

// An exclusive group's members take turns: the active one delivers until it
// dies (a stopped one keeps its place), then a standby takes over. So, in
// time order (a D line is written after its receive returned, and a standby
// receives only after the member before it died, which wrote no line after),
// the group's deliveries come from one member, then another, never back to
// an earlier one; and its first deliveries come in position order (a
// takeover continues where the dead member's reads ended, what it held
// comes again flagged). Returns the takeovers seen.
std::uint64_t check_exclusive(const std::string& group, const std::vector<ConsumerLog>& consumers,
                              Findings& findings) {
  struct Seen {
    std::uint64_t at;
    const ConsumerLog* member;
    const Delivery* delivery;
  };
  std::vector<Seen> seen;
  for (const auto& c : consumers) {
    if (c.group != group) continue;
    for (const auto& d : c.deliveries) seen.push_back({d.received_ns, &c, &d});
  }
  std::stable_sort(seen.begin(), seen.end(), [](const Seen& a, const Seen& b) { return a.at < b.at; });
  std::set<const ConsumerLog*> done;  // members another one followed
  const ConsumerLog* reading = nullptr;
  std::uint64_t takeovers = 0, previous = 0;
  const Delivery* previous_delivery = nullptr;
  for (const Seen& s : seen) {
    if (s.member != reading) {
      if (done.contains(s.member)) {
        findings.add("two active members", "exclusive group " + group + ": " + s.member->file +
                                               " delivered position " + std::to_string(s.delivery->position) +
                                               " after another member had taken over from it");
      }
      if (reading != nullptr) {
        done.insert(reading);
        ++takeovers;
      }
      reading = s.member;
    }
    if (s.delivery->redelivered) continue;
    if (s.delivery->position <= previous) {
      findings.add("exclusive delivery order",
                   "exclusive group " + group + ": " + s.member->file + " got producer " + s.delivery->name +
                       " sequence " + std::to_string(s.delivery->sequence) + " at position " +
                       std::to_string(s.delivery->position) + " unflagged, after position " + std::to_string(previous) +
                       (previous_delivery != nullptr ? " (producer " + previous_delivery->name + " sequence " +
                                                           std::to_string(previous_delivery->sequence) + ")"
                                                     : std::string()));
    }
    previous = s.delivery->position;
    previous_delivery = s.delivery;
  }
  return takeovers;
}

// In-memory names rounds: the recycling rule. An incarnation begins in an
// entry that held other messages (of another name, or of its own name's
// earlier incarnations), or at a fresh sequence, only once every group has
// released all of those. The proof of a breach: its attach had returned
// before an ack of one of them began (a group releases a message only during
// an ack, and head passes it only after that).
void check_recycling(const Producers& producers, Findings& findings, Tally& tally) {
  struct Use {
    const Incarnation* inc;
    std::string who;
  };
  std::map<std::uint32_t, std::vector<Use>> by_id;  // every incarnation that used an entry
  for (const auto& [name, p] : producers) {
    const Incarnation* held = nullptr;  // the latest release among the name's earlier incarnations
    for (std::size_t i = 0; i < p.incarnations.size(); ++i) {
      const Incarnation& inc = p.incarnations[i];
      const std::string who = "producer " + name + " incarnation " + std::to_string(i + 1);
      by_id[inc.id].push_back({&inc, who});
      if (held != nullptr && held->first_position != 0) ++tally.new_incarnations;
      if (held != nullptr && held->released_ns > inc.began_ns) {
        findings.add("fresh sequence before release",
                     who + " began at a fresh sequence (attach returned at " + std::to_string(inc.began_ns) +
                         " ns) while " + held->released_what + " was still held: its ack began " +
                         std::to_string(held->released_ns - inc.began_ns) + " ns later");
      }
      if (held == nullptr || inc.released_ns > held->released_ns) held = &inc;
    }
  }
  for (auto& [id, uses] : by_id) {
    std::sort(uses.begin(), uses.end(), [](const Use& a, const Use& b) { return a.inc->began_ns < b.inc->began_ns; });
    const Use* held = nullptr;  // the latest release among the entry's earlier incarnations
    std::set<std::string> names;
    for (const Use& u : uses) {
      const std::string name = u.who.substr(0, u.who.find(" incarnation"));
      if (!names.empty() && !names.contains(name)) ++tally.recycled;
      names.insert(name);
      if (held != nullptr && held->inc->released_ns > u.inc->began_ns) {
        findings.add("entry recycled before release",
                     u.who + " began in entry " + std::to_string(id) + " (attach returned at " +
                         std::to_string(u.inc->began_ns) + " ns) while " + held->inc->released_what +
                         ", of its previous holder, was still held: its ack began " +
                         std::to_string(held->inc->released_ns - u.inc->began_ns) + " ns later");
      }
      if (held == nullptr || u.inc->released_ns > held->inc->released_ns) held = &u;
    }
  }
}

// Names rounds: TableFull only once as many names as the table holds had
// attached (begun to, before the answer); durable rounds: between power
// losses an entry serves one name (a durable queue never recycles).
void check_table(const Producers& producers, const std::vector<Attach>& attaches, const Expectation& expected,
                 Findings& findings) {
  for (const auto& [name, p] : producers) {
    for (const std::uint64_t at : p.refusals) {
      std::set<std::string> before;
      for (const Attach& a : attaches) {
        if (a.began_ns < at) before.insert(a.name);
      }
      if (before.size() < expected.max_producers) {
        findings.add("TableFull with room", "producer " + name + " refused when only " + std::to_string(before.size()) +
                                                " names had attached to the table of " +
                                                std::to_string(expected.max_producers));
      }
    }
  }
  if (!expected.durable) return;
  std::map<std::pair<std::uint64_t, std::uint32_t>, std::set<std::string>> names_of;  // (epoch, id) -> names
  for (const Attach& a : attaches) names_of[{a.epoch, a.id}].insert(a.name);
  for (const auto& [where, names] : names_of) {
    if (names.size() < 2) continue;
    std::string list;
    for (const auto& n : names) list += " " + n;
    findings.add("durable entry recycled", "entry " + std::to_string(where.second) + " served" + list +
                                               " between power losses " + std::to_string(where.first) + " and " +
                                               std::to_string(where.first + 1));
  }
}

}  // namespace

Verdict verify_logs(const std::string& log_dir, const Expectation& expected) {
  Verdict verdict;
  Findings findings;
  Producers producers;
  std::vector<Attach> attaches;
  const auto read = [&](const std::string& file, const std::string& name, bool regular) {
    producers[name] = read_producer_log(fs::path(log_dir) / file, name, regular, expected, attaches, findings,
                                        verdict.tally);
  };
  for (std::size_t k = 0; k < expected.producers.size(); ++k) {
    read("producer-" + std::to_string(k) + ".log", expected.producers[k], true);
  }
  for (std::size_t j = 0; j < expected.transients.size(); ++j) {
    read("transient-" + std::to_string(j) + ".log", expected.transients[j], false);
  }
  std::vector<ConsumerLog> consumers;
  for (const auto& entry : fs::directory_iterator(log_dir)) {
    if (entry.path().filename().string().starts_with("consumer-")) {
      consumers.push_back(read_consumer_log(entry.path(), findings, verdict.tally));
    }
  }
  if (expected.names_round()) check_table(producers, attaches, expected, findings);
  const std::vector<DeadLetterCopy> dead_letters =
      expected.policy ? read_dead_letters(fs::path(log_dir) / "dead-letters.log", expected, verdict.tally)
                      : std::vector<DeadLetterCopy>{};
  if (expected.completed) {
    auto groups = by_group(consumers, producers, findings);
    if (expected.policy) add_dead_letters(groups, dead_letters, producers, expected, findings);
    note_deliveries(groups, producers);
    for (const auto& name : expected.groups) {
      const auto it = groups.find(name);
      const GroupView empty;
      const GroupView& view = it == groups.end() ? empty : it->second;
      check_nothing_lost(name, view, producers, expected, findings, verdict.tally);
      check_duplicates(name, view, producers, expected, findings, verdict.tally);
      if (expected.policy) check_policy(name, view, expected, findings);
    }
    check_log_order(groups, producers, findings);
    check_consumer_order(consumers, findings);
    for (const auto& name : expected.exclusive_groups) {
      verdict.tally.exclusive_takeovers += check_exclusive(name, consumers, findings);
    }
    if (expected.recycling()) check_recycling(producers, findings, verdict.tally);
  }
  verdict.violations = findings.lines();
  return verdict;
}

}  // namespace shmq::torture
