/* The C API (shmq/shmq.h) from plain C11: every function, its errors, and a
 * message between two real processes. Built twice (tests/capi/CMakeLists.txt):
 * against the static library and against libshmq.so, whose exported symbols
 * must suffice.
 *
 * Each test function runs in a namespace of its own (SHMQ_NAMESPACE set to
 * capi-<pid>-<n>) and removes its queues; a failed check names file:line,
 * removes the namespace's queues and exits 1. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmq/shmq.h>

#ifndef SHMQ_EXPECTED_VERSION
#error "the build passes SHMQ_EXPECTED_VERSION, project(VERSION)"
#endif

/* ---- Checks --------------------------------------------------------------- */

static char current_ns[64];  /* this test's namespace, also $SHMQ_NAMESPACE */
static char data_dir[] = "/tmp/shmq-capi-XXXXXX"; /* $SHMQ_DATA_DIR: private, left empty */

/* Best effort, after a failed check: the namespace's queues go. */
static void remove_namespace_queues(void) {
  shmq_name_list_t* list = NULL;
  if (current_ns[0] == '\0' || shmq_queue_list(current_ns, &list) != SHMQ_OK) return;
  for (size_t i = 0; i < list->count; ++i) (void)shmq_queue_remove(list->names[i], current_ns, NULL);
  shmq_name_list_free(list);
}

static void fail(const char* file, int line, const char* format, ...) {
  const char* last_error = shmq_last_error();
  fprintf(stderr, "%s:%d: FAILED: ", file, line);
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
  fprintf(stderr, " (shmq_last_error: \"%s\")\n", last_error ? last_error : "(null)");
  remove_namespace_queues();
  (void)rmdir(data_dir);
  exit(1);
}

#define CHECK(condition)                                          \
  do {                                                            \
    if (!(condition)) fail(__FILE__, __LINE__, "%s", #condition); \
  } while (0)

#define CHECK_STATUS(call, expected)                                                                     \
  do {                                                                                                   \
    const shmq_status_t got_ = (call);                                                                   \
    const shmq_status_t want_ = (expected);                                                              \
    if (got_ != want_)                                                                                   \
      fail(__FILE__, __LINE__, "%s returned %d (%s), expected %d (%s)", #call, (int)got_,                \
           shmq_status_str(got_), (int)want_, shmq_status_str(want_));                                   \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, SHMQ_OK)

#define CHECK_STR(actual, expected)                                                                      \
  do {                                                                                                   \
    const char* got_ = (actual);                                                                         \
    const char* want_ = (expected);                                                                      \
    if (got_ == NULL || strcmp(got_, want_) != 0)                                                        \
      fail(__FILE__, __LINE__, "%s is \"%s\", expected \"%s\"", #actual, got_ ? got_ : "(null)", want_); \
  } while (0)

/* The last error is set and names `what` (a queue, group or producer name). */
#define CHECK_LAST_ERROR_NAMES(what)                                                             \
  do {                                                                                           \
    const char* message_ = shmq_last_error();                                                    \
    if (message_ == NULL || strstr(message_, (what)) == NULL)                                    \
      fail(__FILE__, __LINE__, "shmq_last_error() \"%s\" does not name \"%s\"",                  \
           message_ ? message_ : "(null)", (what));                                              \
  } while (0)

#define CHECK_LAST_ERROR_SET() CHECK(shmq_last_error() != NULL && shmq_last_error()[0] != '\0')

/* ---- Helpers -------------------------------------------------------------- */

static const int64_t kMillisecond = 1000000;
static const int64_t kSecond = 1000000000;

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A small queue (64 KiB ring, 1 KiB messages) named `name` in this test's namespace. */
static shmq_queue_t* create_small_queue(const char* name) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create(name, &options, NULL, &queue));
  CHECK(queue != NULL);
  return queue;
}

static shmq_producer_t* attach(shmq_queue_t* queue, const char* name) {
  shmq_producer_t* producer = NULL;
  CHECK_OK(shmq_producer_attach(queue, name, NULL, &producer));
  CHECK(producer != NULL);
  return producer;
}

static shmq_consumer_t* join(shmq_queue_t* queue, const char* group) {
  shmq_consumer_t* consumer = NULL;
  CHECK_OK(shmq_consumer_join(queue, group, NULL, &consumer));
  CHECK(consumer != NULL);
  return consumer;
}

static shmq_consumer_t* join_with_prefetch(shmq_queue_t* queue, const char* group, uint32_t prefetch) {
  shmq_consumer_options_t options;
  shmq_consumer_options_init(&options);
  options.prefetch = prefetch;
  shmq_consumer_t* consumer = NULL;
  CHECK_OK(shmq_consumer_join(queue, group, &options, &consumer));
  return consumer;
}

static uint64_t send_text(shmq_producer_t* producer, const char* text) {
  uint64_t sequence = 0;
  CHECK_OK(shmq_producer_try_send(producer, text, strlen(text), &sequence));
  return sequence;
}

/* Whether the message's payload is exactly `text`. */
static int payload_is(const shmq_message_t* m, const char* text) {
  return m->size == strlen(text) && memcmp(m->payload, text, m->size) == 0;
}

static void remove_queue(const char* name) {
  bool existed = false;
  CHECK_OK(shmq_queue_remove(name, NULL, &existed));
  CHECK(existed);
}

static int queue_exists(const char* name) {
  shmq_queue_t* queue = NULL;
  const shmq_status_t status = shmq_queue_open(name, NULL, &queue);
  shmq_queue_close(queue);
  return status == SHMQ_OK;
}

/* ---- Status, version, options ------------------------------------------------ */

static void test_status_str_names_every_code(void) {
  static const shmq_status_t codes[] = {
      SHMQ_OK,          SHMQ_EMPTY,          SHMQ_FULL,           SHMQ_DUPLICATE,
      SHMQ_TIMEOUT,     SHMQ_TOO_LARGE,      SHMQ_IN_FLIGHT_LIMIT, SHMQ_NOT_IN_FLIGHT,
      SHMQ_CORRUPT,     SHMQ_NOT_DURABLE,    SHMQ_JOURNAL_UNREADABLE, SHMQ_DELETED,
      SHMQ_LEASE_EXPIRED,
      SHMQ_INVALID_NAME, SHMQ_INVALID_ARGUMENT, SHMQ_NOT_FOUND,   SHMQ_ALREADY_EXISTS,
      SHMQ_PERMISSION_DENIED, SHMQ_NOT_READY, SHMQ_INCOMPATIBLE,  SHMQ_CORRUPT_HEADER,
      SHMQ_WRONG_NAMESPACE, SHMQ_TABLE_FULL, SHMQ_NAME_IN_USE,    SHMQ_NO_SPACE,
      SHMQ_NEEDS_REBUILD, SHMQ_SYSTEM,       SHMQ_NO_MEMORY,      SHMQ_INTERNAL,
  };
  const size_t count = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < count; ++i) {
    const char* name = shmq_status_str(codes[i]);
    if (name == NULL || name[0] == '\0') fail(__FILE__, __LINE__, "code %d has no name", (int)codes[i]);
    for (size_t j = 0; j < i; ++j) {
      if (strcmp(name, shmq_status_str(codes[j])) == 0)
        fail(__FILE__, __LINE__, "codes %d and %d are both \"%s\"", (int)codes[j], (int)codes[i], name);
    }
  }
  CHECK_STR(shmq_status_str(SHMQ_OK), "ok");
  CHECK_STR(shmq_status_str(SHMQ_FULL), "full");
  CHECK_STR(shmq_status_str(SHMQ_NOT_FOUND), "not found");
  CHECK_STR(shmq_status_str(SHMQ_TIMEOUT), "timeout");
  CHECK_STR(shmq_status_str(SHMQ_LEASE_EXPIRED), "lease expired");
  CHECK(SHMQ_LEASE_EXPIRED == 12); /* shmq::Status::LeaseExpired, after Deleted */
  /* Not a code: still a string, never NULL. */
  CHECK(shmq_status_str((shmq_status_t)999) != NULL);
  CHECK(shmq_status_str((shmq_status_t)-5) != NULL);
}

static void test_version(void) {
  CHECK_STR(shmq_version(), SHMQ_EXPECTED_VERSION);
}

static void test_options_init_fills_the_defaults(void) {
  shmq_queue_options_t queue;
  memset(&queue, 0xab, sizeof queue);
  shmq_queue_options_init(&queue);
  CHECK(queue.capacity == 1u << 20);
  CHECK(queue.max_message == 64u << 10);
  CHECK(!queue.durable);
  CHECK(queue.mode == 0600);
  CHECK(queue.max_producers == 64);
  CHECK(queue.max_groups == 16);
  CHECK(queue.max_consumers == 16);
  CHECK(queue.group == SHMQ_NO_GROUP);
  CHECK(queue.policy == NULL);
  for (int i = 0; i < 2; ++i) CHECK(queue.reserved[i] == 0);

  shmq_delivery_policy_t policy;
  memset(&policy, 0xab, sizeof policy);
  shmq_delivery_policy_init(&policy);
  CHECK(policy.max_deliveries == 0);
  CHECK(policy.dead_letter == NULL);
  CHECK(policy.ack_timeout_ns == 0 && policy.ttl_ns == 0);
  for (int i = 0; i < 4; ++i) CHECK(policy.reserved[i] == 0);
  shmq_delivery_policy_init(NULL);

  shmq_producer_options_t producer;
  memset(&producer, 0xab, sizeof producer);
  shmq_producer_options_init(&producer);
  CHECK(producer.wait_spin == 4000);
  CHECK(!producer.precise_timestamps);
  for (int i = 0; i < 4; ++i) CHECK(producer.reserved[i] == 0);

  shmq_consumer_options_t consumer;
  memset(&consumer, 0xab, sizeof consumer);
  shmq_consumer_options_init(&consumer);
  CHECK(consumer.prefetch == 256);
  CHECK(consumer.start == SHMQ_START_OLDEST);
  CHECK(consumer.start_position == 0);
  CHECK(consumer.start_time_ns == 0);
  CHECK(consumer.wait_spin == 4000);
  CHECK(consumer.journal_dir == NULL);
  CHECK(!consumer.exclusive);
  for (int i = 0; i < 3; ++i) CHECK(consumer.reserved[i] == 0);

  /* NULL: nothing to fill, no crash. */
  shmq_queue_options_init(NULL);
  shmq_producer_options_init(NULL);
  shmq_consumer_options_init(NULL);
}

static void test_last_error_is_empty_before_any_failure(void) {
  /* main runs this first: nothing has failed in this thread yet. */
  CHECK_STR(shmq_last_error(), "");
}

/* shmq_last_error() is per thread: a failure in one leaves another's alone. */
static void* fail_in_a_thread(void* unused) {
  (void)unused;
  shmq_queue_t* queue = NULL;
  const shmq_status_t status = shmq_queue_open("thread-side-name", NULL, &queue);
  const char* message = shmq_last_error();
  const int ok = status == SHMQ_NOT_FOUND && strstr(message, "thread-side-name") != NULL;
  return ok ? (void*)1 : NULL;
}

static void test_last_error_is_per_thread(void) {
  shmq_queue_t* queue = NULL;
  CHECK_STATUS(shmq_queue_open("main-side-name", NULL, &queue), SHMQ_NOT_FOUND);
  CHECK_LAST_ERROR_NAMES("main-side-name");
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, fail_in_a_thread, NULL) == 0);
  void* result = NULL;
  CHECK(pthread_join(thread, &result) == 0);
  CHECK(result == (void*)1);
  CHECK_LAST_ERROR_NAMES("main-side-name");
  CHECK(strstr(shmq_last_error(), "thread-side-name") == NULL);
}

/* ---- Queues ------------------------------------------------------------------ */

static void test_create_open_and_the_options_round_trip(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 2048;
  options.mode = 0640;
  options.max_producers = 8;
  options.max_groups = 4;
  options.max_consumers = 3;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("orders", &options, NULL, &queue));
  CHECK_STR(shmq_queue_name(queue), "orders");
  CHECK_STR(shmq_queue_namespace(queue), current_ns);

  shmq_queue_options_t got;
  memset(&got, 0xab, sizeof got);
  CHECK_OK(shmq_queue_get_options(queue, &got));
  CHECK(got.capacity == options.capacity);
  CHECK(got.max_message == options.max_message);
  CHECK(!got.durable);
  CHECK(got.mode == 0640);
  CHECK(got.max_producers == 8);
  CHECK(got.max_groups == 4);
  CHECK(got.max_consumers == 3);
  CHECK(got.group == (int64_t)getegid()); /* an opened queue reports its file's group */
  for (int i = 0; i < 2; ++i) CHECK(got.reserved[i] == 0);
  /* No delivery policy: still a policy to read, all of it "none". */
  CHECK(got.policy != NULL);
  CHECK(got.policy->max_deliveries == 0 && got.policy->ack_timeout_ns == 0 && got.policy->ttl_ns == 0);
  CHECK_STR(got.policy->dead_letter, "");

  /* A group given: the file has it (our own group, which any user may give). */
  shmq_queue_options_t grouped;
  shmq_queue_options_init(&grouped);
  grouped.group = (int64_t)getegid();
  grouped.mode = 0660;
  shmq_queue_t* grouped_queue = NULL;
  CHECK_OK(shmq_queue_create("grouped", &grouped, NULL, &grouped_queue));
  CHECK_OK(shmq_queue_get_options(grouped_queue, &got));
  CHECK(got.group == (int64_t)getegid() && got.mode == 0660);
  shmq_queue_info_t* grouped_info = NULL;
  CHECK_OK(shmq_queue_info(grouped_queue, &grouped_info));
  CHECK(grouped_info->uid == geteuid() && grouped_info->gid == getegid());
  shmq_queue_info_free(grouped_info);
  shmq_queue_close(grouped_queue);
  CHECK_OK(shmq_queue_remove("grouped", NULL, NULL));

  /* The segment has the mode asked for, and the size shmq_segment_bytes says. */
  char path[256];
  snprintf(path, sizeof path, "/dev/shm/shmq.%s.orders", current_ns);
  struct stat st;
  CHECK(stat(path, &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  uint64_t bytes = 0;
  CHECK_OK(shmq_segment_bytes(&options, &bytes));
  CHECK(bytes == (uint64_t)st.st_size);

  /* Opened, by its namespace given explicitly: the queue's own options. */
  shmq_queue_t* opened = NULL;
  CHECK_OK(shmq_queue_open("orders", current_ns, &opened));
  CHECK_STR(shmq_queue_namespace(opened), current_ns);
  CHECK_OK(shmq_queue_get_options(opened, &got));
  CHECK(got.capacity == options.capacity && got.max_message == 2048 && got.max_consumers == 3);
  shmq_queue_close(opened);

  /* open_or_create of an existing queue: its options, not the caller's. */
  shmq_queue_options_t other;
  shmq_queue_options_init(&other);
  CHECK_OK(shmq_queue_open_or_create("orders", &other, NULL, 0, &opened));
  CHECK_OK(shmq_queue_get_options(opened, &got));
  CHECK(got.capacity == options.capacity && got.max_message == 2048);
  shmq_queue_close(opened);

  /* open_or_create of a new one creates it (NULL options: the defaults). */
  CHECK(!queue_exists("fresh"));
  CHECK_OK(shmq_queue_open_or_create("fresh", NULL, NULL, 1000, &opened));
  CHECK_OK(shmq_queue_get_options(opened, &got));
  CHECK(got.capacity == 1u << 20 && got.max_message == 64u << 10 && got.mode == 0600);
  shmq_queue_close(opened);
  CHECK(queue_exists("fresh"));

  /* Created again: already exists, and the message says which. */
  shmq_queue_t* again = NULL;
  CHECK_STATUS(shmq_queue_create("orders", &options, NULL, &again), SHMQ_ALREADY_EXISTS);
  CHECK_LAST_ERROR_NAMES("orders");

  /* Read-only: figures yes, producers and consumers no. */
  shmq_queue_t* read_only = NULL;
  CHECK_OK(shmq_queue_open_read_only("orders", NULL, &read_only));
  CHECK_OK(shmq_queue_get_options(read_only, &got));
  CHECK(got.max_producers == 8);
  shmq_producer_t* producer = NULL;
  CHECK_STATUS(shmq_producer_attach(read_only, "p", NULL, &producer), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();
  shmq_consumer_t* consumer = NULL;
  CHECK(shmq_consumer_join(read_only, "g", NULL, &consumer) != SHMQ_OK);
  CHECK_LAST_ERROR_SET();
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(read_only, &info));
  CHECK_STR(info->name, "orders");
  shmq_queue_info_free(info);
  shmq_queue_close(read_only);

  shmq_queue_close(queue);
  shmq_queue_close(NULL);
  remove_queue("orders");
  remove_queue("fresh");
}

static void test_missing_queue_is_not_found(void) {
  shmq_queue_t* queue = NULL;
  CHECK_STATUS(shmq_queue_open("nowhere", NULL, &queue), SHMQ_NOT_FOUND);
  CHECK_LAST_ERROR_NAMES("nowhere");
  CHECK_STATUS(shmq_queue_open_read_only("nowhere-ro", NULL, &queue), SHMQ_NOT_FOUND);
  CHECK_LAST_ERROR_NAMES("nowhere-ro");
  bool existed = true;
  CHECK_OK(shmq_queue_remove("nowhere", NULL, &existed));
  CHECK(!existed);
  CHECK_OK(shmq_queue_remove("nowhere", NULL, NULL));
}

static void test_bad_names_are_refused_by_name(void) {
  static const char* const bad[] = {
      "has/slash", "has space", "..", ".", "star*",
      "a-name-of-sixty-four-characters-is-one-too-many-for-a-queue-name",
  };
  CHECK(strlen(bad[5]) == 64);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
    shmq_queue_t* queue = NULL;
    CHECK_STATUS(shmq_queue_create(bad[i], NULL, NULL, &queue), SHMQ_INVALID_NAME);
    CHECK_LAST_ERROR_NAMES(bad[i]);
    CHECK_STATUS(shmq_queue_open(bad[i], NULL, &queue), SHMQ_INVALID_NAME);
    CHECK_LAST_ERROR_NAMES(bad[i]);
    CHECK_STATUS(shmq_queue_open_read_only(bad[i], NULL, &queue), SHMQ_INVALID_NAME);
    CHECK_STATUS(shmq_queue_open_or_create(bad[i], NULL, NULL, 0, &queue), SHMQ_INVALID_NAME);
    CHECK_LAST_ERROR_NAMES(bad[i]);
    CHECK_STATUS(shmq_queue_remove(bad[i], NULL, NULL), SHMQ_INVALID_NAME);
  }
  shmq_queue_t* queue = NULL;
  CHECK_STATUS(shmq_queue_create("", NULL, NULL, &queue), SHMQ_INVALID_NAME);
  CHECK_LAST_ERROR_SET();

  /* A namespace may not hold a '.' (shmq.<ns>.<queue> must stay unambiguous). */
  CHECK_STATUS(shmq_queue_create("fine", NULL, "dotted.ns", &queue), SHMQ_INVALID_NAME);
  CHECK_LAST_ERROR_NAMES("dotted.ns");
  shmq_name_list_t* list = NULL;
  CHECK_STATUS(shmq_queue_list("bad/ns", &list), SHMQ_INVALID_NAME);
  CHECK_LAST_ERROR_NAMES("bad/ns");
  int64_t pid = 99;
  CHECK_STATUS(shmq_daemon_pid("bad/ns", &pid), SHMQ_INVALID_NAME);
  CHECK(pid == 0);
  CHECK_OK(shmq_daemon_pid(NULL, &pid)); /* no shmqd runs in a test's own namespace */
  CHECK(pid == 0);
  CHECK(!queue_exists("fine"));

  /* Producer and group names too. */
  queue = create_small_queue("names");
  shmq_producer_t* producer = NULL;
  CHECK_STATUS(shmq_producer_attach(queue, "bad producer", NULL, &producer), SHMQ_INVALID_NAME);
  CHECK_LAST_ERROR_NAMES("bad producer");
  shmq_consumer_t* consumer = NULL;
  CHECK_STATUS(shmq_consumer_join(queue, "bad/group", NULL, &consumer), SHMQ_INVALID_NAME);
  CHECK_LAST_ERROR_NAMES("bad/group");
  CHECK_STATUS(shmq_queue_delete_group(queue, "bad group"), SHMQ_INVALID_NAME);
  shmq_queue_close(queue);
  remove_queue("names");
}

/* A new option takes a reserved word: the struct keeps its size. */
_Static_assert(sizeof(shmq_queue_options_t) == 64, "shmq_queue_options_t keeps its size");

static void test_out_of_range_options_are_invalid_arguments(void) {
  shmq_queue_t* queue = NULL;
  shmq_queue_options_t options;
  uint64_t bytes = 0;

  shmq_queue_options_init(&options);
  options.group = -2; /* neither a group id nor SHMQ_NO_GROUP */
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();

  shmq_queue_options_init(&options);
  options.capacity = 3000; /* not a power of two */
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();
  CHECK_STATUS(shmq_segment_bytes(&options, &bytes), SHMQ_INVALID_ARGUMENT);

  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = (64 << 10) / 4 + 1; /* above capacity / 4 */
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();

  shmq_queue_options_init(&options);
  options.max_producers = 0;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  options.max_producers = 256;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  shmq_queue_options_init(&options);
  options.max_groups = 65;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  shmq_queue_options_init(&options);
  options.max_consumers = 0;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK(!queue_exists("q"));

  queue = create_small_queue("q");
  shmq_consumer_options_t consumer_options;
  shmq_consumer_t* consumer = NULL;
  shmq_consumer_options_init(&consumer_options);
  consumer_options.prefetch = 0;
  CHECK_STATUS(shmq_consumer_join(queue, "g", &consumer_options, &consumer), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();
  consumer_options.prefetch = 65537;
  CHECK_STATUS(shmq_consumer_join(queue, "g", &consumer_options, &consumer), SHMQ_INVALID_ARGUMENT);
  shmq_consumer_options_init(&consumer_options);
  consumer_options.start = (shmq_start_t)7;
  CHECK_STATUS(shmq_consumer_join(queue, "g", &consumer_options, &consumer), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();

  shmq_producer_t* producer = attach(queue, "p");
  uint64_t sequence = 0;
  CHECK_STATUS(shmq_producer_send_confirm(producer, 0, "x", 1, (shmq_confirm_t)5, 0, &sequence),
               SHMQ_INVALID_ARGUMENT);
  CHECK(shmq_producer_last_sequence(producer) == 0);
  shmq_producer_close(producer);

  /* A producer id beyond the table. */
  char name[64] = "untouched";
  size_t length = 99;
  CHECK_STATUS(shmq_queue_producer_name(queue, 1000, name, sizeof name, &length), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();

  /* Reserved words other than zero (a caller that skipped *_init). */
  shmq_queue_options_t queue_options;
  shmq_queue_options_init(&queue_options);
  queue_options.reserved[1] = 1;
  shmq_queue_t* never = NULL;
  CHECK_STATUS(shmq_queue_create("never", &queue_options, NULL, &never), SHMQ_INVALID_ARGUMENT);
  CHECK(never == NULL);
  shmq_producer_options_t producer_options;
  shmq_producer_options_init(&producer_options);
  producer_options.reserved[0] = 1;
  CHECK_STATUS(shmq_producer_attach(queue, "p", &producer_options, &producer), SHMQ_INVALID_ARGUMENT);
  shmq_consumer_options_init(&consumer_options);
  consumer_options.reserved[1] = 1;
  CHECK_STATUS(shmq_consumer_join(queue, "g", &consumer_options, &consumer), SHMQ_INVALID_ARGUMENT);

  /* A batch of at most 0 messages, a NULL buffer of a size. */
  shmq_message_t message;
  size_t count = 9;
  consumer = join(queue, "g");
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, &message, 0, &count), SHMQ_INVALID_ARGUMENT);
  CHECK_STATUS(shmq_consumer_receive_batch(consumer, &message, 0, 0, &count), SHMQ_INVALID_ARGUMENT);
  CHECK_STATUS(shmq_queue_producer_name(queue, 0, NULL, 8, &length), SHMQ_INVALID_ARGUMENT);
  shmq_consumer_close(consumer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* Every function given a NULL handle or a NULL pointer it needs: an
 * SHMQ_INVALID_ARGUMENT (or a harmless plain value), never a crash. */
static void test_null_handles_and_pointers_are_invalid_arguments(void) {
  const shmq_status_t invalid = SHMQ_INVALID_ARGUMENT;
  shmq_queue_t* queue = NULL;
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);

  CHECK_STATUS(shmq_queue_create(NULL, NULL, NULL, &queue), invalid);
  CHECK_LAST_ERROR_SET();
  CHECK_STATUS(shmq_queue_create("q", NULL, NULL, NULL), invalid);
  CHECK_LAST_ERROR_SET();
  CHECK(!queue_exists("q")); /* nothing created that nobody could close */
  CHECK_STATUS(shmq_queue_open(NULL, NULL, &queue), invalid);
  CHECK_STATUS(shmq_queue_open("q", NULL, NULL), invalid);
  CHECK_STATUS(shmq_queue_open_read_only(NULL, NULL, &queue), invalid);
  CHECK_STATUS(shmq_queue_open_read_only("q", NULL, NULL), invalid);
  CHECK_STATUS(shmq_queue_open_or_create(NULL, NULL, NULL, 0, &queue), invalid);
  CHECK_STATUS(shmq_queue_open_or_create("q", NULL, NULL, 0, NULL), invalid);
  CHECK(!queue_exists("q"));
  CHECK_STATUS(shmq_queue_remove(NULL, NULL, NULL), invalid);
  CHECK_STATUS(shmq_segment_bytes(&options, NULL), invalid);
  CHECK_STATUS(shmq_queue_list(NULL, NULL), invalid);
  CHECK_STATUS(shmq_daemon_pid(NULL, NULL), invalid);
  CHECK_STATUS(shmq_queue_get_options(NULL, &options), invalid);
  CHECK_STATUS(shmq_queue_delete_group(NULL, "g"), invalid);
  char buf[64];
  CHECK_STATUS(shmq_queue_producer_name(NULL, 0, buf, sizeof buf, NULL), invalid);
  shmq_queue_info_t* info = NULL;
  CHECK_STATUS(shmq_queue_info(NULL, &info), invalid);
  CHECK_LAST_ERROR_SET();
  (void)shmq_queue_deleted(NULL);
  (void)shmq_queue_name(NULL);
  (void)shmq_queue_namespace(NULL);
  shmq_queue_close(NULL);
  shmq_queue_info_free(NULL);
  shmq_name_list_free(NULL);

  shmq_producer_t* producer = NULL;
  uint64_t sequence = 0;
  void* claimed = NULL;
  CHECK_STATUS(shmq_producer_attach(NULL, "p", NULL, &producer), invalid);
  CHECK_STATUS(shmq_producer_try_send(NULL, "x", 1, &sequence), invalid);
  CHECK_STATUS(shmq_producer_send(NULL, "x", 1, 0, &sequence), invalid);
  CHECK_STATUS(shmq_producer_try_send_seq(NULL, 1, "x", 1), invalid);
  CHECK_STATUS(shmq_producer_send_seq(NULL, 1, "x", 1, 0), invalid);
  CHECK_STATUS(shmq_producer_send_confirm(NULL, 0, "x", 1, SHMQ_CONFIRM_SHARED, 0, &sequence), invalid);
  CHECK_STATUS(shmq_producer_wait_durable(NULL, 0), invalid);
  CHECK_STATUS(shmq_producer_try_claim(NULL, 0, 1, &claimed), invalid);
  CHECK_STATUS(shmq_producer_claim(NULL, 1, 0, &claimed), invalid);
  CHECK_STATUS(shmq_producer_commit(NULL, NULL), invalid);
  const size_t sizes[] = {1, 2};
  size_t claimed_count = 99;
  CHECK_STATUS(shmq_producer_try_claim_batch(NULL, sizes, 2, &claimed_count), invalid);
  CHECK(claimed_count == 0);
  CHECK_STATUS(shmq_producer_claim_batch(NULL, sizes, 2, 0, &claimed_count), invalid);
  size_t claimed_size = 99;
  CHECK_STATUS(shmq_producer_claimed(NULL, 0, &claimed, &claimed_size), invalid);
  CHECK(claimed == NULL && claimed_size == 0);
  CHECK(shmq_producer_claimed_count(NULL) == 0);
  shmq_producer_abort(NULL);
  CHECK(shmq_producer_id(NULL) == 0);
  CHECK(shmq_producer_last_sequence(NULL) == 0);
  CHECK(shmq_producer_last_position(NULL) == 0);
  shmq_producer_close(NULL);

  shmq_consumer_t* consumer = NULL;
  shmq_message_t message;
  memset(&message, 0, sizeof message);
  size_t count = 0;
  CHECK_STATUS(shmq_consumer_join(NULL, "g", NULL, &consumer), invalid);
  CHECK_STATUS(shmq_consumer_try_receive(NULL, &message), invalid);
  CHECK_STATUS(shmq_consumer_receive(NULL, &message, 0), invalid);
  CHECK_STATUS(shmq_consumer_try_receive_batch(NULL, &message, 1, &count), invalid);
  CHECK_STATUS(shmq_consumer_receive_batch(NULL, &message, 1, 0, &count), invalid);
  CHECK_STATUS(shmq_consumer_ack(NULL, &message), invalid);
  CHECK_STATUS(shmq_consumer_ack_up_to(NULL, UINT64_MAX, &count), invalid);
  CHECK_STATUS(shmq_consumer_nack(NULL, &message), invalid);
  CHECK_STATUS(shmq_consumer_reject(NULL, &message), invalid);
  CHECK(!shmq_consumer_created_group(NULL));
  CHECK(shmq_consumer_index(NULL) == 0);
  CHECK(shmq_consumer_in_flight(NULL) == 0);
  CHECK(!shmq_consumer_active(NULL));
  (void)shmq_consumer_journal_error(NULL);
  shmq_consumer_close(NULL);
  CHECK_STATUS(shmq_message_producer(NULL, buf, sizeof buf, NULL), invalid);
  shmq_dead_letter_t dead_letter;
  CHECK_STATUS(shmq_message_dead_letter(NULL, &dead_letter), invalid);
  CHECK_STATUS(shmq_message_dead_letter(&message, NULL), invalid);
  /* A message never received (zeroed): no sender known, no crash. */
  size_t length = 99;
  CHECK_OK(shmq_message_producer(&message, buf, sizeof buf, &length));
  CHECK(length == 0 && buf[0] == '\0');

  /* Real handles, NULL pointers. */
  queue = create_small_queue("q");
  CHECK_STATUS(shmq_queue_get_options(queue, NULL), invalid);
  CHECK_STATUS(shmq_queue_delete_group(queue, NULL), invalid);
  /* buf NULL with size 0: only the length asked for (none here: entry 0 is free). */
  length = 99;
  CHECK_OK(shmq_queue_producer_name(queue, 0, NULL, 0, &length));
  CHECK(length == 0);
  CHECK_STATUS(shmq_queue_info(queue, NULL), invalid);
  CHECK_STATUS(shmq_producer_attach(queue, NULL, NULL, &producer), invalid);
  CHECK_STATUS(shmq_producer_attach(queue, "p", NULL, NULL), invalid);
  CHECK_STATUS(shmq_consumer_join(queue, NULL, NULL, &consumer), invalid);
  CHECK_STATUS(shmq_consumer_join(queue, "g", NULL, NULL), invalid);

  producer = attach(queue, "p");
  CHECK_STATUS(shmq_producer_try_send(producer, NULL, 5, &sequence), invalid);
  CHECK_STATUS(shmq_producer_send(producer, NULL, 5, 0, &sequence), invalid);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 1, NULL, 5), invalid);
  CHECK_STATUS(shmq_producer_send_seq(producer, 1, NULL, 5, 0), invalid);
  CHECK_STATUS(shmq_producer_send_confirm(producer, 0, NULL, 5, SHMQ_CONFIRM_SHARED, 0, &sequence), invalid);
  CHECK_STATUS(shmq_producer_try_claim(producer, 0, 5, NULL), invalid);
  CHECK_STATUS(shmq_producer_claim(producer, 5, 0, NULL), invalid);
  /* NULL sizes of a count; an index past the open claim's records. */
  CHECK_STATUS(shmq_producer_try_claim_batch(producer, NULL, 2, &claimed_count), invalid);
  CHECK_LAST_ERROR_SET();
  CHECK_STATUS(shmq_producer_claim_batch(producer, NULL, 2, 0, &claimed_count), invalid);
  CHECK(claimed_count == 0 && shmq_producer_claimed_count(producer) == 0);
  CHECK_STATUS(shmq_producer_claimed(producer, 0, &claimed, &claimed_size), invalid);
  CHECK_LAST_ERROR_NAMES("no claim");
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 2, &claimed_count));
  CHECK(claimed_count == 2);
  CHECK_STATUS(shmq_producer_claimed(producer, 2, &claimed, &claimed_size), invalid);
  CHECK_LAST_ERROR_NAMES("record 2 is past the open claim's 2 records");
  CHECK(claimed == NULL && claimed_size == 0);
  CHECK_STATUS(shmq_producer_claimed(producer, SIZE_MAX, &claimed, &claimed_size), invalid);
  shmq_producer_abort(producer);
  CHECK(shmq_producer_last_sequence(producer) == 0); /* none of that sent anything */

  consumer = join(queue, "g");
  CHECK_STATUS(shmq_consumer_try_receive(consumer, NULL), invalid);
  CHECK_STATUS(shmq_consumer_receive(consumer, NULL, 0), invalid);
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, NULL, 4, &count), invalid);
  CHECK_STATUS(shmq_consumer_receive_batch(consumer, NULL, 4, 0, &count), invalid);
  CHECK_STATUS(shmq_consumer_ack(consumer, NULL), invalid);
  CHECK_STATUS(shmq_consumer_nack(consumer, NULL), invalid);
  CHECK_STATUS(shmq_consumer_reject(consumer, NULL), invalid);

  /* The optional outputs really are optional. */
  CHECK_OK(shmq_producer_try_send(producer, "one", 3, NULL));
  CHECK_OK(shmq_producer_send(producer, "two", 3, SHMQ_FOREVER, NULL));
  CHECK_OK(shmq_producer_send_confirm(producer, 0, "three", 5, SHMQ_CONFIRM_SHARED, 0, NULL));
  CHECK(shmq_producer_last_sequence(producer) == 3);
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 2, NULL));
  CHECK_OK(shmq_producer_claimed(producer, 1, NULL, &claimed_size));
  CHECK(claimed_size == 2);
  CHECK_OK(shmq_producer_claimed(producer, 1, &claimed, NULL));
  CHECK(claimed != NULL);
  shmq_producer_abort(producer);
  CHECK(shmq_producer_last_sequence(producer) == 3);
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "one"));
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, &message, 1, NULL), invalid);
  CHECK_STATUS(shmq_consumer_receive_batch(consumer, &message, 1, 0, NULL), invalid);
  CHECK_OK(shmq_message_producer(&message, NULL, 0, &length)); /* the length alone */
  CHECK(length == 1);
  CHECK_OK(shmq_message_producer(&message, buf, sizeof buf, NULL));
  CHECK_STR(buf, "p");
  /* An ordinary message is no dead letter: SHMQ_NOT_FOUND, and *out zeroed. */
  memset(&dead_letter, 0xab, sizeof dead_letter);
  CHECK_STATUS(shmq_message_dead_letter(&message, &dead_letter), SHMQ_NOT_FOUND);
  CHECK(dead_letter.payload == NULL && dead_letter.origin_queue[0] == '\0' && dead_letter.deliveries == 0);
  CHECK_OK(shmq_consumer_ack_up_to(consumer, UINT64_MAX, NULL));

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_name_list(void) {
  shmq_name_list_t* list = NULL;
  CHECK_OK(shmq_queue_list(NULL, &list));
  CHECK(list != NULL && list->count == 0);
  shmq_name_list_free(list);

  static const char* const names[] = {"alpha", "beta", "gamma"};
  for (int i = 0; i < 3; ++i) shmq_queue_close(create_small_queue(names[i]));
  /* One more in a namespace of its own, given explicitly: not in this one's list. */
  char other_ns[80];
  snprintf(other_ns, sizeof other_ns, "%s-other", current_ns);
  shmq_queue_t* elsewhere = NULL;
  CHECK_OK(shmq_queue_create("delta", NULL, other_ns, &elsewhere));
  CHECK_STR(shmq_queue_namespace(elsewhere), other_ns);
  shmq_queue_close(elsewhere);

  CHECK_OK(shmq_queue_list(current_ns, &list));
  CHECK(list->count == 3);
  for (int i = 0; i < 3; ++i) {
    int found = 0;
    for (size_t j = 0; j < list->count; ++j) found += strcmp(list->names[j], names[i]) == 0;
    if (found != 1) fail(__FILE__, __LINE__, "\"%s\" listed %d times", names[i], found);
  }
  shmq_name_list_free(list);

  CHECK_OK(shmq_queue_list(other_ns, &list));
  CHECK(list->count == 1);
  CHECK_STR(list->names[0], "delta");
  shmq_name_list_free(list);

  bool existed = false;
  CHECK_OK(shmq_queue_remove("delta", other_ns, &existed));
  CHECK(existed);
  for (int i = 0; i < 3; ++i) remove_queue(names[i]);
  CHECK_OK(shmq_queue_list(NULL, &list));
  CHECK(list->count == 0);
  shmq_name_list_free(list);
}

static void test_segment_bytes(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  uint64_t defaults = 0;
  CHECK_OK(shmq_segment_bytes(&options, &defaults));
  CHECK(defaults > options.capacity);
  options.max_groups = 32;
  uint64_t more_groups = 0;
  CHECK_OK(shmq_segment_bytes(&options, &more_groups));
  CHECK(more_groups >= defaults + 16 * (options.capacity / 8)); /* a state word per chunk per group */
  options.capacity = 1u << 22;
  uint64_t larger = 0;
  CHECK_OK(shmq_segment_bytes(&options, &larger));
  CHECK(larger > more_groups);
}

/* ---- Producers and consumers ---------------------------------------------------- */

static void test_send_receive_ack(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "billing");
  CHECK(shmq_consumer_created_group(consumer));
  CHECK_STR(shmq_consumer_journal_error(consumer), "");
  shmq_consumer_t* second = join(queue, "billing");
  CHECK(!shmq_consumer_created_group(second));
  CHECK(shmq_consumer_index(second) != shmq_consumer_index(consumer));

  shmq_message_t message;
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  shmq_producer_options_t producer_options;
  shmq_producer_options_init(&producer_options);
  producer_options.precise_timestamps = true;
  shmq_producer_t* producer = NULL;
  CHECK_OK(shmq_producer_attach(queue, "web", &producer_options, &producer));
  CHECK(shmq_producer_last_sequence(producer) == 0);
  const uint64_t before = realtime_ns();
  uint64_t sequence = 0;
  CHECK_OK(shmq_producer_try_send(producer, "hello", 5, &sequence));
  CHECK(sequence == 1);
  const uint64_t first_position = shmq_producer_last_position(producer);
  CHECK_OK(shmq_producer_send(producer, "world", 5, kSecond, &sequence));
  CHECK(sequence == 2);
  CHECK_OK(shmq_producer_send(producer, "", 0, SHMQ_FOREVER, &sequence)); /* an empty message */
  CHECK(sequence == 3);
  CHECK_OK(shmq_producer_try_send(producer, NULL, 0, &sequence)); /* NULL with size 0: empty too */
  CHECK(sequence == 4);
  CHECK(shmq_producer_last_sequence(producer) == 4);
  const uint64_t last_position = shmq_producer_last_position(producer);
  CHECK(last_position > first_position);

  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "hello"));
  CHECK(message.sequence == 1);
  CHECK(message.position == first_position);
  CHECK(message.producer_id == shmq_producer_id(producer));
  CHECK(!message.redelivered);
  CHECK(message.timestamp_ns >= before && message.timestamp_ns <= realtime_ns());
  CHECK(shmq_consumer_in_flight(consumer) == 1);

  /* The sender's name, and what a short buffer gets. */
  char name[64];
  size_t length = 0;
  CHECK_OK(shmq_message_producer(&message, name, sizeof name, &length));
  CHECK_STR(name, "web");
  CHECK(length == 3);
  char short_buffer[3];
  CHECK_OK(shmq_message_producer(&message, short_buffer, sizeof short_buffer, &length));
  CHECK_STR(short_buffer, "we");
  CHECK(length == 3);
  CHECK_OK(shmq_message_producer(&message, short_buffer, 1, &length));
  CHECK_STR(short_buffer, "");
  CHECK(length == 3);
  CHECK_OK(shmq_queue_producer_name(queue, message.producer_id, name, sizeof name, &length));
  CHECK_STR(name, "web");
  CHECK(length == 3);

  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK(shmq_consumer_in_flight(consumer) == 0);
  /* Acked twice: not held any more. */
  CHECK_STATUS(shmq_consumer_ack(consumer, &message), SHMQ_NOT_IN_FLIGHT);

  shmq_message_t second_message;
  CHECK_OK(shmq_consumer_try_receive(second, &second_message));
  CHECK(payload_is(&second_message, "world"));
  CHECK(second_message.sequence == 2);
  CHECK(second_message.position > first_position);
  /* The other member of the group holds it, not this one. */
  CHECK_STATUS(shmq_consumer_ack(consumer, &second_message), SHMQ_NOT_IN_FLIGHT);
  CHECK_OK(shmq_consumer_ack(second, &second_message));

  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(message.size == 0 && message.sequence == 3);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(message.size == 0 && message.sequence == 4 && message.position == last_position);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  /* A free producer entry: no name. */
  CHECK_OK(shmq_queue_producer_name(queue, 5, name, sizeof name, &length));
  CHECK(length == 0);
  CHECK_STR(name, "");

  shmq_consumer_close(second);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_explicit_sequences_and_duplicates(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");

  CHECK_OK(shmq_producer_try_send_seq(producer, 10, "ten", 3));
  CHECK(shmq_producer_last_sequence(producer) == 10);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 10, "again", 5), SHMQ_DUPLICATE);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 5, "older", 5), SHMQ_DUPLICATE);
  CHECK_STATUS(shmq_producer_send_seq(producer, 10, "again", 5, kSecond), SHMQ_DUPLICATE);
  CHECK_OK(shmq_producer_send_seq(producer, 11, "eleven", 6, kSecond));
  CHECK(send_text(producer, "twelve") == 12);
  uint64_t sequence = 0;
  CHECK_OK(shmq_producer_send_confirm(producer, 0, "thirteen", 8, SHMQ_CONFIRM_SHARED, kSecond, &sequence));
  CHECK(sequence == 13);
  CHECK_OK(shmq_producer_send_confirm(producer, 20, "twenty", 6, SHMQ_CONFIRM_SHARED, SHMQ_FOREVER, &sequence));
  CHECK(sequence == 20);
  CHECK_STATUS(shmq_producer_send_confirm(producer, 20, "twenty", 6, SHMQ_CONFIRM_SHARED, 0, &sequence),
               SHMQ_DUPLICATE);
  CHECK(sequence == 0); /* none committed */
  CHECK(shmq_producer_last_sequence(producer) == 20);

  /* A second live producer of the name: refused, by name. */
  shmq_producer_t* twin = NULL;
  CHECK_STATUS(shmq_producer_attach(queue, "p", NULL, &twin), SHMQ_NAME_IN_USE);
  CHECK_LAST_ERROR_NAMES("p");

  /* Re-attached, the name resumes its sequence. */
  const uint32_t id = shmq_producer_id(producer);
  shmq_producer_close(producer);
  producer = attach(queue, "p");
  CHECK(shmq_producer_id(producer) == id);
  CHECK(shmq_producer_last_sequence(producer) == 20);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 20, "twenty", 6), SHMQ_DUPLICATE);
  CHECK(send_text(producer, "twenty-one") == 21);

  static const uint64_t expected[] = {10, 11, 12, 13, 20, 21};
  static const char* const texts[] = {"ten", "eleven", "twelve", "thirteen", "twenty", "twenty-one"};
  for (int i = 0; i < 6; ++i) {
    shmq_message_t message;
    CHECK_OK(shmq_consumer_try_receive(consumer, &message));
    CHECK(message.sequence == expected[i]);
    CHECK(payload_is(&message, texts[i]));
    CHECK_OK(shmq_consumer_ack(consumer, &message));
  }
  shmq_message_t message;
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_too_large(void) {
  shmq_queue_t* queue = create_small_queue("q"); /* max_message 1024 */
  shmq_producer_t* producer = attach(queue, "p");
  static char payload[1025];
  memset(payload, 'x', sizeof payload);
  uint64_t sequence = 0;
  CHECK_STATUS(shmq_producer_try_send(producer, payload, 1025, &sequence), SHMQ_TOO_LARGE);
  CHECK_STATUS(shmq_producer_send(producer, payload, 1025, kSecond, &sequence), SHMQ_TOO_LARGE);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 7, payload, 1025), SHMQ_TOO_LARGE);
  CHECK_STATUS(shmq_producer_send_seq(producer, 7, payload, 1025, kSecond), SHMQ_TOO_LARGE);
  CHECK_STATUS(shmq_producer_send_confirm(producer, 0, payload, 1025, SHMQ_CONFIRM_SHARED, 0, &sequence),
               SHMQ_TOO_LARGE);
  void* claimed = NULL;
  CHECK_STATUS(shmq_producer_try_claim(producer, 0, 1025, &claimed), SHMQ_TOO_LARGE);
  CHECK_STATUS(shmq_producer_claim(producer, 1025, kSecond, &claimed), SHMQ_TOO_LARGE);
  CHECK(shmq_producer_last_sequence(producer) == 0);
  CHECK_OK(shmq_producer_try_send(producer, payload, 1024, &sequence));
  CHECK(sequence == 1);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_not_durable(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  uint64_t sequence = 0;
  CHECK_STATUS(shmq_producer_send_confirm(producer, 0, "x", 1, SHMQ_CONFIRM_DURABLE, kSecond, &sequence),
               SHMQ_NOT_DURABLE);
  CHECK_STATUS(shmq_producer_wait_durable(producer, kSecond), SHMQ_NOT_DURABLE);
  CHECK(shmq_producer_last_sequence(producer) == 0); /* nothing sent */
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* A durable queue is created like any other (no journal yet in this test's
 * private SHMQ_DATA_DIR); the rest of durability needs shmqd and lives in its tests. */
static void test_durable_queue_create(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024;
  options.durable = true;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("journaled", &options, NULL, &queue));
  shmq_queue_options_t got;
  CHECK_OK(shmq_queue_get_options(queue, &got));
  CHECK(got.durable);
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK(info->durable);
  shmq_queue_info_free(info);
  shmq_queue_close(queue);
  remove_queue("journaled");
}

static void test_claim_commit_abort(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");

  /* Nothing claimed: commit refuses, abort does nothing. */
  uint64_t position = 0;
  CHECK_STATUS(shmq_producer_commit(producer, &position), SHMQ_INVALID_ARGUMENT);
  shmq_producer_abort(producer);

  void* buffer = NULL;
  CHECK_OK(shmq_producer_try_claim(producer, 0, 5, &buffer));
  CHECK(buffer != NULL);
  memcpy(buffer, "hello", 5);
  CHECK_OK(shmq_producer_commit(producer, &position));
  CHECK(position == shmq_producer_last_position(producer));
  CHECK(shmq_producer_last_sequence(producer) == 1);
  CHECK_STATUS(shmq_producer_commit(producer, NULL), SHMQ_INVALID_ARGUMENT); /* committed already */

  /* Explicit sequence; a duplicate one claims nothing. */
  CHECK_OK(shmq_producer_try_claim(producer, 100, 3, &buffer));
  memcpy(buffer, "hun", 3);
  CHECK_OK(shmq_producer_commit(producer, NULL));
  CHECK(shmq_producer_last_sequence(producer) == 100);
  CHECK_STATUS(shmq_producer_try_claim(producer, 100, 3, &buffer), SHMQ_DUPLICATE);
  CHECK_STATUS(shmq_producer_commit(producer, NULL), SHMQ_INVALID_ARGUMENT);

  /* Aborted: a skipped record, its sequence not counted as sent. */
  CHECK_OK(shmq_producer_claim(producer, 4, kSecond, &buffer));
  memcpy(buffer, "lost", 4);
  shmq_producer_abort(producer);
  CHECK(shmq_producer_last_sequence(producer) == 100);
  CHECK_STATUS(shmq_producer_commit(producer, NULL), SHMQ_INVALID_ARGUMENT);

  /* A new claim aborts the open one. */
  CHECK_OK(shmq_producer_claim(producer, 6, kSecond, &buffer));
  memcpy(buffer, "first!", 6);
  CHECK_OK(shmq_producer_claim(producer, 6, kSecond, &buffer));
  memcpy(buffer, "second", 6);
  uint64_t last = 0;
  CHECK_OK(shmq_producer_commit(producer, &last));
  CHECK(shmq_producer_last_sequence(producer) == 101);

  shmq_message_t message;
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "hello") && message.sequence == 1 && message.position == position);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "hun") && message.sequence == 100);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "second") && message.sequence == 101 && message.position == last);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  /* An empty claim is a claim too. */
  CHECK_OK(shmq_producer_try_claim(producer, 0, 0, &buffer));
  CHECK_OK(shmq_producer_commit(producer, &last));
  CHECK(shmq_producer_last_sequence(producer) == 102);
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(message.size == 0 && message.sequence == 102 && message.position == last);
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  /* Closing a producer with an open claim aborts it. */
  CHECK_OK(shmq_producer_try_claim(producer, 0, 4, &buffer));
  shmq_producer_close(producer);
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  shmq_consumer_close(consumer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* Writes `text` (without its NUL) into record `index` of the open claim, which must be its size. */
static void write_claimed(shmq_producer_t* producer, size_t index, const char* text) {
  void* buffer = NULL;
  size_t size = 99;
  CHECK_OK(shmq_producer_claimed(producer, index, &buffer, &size));
  CHECK(buffer != NULL && size == strlen(text));
  memcpy(buffer, text, size);
}

static void test_claim_batch_commit_abort(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");

  /* Claimed, written in any order, invisible until the commit, then received in order. */
  const char* texts[] = {"first", "", "third!"};
  const size_t sizes[] = {5, 0, 6};
  size_t claimed = 99;
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 3, &claimed));
  CHECK(claimed == 3 && shmq_producer_claimed_count(producer) == 3);
  for (size_t i = 3; i-- > 0;) write_claimed(producer, i, texts[i]);
  shmq_message_t message;
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);
  CHECK(shmq_producer_last_sequence(producer) == 0);
  uint64_t last = 0;
  CHECK_OK(shmq_producer_commit(producer, &last));
  CHECK(last == shmq_producer_last_position(producer));
  CHECK(shmq_producer_last_sequence(producer) == 3 && shmq_producer_claimed_count(producer) == 0);
  CHECK_STATUS(shmq_producer_commit(producer, NULL), SHMQ_INVALID_ARGUMENT); /* committed already */
  for (size_t i = 0; i < 3; ++i) {
    CHECK_OK(shmq_consumer_try_receive(consumer, &message));
    CHECK(payload_is(&message, texts[i]) && message.sequence == i + 1);
    CHECK_OK(shmq_consumer_ack(consumer, &message));
  }
  CHECK(message.position == last);
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  /* The timed form, and a single claim seen through the batch calls. */
  CHECK_OK(shmq_producer_claim_batch(producer, sizes, 1, SHMQ_FOREVER, &claimed));
  CHECK(claimed == 1);
  write_claimed(producer, 0, "fifth");
  CHECK_STATUS(shmq_producer_claim(producer, 4, kSecond, NULL), SHMQ_INVALID_ARGUMENT);
  CHECK(shmq_producer_claimed_count(producer) == 1); /* a refused call leaves the open claim alone */
  CHECK_OK(shmq_producer_commit(producer, NULL));
  void* buffer = NULL;
  CHECK_OK(shmq_producer_try_claim(producer, 0, 4, &buffer));
  CHECK(shmq_producer_claimed_count(producer) == 1);
  void* same = NULL;
  size_t size = 0;
  CHECK_OK(shmq_producer_claimed(producer, 0, &same, &size));
  CHECK(same == buffer && size == 4);
  CHECK_STATUS(shmq_producer_claimed(producer, 1, &same, &size), SHMQ_INVALID_ARGUMENT);
  memcpy(buffer, "six!", 4);
  CHECK_OK(shmq_producer_commit(producer, NULL));
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "fifth") && message.sequence == 4);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "six!") && message.sequence == 5);
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  /* Aborted: skipped whole, no sequence taken. */
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 3, &claimed));
  write_claimed(producer, 0, "lost!");
  shmq_producer_abort(producer);
  CHECK(shmq_producer_claimed_count(producer) == 0 && shmq_producer_last_sequence(producer) == 5);
  CHECK_STATUS(shmq_producer_commit(producer, NULL), SHMQ_INVALID_ARGUMENT);
  /* A new claim aborts an open batch; an empty batch claims nothing, aborting too. */
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 3, &claimed));
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 2, &claimed));
  CHECK(claimed == 2 && shmq_producer_claimed_count(producer) == 2);
  CHECK_OK(shmq_producer_try_claim_batch(producer, NULL, 0, &claimed));
  CHECK(claimed == 0 && shmq_producer_claimed_count(producer) == 0);
  CHECK(shmq_producer_last_sequence(producer) == 5);
  send_text(producer, "after");
  CHECK_OK(shmq_consumer_try_receive(consumer, &message));
  CHECK(payload_is(&message, "after") && message.sequence == 6);
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  /* Closing a producer with an open batch aborts it. */
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 3, &claimed));
  shmq_producer_close(producer);
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);

  shmq_consumer_close(consumer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* Receives and acks `count` messages, checking their sequences follow `first`. */
static void receive_in_order(shmq_consumer_t* consumer, uint64_t first, size_t count) {
  shmq_message_t message;
  for (size_t i = 0; i < count; ++i) {
    CHECK_OK(shmq_consumer_try_receive(consumer, &message));
    CHECK(message.sequence == first + i);
    CHECK_OK(shmq_consumer_ack(consumer, &message));
  }
}

static void test_claim_batch_ring_end_full_too_large(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 4096;
  options.max_message = 900;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("tiny", &options, NULL, &queue));
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");

  /* Too large: the batch ends before it (2 records, 1024 ring bytes); one that starts with it claims nothing. */
  const size_t sizes[] = {8, 900, 901, 8};
  size_t claimed = 0;
  CHECK_OK(shmq_producer_try_claim_batch(producer, sizes, 4, &claimed));
  CHECK(claimed == 2);
  CHECK_OK(shmq_producer_commit(producer, NULL));
  claimed = 99;
  CHECK_STATUS(shmq_producer_try_claim_batch(producer, sizes + 2, 2, &claimed), SHMQ_TOO_LARGE);
  CHECK(claimed == 0 && shmq_producer_claimed_count(producer) == 0);
  CHECK_STATUS(shmq_producer_claim_batch(producer, sizes + 2, 2, kSecond, &claimed), SHMQ_TOO_LARGE);
  CHECK(shmq_producer_last_sequence(producer) == 2);
  receive_in_order(consumer, 1, 2);

  /* 30 records of 8 bytes (64 ring bytes each: a 32-byte header, aligned to 64), received. */
  enum { kRecord = 64 };
  size_t eights[60];
  for (size_t i = 0; i < 60; ++i) eights[i] = 8;
  uint64_t last = 0;
  CHECK_OK(shmq_producer_try_claim_batch(producer, eights, 30, &claimed));
  CHECK(claimed == 30);
  CHECK_OK(shmq_producer_commit(producer, &last));
  receive_in_order(consumer, 3, 30);
  /* The ring's end: those that fit before it, in one stretch, SHMQ_OK; the rest at its start after the commit. */
  const size_t before_end = (options.capacity - ((last + kRecord) & (options.capacity - 1))) / kRecord;
  CHECK(before_end > 0 && before_end < 60);
  CHECK_OK(shmq_producer_try_claim_batch(producer, eights, 60, &claimed));
  CHECK(claimed == before_end);
  CHECK_OK(shmq_producer_commit(producer, NULL));
  CHECK_OK(shmq_producer_try_claim_batch(producer, eights + before_end, 60 - before_end, &claimed));
  CHECK(claimed == 60 - before_end);
  CHECK_OK(shmq_producer_commit(producer, NULL));
  receive_in_order(consumer, 33, 60);
  CHECK(shmq_producer_last_sequence(producer) == 92);

  /* Full: nothing acked, the ring takes what it can, then none (the timed one: SHMQ_TIMEOUT). */
  size_t held = 0;
  shmq_status_t status = SHMQ_OK;
  while ((status = shmq_producer_try_claim_batch(producer, eights, 10, &claimed)) == SHMQ_OK) {
    CHECK(claimed > 0);
    CHECK_OK(shmq_producer_commit(producer, NULL));
    held += claimed;
    CHECK(held <= options.capacity / kRecord);
  }
  CHECK_STATUS(status, SHMQ_FULL);
  CHECK(claimed == 0 && shmq_producer_claimed_count(producer) == 0);
  CHECK(held == options.capacity / kRecord); /* every byte of the ring held */
  const int64_t start = monotonic_ns();
  CHECK_STATUS(shmq_producer_claim_batch(producer, eights, 10, 20 * kMillisecond, &claimed), SHMQ_TIMEOUT);
  CHECK(claimed == 0 && monotonic_ns() - start >= 15 * kMillisecond);
  CHECK(shmq_producer_last_sequence(producer) == 92 + held);
  receive_in_order(consumer, 93, held);
  /* Drained, there is room again. */
  CHECK_OK(shmq_producer_claim_batch(producer, eights, 10, kSecond, &claimed));
  CHECK(claimed > 0);
  shmq_producer_abort(producer);

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("tiny");
}

static void test_in_flight_limit(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join_with_prefetch(queue, "g", 2);
  shmq_producer_t* producer = attach(queue, "p");
  for (int i = 0; i < 3; ++i) send_text(producer, "m");

  shmq_message_t first, second, third;
  CHECK_OK(shmq_consumer_try_receive(consumer, &first));
  CHECK_OK(shmq_consumer_receive(consumer, &second, kSecond));
  CHECK(shmq_consumer_in_flight(consumer) == 2);
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &third), SHMQ_IN_FLIGHT_LIMIT);
  CHECK_STATUS(shmq_consumer_receive(consumer, &third, 10 * kMillisecond), SHMQ_IN_FLIGHT_LIMIT);
  size_t count = 99;
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, &third, 1, &count), SHMQ_IN_FLIGHT_LIMIT);
  CHECK(count == 0);

  CHECK_OK(shmq_consumer_ack(consumer, &first));
  CHECK_OK(shmq_consumer_try_receive(consumer, &third));
  CHECK(third.sequence == 3);
  CHECK_OK(shmq_consumer_ack_up_to(consumer, UINT64_MAX, &count));
  CHECK(count == 2);

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_timeouts_empty_and_full(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 4096;
  options.max_message = 900; /* a quarter of the ring, less a record header */
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("tiny", &options, NULL, &queue));
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");

  shmq_message_t message;
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);
  CHECK_STATUS(shmq_consumer_receive(consumer, &message, 0), SHMQ_TIMEOUT);
  int64_t start = monotonic_ns();
  CHECK_STATUS(shmq_consumer_receive(consumer, &message, 20 * kMillisecond), SHMQ_TIMEOUT);
  CHECK(monotonic_ns() - start >= 15 * kMillisecond); /* it did wait */
  size_t count = 99;
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, &message, 1, &count), SHMQ_EMPTY);
  CHECK(count == 0);

  /* Fill the ring: the group holds every byte. */
  static char payload[512];
  memset(payload, 'f', sizeof payload);
  int sent = 0;
  shmq_status_t status = SHMQ_OK;
  while ((status = shmq_producer_try_send(producer, payload, sizeof payload, NULL)) == SHMQ_OK) {
    CHECK(++sent < 100);
  }
  CHECK_STATUS(status, SHMQ_FULL);
  CHECK(sent >= 4);
  CHECK_STATUS(shmq_producer_try_send_seq(producer, 1000, payload, sizeof payload), SHMQ_FULL);
  start = monotonic_ns();
  CHECK_STATUS(shmq_producer_send(producer, payload, sizeof payload, 20 * kMillisecond, NULL), SHMQ_TIMEOUT);
  CHECK(monotonic_ns() - start >= 15 * kMillisecond);
  CHECK_STATUS(shmq_producer_send_seq(producer, 1000, payload, sizeof payload, 0), SHMQ_TIMEOUT);
  uint64_t sequence = 0;
  CHECK_STATUS(shmq_producer_send_confirm(producer, 0, payload, sizeof payload, SHMQ_CONFIRM_SHARED,
                                          10 * kMillisecond, &sequence),
               SHMQ_TIMEOUT);
  CHECK(sequence == 0); /* none committed */
  void* buffer = NULL;
  CHECK_STATUS(shmq_producer_try_claim(producer, 0, sizeof payload, &buffer), SHMQ_FULL);
  CHECK_STATUS(shmq_producer_claim(producer, sizeof payload, 10 * kMillisecond, &buffer), SHMQ_TIMEOUT);
  CHECK(shmq_producer_last_sequence(producer) == (uint64_t)sent);

  /* Drained, there is room again. */
  for (int i = 0; i < sent; ++i) {
    CHECK_OK(shmq_consumer_try_receive(consumer, &message));
    CHECK_OK(shmq_consumer_ack(consumer, &message));
  }
  CHECK_OK(shmq_producer_send(producer, payload, sizeof payload, kSecond, NULL));

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("tiny");
}

static void test_batch_receive_and_ack_up_to(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");
  char text[16];
  for (int i = 1; i <= 10; ++i) {
    snprintf(text, sizeof text, "m%d", i);
    CHECK(send_text(producer, text) == (uint64_t)i);
  }

  shmq_message_t batch[16];
  size_t count = 0;
  CHECK_OK(shmq_consumer_try_receive_batch(consumer, batch, 4, &count));
  CHECK(count == 4);
  CHECK_OK(shmq_consumer_try_receive_batch(consumer, batch + 4, 12, &count));
  CHECK(count == 6);
  for (int i = 0; i < 10; ++i) {
    snprintf(text, sizeof text, "m%d", i + 1);
    CHECK(payload_is(&batch[i], text));
    CHECK(batch[i].sequence == (uint64_t)i + 1);
    if (i > 0) CHECK(batch[i].position > batch[i - 1].position);
  }
  CHECK_STATUS(shmq_consumer_try_receive_batch(consumer, batch + 10, 6, &count), SHMQ_EMPTY);
  CHECK(count == 0);
  CHECK(shmq_consumer_in_flight(consumer) == 10);

  /* Up to the fifth's position: five acked; the payloads after it still readable. */
  CHECK_OK(shmq_consumer_ack_up_to(consumer, batch[4].position, &count));
  CHECK(count == 5);
  CHECK(shmq_consumer_in_flight(consumer) == 5);
  CHECK_STATUS(shmq_consumer_ack(consumer, &batch[2]), SHMQ_NOT_IN_FLIGHT);
  CHECK(payload_is(&batch[5], "m6"));
  CHECK_OK(shmq_consumer_ack(consumer, &batch[7]));
  CHECK_OK(shmq_consumer_ack_up_to(consumer, UINT64_MAX, &count));
  CHECK(count == 4);
  CHECK(shmq_consumer_in_flight(consumer) == 0);
  CHECK_OK(shmq_consumer_ack_up_to(consumer, UINT64_MAX, &count));
  CHECK(count == 0);

  /* The blocking batch: a timeout when nothing comes, else what there is. */
  count = 9;
  CHECK_STATUS(shmq_consumer_receive_batch(consumer, batch, 16, 10 * kMillisecond, &count), SHMQ_TIMEOUT);
  CHECK(count == 0);
  for (int i = 11; i <= 13; ++i) {
    snprintf(text, sizeof text, "m%d", i);
    send_text(producer, text);
  }
  CHECK_OK(shmq_consumer_receive_batch(consumer, batch, 16, kSecond, &count));
  CHECK(count == 3);
  CHECK(payload_is(&batch[0], "m11") && payload_is(&batch[2], "m13"));
  CHECK_OK(shmq_consumer_ack_up_to(consumer, UINT64_MAX, NULL));

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_send_batch(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");
  const char* texts[] = {"one", "two", "three"};
  shmq_payload_t batch[3];
  for (int i = 0; i < 3; ++i) batch[i] = (shmq_payload_t){texts[i], strlen(texts[i])};
  size_t sent = 99;
  CHECK_OK(shmq_producer_try_send_batch(producer, batch, 3, &sent));
  CHECK(sent == 3);
  CHECK_OK(shmq_producer_send_batch(producer, batch, 2, 1000000, &sent));
  CHECK(sent == 2);
  CHECK(shmq_producer_last_sequence(producer) == 5);
  shmq_message_t got[8];
  size_t count = 0;
  CHECK_OK(shmq_consumer_try_receive_batch(consumer, got, 8, &count));
  CHECK(count == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(payload_is(&got[i], texts[i % 3]));
    CHECK(got[i].sequence == (uint64_t)i + 1);
  }
  CHECK_STATUS(shmq_producer_try_send_batch(producer, NULL, 2, &sent), SHMQ_INVALID_ARGUMENT);
  CHECK(sent == 0);
  batch[1].data = NULL;
  CHECK_STATUS(shmq_producer_try_send_batch(producer, batch, 3, &sent), SHMQ_INVALID_ARGUMENT);
  CHECK_OK(shmq_producer_try_send_batch(producer, batch, 0, &sent));
  CHECK(sent == 0);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_where_a_new_group_starts(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  send_text(producer, "one");
  send_text(producer, "two");
  const uint64_t second_position = shmq_producer_last_position(producer);

  shmq_consumer_options_t options;
  shmq_message_t message;
  shmq_consumer_t* oldest = join(queue, "oldest"); /* the default */

  shmq_consumer_options_init(&options);
  options.start = SHMQ_START_NEWEST;
  shmq_consumer_t* newest = NULL;
  CHECK_OK(shmq_consumer_join(queue, "newest", &options, &newest));
  CHECK_STATUS(shmq_consumer_try_receive(newest, &message), SHMQ_EMPTY);

  shmq_consumer_options_init(&options);
  options.start = SHMQ_START_POSITION;
  options.start_position = second_position;
  shmq_consumer_t* at_position = NULL;
  CHECK_OK(shmq_consumer_join(queue, "position", &options, &at_position));

  shmq_consumer_options_init(&options);
  options.start = SHMQ_START_TIME;
  options.start_time_ns = realtime_ns() + 3600ull * 1000000000u; /* an hour from now */
  shmq_consumer_t* later = NULL;
  CHECK_OK(shmq_consumer_join(queue, "later", &options, &later));
  CHECK_STATUS(shmq_consumer_try_receive(later, &message), SHMQ_EMPTY);

  shmq_consumer_options_init(&options);
  options.start = SHMQ_START_TIME;
  options.start_time_ns = 0;
  shmq_consumer_t* from_the_start = NULL;
  CHECK_OK(shmq_consumer_join(queue, "epoch", &options, &from_the_start));

  send_text(producer, "three");

  CHECK_OK(shmq_consumer_try_receive(oldest, &message));
  CHECK(payload_is(&message, "one"));
  CHECK_OK(shmq_consumer_try_receive(newest, &message));
  CHECK(payload_is(&message, "three"));
  CHECK_OK(shmq_consumer_try_receive(at_position, &message));
  CHECK(payload_is(&message, "two") && message.position == second_position);
  CHECK_OK(shmq_consumer_try_receive(from_the_start, &message));
  CHECK(payload_is(&message, "one"));

  shmq_consumer_close(from_the_start);
  shmq_consumer_close(later);
  shmq_consumer_close(at_position);
  shmq_consumer_close(newest);
  shmq_consumer_close(oldest);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_closed_consumer_redelivers(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  send_text(producer, "held");
  shmq_consumer_t* first = join(queue, "g");
  shmq_message_t message;
  CHECK_OK(shmq_consumer_try_receive(first, &message));
  CHECK(!message.redelivered);
  shmq_consumer_close(first); /* leaves without acking */

  shmq_consumer_t* second = join(queue, "g");
  CHECK_OK(shmq_consumer_receive(second, &message, kSecond));
  CHECK(payload_is(&message, "held"));
  CHECK(message.redelivered);
  CHECK(message.sequence == 1);
  CHECK_OK(shmq_consumer_ack(second, &message));

  shmq_consumer_close(second);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_table_full(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024;
  options.max_producers = 1;
  options.max_groups = 1;
  options.max_consumers = 1;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("q", &options, NULL, &queue));
  shmq_producer_t* producer = attach(queue, "one");
  shmq_producer_t* another = NULL;
  CHECK_STATUS(shmq_producer_attach(queue, "two", NULL, &another), SHMQ_TABLE_FULL);
  CHECK_LAST_ERROR_SET();
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_consumer_t* other = NULL;
  CHECK_STATUS(shmq_consumer_join(queue, "g", NULL, &other), SHMQ_TABLE_FULL);
  CHECK_STATUS(shmq_consumer_join(queue, "h", NULL, &other), SHMQ_TABLE_FULL);
  CHECK_LAST_ERROR_SET();
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

static void test_queue_info_figures(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024;
  options.mode = 0640;
  shmq_queue_t* queue = NULL;
  const uint64_t before = realtime_ns();
  CHECK_OK(shmq_queue_create("q", &options, NULL, &queue));

  shmq_consumer_t* worker1 = join(queue, "work");
  shmq_consumer_t* worker2 = join(queue, "work");
  shmq_consumer_t* auditor = join(queue, "audit");
  shmq_producer_t* alpha = attach(queue, "alpha");
  shmq_producer_t* beta = attach(queue, "beta");
  for (int i = 0; i < 3; ++i) CHECK_OK(shmq_producer_try_send(alpha, "0123456789", 10, NULL));
  for (int i = 0; i < 2; ++i) CHECK_OK(shmq_producer_try_send(beta, "01234", 5, NULL));
  shmq_message_t first, second;
  CHECK_OK(shmq_consumer_try_receive(worker1, &first));
  CHECK_OK(shmq_consumer_try_receive(worker1, &second));
  CHECK_OK(shmq_consumer_ack(worker1, &first));

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK_STR(info->name, "q");
  CHECK_STR(info->ns, current_ns);
  CHECK(info->capacity == 64 << 10);
  CHECK(info->max_message == 1024);
  CHECK(!info->durable);
  CHECK(info->mode == 0640);
  CHECK(info->creator_pid == (int64_t)getpid());
  CHECK(info->created_unix_ns >= before - 1000000000u && info->created_unix_ns <= realtime_ns());
  CHECK(info->tail_position > info->head_position);
  CHECK(info->bytes_in_use == info->tail_position - info->head_position);
  CHECK(info->messages_in_use == 5);
  CHECK(info->messages_total == 5);
  CHECK(info->journal_trouble == SHMQ_JOURNAL_OK);
  CHECK(info->journal_error == 0);
  CHECK(!info->daemon_alive); /* no shmqd in this namespace */

  CHECK(info->producer_count == 2);
  for (size_t i = 0; i < info->producer_count; ++i) {
    const shmq_producer_info_t* p = &info->producers[i];
    const int is_alpha = strcmp(p->name, "alpha") == 0;
    CHECK(is_alpha || strcmp(p->name, "beta") == 0);
    CHECK(p->id == shmq_producer_id(is_alpha ? alpha : beta));
    CHECK(p->pid == (int64_t)getpid());
    CHECK(p->attached && p->alive);
    CHECK(p->last_sequence == (is_alpha ? 3u : 2u));
    CHECK(p->messages == (is_alpha ? 3u : 2u));
    CHECK(p->bytes == (is_alpha ? 30u : 10u));
  }

  CHECK(info->group_count == 2);
  for (size_t i = 0; i < info->group_count; ++i) {
    const shmq_group_info_t* g = &info->groups[i];
    if (strcmp(g->name, "work") == 0) {
      CHECK(g->delivered == 2 && g->acked == 1 && g->in_flight == 1);
      CHECK(g->lag_messages == 4);
      CHECK(g->redelivered == 0);
      CHECK(!g->reading_journal);
      CHECK(g->read_position > g->acked_position);
      CHECK(g->consumer_count == 2);
      int seen = 0;
      for (size_t c = 0; c < g->consumer_count; ++c) {
        const shmq_consumer_info_t* ci = &g->consumers[c];
        CHECK(ci->pid == (int64_t)getpid() && ci->alive);
        if (ci->index == shmq_consumer_index(worker1)) {
          CHECK(ci->received == 2 && ci->acked == 1 && ci->in_flight == 1);
          seen |= 1;
        } else {
          CHECK(ci->index == shmq_consumer_index(worker2));
          CHECK(ci->received == 0 && ci->acked == 0 && ci->in_flight == 0);
          seen |= 2;
        }
      }
      CHECK(seen == 3);
    } else {
      CHECK_STR(g->name, "audit");
      CHECK(g->delivered == 0 && g->acked == 0 && g->in_flight == 0);
      CHECK(g->lag_messages == 5);
      CHECK(g->lag_bytes == info->tail_position - g->acked_position);
      CHECK(g->consumer_count == 1);
      CHECK(g->consumers[0].index == shmq_consumer_index(auditor));
    }
    /* Competing groups: every member reads. */
    CHECK(info->groups_ext != NULL && !info->groups_ext[i].exclusive);
    for (size_t c = 0; c < g->consumer_count; ++c) CHECK(info->groups_ext[i].consumer_active[c]);
  }
  shmq_queue_info_free(info);

  /* After the producers detach, their entries (and figures) remain, unattached. */
  shmq_producer_close(alpha);
  CHECK_OK(shmq_queue_info(queue, &info));
  for (size_t i = 0; i < info->producer_count; ++i) {
    if (strcmp(info->producers[i].name, "alpha") == 0) {
      CHECK(!info->producers[i].attached);
      CHECK(info->producers[i].last_sequence == 3);
    }
  }
  shmq_queue_info_free(info);

  shmq_consumer_close(auditor);
  shmq_consumer_close(worker2);
  shmq_consumer_close(worker1);
  shmq_producer_close(beta);
  shmq_queue_close(queue);
  remove_queue("q");
}

static shmq_consumer_t* join_exclusive(shmq_queue_t* queue, const char* group) {
  shmq_consumer_options_t options;
  shmq_consumer_options_init(&options);
  options.exclusive = true;
  shmq_consumer_t* consumer = NULL;
  CHECK_OK(shmq_consumer_join(queue, group, &options, &consumer));
  return consumer;
}

/* An exclusive group: the first member reads, in order; the second stands by
 * and, once the first leaves, gets what it held, flagged, first. */
static void test_exclusive_group(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_consumer_t* first = join_exclusive(queue, "ex");
  shmq_consumer_t* second = join_exclusive(queue, "ex");
  shmq_consumer_t* competing = join(queue, "co");
  CHECK(shmq_consumer_active(first));
  CHECK(!shmq_consumer_active(second));
  CHECK(shmq_consumer_active(competing));

  /* A group's mode is its creator's. */
  shmq_consumer_t* never = NULL;
  CHECK_STATUS(shmq_consumer_join(queue, "ex", NULL, &never), SHMQ_INVALID_ARGUMENT);
  CHECK(never == NULL && strstr(shmq_last_error(), "exclusive") != NULL);
  shmq_consumer_options_t options;
  shmq_consumer_options_init(&options);
  options.exclusive = true;
  CHECK_STATUS(shmq_consumer_join(queue, "co", &options, &never), SHMQ_INVALID_ARGUMENT);

  shmq_producer_t* producer = attach(queue, "p");
  char text[16];
  for (int i = 1; i <= 10; ++i) {
    snprintf(text, sizeof text, "m%d", i);
    send_text(producer, text);
  }
  shmq_message_t batch[16];
  size_t count = 9;
  CHECK_STATUS(shmq_consumer_try_receive_batch(second, batch, 16, &count), SHMQ_EMPTY);
  CHECK_STATUS(shmq_consumer_receive_batch(second, batch, 16, 10 * kMillisecond, &count), SHMQ_TIMEOUT);
  CHECK(count == 0);
  CHECK_OK(shmq_consumer_receive_batch(first, batch, 4, kSecond, &count));
  CHECK(count == 4);
  CHECK_OK(shmq_consumer_try_receive_batch(first, batch + 4, 12, &count));
  CHECK(count == 6);
  for (int i = 0; i < 10; ++i) CHECK(batch[i].sequence == (uint64_t)i + 1 && !batch[i].redelivered);

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK(info->group_count == 2);
  for (size_t i = 0; i < info->group_count; ++i) {
    const shmq_group_info_t* g = &info->groups[i];
    const shmq_group_info_ext_t* ext = &info->groups_ext[i];
    CHECK(ext->exclusive == (strcmp(g->name, "ex") == 0));
    for (size_t c = 0; c < g->consumer_count; ++c) {
      const bool is_standby = ext->exclusive && g->consumers[c].index == shmq_consumer_index(second);
      CHECK(ext->consumer_active[c] == !is_standby);
    }
  }
  shmq_queue_info_free(info);

  /* The first acks 1..3 and leaves holding 4..10: the second takes over. */
  CHECK_OK(shmq_consumer_ack_up_to(first, batch[2].position, &count));
  CHECK(count == 3);
  shmq_consumer_close(first);
  CHECK_OK(shmq_consumer_receive_batch(second, batch, 16, kSecond, &count));
  CHECK(shmq_consumer_active(second));
  size_t got = count;
  while (got < 7 && shmq_consumer_receive_batch(second, batch + got, 16 - got, kSecond, &count) == SHMQ_OK)
    got += count;
  CHECK(got == 7);
  for (size_t i = 0; i < got; ++i) CHECK(batch[i].sequence == i + 4 && batch[i].redelivered);
  CHECK_OK(shmq_consumer_ack_up_to(second, UINT64_MAX, &count));
  CHECK(count == 7);

  shmq_consumer_close(second);
  shmq_consumer_close(competing);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* ---- The delivery policy ------------------------------------------------------ */

/* A queue for dead letters: room for a small queue's 1 KiB messages and the origin they carry. */
static shmq_queue_t* create_dead_letter_queue(const char* name) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024 + SHMQ_DEAD_LETTER_OVERHEAD; /* exactly enough */
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create(name, &options, NULL, &queue));
  return queue;
}

/* A small queue (as create_small_queue) with `policy`. */
static shmq_queue_t* create_policy_queue(const char* name, const shmq_delivery_policy_t* policy) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 64 << 10;
  options.max_message = 1024;
  options.policy = policy;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create(name, &options, NULL, &queue));
  return queue;
}

/* The group `name` of a snapshot, with its index. */
static size_t group_index(const shmq_queue_info_t* info, const char* name) {
  for (size_t i = 0; i < info->group_count; ++i) {
    if (strcmp(info->groups[i].name, name) == 0) return i;
  }
  fail(__FILE__, __LINE__, "no group \"%s\" in the snapshot", name);
  return 0;
}

static void test_delivery_policy_round_trip(void) {
  shmq_queue_t* dlq = create_dead_letter_queue("dlq");
  char dead_letter_name[16] = "dlq";
  shmq_delivery_policy_t policy;
  shmq_delivery_policy_init(&policy);
  policy.max_deliveries = 5;
  policy.dead_letter = dead_letter_name;
  policy.ack_timeout_ns = 3 * kSecond;
  policy.ttl_ns = 90 * kSecond;
  shmq_queue_t* queue = create_policy_queue("work", &policy);
  /* Read during the call only: the caller's string may go. */
  strcpy(dead_letter_name, "gone");

  shmq_queue_options_t got;
  memset(&got, 0xab, sizeof got);
  CHECK_OK(shmq_queue_get_options(queue, &got));
  CHECK(got.policy != NULL);
  CHECK(got.policy->max_deliveries == 5);
  CHECK_STR(got.policy->dead_letter, "dlq");
  CHECK(got.policy->ack_timeout_ns == 3 * kSecond);
  CHECK(got.policy->ttl_ns == 90 * kSecond);
  for (int i = 0; i < 4; ++i) CHECK(got.policy->reserved[i] == 0);

  /* Another handle (read-only too) reads the same from the segment. */
  shmq_queue_t* opened = NULL;
  CHECK_OK(shmq_queue_open_read_only("work", NULL, &opened));
  CHECK_OK(shmq_queue_get_options(opened, &got));
  CHECK(got.policy->max_deliveries == 5 && got.policy->ttl_ns == 90 * kSecond);
  CHECK_STR(got.policy->dead_letter, "dlq");
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(opened, &info));
  CHECK(info->policy.max_deliveries == 5);
  CHECK_STR(info->policy.dead_letter, "dlq");
  CHECK(info->policy.ack_timeout_ns == 3 * kSecond && info->policy.ttl_ns == 90 * kSecond);
  shmq_queue_info_free(info);
  shmq_queue_close(opened);

  /* Options read back create a twin (the policy included). */
  CHECK_OK(shmq_queue_get_options(queue, &got));
  shmq_queue_t* twin = NULL;
  CHECK_OK(shmq_queue_create("twin", &got, NULL, &twin));
  shmq_queue_options_t twin_options;
  CHECK_OK(shmq_queue_get_options(twin, &twin_options));
  CHECK(twin_options.policy->max_deliveries == 5);
  CHECK_STR(twin_options.policy->dead_letter, "dlq");
  shmq_queue_close(twin);

  /* The dead-letter queue's own info: no policy. */
  CHECK_OK(shmq_queue_info(dlq, &info));
  CHECK(info->policy.max_deliveries == 0 && info->policy.ack_timeout_ns == 0 && info->policy.ttl_ns == 0);
  CHECK_STR(info->policy.dead_letter, "");
  shmq_queue_info_free(info);

  shmq_queue_close(queue);
  shmq_queue_close(dlq);
  remove_queue("twin");
  remove_queue("work");
  remove_queue("dlq");
}

static void test_bad_delivery_policies_are_refused(void) {
  shmq_delivery_policy_t policy;
  shmq_queue_options_t options;
  shmq_queue_t* queue = NULL;
  shmq_queue_options_init(&options);
  options.policy = &policy;

  shmq_delivery_policy_init(&policy);
  policy.max_deliveries = SHMQ_MAX_DELIVERIES_LIMIT + 1;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();
  shmq_delivery_policy_init(&policy);
  policy.ack_timeout_ns = -1;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_NAMES("ack_timeout");
  shmq_delivery_policy_init(&policy);
  policy.ttl_ns = -5;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_NAMES("ttl");
  shmq_delivery_policy_init(&policy);
  policy.reserved[3] = 1;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);

  /* A dead-letter queue that does not exist, or is the queue itself. */
  shmq_delivery_policy_init(&policy);
  policy.dead_letter = "nowhere";
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_NOT_FOUND);
  CHECK_LAST_ERROR_NAMES("nowhere");
  policy.dead_letter = "q";
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_SET();
  policy.dead_letter = "bad/name";
  CHECK(shmq_queue_create("q", &options, NULL, &queue) != SHMQ_OK);
  CHECK(queue == NULL);
  CHECK(!queue_exists("q"));

  /* One whose messages cannot hold this queue's with their origin: a byte short. */
  shmq_queue_options_t tiny_options;
  shmq_queue_options_init(&tiny_options);
  tiny_options.capacity = 64 << 10;
  tiny_options.max_message = 1024 + SHMQ_DEAD_LETTER_OVERHEAD - 1;
  shmq_queue_t* tiny = NULL;
  CHECK_OK(shmq_queue_create("tiny", &tiny_options, NULL, &tiny));
  policy.dead_letter = "tiny";
  options.max_message = 1024;
  options.capacity = 64 << 10;
  CHECK_STATUS(shmq_queue_create("q", &options, NULL, &queue), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_NAMES("tiny");
  CHECK(!queue_exists("q"));
  shmq_queue_close(tiny);
  remove_queue("tiny");
}

/* nack: the message comes again at once, redelivered, its delivery counted. */
static void test_nack_redelivers(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* consumer = join(queue, "g");
  send_text(producer, "first");
  send_text(producer, "second");

  shmq_message_t message;
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "first"));
  CHECK(message.deliveries == 1 && !message.redelivered);
  const uint64_t position = message.position;
  CHECK_OK(shmq_consumer_nack(consumer, &message));
  CHECK(shmq_consumer_in_flight(consumer) == 0);
  /* Not held any more: a second nack, or an ack, finds nothing. */
  CHECK_STATUS(shmq_consumer_nack(consumer, &message), SHMQ_NOT_IN_FLIGHT);
  CHECK_STATUS(shmq_consumer_ack(consumer, &message), SHMQ_NOT_IN_FLIGHT);

  /* Before the newer one. */
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "first"));
  CHECK(message.position == position);
  CHECK(message.redelivered && message.deliveries == 2);
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "second") && message.deliveries == 1 && !message.redelivered);
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK(info->groups_delivery != NULL);
  const shmq_group_delivery_info_t* d = &info->groups_delivery[group_index(info, "g")];
  CHECK(d->nacked == 1);
  CHECK(d->rejected == 0 && d->dead_lettered == 0 && d->dropped == 0 && d->expired == 0 && d->lease_expired == 0);
  for (int i = 0; i < 4; ++i) CHECK(d->reserved[i] == 0);
  shmq_queue_info_free(info);

  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* reject: straight to the dead-letter queue, its origin readable there. */
static void test_reject_dead_letters_with_its_origin(void) {
  shmq_queue_t* dlq = create_dead_letter_queue("dlq");
  shmq_delivery_policy_t policy;
  shmq_delivery_policy_init(&policy);
  policy.dead_letter = "dlq";
  shmq_queue_t* queue = create_policy_queue("orders", &policy);
  shmq_producer_t* producer = attach(queue, "web");
  shmq_consumer_t* consumer = join(queue, "billing");
  shmq_consumer_t* morgue = join(dlq, "morgue");
  const uint64_t sequence = send_text(producer, "poison");
  send_text(producer, "fine");

  shmq_message_t message;
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "poison"));
  const uint64_t position = message.position;
  const uint64_t timestamp = message.timestamp_ns;
  CHECK_OK(shmq_consumer_reject(consumer, &message));
  CHECK(shmq_consumer_in_flight(consumer) == 0);
  CHECK_STATUS(shmq_consumer_reject(consumer, &message), SHMQ_NOT_IN_FLIGHT);
  /* The group goes on with the next. */
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "fine"));
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  shmq_message_t dead;
  CHECK_OK(shmq_consumer_receive(morgue, &dead, kSecond));
  CHECK(dead.size > strlen("poison")); /* the origin travels after the payload */
  shmq_dead_letter_t origin;
  memset(&origin, 0xab, sizeof origin);
  CHECK_OK(shmq_message_dead_letter(&dead, &origin));
  CHECK(origin.size == strlen("poison") && memcmp(origin.payload, "poison", origin.size) == 0);
  CHECK(origin.payload == dead.payload); /* a view into the message's */
  CHECK_STR(origin.origin_queue, "orders");
  CHECK_STR(origin.origin_group, "billing");
  CHECK_STR(origin.origin_producer, "web");
  CHECK(origin.origin_sequence == sequence);
  CHECK(origin.origin_position == position);
  CHECK(origin.origin_timestamp_ns == timestamp);
  CHECK(origin.reason == SHMQ_DEAD_LETTER_REJECTED);
  CHECK_STR(shmq_dead_letter_reason_str(origin.reason), "rejected");
  CHECK(origin.deliveries == 1);
  for (int i = 0; i < 4; ++i) CHECK(origin.reserved[i] == 0);
  CHECK_OK(shmq_consumer_ack(morgue, &dead));
  /* Exactly once. */
  CHECK_STATUS(shmq_consumer_try_receive(morgue, &dead), SHMQ_EMPTY);

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  const shmq_group_delivery_info_t* d = &info->groups_delivery[group_index(info, "billing")];
  CHECK(d->rejected == 1 && d->dead_lettered == 1 && d->dropped == 0 && d->nacked == 0);
  shmq_queue_info_free(info);

  shmq_consumer_close(morgue);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  shmq_queue_close(dlq);
  remove_queue("orders");
  remove_queue("dlq");
}

/* Without a dead-letter queue, a rejected message is dropped, counted. */
static void test_reject_without_a_dead_letter_queue_drops(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* consumer = join(queue, "g");
  send_text(producer, "poison");
  shmq_message_t message;
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK_OK(shmq_consumer_reject(consumer, &message));
  CHECK_STATUS(shmq_consumer_try_receive(consumer, &message), SHMQ_EMPTY);
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  const shmq_group_delivery_info_t* d = &info->groups_delivery[group_index(info, "g")];
  CHECK(d->rejected == 1 && d->dropped == 1 && d->dead_lettered == 0);
  shmq_queue_info_free(info);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* max_deliveries 2: the second nack sends it to the dead-letter queue. */
static void test_max_deliveries_dead_letters(void) {
  shmq_queue_t* dlq = create_dead_letter_queue("dlq");
  shmq_delivery_policy_t policy;
  shmq_delivery_policy_init(&policy);
  policy.max_deliveries = 2;
  policy.dead_letter = "dlq";
  shmq_queue_t* queue = create_policy_queue("q", &policy);
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_consumer_t* morgue = join(dlq, "morgue");
  send_text(producer, "poison");

  shmq_message_t message;
  for (uint16_t delivery = 1; delivery <= 2; ++delivery) {
    CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
    CHECK(payload_is(&message, "poison") && message.deliveries == delivery);
    CHECK_OK(shmq_consumer_nack(consumer, &message));
  }
  CHECK_STATUS(shmq_consumer_receive(consumer, &message, 50 * kMillisecond), SHMQ_TIMEOUT);

  shmq_message_t dead;
  CHECK_OK(shmq_consumer_receive(morgue, &dead, kSecond));
  shmq_dead_letter_t origin;
  CHECK_OK(shmq_message_dead_letter(&dead, &origin));
  CHECK(origin.reason == SHMQ_DEAD_LETTER_MAX_DELIVERIES);
  CHECK_STR(shmq_dead_letter_reason_str(origin.reason), "max-deliveries");
  CHECK(origin.deliveries == 2);
  CHECK_STR(origin.origin_group, "g");
  CHECK(origin.size == strlen("poison") && memcmp(origin.payload, "poison", origin.size) == 0);
  CHECK_OK(shmq_consumer_ack(morgue, &dead));

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  const shmq_group_delivery_info_t* d = &info->groups_delivery[group_index(info, "g")];
  CHECK(d->nacked == 2 && d->dead_lettered == 1 && d->rejected == 0);
  shmq_queue_info_free(info);

  shmq_consumer_close(morgue);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  shmq_queue_close(dlq);
  remove_queue("q");
  remove_queue("dlq");
}

/* A holder past the ack timeout: the next member takes its messages over
 * (no shmqd here), and each late ack, nack or reject gets SHMQ_LEASE_EXPIRED,
 * once (then the message is forgotten: SHMQ_NOT_IN_FLIGHT). The verdict does
 * not depend on timing: the first member waits well past the timeout. */
static void test_lease_expired(void) {
  shmq_delivery_policy_t policy;
  shmq_delivery_policy_init(&policy);
  policy.ack_timeout_ns = 20 * kMillisecond;
  shmq_queue_t* queue = create_policy_queue("q", &policy);
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* stuck = join(queue, "g");
  shmq_consumer_t* other = join(queue, "g");
  send_text(producer, "to ack");
  send_text(producer, "to nack");
  send_text(producer, "to reject");

  shmq_message_t held[3];
  for (int i = 0; i < 3; ++i) {
    CHECK_OK(shmq_consumer_receive(stuck, &held[i], kSecond));
    CHECK(held[i].deliveries == 1);
  }
  const struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);

  shmq_message_t taken[3];
  for (int i = 0; i < 3; ++i) {
    CHECK_OK(shmq_consumer_receive(other, &taken[i], 5 * kSecond));
    CHECK(taken[i].position == held[i].position);
    CHECK(taken[i].redelivered && taken[i].deliveries == 2);
  }
  CHECK_STATUS(shmq_consumer_ack(stuck, &held[0]), SHMQ_LEASE_EXPIRED);
  CHECK_STATUS(shmq_consumer_nack(stuck, &held[1]), SHMQ_LEASE_EXPIRED);
  CHECK_STATUS(shmq_consumer_reject(stuck, &held[2]), SHMQ_LEASE_EXPIRED);
  CHECK_STATUS(shmq_consumer_ack(stuck, &held[0]), SHMQ_NOT_IN_FLIGHT);
  CHECK(shmq_consumer_in_flight(stuck) == 0);
  for (int i = 0; i < 3; ++i) CHECK_OK(shmq_consumer_ack(other, &taken[i]));

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  const size_t g = group_index(info, "g");
  CHECK(info->groups_delivery[g].lease_expired == 3); /* counted per message taken back */
  CHECK(info->groups_delivery[g].nacked == 0 && info->groups_delivery[g].rejected == 0);
  CHECK(info->groups[g].acked == 3);
  shmq_queue_info_free(info);

  shmq_consumer_close(other);
  shmq_consumer_close(stuck);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* A message older than the ttl when due is dead-lettered (reason expired), a
 * fresh one delivered. The stale one waits six times its ttl. */
static void test_ttl_dead_letters_what_waited_too_long(void) {
  shmq_queue_t* dlq = create_dead_letter_queue("dlq");
  shmq_delivery_policy_t policy;
  shmq_delivery_policy_init(&policy);
  policy.ttl_ns = 50 * kMillisecond;
  policy.dead_letter = "dlq";
  shmq_queue_t* queue = create_policy_queue("q", &policy);
  shmq_producer_t* producer = attach(queue, "p");
  send_text(producer, "stale");
  const struct timespec pause = {0, 300 * 1000 * 1000};
  nanosleep(&pause, NULL);
  send_text(producer, "fresh");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_message_t message;
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "fresh"));
  CHECK_OK(shmq_consumer_ack(consumer, &message));

  shmq_consumer_t* morgue = join(dlq, "morgue");
  CHECK_OK(shmq_consumer_receive(morgue, &message, kSecond));
  shmq_dead_letter_t origin;
  CHECK_OK(shmq_message_dead_letter(&message, &origin));
  CHECK(origin.reason == SHMQ_DEAD_LETTER_EXPIRED);
  CHECK_STR(shmq_dead_letter_reason_str(origin.reason), "expired");
  CHECK(origin.size == strlen("stale") && memcmp(origin.payload, "stale", origin.size) == 0);
  CHECK_OK(shmq_consumer_ack(morgue, &message));

  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  const shmq_group_delivery_info_t* d = &info->groups_delivery[group_index(info, "g")];
  CHECK(d->expired == 1 && d->dead_lettered == 1 && d->dropped == 0);
  shmq_queue_info_free(info);

  shmq_consumer_close(morgue);
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  shmq_queue_close(dlq);
  remove_queue("q");
  remove_queue("dlq");
}

static void test_dead_letter_reason_names(void) {
  CHECK_STR(shmq_dead_letter_reason_str(SHMQ_DEAD_LETTER_MAX_DELIVERIES), "max-deliveries");
  CHECK_STR(shmq_dead_letter_reason_str(SHMQ_DEAD_LETTER_EXPIRED), "expired");
  CHECK_STR(shmq_dead_letter_reason_str(SHMQ_DEAD_LETTER_REJECTED), "rejected");
  CHECK_STR(shmq_dead_letter_reason_str((shmq_dead_letter_reason_t)7), "unknown");
  CHECK_STR(shmq_dead_letter_reason_str((shmq_dead_letter_reason_t)-1), "unknown");
}

static void test_delete_group(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* consumer = join(queue, "doomed");
  send_text(producer, "x");
  shmq_consumer_close(consumer);
  CHECK_OK(shmq_queue_delete_group(queue, "doomed"));
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK(info->group_count == 0);
  shmq_queue_info_free(info);
  CHECK_STATUS(shmq_queue_delete_group(queue, "doomed"), SHMQ_NOT_FOUND);
  CHECK_LAST_ERROR_NAMES("doomed");
  CHECK_STATUS(shmq_queue_delete_group(queue, "never"), SHMQ_NOT_FOUND);
  shmq_producer_close(producer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* The queue removed under its handles: deleted() says so, blocking calls
 * return SHMQ_DELETED instead of waiting for ever. */
static void test_deleted_queue(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 4096;
  options.max_message = 900;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("q", &options, NULL, &queue));
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_producer_t* producer = attach(queue, "p");
  CHECK(!shmq_queue_deleted(queue));
  remove_queue("q");
  CHECK(shmq_queue_deleted(queue));

  shmq_message_t message;
  CHECK_STATUS(shmq_consumer_receive(consumer, &message, 10 * kSecond), SHMQ_DELETED);
  static char payload[900];
  shmq_status_t status = SHMQ_OK;
  int sent = 0;
  while ((status = shmq_producer_try_send(producer, payload, sizeof payload, NULL)) == SHMQ_OK) CHECK(++sent < 100);
  CHECK_STATUS(status, SHMQ_FULL);
  CHECK_STATUS(shmq_producer_send(producer, payload, sizeof payload, 10 * kSecond, NULL), SHMQ_DELETED);

  /* A queue of the name again: a new one, not deleted. */
  shmq_queue_t* again = create_small_queue("q");
  CHECK(!shmq_queue_deleted(again));
  CHECK(shmq_queue_deleted(queue));
  shmq_queue_close(again);

  shmq_producer_close(producer);
  shmq_consumer_close(consumer);
  shmq_queue_close(queue);
  remove_queue("q");
}

/* Producers and consumers keep the mapping alive: the queue handle can go first. */
static void test_handles_outlive_their_queue_handle(void) {
  shmq_queue_t* queue = create_small_queue("q");
  shmq_producer_t* producer = attach(queue, "p");
  shmq_consumer_t* consumer = join(queue, "g");
  shmq_queue_close(queue);
  send_text(producer, "still here");
  shmq_message_t message;
  CHECK_OK(shmq_consumer_receive(consumer, &message, kSecond));
  CHECK(payload_is(&message, "still here"));
  char name[16];
  CHECK_OK(shmq_message_producer(&message, name, sizeof name, NULL));
  CHECK_STR(name, "p");
  CHECK_OK(shmq_consumer_ack(consumer, &message));
  shmq_consumer_close(consumer);
  shmq_producer_close(producer);
  remove_queue("q");
}

/* ---- Two processes ------------------------------------------------------------- */

enum { kForkedMessages = 200 };

/* The child: its own handles, opened by name. */
static void send_from_child(void) {
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_open("shared", NULL, &queue));
  shmq_producer_t* producer = attach(queue, "child");
  char text[32];
  for (int i = 1; i <= kForkedMessages; ++i) {
    snprintf(text, sizeof text, "from child %d", i);
    uint64_t sequence = 0;
    CHECK_OK(shmq_producer_send(producer, text, strlen(text), 10 * kSecond, &sequence));
    CHECK(sequence == (uint64_t)i);
  }
  shmq_producer_close(producer);
  shmq_queue_close(queue);
}

static void test_child_process_sends_parent_receives(void) {
  shmq_queue_options_t options;
  shmq_queue_options_init(&options);
  options.capacity = 4096; /* small: the child waits for the parent's acks */
  options.max_message = 256;
  shmq_queue_t* queue = NULL;
  CHECK_OK(shmq_queue_create("shared", &options, NULL, &queue));
  shmq_consumer_t* consumer = join(queue, "parent");

  fflush(NULL);
  const pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    send_from_child();
    _exit(0);
  }

  char text[32];
  char name[16];
  for (int i = 1; i <= kForkedMessages; ++i) {
    shmq_message_t message;
    CHECK_OK(shmq_consumer_receive(consumer, &message, 10 * kSecond));
    snprintf(text, sizeof text, "from child %d", i);
    CHECK(payload_is(&message, text));
    CHECK(message.sequence == (uint64_t)i);
    CHECK(!message.redelivered);
    CHECK_OK(shmq_message_producer(&message, name, sizeof name, NULL));
    CHECK_STR(name, "child");
    CHECK_OK(shmq_consumer_ack(consumer, &message));
  }
  int wait_status = 0;
  CHECK(waitpid(child, &wait_status, 0) == child);
  CHECK(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0);

  /* The child's producer entry: detached, its sequence kept for a resume. */
  shmq_queue_info_t* info = NULL;
  CHECK_OK(shmq_queue_info(queue, &info));
  CHECK(info->producer_count == 1);
  CHECK_STR(info->producers[0].name, "child");
  CHECK(info->producers[0].pid == (int64_t)child || info->producers[0].pid == 0);
  CHECK(!info->producers[0].attached);
  CHECK(info->producers[0].last_sequence == kForkedMessages);
  CHECK(info->messages_total == kForkedMessages);
  shmq_queue_info_free(info);

  shmq_consumer_close(consumer);
  shmq_queue_close(queue);
  remove_queue("shared");
}

/* ---- main ---------------------------------------------------------------------- */

typedef struct named_test {
  const char* name;
  void (*run)(void);
} named_test_t;

#define TEST(function) {#function, function}

/* shmq_shm_dir: $SHMQ_SHM_DIR, else /dev/shm; a queue lives there. */
static void test_shm_dir(void) {
  char buf[256];
  size_t length = 0;
  unsetenv("SHMQ_SHM_DIR");
  CHECK_OK(shmq_shm_dir(buf, sizeof buf, &length));
  CHECK(strcmp(buf, "/dev/shm") == 0 && length == 8);
  CHECK_OK(shmq_shm_dir(NULL, 0, &length));
  CHECK(length == 8);
  char dir[] = "/dev/shm/shmq-capi-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  setenv("SHMQ_SHM_DIR", dir, 1);
  CHECK_OK(shmq_shm_dir(buf, sizeof buf, &length));
  CHECK(strcmp(buf, dir) == 0 && length == strlen(dir));
  shmq_queue_t* queue = create_small_queue("here");
  char path[300];
  snprintf(path, sizeof path, "%s/shmq.%s.here", dir, current_ns);
  struct stat st;
  CHECK(stat(path, &st) == 0);
  shmq_queue_close(queue);
  bool existed = false;
  CHECK_OK(shmq_queue_remove("here", NULL, &existed));
  CHECK(existed);
  setenv("SHMQ_SHM_DIR", "relative", 1);
  CHECK_STATUS(shmq_shm_dir(buf, sizeof buf, &length), SHMQ_INVALID_ARGUMENT);
  CHECK_LAST_ERROR_NAMES("not an absolute path");
  unsetenv("SHMQ_SHM_DIR");
  CHECK(rmdir(dir) == 0);
}

/* shmq_daemon_data_dir: with no shmqd running, $SHMQ_DATA_DIR (the test's). */
static void test_daemon_data_dir(void) {
  char buf[256];
  size_t length = 0;
  CHECK_OK(shmq_daemon_data_dir(NULL, buf, sizeof buf, &length));
  CHECK(strcmp(buf, data_dir) == 0 && length == strlen(data_dir));
  CHECK_OK(shmq_daemon_data_dir(NULL, NULL, 0, &length));
  CHECK(length == strlen(data_dir));
  CHECK_STATUS(shmq_daemon_data_dir("bad/ns", buf, sizeof buf, &length), SHMQ_INVALID_NAME);
}

static const named_test_t tests[] = {
    TEST(test_last_error_is_empty_before_any_failure), /* first: nothing has failed yet */
    TEST(test_status_str_names_every_code),
    TEST(test_version),
    TEST(test_options_init_fills_the_defaults),
    TEST(test_last_error_is_per_thread),
    TEST(test_create_open_and_the_options_round_trip),
    TEST(test_missing_queue_is_not_found),
    TEST(test_bad_names_are_refused_by_name),
    TEST(test_out_of_range_options_are_invalid_arguments),
    TEST(test_null_handles_and_pointers_are_invalid_arguments),
    TEST(test_name_list),
    TEST(test_segment_bytes),
    TEST(test_send_receive_ack),
    TEST(test_explicit_sequences_and_duplicates),
    TEST(test_too_large),
    TEST(test_not_durable),
    TEST(test_durable_queue_create),
    TEST(test_claim_commit_abort),
    TEST(test_claim_batch_commit_abort),
    TEST(test_claim_batch_ring_end_full_too_large),
    TEST(test_in_flight_limit),
    TEST(test_timeouts_empty_and_full),
    TEST(test_batch_receive_and_ack_up_to),
    TEST(test_send_batch),
    TEST(test_where_a_new_group_starts),
    TEST(test_closed_consumer_redelivers),
    TEST(test_table_full),
    TEST(test_queue_info_figures),
    TEST(test_exclusive_group),
    TEST(test_delivery_policy_round_trip),
    TEST(test_bad_delivery_policies_are_refused),
    TEST(test_dead_letter_reason_names),
    TEST(test_nack_redelivers),
    TEST(test_reject_dead_letters_with_its_origin),
    TEST(test_reject_without_a_dead_letter_queue_drops),
    TEST(test_max_deliveries_dead_letters),
    TEST(test_lease_expired),
    TEST(test_ttl_dead_letters_what_waited_too_long),
    TEST(test_delete_group),
    TEST(test_deleted_queue),
    TEST(test_handles_outlive_their_queue_handle),
    TEST(test_child_process_sends_parent_receives),
    TEST(test_shm_dir),
    TEST(test_daemon_data_dir),
};

/* Runs every test, or those whose name contains argv[1]. */
int main(int argc, char** argv) {
  const char* filter = argc > 1 ? argv[1] : NULL;
  /* Durable queues look for a journal in the data directory: a private, empty one. */
  if (mkdtemp(data_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  setenv("SHMQ_DATA_DIR", data_dir, 1);

  int ran = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; ++i) {
    if (filter != NULL && strstr(tests[i].name, filter) == NULL) continue;
    snprintf(current_ns, sizeof current_ns, "capi-%ld-%zu", (long)getpid(), i);
    setenv("SHMQ_NAMESPACE", current_ns, 1);
    printf("%s ...\n", tests[i].name);
    fflush(stdout);
    tests[i].run();
    ++ran;
  }
  current_ns[0] = '\0';
  if (rmdir(data_dir) != 0) fprintf(stderr, "note: %s not removed: %s\n", data_dir, strerror(errno));
  printf("%d C API tests passed\n", ran);
  return ran > 0 ? 0 : 1;
}
