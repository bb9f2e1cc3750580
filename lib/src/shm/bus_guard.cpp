// The bus guard (bus_guard.hpp): the registry of guarded mappings and the
// SIGBUS handler.
//
// Everything the handler touches is async-signal-safe: loads and CASes of
// lock-free atomics in a static table, and the mmap, mprotect and sigaction
// system calls (mmap and mprotect made with syscall(2) directly, so that no
// sanitizer's interceptor runs inside the handler). No lock, no allocation,
// no logging; errno is saved and restored.
#include "shm/bus_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <utility>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shmq/sigbus.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

namespace {

// An entry's life: Free -> Claimed (being filled) -> Active -> Breaking (its
// mapping is being replaced) -> Broken (or Failed, when the replacement
// failed) -> Free again when the mapping is withdrawn.
enum EntryState : std::uint32_t { kFree, kClaimed, kActive, kBreaking, kBroken, kFailed };

struct Entry {
  std::atomic<std::uint32_t> state{kFree};
  // Written while Claimed, published by the release store of Active.
  std::atomic<std::uintptr_t> base{0};
  std::atomic<std::size_t> size{0};
  std::atomic<int> fd{-1};
  std::atomic<bool> read_only{false};
  // Its file has no name left (deleted): found by check_segment_size.
  std::atomic<bool> unlinked{false};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free && std::atomic<std::uintptr_t>::is_always_lock_free &&
                  std::atomic<std::size_t>::is_always_lock_free && std::atomic<int>::is_always_lock_free &&
                  std::atomic<bool>::is_always_lock_free,
              "the SIGBUS handler reads these: they must be lock-free to be async-signal-safe");

// Constant-initialised (zero): usable before any constructor runs.
Entry g_entries[kMaxGuardedMappings];
// Entries [0, g_used) have been claimed at least once: scans stop there.
std::atomic<int> g_used{0};
// Entries now Breaking, Broken or Failed.
std::atomic<std::uint32_t> g_broken{0};
// Entries whose file was found without a name (deleted queues).
std::atomic<std::uint32_t> g_unlinked{0};

// The disposition before ours, to pass foreign faults to: two slots, so that
// installing again (in front of a handler installed over ours) never writes
// the one a handler may be reading. Written under g_install_mutex, published
// by g_previous_slot (-1: none yet).
struct sigaction g_previous[2] {};
std::atomic<int> g_previous_slot{-1};
std::atomic<bool> g_installed{false};  // ours was installed once: no more automatic tries
std::mutex g_install_mutex;

void* raw_mmap_anonymous(std::uintptr_t base, std::size_t size) noexcept {
  const long rc = ::syscall(SYS_mmap, base, size, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0L);
  return rc < 0 && rc > -4096 ? MAP_FAILED : reinterpret_cast<void*>(rc);
}

// The data path's own checks then report Corrupt (bus_guard.hpp).
void poison(std::uintptr_t base, std::size_t size) noexcept {
  if (size < sizeof(layout::QueueHeader)) return;
  auto* header = reinterpret_cast<layout::QueueHeader*>(base);
  // relaxed: private memory now; the threads of this process that read it
  // learn that it is broken from the entry's state, not from these words.
  header->tail.store(layout::kFirstPosition + 1, std::memory_order_relaxed);
  header->journal_synced.store(1, std::memory_order_relaxed);
}

// Replaces entry `i`'s mapping with poisoned zero pages, once: the first
// caller does it, any other (another thread's fault, a concurrent fstat
// check) waits until it is done. Returns whether the mapping is replaced.
// Async-signal-safe.
bool replace(int i) noexcept {
  Entry& e = g_entries[i];
  std::uint32_t state = kActive;
  // seq_cst: the flag goes up before the pages change (bus_guard.hpp, "Ordering");
  // pairs with the acquire loads in mapping_broken.
  if (e.state.compare_exchange_strong(state, kBreaking, std::memory_order_seq_cst)) {
    g_broken.fetch_add(1, std::memory_order_seq_cst);  // pairs with the load in any_mapping_broken
    const std::uintptr_t base = e.base.load(std::memory_order_relaxed);
    const std::size_t size = e.size.load(std::memory_order_relaxed);
    bool ok = raw_mmap_anonymous(base, size) != MAP_FAILED;
    if (ok) {
      poison(base, size);
      if (e.read_only.load(std::memory_order_relaxed)) {
        ok = ::syscall(SYS_mprotect, base, size, PROT_READ) == 0;
      }
    }
    // release: pairs with the acquire spin below.
    e.state.store(ok ? kBroken : kFailed, std::memory_order_release);
    return ok;
  }
  // Another thread replaces it now: a fault of ours re-executes only once the
  // zero pages are there. (It never waits on itself: a thread inside
  // replace() touches no guarded page.)
  while (state == kBreaking) state = e.state.load(std::memory_order_acquire);
  return state == kBroken;
}

// The default action, as if shmq had never installed anything.
void die_as_before(int sig, const siginfo_t* info) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(sig, &dfl, nullptr);
  // A fault returns to the faulting access, which faults again and now kills
  // (with a core, at the right address). A SIGBUS sent by kill(2) is sent
  // again: blocked while we run, it is delivered as we return.
  if (info == nullptr || info->si_code <= 0) ::raise(sig);
}

void pass_on(int sig, siginfo_t* info, void* context) noexcept {
  const int slot = g_previous_slot.load(std::memory_order_acquire);  // pairs with install's release store
  if (slot < 0) {
    die_as_before(sig, info);
    return;
  }
  const struct sigaction& prev = g_previous[slot];
  if ((prev.sa_flags & SA_SIGINFO) != 0) {
    if (prev.sa_sigaction != nullptr) {
      prev.sa_sigaction(sig, info, context);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // A sent SIGBUS that the process ignored before is still ignored (a fault
  // cannot be ignored: the kernel kills then, and so do we).
  if ((prev.sa_flags & SA_SIGINFO) == 0 && prev.sa_handler == SIG_IGN && info != nullptr && info->si_code <= 0) {
    return;
  }
  die_as_before(sig, info);
}

extern "C" void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  // BUS_ADRERR: an access past the end of a file's mapping. Anything else
  // (a machine check, a sent signal) is not ours to handle.
  if (info != nullptr && info->si_code == BUS_ADRERR) {
    const int i = guard_entry_of(info->si_addr);
    if (i != kNoGuard && replace(i)) {
      errno = saved_errno;
      return;  // the access re-executes against the zero pages
    }
  }
  pass_on(sig, info, context);
  errno = saved_errno;
}

bool default_disposition(const struct sigaction& sa) noexcept {
  return (sa.sa_flags & SA_SIGINFO) == 0 && sa.sa_handler == SIG_DFL;
}

bool ours(const struct sigaction& sa) noexcept {
  return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == on_sigbus;
}

struct sigaction current_disposition() {
  struct sigaction current {};
  if (::sigaction(SIGBUS, nullptr, &current) != 0) {
    throw Error(Errc::System, std::string("cannot read the SIGBUS disposition: ") + std::strerror(errno));
  }
  return current;
}

// Puts our handler in front of the current one. Returns false if
// `only_if_default` and another handler is there.
bool install(bool only_if_default) {
  const std::lock_guard lock(g_install_mutex);
  const struct sigaction current = current_disposition();
  if (ours(current)) return true;
  if (only_if_default && !default_disposition(current)) return false;
  const int slot = g_previous_slot.load(std::memory_order_relaxed) == 0 ? 1 : 0;
  g_previous[slot] = current;
  // release: pairs with pass_on's acquire load; before the handler is there.
  g_previous_slot.store(slot, std::memory_order_release);
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  // SA_ONSTACK: on the alternate stack where the thread has one. SIGBUS
  // stays blocked while the handler runs (no SA_NODEFER).
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGBUS, &sa, nullptr) != 0) {
    throw Error(Errc::System, std::string("cannot install the SIGBUS handler: ") + std::strerror(errno));
  }
  g_installed.store(true, std::memory_order_relaxed);  // only spares guard_mapping the look
  return true;
}

}  // namespace

int guard_mapping(void* base, std::size_t size, int fd, bool read_only) noexcept {
  // relaxed: a hint; install() looks at the disposition itself, under its mutex.
  if (!g_installed.load(std::memory_order_relaxed)) {
    try {
      (void)install(true);
    } catch (const std::exception&) {
      // unguarded, as before: the mapping still works
    }
  }
  for (int i = 0; i < kMaxGuardedMappings; ++i) {
    Entry& e = g_entries[i];
    std::uint32_t state = kFree;
    // acquire: pairs with unguard_mapping's release store of Free (its last
    // user is done with the fields we overwrite).
    if (!e.state.compare_exchange_strong(state, kClaimed, std::memory_order_acquire)) continue;
    e.base.store(reinterpret_cast<std::uintptr_t>(base), std::memory_order_relaxed);
    e.size.store(size, std::memory_order_relaxed);
    e.fd.store(fd, std::memory_order_relaxed);
    e.read_only.store(read_only, std::memory_order_relaxed);
    int used = g_used.load(std::memory_order_relaxed);
    // relaxed: the release store of Active below publishes it with the fields.
    while (used <= i && !g_used.compare_exchange_weak(used, i + 1, std::memory_order_relaxed)) {
    }
    // release: pairs with the acquire loads of the state in guard_entry_of
    // and check_segment_size, which then read the fields above.
    e.state.store(kActive, std::memory_order_release);
    return i;
  }
  return kNoGuard;
}

void unguard_mapping(int& entry) noexcept {
  if (entry == kNoGuard) return;
  Entry& e = g_entries[std::exchange(entry, kNoGuard)];
  // A replacement under way finishes first (it writes the pages we are about to unmap).
  std::uint32_t state = e.state.load(std::memory_order_acquire);  // pairs with replace's release store
  while (state == kBreaking) state = e.state.load(std::memory_order_acquire);
  if (state >= kBreaking) g_broken.fetch_sub(1, std::memory_order_relaxed);
  // relaxed, both: a hint for waits (any_mapping_unlinked); nothing is published with it.
  if (e.unlinked.exchange(false, std::memory_order_relaxed)) g_unlinked.fetch_sub(1, std::memory_order_relaxed);
  // release: pairs with guard_mapping's acquire CAS.
  e.state.store(kFree, std::memory_order_release);
}

bool mapping_broken(int entry) noexcept {
  // acquire: pairs with replace's seq_cst CAS to Breaking.
  return entry != kNoGuard && g_entries[entry].state.load(std::memory_order_acquire) >= kBreaking;
}

bool any_mapping_broken() noexcept {
  // relaxed: a hint; mapping_broken's acquire load decides.
  return g_broken.load(std::memory_order_relaxed) != 0;
}

int guard_entry_of(const void* address) noexcept {
  const auto a = reinterpret_cast<std::uintptr_t>(address);
  const int used = g_used.load(std::memory_order_acquire);  // pairs with the release store of Active
  for (int i = 0; i < used; ++i) {
    const Entry& e = g_entries[i];
    // acquire: pairs with guard_mapping's release store of Active.
    if (e.state.load(std::memory_order_acquire) < kActive) continue;
    const std::uintptr_t base = e.base.load(std::memory_order_relaxed);
    if (a - base < e.size.load(std::memory_order_relaxed)) return i;  // unsigned: base <= a < base + size
  }
  return kNoGuard;
}

bool any_mapping_unlinked() noexcept { return g_unlinked.load(std::memory_order_relaxed) != 0; }

bool segment_unlinked(int entry) noexcept {
  return entry != kNoGuard && g_entries[entry].unlinked.load(std::memory_order_relaxed);
}

bool check_segment_size(int entry) noexcept {
  if (entry == kNoGuard) return false;
  Entry& e = g_entries[entry];
  // acquire: pairs with guard_mapping's release store of Active.
  const std::uint32_t state = e.state.load(std::memory_order_acquire);
  if (state != kActive) return state >= kBreaking;
  struct stat st {};
  if (::fstat(e.fd.load(std::memory_order_relaxed), &st) != 0) return false;
  // relaxed: a report for this process's waits; the queue stays usable.
  if (st.st_nlink == 0 && !e.unlinked.exchange(true, std::memory_order_relaxed)) {
    g_unlinked.fetch_add(1, std::memory_order_relaxed);
  }
  if (static_cast<std::uint64_t>(st.st_size) >= e.size.load(std::memory_order_relaxed)) return false;
  // No signal handler may run on this thread while it replaces the mapping:
  // one that touched the segment would fault and wait for us for ever.
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &saved);
  (void)replace(entry);
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  return mapping_broken(entry);
}

std::optional<std::string> segment_lost(const Mapping& map) {
  const bool broken = check_segment_size(map.guard);
  struct stat st {};
  const bool stat_ok = ::fstat(map.fd, &st) == 0;
  const bool shrunk = stat_ok && static_cast<std::uint64_t>(st.st_size) < map.size;
  if (!broken && !shrunk) return std::nullopt;
  return "its segment was truncated (" + (stat_ok ? std::to_string(st.st_size) : std::string("?")) +
         " bytes, expected " + std::to_string(map.size) + ")";
}

}  // namespace shmq::detail

namespace shmq {

void install_sigbus_guard() { (void)detail::install(false); }

bool sigbus_guard_installed() noexcept {
  try {
    return detail::ours(detail::current_disposition());
  } catch (const Error&) {
    return false;
  }
}

}  // namespace shmq
