#include "workers.hpp"

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "child.hpp"
#include "shmq/shmq.hpp"
#include "worker_log.hpp"

namespace shmq::torture {

using ull = unsigned long long;

std::string payload_of(std::uint64_t sequence, std::string_view name, std::uint64_t process, std::size_t size) {
  std::string text = "#" + std::to_string(sequence) + "|" + std::string(name) + "|" + std::to_string(process) + "|";
  for (std::size_t i = text.size(); i < size; ++i) text.push_back(static_cast<char>('a' + (sequence + i) % 26));
  return text;
}

std::optional<PayloadOrigin> payload_origin(std::string_view payload, std::uint64_t sequence) {
  // "#<sequence>|<name>|<process>|..."
  const std::size_t a = payload.find('|');
  const std::size_t b = a == std::string_view::npos ? a : payload.find('|', a + 1);
  const std::size_t c = b == std::string_view::npos ? b : payload.find('|', b + 1);
  if (c == std::string_view::npos) return std::nullopt;
  PayloadOrigin origin{.name = std::string(payload.substr(a + 1, b - a - 1)), .process = 0};
  const std::string_view digits = payload.substr(b + 1, c - b - 1);
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  for (const char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    origin.process = origin.process * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  if (payload != payload_of(sequence, origin.name, origin.process, payload.size())) return std::nullopt;
  return origin;
}

namespace {

const char* name_of(Status s) { return to_string(s).data(); }  // to_string returns literals

// Resends the last committed sequence and one random earlier one: the queue
// must refuse both as Duplicate and enqueue nothing.
bool resend_committed(Producer& producer, const ProducerJob& job, std::uint64_t last, std::mt19937_64& rng,
                      WorkerLog& log) {
  if (last == 0) return true;
  for (const std::uint64_t seq : {last, 1 + rng() % last}) {
    const Status s = producer.try_send(seq, as_bytes(payload_of(seq, job.name, job.process, 16)));
    log.line("R %llu %s", static_cast<ull>(seq), name_of(s));
    if (s != Status::Duplicate) return false;
  }
  return true;
}

// Waits until the journal has synced everything this producer committed
// (shmqd may be down for a moment: a killed daemon is restarted).
bool wait_until_durable(Producer& producer, WorkerLog& log) {
  for (;;) {
    const Status s = producer.wait_durable(std::chrono::seconds(1));
    if (s == Status::Ok) return true;
    if (s != Status::Timeout) {
      log.line("E wait_durable returned %s", name_of(s));
      return false;
    }
  }
}

// Sends `seq` with `confirm`, waiting while the ring is full (consumers may be
// stopped). A durable send that timed out after its commit is not resent
// (that would be a Duplicate): its durability is waited for instead.
bool send_one(Producer& producer, const ProducerJob& job, std::uint64_t seq, std::size_t size, Confirm confirm,
              WorkerLog& log) {
  const std::string payload = payload_of(seq, job.name, job.process, size);
  for (;;) {
    const Status s = producer.send(seq, as_bytes(payload), confirm, std::chrono::seconds(1));
    if (s == Status::Ok) return true;
    if (s == Status::Timeout) {
      if (confirm == Confirm::Durable && producer.last_sequence() >= seq) return wait_until_durable(producer, log);
      continue;
    }
    log.line("E send %llu returned %s", static_cast<ull>(seq), name_of(s));
    return false;
  }
}

// Sends the payloads as one batch with the next sequences, copied
// (send_batch) or written in place (claim_batch, then commit): how many went
// (0 when there was no room in time).
std::size_t send_one_batch(Producer& producer, const std::vector<std::string>& payloads, bool zero_copy,
                           Status& status) {
  constexpr auto kWait = std::chrono::seconds(1);
  if (!zero_copy) {
    std::vector<std::span<const std::byte>> spans;
    for (const auto& p : payloads) spans.push_back(as_bytes(p));
    return producer.send_batch(spans, kWait, status);
  }
  std::vector<std::size_t> sizes;
  for (const auto& p : payloads) sizes.push_back(p.size());
  const std::size_t n = producer.claim_batch(sizes, kWait, status);
  for (std::size_t i = 0; i < n; ++i) std::memcpy(producer.claimed(i).data(), payloads[i].data(), payloads[i].size());
  producer.commit();
  return n;
}

// Sends sequences [first, end) in batches of up to 16 (their sequences are
// the producer's next: it committed first - 1 last), logging each as
// confirmed once it is committed (durable: once one wait_durable covers all).
bool send_batches(Producer& producer, const ProducerJob& job, std::uint64_t first, std::uint64_t end,
                  std::mt19937_64& rng, WorkerLog& log) {
  std::uniform_int_distribution<std::size_t> size(8, job.max_payload);
  const bool zero_copy = rng() % 2 == 0;
  for (std::uint64_t seq = first; seq < end;) {
    if (producer.last_sequence() != seq - 1) {
      log.line("E batch from %llu after sequence %llu", static_cast<ull>(seq), static_cast<ull>(producer.last_sequence()));
      return false;
    }
    std::vector<std::string> payloads;
    const std::uint64_t n = std::min<std::uint64_t>(end - seq, 1 + rng() % 16);
    for (std::uint64_t i = 0; i < n; ++i) payloads.push_back(payload_of(seq + i, job.name, job.process, size(rng)));
    Status status = Status::Ok;
    const std::size_t sent = send_one_batch(producer, payloads, zero_copy, status);
    if (sent == 0 && status != Status::Timeout) {
      log.line("E %s batch at %llu returned %s", zero_copy ? "claim" : "send", static_cast<ull>(seq), name_of(status));
      return false;
    }
    if (!job.durable) {
      for (std::size_t i = 0; i < sent; ++i) log.line("C %llu", static_cast<ull>(seq + i));
    }
    seq += sent;
  }
  if (!job.durable) return true;
  if (!wait_until_durable(producer, log)) return false;
  for (std::uint64_t seq = first; seq < end; ++seq) log.line("C %llu", static_cast<ull>(seq));
  return true;
}

// Sends sequences [first, end) and logs each as confirmed once it is. In
// durable rounds half the bursts confirm each send (Confirm::Durable), the
// others send plainly and confirm the burst with one wait_durable. A third
// of all bursts go as batches instead, copied or zero-copy.
bool send_burst(Producer& producer, const ProducerJob& job, std::uint64_t first, std::uint64_t end,
                std::mt19937_64& rng, WorkerLog& log) {
  std::uniform_int_distribution<std::size_t> size(8, job.max_payload);
  if (rng() % 3 == 0) return send_batches(producer, job, first, end, rng, log);
  const bool confirm_burst = job.durable && rng() % 2 == 0;
  const Confirm each = job.durable && !confirm_burst ? Confirm::Durable : Confirm::Shared;
  for (std::uint64_t seq = first; seq < end; ++seq) {
    if (!send_one(producer, job, seq, size(rng), each, log)) return false;
    if (!confirm_burst) log.line("C %llu", static_cast<ull>(seq));
  }
  if (!confirm_burst) return true;
  if (!wait_until_durable(producer, log)) return false;
  for (std::uint64_t seq = first; seq < end; ++seq) log.line("C %llu", static_cast<ull>(seq));
  return true;
}

// Bursts of sends with pauses between them, so a round lasts long enough for
// the faults to land both in bursts (mid-send) and between them.
void pause_between_bursts(std::mt19937_64& rng, std::uint32_t mean_gap_us) {
  if (mean_gap_us == 0) return;
  std::exponential_distribution<double> gap(1.0 / mean_gap_us);
  std::this_thread::sleep_for(std::chrono::microseconds(static_cast<std::int64_t>(gap(rng))));
}

ull monotonic_ns() {
  return static_cast<ull>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

// Attaches; on TableFull logs T (once) and gives up (nullopt) or waits for an
// entry, as the job says. Any other error throws.
std::optional<Producer> attach(const Queue& queue, const ProducerJob& job, WorkerLog& log, ull& attach_began) {
  const auto deadline = std::chrono::steady_clock::now() + job.attach_wait;
  bool refused = false;
  for (;;) {
    try {
      attach_began = monotonic_ns();
      return Producer::attach(queue, job.name);
    } catch (const Error& e) {
      if (e.code() != Errc::TableFull) throw;
      if (!refused) log.line("T %llu", monotonic_ns());
      refused = true;
      if (job.give_up_when_full) return std::nullopt;
      if (std::chrono::steady_clock::now() >= deadline) {
        log.line("E attach refused with TableFull for %lld ms: %s",
                 static_cast<long long>(job.attach_wait.count()), e.what());
        throw;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

int run_producer(const ProducerJob& job) {
  WorkerLog log(job.log);
  std::mt19937_64 rng(job.seed);
  const auto queue = Queue::open(job.queue, job.ns);
  ull attach_began = 0;
  auto attached = attach(queue, job, log, attach_began);
  if (!attached) return 0;
  Producer& producer = *attached;
  const std::uint64_t last = producer.last_sequence();
  const std::uint64_t messages = job.chunk > 0 ? last + job.chunk : job.messages;
  log.line("A %u %llu %llu %llu %llu %llu %llu", producer.id(), static_cast<ull>(last), static_cast<ull>(messages),
           static_cast<ull>(job.process), static_cast<ull>(job.epoch), attach_began, monotonic_ns());
  if (last > messages) {
    log.line("E last sequence %llu beyond the %llu ever sent", static_cast<ull>(last), static_cast<ull>(messages));
    return 3;
  }
  if (!resend_committed(producer, job, last, rng, log)) return 2;
  for (std::uint64_t seq = last + 1; seq <= messages;) {
    const std::uint64_t end = std::min(messages + 1, seq + 1 + rng() % 32);
    if (!send_burst(producer, job, seq, end, rng, log)) return 2;
    seq = end;
    pause_between_bursts(rng, job.mean_gap_us);
  }
  // Done only once what it committed is on disk: an incarnation that finds
  // every sequence committed by earlier ones (never confirmed: a full data
  // disk can hold them unsynced for long) must not finish before a power
  // loss may take them, since a finished producer is not restarted.
  if (job.durable && !wait_until_durable(producer, log)) return 2;
  log.line("F");
  return 0;
}

namespace {

volatile sig_atomic_t stop_requested = 0;

void on_sigterm(int) { stop_requested = 1; }

void stop_on_sigterm() {
  struct sigaction action {};
  action.sa_handler = on_sigterm;  // no SA_RESTART: a blocked receive returns soon anyway
  ::sigaction(SIGTERM, &action, nullptr);
}

// Logs a delivery (before anything acks it), with the sender its payload
// names, and checks the payload.
void log_delivery(const ConsumerJob& job, const Message& m, WorkerLog& log) {
  const auto origin = payload_origin(m.text(), m.sequence);
  log.line(job.policy ? "D %s %u %llu %llu %d %s %llu %llu %u" : "D %s %u %llu %llu %d %s %llu %llu",
           job.group.c_str(), m.producer_id, static_cast<ull>(m.sequence), static_cast<ull>(m.position),
           m.redelivered ? 1 : 0, origin ? origin->name.c_str() : "?", static_cast<ull>(origin ? origin->process : 0),
           monotonic_ns(), m.deliveries);
  if (!origin) {
    log.line("E payload of producer %u sequence %llu at %llu does not match", m.producer_id,
             static_cast<ull>(m.sequence), static_cast<ull>(m.position));
  }
}

// Every message shows the name that sent it: the producer table's name for
// its producer id (what `shmq recv --format json` prints) is the name its
// payload carries. Read once per batch, while every message of the batch is
// held: none of their entries may change hands before they are acked (a
// producer entry is recycled only once every group has released its last
// message), so one snapshot labels them all. Logs E for each mislabel; the
// consumer goes on (the verifier reports it).
void check_labels(const Queue& queue, const std::vector<Message>& held, WorkerLog& log) {
  if (held.empty()) return;
  std::map<std::uint32_t, std::string> names;
  for (const ProducerInfo& p : queue.info().producers) names[p.id] = p.name;
  for (const Message& m : held) {
    const auto origin = payload_origin(m.text(), m.sequence);
    if (!origin) continue;  // log_delivery reported it
    const auto it = names.find(m.producer_id);
    const std::string label = it == names.end() ? "(none)" : it->second;
    if (label != origin->name) {
      log.line("E mislabelled: position %llu, sent by %s (process %llu) sequence %llu, shows producer %u as %s",
               static_cast<ull>(m.position), origin->name.c_str(), static_cast<ull>(origin->process),
               static_cast<ull>(m.sequence), m.producer_id, label.c_str());
    }
  }
}

bool ack_all(Consumer& consumer, const std::vector<Message>& held, WorkerLog& log) {
  for (const Message& m : held) {
    const ull before = monotonic_ns();  // the group's release of m comes after this
    const Status s = consumer.ack(m);
    if (s != Status::Ok) {
      log.line("E ack of %llu returned %s", static_cast<ull>(m.position), name_of(s));
      return false;
    }
    log.line("K %llu %llu", static_cast<ull>(m.position), before);
  }
  return true;
}

// Policy rounds: what to do with a message, drawn per delivery.
char choose_action(const ConsumerJob& job, const Message& m, std::mt19937_64& rng) {
  if (job.poison_every != 0 && m.sequence % job.poison_every == 0) return 'n';
  const std::uint32_t draw = static_cast<std::uint32_t>(rng() % 1000);
  if (draw < job.reject_per_mille) return 'r';
  if (draw < job.reject_per_mille + job.nack_per_mille) return 'n';
  return 'a';
}

// Rejects, retrying while the dead-letter queue cannot take it yet (Full,
// Timeout; Deleted: not rebuilt yet after a power loss), for up to 10 s.
Status reject_with_retries(Consumer& consumer, const Message& m) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    const Status s = consumer.reject(m);
    if (s != Status::Full && s != Status::Timeout && s != Status::Deleted) return s;
    if (std::chrono::steady_clock::now() >= deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Policy rounds: acks, nacks or rejects each held message, logging the
// intent first and the outcome after. A late call (LeaseExpired) is logged as
// such: that message went back to its group and is not this consumer's ack.
// A nack of a journal copy (NotInFlight: docs/design.md, Limits) acks it.
bool settle_all(Consumer& consumer, const ConsumerJob& job, const std::vector<Message>& held, std::mt19937_64& rng,
                WorkerLog& log) {
  for (const Message& m : held) {
    const ull position = static_cast<ull>(m.position);
    char action = choose_action(job, m, rng);
    log.line("I %llu %c", position, action);
    Status s = Status::Ok;
    const ull before = monotonic_ns();
    if (action == 'n') {
      s = consumer.nack(m);
      if (s == Status::NotInFlight) {
        action = 'a';
        log.line("I %llu a", position);
      }
    }
    if (action == 'a') s = consumer.ack(m);
    if (action == 'r') s = reject_with_retries(consumer, m);
    if (s == Status::LeaseExpired) {
      log.line("L %llu %c", position, action);
    } else if (s != Status::Ok) {
      log.line("E %s of %llu returned %s", action == 'a' ? "ack" : action == 'n' ? "nack" : "reject", position,
               name_of(s));
      return false;
    } else if (action == 'a') {
      log.line("K %llu %llu", position, before);
    } else {
      log.line("%c %llu", action == 'n' ? 'N' : 'X', position);
    }
  }
  return true;
}

// Takes one batch (waiting a little for its first message); false on an error.
bool take_batch(Consumer& consumer, const ConsumerJob& job, std::size_t want, std::vector<Message>& held,
                WorkerLog& log) {
  Message m;
  const Status first = consumer.receive(m, std::chrono::milliseconds(50));
  if (first == Status::Timeout || first == Status::Empty) return true;
  if (first != Status::Ok) {
    if (first == Status::JournalUnreadable) {
      log.line("E receive returned %s: %s", name_of(first), consumer.journal_error().c_str());
    } else {
      log.line("E receive returned %s", name_of(first));
    }
    return false;
  }
  do {
    log_delivery(job, m, log);
    held.push_back(m);
  } while (held.size() < want && consumer.try_receive(m) == Status::Ok);
  return true;
}

}  // namespace

int run_consumer(const ConsumerJob& job) {
  stop_on_sigterm();
  WorkerLog log(job.log);
  std::mt19937_64 rng(job.seed);
  {
    const auto queue = Queue::open(job.queue, job.ns);
    auto consumer = Consumer::join(
        queue, job.group,
        ConsumerOptions{.prefetch = job.prefetch, .journal_dir = job.journal_dir, .exclusive = job.exclusive});
    log.line("J %llu", static_cast<ull>(job.epoch));
    std::vector<Message> held;
    while (stop_requested == 0) {
      held.clear();
      if (!take_batch(consumer, job, 1 + rng() % job.max_batch, held, log)) return 2;
      check_labels(queue, held, log);
      // "Work" on the batch while holding it: kills find messages in flight.
      if (!held.empty() && job.work_us > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * job.work_us)));
      }
      if (job.policy && !held.empty() && rng() % 1000 < job.stall_per_mille) {
        log.line("S %u", job.stall_ms);
        std::this_thread::sleep_for(std::chrono::milliseconds(job.stall_ms));
      }
      if (!(job.policy ? settle_all(consumer, job, held, rng, log) : ack_all(consumer, held, log))) return 2;
    }
  }
  log.line("Q");
  return 0;
}

}  // namespace shmq::torture
