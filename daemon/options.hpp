// shmqd's command line, and where its data directory is.
#pragma once

#include <filesystem>
#include <string>

namespace shmq::daemon {

struct Options {
  std::string ns;                    // empty: $SHMQ_NAMESPACE, else "default"
  std::filesystem::path data_dir;    // empty: default_data_dir(ns)
  bool foreground = false;           // accepted; shmqd never forks itself
  bool standby = false;              // wait for the lock instead of exiting
  std::string log_level = "info";
  std::string log_file;
  std::string metrics;  // HOST:PORT to serve /metrics on; empty: none
};

// $SHMQ_DATA_DIR, else /var/lib/shmq/<ns> for root, else $XDG_STATE_HOME/shmq/<ns>
// ($XDG_STATE_HOME defaulting to ~/.local/state). Throws std::runtime_error
// when none can be found.
std::filesystem::path default_data_dir(const std::string& ns);

// Creates `dir` (mode 0700) if missing, and refuses one that is not a
// directory, belongs to another user, or that group or others may write (they
// could replace the lock file). Throws std::runtime_error saying why.
void prepare_data_dir(const std::filesystem::path& dir);

}  // namespace shmq::daemon
