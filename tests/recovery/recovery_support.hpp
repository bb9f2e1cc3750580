// Helpers for the single-process tests of the repairs (tests/recovery): the
// shared state is built by hand, with real clients where the public API can
// make it (a child that claims and dies, a member that takes and dies), and
// the repair is called directly, under the segment lock, as its callers do.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {

// Each test in its own namespace, and (for durable queues) its own data
// directory, where no journal exists: the test stands in for shmqd.
class RecoveryTest : public DataDirTest {
 protected:
  static const detail::Mapping& map(const Queue& q) { return *detail::mapping_of(q); }
  static layout::QueueHeader& header(const Queue& q) { return *detail::mapping_of(q)->header; }
  static layout::GroupSlot& group(const Queue& q, std::uint32_t index = 0) { return detail::mapping_of(q)->groups[index]; }

  // The producer entry attached under `name` (there must be one).
  static layout::ProducerSlot& producer_named(const Queue& q, std::string_view name) {
    const detail::Mapping& m = map(q);
    for (std::uint32_t i = 0; i < m.max_producers; ++i) {
      if (name == m.producers[i].name) return m.producers[i];
    }
    ADD_FAILURE() << "no producer entry named " << name;
    return m.producers[0];
  }

  // The state word of `position` in `group`, which must be for that position.
  static std::uint8_t code_at(const Queue& q, std::uint64_t position, std::uint32_t group_index = 0) {
    const std::uint64_t word = map(q).state_word(group_index, position).load();
    EXPECT_TRUE(layout::state_is_for(word, position)) << "state word not for position " << position;
    return layout::state_code(word);
  }

  // As shmqd's journal writer would report: everything committed is written and synced.
  static void pretend_journaled(const Queue& q) {
    layout::QueueHeader& h = header(q);
    h.journal_written.store(h.tail.load());
    h.journal_synced.store(h.tail.load());
  }
};

}  // namespace shmq::test
