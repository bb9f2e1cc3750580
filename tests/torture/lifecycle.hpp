// What the lifecycle rounds need around shmqd (docs/reliability.md,
// "Lifecycle rounds"): a power loss's wipe of /dev/shm, a watch for the
// segment a rebuild is building, a small tmpfs as a data disk and a filler
// that fills it, and the application that opens its queue before shmqd runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "child.hpp"
#include "options.hpp"
#include "shmq/queue.hpp"

namespace shmq::torture {

[[nodiscard]] const char* lifecycle_name(Lifecycle l);  // "app-first", "rebuild-kill", "full-disk", "standby"
[[nodiscard]] std::optional<Lifecycle> lifecycle_from_name(const std::string& name);

// What a power loss takes from /dev/shm in namespace `ns`: its segments, the
// half-built ones (shmq-creating.<ns>.*) and shmqd's record and lock
// (shmqd.<ns>). Every process of the namespace must be dead. Returns how many
// files it removed.
int wipe_namespace_shm(const std::string& ns);
// The temporary name a creator of `queue` with pid `pid` builds its segment
// under starts with this (lib: creating_segment_name).
[[nodiscard]] std::string creating_prefix(const std::string& ns, const std::string& queue, pid_t pid);
[[nodiscard]] bool shm_file_with_prefix(const std::string& prefix);
[[nodiscard]] bool segment_exists(const std::string& ns, const std::string& queue);

// inotify on /dev/shm, opened before the process it watches is started.
class ShmCreations {
 public:
  ShmCreations();
  ShmCreations(const ShmCreations&) = delete;
  ShmCreations& operator=(const ShmCreations&) = delete;
  ~ShmCreations();
  // Waits up to `timeout` for a file whose name starts with `prefix` to be
  // created (or renamed) in /dev/shm; true once one was.
  bool wait_for(const std::string& prefix, Millis timeout);

 private:
  int fd_ = -1;
};

// A tmpfs of `bytes` mounted (mode 0700) at `dir` for the life of the object,
// when this process may mount (root, CAP_SYS_ADMIN); error() says why not.
class TmpfsMount {
 public:
  TmpfsMount(std::filesystem::path dir, std::uint64_t bytes);
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  ~TmpfsMount();  // unmounts (lazily, if something still holds a file there)
  [[nodiscard]] bool mounted() const { return mounted_; }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `file` until its file system is full (ENOSPC); returns the bytes written.
std::uint64_t fill_disk(const std::filesystem::path& file);

// The application of an AppFirst power loss, run in a forked child: it knows
// the data directory only as $SHMQ_DATA_DIR (the power loss took shmqd's
// record). It first tries Queue::create, which must throw NeedsRebuild, and
// says so on `ready_fd` ('N'; another byte: what it got instead); then
// Queue::open_or_create, which waits for the shmqd the driver starts next;
// then it checks that the queue it got is the rebuilt one: durable, its tail
// at or beyond `min_tail` (what the journal had synced before the power loss),
// served and journaled by shmqd (no journal trouble). Logs to `log`; exits 0
// when every check held.
struct AppJob {
  std::string ns, queue, data_dir, log;
  QueueOptions options;
  std::uint64_t min_tail = 0;
  Millis wait{30000};
};
int run_application(const AppJob& job, int ready_fd);

}  // namespace shmq::torture
