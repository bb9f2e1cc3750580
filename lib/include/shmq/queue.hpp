// A queue: a named log in one POSIX shared-memory segment,
// /dev/shm/shmq.<namespace>.<queue>.
//
// Queue is a process-local handle on the mapping; Producer and Consumer are
// made from it. Copies share the one mapping, which stays valid until the last
// handle (and every Producer and Consumer made from it) is gone, even after
// Queue::remove() unlinks the name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shmq/export.hpp"
#include "shmq/status.hpp"

namespace shmq {

namespace detail {
struct Mapping;
struct QueueAccess;
}

// The namespace every name lives in: $SHMQ_NAMESPACE, else "default".
[[nodiscard]] SHMQ_API std::string current_namespace();

// Throws Error(InvalidName) unless `name` is 1..63 characters of
// [A-Za-z0-9._-] and not "." or "..". `what` names the kind in the message.
SHMQ_API void validate_name(std::string_view name, std::string_view what = "queue");

// Where shmqd keeps a namespace's data (durable queues' journals, its lock):
// $SHMQ_DATA_DIR, else /var/lib/shmq/<ns> for root, else
// $XDG_STATE_HOME/shmq/<ns> ($XDG_STATE_HOME defaulting to ~/.local/state).
// ns: empty means current_namespace(). Throws Error(InvalidArgument) when
// none can be found.
[[nodiscard]] SHMQ_API std::filesystem::path default_data_dir(std::string_view ns = {});

// Where the namespace's shmqd keeps its data: the data directory a running
// shmqd recorded in <shm_dir()>/shmqd.<ns>; else $SHMQ_DATA_DIR; else the one the
// last shmqd since boot recorded; else default_data_dir(ns). A durable queue's
// journal is <that>/journal/<queue>.
[[nodiscard]] SHMQ_API std::filesystem::path daemon_data_dir(std::string_view ns = {});

// The pid of the namespace's running shmqd (the process its record,
// <shm_dir()>/shmqd.<ns>, names, checked against its start time), or 0 when
// none runs. ns: empty means current_namespace(). Throws Error(InvalidName).
[[nodiscard]] SHMQ_API std::int64_t daemon_pid(std::string_view ns = {});

// The directory every segment lives in (and shmqd's record): $SHMQ_SHM_DIR,
// else /dev/shm. Throws Error(InvalidArgument) when it is not an absolute
// path, does not exist or is not a directory.
[[nodiscard]] SHMQ_API std::filesystem::path shm_dir();

// Namespaces may not contain '.', so that shmq.<ns>.<queue> is unambiguous.
SHMQ_API void validate_namespace(std::string_view ns);

// QueueOptions::group's default: the segment keeps the creator's group.
inline constexpr gid_t kNoGroup = static_cast<gid_t>(-1);

// What a queue does with messages its consumers do not ack: delivery
// limits, a dead-letter queue, ack deadlines and a time to live (like
// RabbitMQ's delivery-limit, consumer timeout, dead-letter exchange and
// message TTL). Set at creation, kept for the queue's life (and across a
// rebuild from its journal). docs/design.md, "Delivery policy".
struct DeliveryPolicy {
  // A message delivered this many times to a group and not acked is not
  // delivered again: it is dead-lettered (reason max-deliveries). 0: no limit.
  std::uint32_t max_deliveries = 0;
  // Where dead-lettered messages go: an existing queue of the same
  // namespace (not this one, and not one whose dead letters lead back
  // here). Empty: they are dropped, counted (GroupInfo::dropped).
  std::string dead_letter;
  // A message held longer than this by a member goes back to its group,
  // flagged and counted; the holder's late ack gets Status::LeaseExpired.
  // Zero: none. Competing groups only.
  std::chrono::nanoseconds ack_timeout{0};
  // A message older than this (by its timestamp) when a group would deliver
  // it is dead-lettered instead (reason expired). Zero: none.
  std::chrono::nanoseconds ttl{0};

  [[nodiscard]] bool any() const noexcept {
    return max_deliveries != 0 || !dead_letter.empty() || ack_timeout.count() != 0 || ttl.count() != 0;
  }
};

// What a dead-letter move adds to a message (its origin, after the payload):
// a dead-letter queue's max_message must be this much larger than the
// largest message of every queue whose dead letters it takes.
inline constexpr std::uint32_t kDeadLetterOverhead = 237;

// The most max_deliveries may be: a delivery count saturates there.
inline constexpr std::uint32_t kMaxDeliveriesLimit = 254;

struct QueueOptions {
  std::uint64_t capacity = 1u << 20;     // ring bytes; a power of two, 4 KiB .. 1 TiB
  std::uint32_t max_message = 64 << 10;  // largest payload; with its 32-byte header, at most capacity / 4
  bool durable = false;                  // journaled by shmqd
  mode_t mode = 0600;                    // segment file mode
  // The segment file's group (with mode 0660: whose members may use the
  // queue); kNoGroup: the creator's. Set before the mode, so no other group
  // ever sees the file; the creator must belong to it (or be root), else
  // Error(PermissionDenied). An opened queue's options() report its file's
  // group.
  gid_t group = kNoGroup;
  std::uint32_t max_producers = 64;      // producer table entries (1..255)
  std::uint32_t max_groups = 16;         // consumer group entries (1..64)
  std::uint32_t max_consumers = 16;      // consumers per group (1..64)
  DeliveryPolicy policy{};               // none by default
};

// A consistent-enough snapshot of one queue, for shmq-stat and tests. Every
// field is read with relaxed loads, so related figures may be a few records
// apart on a busy queue.
struct ProducerInfo {
  std::uint32_t id = 0;
  std::string name;
  std::int64_t pid = 0;      // in the pid namespace pid_namespace names
  std::uint64_t pid_namespace = 0;  // its inode (/proc/<pid>/ns/pid); 0: unknown
  bool attached = false;    // a process holds the entry
  bool alive = false;       // that process still runs (the kernel holds its entry lock)
  std::uint64_t last_sequence = 0;
  std::uint64_t messages = 0;  // committed by this entry, all incarnations
  std::uint64_t bytes = 0;
};

struct ConsumerInfo {
  std::uint32_t index = 0;
  std::int64_t pid = 0;  // in the pid namespace pid_namespace names
  std::uint64_t pid_namespace = 0;
  bool alive = false;
  std::uint32_t in_flight = 0;
  std::uint64_t received = 0;
  std::uint64_t acked = 0;
  bool active = true;  // an exclusive group's member: the one that reads (the others stand by)
};

struct GroupInfo {
  std::string name;
  std::uint64_t read_position = 0;   // next position handed out
  bool reading_journal = false;      // durable: the group fell a ring behind (or replays) and reads the journal
  std::uint64_t acked_position = 0;  // everything below is acknowledged (released)
  std::uint64_t lag_bytes = 0;       // tail - acked_position
  std::uint64_t lag_messages = 0;    // committed messages not yet acknowledged
  std::uint64_t in_flight = 0;
  std::uint64_t delivered = 0;
  std::uint64_t acked = 0;  // settled: acked, and also dead-lettered or dropped (they leave the group as acks do)
  std::uint64_t redelivered = 0;
  bool exclusive = false;  // one active member reads at a time (ConsumerOptions::exclusive)
  // The delivery policy's work (DeliveryPolicy), all since the group's creation:
  std::uint64_t dead_lettered = 0;  // moved to the dead-letter queue (any reason)
  std::uint64_t dropped = 0;        // would have been dead-lettered, but the queue has no dead-letter queue
  std::uint64_t expired = 0;        // past their ttl when due (dead-lettered or dropped)
  std::uint64_t rejected = 0;       // by Consumer::reject (dead-lettered or dropped)
  std::uint64_t nacked = 0;         // given back by Consumer::nack
  std::uint64_t lease_expired = 0;  // taken back from a member past the ack timeout
  std::vector<ConsumerInfo> consumers;
};

enum class JournalTrouble : std::uint8_t {
  None,
  SetupFailing,  // shmqd cannot open the journal (a full disk): it retries every 200 ms
  Conflict,      // the segment is not the queue its journal holds: shmqd will not journal it
};

struct QueueInfo {
  std::string name;
  std::string ns;
  std::uint64_t capacity = 0;
  std::uint32_t max_message = 0;
  bool durable = false;
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;  // the segment file's owner and group
  std::uint32_t gid = 0;
  std::int64_t creator_pid = 0;
  std::uint64_t created_unix_ns = 0;
  std::uint64_t head_position = 0;  // oldest retained position
  std::uint64_t tail_position = 0;  // next position a producer claims
  std::uint64_t bytes_in_use = 0;   // tail - head
  std::uint64_t messages_in_use = 0;
  std::uint64_t messages_total = 0;  // ever committed
  std::uint64_t journal_written = 0;
  std::uint64_t journal_synced = 0;
  int journal_error = 0;  // errno of the journal's failing write or sync (disk full: ENOSPC); 0 when fine
  // shmqd cannot journal the queue: it cannot set the journal up (retrying,
  // journal_error says why), or the segment does not continue the journal in
  // shmqd's data directory (it was created anew while that journal existed).
  JournalTrouble journal_trouble = JournalTrouble::None;
  std::uint64_t groups_to_journal = 0;  // times a group fell a ring behind and read the journal instead
  std::uint64_t holes_skipped = 0;
  std::uint64_t redelivered = 0;
  std::uint64_t clients_reaped = 0;
  std::int64_t daemon_pid = 0;  // in the pid namespace daemon_pid_namespace names
  std::uint64_t daemon_pid_namespace = 0;
  bool daemon_alive = false;
  DeliveryPolicy policy;
  std::vector<ProducerInfo> producers;
  std::vector<GroupInfo> groups;
};

// One record of the ring, as shmq dump shows it.
enum class RecordKind : std::uint8_t { Data, Padding, Skipped, Uncommitted };

struct RecordInfo {
  std::uint64_t position = 0;
  RecordKind kind = RecordKind::Data;
  std::uint32_t length = 0;  // payload bytes (Data) or bytes covered (Padding, Skipped)
  std::uint32_t producer_id = 0;
  std::uint64_t sequence = 0;
  std::uint64_t timestamp_ns = 0;
  std::vector<std::byte> payload;  // a copy (Data only)
};

class SHMQ_API Queue {
 public:
  // ns: empty means current_namespace().
  // A durable queue whose journal exists in daemon_data_dir(ns) is not
  // created: Error(NeedsRebuild) says to start shmqd, which rebuilds it with
  // its messages and producer sequences.
  static Queue create(std::string_view name, const QueueOptions& options = {},
                      std::string_view ns = {});
  // The pattern for an application that may start before shmqd after a
  // reboot: opens the queue; creates it when it does not exist; and when it
  // must be rebuilt from its journal first (NeedsRebuild), waits up to
  // `wait_for_rebuild` for shmqd to do that, then opens it (NeedsRebuild
  // again when the time is up). The options of an existing queue are its own.
  static Queue open_or_create(std::string_view name, const QueueOptions& options = {},
                              std::string_view ns = {},
                              std::chrono::milliseconds wait_for_rebuild = std::chrono::seconds(10));
  static Queue open(std::string_view name, std::string_view ns = {});
  // Opens read-only (PROT_READ): for shmq-stat, which must never write.
  static Queue open_read_only(std::string_view name, std::string_view ns = {});
  // Unlinks the segment; returns false when it did not exist.
  static bool remove(std::string_view name, std::string_view ns = {});
  // Names of the queues in the namespace (segments present in /dev/shm).
  static std::vector<std::string> list(std::string_view ns = {});
  // What a queue of `options` takes of /dev/shm: its ring and, beside it,
  // per consumer group entry a state word and a delivery word (8 bytes each)
  // per 64-byte chunk of the ring, and the tables. Throws Error(InvalidArgument) for
  // options create() refuses.
  [[nodiscard]] static std::uint64_t segment_bytes(const QueueOptions& options);

  [[nodiscard]] const std::string& name() const noexcept;
  [[nodiscard]] const std::string& ns() const noexcept;
  [[nodiscard]] std::uint64_t capacity() const noexcept;
  [[nodiscard]] std::uint32_t max_message() const noexcept;
  [[nodiscard]] bool durable() const noexcept;
  // The options the queue was created with, as its segment records them: for
  // a queue opened (or found by open_or_create), its own, not the caller's.
  [[nodiscard]] QueueOptions options() const noexcept;
  // Whether the queue was deleted since this handle opened it: its segment
  // has no name left, or its name now leads to another segment. Its mapping
  // stays usable, but whatever is sent to it is lost with the last handle.
  // Two system calls: check it at the end of a batch, not per message.
  [[nodiscard]] bool deleted() const noexcept;

  [[nodiscard]] QueueInfo info() const;

  // The name of the producer entry `id` (Message::producer_id); empty when
  // the entry is free. Read it while the message is held: an entry is handed
  // to another name only once none of its messages is left unreleased, so
  // the name read then is the sender's (a cache across messages is not).
  [[nodiscard]] std::string producer_name(std::uint32_t id) const;

  // Copies up to `max_records` records from `from` (clamped to the oldest
  // retained position) towards the tail. Read-only; stops at the first
  // uncommitted record (reported as Uncommitted) and at anything corrupt.
  [[nodiscard]] std::vector<RecordInfo> records(std::uint64_t from = 0,
                                                std::size_t max_records = 1000) const;

  // Removes a consumer group, releasing what it held. Throws NotFound.
  void delete_group(std::string_view group);

 private:
  // libshmq's way in (lib/src/shm/prepared_create.hpp): shmqd's rebuild of a
  // durable queue, and the mapping for the internals (detail::mapping_of).
  friend struct detail::QueueAccess;
  explicit Queue(std::shared_ptr<detail::Mapping> map) : map_(std::move(map)) {}
  std::shared_ptr<detail::Mapping> map_;
};

}  // namespace shmq
