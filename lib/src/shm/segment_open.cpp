// Opening a queue's segment: waiting out a creator, validating everything
// this library assumes, and mapping it whole (Queue::open, open_read_only).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "shm/segment.hpp"

namespace shmq {
namespace {

using detail::describe_queue;
using detail::Mapping;
using detail::throw_errno;
using namespace layout;

std::string_view bounded(const char (&src)[kNameBytes]) {
  return {src, ::strnlen(src, kNameBytes)};
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
                                        "; this library reads version " + std::to_string(kLayoutVersion) +
                                        " (another shmq version made it: docs/operations.md, Upgrades, says how "
                                        "to recreate it without losing a durable queue's journal)");
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
  o.policy = detail::policy_of(*h);
  try {
    detail::validate_queue_options(o);
  } catch (const Error& e) {
    corrupt(e.what());
  }
  const Geometry g = geometry(o.capacity, o.max_producers, o.max_groups, o.max_consumers);
  // On hugetlbfs the file is the segment rounded up to whole huge pages.
  const std::uint64_t expected_file_bytes = detail::segment_file_bytes(m.fd, g.segment_bytes);
  if (s.segment_bytes != g.segment_bytes || file_bytes != expected_file_bytes) {
    corrupt("size " + std::to_string(file_bytes) + " bytes, expected " + std::to_string(expected_file_bytes));
  }
  if (s.producers_offset != g.producers_offset || s.groups_offset != g.groups_offset ||
      s.consumers_offset != g.consumers_offset || s.states_offset != g.states_offset || s.ring_offset != g.ring_offset ||
      h->deliveries_offset != g.deliveries_offset) {
    corrupt("table offsets do not match its sizes");
  }
  if ((s.record_key & kRecordKeyBit) == 0) corrupt("its record key is not one shmq makes");
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
  m.record_key = s.record_key;
  detail::copy_policy(m, o.policy);
  detail::bind_tables(m, g);
}

std::shared_ptr<Mapping> open_mapping(std::string_view name, std::string_view ns_arg, bool read_only) {
  auto m = std::make_shared<Mapping>();
  m->ns = detail::resolve_namespace(ns_arg);
  validate_name(name);
  m->name = std::string(name);
  m->read_only = read_only;
  const std::string what = describe_queue(m->ns, name);
  m->path = detail::segment_path(m->ns, name);
  // What shm_open does (O_NOFOLLOW, O_CLOEXEC), and O_NONBLOCK: a FIFO under
  // a queue's name must not hang the open (it is refused below).
  m->fd = ::open(m->path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (m->fd < 0) {
    if (errno == ENOENT) throw Error(Errc::NotFound, what + " not found");
    if (errno == EACCES) detail::throw_open_denied(m->path, read_only, what);
    throw_errno(Errc::System, "cannot open " + what);
  }
  // A creator between shm_open and its last store shows an empty or
  // unversioned segment for a few microseconds: give it a moment.
  for (int attempt = 0;; ++attempt) {
    struct stat st {};
    if (::fstat(m->fd, &st) != 0) throw_errno(Errc::System, "cannot stat " + what);
    if (!S_ISREG(st.st_mode)) throw Error(Errc::Incompatible, what + " is not an shmq segment (not a regular file)");
    const auto file_bytes = static_cast<std::uint64_t>(st.st_size);
    try {
      if (file_bytes < sizeof(QueueHeader)) {
        throw Error(file_bytes == 0 ? Errc::NotReady : Errc::Corrupt,
                    what + (file_bytes == 0 ? " is still being created (or its creator died)"
                                            : " is truncated (" + std::to_string(file_bytes) + " bytes)"));
      }
      // Whole huge pages on hugetlbfs (munmap cannot split one).
      detail::map_segment(*m, std::min(file_bytes, detail::segment_file_bytes(m->fd, sizeof(QueueHeader))), what);
      validate(*m, file_bytes, what);
      detail::unguard_mapping(m->guard);
      ::munmap(m->base, m->size);
      m->base = nullptr;
      detail::map_segment(*m, file_bytes, what);
      // Rebind to the full mapping (same offsets, new base).
      detail::bind_tables(*m, geometry(m->capacity, m->max_producers, m->max_groups, m->max_consumers));
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

}  // namespace

Queue Queue::open(std::string_view name, std::string_view ns) { return Queue(open_mapping(name, ns, false)); }

Queue Queue::open_read_only(std::string_view name, std::string_view ns) {
  return Queue(open_mapping(name, ns, true));
}

}  // namespace shmq
