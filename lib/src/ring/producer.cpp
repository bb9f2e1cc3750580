// The producer: claim (CAS on tail), write, commit (store the record's tag).
//
// A claim is announced in the producer's own entry before the CAS, so the
// owner of any uncommitted record is provable after a crash (recovery/repair.cpp).
#include <cstring>
#include <vector>

#include "durable/group_journal.hpp"
#include "shm/layout.hpp"
#include "shm/liveness.hpp"
#include "shm/mapping.hpp"
#include "shm/process.hpp"
#include "recovery/repair.hpp"
#include "ring/release_floor.hpp"
#include "shm/groups_epoch.hpp"
#include "shmq/producer.hpp"
#include "shm/wait.hpp"

namespace shmq {

using namespace layout;
using detail::Mapping;

struct Producer::State {
  std::shared_ptr<Mapping> map;
  std::uint32_t index = 0;
  ProducerSlot* slot = nullptr;
  ProducerOptions options;
  std::uint64_t last_seq = 0;  // mirrors slot->last_seq: only this handle writes it
  std::uint64_t limit = 0;     // cached head + capacity: no claim may end past it
  std::uint64_t last_position = 0;  // of the last record this handle committed
  // What a durable confirm must cover: the last record committed under this
  // name, by this handle or a predecessor (slot->last_position at attach).
  std::uint64_t confirm_position = 0;
  // The open claim, between try_claim and commit.
  bool claiming = false;
  std::uint64_t claim_seq = 0;
  std::uint64_t data_position = 0;
  std::uint32_t claim_size = 0;
  // An open batch claim (try_claim_batch): its records, from data_position
  // on, in order; empty while the open claim is a single one.
  struct ClaimedRecord {
    std::uint64_t position;
    std::uint32_t size;
  };
  std::vector<ClaimedRecord> batch;
};

namespace {

bool slot_name_is(const ProducerSlot& slot, std::string_view name) {
  return std::string_view(slot.name, ::strnlen(slot.name, kNameBytes)) == name;
}

// Whether a detached entry may be given to another name: only once nothing
// of its old name can be confused with the new one's, i.e. no record of it
// is left anywhere a consumer could still see it labelled with this entry
// (and a rerun of the old name, finding it gone, could not be told to be a
// duplicate). A durable queue's journal and checkpoints keep every name:
// never. Otherwise, once its last record is below head: every group has
// released it, and the ring may overwrite it.
bool recyclable(const Mapping& m, const ProducerSlot& s) {
  if (m.durable) return false;
  const std::uint64_t last = s.last_position.load(std::memory_order_relaxed);  // the lock orders it
  // acquire: pairs with the producers' CAS of head, whose floor released it.
  return last == 0 || !at_or_after(last, m.header->head.load(std::memory_order_acquire));
}

// Under the segment lock: the entry this name attaches to.
std::uint32_t find_entry(const Mapping& m, std::string_view name) {
  std::uint32_t free_slot = m.max_producers, detached_slot = m.max_producers;
  for (std::uint32_t i = 0; i < m.max_producers; ++i) {
    ProducerSlot& s = m.producers[i];
    // acquire: pairs with the release store of the state by attach, detach
    // and reap_producer (the name and sequences written before it).
    const auto state = static_cast<SlotState>(s.state.load(std::memory_order_acquire));
    if (state != SlotState::Free && slot_name_is(s, name)) {
      if (state == SlotState::Attached) {
        if (detail::entry_held(m, detail::producer_lock_byte(i))) {
          throw Error(Errc::NameInUse, "producer '" + std::string(name) + "' is attached by live process " +
                                           std::to_string(s.pid.load(std::memory_order_relaxed)));
        }
        if (!detail::reap_producer(m, i)) {
          throw Error(Errc::NameInUse, "producer '" + std::string(name) +
                                           "': its crashed predecessor's claim is still being repaired; retry");
        }
      }
      return i;
    }
    if (state == SlotState::Free && free_slot == m.max_producers) free_slot = i;
    if (state == SlotState::Detached) detached_slot = i;
  }
  if (free_slot != m.max_producers) return free_slot;
  if (detached_slot != m.max_producers) {
    // Head moves lazily (when a producer needs room): raise it to what every
    // group has released first, as a claim would, then look for an entry
    // none of whose messages is left.
    (void)detail::refresh_limit(m);
    for (std::uint32_t i = 0; i < m.max_producers; ++i) {
      const ProducerSlot& s = m.producers[i];
      // acquire: as in the scan above.
      if (s.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(SlotState::Detached) &&
          recyclable(m, s)) {
        return i;
      }
    }
  }
  throw Error(Errc::TableFull,
              "all " + std::to_string(m.max_producers) + " producer entries of queue '" + m.name +
                  "' are taken (attached, or detached with messages of theirs still in the queue" +
                  (m.durable ? " or its journal" : "") +
                  "): a new name cannot have one; create the queue with more (shmq create --max-producers, "
                  "up to 255)");
}

}  // namespace

Producer Producer::attach(const Queue& queue, std::string_view name, ProducerOptions options) {
  validate_name(name, "producer");
  const auto& map = detail::mapping_of(queue);
  if (map->read_only) throw Error(Errc::InvalidArgument, "queue opened read-only");
  auto st = std::make_unique<State>();
  st->map = map;
  st->options = options;
  {
    detail::SegmentLock lock(*map);
    detail::settle_groups_epoch(*map);
    const std::uint32_t i = find_entry(*map, name);
    ProducerSlot& s = map->producers[i];
    if (!slot_name_is(s, name)) {  // a new name in this entry
      std::memset(s.name, 0, kNameBytes);
      std::memcpy(s.name, name.data(), name.size());
      s.last_seq.store(0, std::memory_order_relaxed);
      s.last_position.store(0, std::memory_order_relaxed);  // the old name's records are not ours to confirm
    }
    // Held before the entry shows attached: an attached entry whose byte is
    // free has a dead holder (shm/liveness.hpp).
    detail::hold_entry(*map, detail::producer_lock_byte(i));
    s.claim_pos.store(kNoPosition, std::memory_order_relaxed);
    s.pid.store(detail::self_pid(), std::memory_order_relaxed);
    s.start_time.store(detail::self_start_time(), std::memory_order_relaxed);
    s.pid_ns.store(detail::self_pid_namespace(), std::memory_order_relaxed);
    // release: pairs with the acquire loads of the state (find_entry,
    // Queue::producer_name, repairers), after the name and pid above.
    s.state.store(static_cast<std::uint32_t>(SlotState::Attached), std::memory_order_release);
    st->index = i;
    st->slot = &s;
    // acquire: pairs with repair_hole's release store rolling it back.
    st->last_seq = s.last_seq.load(std::memory_order_acquire);
    // relaxed: the segment lock orders it after the previous holder's store
    // (its detach took the lock; a dead one stored it before dying, and was
    // reaped under the lock). A resend of its sequences is Duplicate, so
    // wait_durable must cover its records as well as ours.
    st->confirm_position = s.last_position.load(std::memory_order_relaxed);
    detail::announce_table_change(*map);
  }
  return Producer(std::move(st));
}

Producer::Producer(std::unique_ptr<State> state) : s_(std::move(state)) {}
Producer::Producer(Producer&&) noexcept = default;
Producer& Producer::operator=(Producer&&) noexcept = default;

Producer::~Producer() {
  if (!s_) return;
  if (s_->claiming) abort();
  detail::SegmentLock lock(*s_->map);
  s_->slot->pid.store(0, std::memory_order_relaxed);
  // release: pairs with find_entry's acquire load of the state.
  s_->slot->state.store(static_cast<std::uint32_t>(SlotState::Detached), std::memory_order_release);
  detail::let_go_entry(*s_->map, detail::producer_lock_byte(s_->index));  // once the entry is left
}

std::uint32_t Producer::id() const noexcept { return s_->index; }
std::uint64_t Producer::last_sequence() const noexcept { return s_->last_seq; }
std::uint64_t Producer::last_position() const noexcept { return s_->last_position; }

namespace {

// Runs `attempt` (a try_ call; true once its answer is not Full) and, while
// the ring is full, waits for space up to `timeout`, trying again. Ok when the
// attempt answered, else why the wait ended (Timeout, Corrupt, Deleted).
template <class Attempt>
Status wait_for_room(const Producer::State& s, Duration timeout, Attempt&& attempt) noexcept {
  if (attempt()) return Status::Ok;
  layout::EventCount& space = s.map->header->space;
  const bool ok = detail::wait_until(space, detail::deadline_after(timeout), s.options.wait.spin, attempt,
                                     [] { return detail::kMaxSleep; });
  return ok ? Status::Ok : detail::wait_failure(space);
}

// A record's timestamp (ProducerOptions::precise_timestamps).
std::uint64_t timestamp_now(const Producer::State& s) {
  return s.options.precise_timestamps ? detail::unix_time_ns() : detail::coarse_unix_time_ns();
}

// Writes a record's header and commits it: the tag last (commit_record).
void write_record(const Mapping& m, std::uint64_t position, RecordType type, std::uint32_t length,
                  std::uint32_t producer, std::uint64_t seq, std::uint64_t timestamp_ns = 0) {
  m.write_info(position, RecordFields{length, static_cast<std::uint16_t>(type), static_cast<std::uint16_t>(producer),
                                    seq, timestamp_ns});
  m.commit_record(position);
}

// A durable queue's ring is full: groups that hold it read on from the
// journal instead, so that a slow group never stalls the producers. Tries the
// lock only: try_claim never waits for another process.
bool try_offload_slow_groups(const Mapping& m) noexcept {
  const detail::SegmentLock lock(m, detail::SegmentLock::TryTag{});
  return lock.owned() && detail::offload_slow_groups(m);
}

// Announce, then claim: the tail CAS that follows (release) publishes the
// announcement to any repairer that sees the new tail (acquire in
// repair_hole). `bytes`: the claim's records, padding excluded; `last` the
// sequence of its last record (its first is last_seq + 1 in a batch).
void announce_claim(Producer::State& s, std::uint64_t position, std::uint64_t bytes, std::uint64_t last) {
  s.slot->claim_bytes.store(static_cast<std::uint32_t>(bytes), std::memory_order_relaxed);
  s.slot->claim_seq.store(last, std::memory_order_relaxed);
  s.slot->claim_prev_seq.store(s.last_seq, std::memory_order_relaxed);
  s.slot->claim_pos.store(position, std::memory_order_relaxed);
}

// Copies a payload into its claimed place, the record's first line last:
// in one burst with the header and tag that follow, so that a consumer
// polling the tag there takes the line from us once, not between our writes
// (the rest of the payload lies on lines nobody polls).
void copy_payload(std::byte* dst, std::span<const std::byte> payload) {
  const std::size_t first_line = std::min(payload.size(), kRecordAlign - sizeof(RecordHeader));
  if (payload.size() > first_line) std::memcpy(dst + first_line, payload.data() + first_line, payload.size() - first_line);
  if (first_line != 0) std::memcpy(dst, payload.data(), first_line);
}

// A batch is a list of payloads (sends) or of payload sizes (claims).
std::size_t payload_size(std::span<const std::byte> payload) { return payload.size(); }
std::size_t payload_size(std::size_t size) { return size; }

// How many of `payloads` fit as records from `start`: before the ring's end,
// and ending at or before `limit`. `bytes`: their ring bytes; `by_limit`:
// whether the limit (not the ring's end, nor the list's) stopped it.
template <class Payload>
std::size_t records_that_fit(const Mapping& m, std::uint64_t start, std::uint64_t limit,
                             std::span<const Payload> payloads, std::uint64_t& bytes, bool& by_limit) {
  const std::uint64_t before_end = m.capacity - (start & m.mask);
  bytes = 0;
  by_limit = false;
  std::size_t n = 0;
  for (; n < payloads.size(); ++n) {
    const std::uint64_t next = record_bytes(payload_size(payloads[n]));
    // The claim announcement holds its bytes in 32 bits (rings go up to 2^40).
    if (bytes + next > before_end || bytes + next > UINT32_MAX) break;
    if (!at_or_after(limit, start + bytes + next)) {
      by_limit = true;
      break;
    }
    bytes += next;
  }
  return n;
}

}  // namespace

Status Producer::try_claim(std::uint64_t seq, std::size_t size) noexcept {
  State& s = *s_;
  const Mapping& m = *s.map;
  if (s.claiming) abort();
  if (size > m.max_message) return Status::TooLarge;
  if (seq <= s.last_seq) return Status::Duplicate;
  const std::uint64_t bytes = record_bytes(size);
  std::atomic<std::uint64_t>& tail = m.header->tail;
  std::uint64_t position = tail.load(std::memory_order_relaxed);
  std::uint64_t pad = 0;
  for (;;) {
    // A misaligned tail (a hostile peer) would put our header across the ring's end.
    if (position % kRecordAlign != 0) return Status::Corrupt;
    pad = detail::padding_for(m, position, bytes);
    const std::uint64_t end = position + pad + bytes;
    if (!at_or_after(s.limit, end)) {
      s.limit = detail::refresh_limit(m);
      if (!at_or_after(s.limit, end) && m.durable && try_offload_slow_groups(m)) s.limit = detail::refresh_limit(m);
      if (!at_or_after(s.limit, end)) {
        s.slot->claim_pos.store(kNoPosition, std::memory_order_relaxed);
        return Status::Full;
      }
    }
    announce_claim(s, position, bytes, seq);
    if (tail.compare_exchange_weak(position, end, std::memory_order_release, std::memory_order_relaxed)) break;
  }
  if (pad != 0) write_record(m, position, RecordType::Padding, static_cast<std::uint32_t>(pad), s.index, 0);
  s.claiming = true;
  s.claim_seq = seq;
  s.data_position = position + pad;
  s.claim_size = static_cast<std::uint32_t>(size);
  return Status::Ok;
}

Status Producer::try_claim(std::size_t size) noexcept { return try_claim(s_->last_seq + 1, size); }

Status Producer::claim(std::size_t size, Duration timeout) noexcept {
  Status status = Status::Ok;
  const Status waited = wait_for_room(*s_, timeout, [&] { return (status = try_claim(size)) != Status::Full; });
  return waited == Status::Ok ? status : waited;
}

std::span<std::byte> Producer::claimed() noexcept {
  if (!s_->claiming) return {};
  if (!s_->batch.empty()) return claimed(0);
  return {s_->map->at(s_->data_position) + sizeof(RecordHeader), s_->claim_size};
}

namespace {

// What a commit records in the producer's own entry, before the record's tag.
void record_commit_in_entry(Producer::State& s) {
  // last_seq before the tag: a crash between the two leaves a hole
  // whose repair rolls last_seq back to claim_prev_seq (recovery/repair.cpp).
  s.slot->last_seq.store(s.claim_seq, std::memory_order_relaxed);
  // With last_seq, before the tag, so that a re-attach that sees the
  // sequence also waits for its record (relaxed: read only by attach, under
  // the segment lock, see there). If we die before the commit word, the
  // repair skips the record and rolls last_seq back, but leaves this pointing
  // at the skipped record: harmless, journal_synced passes skipped records
  // like any other (shmqd's drain walks over them), so a confirm that waits
  // for it only waits for what precedes it.
  s.slot->last_position.store(s.data_position, std::memory_order_relaxed);
}

// Writes the claimed record's header and tag: the commit.
void publish_claim(Producer::State& s) {
  const std::uint64_t now = timestamp_now(s);
  write_record(*s.map, s.data_position, RecordType::Data, s.claim_size, s.index, s.claim_seq, now);
}

// After the commit: the handle's own state, counters, and a wake-up.
std::uint64_t finish_commit(Producer::State& s) {
  const Mapping& m = *s.map;
  s.last_seq = s.claim_seq;
  s.last_position = s.data_position;
  s.confirm_position = s.data_position;
  s.claiming = false;
  // Only this process writes its counters: plain load and store, no RMW.
  s.slot->messages.store(s.slot->messages.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  s.slot->bytes.store(s.slot->bytes.load(std::memory_order_relaxed) + s.claim_size, std::memory_order_relaxed);
  detail::notify(m.header->data);
  return s.last_position;
}

}  // namespace

std::uint64_t Producer::commit() noexcept {
  State& s = *s_;
  if (!s.claiming) return 0;
  if (!s.batch.empty()) return commit_batch();
  record_commit_in_entry(s);
  publish_claim(s);
  return finish_commit(s);
}

void Producer::abort() noexcept {
  State& s = *s_;
  if (!s.claiming) return;
  const Mapping& m = *s.map;
  // One skipped record over the whole claim (a batch's records are adjacent).
  const std::uint64_t end = s.batch.empty() ? s.data_position + record_bytes(s.claim_size)
                                            : s.batch.back().position + record_bytes(s.batch.back().size);
  write_record(m, s.data_position, RecordType::Skipped, static_cast<std::uint32_t>(end - s.data_position), s.index,
               0);
  s.batch.clear();
  s.claiming = false;
  detail::notify(m.header->data);
}

Status Producer::try_send(std::uint64_t seq, std::span<const std::byte> payload) noexcept {
  const Status status = try_claim(seq, payload.size());
  if (status != Status::Ok) return status;
  State& s = *s_;
  record_commit_in_entry(s);
  copy_payload(claimed().data(), payload);
  publish_claim(s);
  finish_commit(s);
  return Status::Ok;
}

Status Producer::try_send(std::span<const std::byte> payload) noexcept {
  return try_send(s_->last_seq + 1, payload);
}

namespace {

// Claims ring space for the first records of `payloads` with one tail CAS
// (after a padding record, where the first does not fit before the ring's
// end). Returns how many, 0 when there is no room; `data` is where the first
// one starts.
template <class Payload>
std::size_t claim_run(Producer::State& s, std::span<const Payload> payloads, std::uint64_t& data, Status& status) {
  const Mapping& m = *s.map;
  std::atomic<std::uint64_t>& tail = m.header->tail;
  std::uint64_t position = tail.load(std::memory_order_relaxed);
  for (;;) {
    // A misaligned tail (a hostile peer) would put our header across the ring's end.
    if (position % kRecordAlign != 0) {
      status = Status::Corrupt;
      return 0;
    }
    const std::uint64_t pad = detail::padding_for(m, position, record_bytes(payload_size(payloads[0])));
    std::uint64_t bytes = 0;
    bool by_limit = false;
    std::size_t n = records_that_fit(m, position + pad, s.limit, payloads, bytes, by_limit);
    if (by_limit) {  // head may have moved since: look again, as try_claim does
      s.limit = detail::refresh_limit(m);
      n = records_that_fit(m, position + pad, s.limit, payloads, bytes, by_limit);
      if (n == 0 && m.durable && try_offload_slow_groups(m)) {
        s.limit = detail::refresh_limit(m);
        n = records_that_fit(m, position + pad, s.limit, payloads, bytes, by_limit);
      }
    }
    if (n == 0) {
      s.slot->claim_pos.store(kNoPosition, std::memory_order_relaxed);
      status = Status::Full;
      return 0;
    }
    announce_claim(s, position, bytes, s.last_seq + n);
    if (tail.compare_exchange_weak(position, position + pad + bytes, std::memory_order_release,
                                   std::memory_order_relaxed)) {
      if (pad != 0) write_record(m, position, RecordType::Padding, static_cast<std::uint32_t>(pad), s.index, 0);
      data = position + pad;
      return n;
    }
  }
}

// Commits the data record at `p` of a claimed run, its payload written, with
// the next sequence. As commit(): last_seq and last_position in the entry
// before the record's tag.
void commit_run_record(Producer::State& s, std::uint64_t p, std::uint32_t size, std::uint64_t timestamp_ns) {
  const std::uint64_t seq = s.last_seq + 1;
  s.slot->last_seq.store(seq, std::memory_order_relaxed);
  s.slot->last_position.store(p, std::memory_order_relaxed);
  write_record(*s.map, p, RecordType::Data, size, s.index, seq, timestamp_ns);
  s.last_seq = seq;
  s.last_position = s.confirm_position = p;
}

// After a run's commits: the entry's counters, and a wake-up.
void finish_run(Producer::State& s, std::size_t messages, std::uint64_t bytes) {
  // Only this process writes its counters: plain load and store, no RMW.
  s.slot->messages.store(s.slot->messages.load(std::memory_order_relaxed) + messages, std::memory_order_relaxed);
  s.slot->bytes.store(s.slot->bytes.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  detail::notify(s.map->header->data);
}

// How many of `payloads` a batch may take: those before the first one above max_message.
template <class Payload>
std::size_t not_too_large(const Mapping& m, std::span<const Payload> payloads) {
  std::size_t n = 0;
  while (n < payloads.size() && payload_size(payloads[n]) <= m.max_message) ++n;
  return n;
}

}  // namespace

std::size_t Producer::try_send_batch(std::span<const std::span<const std::byte>> payloads, Status& status) noexcept {
  State& s = *s_;
  const Mapping& m = *s.map;
  if (s.claiming) abort();
  status = Status::Ok;
  const std::size_t wanted = not_too_large(m, payloads);
  if (wanted == 0) {
    if (!payloads.empty()) status = Status::TooLarge;
    return 0;
  }
  const std::uint64_t now = timestamp_now(s);
  std::size_t sent = 0;
  std::uint64_t bytes = 0;
  // One claim per stretch up to the ring's end (usually one in all).
  while (sent < wanted) {
    std::uint64_t p = 0;
    const std::size_t n = claim_run(s, payloads.subspan(sent, wanted - sent), p, status);
    if (n == 0) break;
    for (const auto payload : payloads.subspan(sent, n)) {
      copy_payload(m.at(p) + sizeof(RecordHeader), payload);
      commit_run_record(s, p, static_cast<std::uint32_t>(payload.size()), now);
      bytes += payload.size();
      p += record_bytes(payload.size());
    }
    sent += n;
  }
  if (sent == wanted && wanted < payloads.size()) status = Status::TooLarge;
  if (sent == 0) return 0;
  finish_run(s, sent, bytes);
  return sent;
}

std::size_t Producer::send_batch(std::span<const std::span<const std::byte>> payloads, Duration timeout,
                                 Status& status) noexcept {
  std::size_t n = 0;
  const Status waited = wait_for_room(
      *s_, timeout, [&] { return (n = try_send_batch(payloads, status)) != 0 || status != Status::Full; });
  if (waited != Status::Ok) status = waited;
  return n;
}

std::uint64_t Producer::commit_batch() noexcept {
  State& s = *s_;
  const std::uint64_t now = timestamp_now(s);
  std::uint64_t bytes = 0;
  for (const State::ClaimedRecord& r : s.batch) {
    commit_run_record(s, r.position, r.size, now);
    bytes += r.size;
  }
  finish_run(s, s.batch.size(), bytes);
  s.batch.clear();
  s.claiming = false;
  return s.last_position;
}

std::size_t Producer::try_claim_batch(std::span<const std::size_t> sizes, Status& status) noexcept {
  State& s = *s_;
  if (s.claiming) abort();
  status = Status::Ok;
  const std::size_t wanted = not_too_large(*s.map, sizes);
  if (wanted == 0) {
    if (!sizes.empty()) status = Status::TooLarge;
    return 0;
  }
  s.batch.clear();
  s.batch.reserve(wanted);  // allocates before the claim, not while holding ring space
  std::uint64_t p = 0;
  const std::size_t n = claim_run(s, sizes.first(wanted), p, status);
  if (n == 0) return 0;
  for (const std::size_t size : sizes.first(n)) {
    s.batch.push_back({p, static_cast<std::uint32_t>(size)});
    p += record_bytes(size);
  }
  s.claiming = true;
  s.data_position = s.batch.front().position;
  return n;
}

std::size_t Producer::claim_batch(std::span<const std::size_t> sizes, Duration timeout, Status& status) noexcept {
  std::size_t n = 0;
  const Status waited = wait_for_room(
      *s_, timeout, [&] { return (n = try_claim_batch(sizes, status)) != 0 || status != Status::Full; });
  if (waited != Status::Ok) status = waited;
  return n;
}

std::size_t Producer::claimed_count() const noexcept {
  if (!s_->claiming) return 0;
  return s_->batch.empty() ? 1 : s_->batch.size();
}

std::span<std::byte> Producer::claimed(std::size_t i) noexcept {
  const State& s = *s_;
  if (s.batch.empty()) return i == 0 ? claimed() : std::span<std::byte>{};
  if (i >= s.batch.size()) return {};
  return {s.map->at(s.batch[i].position) + sizeof(RecordHeader), s.batch[i].size};
}

Status Producer::send(std::uint64_t seq, std::span<const std::byte> payload, Duration timeout) noexcept {
  Status status = Status::Ok;
  const Status waited =
      wait_for_room(*s_, timeout, [&] { return (status = try_send(seq, payload)) != Status::Full; });
  return waited == Status::Ok ? status : waited;
}

Status Producer::send(std::span<const std::byte> payload, Duration timeout) noexcept {
  return send(s_->last_seq + 1, payload, timeout);
}

Status Producer::send(std::uint64_t seq, std::span<const std::byte> payload, Confirm confirm,
                      Duration timeout) noexcept {
  if (confirm == Confirm::Durable && !s_->map->durable) return Status::NotDurable;
  const auto deadline = detail::deadline_after(timeout);
  const Status status = send(seq, payload, timeout);
  if (status != Status::Ok || confirm == Confirm::Shared) return status;
  return wait_durable_until(deadline);
}

Status Producer::send(std::span<const std::byte> payload, Confirm confirm, Duration timeout) noexcept {
  return send(s_->last_seq + 1, payload, confirm, timeout);
}

Status Producer::wait_durable(Duration timeout) noexcept {
  return wait_durable_until(detail::deadline_after(timeout));
}

Status Producer::wait_durable_until(Clock::time_point deadline) noexcept {
  const Mapping& m = *s_->map;
  if (!m.durable) return Status::NotDurable;
  // Nothing committed under this name since the queue was created or rebuilt
  // (a rebuild's journal_synced covers everything its journal holds).
  if (s_->confirm_position == 0) return Status::Ok;
  const std::uint64_t needed = s_->confirm_position + 1;
  // journal_synced only ever stops at record boundaries, so past the record's
  // position means past its end. acquire: pairs with the writer's release store.
  const auto synced = [&] { return at_or_after(m.header->journal_synced.load(std::memory_order_acquire), needed); };
  if (synced()) return Status::Ok;
  const bool ok = detail::wait_until(m.header->journal, deadline, s_->options.wait.spin, synced,
                                     [] { return detail::kMaxSleep; });
  return ok ? Status::Ok : detail::wait_failure(m.header->journal);
}

}  // namespace shmq
