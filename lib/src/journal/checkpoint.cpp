// The checkpoint payload (docs/journal.md): counted lists of groups and
// producers, names as a length byte and the bytes; then, only when some
// group is exclusive or has delivery counts, each group's mode; then, only
// when some group has delivery counts, each group's counts (so that a journal
// without either stays what older versions write and read).
#include <algorithm>
#include <limits>
#include <string>

#include "journal/bytes.hpp"
#include "journal/format.hpp"

namespace shmq::journal::format {
namespace {

void append_name(std::vector<std::byte>& out, const std::string& name) {
  if (name.size() > std::numeric_limits<std::uint8_t>::max()) {
    throw JournalError(Errc::InvalidArgument, "checkpoint name longer than 255 bytes: " + name);
  }
  append_le(out, static_cast<std::uint8_t>(name.size()));
  const auto* bytes = reinterpret_cast<const std::byte*>(name.data());
  out.insert(out.end(), bytes, bytes + name.size());
}

// Reads fields off the payload, never past its end.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> bytes) : bytes_(bytes) {}

  template <std::unsigned_integral T>
  T number() {
    return get_le<T>(take(sizeof(T)).data());
  }
  std::string name() {
    const auto length = number<std::uint8_t>();
    const auto bytes = take(length);
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
  }
  [[nodiscard]] bool done() const { return bytes_.empty(); }

 private:
  std::span<const std::byte> take(std::size_t n) {
    if (n > bytes_.size()) throw JournalError(Errc::Corrupt, "checkpoint payload ends early");
    const auto head = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return head;
  }
  std::span<const std::byte> bytes_;
};

// The optional modes section: one per group, in the groups' order.
void read_group_modes(Reader& in, Checkpoint& checkpoint) {
  if (in.number<std::uint32_t>() != checkpoint.groups.size()) {
    throw JournalError(Errc::Corrupt, "checkpoint group modes do not match its groups");
  }
  for (auto& group : checkpoint.groups) {
    const auto mode = in.number<std::uint8_t>();
    if (mode > 1) throw JournalError(Errc::Corrupt, "checkpoint group mode " + std::to_string(mode) + " unknown");
    group.exclusive = mode == 1;
  }
}

// The optional delivery counts section: per group, in the groups' order, the
// highest count left unlisted, then the listed (position, count) pairs.
void read_delivery_counts(Reader& in, Checkpoint& checkpoint) {
  if (in.number<std::uint32_t>() != checkpoint.groups.size()) {
    throw JournalError(Errc::Corrupt, "checkpoint delivery counts do not match its groups");
  }
  for (auto& group : checkpoint.groups) {
    group.unlisted = in.number<std::uint8_t>();
    // Not trusted for reserve() either: each pair must still fit in the payload.
    for (auto n = in.number<std::uint32_t>(); n > 0; --n) {
      const auto position = in.number<std::uint64_t>();
      const auto count = in.number<std::uint8_t>();
      if (count == 0) throw JournalError(Errc::Corrupt, "checkpoint delivery count of 0 listed");
      if (!group.deliveries.empty() && position <= group.deliveries.back().position) {
        throw JournalError(Errc::Corrupt, "checkpoint delivery counts out of position order");
      }
      group.deliveries.push_back({position, count});
    }
  }
}

bool has_delivery_counts(const GroupPosition& g) { return !g.deliveries.empty() || g.unlisted != 0; }

}  // namespace

std::vector<std::byte> encode_checkpoint(const Checkpoint& checkpoint) {
  std::vector<std::byte> out;
  append_le(out, static_cast<std::uint32_t>(checkpoint.groups.size()));
  for (const auto& group : checkpoint.groups) {
    append_name(out, group.name);
    append_le(out, group.acked);
  }
  append_le(out, static_cast<std::uint32_t>(checkpoint.producers.size()));
  for (const auto& producer : checkpoint.producers) {
    append_le(out, producer.id);
    append_name(out, producer.name);
    append_le(out, producer.sequence);
  }
  const auto& groups = checkpoint.groups;
  const bool any_exclusive = std::any_of(groups.begin(), groups.end(), [](const auto& g) { return g.exclusive; });
  const bool any_counts = std::any_of(groups.begin(), groups.end(), has_delivery_counts);
  // The modes section also when only counts follow: a reader tells the
  // sections apart by their order alone.
  if (any_exclusive || any_counts) {
    append_le(out, static_cast<std::uint32_t>(groups.size()));
    for (const auto& group : groups) append_le(out, static_cast<std::uint8_t>(group.exclusive ? 1 : 0));
  }
  if (any_counts) {
    append_le(out, static_cast<std::uint32_t>(groups.size()));
    for (const auto& group : groups) {
      append_le(out, group.unlisted);
      append_le(out, static_cast<std::uint32_t>(group.deliveries.size()));
      for (const auto& d : group.deliveries) {
        append_le(out, d.position);
        append_le(out, d.count);
      }
    }
  }
  return out;
}

Checkpoint decode_checkpoint(std::span<const std::byte> payload) {
  Reader in(payload);
  Checkpoint checkpoint;
  // Counts are not trusted for reserve(): each entry must still fit in the payload.
  for (auto n = in.number<std::uint32_t>(); n > 0; --n) {
    auto name = in.name();
    checkpoint.groups.push_back({std::move(name), in.number<std::uint64_t>()});
  }
  for (auto n = in.number<std::uint32_t>(); n > 0; --n) {
    const auto id = in.number<std::uint32_t>();
    auto name = in.name();
    checkpoint.producers.push_back({id, std::move(name), in.number<std::uint64_t>()});
  }
  if (!in.done()) read_group_modes(in, checkpoint);
  if (!in.done()) read_delivery_counts(in, checkpoint);
  if (!in.done()) throw JournalError(Errc::Corrupt, "checkpoint payload has trailing bytes");
  return checkpoint;
}

}  // namespace shmq::journal::format
