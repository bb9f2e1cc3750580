// The shared-memory layout of one queue segment: the only declaration of it.
//
// Plain structs of fixed-width integers and lock-free atomics, no pointers
// (offsets only), no std:: containers. Every size and offset another process
// relies on is pinned by a static_assert below and by tests/unit/layout_test.
// Changing any of them means bumping kLayoutVersion.
//
//   [QueueHeader]                      superblock + hot positions, one cache line each
//   [ProducerSlot x max_producers]
//   [GroupSlot    x max_groups]
//   [ConsumerSlot x max_groups x max_consumers]
//   [state words:  u64 x chunks x max_groups]  per group: who holds each record
//   [delivery words: u64 x chunks x max_groups] per group: deliveries of returned records
//   [ring: capacity bytes]             records, 64-byte aligned
//
// A "chunk" is kRecordAlign bytes of the ring; records start on chunk
// boundaries, so a record at position p owns state word
// (p % capacity) / kRecordAlign, outside the ring, holding the full position.
//
// A record commits itself: the first word of its header is its tag, the
// record's position mixed with the segment's random record key (record_tag),
// stored last with release. A reader finds a record and its header in the
// same cache line. Stale bytes never pass for a record: an earlier lap's
// header carries an earlier position's tag, and payload bytes (which an
// earlier lap may have left where this lap's header goes) would have to hold
// the tag of a future position, i.e. be computed from the key, which no
// payload is unless a peer forges it on purpose (a hostile peer, which can
// write anything anyway; docs/design.md "Record tags").
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace shmq::layout {

// Our own padding constant: std::hardware_destructive_interference_size may
// change with compiler flags and would silently change the shared layout.
// 128 covers x86's adjacent-line prefetcher.
inline constexpr std::size_t kCacheLine = 128;
inline constexpr std::size_t kRecordAlign = 64;
inline constexpr std::size_t kNameBytes = 64;  // 63 characters and a NUL
inline constexpr std::uint64_t kMagic = 0x31474f4c514d4853ULL;  // "SHMQLOG1" little-endian
// 2: liveness by entry locks (lock bytes below) and pid namespaces in the tables.
// 3: records commit by their tag (no commit words); exclusive groups.
// 4: delivery policy and delivery words (delivery counts, dead letters, leases).
inline constexpr std::uint32_t kLayoutVersion = 4;
// The log starts here, not at 0, so that all-zero words (never written) read
// as "an older position" and never as a record at position 0.
inline constexpr std::uint64_t kFirstPosition = kRecordAlign;
inline constexpr std::uint64_t kNoPosition = ~std::uint64_t{0};

inline constexpr std::uint32_t kFlagDurable = 1u << 0;
// In a group's read cursor: the ring is closed to the group, which reads the journal.
inline constexpr std::uint64_t kReadClosed = std::uint64_t{1} << 63;

// ---- records in the ring -------------------------------------------------

enum class RecordType : std::uint16_t {
  Data = 1,
  Padding = 2,  // fills the ring's end so the next record starts at offset 0
  Skipped = 3,  // a claim whose producer died (or aborted) before committing
};

// What a record's header says after its tag: written before the tag, read
// (copied once, see record_span) after an acquire load of it.
struct RecordFields {
  std::uint32_t length;  // Data: payload bytes; Padding/Skipped: bytes covered, header included
  std::uint16_t type;    // RecordType
  std::uint16_t producer_id;
  std::uint64_t sequence;
  std::uint64_t timestamp_ns;
};

struct RecordHeader {
  // record_tag(position, key) once the record is committed: stored last,
  // with release, by its producer (or a repairer writing a Skipped record);
  // the acquire loads of readers pair with it, making info and payload visible.
  std::atomic<std::uint64_t> tag;
  RecordFields info;
};
static_assert(sizeof(RecordFields) == 24);
static_assert(offsetof(RecordFields, length) == 0);
static_assert(offsetof(RecordFields, type) == 4);
static_assert(offsetof(RecordFields, producer_id) == 6);
static_assert(offsetof(RecordFields, sequence) == 8);
static_assert(offsetof(RecordFields, timestamp_ns) == 16);
static_assert(sizeof(RecordHeader) == 32, "record header is part of the ring format");
static_assert(offsetof(RecordHeader, tag) == 0);
static_assert(offsetof(RecordHeader, info) == 8);

// Record keys always have this bit set: positions stay below 2^62, so a tag
// always has it too, and never-written (zero) memory is never a tag.
inline constexpr std::uint64_t kRecordKeyBit = std::uint64_t{1} << 63;
constexpr std::uint64_t record_tag(std::uint64_t position, std::uint64_t key) { return position ^ key; }

constexpr std::uint64_t align_up(std::uint64_t n, std::uint64_t a) { return (n + a - 1) & ~(a - 1); }
// Ring bytes taken by a data record of `payload` bytes.
constexpr std::uint64_t record_bytes(std::uint64_t payload) {
  return align_up(sizeof(RecordHeader) + payload, kRecordAlign);
}

// "a is at or after b" for positions, robust to the words' initial zero.
constexpr bool at_or_after(std::uint64_t a, std::uint64_t b) {
  return static_cast<std::int64_t>(a - b) >= 0;
}

// ---- state words: which member of a group holds a record -----------------
// word = (position / kRecordAlign) << 8 | code. Positions up to 2^62 bytes fit.

inline constexpr std::uint8_t kOwnerMask = 0x3f;       // in flight: owner consumer index
inline constexpr std::uint8_t kRedeliveredBit = 0x40;  // in flight, and delivered before
inline constexpr std::uint8_t kPendingRedelivery = 0x80;  // its holder died; free to take
inline constexpr std::uint8_t kAcked = 0x81;
// The record where a group's ring read was closed: no member may take it.
inline constexpr std::uint8_t kClosed = 0x82;

constexpr std::uint64_t make_state(std::uint64_t position, std::uint8_t code) {
  return (position / kRecordAlign) << 8 | code;
}
constexpr std::uint64_t state_chunk(std::uint64_t word) { return word >> 8; }
constexpr std::uint8_t state_code(std::uint64_t word) { return static_cast<std::uint8_t>(word); }
constexpr bool state_is_for(std::uint64_t word, std::uint64_t position) {
  return state_chunk(word) == ((position / kRecordAlign) & (~std::uint64_t{0} >> 8));
}
constexpr bool state_in_flight(std::uint8_t code) { return code < 0x80; }

// ---- delivery words: how often a returned record was delivered ----------
// One per chunk per group, beside the state words, written only when a
// record goes back to its group (a holder's death, nack, lease expiry) or
// reaches the dead-letter queue: a first delivery writes nothing (its count
// is 0 while its word is for another position). word = make_state(position,
// byte): byte = deliveries so far (saturating at kDeliveriesSaturated), or
// kMovedToDeadLetter: the record is in the dead-letter queue, and a member
// that takes it acks it (ring/dead_letter.cpp). Laps are told apart as
// state words' are.

inline constexpr std::uint8_t kDeliveriesSaturated = 0xfe;
inline constexpr std::uint8_t kMovedToDeadLetter = 0xff;

// Deliveries so far of the record at `position`, by its delivery word.
constexpr std::uint32_t deliveries_of(std::uint64_t word, std::uint64_t position) {
  return state_is_for(word, position) && state_code(word) != kMovedToDeadLetter ? state_code(word) : 0;
}
constexpr bool moved_to_dead_letter(std::uint64_t word, std::uint64_t position) {
  return state_is_for(word, position) && state_code(word) == kMovedToDeadLetter;
}

// ---- futex event counts ---------------------------------------------------

// Waiters register, re-check their condition, then sleep on `seq`; wakers
// change the condition, then (seq_cst fence) bump `seq` and wake only when
// `waiters` is non-zero, so a busy queue pays no system call. The wakers'
// fence pairs with the waiters' seq_cst fence between registering and
// re-checking (shm/wait.hpp): one of the two sees the other.
struct EventCount {
  std::atomic<std::uint32_t> seq;
  std::atomic<std::uint32_t> waiters;
};

// ---- the header -----------------------------------------------------------

enum class SlotState : std::uint32_t {
  Free = 0,      // never used (producers), or free (groups, consumers)
  Attached = 1,  // held by a live process (or a dead one not yet reaped)
  Detached = 2,  // producers only: name and last sequence kept for re-attach
};

struct Superblock {
  std::uint64_t magic;
  // Written last, with release, when everything else is initialised; the
  // acquire load of every open pairs with it, so an open that sees the
  // version sees the whole initialised segment. 0 while the creator is still at work.
  std::atomic<std::uint32_t> layout_version;
  std::uint32_t header_bytes;  // sizeof(QueueHeader)
  std::uint64_t segment_bytes;
  std::uint64_t capacity;  // ring bytes, a power of two
  std::uint32_t max_message;
  std::uint32_t flags;
  std::uint32_t max_producers;
  std::uint32_t max_groups;
  std::uint32_t max_consumers;
  std::uint32_t mode;
  std::int64_t creator_pid;
  std::uint64_t creator_start_time;
  std::uint64_t created_unix_ns;
  std::uint64_t producers_offset;
  std::uint64_t groups_offset;
  std::uint64_t consumers_offset;
  std::uint64_t record_key;  // random, kRecordKeyBit set: see record_tag
  std::uint64_t states_offset;
  std::uint64_t ring_offset;
  char ns[kNameBytes];
  char name[kNameBytes];
};

struct alignas(kCacheLine) QueueHeader {
  Superblock super;
  // Next position a producer claims. Producers CAS it with release, which
  // publishes their claim announcement (ProducerSlot::claim_pos) to the
  // acquire load of a repairer (repair_hole) that sees the new tail.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail;
  // Oldest retained position: producers never claim past head + capacity.
  // Advanced (CAS, monotonic) by producers to the slowest group's released.
  // The CAS is seq_cst; a producer's acquire load of head pairs with it, so
  // a head another producer raised carries the group releases that producer
  // saw before it writes below it (refresh_limit in ring/producer.cpp).
  alignas(kCacheLine) std::atomic<std::uint64_t> head;
  // Data records below head (statistics), kept while no group exists: head
  // moves without a group only when the last group is deleted.
  std::atomic<std::uint64_t> head_messages;
  // A seqlock over group creation: odd while a group is being created (under
  // the segment lock). Producers compute the new head from a scan of the
  // groups that no creation overlapped, so a new group never starts below a
  // head some producer is about to publish. All seq_cst: the creator's (and
  // pin_ring_at_journal_end's) two increments pair with the two loads that
  // bracket each producer's scan (release_floor in ring/producer.cpp).
  std::atomic<std::uint64_t> groups_epoch;
  alignas(kCacheLine) EventCount data;   // consumers sleep here for commits
  alignas(kCacheLine) EventCount space;  // producers sleep here for releases
  alignas(kCacheLine) std::atomic<std::uint64_t> holes_skipped;
  std::atomic<std::uint64_t> redelivered;
  std::atomic<std::uint64_t> clients_reaped;
  // Durable queues (shmqd): journal progress and the daemon's identity.
  // Every record below journal_written is in the journal's files (the ring
  // may reuse its bytes); below journal_synced, on disk (fdatasync). shmqd
  // publishes journal_written only after the sync, so a failed sync leaves
  // the records in the ring (daemon/journaling/pipeline.hpp). Both are
  // ring positions at record boundaries, stored (release) only by shmqd's
  // journal writer; kFirstPosition at creation. The release store of
  // journal_written pairs with producers' load in release_floor (the writer
  // has read the bytes before a producer reuses them); that of
  // journal_synced with the acquire loads of consumers (synced_past),
  // durable confirms (wait_durable) and offload_slow_groups.
  alignas(kCacheLine) std::atomic<std::uint64_t> journal_written;
  std::atomic<std::uint64_t> journal_synced;
  // Who serves the queue, for people: its pid means something only in the
  // pid namespace daemon_pid_ns names. Whether it lives is its entry lock's
  // word (daemon_lock_byte in shm/liveness.hpp), never this pid's.
  std::atomic<std::int64_t> daemon_pid;
  std::atomic<std::uint64_t> daemon_start_time;
  EventCount journal;  // durable confirms sleep here for journal_synced
  // 0, or the errno of the journal's last failed write or sync (disk full):
  // durable confirms wait meanwhile. Cleared once a write succeeds again.
  std::atomic<std::uint32_t> journal_error;
  // A JournalTrouble (lib/include/shmq/queue.hpp): 0, or why shmqd does not
  // journal the queue. Written (relaxed) by shmqd, read by shmq-stat; nothing
  // is published with it.
  std::atomic<std::uint32_t> journal_trouble;
  // Statistics: times a group fell a ring behind and switched to the journal.
  std::atomic<std::uint64_t> groups_to_journal;
  // The identity of the journal this segment continues (its queue.json's
  // journal_id): 0 until shmqd first journals the segment or rebuilds it.
  // shmqd journals a segment only into the journal of the same id, so a
  // queue created anew while its journal exists is never confirmed against
  // records it does not hold. Written (relaxed) by shmqd's event loop only.
  std::atomic<std::uint64_t> journal_id;
  std::atomic<std::uint64_t> daemon_pid_ns;  // inode of daemon_pid's pid namespace (/proc/<pid>/ns/pid)
  // The delivery policy (shmq/queue.hpp DeliveryPolicy), set at creation and
  // never changed: plain fields, published with the superblock's version.
  alignas(kCacheLine) std::uint32_t max_deliveries;  // 0: unlimited
  std::uint32_t policy_flags;                        // reserved, 0
  std::uint64_t ack_timeout_ns;                      // 0: none
  std::uint64_t ttl_ns;                              // 0: none
  std::uint64_t deliveries_offset;                   // the delivery words
  char dead_letter[kNameBytes];                      // empty: none
};

struct alignas(kCacheLine) ProducerSlot {
  // SlotState. Stored with release once the entry's other fields are set
  // (attach, reap_producer); the acquire loads of repairers pair with it.
  std::atomic<std::uint32_t> state;
  std::uint32_t reserved;
  // The holder's pid, start time and pid namespace: what shmqd needs for a
  // pidfd when it shares the namespace. Whether the holder lives is the
  // entry lock's word (shm/liveness.hpp), never the pid's.
  std::atomic<std::int64_t> pid;
  std::atomic<std::uint64_t> start_time;  // of pid, from /proc/<pid>/stat, against pid reuse
  char name[kNameBytes];
  // Last sequence committed. Written before the record's tag, and
  // rolled back to claim_prev_seq by the repair of a claim that never
  // committed (a release store, paired with attach's acquire load, both
  // under the segment lock).
  std::atomic<std::uint64_t> last_seq;
  std::atomic<std::uint64_t> pid_ns;  // inode of pid's pid namespace
  // The claim announcement, written (relaxed) before the tail CAS, whose
  // release pairs with repair_hole's acquire load of tail: the owner of an
  // uncommitted record is always among its announcers.
  alignas(kCacheLine) std::atomic<std::uint64_t> claim_pos;  // kNoPosition when none
  std::atomic<std::uint64_t> claim_seq;
  std::atomic<std::uint64_t> claim_prev_seq;
  std::atomic<std::uint32_t> claim_bytes;  // record bytes, padding excluded
  std::uint32_t reserved2;
  std::atomic<std::uint64_t> messages;  // committed, all incarnations
  std::atomic<std::uint64_t> bytes;
  // Position of the last record committed under this name, all incarnations:
  // a re-attached producer's durable confirm waits for it, so a resend that
  // finds its sequences Duplicate confirms them too. Stored by the owner with
  // last_seq, before the record's tag; read by attach under the segment lock.
  // 0 after a rebuild (journal_synced covers every record the journal holds).
  std::atomic<std::uint64_t> last_position;
};

enum class GroupMode : std::uint32_t {
  Competing = 0,  // members share the records, each taken by a CAS on its state word
  Exclusive = 1,  // one active member reads at a time, the others stand by
};

struct alignas(kCacheLine) GroupSlot {
  std::atomic<std::uint32_t> state;  // SlotState: Free or Attached (= exists)
  std::uint32_t mode;                // GroupMode, set at creation (under the segment lock)
  char name[kNameBytes];
  std::atomic<std::uint64_t> retired_delivered;  // counters of members that left
  std::atomic<std::uint64_t> retired_acked;
  // Exclusive groups: the member that reads, index + 1, or 0 when none.
  // Set (CAS from 0, acq_rel) by a member becoming active, cleared by the
  // release_consumer of the active member (release store); a member's
  // acquire load pairs with both. On this line, not the read cursor's, so
  // that standbys looking at it never disturb the active member's line.
  std::atomic<std::uint32_t> active;
  std::uint32_t reserved3;
  // Next position handed out: members CAS it (acq_rel) past each record they
  // take; the acquire loads of the other members pair with it. With
  // kReadClosed set, the group reads from the journal (durable queues only,
  // see durable/group_journal.hpp) and the ring hands out nothing more.
  alignas(kCacheLine) std::atomic<std::uint64_t> read;
  // A durable queue's group that fell a ring behind reads [journal_from,
  // journal_to) from the journal instead of the ring. journal_to is 0 while
  // the switch is being made, kNoPosition until the reader has caught up.
  // The switch stores journal_from then journal_to, each seq_cst, paired
  // with ring_pin's seq_cst loads in the reverse order and with members'
  // acquire loads of journal_to (the fields below come with it).
  std::atomic<std::uint64_t> journal_from;
  std::atomic<std::uint64_t> journal_to;
  // journal_read, journal_acked and journal_redeliver_below are written by
  // the lease holder (or under the segment lock); journal_acked's release
  // store pairs with release_journal_acked's acquire load.
  std::atomic<std::uint64_t> journal_read;   // next journal position to hand out
  std::atomic<std::uint64_t> journal_acked;  // journal records below are all acked
  std::atomic<std::uint64_t> journal_redeliver_below;  // re-read after a reader died: flagged
  // The member reading the journal (the lease): index + 1, or 0. Given up
  // with a release store, paired with the next reader's acq_rel CAS.
  std::atomic<std::uint32_t> journal_reader;
  std::uint32_t reserved2;
  // Everything below is acknowledged: members CAS it (seq_cst) past acked
  // records; producers' seq_cst loads in their floor scan (release_floor)
  // pair with it before they reuse the bytes.
  alignas(kCacheLine) std::atomic<std::uint64_t> released;
  std::atomic<std::uint64_t> start_messages;  // data records below where the group started (statistics)
  // Records whose holder died, waiting in [released, read) for a member.
  alignas(kCacheLine) std::atomic<std::uint64_t> pending_redelivery;
  std::atomic<std::uint64_t> redelivered;
  // The delivery policy's statistics (GroupInfo), relaxed.
  std::atomic<std::uint64_t> dead_lettered;
  std::atomic<std::uint64_t> dropped;
  std::atomic<std::uint64_t> expired;
  std::atomic<std::uint64_t> rejected;
  std::atomic<std::uint64_t> nacked;
  std::atomic<std::uint64_t> lease_expired;
  // The group's dead-letter move in progress (ring/dead_letter.cpp): the
  // record at dead_letter_position is being sent with dead_letter_sequence.
  // Written only by the process holding the group's dead-letter producer
  // (which serialises moves), sequence first, both release; its next holder's
  // acquire loads pair with them. kNoPosition: none.
  std::atomic<std::uint64_t> dead_letter_position;
  std::atomic<std::uint64_t> dead_letter_sequence;
};

struct alignas(kCacheLine) ConsumerSlot {
  // SlotState: Free or Attached. Stored with release once the entry's other
  // fields are set (join, release_consumer); the acquire loads of
  // repairers (recover_dead_clients) pair with it.
  std::atomic<std::uint32_t> state;
  std::uint32_t prefetch;
  std::atomic<std::int64_t> pid;
  std::atomic<std::uint64_t> start_time;
  std::atomic<std::uint32_t> in_flight;
  std::uint32_t reserved;
  std::atomic<std::uint64_t> delivered;
  std::atomic<std::uint64_t> acked;
  std::atomic<std::uint64_t> pid_ns;  // as ProducerSlot's
  // Queues with an ack timeout: when the member took the oldest record it
  // holds (CLOCK_MONOTONIC ns; 0: holds none), written (relaxed) by the
  // member; and the held_since whose records a lease expiry took back (so
  // one stuck record is taken back once), written under the segment lock.
  std::atomic<std::int64_t> held_since_ns;
  std::atomic<std::int64_t> lease_revoked_ns;
};

// ---- pinned layout --------------------------------------------------------

static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "shared atomics must be lock-free");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared atomics must be lock-free");
static_assert(std::atomic<std::int64_t>::is_always_lock_free, "shared atomics must be lock-free");
static_assert(sizeof(std::atomic<std::uint64_t>) == 8, "an atomic must be its plain integer");
static_assert(std::is_standard_layout_v<RecordHeader> && std::is_standard_layout_v<EventCount> &&
                  std::is_standard_layout_v<QueueHeader> && std::is_standard_layout_v<ProducerSlot> &&
                  std::is_standard_layout_v<GroupSlot> && std::is_standard_layout_v<ConsumerSlot>,
              "shared structs must be standard layout for offsetof");

static_assert(offsetof(Superblock, magic) == 0);
static_assert(offsetof(Superblock, layout_version) == 8);
static_assert(offsetof(Superblock, header_bytes) == 12);
static_assert(offsetof(Superblock, segment_bytes) == 16);
static_assert(offsetof(Superblock, capacity) == 24);
static_assert(offsetof(Superblock, max_message) == 32);
static_assert(offsetof(Superblock, flags) == 36);
static_assert(offsetof(Superblock, max_producers) == 40);
static_assert(offsetof(Superblock, max_groups) == 44);
static_assert(offsetof(Superblock, max_consumers) == 48);
static_assert(offsetof(Superblock, mode) == 52);
static_assert(offsetof(Superblock, creator_pid) == 56);
static_assert(offsetof(Superblock, creator_start_time) == 64);
static_assert(offsetof(Superblock, created_unix_ns) == 72);
static_assert(offsetof(Superblock, producers_offset) == 80);
static_assert(offsetof(Superblock, groups_offset) == 88);
static_assert(offsetof(Superblock, consumers_offset) == 96);
static_assert(offsetof(Superblock, record_key) == 104);
static_assert(offsetof(Superblock, states_offset) == 112);
static_assert(offsetof(Superblock, ring_offset) == 120);
static_assert(offsetof(Superblock, ns) == 128);
static_assert(offsetof(Superblock, name) == 192);
static_assert(sizeof(Superblock) == 256);

static_assert(offsetof(EventCount, seq) == 0);
static_assert(offsetof(EventCount, waiters) == 4);
static_assert(sizeof(EventCount) == 8);

static_assert(offsetof(QueueHeader, super) == 0);
static_assert(offsetof(QueueHeader, tail) == 256, "tail on its own cache line");
static_assert(offsetof(QueueHeader, head) == 384);
static_assert(offsetof(QueueHeader, head_messages) == 392);
static_assert(offsetof(QueueHeader, groups_epoch) == 400);
static_assert(offsetof(QueueHeader, data) == 512);
static_assert(offsetof(QueueHeader, space) == 640);
static_assert(offsetof(QueueHeader, holes_skipped) == 768);
static_assert(offsetof(QueueHeader, redelivered) == 776);
static_assert(offsetof(QueueHeader, clients_reaped) == 784);
static_assert(offsetof(QueueHeader, journal_written) == 896);
static_assert(offsetof(QueueHeader, journal_synced) == 904);
static_assert(offsetof(QueueHeader, daemon_pid) == 912);
static_assert(offsetof(QueueHeader, daemon_start_time) == 920);
static_assert(offsetof(QueueHeader, journal) == 928);
static_assert(offsetof(QueueHeader, journal_error) == 936);
static_assert(offsetof(QueueHeader, journal_trouble) == 940);
static_assert(offsetof(QueueHeader, groups_to_journal) == 944);
static_assert(offsetof(QueueHeader, journal_id) == 952);
static_assert(offsetof(QueueHeader, daemon_pid_ns) == 960);
static_assert(offsetof(QueueHeader, max_deliveries) == 1024, "the policy on its own line");
static_assert(offsetof(QueueHeader, policy_flags) == 1028);
static_assert(offsetof(QueueHeader, ack_timeout_ns) == 1032);
static_assert(offsetof(QueueHeader, ttl_ns) == 1040);
static_assert(offsetof(QueueHeader, deliveries_offset) == 1048);
static_assert(offsetof(QueueHeader, dead_letter) == 1056);
static_assert(sizeof(QueueHeader) == 1152);

static_assert(offsetof(ProducerSlot, state) == 0);
static_assert(offsetof(ProducerSlot, reserved) == 4);
static_assert(offsetof(ProducerSlot, pid) == 8);
static_assert(offsetof(ProducerSlot, start_time) == 16);
static_assert(offsetof(ProducerSlot, name) == 24);
static_assert(offsetof(ProducerSlot, last_seq) == 88);
static_assert(offsetof(ProducerSlot, pid_ns) == 96);
static_assert(offsetof(ProducerSlot, claim_pos) == 128, "claim announcement on its own line");
static_assert(offsetof(ProducerSlot, claim_seq) == 136);
static_assert(offsetof(ProducerSlot, claim_prev_seq) == 144);
static_assert(offsetof(ProducerSlot, claim_bytes) == 152);
static_assert(offsetof(ProducerSlot, reserved2) == 156);
static_assert(offsetof(ProducerSlot, messages) == 160);
static_assert(offsetof(ProducerSlot, bytes) == 168);
static_assert(offsetof(ProducerSlot, last_position) == 176, "on the line commit writes anyway");
static_assert(sizeof(ProducerSlot) == 256);

static_assert(offsetof(GroupSlot, state) == 0);
static_assert(offsetof(GroupSlot, mode) == 4);
static_assert(offsetof(GroupSlot, name) == 8);
static_assert(offsetof(GroupSlot, retired_delivered) == 72);
static_assert(offsetof(GroupSlot, retired_acked) == 80);
static_assert(offsetof(GroupSlot, active) == 88);
static_assert(offsetof(GroupSlot, reserved3) == 92);
static_assert(offsetof(GroupSlot, read) == 128, "read cursor on its own line");
static_assert(offsetof(GroupSlot, journal_from) == 136);
static_assert(offsetof(GroupSlot, journal_to) == 144);
static_assert(offsetof(GroupSlot, journal_read) == 152);
static_assert(offsetof(GroupSlot, journal_acked) == 160);
static_assert(offsetof(GroupSlot, journal_redeliver_below) == 168);
static_assert(offsetof(GroupSlot, journal_reader) == 176);
static_assert(offsetof(GroupSlot, reserved2) == 180);
static_assert(offsetof(GroupSlot, released) == 256, "released cursor on its own line");
static_assert(offsetof(GroupSlot, start_messages) == 264);
static_assert(offsetof(GroupSlot, pending_redelivery) == 384);
static_assert(offsetof(GroupSlot, redelivered) == 392);
static_assert(offsetof(GroupSlot, dead_lettered) == 400);
static_assert(offsetof(GroupSlot, dropped) == 408);
static_assert(offsetof(GroupSlot, expired) == 416);
static_assert(offsetof(GroupSlot, rejected) == 424);
static_assert(offsetof(GroupSlot, nacked) == 432);
static_assert(offsetof(GroupSlot, lease_expired) == 440);
static_assert(offsetof(GroupSlot, dead_letter_position) == 448);
static_assert(offsetof(GroupSlot, dead_letter_sequence) == 456);
static_assert(sizeof(GroupSlot) == 512);

static_assert(offsetof(ConsumerSlot, state) == 0);
static_assert(offsetof(ConsumerSlot, prefetch) == 4);
static_assert(offsetof(ConsumerSlot, pid) == 8);
static_assert(offsetof(ConsumerSlot, start_time) == 16);
static_assert(offsetof(ConsumerSlot, in_flight) == 24);
static_assert(offsetof(ConsumerSlot, reserved) == 28);
static_assert(offsetof(ConsumerSlot, delivered) == 32);
static_assert(offsetof(ConsumerSlot, acked) == 40);
static_assert(offsetof(ConsumerSlot, pid_ns) == 48);
static_assert(offsetof(ConsumerSlot, held_since_ns) == 56);
static_assert(offsetof(ConsumerSlot, lease_revoked_ns) == 64);
static_assert(sizeof(ConsumerSlot) == 128);

// Limits checked on create and on every open.
inline constexpr std::uint64_t kMinCapacity = 4096;
inline constexpr std::uint64_t kMaxCapacity = std::uint64_t{1} << 40;
inline constexpr std::uint32_t kMaxProducers = 255;
inline constexpr std::uint32_t kMaxGroups = 64;
inline constexpr std::uint32_t kMaxConsumers = kOwnerMask + 1;

// Lock bytes: each entry's byte in the segment file's lock space
// (shm/liveness.hpp), far past any segment's end, so no lock ever covers
// data (not that it would matter: these are advisory). The daemon's first,
// then one per producer entry, then one per possible consumer entry.
inline constexpr std::int64_t kLockBytesStart = std::int64_t{1} << 60;
inline constexpr std::int64_t kDaemonLockByte = kLockBytesStart;
inline constexpr std::int64_t kProducerLockBytes = kDaemonLockByte + 1;
inline constexpr std::int64_t kConsumerLockBytes = kProducerLockBytes + kMaxProducers;

// Where each table starts, computed from the creation parameters alone, so
// an open can check the stored offsets against them.
struct Geometry {
  std::uint64_t producers_offset, groups_offset, consumers_offset, states_offset, deliveries_offset, ring_offset,
      segment_bytes, chunks;
};

constexpr Geometry geometry(std::uint64_t capacity, std::uint32_t producers, std::uint32_t groups,
                            std::uint32_t consumers) {
  Geometry g{};
  g.chunks = capacity / kRecordAlign;
  g.producers_offset = sizeof(QueueHeader);
  g.groups_offset = g.producers_offset + sizeof(ProducerSlot) * producers;
  g.consumers_offset = g.groups_offset + sizeof(GroupSlot) * groups;
  g.states_offset = align_up(g.consumers_offset + sizeof(ConsumerSlot) * groups * consumers, 4096);
  g.deliveries_offset = g.states_offset + 8 * g.chunks * groups;
  g.ring_offset = align_up(g.deliveries_offset + 8 * g.chunks * groups, 4096);
  g.segment_bytes = g.ring_offset + capacity;
  return g;
}

}  // namespace shmq::layout
