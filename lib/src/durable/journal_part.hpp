// A member's side of its group's journal part [X, P) (group_journal.hpp has
// the shared-memory side: the switch to the journal and back). One member at
// a time, the lease holder, reads the journal, hands out copies and
// publishes how far they are acked; acks move the group's `released` through
// the part as through the ring's records (release_acked).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ring/consumer_state.hpp"
#include "shmq/status.hpp"

namespace shmq::detail {

// Does the group have records to read from the journal: while its ring read
// is closed, and after a reader died with records in [journal_read, P).
bool journal_work(const layout::GroupSlot& group);

// The group's next record from the journal, if this member may read it now:
// Ok, Empty (nothing here now, or the part has just ended: the ring has the
// rest), or JournalUnreadable (s.journal_error says why).
Status receive_from_journal(Consumer::State& s, Message& out) noexcept;

// Acks a copy read from the journal, if this member holds one at `position`.
bool ack_from_journal(Consumer::State& s, std::uint64_t position);

// Acks every copy held at or below `position` (without publishing); returns
// how many.
std::size_t ack_journal_up_to(Consumer::State& s, std::uint64_t position);

// Publishes how far the journal records are acked (all below the oldest one
// held) and releases them; gives the lease up once the journal part is done.
void publish_journal_acked(Consumer::State& s);

}  // namespace shmq::detail
