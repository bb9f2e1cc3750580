// Creating, opening (with validation), removing and listing queue segments.
#include <dirent.h>
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
#include <new>
#include <filesystem>
#include <stdio.h>
#include <thread>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shm/prepared_create.hpp"
#include "shm/process.hpp"
#include "shmq/queue.hpp"

namespace shmq {
namespace detail {

Mapping::~Mapping() {
  unguard_mapping(guard);  // before the pages go (bus_guard.hpp)
  if (base != nullptr) ::munmap(base, size);
  if (fd >= 0) ::close(fd);
}

void announce_table_change(const Mapping& map) noexcept { ::futimens(map.fd, nullptr); }

std::string segment_name(std::string_view ns, std::string_view queue) {
  return "/shmq." + std::string(ns) + "." + std::string(queue);
}

std::string creating_segment_name(std::string_view ns, std::string_view queue) {
  static std::atomic<std::uint32_t> serial{0};  // threads of one process creating at once
  return "/" + std::string(kCreatingPrefix) + std::string(ns) + "." + std::string(queue) + "." +
         std::to_string(self_pid()) + "." + std::to_string(serial.fetch_add(1, std::memory_order_relaxed));
}

}  // namespace detail

namespace {

using detail::Mapping;
using namespace layout;

constexpr const char* kShmDir = "/dev/shm";

std::string resolve_namespace(std::string_view ns) {
  if (ns.empty()) return current_namespace();
  validate_namespace(ns);
  return std::string(ns);
}

std::string describe(const std::string& ns, std::string_view name) {
  return "queue '" + std::string(name) + "' in namespace '" + ns + "'";
}

[[noreturn]] void throw_errno(Errc code, const std::string& what) {
  throw Error(code, what + ": " + std::strerror(errno));
}

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

void validate_options(const QueueOptions& o) {
  const auto bad = [](const std::string& why) { throw Error(Errc::InvalidArgument, why); };
  if (!is_power_of_two(o.capacity) || o.capacity < kMinCapacity || o.capacity > kMaxCapacity) {
    bad("capacity " + std::to_string(o.capacity) +
        " must be a power of two from 4 KiB to 1 TiB (e.g. 1048576)");
  }
  if (o.max_message == 0 || record_bytes(o.max_message) > o.capacity / 4) {
    bad("max message size " + std::to_string(o.max_message) +
        " must be at least 1 and, with its 32-byte header, at most a quarter of the capacity (" +
        std::to_string(o.capacity / 4) + " bytes)");
  }
  if (o.max_producers == 0 || o.max_producers > kMaxProducers) bad("max producers must be 1..255");
  if (o.max_groups == 0 || o.max_groups > kMaxGroups) bad("max groups must be 1..64");
  if (o.max_consumers == 0 || o.max_consumers > kMaxConsumers) bad("max consumers must be 1..64");
  if ((o.mode & ~0777u) != 0 || (o.mode & 0600u) != 0600u) {
    bad("mode must be an octal permission that lets the owner read and write (e.g. 600, 660)");
  }
}

void check_room_in_dev_shm(std::uint64_t bytes) {
  struct statvfs vfs {};
  if (::statvfs(kShmDir, &vfs) != 0) return;  // let ftruncate/fallocate decide
  const std::uint64_t free_bytes = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (bytes > free_bytes) {
    throw Error(Errc::NoSpace, "the segment needs " + std::to_string(bytes) + " bytes but " +
                                   kShmDir + " has " + std::to_string(free_bytes) + " free");
  }
}

void copy_name(char (&dst)[kNameBytes], std::string_view src) {
  std::memset(dst, 0, kNameBytes);
  std::memcpy(dst, src.data(), std::min(src.size(), kNameBytes - 1));
}

std::string_view bounded(const char (&src)[kNameBytes]) {
  return {src, ::strnlen(src, kNameBytes)};
}

// Points the mapping's table pointers into the segment.
void bind_tables(Mapping& m, const Geometry& g) {
  auto* base = static_cast<std::byte*>(m.base);
  m.header = reinterpret_cast<QueueHeader*>(base);
  m.producers = reinterpret_cast<ProducerSlot*>(base + g.producers_offset);
  m.groups = reinterpret_cast<GroupSlot*>(base + g.groups_offset);
  m.consumers = reinterpret_cast<ConsumerSlot*>(base + g.consumers_offset);
  m.commits = reinterpret_cast<std::atomic<std::uint64_t>*>(base + g.commit_offset);
  m.states = reinterpret_cast<std::atomic<std::uint64_t>*>(base + g.states_offset);
  m.ring = base + g.ring_offset;
  m.chunks = g.chunks;
  m.mask = m.capacity - 1;
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
  s.commit_offset = g.commit_offset;
  s.states_offset = g.states_offset;
  s.ring_offset = g.ring_offset;
  copy_name(s.ns, m.ns);
  copy_name(s.name, m.name);
  header->tail.store(kFirstPosition, std::memory_order_relaxed);
  header->head.store(kFirstPosition, std::memory_order_relaxed);
  // Nothing to journal yet; a non-durable queue keeps them 0.
  if (o.durable) {
    header->journal_written.store(kFirstPosition, std::memory_order_relaxed);
    header->journal_synced.store(kFirstPosition, std::memory_order_relaxed);
  }
  bind_tables(m, g);
  for (std::uint32_t i = 0; i < o.max_producers; ++i) {
    m.producers[i].claim_pos.store(kNoPosition, std::memory_order_relaxed);
  }
  if (prepare) prepare(m);
  // Publishes every store above to anyone who reads the version with acquire.
  s.layout_version.store(kLayoutVersion, std::memory_order_release);
}

void map_or_throw(Mapping& m, std::size_t bytes, const std::string& what) {
  const int prot = m.read_only ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = ::mmap(nullptr, bytes, prot, MAP_SHARED, m.fd, 0);
  if (p == MAP_FAILED) throw_errno(Errc::System, "cannot map " + what);
  m.base = p;
  m.size = bytes;
  m.guard = detail::guard_mapping(p, bytes, m.fd, m.read_only);  // a truncation: Corrupt, not SIGBUS
}

// Checks a mapped header against everything this library assumes. On success
// the mapping holds validated copies of the sizes and points at the tables.
void validate(Mapping& m, std::uint64_t file_bytes, const std::string& what) {
  const auto* h = static_cast<const QueueHeader*>(m.base);
  const Superblock& s = h->super;
  // The version first: a creator writes it last (release), so until then even
  // the magic may still be zero.
  const std::uint32_t version = s.layout_version.load(std::memory_order_acquire);  // pairs with initialise()
  if (version == 0) throw Error(Errc::NotReady, what + " is still being created (or its creator died)");
  if (s.magic != kMagic) throw Error(Errc::Incompatible, what + " is not an shmq segment (bad magic)");
  if (version != kLayoutVersion) {
    throw Error(Errc::Incompatible, what + " has layout version " + std::to_string(version) +
                                        "; this library reads version " + std::to_string(kLayoutVersion));
  }
  const auto corrupt = [&](const std::string& why) { throw Error(Errc::Corrupt, what + " is corrupt: " + why); };
  if (s.header_bytes != sizeof(QueueHeader)) corrupt("header size " + std::to_string(s.header_bytes));
  QueueOptions o;
  o.capacity = s.capacity;
  o.max_message = s.max_message;
  o.max_producers = s.max_producers;
  o.max_groups = s.max_groups;
  o.max_consumers = s.max_consumers;
  o.mode = 0600;
  try {
    validate_options(o);
  } catch (const Error& e) {
    corrupt(e.what());
  }
  const Geometry g = geometry(o.capacity, o.max_producers, o.max_groups, o.max_consumers);
  if (s.segment_bytes != g.segment_bytes || file_bytes != g.segment_bytes) {
    corrupt("size " + std::to_string(file_bytes) + " bytes, expected " + std::to_string(g.segment_bytes));
  }
  if (s.producers_offset != g.producers_offset || s.groups_offset != g.groups_offset ||
      s.consumers_offset != g.consumers_offset || s.commit_offset != g.commit_offset ||
      s.states_offset != g.states_offset || s.ring_offset != g.ring_offset) {
    corrupt("table offsets do not match its sizes");
  }
  if (bounded(s.ns) != m.ns || bounded(s.name) != m.name) {
    throw Error(Errc::WrongNamespace, what + " was created as queue '" + std::string(bounded(s.name)) +
                                          "' in namespace '" + std::string(bounded(s.ns)) + "'");
  }
  m.capacity = o.capacity;
  m.max_message = o.max_message;
  m.max_producers = o.max_producers;
  m.max_groups = o.max_groups;
  m.max_consumers = o.max_consumers;
  m.durable = (s.flags & kFlagDurable) != 0;
  bind_tables(m, g);
}

std::shared_ptr<Mapping> open_mapping(std::string_view name, std::string_view ns_arg, bool read_only) {
  auto m = std::make_shared<Mapping>();
  m->ns = resolve_namespace(ns_arg);
  validate_name(name);
  m->name = std::string(name);
  m->read_only = read_only;
  const std::string what = describe(m->ns, name);
  const std::string shm = detail::segment_name(m->ns, name);
  m->fd = ::shm_open(shm.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
  if (m->fd < 0) {
    if (errno == ENOENT) throw Error(Errc::NotFound, what + " not found");
    if (errno == EACCES) throw_errno(Errc::PermissionDenied, "cannot open " + what);
    throw_errno(Errc::System, "cannot open " + what);
  }
  // A creator between shm_open and its last store shows an empty or
  // unversioned segment for a few microseconds: give it a moment.
  for (int attempt = 0;; ++attempt) {
    struct stat st {};
    if (::fstat(m->fd, &st) != 0) throw_errno(Errc::System, "cannot stat " + what);
    const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
    try {
      if (file_bytes < sizeof(QueueHeader)) {
        throw Error(file_bytes == 0 ? Errc::NotReady : Errc::Corrupt,
                    what + (file_bytes == 0 ? " is still being created (or its creator died)"
                                            : " is truncated (" + std::to_string(file_bytes) + " bytes)"));
      }
      map_or_throw(*m, sizeof(QueueHeader), what);
      validate(*m, file_bytes, what);
      detail::unguard_mapping(m->guard);
      ::munmap(m->base, m->size);
      m->base = nullptr;
      map_or_throw(*m, file_bytes, what);
      // Rebind to the full mapping (same offsets, new base).
      bind_tables(*m, geometry(m->capacity, m->max_producers, m->max_groups, m->max_consumers));
      return m;
    } catch (const Error& e) {
      detail::unguard_mapping(m->guard);
      if (m->base != nullptr) ::munmap(m->base, m->size);
      m->base = nullptr;
      if (e.code() != Errc::NotReady || attempt >= 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

// Refuses to create a queue whose journal exists: the queue must be rebuilt
// from it (docs/journal.md, "Boot order").
void refuse_if_journaled(const std::string& ns, std::string_view name) {
  std::filesystem::path dir;
  try {
    dir = daemon_data_dir(ns) / "journal" / name;
  } catch (const Error&) {
    return;  // no data directory can be named (no HOME): then there is no journal either
  }
  std::error_code ec;
  if (!std::filesystem::exists(dir / "queue.json", ec)) return;
  throw Error(Errc::NeedsRebuild, describe(ns, name) + " has a journal in " + dir.string() +
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
  return detail::QueueAccess::create_prepared(name, options, ns_arg, {});
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
                                           std::string_view ns_arg, const PrepareSegment& prepare) {
  auto m = std::make_shared<Mapping>();
  m->ns = resolve_namespace(ns_arg);
  validate_name(name);
  m->name = std::string(name);
  validate_options(options);
  m->capacity = options.capacity;
  m->max_message = options.max_message;
  m->max_producers = options.max_producers;
  m->max_groups = options.max_groups;
  m->max_consumers = options.max_consumers;
  m->durable = options.durable;
  const Geometry g = geometry(options.capacity, options.max_producers, options.max_groups,
                              options.max_consumers);
  const std::string what = describe(m->ns, name);
  const std::string final_path = kShmDir + detail::segment_name(m->ns, name);
  if (::access(final_path.c_str(), F_OK) == 0) throw Error(Errc::AlreadyExists, what + " already exists");
  // Only the rebuild (which prepares the segment from the journal) may
  // create a queue whose journal exists.
  if (!prepare) refuse_if_journaled(m->ns, name);
  check_room_in_dev_shm(g.segment_bytes);
  const std::string shm = detail::creating_segment_name(m->ns, name);
  m->fd = ::shm_open(shm.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, options.mode);
  if (m->fd < 0) {
    if (errno == EACCES) throw_errno(Errc::PermissionDenied, "cannot create " + what);
    throw_errno(Errc::System, "cannot create " + what);
  }
  // Held while building: the kernel drops it if we die, which is how shmqd
  // tells an abandoned build from one in progress (in any pid namespace).
  (void)::flock(m->fd, LOCK_EX);
  const auto fail = [&](Errc code, const std::string& why) {
    const int saved = errno;
    ::shm_unlink(shm.c_str());
    errno = saved;
    throw_errno(code, why);
  };
  if (::fchmod(m->fd, options.mode) != 0) fail(Errc::System, "cannot set the mode of " + what);
  if (::ftruncate(m->fd, static_cast<off_t>(g.segment_bytes)) != 0) {
    fail(Errc::NoSpace, "cannot size " + what);
  }
  // Reserve the pages now: a full tmpfs must fail here, not SIGBUS a writer later.
  if (const int rc = ::posix_fallocate(m->fd, 0, static_cast<off_t>(g.segment_bytes)); rc != 0) {
    errno = rc;
    fail(rc == ENOSPC ? Errc::NoSpace : Errc::System, "cannot allocate " + what);
  }
  map_or_throw(*m, g.segment_bytes, what);
  try {
    initialise(*m, options, g, prepare);
  } catch (...) {
    ::shm_unlink(shm.c_str());
    throw;
  }
  if (!publish_segment(kShmDir + shm, final_path)) {
    if (errno == EEXIST) fail(Errc::AlreadyExists, what + " was created by another process meanwhile");
    fail(Errc::System, "cannot name " + what);
  }
  (void)::flock(m->fd, LOCK_UN);  // SegmentLock takes it on this descriptor, like every client
  return Queue(std::move(m));
}

Queue Queue::open(std::string_view name, std::string_view ns) { return Queue(open_mapping(name, ns, false)); }

Queue Queue::open_read_only(std::string_view name, std::string_view ns) {
  return Queue(open_mapping(name, ns, true));
}

bool Queue::remove(std::string_view name, std::string_view ns_arg) {
  const std::string ns = resolve_namespace(ns_arg);
  validate_name(name);
  if (::shm_unlink(detail::segment_name(ns, name).c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno(errno == EACCES ? Errc::PermissionDenied : Errc::System,
              "cannot delete " + describe(ns, name));
}

std::vector<std::string> Queue::list(std::string_view ns_arg) {
  const std::string prefix = "shmq." + resolve_namespace(ns_arg) + ".";
  std::vector<std::string> names;
  DIR* dir = ::opendir(kShmDir);
  if (dir == nullptr) throw_errno(Errc::System, std::string("cannot list ") + kShmDir);
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view file = entry->d_name;
    if (!file.starts_with(prefix)) continue;
    const std::string_view queue = file.substr(prefix.size());
    try {
      validate_name(queue);
      names.emplace_back(queue);
    } catch (const Error&) {
      // not a queue of ours
    }
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string& Queue::name() const noexcept { return map_->name; }
const std::string& Queue::ns() const noexcept { return map_->ns; }
std::uint64_t Queue::capacity() const noexcept { return map_->capacity; }
std::uint32_t Queue::max_message() const noexcept { return map_->max_message; }
bool Queue::durable() const noexcept { return map_->durable; }

const std::shared_ptr<detail::Mapping>& detail::mapping_of(const Queue& queue) noexcept {
  return QueueAccess::mapping(queue);
}

bool Queue::deleted() const noexcept {
  struct stat open {}, named {};
  if (::fstat(map_->fd, &open) != 0) return false;
  if (open.st_nlink == 0) return true;
  const std::string path = kShmDir + detail::segment_name(map_->ns, map_->name);
  return ::stat(path.c_str(), &named) != 0 || named.st_ino != open.st_ino || named.st_dev != open.st_dev;
}

}  // namespace shmq
