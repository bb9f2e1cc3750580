// What the three segment files share (segment.cpp: names, handles, removing
// and listing; segment_create.cpp: building and publishing a segment;
// segment_open.cpp: opening and validating one).
#pragma once

#include <string>
#include <string_view>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "shmq/queue.hpp"

namespace shmq::detail {

// shm_dir() + segment_name(ns, queue): where the queue's segment lives.
std::string segment_path(std::string_view ns, std::string_view queue);

// What a segment of `segment_bytes` takes as a file on fd's file system: the
// same, but on hugetlbfs rounded up to whole huge pages (its file size and
// mapping must be). Opening accepts exactly this size.
std::uint64_t segment_file_bytes(int fd, std::uint64_t segment_bytes);

// The namespace to use: `ns`, validated, or the current one when empty.
std::string resolve_namespace(std::string_view ns);

// "queue '<name>' in namespace '<ns>'", for messages.
std::string describe_queue(const std::string& ns, std::string_view name);

// Throws Error(code, what + ": " + strerror(errno)).
[[noreturn]] void throw_errno(Errc code, const std::string& what);

// Throws Errc::InvalidArgument naming the first option out of range.
void validate_queue_options(const QueueOptions& options);

// The delivery policy a segment's header records (not validated).
DeliveryPolicy policy_of(const layout::QueueHeader& header);
// Copies a validated policy into the mapping's local fields.
void copy_policy(Mapping& m, const DeliveryPolicy& policy);
// Refuses (InvalidArgument, NotFound) a dead-letter queue that does not
// exist in `ns`, is `queue` itself, would send its own dead letters back to
// `queue`, or cannot hold `options.max_message` with its origin.
void check_dead_letter_queue(const std::string& ns, std::string_view queue, const QueueOptions& options);

// Points the mapping's table pointers into the segment (m.capacity set).
void bind_tables(Mapping& m, const layout::Geometry& g);

// Maps `bytes` of the segment (read-only if the mapping is) and guards the
// mapping against truncation (bus_guard.hpp).
void map_segment(Mapping& m, std::size_t bytes, const std::string& what);

// The owner and group of an open segment file (0 and 0 if fstat fails,
// which an open descriptor does not).
struct FileOwner {
  uid_t uid = 0;
  gid_t gid = 0;
};
[[nodiscard]] FileOwner file_owner(int fd) noexcept;

// Gives the segment being built under a temporary name (`fd`) its owner (-1:
// unchanged; only root may change it) and group (kNoGroup: the creator's),
// before its mode opens it to them. Throws PermissionDenied when this process
// may not (not a member of the group, not root).
void apply_owner(int fd, uid_t owner, gid_t group, const std::string& what);

// PermissionDenied for a segment this user may not open as asked: names the
// file, its mode, owner and group, and who is asking.
[[noreturn]] void throw_open_denied(const std::string& path, bool read_only, const std::string& what);

}  // namespace shmq::detail
