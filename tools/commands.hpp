// The subcommands of `shmq`. Each returns its exit code, or throws
// shmq::Error or Failure (see cli.hpp).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <cstdint>
#include <optional>
#include <string>

#include "parse.hpp"
#include "shmq/queue.hpp"

namespace shmq::tools {

// shmqd's data directory, where a durable queue's journal is: --data-dir when
// given, else the running (or last) shmqd's. Throws Error when none can be
// named (no HOME).
inline std::filesystem::path data_dir_or_daemons(const std::string& data_dir, const std::string& ns) {
  return data_dir.empty() ? daemon_data_dir(ns) : std::filesystem::path(data_dir);
}

struct CreateArgs {
  std::string queue;
  QueueOptions options;
  std::optional<std::uint32_t> max_message;  // default: 64K, or capacity/8 when smaller
  std::string group;                         // name or gid; empty: the creator's
};
int run_create(const CreateArgs& args, const std::string& ns);
// Also removes a durable queue's journal from shmqd's data directory (data_dir_or_daemons).
struct DeleteArgs {
  std::string queue;
  std::string data_dir;  // empty: daemon_data_dir(ns)
  bool force = false;    // destroy a journal that holds unacknowledged messages
};
int run_delete(const DeleteArgs& args, const std::string& ns);
int run_list(bool json, const std::string& ns);

struct SendArgs {
  std::string queue;
  std::string producer = "shmq-send";
  std::string file;  // empty: stdin
  bool durable = false;
  bool seq_prefix = false;
  std::optional<std::chrono::nanoseconds> timeout;  // for room in the ring; none: wait
};
int run_send(const SendArgs& args, const std::string& ns);

struct RecvArgs {
  std::string queue;
  std::string group = "shmq-recv";
  std::optional<std::uint64_t> count;
  std::optional<std::chrono::nanoseconds> timeout;  // exit 0 after this long without a message
  std::optional<StartPoint> from;
  std::string data_dir;  // durable queues: shmqd's, where a group that reads the journal finds it
  bool exclusive = false;  // join an exclusive group: one member reads at a time, the others stand by
  bool json = false;
  std::string exec;  // --exec CMD: each message goes to `sh -c CMD`, settled by its exit status (recv_exec.hpp)
};
int run_recv(const RecvArgs& args, const std::string& ns);

struct DumpArgs {
  std::string queue;
  bool journal = false;
  std::string data_dir;  // --journal: shmqd's data directory; empty: daemon_data_dir(ns)
  bool json = false;
  std::optional<std::uint64_t> from;  // log position; none: the oldest retained (--follow: the newest)
  std::optional<std::uint64_t> limit;
  bool follow = false;                              // print records as they are committed
  std::optional<std::chrono::nanoseconds> timeout;  // --follow: exit 0 after this long without a record
};
int run_dump(const DumpArgs& args, const std::string& ns);

// shmq group list|delete|seek.
struct GroupArgs {
  std::string queue;
  std::string group;
  StartPoint to;         // seek: where the group starts again
  std::string data_dir;  // seek of a durable queue's group: shmqd's, whose journal a group starting there reads
  bool json = false;     // list
};
int run_group_list(const GroupArgs& args, const std::string& ns);
int run_group_delete(const GroupArgs& args, const std::string& ns);
int run_group_seek(const GroupArgs& args, const std::string& ns);

// Who keeps the queue's ring full, for a send that finds no room: the group
// with the lowest acked position, its lag and live members; or shmqd's journal
// (durable); or that no group exists yet.
[[nodiscard]] std::string describe_ring_holder(const Queue& queue);

}  // namespace shmq::tools
