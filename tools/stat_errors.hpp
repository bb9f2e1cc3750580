// shmq-stat --errors: the warnings and errors the namespace's shmqd kept in
// its data directory (errors.log, shmq/stats/error_log.hpp), like Aeron's
// ErrorStat, so that a problem is visible without shmqd's log.
#pragma once

#include <string>

namespace shmq::tools {

// Prints them, the one seen last at the bottom: a table, or with `json` a
// JSON array of {first, last, level, count, message}. None (no shmqd ever
// ran, or it never warned): a line saying so (JSON: []), and still 0.
// Throws Failure when the file exists but cannot be read.
int print_daemon_errors(const std::string& ns, bool json);

}  // namespace shmq::tools
