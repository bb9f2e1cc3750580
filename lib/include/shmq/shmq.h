/* shmq's C API: plain C11, for C programs and every other language's FFI.
 *
 * A thin layer over the C++ API (shmq/queue.hpp, producer.hpp, consumer.hpp),
 * with its promises: read those headers for what each call guarantees. Here:
 *
 * - Every function returns a shmq_status_t (or a plain value that cannot
 *   fail). SHMQ_OK is 0. No C++ exception ever crosses this boundary.
 * - Handles are opaque and made by the library: shmq_queue_t, shmq_producer_t,
 *   shmq_consumer_t; each is freed by its *_close function (NULL is fine).
 *   A producer or consumer keeps its queue's mapping alive by itself: the
 *   queue handle may be closed first.
 * - What the library allocates for the caller (shmq_queue_info_t,
 *   shmq_name_list_t) the library frees: shmq_queue_info_free,
 *   shmq_name_list_free. Nothing is to be freed with free().
 * - A call that fails in set-up (create, open, attach, join, info, and any
 *   call given a NULL or out-of-range argument) leaves a message saying
 *   exactly what is wrong in shmq_last_error(), per thread. The data path
 *   (send, receive, ack) only returns its status, as fast as the C++ API.
 * - One thread at a time may use a producer or a consumer; a queue handle may
 *   be shared by threads.
 * - Timeouts are in nanoseconds: SHMQ_FOREVER (any negative value) waits as
 *   long as it takes, 0 does not wait.
 * - Names (queue, group, producer, namespace) are NUL-terminated, 1..63
 *   characters of [A-Za-z0-9._-]; a NULL namespace means $SHMQ_NAMESPACE,
 *   else "default".
 *
 * ABI: libshmq.so.<major> keeps these structs and functions as they are;
 * options structs carry reserved words (zeroed by their *_init function) so
 * that a later minor version can add options without changing their size.
 * Structs the library allocates (shmq_queue_info_t) may grow at their end.
 */
#ifndef SHMQ_SHMQ_H
#define SHMQ_SHMQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define SHMQ_C_API __attribute__((visibility("default")))
#else
#define SHMQ_C_API
#endif

/* The enums are int-sized in C. C++ sees them with `int` as their fixed
 * underlying type, so that any int a C caller stores in one is a value the
 * library may read (outside the enumerators, a C++ enum without one is
 * undefined behaviour) and is refused as SHMQ_INVALID_ARGUMENT. */
#ifdef __cplusplus
#define SHMQ_ENUM(name) enum name : int
#else
#define SHMQ_ENUM(name) enum name
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status ------------------------------------------------------------ */

/* The codes of shmq::Status (the data path: 0..99) and shmq::Errc (set-up:
 * 100 + its value), and two of the C API's own. */
typedef SHMQ_ENUM(shmq_status) {
  SHMQ_OK = 0,
  SHMQ_EMPTY = 1,              /* nothing to receive */
  SHMQ_FULL = 2,               /* no room in the ring: every group still holds the space */
  SHMQ_DUPLICATE = 3,          /* the sequence is not above the producer's last committed one */
  SHMQ_TIMEOUT = 4,            /* a blocking call reached its deadline */
  SHMQ_TOO_LARGE = 5,          /* the payload is larger than the queue's max message size */
  SHMQ_IN_FLIGHT_LIMIT = 6,    /* the consumer holds `prefetch` unacknowledged messages */
  SHMQ_NOT_IN_FLIGHT = 7,      /* ack of a message this consumer does not hold */
  SHMQ_CORRUPT = 8,            /* the segment holds something impossible (a bug or a hostile peer) */
  SHMQ_NOT_DURABLE = 9,        /* a durable confirm asked of a queue that is not durable */
  SHMQ_JOURNAL_UNREADABLE = 10, /* the group reads the journal, which cannot be read */
  SHMQ_DELETED = 11,           /* a blocking call found the queue deleted: nothing more comes */
  SHMQ_LEASE_EXPIRED = 12,     /* ack, nack or reject of a message held past the queue's ack timeout: it went
                                * back to the group, and another member may hold it now */

  SHMQ_INVALID_NAME = 100,     /* a name outside [A-Za-z0-9._-]{1,63} */
  SHMQ_INVALID_ARGUMENT = 101, /* a size or option out of range, a NULL handle or pointer */
  SHMQ_NOT_FOUND = 102,        /* no such queue (or group, for shmq_queue_delete_group) */
  SHMQ_ALREADY_EXISTS = 103,   /* create of a queue that exists */
  SHMQ_PERMISSION_DENIED = 104, /* the segment's mode denies this user */
  SHMQ_NOT_READY = 105,        /* the creator has not finished initialising the segment */
  SHMQ_INCOMPATIBLE = 106,     /* another layout version, or not an shmq segment at all */
  SHMQ_CORRUPT_HEADER = 107,   /* a segment header whose sizes or offsets do not add up */
  SHMQ_WRONG_NAMESPACE = 108,  /* the segment was created for another namespace or name */
  SHMQ_TABLE_FULL = 109,       /* no free producer, group or consumer entry */
  SHMQ_NAME_IN_USE = 110,      /* a live producer already attached under this name */
  SHMQ_NO_SPACE = 111,         /* the shm directory cannot hold the segment */
  SHMQ_NEEDS_REBUILD = 112,    /* a durable queue whose journal exists: shmqd rebuilds it */
  SHMQ_SYSTEM = 113,           /* any other failing system call (errno in shmq_last_error) */

  SHMQ_NO_MEMORY = 200,        /* an allocation failed */
  SHMQ_INTERNAL = 201          /* anything else the C++ library threw (shmq_last_error says what) */
} shmq_status_t;

/* A short English name of the code ("ok", "full", "not found", ...); never NULL. */
SHMQ_C_API const char* shmq_status_str(shmq_status_t status);

/* The message of this thread's last failing set-up call ("" when none): what
 * is wrong, with the names involved. Valid until this thread's next call. */
SHMQ_C_API const char* shmq_last_error(void);

/* The library's version, "MAJOR.MINOR.PATCH" (SHMQ_VERSION_STRING). */
SHMQ_C_API const char* shmq_version(void);

#define SHMQ_FOREVER ((int64_t)-1)

/* ---- Queues ------------------------------------------------------------- */

typedef struct shmq_queue shmq_queue_t;

/* What a queue does with messages its consumers do not ack (shmq::DeliveryPolicy,
 * docs/design.md "Delivery policy"): a delivery limit, a dead-letter queue, an
 * ack deadline and a time to live. Set at creation, kept for the queue's life. */
typedef struct shmq_delivery_policy {
  uint32_t max_deliveries;  /* a message delivered this many times to a group and not acked is dead-lettered
                             * (reason max-deliveries); 1..SHMQ_MAX_DELIVERIES_LIMIT; 0 (default): no limit */
  const char* dead_letter;  /* where dead letters go: an existing queue of the same namespace, not this one nor
                             * one whose dead letters lead back here, whose max_message is at least this
                             * queue's + SHMQ_DEAD_LETTER_OVERHEAD (the origin a dead letter carries);
                             * read during the create call only.
                             * NULL or "" (default): none, dead letters are dropped (counted) */
  int64_t ack_timeout_ns;   /* a message held longer by a member goes back to its group, and that member's
                             * ack gets SHMQ_LEASE_EXPIRED; competing groups only. 0 (default): none */
  int64_t ttl_ns;           /* a message older than this (by its timestamp) when a group would deliver it is
                             * dead-lettered instead (reason expired). 0 (default): none */
  uint64_t reserved[4];     /* zero (others are refused: SHMQ_INVALID_ARGUMENT) */
} shmq_delivery_policy_t;

/* The most max_deliveries may be: a delivery count saturates one above it. */
#define SHMQ_MAX_DELIVERIES_LIMIT 254u
/* What a dead letter's origin adds to its payload, at most: a dead-letter
 * queue's max_message must exceed its origins' by this many bytes. */
#define SHMQ_DEAD_LETTER_OVERHEAD 237u

/* Fills the defaults above: no policy. */
SHMQ_C_API void shmq_delivery_policy_init(shmq_delivery_policy_t* policy);

typedef struct shmq_queue_options {
  uint64_t capacity;      /* ring bytes; a power of two, 4 KiB .. 1 TiB (default 1 MiB) */
  uint32_t max_message;   /* largest payload; with its 32-byte header at most capacity / 4 (default 64 KiB) */
  bool durable;           /* journaled by shmqd (default false) */
  uint32_t mode;          /* segment file mode (default 0600) */
  uint32_t max_producers; /* producer table entries, 1..255 (default 64) */
  uint32_t max_groups;    /* consumer group entries, 1..64 (default 16) */
  uint32_t max_consumers; /* consumers per group, 1..64 (default 16) */
  int64_t group;          /* the segment file's group id; SHMQ_NO_GROUP (default): the creator's.
                           * The creator must belong to it (or be root): else SHMQ_PERMISSION_DENIED.
                           * From shmq_queue_get_options: the file's group. */
  const shmq_delivery_policy_t* policy; /* NULL (default): none. Read during the create call only.
                           * From shmq_queue_get_options: the queue's, never NULL, owned by the
                           * queue handle (valid while it is open; its dead_letter "" when none). */
  uint64_t reserved[2];   /* zero (others are refused: SHMQ_INVALID_ARGUMENT) */
} shmq_queue_options_t;

/* shmq_queue_options_t.group: keep the creator's group. */
#define SHMQ_NO_GROUP ((int64_t)-1)

/* Fills the defaults above. */
SHMQ_C_API void shmq_queue_options_init(shmq_queue_options_t* options);

/* options: NULL for the defaults. SHMQ_NEEDS_REBUILD for a durable queue whose
 * journal exists (start shmqd: it rebuilds the queue). */
SHMQ_C_API shmq_status_t shmq_queue_create(const char* name, const shmq_queue_options_t* options,
                                           const char* ns, shmq_queue_t** out);
SHMQ_C_API shmq_status_t shmq_queue_open(const char* name, const char* ns, shmq_queue_t** out);
/* Read-only (for monitors): producers and consumers cannot be made from it. */
SHMQ_C_API shmq_status_t shmq_queue_open_read_only(const char* name, const char* ns, shmq_queue_t** out);
/* Opens the queue; creates it when it does not exist; when it must be rebuilt
 * from its journal first, waits up to wait_for_rebuild_ms for shmqd
 * (negative: as long as it takes), then SHMQ_NEEDS_REBUILD. */
SHMQ_C_API shmq_status_t shmq_queue_open_or_create(const char* name, const shmq_queue_options_t* options,
                                                   const char* ns, int64_t wait_for_rebuild_ms,
                                                   shmq_queue_t** out);
/* Unlinks the segment. *existed (may be NULL): whether it existed. */
SHMQ_C_API shmq_status_t shmq_queue_remove(const char* name, const char* ns, bool* existed);
SHMQ_C_API void shmq_queue_close(shmq_queue_t* queue);

/* The queue's name and namespace, valid while the handle is open. */
SHMQ_C_API const char* shmq_queue_name(const shmq_queue_t* queue);
SHMQ_C_API const char* shmq_queue_namespace(const shmq_queue_t* queue);
/* The options the queue was created with (its own, for an opened queue). */
SHMQ_C_API shmq_status_t shmq_queue_get_options(const shmq_queue_t* queue, shmq_queue_options_t* out);
/* Whether the queue was deleted since this handle opened it (two system calls). */
SHMQ_C_API bool shmq_queue_deleted(const shmq_queue_t* queue);
/* Removes a consumer group, releasing what it held. SHMQ_NOT_FOUND when none. */
SHMQ_C_API shmq_status_t shmq_queue_delete_group(shmq_queue_t* queue, const char* group);
/* The name of producer entry `producer_id` into buf (NUL-terminated, cut to
 * size - 1; buf may be NULL when size is 0, to ask the length); *length (may
 * be NULL): its full length, 0 when the entry is free. An id beyond the
 * table (max_producers): SHMQ_INVALID_ARGUMENT. */
SHMQ_C_API shmq_status_t shmq_queue_producer_name(const shmq_queue_t* queue, uint32_t producer_id, char* buf,
                                                  size_t size, size_t* length);
/* What a queue of `options` takes of the shm directory, in bytes. */
SHMQ_C_API shmq_status_t shmq_segment_bytes(const shmq_queue_options_t* options, uint64_t* out);

/* The directory every segment lives in ($SHMQ_SHM_DIR, else /dev/shm) into
 * buf (NUL-terminated, cut to size - 1; buf may be NULL when size is 0, to ask
 * the length); *length (may be NULL): its full length. SHMQ_INVALID_ARGUMENT
 * when it is not an absolute path, does not exist or is not a directory. */
SHMQ_C_API shmq_status_t shmq_shm_dir(char* buf, size_t size, size_t* length);

/* The pid of the namespace's running shmqd into *pid, 0 when none runs. */
SHMQ_C_API shmq_status_t shmq_daemon_pid(const char* ns, int64_t* pid);

/* Where the namespace's shmqd keeps its data (durable queues' journals, its
 * errors.log): the directory a running shmqd recorded, else $SHMQ_DATA_DIR,
 * else the last shmqd's since boot, else the default (daemon_data_dir in
 * shmq/queue.hpp). Into buf as shmq_shm_dir does. */
SHMQ_C_API shmq_status_t shmq_daemon_data_dir(const char* ns, char* buf, size_t size, size_t* length);

/* Names of the queues in a namespace; free with shmq_name_list_free. */
typedef struct shmq_name_list {
  size_t count;
  const char* const* names;
} shmq_name_list_t;

SHMQ_C_API shmq_status_t shmq_queue_list(const char* ns, shmq_name_list_t** out);
SHMQ_C_API void shmq_name_list_free(shmq_name_list_t* list);

/* ---- Queue info: the figures shmq-stat shows (shmq::QueueInfo) ----------- */

typedef struct shmq_producer_info {
  uint32_t id;
  const char* name;
  int64_t pid;
  bool attached;            /* a process holds the entry */
  bool alive;               /* that process still runs */
  uint64_t last_sequence;
  uint64_t messages;        /* committed by this entry, all incarnations */
  uint64_t bytes;
} shmq_producer_info_t;

typedef struct shmq_consumer_info {
  uint32_t index;
  int64_t pid;
  bool alive;
  uint32_t in_flight;
  uint64_t received;
  uint64_t acked;
} shmq_consumer_info_t;

typedef struct shmq_group_info {
  const char* name;
  uint64_t read_position;   /* next position handed out */
  bool reading_journal;     /* durable: the group reads the journal */
  uint64_t acked_position;  /* everything below is acknowledged */
  uint64_t lag_bytes;
  uint64_t lag_messages;
  uint64_t in_flight;
  uint64_t delivered;
  uint64_t acked;
  uint64_t redelivered;
  size_t consumer_count;
  const shmq_consumer_info_t* consumers;
} shmq_group_info_t;

/* A group's figures that came after shmq_group_info_t's layout was fixed (an
 * array's elements keep their size): shmq_queue_info_t.groups_ext[i] is
 * groups[i]'s. */
typedef struct shmq_group_info_ext {
  bool exclusive;               /* one active member reads at a time, the others stand by */
  const bool* consumer_active;  /* consumer_count entries: whether consumers[j] reads (always, in a
                                 * competing group; in an exclusive one, the active member only) */
} shmq_group_info_ext_t;

/* A group's delivery-policy figures (shmq_delivery_policy_t), all since the
 * group's creation: shmq_queue_info_t.groups_delivery[i] is groups[i]'s. Its
 * reserved words (zero) leave room for later figures in the same array. */
typedef struct shmq_group_delivery_info {
  uint64_t dead_lettered;   /* moved to the dead-letter queue (any reason) */
  uint64_t dropped;         /* would have been dead-lettered, but the queue has no dead-letter queue */
  uint64_t expired;         /* past the ttl when due (dead-lettered or dropped) */
  uint64_t rejected;        /* by shmq_consumer_reject (dead-lettered or dropped) */
  uint64_t nacked;          /* given back by shmq_consumer_nack */
  uint64_t lease_expired;   /* taken back from a member past the ack timeout */
  uint64_t reserved[4];
} shmq_group_delivery_info_t;

typedef SHMQ_ENUM(shmq_journal_trouble) {
  SHMQ_JOURNAL_OK = 0,
  SHMQ_JOURNAL_SETUP_FAILING = 1, /* shmqd cannot open the journal (a full disk): it retries */
  SHMQ_JOURNAL_CONFLICT = 2       /* the segment is not the queue its journal holds */
} shmq_journal_trouble_t;

typedef struct shmq_queue_info {
  const char* name;
  const char* ns;
  uint64_t capacity;
  uint32_t max_message;
  bool durable;
  uint32_t mode;
  int64_t creator_pid;
  uint64_t created_unix_ns;
  uint64_t head_position;   /* oldest retained position */
  uint64_t tail_position;   /* next position a producer claims */
  uint64_t bytes_in_use;
  uint64_t messages_in_use;
  uint64_t messages_total;  /* ever committed */
  uint64_t journal_written;
  uint64_t journal_synced;
  int32_t journal_error;    /* errno of the journal's failing write or sync; 0 when fine */
  shmq_journal_trouble_t journal_trouble;
  uint64_t groups_to_journal;
  uint64_t holes_skipped;
  uint64_t redelivered;
  uint64_t clients_reaped;
  int64_t daemon_pid;
  bool daemon_alive;
  size_t producer_count;
  const shmq_producer_info_t* producers;
  size_t group_count;
  const shmq_group_info_t* groups;
  uint32_t uid;             /* the segment file's owner and group */
  uint32_t gid;
  uint64_t daemon_pid_namespace; /* inode of daemon_pid's pid namespace (/proc/<pid>/ns/pid) */
  const shmq_group_info_ext_t* groups_ext; /* group_count entries: groups[i]'s later figures */
  const shmq_group_delivery_info_t* groups_delivery; /* group_count entries: groups[i]'s policy figures */
  shmq_delivery_policy_t policy; /* the queue's (its dead_letter "" when none, owned by the snapshot) */
} shmq_queue_info_t;

/* A snapshot; free with shmq_queue_info_free. */
SHMQ_C_API shmq_status_t shmq_queue_info(const shmq_queue_t* queue, shmq_queue_info_t** out);
SHMQ_C_API void shmq_queue_info_free(shmq_queue_info_t* info);

/* ---- Producers ---------------------------------------------------------- */

typedef struct shmq_producer shmq_producer_t;

typedef struct shmq_producer_options {
  uint32_t wait_spin;       /* polls before a blocked call sleeps (default 4000; 0 sleeps at once) */
  bool precise_timestamps;  /* CLOCK_REALTIME instead of its coarse tick (default false) */
  uint64_t reserved[4];     /* zero (others are refused: SHMQ_INVALID_ARGUMENT) */
} shmq_producer_options_t;

SHMQ_C_API void shmq_producer_options_init(shmq_producer_options_t* options);

typedef SHMQ_ENUM(shmq_confirm) {
  SHMQ_CONFIRM_SHARED = 0,  /* committed in shared memory: survives any process's crash */
  SHMQ_CONFIRM_DURABLE = 1  /* durable queues: also synced to disk by shmqd */
} shmq_confirm_t;

/* Attaches under `name`, resuming its sequence. options: NULL for the defaults.
 * SHMQ_NAME_IN_USE while a live producer holds the name. */
SHMQ_C_API shmq_status_t shmq_producer_attach(shmq_queue_t* queue, const char* name,
                                              const shmq_producer_options_t* options, shmq_producer_t** out);
/* Detaches (aborting an open claim). */
SHMQ_C_API void shmq_producer_close(shmq_producer_t* producer);

SHMQ_C_API uint32_t shmq_producer_id(const shmq_producer_t* producer);
/* The last sequence the queue committed from this name. */
SHMQ_C_API uint64_t shmq_producer_last_sequence(const shmq_producer_t* producer);
/* Log position of the last record this handle committed. */
SHMQ_C_API uint64_t shmq_producer_last_position(const shmq_producer_t* producer);

/* Sends with the next sequence; *sequence (may be NULL): the one it got. */
SHMQ_C_API shmq_status_t shmq_producer_try_send(shmq_producer_t* producer, const void* data, size_t size,
                                                uint64_t* sequence);
SHMQ_C_API shmq_status_t shmq_producer_send(shmq_producer_t* producer, const void* data, size_t size,
                                            int64_t timeout_ns, uint64_t* sequence);
/* A batch: sends the first of `count` payloads with the next sequences,
 * claiming ring space for all of them with one move of the tail (as many as
 * fit in the room left). *sent (may be NULL): how many were sent. Returns
 * SHMQ_OK when all were, else why the next was not (SHMQ_FULL, SHMQ_TOO_LARGE;
 * the timed one SHMQ_TIMEOUT when not even the first found room in time). */
typedef struct shmq_payload {
  const void* data;
  size_t size;
} shmq_payload_t;
SHMQ_C_API shmq_status_t shmq_producer_try_send_batch(shmq_producer_t* producer, const shmq_payload_t* payloads,
                                                      size_t count, size_t* sent);
SHMQ_C_API shmq_status_t shmq_producer_send_batch(shmq_producer_t* producer, const shmq_payload_t* payloads,
                                                  size_t count, int64_t timeout_ns, size_t* sent);
/* Explicit sequence: SHMQ_DUPLICATE (nothing enqueued) unless it is above
 * shmq_producer_last_sequence. */
SHMQ_C_API shmq_status_t shmq_producer_try_send_seq(shmq_producer_t* producer, uint64_t sequence,
                                                    const void* data, size_t size);
SHMQ_C_API shmq_status_t shmq_producer_send_seq(shmq_producer_t* producer, uint64_t sequence, const void* data,
                                                size_t size, int64_t timeout_ns);
/* With a choice of confirmation. sequence: 0 for the next one, else explicit.
 * *sent_sequence (may be NULL): the sequence committed, 0 when none was.
 * SHMQ_CONFIRM_DURABLE on a queue that is not durable: SHMQ_NOT_DURABLE.
 * SHMQ_TIMEOUT with *sent_sequence not 0: committed but not yet synced by
 * the journal (shmqd not running, or its disk full): the message is in the
 * queue, its durability unconfirmed; shmq_producer_wait_durable confirms it,
 * and a resend of that sequence gets SHMQ_DUPLICATE. */
SHMQ_C_API shmq_status_t shmq_producer_send_confirm(shmq_producer_t* producer, uint64_t sequence,
                                                    const void* data, size_t size, shmq_confirm_t confirm,
                                                    int64_t timeout_ns, uint64_t* sent_sequence);
/* Durable queues: waits until every record committed under this producer's
 * name is synced to disk. SHMQ_NOT_DURABLE, SHMQ_TIMEOUT. */
SHMQ_C_API shmq_status_t shmq_producer_wait_durable(shmq_producer_t* producer, int64_t timeout_ns);

/* Zero copy: claim room for `size` bytes, write them at *buffer, then commit.
 * One claim at a time (a new claim aborts an open one). sequence: 0 for the
 * next one. If the process dies before the commit, the claim becomes a
 * skipped record and the sequence is not counted as sent. */
SHMQ_C_API shmq_status_t shmq_producer_try_claim(shmq_producer_t* producer, uint64_t sequence, size_t size,
                                                 void** buffer);
SHMQ_C_API shmq_status_t shmq_producer_claim(shmq_producer_t* producer, size_t size, int64_t timeout_ns,
                                             void** buffer);
/* Zero-copy batch: claims room for the first of `count` records, record i
 * of sizes[i] payload bytes, with the next sequences and one move of the
 * tail: as many as fit in one stretch before the ring's end and in the room
 * left (a new claim aborts an open one). *claimed (may be NULL): how many.
 * SHMQ_OK whenever some were claimed (claim the rest after the commit), and
 * for count 0 (sizes may then be NULL); else, none claimed, SHMQ_FULL (no
 * room for the first; the timed one waits for it, then SHMQ_TIMEOUT) or
 * SHMQ_TOO_LARGE (the first exceeds max_message). Write record i at
 * shmq_producer_claimed(producer, i, ...), then shmq_producer_commit commits
 * them all, in order, or shmq_producer_abort skips them all. If the process
 * dies before the commit, none of them is counted as sent. */
SHMQ_C_API shmq_status_t shmq_producer_try_claim_batch(shmq_producer_t* producer, const size_t* sizes,
                                                       size_t count, size_t* claimed);
SHMQ_C_API shmq_status_t shmq_producer_claim_batch(shmq_producer_t* producer, const size_t* sizes, size_t count,
                                                   int64_t timeout_ns, size_t* claimed);
/* Records in the open claim: 1 for a single claim, 0 when none is open. */
SHMQ_C_API size_t shmq_producer_claimed_count(const shmq_producer_t* producer);
/* Where record `index` of the open claim is to be written: *buffer and *size
 * (each may be NULL). Index 0 of a single claim is its buffer. An index at or
 * past shmq_producer_claimed_count: SHMQ_INVALID_ARGUMENT, *buffer NULL and
 * *size 0. */
SHMQ_C_API shmq_status_t shmq_producer_claimed(shmq_producer_t* producer, size_t index, void** buffer,
                                               size_t* size);
/* Commits the open claim, all of a batch's records in order; *position (may
 * be NULL): the (last) record's log position. SHMQ_INVALID_ARGUMENT when
 * nothing is claimed. */
SHMQ_C_API shmq_status_t shmq_producer_commit(shmq_producer_t* producer, uint64_t* position);
/* Turns the open claim (if any, all of a batch) into a skipped record. */
SHMQ_C_API void shmq_producer_abort(shmq_producer_t* producer);

/* ---- Consumers ---------------------------------------------------------- */

typedef struct shmq_consumer shmq_consumer_t;

typedef SHMQ_ENUM(shmq_start) {
  SHMQ_START_OLDEST = 0,   /* the oldest message retained (durable: in the journal) */
  SHMQ_START_NEWEST = 1,   /* only messages sent after the group is created */
  SHMQ_START_POSITION = 2, /* the first record at or after start_position */
  SHMQ_START_TIME = 3      /* the first record sent at or after start_time_ns */
} shmq_start_t;

typedef struct shmq_consumer_options {
  uint32_t prefetch;        /* most unacknowledged messages held at once, 1..65536 (default 256) */
  shmq_start_t start;       /* where a new group starts; ignored when it exists (default oldest) */
  uint64_t start_position;  /* for SHMQ_START_POSITION */
  uint64_t start_time_ns;   /* for SHMQ_START_TIME (CLOCK_REALTIME ns) */
  uint32_t wait_spin;       /* polls before a blocked call sleeps (default 4000) */
  const char* journal_dir;  /* durable queues: the journal's directory; NULL: shmqd's */
  bool exclusive;           /* an exclusive group (default false): one member at a time reads it, in order,
                             * the others stand by and take over when it leaves or dies. Set by the join
                             * that creates the group; a join asking for the other mode: SHMQ_INVALID_ARGUMENT */
  uint64_t reserved[3];     /* zero (others are refused: SHMQ_INVALID_ARGUMENT) */
} shmq_consumer_options_t;

SHMQ_C_API void shmq_consumer_options_init(shmq_consumer_options_t* options);

/* A received message. The payload points into the ring (or a copy, if read
 * from the journal), valid until the message is acked or the consumer closed. */
typedef struct shmq_message {
  const void* payload;
  size_t size;
  uint64_t position;      /* log position: the queue's total order */
  uint64_t sequence;      /* the producer's sequence */
  uint64_t timestamp_ns;  /* CLOCK_REALTIME at send */
  uint32_t producer_id;
  bool redelivered;       /* delivered before: its holder died (or left), nacked it or passed its ack deadline */
  uint16_t deliveries;    /* deliveries of this message to this group, this one included: 1 the first time;
                           * saturates at SHMQ_MAX_DELIVERIES_LIMIT + 1. (It lies in what was the struct's
                           * padding: the struct keeps its size and layout.) */
  const void* internal;   /* libshmq's own: where shmq_message_producer reads the name */
} shmq_message_t;

/* Joins group `group`, creating it (at options->start) when it does not
 * exist. options: NULL for the defaults. */
SHMQ_C_API shmq_status_t shmq_consumer_join(shmq_queue_t* queue, const char* group,
                                            const shmq_consumer_options_t* options, shmq_consumer_t** out);
/* Leaves; what it still holds goes back to the group, redelivered. */
SHMQ_C_API void shmq_consumer_close(shmq_consumer_t* consumer);

SHMQ_C_API bool shmq_consumer_created_group(const shmq_consumer_t* consumer);
SHMQ_C_API uint32_t shmq_consumer_index(const shmq_consumer_t* consumer);
SHMQ_C_API uint32_t shmq_consumer_in_flight(const shmq_consumer_t* consumer);
/* Whether this member reads: always in a competing group; in an exclusive
 * group, while it is the active member (a standby's receive waits for that). */
SHMQ_C_API bool shmq_consumer_active(const shmq_consumer_t* consumer);
/* Why the last receive returned SHMQ_JOURNAL_UNREADABLE ("" otherwise). */
SHMQ_C_API const char* shmq_consumer_journal_error(const shmq_consumer_t* consumer);

SHMQ_C_API shmq_status_t shmq_consumer_try_receive(shmq_consumer_t* consumer, shmq_message_t* out);
SHMQ_C_API shmq_status_t shmq_consumer_receive(shmq_consumer_t* consumer, shmq_message_t* out,
                                               int64_t timeout_ns);
/* Fills up to `max` (at least 1) messages without waiting; *count: how many.
 * SHMQ_OK when it is at least one, else the status of the first try:
 * SHMQ_EMPTY, SHMQ_IN_FLIGHT_LIMIT (the consumer holds `prefetch` already), ... */
SHMQ_C_API shmq_status_t shmq_consumer_try_receive_batch(shmq_consumer_t* consumer, shmq_message_t* out,
                                                         size_t max, size_t* count);
/* Waits up to timeout_ns for the first message (as shmq_consumer_receive),
 * then fills up to `max` as shmq_consumer_try_receive_batch does; *count: how
 * many. SHMQ_OK with at least one, else the first receive's status
 * (SHMQ_TIMEOUT, SHMQ_DELETED, ...). In an exclusive group the active member
 * takes the ring's records of a batch with one cursor update. */
SHMQ_C_API shmq_status_t shmq_consumer_receive_batch(shmq_consumer_t* consumer, shmq_message_t* out, size_t max,
                                                     int64_t timeout_ns, size_t* count);
SHMQ_C_API shmq_status_t shmq_consumer_ack(shmq_consumer_t* consumer, const shmq_message_t* message);
/* Gives a held message back to its group at once: it comes again (to any
 * member), redelivered, before newer messages, and counts a delivery (past
 * the queue's max_deliveries it is dead-lettered instead). SHMQ_OK,
 * SHMQ_NOT_IN_FLIGHT, SHMQ_LEASE_EXPIRED. Its payload is then no longer valid. */
SHMQ_C_API shmq_status_t shmq_consumer_nack(shmq_consumer_t* consumer, const shmq_message_t* message);
/* Sends a held message to the queue's dead-letter queue (reason rejected),
 * or drops it, counted, where the queue has none; exactly once, even if this
 * process dies during the move. SHMQ_OK, SHMQ_NOT_IN_FLIGHT,
 * SHMQ_LEASE_EXPIRED; SHMQ_FULL or SHMQ_TIMEOUT when the dead-letter queue
 * has no room (the message stays held: try again, or nack it). */
SHMQ_C_API shmq_status_t shmq_consumer_reject(shmq_consumer_t* consumer, const shmq_message_t* message);
/* Acks every message this consumer holds at a position <= `position`
 * (UINT64_MAX: all); *count (may be NULL): how many. */
SHMQ_C_API shmq_status_t shmq_consumer_ack_up_to(shmq_consumer_t* consumer, uint64_t position, size_t* count);

/* The name of the message's producer into buf (NUL-terminated, cut to size - 1;
 * buf may be NULL when size is 0); *length (may be NULL): its full length, 0
 * where the queue does not know it.
 * Call it while the message is held: then the name is the sender's. */
SHMQ_C_API shmq_status_t shmq_message_producer(const shmq_message_t* message, char* buf, size_t size,
                                               size_t* length);

/* ---- Dead letters ------------------------------------------------------- */

/* Why a message was dead-lettered (shmq::DeadLetterReason). */
typedef SHMQ_ENUM(shmq_dead_letter_reason) {
  SHMQ_DEAD_LETTER_MAX_DELIVERIES = 0, /* delivered max_deliveries times, never acked */
  SHMQ_DEAD_LETTER_EXPIRED = 1,        /* older than the queue's ttl when due */
  SHMQ_DEAD_LETTER_REJECTED = 2        /* shmq_consumer_reject */
} shmq_dead_letter_reason_t;

/* "max-deliveries", "expired", "rejected" ("unknown" otherwise); never NULL. */
SHMQ_C_API const char* shmq_dead_letter_reason_str(shmq_dead_letter_reason_t reason);

/* Room for a name (63 characters at most) and its NUL. */
#define SHMQ_NAME_BYTES 64

/* Where a message of a dead-letter queue came from. The caller's struct; the
 * library fills every field, its names copied in (NUL-terminated). */
typedef struct shmq_dead_letter {
  const void* payload;      /* the original payload: a view into the message's (which carries the origin
                             * after it), valid as long as the message's payload */
  size_t size;
  char origin_queue[SHMQ_NAME_BYTES];
  char origin_group[SHMQ_NAME_BYTES];
  char origin_producer[SHMQ_NAME_BYTES]; /* its producer's name in the origin queue ("" when unknown) */
  uint64_t origin_sequence;
  uint64_t origin_position;
  uint64_t origin_timestamp_ns;
  shmq_dead_letter_reason_t reason;
  uint32_t deliveries;      /* deliveries to the origin group before it was dead-lettered */
  uint64_t reserved[4];     /* zeroed by the library: room for later fields */
} shmq_dead_letter_t;

/* The origin a dead-lettered message carries into *out (call it while the
 * message is held: it reads the payload). SHMQ_NOT_FOUND (and *out zeroed)
 * for a message that is not a dead letter. */
SHMQ_C_API shmq_status_t shmq_message_dead_letter(const shmq_message_t* message, shmq_dead_letter_t* out);

#ifdef __cplusplus
}
#endif

#endif /* SHMQ_SHMQ_H */
