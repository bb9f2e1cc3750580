// The bus guard: the queue segments this process maps, for the SIGBUS handler
// (lib/include/shmq/sigbus.hpp says what it promises).
//
// A fixed table of entries {base, size, fd, state}, no allocation and no
// lock, so the handler can read it. Mappings are registered when mapped and
// withdrawn before they are unmapped (segment.cpp). When a segment's file
// was shrunk under its mapping (a fault past its end, or fstat), the entry's
// mapping is *replaced*: private zero pages at the same address, with two
// header words poisoned so that the data path reports Corrupt:
//   - tail is misaligned: every claim (so every send) returns Corrupt;
//   - journal_synced is 1: a consumer of a durable queue gets past the sync
//     check to the zero "record" at position 0, which it reports Corrupt (a
//     non-durable one does anyway), and no durable confirm ever passes (it
//     needs a position past 64).
// Then the entry is marked broken. Code that loops on a mapping (waits, the
// daemon's journal threads, its watcher) checks that flag and gives up on
// the queue.
//
// Ordering: the flag goes up (seq_cst RMW) *before* the pages change. So a
// thread that read a replaced zero page and then loads the flag (acquire)
// sees it up: whatever it read before a load that shows the flag down came
// from the real segment. The journal writer relies on that (it checks after
// copying payloads out of the ring and before syncing them).
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace shmq::detail {

struct Mapping;

inline constexpr int kNoGuard = -1;
// At most this many mappings are guarded at once per process; a mapping made
// beyond them works, unguarded (a truncation kills the process, as before).
inline constexpr int kMaxGuardedMappings = 1024;

// Registers a mapping; returns its entry or kNoGuard (table full). Installs
// the SIGBUS handler the first time, if SIGBUS has its default action.
[[nodiscard]] int guard_mapping(void* base, std::size_t size, int fd, bool read_only) noexcept;
// Withdraws an entry (kNoGuard: nothing) before its mapping is unmapped,
// and sets `entry` to kNoGuard.
void unguard_mapping(int& entry) noexcept;

// Whether the entry's mapping was replaced (its segment was truncated).
[[nodiscard]] bool mapping_broken(int entry) noexcept;
// Whether any mapping of this process is broken: one relaxed load, for wait
// loops to skip the rest while all is well.
[[nodiscard]] bool any_mapping_broken() noexcept;
// The entry whose mapping holds `address`, or kNoGuard.
[[nodiscard]] int guard_entry_of(const void* address) noexcept;
// fstat: if the entry's file is now shorter than its mapping, replaces the
// mapping now, as a fault would. Returns mapping_broken(entry). A system call:
// for idle wait slices and the daemon's rescans, never the data path.
// Also notes whether the file still has a name (segment_unlinked).
bool check_segment_size(int entry) noexcept;
// Whether the entry's segment was found deleted (its file has no name left)
// by the last check_segment_size: nothing more will ever come or go.
[[nodiscard]] bool segment_unlinked(int entry) noexcept;
// Whether any mapping of this process was found deleted: one relaxed load,
// so waits skip the table lookup while all is well.
[[nodiscard]] bool any_mapping_unlinked() noexcept;

// Why `map` can no longer be used ("its segment was truncated (N bytes,
// expected M)"), or nullopt while it is whole. Checks the file's size first
// (check_segment_size), so a truncation is found before anything faults.
[[nodiscard]] std::optional<std::string> segment_lost(const Mapping& map);

}  // namespace shmq::detail
