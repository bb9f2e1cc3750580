#include "workers.hpp"

#include <signal.h>

#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include "child.hpp"
#include "shmq/shmq.hpp"
#include "worker_log.hpp"

namespace shmq::torture {

using ull = unsigned long long;

std::string payload_of(std::uint64_t sequence, std::size_t size) {
  std::string text = "#" + std::to_string(sequence) + "|";
  for (std::size_t i = text.size(); i < size; ++i) text.push_back(static_cast<char>('a' + (sequence + i) % 26));
  return text;
}

bool payload_matches(std::string_view payload, std::uint64_t sequence) {
  return payload == payload_of(sequence, payload.size());
}

namespace {

const char* name_of(Status s) { return to_string(s).data(); }  // to_string returns literals

// Resends the last committed sequence and one random earlier one: the queue
// must refuse both as Duplicate and enqueue nothing.
bool resend_committed(Producer& producer, std::uint64_t last, std::mt19937_64& rng, WorkerLog& log) {
  if (last == 0) return true;
  for (const std::uint64_t seq : {last, 1 + rng() % last}) {
    const Status s = producer.try_send(seq, as_bytes(payload_of(seq, 16)));
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
bool send_one(Producer& producer, std::uint64_t seq, std::size_t size, Confirm confirm, WorkerLog& log) {
  const std::string payload = payload_of(seq, size);
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

// Sends sequences [first, end) and logs each as confirmed once it is. In
// durable rounds half the bursts confirm each send (Confirm::Durable), the
// others send plainly and confirm the burst with one wait_durable.
bool send_burst(Producer& producer, const ProducerJob& job, std::uint64_t first, std::uint64_t end,
                std::mt19937_64& rng, WorkerLog& log) {
  std::uniform_int_distribution<std::size_t> size(8, job.max_payload);
  const bool confirm_burst = job.durable && rng() % 2 == 0;
  const Confirm each = job.durable && !confirm_burst ? Confirm::Durable : Confirm::Shared;
  for (std::uint64_t seq = first; seq < end; ++seq) {
    if (!send_one(producer, seq, size(rng), each, log)) return false;
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

}  // namespace

int run_producer(const ProducerJob& job) {
  WorkerLog log(job.log);
  std::mt19937_64 rng(job.seed);
  const auto queue = Queue::open(job.queue, job.ns);
  auto producer = Producer::attach(queue, job.name);
  const std::uint64_t last = producer.last_sequence();
  log.line("A %u %llu", producer.id(), static_cast<ull>(last));
  if (last > job.messages) {
    log.line("E last sequence %llu beyond the %llu ever sent", static_cast<ull>(last), static_cast<ull>(job.messages));
    return 3;
  }
  if (!resend_committed(producer, last, rng, log)) return 2;
  for (std::uint64_t seq = last + 1; seq <= job.messages;) {
    const std::uint64_t end = std::min(job.messages + 1, seq + 1 + rng() % 32);
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

// Logs a delivery (before anything acks it) and checks its payload.
void log_delivery(const ConsumerJob& job, const Message& m, WorkerLog& log) {
  log.line("D %s %u %llu %llu %d", job.group.c_str(), m.producer_id, static_cast<ull>(m.sequence),
           static_cast<ull>(m.position), m.redelivered ? 1 : 0);
  if (!payload_matches(m.text(), m.sequence)) {
    log.line("E payload of producer %u sequence %llu at %llu does not match", m.producer_id,
             static_cast<ull>(m.sequence), static_cast<ull>(m.position));
  }
}

bool ack_all(Consumer& consumer, const std::vector<Message>& held, WorkerLog& log) {
  for (const Message& m : held) {
    const Status s = consumer.ack(m);
    if (s != Status::Ok) {
      log.line("E ack of %llu returned %s", static_cast<ull>(m.position), name_of(s));
      return false;
    }
    log.line("K %llu", static_cast<ull>(m.position));
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
    auto consumer = Consumer::join(queue, job.group, ConsumerOptions{.prefetch = job.prefetch, .journal_dir = job.journal_dir});
    log.line("J %llu", static_cast<ull>(job.epoch));
    std::vector<Message> held;
    while (stop_requested == 0) {
      held.clear();
      if (!take_batch(consumer, job, 1 + rng() % job.max_batch, held, log)) return 2;
      // "Work" on the batch while holding it: kills find messages in flight.
      if (!held.empty() && job.work_us > 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % (2 * job.work_us)));
      }
      if (!ack_all(consumer, held, log)) return 2;
    }
  }
  log.line("Q");
  return 0;
}

}  // namespace shmq::torture
