// Building a queue's segment and publishing it under the queue's name
// (Queue::create, open_or_create, and shmqd's prepared create for a rebuild).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <new>
#include <stdio.h>
#include <thread>

#include "shm/prepared_create.hpp"
#include "shm/process.hpp"
#include "shm/segment.hpp"
#include "shmq/journal.hpp"

namespace shmq {
namespace {

using detail::describe_queue;
using detail::Mapping;
using detail::throw_errno;
using namespace layout;

// Refuses a segment that the file system under `fd` cannot hold, before
// fallocate would (with a message that says how much is missing).
void check_room(int fd, const std::string& dir, std::uint64_t bytes, const std::string& what) {
  struct statvfs vfs {};
  // f_blocks 0: no size known (hugetlbfs without size=): fallocate decides.
  if (::fstatvfs(fd, &vfs) != 0 || vfs.f_blocks == 0) return;
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (bytes > free_bytes) {
    throw Error(Errc::NoSpace, "cannot create " + what + ": its segment needs " + std::to_string(bytes) +
                                   " bytes but " + dir + " has " + std::to_string(free_bytes) + " free");
  }
}

void copy_name(char (&dst)[kNameBytes], std::string_view src) {
  std::memset(dst, 0, kNameBytes);
  std::memcpy(dst, src.data(), std::min(src.size(), kNameBytes - 1));
}

void initialise(Mapping& m, const QueueOptions& o, const Geometry& g, const detail::PrepareSegment& prepare) {
  // tmpfs pages start zeroed: every atomic, counter and slot is already 0.
  auto* header = new (m.base) QueueHeader;  // no initialiser: keeps the zeros
  Superblock& s = header->super;
  s.magic = kMagic;
  s.header_bytes = sizeof(QueueHeader);
  s.segment_bytes = g.segment_bytes;
  s.capacity = o.capacity;
  s.max_message = o.max_message;
  s.flags = o.durable ? kFlagDurable : 0;
  s.max_producers = o.max_producers;
  s.max_groups = o.max_groups;
  s.max_consumers = o.max_consumers;
  s.mode = o.mode;
  s.creator_pid = detail::self_pid();
  s.creator_start_time = detail::self_start_time();
  s.created_unix_ns = detail::unix_time_ns();
  s.producers_offset = g.producers_offset;
  s.groups_offset = g.groups_offset;
  s.consumers_offset = g.consumers_offset;
  s.record_key = m.record_key;
  s.states_offset = g.states_offset;
  s.ring_offset = g.ring_offset;
  copy_name(s.ns, m.ns);
  copy_name(s.name, m.name);
  header->max_deliveries = o.policy.max_deliveries;
  header->ack_timeout_ns = static_cast<std::uint64_t>(o.policy.ack_timeout.count());
  header->ttl_ns = static_cast<std::uint64_t>(o.policy.ttl.count());
  header->deliveries_offset = g.deliveries_offset;
  copy_name(header->dead_letter, o.policy.dead_letter);
  header->tail.store(kFirstPosition, std::memory_order_relaxed);
  header->head.store(kFirstPosition, std::memory_order_relaxed);
  // Nothing to journal yet; a non-durable queue keeps them 0.
  if (o.durable) {
    header->journal_written.store(kFirstPosition, std::memory_order_relaxed);
    header->journal_synced.store(kFirstPosition, std::memory_order_relaxed);
  }
  detail::bind_tables(m, g);
  for (std::uint32_t i = 0; i < o.max_producers; ++i) {
    m.producers[i].claim_pos.store(kNoPosition, std::memory_order_relaxed);
  }
  if (prepare) prepare(m);
  // Publishes every store above to anyone who reads the version with acquire.
  // release: pairs with validate()'s acquire load of the version (segment_open.cpp).
  s.layout_version.store(kLayoutVersion, std::memory_order_release);
}

// Refuses to create a queue whose journal exists: the queue must be rebuilt
// from it (docs/journal.md, "Boot order").
void refuse_if_journaled(const std::string& ns, std::string_view name) {
  std::filesystem::path dir;
  try {
    dir = journal_dir(daemon_data_dir(ns), name);
  } catch (const Error&) {
    return;  // no data directory can be named (no HOME): then there is no journal either
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir / "queue.json", ec)) return;
  throw Error(Errc::NeedsRebuild, describe_queue(ns, name) + " has a journal in " + dir.string() +
                                      ": start shmqd to rebuild the queue from it (or remove both: shmq delete "
                                      "--force " + std::string(name) + ")");
}

// Gives the segment built under `from` its queue's name `to`, unless `to`
// exists (errno EEXIST then).
bool publish_segment(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS) return false;
  // A file system without RENAME_NOREPLACE: link(2) never replaces either.
  if (::link(from.c_str(), to.c_str()) != 0) return false;
  ::unlink(from.c_str());
  return true;
}

}  // namespace

Queue Queue::create(std::string_view name, const QueueOptions& options, std::string_view ns_arg) {
  return detail::QueueAccess::create_prepared(name, options, ns_arg, {}, static_cast<uid_t>(-1));
}

Queue Queue::open_or_create(std::string_view name, const QueueOptions& options, std::string_view ns,
                            std::chrono::milliseconds wait_for_rebuild) {
  const auto deadline = std::chrono::steady_clock::now() + wait_for_rebuild;
  for (;;) {
    try {
      return open(name, ns);
    } catch (const Error& e) {
      if (e.code() != Errc::NotFound) throw;
    }
    try {
      return create(name, options, ns);
    } catch (const Error& e) {
      if (e.code() == Errc::AlreadyExists) continue;  // another process was first: open it
      if (e.code() != Errc::NeedsRebuild || std::chrono::steady_clock::now() >= deadline) throw;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // shmqd is rebuilding it, or will
  }
}

// A segment is built under a temporary name and then renamed into place, so
// that no queue name ever shows a half-built segment: a creator (shmqd's
// rebuild above all) killed half-way leaves only a temporary file, which the
// next shmqd removes, and its work is simply redone.
Queue detail::QueueAccess::create_prepared(std::string_view name, const QueueOptions& options,
                                           std::string_view ns_arg, const PrepareSegment& prepare,
                                           uid_t owner) {
  auto m = std::make_shared<Mapping>();
  m->ns = detail::resolve_namespace(ns_arg);
  validate_name(name);
  m->name = std::string(name);
  detail::validate_queue_options(options);
  m->capacity = options.capacity;
  m->max_message = options.max_message;
  m->max_producers = options.max_producers;
  m->max_groups = options.max_groups;
  m->max_consumers = options.max_consumers;
  m->durable = options.durable;
  m->record_key = detail::new_record_key();
  detail::copy_policy(*m, options.policy);
  if (!prepare) detail::check_dead_letter_queue(m->ns, name, options);
  const Geometry g = geometry(options.capacity, options.max_producers, options.max_groups,
                              options.max_consumers);
  const std::string what = describe_queue(m->ns, name);
  const std::string dir = shm_dir().string();
  const std::string final_path = dir + detail::segment_name(m->ns, name);
  m->path = final_path;
  if (::access(final_path.c_str(), F_OK) == 0) throw Error(Errc::AlreadyExists, what + " already exists");
  // Only the rebuild (which prepares the segment from the journal) may
  // create a queue whose journal exists.
  if (!prepare) refuse_if_journaled(m->ns, name);
  const std::string building = dir + detail::creating_segment_name(m->ns, name);
  // What shm_open does, in any directory: O_NOFOLLOW, O_CLOEXEC. 0600 until
  // the owner and group are set: only then does fchmod open it to the group
  // (no window in which the creator's own group could open it).
  m->fd = ::open(building.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (m->fd < 0) {
    if (errno == EACCES) throw_errno(Errc::PermissionDenied, "cannot create " + what + " in " + dir);
    if (errno == ENOSPC) throw_errno(Errc::NoSpace, "cannot create " + what + " in " + dir);
    throw_errno(Errc::System, "cannot create " + what + " in " + dir);
  }
  // Held while building: the kernel drops it if we die, which is how shmqd
  // tells an abandoned build from one in progress (in any pid namespace).
  (void)::flock(m->fd, LOCK_EX);
  // Every failure from here removes the file: nothing is left behind.
  const auto fail = [&](Errc code, const std::string& why) {
    const int saved = errno;
    ::unlink(building.c_str());
    errno = saved;
    throw_errno(code, why);
  };
  const std::uint64_t file_bytes = detail::segment_file_bytes(m->fd, g.segment_bytes);
  try {
    detail::apply_owner(m->fd, owner, options.group, what);
    check_room(m->fd, dir, file_bytes, what);
  } catch (...) {
    ::unlink(building.c_str());
    throw;
  }
  const std::string sized = what + " (" + std::to_string(file_bytes) + " bytes in " + dir + ")";
  if (::fchmod(m->fd, options.mode) != 0) fail(Errc::System, "cannot set the mode of " + what);
  if (::ftruncate(m->fd, static_cast<off_t>(file_bytes)) != 0) {
    fail(Errc::NoSpace, "cannot size " + sized);
  }
  // Reserve the pages now: a full tmpfs (or too few huge pages) must fail
  // here, not SIGBUS a writer later.
  if (const int rc = ::posix_fallocate(m->fd, 0, static_cast<off_t>(file_bytes)); rc != 0) {
    errno = rc;
    fail(rc == ENOSPC ? Errc::NoSpace : Errc::System, "cannot allocate " + sized);
  }
  try {
    detail::map_segment(*m, file_bytes, what);
    initialise(*m, options, g, prepare);
  } catch (...) {
    ::unlink(building.c_str());
    throw;
  }
  if (!publish_segment(building, final_path)) {
    if (errno == EEXIST) fail(Errc::AlreadyExists, what + " was created by another process meanwhile");
    fail(Errc::System, "cannot name " + what);
  }
  (void)::flock(m->fd, LOCK_UN);  // SegmentLock takes it on this descriptor, like every client
  return Queue(std::move(m));
}

}  // namespace shmq
