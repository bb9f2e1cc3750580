#include "round.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <utility>

#include "child.hpp"
#include "dead_letters.hpp"
#include "lifecycle.hpp"
#include "shmq/consumer.hpp"
#include "shmq/journal.hpp"
#include "verify.hpp"
#include "workers.hpp"

namespace shmq::torture {

using Clock = std::chrono::steady_clock;

namespace {

template <class T>
T pick(std::mt19937_64& rng, std::initializer_list<T> choices) {
  return *(choices.begin() + rng() % choices.size());
}

std::vector<GroupPlan> plan_groups(std::mt19937_64& rng) {
  std::vector<GroupPlan> groups(2 + rng() % 2);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    auto& group = groups[g];
    group.name = "g" + std::to_string(g);
    group.consumers = 1 + static_cast<int>(rng() % 3);
    group.prefetch = pick<std::uint32_t>(rng, {1, 8, 64, 256});
    group.max_batch = std::min(group.prefetch, pick<std::uint32_t>(rng, {1, 4, 16}));
    group.work_us = pick<std::uint32_t>(rng, {0, 300, 1000});
  }
  return groups;
}

// Drawn last, so that an in-memory round keeps the shape it had before
// durable rounds existed.
void plan_durability(const TortureOptions& options, RoundPlan& plan, std::mt19937_64& rng) {
  if (!options.durable && !options.lifecycle && plan.number % 2 != 0) return;
  plan.kind = RoundKind::Durable;
  plan.queue_options.durable = true;
  // A power loss costs a restart of everything: a few per round, not one per fault.
  plan.power_loss_gap_ms = std::max(150, options.producer_ms / pick(rng, {2, 3, 4}));
}

// Drawn after everything else, so that the other rounds keep their shapes.
void plan_lifecycle(const TortureOptions& options, RoundPlan& plan, std::mt19937_64& rng) {
  if (!plan.durable()) return;
  static constexpr Lifecycle kFaults[] = {Lifecycle::AppFirst, Lifecycle::RebuildKill, Lifecycle::FullDisk,
                                          Lifecycle::Standby};
  if (options.lifecycle_fault) {
    plan.lifecycle = *options.lifecycle_fault;
  } else if (options.lifecycle) {
    plan.lifecycle = kFaults[(plan.number - 1) % 4];  // every four rounds cover them all
  } else if (plan.number % 4 == 0) {
    plan.lifecycle = kFaults[rng() % 4];
  }
}

// Drawn after everything else, so that the other rounds keep their shapes. A
// names round (issue 13): a producer table of 2 to 4 entries, the regular
// producers trimmed to leave one entry or more, and a pool of transient names
// two to four more than the table holds, so that the transients, and regular
// producers whose restart the round delays, keep needing entries that other
// names used: recycled (in-memory) or refused (durable).
void plan_names(const TortureOptions& options, RoundPlan& plan, std::mt19937_64& rng) {
  if (plan.lifecycle != Lifecycle::None) return;  // a lifecycle round has enough going on
  if (!options.names && rng() % 2 != 0) return;
  const std::uint32_t entries = pick<std::uint32_t>(rng, {2, 3, 4});
  plan.queue_options.max_producers = entries;
  plan.producers.resize(std::min<std::size_t>(plan.producers.size(), entries - 1));
  const std::size_t pool = entries + 2 + rng() % 3;
  for (std::size_t j = 0; j < pool; ++j) plan.transients.push_back("t" + std::to_string(j));
  plan.transient_messages = pick<std::uint64_t>(rng, {4, 16, 48});
}

// Drawn after everything else, so that the other groups keep their shapes.
// Every round has one exclusive group (issue 17): 2 or 3 members, one of
// them active (it reads in ring order, without a CAS per record), the
// others standing by to take over when it dies.
void plan_exclusive(RoundPlan& plan, std::mt19937_64& rng) {
  GroupPlan group;
  group.name = "x" + std::to_string(plan.groups.size());
  group.exclusive = true;
  group.consumers = 2 + static_cast<int>(rng() % 2);
  group.prefetch = pick<std::uint32_t>(rng, {1, 8, 64, 256});
  group.max_batch = std::min(group.prefetch, pick<std::uint32_t>(rng, {1, 4, 16}));
  // One member works at a time: 1 ms a message would make it the round's
  // slowest group by far (and the bounded CTest runs longer).
  group.work_us = pick<std::uint32_t>(rng, {0, 300});
  plan.groups.push_back(group);
}

// Drawn after everything else, so that the other rounds keep their shapes. A
// policy round (issue 18): rounds 2 and 3 of every 4 (the durable one and the
// in-memory one before a lifecycle round), or every round with --policy;
// never a lifecycle round. Its policy and how its consumers treat messages
// come from the seed. An ack timeout rules the exclusive group out (a member
// of an exclusive group refuses to join such a queue): it is dropped.
void plan_policy(const TortureOptions& options, RoundPlan& plan, std::mt19937_64& rng) {
  if (plan.lifecycle != Lifecycle::None) return;
  if (!options.policy && plan.number % 4 != 2 && plan.number % 4 != 3) return;
  PolicyPlan& p = plan.policy;
  DeliveryPolicy& d = plan.queue_options.policy;
  p.on = true;
  d.max_deliveries = pick<std::uint32_t>(rng, {0, 2, 3, 5});
  d.ack_timeout = std::chrono::milliseconds(pick(rng, {0, 0, 50, 200}));
  d.ttl = std::chrono::milliseconds(pick(rng, {0, 0, 200, 2000}));
  p.nack_per_mille = pick<std::uint32_t>(rng, {10, 50, 150});
  p.reject_per_mille = pick<std::uint32_t>(rng, {5, 20, 50});
  // Poison: nacked by every member every time, so only max_deliveries ends it.
  p.poison_every = d.max_deliveries == 0 ? 0 : pick<std::uint64_t>(rng, {0, 37, 150});
  if (d.ack_timeout.count() != 0) {
    p.stall_per_mille = pick<std::uint32_t>(rng, {5, 20});
    p.stall_ms = static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(d.ack_timeout).count() * pick(rng, {2, 3}));
    std::erase_if(plan.groups, [](const GroupPlan& g) { return g.exclusive; });
  }
  // Room for a while of dead letters: the driver drains them as the round goes.
  p.dead_letter_capacity = 4u << 20;
  // Every group stays in the ring: a group a ring behind reads journal copies,
  // whose moves are exactly once only as far as docs/design.md ("Delivery
  // policy", Limits) says, which the invariants here do not allow for.
  if (plan.durable()) plan.queue_options.capacity = std::max<std::uint64_t>(plan.queue_options.capacity, 8u << 20);
}

}  // namespace

RoundPlan plan_round(const TortureOptions& options, int number, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  RoundPlan plan;
  plan.number = number;
  plan.seed = seed;
  // Small rings make producers meet backpressure while consumers are stopped.
  plan.queue_options.capacity = pick<std::uint64_t>(rng, {16u << 10, 64u << 10, 1u << 20});
  plan.queue_options.max_message = 1024;
  plan.max_payload = pick<std::uint32_t>(rng, {64, 1024});
  for (std::size_t k = 0, n = 2 + rng() % 3; k < n; ++k) plan.producers.push_back("p" + std::to_string(k));
  plan.messages = options.messages;
  const std::uint64_t bursts = std::max<std::uint64_t>(1, options.messages / 16);  // bursts average 16.5
  plan.producer_gap_us = static_cast<std::uint32_t>(options.producer_ms * 1000ull / bursts);
  plan.groups = plan_groups(rng);
  plan.fault_gap_ms = pick(rng, {20, 50, 100});
  plan.stall_seconds = options.stall_seconds;
  plan_durability(options, plan, rng);
  plan_lifecycle(options, plan, rng);
  plan_names(options, plan, rng);
  plan_exclusive(plan, rng);
  plan_policy(options, plan, rng);
  return plan;
}

std::string RoundPlan::describe() const {
  std::ostringstream out;
  if (durable()) out << "durable, ";
  out << producers.size() << " producers x " << messages << " messages, groups";
  for (const auto& g : groups) {
    out << ' ' << g.name << '(' << (g.exclusive ? "exclusive, " : "") << g.consumers << " consumers, prefetch "
        << g.prefetch << ", work " << g.work_us << " us)";
  }
  out << ", ring " << queue_options.capacity / 1024 << " KiB, a fault every ~" << fault_gap_ms << " ms";
  if (names_round()) {
    out << "; names: a table of " << queue_options.max_producers << " producer entries, " << transients.size()
        << " transient names (one at a time, 1 to " << transient_messages << " messages each, then detach; "
        << (durable() ? "refused with TableFull once the table is full" : "detached entries recycled")
        << "), half the producer restarts delayed 5 to 60 ms";
  }
  if (policy_round()) {
    const DeliveryPolicy& d = queue_options.policy;
    const auto ms = [](std::chrono::nanoseconds t) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t).count()) + " ms";
    };
    out << "; policy: dead-letter queue " << dead_letter_queue() << (durable() ? " (durable)" : "")
        << ", max-deliveries " << (d.max_deliveries == 0 ? "none" : std::to_string(d.max_deliveries))
        << ", ack-timeout " << (d.ack_timeout.count() == 0 ? "none" : ms(d.ack_timeout)) << ", ttl "
        << (d.ttl.count() == 0 ? "none" : ms(d.ttl)) << "; consumers nack " << policy.nack_per_mille / 10.0
        << "%, reject " << policy.reject_per_mille / 10.0 << "%";
    if (policy.poison_every != 0) out << ", poison (always nacked): every sequence divisible by " << policy.poison_every;
    if (policy.stall_per_mille != 0) {
      out << ", stall " << policy.stall_ms << " ms holding " << policy.stall_per_mille / 10.0 << "% of batches";
    }
    if (d.ack_timeout.count() != 0) out << " (no exclusive group: an ack timeout rules it out)";
  }
  if (durable() && daemon_faults) out << ", a power loss every ~" << power_loss_gap_ms << " ms";
  switch (daemon_faults ? lifecycle : Lifecycle::None) {
    case Lifecycle::None: break;
    case Lifecycle::AppFirst:
      out << "; lifecycle app-first: at each power loss the application calls Queue::create (must fail "
             "NeedsRebuild) and Queue::open_or_create before shmqd starts, and must get the rebuilt queue";
      break;
    case Lifecycle::RebuildKill:
      out << "; lifecycle rebuild-kill: at each power loss shmqd is killed during its rebuild 1 to 3 times "
             "(on its half-built segment, or 0 to 30 ms after its start), then started for good";
      break;
    case Lifecycle::FullDisk:
      out << "; lifecycle full-disk: the data directory a " << data_disk_bytes() / (1024 * 1024)
          << " MiB tmpfs, filled up before half the shmqd restarts (power losses, kills) and freed 100 to 800 ms "
             "later";
      break;
    case Lifecycle::Standby:
      out << "; lifecycle standby: a standby shmqd (--standby-deadline " << kStandbyDeadlineMs
          << "), the primary SIGSTOPped every ~" << 3 * power_loss_gap_ms
          << " ms (fenced by the standby, which takes over), kills of the primary taken over by the standby";
      break;
  }
  return out.str();
}

QueueOptions RoundPlan::dead_letter_options() const {
  QueueOptions o;
  o.capacity = policy.dead_letter_capacity;
  o.max_message = queue_options.max_message + kDeadLetterOverhead;
  o.durable = durable();
  return o;
}

std::vector<std::string> RoundPlan::daemon_args() const {
  if (lifecycle != Lifecycle::Standby || !daemon_faults) return {};
  return {"--standby", "--standby-deadline", std::to_string(kStandbyDeadlineMs)};
}

std::uint64_t RoundPlan::data_disk_bytes() const {
  constexpr std::uint64_t kMiB = 1024 * 1024;
  const std::uint64_t records = producers.size() * messages * (48 + 8 + max_payload);
  return (2 * records + 8 * kMiB + kMiB - 1) / kMiB * kMiB;
}

namespace {

// The faults a round injects, drawn by weight; PowerLoss (durable rounds
// only) comes on its own, slower clock instead. KillActive and StopActive aim
// at an exclusive group's active member.
enum class Fault {
  KillProducer,
  KillConsumer,
  KillDaemon,
  StopConsumer,
  PowerLoss,
  StopPrimary,
  KillActive,
  StopActive,
};

struct Worker {
  pid_t pid = 0;
  int incarnation = 0;
  bool stopped = false;  // SIGSTOPped, until resume_at
  Clock::time_point resume_at{};
  bool finished = false;  // a producer that sent everything and exited 0
  // Names rounds: a killed producer restarted later (once another name may
  // have taken its entry).
  bool restart_pending = false;
  Clock::time_point restart_at{};
  bool confirmed_any = false;  // durable names rounds: its log has a confirm (cached once seen)
};

// Policy rounds: the dead-letter queue exists before the queue whose policy
// names it, with the group the driver reads it in, so that it keeps every
// dead letter from the first on.
bool create_dead_letter_queue(const RoundPlan& plan) {
  if (!plan.policy_round()) return false;
  const Queue dead_letters = Queue::create(plan.dead_letter_queue(), plan.dead_letter_options(), plan.ns);
  (void)Consumer::join(dead_letters, kDeadLetterGroup);  // joins and leaves: the group stays
  return true;
}

QueueOptions queue_options_of(const RoundPlan& plan) {
  QueueOptions o = plan.queue_options;
  if (plan.policy_round()) o.policy.dead_letter = plan.dead_letter_queue();
  return o;
}

std::uint64_t realtime_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

class Round {
 public:
  Round(const RoundPlan& plan, DaemonProcess& daemon)
      : plan_(plan), daemon_(daemon), standby_(plan.ns, plan.data_dir, plan.log_dir + "/shmqd.log", plan.daemon_args()),
        has_dead_letters_(create_dead_letter_queue(plan)),
        queue_(Queue::create(plan.queue, queue_options_of(plan), plan.ns)), rng_(plan.seed ^ 0x5eed) {
    if (has_dead_letters_) {
      dead_letter_reader_.emplace(plan.ns, plan.dead_letter_queue(), plan.log_dir + "/dead-letters.log");
    }
  }
  ~Round() {
    dead_letter_reader_.reset();
    Queue::remove(plan_.queue, plan_.ns);
    if (has_dead_letters_) Queue::remove(plan_.dead_letter_queue(), plan_.ns);
    std::error_code ec;
    std::filesystem::remove(filler_path(), ec);
  }

  RoundResult run();

 private:
  // Set-up and the workers.
  void create_groups();
  void spawn_producer(std::size_t k);
  void spawn_transient();
  void maybe_spawn_transient();
  void reap_transient();
  void restart_due_producers();
  [[nodiscard]] bool regulars_confirmed();
  void spawn_consumer(std::size_t index);
  [[nodiscard]] std::pair<std::size_t, int> member_of(std::size_t index) const;
  // The fault phase.
  void inject_faults();
  void inject(Fault fault);
  void kill_producer();
  void kill_consumer();
  Worker* freeze_a_holding_consumer();
  void kill_daemon();
  void stop_consumer();
  // Exclusive groups: the member that reads now.
  [[nodiscard]] Worker* active_member();
  void kill_active();
  void stop_active();
  void power_loss();
  void kill_everything_at_once();
  // Lifecycle faults.
  [[nodiscard]] bool standby_round() const { return plan_.lifecycle == Lifecycle::Standby && plan_.daemon_faults; }
  [[nodiscard]] bool lifecycle(Lifecycle l) const { return plan_.lifecycle == l && plan_.daemon_faults; }
  void start_daemon();
  pid_t start_application(std::uint64_t synced);
  void check_application(pid_t app);
  void kill_during_rebuild();
  void stop_primary();
  void poll_fencing();
  void finish_fencing();
  void take_over(const char* why);
  void stop_standby();
  [[nodiscard]] bool journal_begun() const {
    std::error_code ec;
    return std::filesystem::exists(journal_dir(plan_.data_dir, plan_.queue) / "queue.json", ec);
  }
  [[nodiscard]] std::filesystem::path filler_path() const {
    return std::filesystem::path(plan_.data_dir) / "filler";
  }
  void maybe_fill_disk();
  void poll_full_disk();
  void free_disk();
  [[nodiscard]] bool reopen_rebuilt_queue();
  void restart_workers();
  void resume_consumers(bool all);
  void reap_unexpected_exits();
  [[nodiscard]] bool producers_finished() const;
  [[nodiscard]] bool progressed();
  // The end.
  void wait_for_producers();
  void drain();
  void stop_consumers();
  void kill_leftovers();
  void verify();
  void keep_journal();
  // Policy rounds: reads the dead-letter queue (every 10 ms), or all of it.
  void poll_dead_letters();
  void drain_dead_letters();

  void fail(const std::string& violation) { result_.violations.push_back(violation); }
  [[nodiscard]] bool failed() const { return !result_.violations.empty(); }
  [[nodiscard]] Millis stall_bound() const { return std::chrono::seconds(plan_.stall_seconds); }

  const RoundPlan& plan_;
  DaemonProcess& daemon_;
  DaemonProcess standby_;  // Standby rounds; after a takeover it is the other process
  bool has_dead_letters_ = false;  // a policy round: its dead-letter queue was created (before queue_)
  Queue queue_;
  std::optional<DeadLetterReader> dead_letter_reader_;
  Clock::time_point last_dead_letter_poll_{};
  std::vector<std::uint64_t> power_loss_realtime_ns_;  // when each power loss had killed everything
  std::mt19937_64 rng_;
  std::vector<Worker> producers_, consumers_;
  // Names rounds: the transient producer (one at a time), the processes each
  // transient name has had, and when the next one starts.
  Worker transient_;
  std::vector<std::uint64_t> transient_processes_;
  Clock::time_point next_transient_{};
  std::uint64_t power_losses_ = 0;  // also the epoch of the consumers started now
  std::uint64_t last_progress_mark_ = ~0ull;
  Clock::time_point last_progress_ = Clock::now();
  Clock::time_point last_check_{};
  bool completed_ = false;
  // Standby rounds: the primary SIGSTOPped, which its standby must fence.
  pid_t stopped_primary_ = 0;
  Clock::time_point stopped_at_{};
  long longest_fencing_ms_ = 0;
  // FullDisk rounds: the filler fills the data disk until free_at_.
  bool disk_full_ = false;
  bool full_disk_seen_ = false;  // shmqd reported this full disk
  Clock::time_point disk_free_at_{}, last_disk_check_{};
  int applications_ = 0;
  RoundResult result_;
};

RoundResult Round::run() {
  if (!daemon_.serves(queue_, stall_bound())) fail("shmqd did not take up the queue within the stall bound");
  if (has_dead_letters_ && !daemon_.serves(Queue::open(plan_.dead_letter_queue(), plan_.ns), stall_bound())) {
    fail("shmqd did not take up the dead-letter queue within the stall bound");
  }
  if (standby_round()) standby_.start();  // once the primary holds the namespace's lock
  create_groups();
  for (const auto& g : plan_.groups) consumers_.resize(consumers_.size() + static_cast<std::size_t>(g.consumers));
  for (std::size_t i = 0; i < consumers_.size(); ++i) spawn_consumer(i);
  producers_.resize(plan_.producers.size());
  for (std::size_t k = 0; k < producers_.size(); ++k) spawn_producer(k);
  if (!failed()) inject_faults();
  free_disk();
  finish_fencing();
  resume_consumers(true);
  if (!failed()) wait_for_producers();
  if (!failed() && !daemon_.serves(queue_, stall_bound())) fail("stall: the restarted shmqd did not take up the queue");
  if (!failed()) drain();
  if (!failed()) drain_dead_letters();
  stop_consumers();
  kill_leftovers();
  stop_standby();
  verify();
  if (failed() && plan_.durable()) keep_journal();
  return result_;
}

// Every group exists before the first send: a group created later would
// start at the oldest message still in the ring, after what the other groups
// had already released, and the check would count those as lost.
void Round::create_groups() {
  for (const auto& g : plan_.groups) {
    try {
      Consumer::join(queue_, g.name, ConsumerOptions{.exclusive = g.exclusive});  // joins and leaves at once
    } catch (const Error& e) {  // an exclusive group that came back competing from a rebuild, say
      fail("group " + g.name + " cannot be joined" + (power_losses_ != 0 ? " after a rebuild" : "") + ": " + e.what());
    }
  }
}

void Round::spawn_producer(std::size_t k) {
  auto& w = producers_[k];
  ++w.incarnation;
  w.restart_pending = false;
  // Names rounds: a producer may find the table full for a moment (a
  // transient holds the last entry, or the detached ones still have messages
  // in the ring): it waits for one. Durable rounds never refuse it: it
  // attaches before any transient does, and keeps its entry.
  ProducerJob job{.ns = plan_.ns,
                  .queue = plan_.queue,
                  .name = plan_.producers[k],
                  .log = plan_.log_dir + "/producer-" + std::to_string(k) + ".log",
                  .messages = plan_.messages,
                  .process = static_cast<std::uint64_t>(w.incarnation),
                  .epoch = power_losses_,
                  .attach_wait = stall_bound(),
                  .max_payload = plan_.max_payload,
                  .mean_gap_us = plan_.producer_gap_us,
                  .seed = rng_(),
                  .durable = plan_.durable()};
  w.pid = fork_child([job] { return run_producer(job); });
}

// Names rounds: a transient producer under a name drawn from the pool. A name
// that comes back finds its entry (and resends its last sequences, which must
// be refused as Duplicate) unless another name took it meanwhile (in-memory
// rounds): then it starts afresh, a new incarnation of the name.
void Round::spawn_transient() {
  const std::size_t j = rng_() % plan_.transients.size();
  transient_processes_.resize(plan_.transients.size());
  ProducerJob job{.ns = plan_.ns,
                  .queue = plan_.queue,
                  .name = plan_.transients[j],
                  .log = plan_.log_dir + "/transient-" + std::to_string(j) + ".log",
                  .messages = 0,
                  .chunk = 1 + rng_() % plan_.transient_messages,
                  .process = ++transient_processes_[j],
                  .epoch = power_losses_,
                  .give_up_when_full = plan_.durable(),
                  .attach_wait = stall_bound(),
                  .max_payload = plan_.max_payload,
                  .mean_gap_us = plan_.producer_gap_us / 4,
                  .seed = rng_(),
                  .durable = plan_.durable()};
  transient_.pid = fork_child([job] { return run_producer(job); });
  ++transient_.incarnation;
}

// One transient at a time, 0 to 10 ms after the last, while the regular
// producers send. Durable rounds: only once every regular producer has a
// durable confirm (or finished), so that the journal holds its name and every
// rebuild gives it its entry back: the transients cannot take the entries a
// regular producer needs, and the refusals go to them alone.
void Round::maybe_spawn_transient() {
  if (!plan_.names_round() || transient_.pid > 0 || producers_finished() || Clock::now() < next_transient_) return;
  if (plan_.durable() && !regulars_confirmed()) return;
  spawn_transient();
}

void Round::reap_transient() {
  if (transient_.pid <= 0) return;
  if (auto e = try_reap(transient_.pid)) {
    transient_.pid = 0;
    if (!e->clean()) fail("a transient producer failed: " + e->describe() + " (see the transient logs)");
    next_transient_ = Clock::now() + Millis(static_cast<int>(rng_() % 11));
  }
}

bool Round::regulars_confirmed() {
  for (std::size_t k = 0; k < producers_.size(); ++k) {
    auto& w = producers_[k];
    if (w.finished || w.confirmed_any) continue;
    std::ifstream in(plan_.log_dir + "/producer-" + std::to_string(k) + ".log");
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("C ")) {
        w.confirmed_any = true;
        break;
      }
    }
    if (!w.confirmed_any) return false;
  }
  return true;
}

void Round::restart_due_producers() {
  for (std::size_t k = 0; k < producers_.size(); ++k) {
    if (producers_[k].restart_pending && Clock::now() >= producers_[k].restart_at) spawn_producer(k);
  }
}

std::pair<std::size_t, int> Round::member_of(std::size_t index) const {
  std::size_t g = 0;
  while (index >= static_cast<std::size_t>(plan_.groups[g].consumers)) index -= plan_.groups[g++].consumers;
  return {g, static_cast<int>(index)};
}

void Round::spawn_consumer(std::size_t index) {
  auto& w = consumers_[index];
  const auto [g, member] = member_of(index);
  const GroupPlan& group = plan_.groups[g];
  ++w.incarnation;
  ConsumerJob job{.ns = plan_.ns,
                  .queue = plan_.queue,
                  .group = group.name,
                  .log = plan_.log_dir + "/consumer-" + group.name + "-" + std::to_string(member) + "-" +
                         std::to_string(w.incarnation) + ".log",
                  .journal_dir = journal_dir(plan_.data_dir, plan_.queue).string(),
                  .prefetch = group.prefetch,
                  .max_batch = group.max_batch,
                  .work_us = group.work_us,
                  .seed = rng_(),
                  .epoch = power_losses_,
                  .exclusive = group.exclusive,
                  .policy = plan_.policy_round(),
                  .nack_per_mille = plan_.policy.nack_per_mille,
                  .reject_per_mille = plan_.policy.reject_per_mille,
                  .poison_every = plan_.policy.poison_every,
                  .stall_per_mille = plan_.policy.stall_per_mille,
                  .stall_ms = plan_.policy.stall_ms};
  w.pid = fork_child([job] { return run_consumer(job); });
  w.stopped = false;
}

// Faults at random moments (exponential gaps) until every producer has sent
// everything; a stall (no send and no ack for the bound) ends it as a failure.
void Round::inject_faults() {
  std::exponential_distribution<double> gap_ms(1.0 / plan_.fault_gap_ms);
  auto next_fault = Clock::now() + Millis(static_cast<int>(gap_ms(rng_)));
  // By Fault: PowerLoss and StopPrimary come on clocks of their own.
  std::discrete_distribution<int> kind({3, 3, plan_.daemon_faults ? 1.0 : 0.0, 2, 0, 0, 2, 1});
  const bool power_losses = plan_.durable() && plan_.daemon_faults;
  std::exponential_distribution<double> power_loss_gap_ms(1.0 / std::max(1, plan_.power_loss_gap_ms));
  const auto next_power_loss_after = [&] { return Clock::now() + Millis(static_cast<int>(power_loss_gap_ms(rng_))); };
  // The first within one mean gap, so that nearly every durable round has one.
  auto next_power_loss = power_losses ? Clock::now() + Millis(static_cast<int>(rng_() % plan_.power_loss_gap_ms))
                                      : Clock::time_point::max();
  // Standby rounds: the primary stopped on a clock of its own, as power losses.
  auto next_stop = standby_round() ? Clock::now() + Millis(static_cast<int>(rng_() % plan_.power_loss_gap_ms))
                                   : Clock::time_point::max();
  while (!failed() && !producers_finished()) {
    reap_unexpected_exits();
    restart_due_producers();
    maybe_spawn_transient();
    resume_consumers(false);
    poll_fencing();
    poll_full_disk();
    if (!failed() && Clock::now() >= next_stop && stopped_primary_ == 0) {
      inject(Fault::StopPrimary);
      // Each fencing pauses durable confirms for the deadline: a few per round, fewer than power losses.
      next_stop = Clock::now() + Millis(static_cast<int>(3 * power_loss_gap_ms(rng_)));
    }
    if (Clock::now() >= next_fault) {
      inject(static_cast<Fault>(kind(rng_)));
      next_fault = Clock::now() + Millis(static_cast<int>(gap_ms(rng_)));
    }
    // A fencing finishes first; and the first waits for the journal (its
    // queue.json): before it, there is nothing to rebuild the queue from.
    if (!failed() && Clock::now() >= next_power_loss && stopped_primary_ == 0 && journal_begun()) {
      inject(Fault::PowerLoss);
      next_power_loss = next_power_loss_after();
    }
    if (!progressed()) fail("stall: no message sent or acked for " + std::to_string(plan_.stall_seconds) + " s");
    sleep_for(Millis(1));
  }
}

void Round::inject(Fault fault) {
  switch (fault) {
    case Fault::KillProducer: return kill_producer();
    case Fault::KillConsumer: return kill_consumer();
    case Fault::KillDaemon: return kill_daemon();
    case Fault::StopConsumer: return stop_consumer();
    case Fault::PowerLoss: return power_loss();
    case Fault::StopPrimary: return stop_primary();
    case Fault::KillActive: return kill_active();
    case Fault::StopActive: return stop_active();
  }
}

// A random element of `workers` satisfying `eligible`, or nullptr.
template <class Pred>
Worker* pick_worker(std::vector<Worker>& workers, std::mt19937_64& rng, Pred eligible) {
  std::vector<Worker*> candidates;
  for (auto& w : workers) {
    if (w.pid > 0 && eligible(w)) candidates.push_back(&w);
  }
  return candidates.empty() ? nullptr : candidates[rng() % candidates.size()];
}

void Round::kill_producer() {
  Worker* w = pick_worker(producers_, rng_, [](const Worker&) { return true; });
  if (w == nullptr) return;
  const std::size_t k = static_cast<std::size_t>(w - producers_.data());
  const Exit e = kill_and_reap(std::exchange(w->pid, 0));
  if (e.clean()) {  // it had just finished
    w->finished = true;
  } else if (e.signaled && e.code == SIGKILL) {
    ++result_.tally.producer_kills;
    // Names rounds: half the restarts come 5 to 60 ms later, time for shmqd
    // to reap the dead producer's entry (it becomes detached) and for a
    // transient to take it, when its messages have all been released. The
    // restarted producer then finds its name gone and starts afresh at
    // sequence 1, a new incarnation of the name (which the verifier
    // expects, and checks began only once every message of the old one was
    // released). Restarting it is what proves the most: not restarting it
    // would leave the case the recycling rule is about (a name coming back
    // after its entry went to another) untested.
    if (plan_.names_round() && rng_() % 2 == 0) {
      w->restart_pending = true;
      w->restart_at = Clock::now() + Millis(5 + static_cast<int>(rng_() % 56));
    } else {
      spawn_producer(k);  // same name: resumes from the queue's last sequence
    }
  } else {
    fail("producer " + plan_.producers[k] + " incarnation " + std::to_string(w->incarnation) + ": " + e.describe());
  }
}

// Pids of the consumers that hold messages now (QueueInfo's view).
std::set<std::int64_t> holding_pids(const QueueInfo& info) {
  std::set<std::int64_t> pids;
  for (const auto& g : info.groups) {
    for (const auto& c : g.consumers) {
      if (c.in_flight > 0) pids.insert(c.pid);
    }
  }
  return pids;
}

// A consumer that holds messages, frozen (SIGSTOP) so it still holds them
// when the kill lands; nullptr when none does. The others are resumed.
Worker* Round::freeze_a_holding_consumer() {
  std::vector<Worker*> order;
  for (auto& w : consumers_) {
    if (w.pid > 0) order.push_back(&w);
  }
  std::shuffle(order.begin(), order.end(), rng_);
  for (Worker* w : order) {
    if (!w->stopped) {
      if (auto e = stop_and_wait(w->pid)) {
        w->pid = 0;
        fail("a consumer ended unasked: " + e->describe() + " (see the consumer logs' E lines)");
        return nullptr;
      }
    }
    if (holding_pids(queue_.info()).contains(w->pid)) return w;
    if (!w->stopped) ::kill(w->pid, SIGCONT);
  }
  return nullptr;
}

// Half the time aims at a consumer that holds messages, so redelivery is
// exercised although consumers wait for messages most of the time.
void Round::kill_consumer() {
  Worker* w = rng_() % 2 == 0 ? freeze_a_holding_consumer() : nullptr;
  if (w == nullptr) w = pick_worker(consumers_, rng_, [](const Worker&) { return true; });
  if (w == nullptr) return;
  const std::size_t index = static_cast<std::size_t>(w - consumers_.data());
  const Exit e = kill_and_reap(std::exchange(w->pid, 0));
  if (!(e.signaled && e.code == SIGKILL)) {
    fail("consumer log consumer-" + plan_.groups[member_of(index).first].name + "-" +
         std::to_string(member_of(index).second) + "-" + std::to_string(w->incarnation) + ".log: " + e.describe());
    return;
  }
  ++result_.tally.consumer_kills;
  spawn_consumer(index);
}

void Round::kill_daemon() {
  if (stopped_primary_ != 0) return;  // it is stopped: its standby is about to fence it
  const Exit e = daemon_.kill9();
  if (!(e.signaled && e.code == SIGKILL)) fail("shmqd ended by itself: " + e.describe());
  ++result_.tally.daemon_kills;
  if (standby_round()) {  // the kernel dropped its lock: the standby takes over at once
    take_over("killed");
    return;
  }
  // Clients go on without it for a moment; the new one repairs what happened meanwhile.
  sleep_for(Millis(static_cast<int>(rng_() % 30)));
  maybe_fill_disk();
  start_daemon();
}

void Round::stop_consumer() {
  Worker* w = pick_worker(consumers_, rng_, [](const Worker& c) { return !c.stopped; });
  if (w == nullptr) return;
  ::kill(w->pid, SIGSTOP);
  w->stopped = true;
  w->resume_at = Clock::now() + Millis(5 + static_cast<int>(rng_() % 300));
  ++result_.tally.stops;
}

Worker* Round::active_member() {
  for (const GroupInfo& g : queue_.info().groups) {
    if (!g.exclusive) continue;
    for (const ConsumerInfo& c : g.consumers) {
      if (!c.active) continue;
      for (auto& w : consumers_) {
        if (w.pid > 0 && w.pid == c.pid) return &w;
      }
    }
  }
  return nullptr;  // none yet (a standby is about to take over), or the driver's own join
}

// kill -9 of an exclusive group's active member, at a random point of its
// work (half the time SIGSTOPped first, for 0 to 20 ms: a stopped member
// keeps its place, and the standbys must not take over before it dies).
// A standby takes over; what the killed one held comes again, flagged.
void Round::kill_active() {
  Worker* w = active_member();
  if (w == nullptr) return;
  if (!w->stopped && rng_() % 2 == 0) {
    ::kill(w->pid, SIGSTOP);
    w->stopped = true;
    sleep_for(Millis(static_cast<int>(rng_() % 21)));
  }
  const std::size_t index = static_cast<std::size_t>(w - consumers_.data());
  const Exit e = kill_and_reap(std::exchange(w->pid, 0));
  if (!(e.signaled && e.code == SIGKILL)) {
    fail("the active member of exclusive group " + plan_.groups[member_of(index).first].name + ": " + e.describe());
    return;
  }
  ++result_.tally.active_kills;
  spawn_consumer(index);  // a new standby
}

// SIGSTOP of an exclusive group's active member for 5 to 300 ms: it keeps
// its place (the group waits), then goes on (resume_consumers).
void Round::stop_active() {
  Worker* w = active_member();
  if (w == nullptr || w->stopped) return;
  ::kill(w->pid, SIGSTOP);
  w->stopped = true;
  w->resume_at = Clock::now() + Millis(5 + static_cast<int>(rng_() % 300));
  ++result_.tally.active_stops;
}

// The simulated power loss: every process dies at once and shared memory is
// gone; only the journal on disk survives. shmqd rebuilds the queue from it
// before it watches anything; then every worker comes back: producers under
// their names, resuming from the rebuilt last sequence, consumers in their groups.
void Round::power_loss() {
  const QueueInfo before = queue_.info();
  result_.tally.journal_switches += before.groups_to_journal;  // the new segment counts from 0
  kill_everything_at_once();
  // The driver's reader goes with the power too; only now: leaving takes the
  // segment lock, which a stopped (SIGSTOP) mover may hold until it dies.
  if (dead_letter_reader_) dead_letter_reader_->close();
  if (failed()) return;
  power_loss_realtime_ns_.push_back(realtime_ns());
  // Shared memory is gone: the segment, any half-built one, shmqd's record.
  wipe_namespace_shm(plan_.ns);
  ++power_losses_;
  ++result_.tally.power_losses;
  daemon_.note("power loss " + std::to_string(power_losses_));
  maybe_fill_disk();
  // Whatever the journal had synced is on disk: the rebuilt queue holds it.
  const pid_t app = lifecycle(Lifecycle::AppFirst) ? start_application(before.journal_synced) : 0;
  if (failed()) return;
  if (lifecycle(Lifecycle::RebuildKill)) kill_during_rebuild();
  if (failed()) return;
  start_daemon();
  if (!reopen_rebuilt_queue()) return;
  if (app > 0) check_application(app);
  if (standby_round()) standby_.start();
  // A group the journal had not checkpointed yet (none of its records was
  // written) is gone: create it again before anything is sent.
  create_groups();
  restart_workers();
}

// SIGKILL to shmqd and every worker (stopped ones too) before reaping any.
void Round::kill_everything_at_once() {
  if (daemon_.running()) ::kill(daemon_.pid(), SIGKILL);  // never kill(0): our own process group
  if (standby_.running()) ::kill(standby_.pid(), SIGKILL);
  for (auto* workers : {&producers_, &consumers_}) {
    for (auto& w : *workers) {
      if (w.pid > 0) ::kill(w.pid, SIGKILL);
    }
  }
  if (transient_.pid > 0) ::kill(transient_.pid, SIGKILL);
  for (DaemonProcess* d : {&daemon_, &standby_}) {
    if (!d->running()) continue;
    const Exit e = d->kill9();
    if (!(e.signaled && e.code == SIGKILL)) fail("shmqd ended by itself: " + e.describe() + " (see shmqd.log)");
  }
  for (std::size_t k = 0; k < producers_.size(); ++k) {
    auto& w = producers_[k];
    if (w.pid <= 0) continue;
    const Exit e = kill_and_reap(std::exchange(w.pid, 0));
    if (e.clean()) {
      w.finished = true;  // it had just sent (and durably confirmed) everything
    } else if (!(e.signaled && e.code == SIGKILL)) {
      fail("producer " + plan_.producers[k] + " incarnation " + std::to_string(w.incarnation) + ": " + e.describe());
    }
  }
  for (auto& w : consumers_) {
    if (w.pid <= 0) continue;
    const Exit e = kill_and_reap(std::exchange(w.pid, 0));
    if (!(e.signaled && e.code == SIGKILL)) fail("a consumer ended unasked: " + e.describe());
  }
  if (transient_.pid > 0) {  // not restarted: the next one comes in its turn
    const Exit e = kill_and_reap(std::exchange(transient_.pid, 0));
    if (!e.clean() && !(e.signaled && e.code == SIGKILL)) fail("a transient producer: " + e.describe());
  }
}

// Starts shmqd (again); on a full data disk in a FullDisk round.
void Round::start_daemon() {
  if (disk_full_) ++result_.tally.full_disk_starts;
  daemon_.start();
}

// AppFirst: the application, in a child, opens its queue before shmqd runs
// (lifecycle.hpp, run_application). Returns once it has tried Queue::create
// (which must have said NeedsRebuild), plus up to 20 ms: it waits in
// Queue::open_or_create when shmqd starts.
pid_t Round::start_application(std::uint64_t synced) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    fail("pipe2 failed");
    return 0;
  }
  ++applications_;
  const std::string log_name = "app-" + std::to_string(applications_) + ".log";
  const AppJob job{.ns = plan_.ns,
                   .queue = plan_.queue,
                   .data_dir = plan_.data_dir,
                   .log = plan_.log_dir + "/" + log_name,
                   .options = plan_.queue_options,
                   .min_tail = synced,
                   .wait = stall_bound()};
  const int ready = fds[1];
  const pid_t pid = fork_child([job, ready] { return run_application(job, ready); });
  ::close(fds[1]);
  pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
  char got = 0;
  if (::poll(&p, 1, static_cast<int>(stall_bound().count())) != 1 || ::read(fds[0], &got, 1) != 1) got = '?';
  ::close(fds[0]);
  if (got != 'N') {
    fail(std::string("application first: Queue::create before shmqd ran did not fail with NeedsRebuild (") +
         (got == 'C' ? "it created an empty queue over the journal" : got == 'A' ? "AlreadyExists" : "see") + "; " +
         log_name + ")");
    kill_and_reap(pid);
    return 0;
  }
  daemon_.note("application pid " + std::to_string(pid) + " waits in Queue::open_or_create");
  sleep_for(Millis(static_cast<int>(rng_() % 21)));
  return pid;
}

void Round::check_application(pid_t app) {
  const auto e = reap_within(app, stall_bound());
  const std::string log_name = "app-" + std::to_string(applications_) + ".log";
  if (!e) {
    kill_and_reap(app);
    fail("application first: Queue::open_or_create did not return the rebuilt queue within the stall bound (" +
         log_name + ")");
  } else if (!e->clean()) {
    fail("application first: the queue Queue::open_or_create returned is not the rebuilt one, or is not journaled: " +
         e->describe() + " (see " + log_name + ")");
  } else {
    ++result_.tally.app_first;
  }
}

// RebuildKill: shmqd started and killed 1 to 3 times while it rebuilds the
// queue: half the times as soon as its half-built segment shows under the
// temporary name (plus up to 300 us), else 0 to 30 ms after its start. A
// kill that finds the segment under the queue's name came too late (the
// rebuild was done): the next start is the one for good.
void Round::kill_during_rebuild() {
  for (int k = 0, kills = 1 + static_cast<int>(rng_() % 3); k < kills; ++k) {
    ShmCreations creations;
    start_daemon();
    const pid_t pid = daemon_.pid();
    const std::string prefix = creating_prefix(plan_.ns, plan_.queue, pid);
    if (rng_() % 2 == 0) {
      creations.wait_for(prefix, Millis(2000));
      const auto until = Clock::now() + std::chrono::microseconds(rng_() % 300);
      while (Clock::now() < until) {
      }
    } else {
      sleep_for(Millis(static_cast<int>(rng_() % 31)));
    }
    const Exit e = daemon_.kill9();
    if (!(e.signaled && e.code == SIGKILL)) {
      fail("shmqd ended by itself while it rebuilt: " + e.describe() + " (see shmqd.log)");
      return;
    }
    ++result_.tally.rebuild_kills;
    const bool built = segment_exists(plan_.ns, plan_.queue);
    const bool half_built = !built && shm_file_with_prefix(prefix);
    if (half_built) ++result_.tally.mid_rebuild_kills;
    daemon_.note("killed shmqd pid " + std::to_string(pid) +
                 (half_built ? " mid-rebuild (its segment half-built)"
                             : built ? " after its rebuild" : " before its rebuild began"));
    if (built) return;
  }
}

// Standby: SIGSTOP to the primary, which stops beating its heartbeat; its
// standby must fence it (SIGKILL, through a pidfd) after the deadline and take
// over. poll_fencing() waits for that.
void Round::stop_primary() {
  if (!daemon_.running() || !standby_.running()) return;
  stopped_primary_ = daemon_.pid();
  stopped_at_ = Clock::now();
  ::kill(stopped_primary_, SIGSTOP);
  daemon_.note("SIGSTOP to the primary pid " + std::to_string(stopped_primary_) + ": its standby must fence it");
}

void Round::poll_fencing() {
  if (stopped_primary_ == 0) return;
  const auto e = daemon_.ended();
  if (!e) {
    if (Clock::now() - stopped_at_ >= stall_bound()) {
      fail("the standby did not fence the stopped primary (pid " + std::to_string(stopped_primary_) + ") within " +
           std::to_string(plan_.stall_seconds) + " s (see shmqd.log)");
      ::kill(stopped_primary_, SIGCONT);
      stopped_primary_ = 0;
    }
    return;
  }
  const long ms = static_cast<long>(std::chrono::duration_cast<Millis>(Clock::now() - stopped_at_).count());
  stopped_primary_ = 0;
  if (!(e->signaled && e->code == SIGKILL)) {
    fail("the stopped primary ended otherwise than fenced (SIGKILL): " + e->describe() + " (see shmqd.log)");
    return;
  }
  longest_fencing_ms_ = std::max(longest_fencing_ms_, ms);
  ++result_.tally.fencings;
  take_over(("fenced after " + std::to_string(ms) + " ms").c_str());
}

void Round::finish_fencing() {
  while (stopped_primary_ != 0 && !failed()) {
    poll_fencing();
    sleep_for(Millis(2));
  }
}

// The standby has the namespace's lock: it becomes the daemon (once it serves
// the queue; only then may a new standby wait for the lock, which it would
// otherwise race the old one for).
void Round::take_over(const char* why) {
  daemon_.exchange_with(standby_);
  if (!daemon_.serves(queue_, stall_bound())) {
    fail(std::string("the standby did not take up the queue after the primary was ") + why + " (see shmqd.log)");
    return;
  }
  if (std::string_view(why) == "killed") ++result_.tally.takeovers;
  daemon_.note("primary " + std::string(why) + "; standby pid " + std::to_string(daemon_.pid()) +
               " took over; a new standby starts");
  standby_.start();
}

void Round::stop_standby() {
  if (!standby_.running()) return;
  const auto e = standby_.terminate(stall_bound());
  if (!e || !e->clean()) {
    fail("the standby shmqd did not exit cleanly on SIGTERM: " + (e ? e->describe() : "still running"));
  }
}

// FullDisk: before half the restarts of shmqd (a power loss, a kill), the
// data disk is filled; 100 to 800 ms later (and once shmqd has reported it)
// the filler goes and confirms must resume (a stall is a failure).
void Round::maybe_fill_disk() {
  if (!lifecycle(Lifecycle::FullDisk) || disk_full_ || rng_() % 2 != 0) return;
  const std::uint64_t bytes = fill_disk(filler_path());
  disk_full_ = true;
  ++result_.tally.full_disks;
  full_disk_seen_ = false;
  const int ms = 100 + static_cast<int>(rng_() % 701);
  disk_free_at_ = Clock::now() + Millis(ms);
  daemon_.note("data disk filled (" + std::to_string(bytes) + " bytes of filler), for " + std::to_string(ms) + " ms");
}

void Round::poll_full_disk() {
  if (!disk_full_) return;
  const auto now = Clock::now();
  if (!full_disk_seen_ && now - last_disk_check_ >= Millis(10)) {
    last_disk_check_ = now;
    const QueueInfo info = queue_.info();
    if (info.journal_error != 0 || info.journal_trouble == JournalTrouble::SetupFailing) {
      full_disk_seen_ = true;
      ++result_.tally.full_disk_failures;
    }
  }
  // Freed after its delay, once shmqd has felt it (a write or a set-up
  // failed), or 1 s later if nothing was written meanwhile.
  if (now >= disk_free_at_ && (full_disk_seen_ || now >= disk_free_at_ + Millis(1000))) free_disk();
}

void Round::free_disk() {
  if (!disk_full_) return;
  std::error_code ec;
  std::filesystem::remove(filler_path(), ec);
  disk_full_ = false;
  daemon_.note(std::string("filler removed; shmqd ") + (full_disk_seen_ ? "had" : "had not") +
               " reported the journal failing");
}

// Waits until shmqd has published the rebuilt segment and serves it.
bool Round::reopen_rebuilt_queue() {
  const auto deadline = Clock::now() + stall_bound();
  for (;;) {
    try {
      queue_ = Queue::open(plan_.queue, plan_.ns);
      break;
    } catch (const std::exception&) {
      // Not rebuilt yet (or never: the deadline says so).
    }
    if (Clock::now() >= deadline) {
      fail("shmqd did not rebuild the queue from its journal within the stall bound (after power loss " +
           std::to_string(power_losses_) + "; see shmqd.log)");
      return false;
    }
    sleep_for(Millis(2));
  }
  if (daemon_.serves(queue_, stall_bound())) return true;
  fail("stall: the restarted shmqd did not take up the rebuilt queue (after power loss " +
       std::to_string(power_losses_) + ")");
  return false;
}

// Consumers first, so that a group receives from the first new send on.
void Round::restart_workers() {
  for (std::size_t i = 0; i < consumers_.size(); ++i) spawn_consumer(i);
  for (std::size_t k = 0; k < producers_.size(); ++k) {
    if (!producers_[k].finished) spawn_producer(k);
  }
}

void Round::resume_consumers(bool all) {
  for (auto& w : consumers_) {
    if (w.stopped && (all || Clock::now() >= w.resume_at)) {
      ::kill(w.pid, SIGCONT);
      w.stopped = false;
    }
  }
}

void Round::reap_unexpected_exits() {
  poll_dead_letters();
  reap_transient();
  for (std::size_t k = 0; k < producers_.size(); ++k) {
    auto& w = producers_[k];
    if (w.pid <= 0) continue;
    if (auto e = try_reap(w.pid)) {
      w.pid = 0;
      w.finished = e->clean();
      if (!e->clean()) fail("producer " + plan_.producers[k] + " incarnation " + std::to_string(w.incarnation) +
                            " failed: " + e->describe() + " (see its log)");
    }
  }
  for (auto& w : consumers_) {
    if (w.pid <= 0) continue;
    if (auto e = try_reap(w.pid)) {
      w.pid = 0;
      fail("a consumer ended unasked: " + e->describe() + " (see the consumer logs' E lines)");
    }
  }
  if (stopped_primary_ == 0) {  // else poll_fencing() reaps it
    if (auto e = daemon_.ended()) {
      fail("shmqd ended by itself: " + e->describe() + " (see shmqd.log)");
      daemon_.start();
    }
  }
  if (auto e = standby_.ended()) {
    fail("the standby shmqd ended by itself: " + e->describe() + " (see shmqd.log)");
    standby_.start();
  }
}

bool Round::producers_finished() const {
  return std::all_of(producers_.begin(), producers_.end(), [](const Worker& w) { return w.finished; });
}

// True unless nothing was sent or acked for the stall bound. Checked every
// 100 ms: QueueInfo walks the tables.
bool Round::progressed() {
  const auto now = Clock::now();
  if (now - last_check_ < Millis(100)) return true;
  last_check_ = now;
  const QueueInfo info = queue_.info();
  std::uint64_t mark = info.messages_total;
  for (const auto& g : info.groups) mark += g.acked;
  if (mark != last_progress_mark_) {
    last_progress_mark_ = mark;
    last_progress_ = now;
  }
  return now - last_progress_ < stall_bound();
}

void Round::wait_for_producers() {
  const auto deadline = Clock::now() + stall_bound();
  while (!failed() && (!producers_finished() || transient_.pid > 0)) {
    reap_unexpected_exits();
    restart_due_producers();
    if (Clock::now() >= deadline) fail("stall: producers did not finish within the stall bound");
    sleep_for(Millis(2));
  }
}

// Waits until every group has acked everything, with nothing in flight.
void Round::drain() {
  const auto deadline = Clock::now() + stall_bound();
  for (;;) {
    reap_unexpected_exits();
    if (failed()) return;
    const QueueInfo info = queue_.info();
    std::string lagging;
    for (const auto& g : info.groups) {
      if (g.acked_position != info.tail_position || g.in_flight != 0) {
        lagging += " group " + g.name + " acked " + std::to_string(g.acked_position) + " of tail " +
                   std::to_string(info.tail_position) + " (" + std::to_string(g.lag_messages) + " messages behind, " +
                   std::to_string(g.in_flight) + " in flight" +
                   (g.reading_journal ? ", reading the journal at " + std::to_string(g.read_position) : "") + ");";
      }
    }
    if (info.groups.size() < plan_.groups.size()) lagging += " a group never joined;";
    if (lagging.empty()) {
      result_.tally.journal_switches += info.groups_to_journal;
      completed_ = true;
      return;
    }
    if (Clock::now() >= deadline) {
      fail("stall: consumers did not drain within " + std::to_string(plan_.stall_seconds) + " s:" + lagging);
      return;
    }
    sleep_for(Millis(5));
  }
}

void Round::stop_consumers() {
  // A consumer restarted just before the drain ended may not have installed
  // its SIGTERM handler yet (catches(): a shmqd between exec and main() is
  // waited for the same way): it would die of the signal instead of leaving.
  const auto deadline = Clock::now() + stall_bound();
  for (auto& w : consumers_) {
    while (w.pid > 0 && !catches(w.pid, SIGTERM) && Clock::now() < deadline) {
      if (auto e = try_reap(w.pid)) {
        w.pid = 0;
        fail("a consumer ended unasked: " + e->describe() + " (see the consumer logs' E lines)");
      }
      sleep_for(Millis(1));
    }
    if (w.pid > 0) ::kill(w.pid, SIGTERM);
  }
  for (auto& w : consumers_) {
    if (w.pid <= 0) continue;
    const auto e = reap_within(w.pid, stall_bound());
    if (!e) {
      fail("stall: a consumer did not stop within the bound after SIGTERM");
      kill_and_reap(w.pid);
    } else if (!e->clean()) {
      fail("a consumer failed: " + e->describe() + " (see the consumer logs' E lines)");
    }
    w.pid = 0;
  }
}

void Round::kill_leftovers() {
  for (auto& w : producers_) {
    if (w.pid > 0) kill_and_reap(std::exchange(w.pid, 0));
  }
  if (transient_.pid > 0) kill_and_reap(std::exchange(transient_.pid, 0));
}

void Round::verify() {
  Expectation expected{.producers = plan_.producers,
                       .transients = plan_.transients,
                       .groups = {},
                       .exclusive_groups = {},
                       .messages = plan_.messages,
                       .completed = completed_,
                       .durable = plan_.durable(),
                       .max_producers = plan_.queue_options.max_producers,
                       .policy = plan_.policy_round(),
                       .queue = plan_.queue,
                       .max_deliveries = plan_.queue_options.policy.max_deliveries,
                       .ttl_ns = static_cast<std::uint64_t>(plan_.queue_options.policy.ttl.count()),
                       .ack_timeout = plan_.queue_options.policy.ack_timeout.count() != 0,
                       .power_loss_ns = power_loss_realtime_ns_};
  for (const auto& g : plan_.groups) {
    expected.groups.push_back(g.name);
    if (g.exclusive) expected.exclusive_groups.insert(g.name);
  }
  Verdict verdict = verify_logs(plan_.log_dir, expected);
  for (auto& v : verdict.violations) result_.violations.push_back(std::move(v));
  Tally faults = result_.tally;  // what the round did; the verdict adds what the logs show
  faults.rounds = 1;
  faults.confirmed = verdict.tally.confirmed;
  faults.delivered = verdict.tally.delivered;
  faults.redelivered = verdict.tally.redelivered;
  faults.duplicates_refused = verdict.tally.duplicates_refused;
  faults.lost = verdict.tally.lost;
  faults.unflagged_duplicates = verdict.tally.unflagged_duplicates;
  faults.names_rounds = plan_.names_round() ? 1 : 0;
  faults.transient_attaches = verdict.tally.transient_attaches;
  faults.recycled = verdict.tally.recycled;
  faults.new_incarnations = verdict.tally.new_incarnations;
  faults.table_full = verdict.tally.table_full;
  faults.exclusive_takeovers = verdict.tally.exclusive_takeovers;
  faults.policy_rounds = plan_.policy_round() ? 1 : 0;
  faults.nacks = verdict.tally.nacks;
  faults.rejects = verdict.tally.rejects;
  faults.lease_expired = verdict.tally.lease_expired;
  faults.stalls = verdict.tally.stalls;
  faults.dead_letters = verdict.tally.dead_letters;
  faults.dead_max_deliveries = verdict.tally.dead_max_deliveries;
  faults.dead_expired = verdict.tally.dead_expired;
  faults.dead_rejected = verdict.tally.dead_rejected;
  result_.tally = faults;
  result_.longest_fencing_ms = longest_fencing_ms_;
}

void Round::poll_dead_letters() {
  if (!dead_letter_reader_ || Clock::now() - last_dead_letter_poll_ < Millis(10)) return;
  last_dead_letter_poll_ = Clock::now();
  const std::string error = dead_letter_reader_->poll(1000);
  if (!error.empty()) fail(error);
}

// Once every group has drained, every move has been acked in its origin, so
// its copy is in the dead-letter queue (durable: synced, so readable).
void Round::drain_dead_letters() {
  if (!dead_letter_reader_) return;
  const auto deadline = Clock::now() + stall_bound();
  while (!dead_letter_reader_->open()) {
    if (Clock::now() >= deadline) {
      fail("the dead-letter queue could not be opened within the stall bound");
      return;
    }
    sleep_for(Millis(5));
  }
  // Each pass reads until the queue is empty; three passes, 5 ms apart.
  for (int pass = 0; pass < 3; ++pass) {
    const std::string error = dead_letter_reader_->poll(1 << 20);
    if (!error.empty()) {
      fail(error);
      return;
    }
    sleep_for(Millis(5));
  }
}

// The journal is the evidence of a failed durable round, but removing the
// queue (at the round's end) makes shmqd delete it: keep a copy in the logs.
void Round::keep_journal() {
  namespace fs = std::filesystem;
  const fs::path journal = journal_dir(plan_.data_dir, plan_.queue);
  std::error_code ec;
  fs::copy(journal, fs::path(plan_.log_dir) / "journal-kept", fs::copy_options::recursive, ec);
  if (ec) fail("could not keep the journal " + journal.string() + ": " + ec.message());
}

}  // namespace

RoundResult run_round(const RoundPlan& plan, DaemonProcess& daemon) {
  std::filesystem::create_directories(plan.log_dir);
  Round round(plan, daemon);
  return round.run();
}

}  // namespace shmq::torture
