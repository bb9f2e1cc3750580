// A truncated segment must not kill the process (docs/security.md,
// "A truncated segment").
//
// A peer that may write a queue's segment may also shrink its file
// (`truncate -s 4096 /dev/shm/shmq.<ns>.<queue>`); the kernel then answers
// every access past the new end with SIGBUS, whose default action kills the
// process. libshmq's SIGBUS handler recognises a fault inside a queue
// segment this process maps, replaces that whole mapping with private zero
// pages, marks it broken and returns: the access goes on against the zeros,
// and every later call on that queue reports Status::Corrupt (a blocking
// call that was already waiting too, at once). A SIGBUS
// anywhere else goes to the handler that was there before (or kills the
// process, as without shmq).
//
// libshmq installs the handler by itself when it maps its first segment, if
// SIGBUS still has its default action then. A program with its own SIGBUS
// handler keeps it; it may call install_sigbus_guard() after installing its
// own, to have shmq's handler in front (faults elsewhere are passed on to it).
// shmqd installs it at start.
#pragma once

#include "shmq/export.hpp"

namespace shmq {

// Installs shmq's SIGBUS handler in front of the current one, whatever it
// is (nothing when it is shmq's already). Thread-safe. Throws
// shmq::Error(System) if sigaction fails.
SHMQ_API void install_sigbus_guard();

// Whether shmq's handler is the process's SIGBUS handler now.
[[nodiscard]] SHMQ_API bool sigbus_guard_installed() noexcept;

}  // namespace shmq
