// shmqd's log lines: to stderr (and --log-file), fit for where stderr goes.
//
// Under systemd, stderr is often the journal: systemd then sets
// JOURNAL_STREAM to "<device>:<inode>" of that stream. Lines to the journal
// carry a syslog priority prefix ("<6>" for info, sd-daemon(3)) and no time
// or pid of their own (the journal records both); anywhere else a line
// starts with an ISO-8601 time with its UTC offset.
#pragma once

#include <string>
#include <string_view>

#include <spdlog/common.h>

#include "options.hpp"

namespace shmq::daemon {

// Whether `journal_stream` (JOURNAL_STREAM's value, "<dev>:<ino>") names the
// file stderr is now. A stream handed on to a child that redirected its
// stderr names another file: then stderr is not the journal.
[[nodiscard]] bool stderr_is_journal(std::string_view journal_stream);

// The default logger: stderr (journal-fit or timestamped, as above) and the
// --log-file (timestamped), at --log-level, and `also` when given (shmqd's
// errors.log, once it holds its namespace's lock: error_log_sink.hpp).
// Called again on SIGHUP.
void set_up_logging(const Options& o, spdlog::sink_ptr also = nullptr);

// The same for another program of ours (shmq-bridge): `program` names it in
// timestamped lines; `log_file` empty for none.
void set_up_logging(const std::string& program, const std::string& level, const std::string& log_file,
                    spdlog::sink_ptr also = nullptr);

}  // namespace shmq::daemon
