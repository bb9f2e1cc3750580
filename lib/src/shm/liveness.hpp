// Liveness that holds across pid namespaces: an entry's lock.
//
// Every table entry (producer, consumer, and the daemon's own place in each
// queue) owns one byte of the segment file's lock space, far past its end
// (layout.hpp, "lock bytes"). Whoever takes the entry first takes an OFD
// write lock on its byte, and lets it go only after leaving the entry. The
// kernel drops the lock when the holder's last descriptor of it closes, which
// death does, however it comes. So "the entry is attached and its byte is
// locked" means its holder lives, and any process that can open the file
// (another pid namespace, another user) can ask the kernel (F_OFD_GETLK)
// without trusting a pid read from shared memory.
//
// The lock sits on a descriptor of its own per Mapping and process (never
// the Mapping's fd: OFD locks of one open file description never conflict
// with each other, so a check through it would miss ours). A forked child
// shares its parent's open file descriptions, and with them the parent's
// locks: so the child closes every inherited one at fork (pthread_atfork),
// or a dead parent would look alive for as long as the child lives.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>

namespace shmq::detail {

struct Mapping;

// An OFD lock request of `type` (F_RDLCK, F_WRLCK, F_UNLCK) on one byte.
[[nodiscard]] struct flock byte_lock(short type, off_t byte) noexcept;

[[nodiscard]] off_t daemon_lock_byte() noexcept;
[[nodiscard]] off_t producer_lock_byte(std::uint32_t index) noexcept;
[[nodiscard]] off_t consumer_lock_byte(std::uint32_t group, std::uint32_t index) noexcept;

// Takes entry `byte` for this process. Throws Error(NameInUse) when another
// process holds it, Error(System) when the kernel refuses (or
// PermissionDenied, when this user may not write the segment).
void hold_entry(const Mapping& map, off_t byte);
// Lets entry `byte` go, once the entry was left.
void let_go_entry(const Mapping& map, off_t byte) noexcept;
// Whether some process holds entry `byte`. When the kernel cannot answer
// (it never fails on a valid descriptor), says yes: a live entry taken
// for dead would be repaired under its owner's feet.
[[nodiscard]] bool entry_held(const Mapping& map, off_t byte) noexcept;

// Closes this Mapping's lock descriptor (the Mapping is going away).
void close_entry_locks(Mapping& map) noexcept;

// The inode of this process's pid namespace (/proc/self/ns/pid), 0 when
// unknown: a pid recorded with it means something only to processes of the
// same namespace.
[[nodiscard]] std::uint64_t self_pid_namespace() noexcept;

}  // namespace shmq::detail
