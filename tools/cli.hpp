// What shmq and shmq-stat share on the command line: exit codes, the error
// type of a failed command, option helpers and the main() wrapper that turns
// every error into a message on stderr and the right exit code.
#pragma once

#include <signal.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "parse.hpp"

namespace shmq::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// A command that cannot do what it was asked: printed as "PROGRAM: message".
class Failure : public std::runtime_error {
 public:
  explicit Failure(const std::string& message, int exit_code = kExitFailure)
      : std::runtime_error(message), exit_code_(exit_code) {}
  [[nodiscard]] int exit_code() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

// Parses argv into `app`, then runs `command`. CLI errors exit 2 (help 0);
// shmq::Error exits 2 for a bad name or argument and 1 otherwise; Failure
// exits with its code. Every message goes to stderr as "PROGRAM: message".
int run_main(CLI::App& app, int argc, char** argv, const std::function<int()>& command);

// Prints "PROGRAM: message" on stderr, as run_main does for an error.
void report_error(std::string_view message);

// Prints "PROGRAM: warning: message" on stderr (PROGRAM: the app run_main runs).
void warn(std::string_view message);
// Prints "PROGRAM: message" on stderr: what the user should know, not a problem.
void note(std::string_view message);

// While one lives, SIGINT and SIGTERM (unless ignored when it is made) do not
// end the process but set stop_signal(), so a command can stop cleanly (leave
// its group, restore the terminal); the old handlers come back when it is
// destroyed.
class StopSignals {
 public:
  StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals();

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// The stop signal received (SIGINT or SIGTERM), 0 while none.
[[nodiscard]] int stop_signal() noexcept;

// --namespace NS, into `ns` (empty: the library's current_namespace()).
void add_namespace_option(CLI::App& app, std::string& ns);

// The namespace a command works in: `ns`, else $SHMQ_NAMESPACE, else "default".
[[nodiscard]] std::string effective_namespace(const std::string& ns);

// A check for an option that takes a count: a whole number, 0 or more
// ("-1" is refused, not taken as "no limit"); `negative_hint` ends the
// message for a negative one.
[[nodiscard]] CLI::Validator whole_number(const std::string& negative_hint = "");

// Adds --version, printing "NAME VERSION" (the one version, from CMake's project()).
void add_version_flag(CLI::App& app, const std::string& version);

// An option whose text one of parse.hpp's parsers turns into `out`; a parse
// error is a usage error naming the option.
template <class T, class Parser>
CLI::Option* add_parsed_option(CLI::App& app, const std::string& name, T& out, Parser parse,
                               const std::string& description) {
  return app.add_option_function<std::string>(
      name,
      [&out, parse, name](const std::string& text) {
        try {
          out = parse(text);
        } catch (const ParseError& e) {
          throw CLI::ValidationError(name, e.what());
        }
      },
      description);
}

}  // namespace shmq::tools
