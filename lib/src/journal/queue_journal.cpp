// A queue's journal: where shmqd keeps it, and the options it is read and
// written with. One place each, for libshmq, shmqd and the tools.
#include <algorithm>

#include "journal/journal.hpp"
#include "shmq/journal.hpp"

namespace shmq {

std::filesystem::path journal_dir(const std::filesystem::path& data_dir, std::string_view queue) {
  return journal::journals_root(data_dir) / queue;
}

namespace journal {

std::filesystem::path journals_root(const std::filesystem::path& data_dir) { return data_dir / "journal"; }

Options options_for_queue(std::uint32_t max_message, bool salvage) {
  // A checkpoint of 64 groups and 255 producers, names of 255 bytes each, is
  // well below 1 MiB.
  constexpr std::uint32_t kCheckpointRoom = 1u << 20;
  Options options;
  options.max_payload = std::max(max_message, kCheckpointRoom);
  options.salvage = salvage;
  return options;
}

}  // namespace journal
}  // namespace shmq
