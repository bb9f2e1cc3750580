// Queue segments: their names, the handle's accessors, removing and listing.
// Building one: segment_create.cpp; opening one: segment_open.cpp.
#include "shm/segment.hpp"

#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shm/liveness.hpp"
#include "shm/prepared_create.hpp"
#include "shm/process.hpp"

namespace shmq {
namespace detail {

using namespace layout;

Mapping::~Mapping() {
  unguard_mapping(guard);  // before the pages go (bus_guard.hpp)
  close_entry_locks(*this);
  if (base != nullptr) ::munmap(base, size);
  if (fd >= 0) ::close(fd);
}

void throw_segment_lock_failure(const Mapping& map, int error) {
  throw Error(Errc::System, "cannot lock " + describe_queue(map.ns, map.name) + ": " + std::strerror(error));
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

std::string resolve_namespace(std::string_view ns) {
  if (ns.empty()) return current_namespace();
  validate_namespace(ns);
  return std::string(ns);
}

std::string describe_queue(const std::string& ns, std::string_view name) {
  return "queue '" + std::string(name) + "' in namespace '" + ns + "'";
}

void throw_errno(Errc code, const std::string& what) {
  throw Error(code, what + ": " + std::strerror(errno));
}

namespace {

bool is_power_of_two(std::uint64_t n) { return n != 0 && (n & (n - 1)) == 0; }

}  // namespace

void validate_queue_options(const QueueOptions& o) {
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
  const DeliveryPolicy& p = o.policy;
  if (p.max_deliveries > kMaxDeliveriesLimit) {
    bad("max deliveries must be 1.." + std::to_string(kMaxDeliveriesLimit) + " (0: unlimited)");
  }
  if (p.ack_timeout.count() < 0) bad("the ack timeout must not be negative");
  if (p.ttl.count() < 0) bad("the ttl must not be negative");
  if (!p.dead_letter.empty()) validate_name(p.dead_letter, "dead-letter queue");
  if ((o.mode & ~0777u) != 0 || (o.mode & 0600u) != 0600u) {
    bad("mode must be an octal permission that lets the owner read and write (e.g. 600, 660)");
  }
}

void bind_tables(Mapping& m, const Geometry& g) {
  auto* base = static_cast<std::byte*>(m.base);
  m.header = reinterpret_cast<QueueHeader*>(base);
  m.producers = reinterpret_cast<ProducerSlot*>(base + g.producers_offset);
  m.groups = reinterpret_cast<GroupSlot*>(base + g.groups_offset);
  m.consumers = reinterpret_cast<ConsumerSlot*>(base + g.consumers_offset);
  m.states = reinterpret_cast<std::atomic<std::uint64_t>*>(base + g.states_offset);
  m.deliveries = reinterpret_cast<std::atomic<std::uint64_t>*>(base + g.deliveries_offset);
  m.ring = base + g.ring_offset;
  m.chunks = g.chunks;
  m.mask = m.capacity - 1;
}

void map_segment(Mapping& m, std::size_t bytes, const std::string& what) {
  const int prot = m.read_only ? PROT_READ : PROT_READ | PROT_WRITE;
  void* p = ::mmap(nullptr, bytes, prot, MAP_SHARED, m.fd, 0);
  if (p == MAP_FAILED) throw_errno(Errc::System, "cannot map " + what);
  m.base = p;
  m.size = bytes;
  m.guard = guard_mapping(p, bytes, m.fd, m.read_only);  // a truncation: Corrupt, not SIGBUS
}

}  // namespace detail

using detail::describe_queue;
using detail::resolve_namespace;
using detail::throw_errno;

bool Queue::remove(std::string_view name, std::string_view ns_arg) {
  const std::string ns = resolve_namespace(ns_arg);
  validate_name(name);
  if (::unlink(detail::segment_path(ns, name).c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  throw_errno(errno == EACCES ? Errc::PermissionDenied : Errc::System,
              "cannot delete " + describe_queue(ns, name));
}

std::vector<std::string> Queue::list(std::string_view ns_arg) {
  const std::string prefix = "shmq." + resolve_namespace(ns_arg) + ".";
  std::vector<std::string> names;
  const std::string shm = shm_dir().string();
  DIR* dir = ::opendir(shm.c_str());
  if (dir == nullptr) throw_errno(Errc::System, "cannot list " + shm);
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
  return ::stat(map_->path.c_str(), &named) != 0 || named.st_ino != open.st_ino || named.st_dev != open.st_dev;
}

}  // namespace shmq
