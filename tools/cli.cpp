#include "cli.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "shmq/queue.hpp"
#include "shmq/status.hpp"

namespace shmq::tools {
namespace {

std::string program_name = "shmq";
volatile std::sig_atomic_t received_stop_signal = 0;

extern "C" void on_stop_signal(int signal) { received_stop_signal = signal; }

void print_error(std::string_view message) { std::cerr << program_name << ": " << message << '\n'; }

int exit_code_of(Errc code) {
  return code == Errc::InvalidName || code == Errc::InvalidArgument ? kExitUsage : kExitFailure;
}

}  // namespace

int run_main(CLI::App& app, int argc, char** argv, const std::function<int()>& command) {
  program_name = app.get_name();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(e.what());
    std::cerr << "Run with --help for more information.\n";
    return kExitUsage;
  }
  try {
    return command();
  } catch (const Error& e) {
    print_error(e.what());
    return exit_code_of(e.code());
  } catch (const Failure& e) {
    print_error(e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    print_error(e.what());
    return kExitFailure;
  }
}

void report_error(std::string_view message) { print_error(message); }

void warn(std::string_view message) {
  std::cerr << program_name << ": warning: " << message << '\n';
}

void note(std::string_view message) {
  std::cerr << program_name << ": " << message << '\n';
}

StopSignals::StopSignals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, &old_int_);
  sigaction(SIGTERM, &action, &old_term_);
  // A signal ignored by whoever started us (e.g. SIGINT of a background job) stays ignored.
  if (old_int_.sa_handler == SIG_IGN) sigaction(SIGINT, &old_int_, nullptr);
  if (old_term_.sa_handler == SIG_IGN) sigaction(SIGTERM, &old_term_, nullptr);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

int stop_signal() noexcept { return received_stop_signal; }

void add_namespace_option(CLI::App& app, std::string& ns) {
  app.add_option("-n,--namespace", ns,
                 "Namespace of the queues (default: $SHMQ_NAMESPACE, else 'default')")
      ->type_name("NS");
}

CLI::Validator whole_number(const std::string& negative_hint) {
  return CLI::Validator(
      [negative_hint](std::string& text) -> std::string {
        std::uint64_t value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (!text.empty() && text.front() == '-') return "'" + text + "' is negative: expected 0 or more" + negative_hint;
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
          return "'" + text + "' is not a whole number from 0 to 2^64-1";
        }
        return {};
      },
      "", "whole number");
}

void add_version_flag(CLI::App& app, const std::string& version) {
  app.set_version_flag("--version", app.get_name() + " " + version, "Print the version and exit");
}

std::string effective_namespace(const std::string& ns) {
  return ns.empty() ? current_namespace() : ns;
}

}  // namespace shmq::tools
