#include "logging.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace shmq::daemon {
namespace {

// Time with microseconds and UTC offset (ISO 8601), level, who: the lines of
// a terminal or a file.
std::string timestamped_pattern(const std::string& program) {
  return "%Y-%m-%dT%H:%M:%S.%f%z %^%l%$ " + program + "[%P]: %v";
}

// %* in a pattern: the syslog priority of the line's level, as "<N>".
class PriorityFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const char digit = '0' + priority(msg.level);
    const char text[] = {'<', digit, '>'};
    dest.append(text, text + sizeof text);
  }
  [[nodiscard]] std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }

 private:
  // syslog(3)'s: LOG_CRIT 2, LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6, LOG_DEBUG 7.
  static int priority(spdlog::level::level_enum level) {
    switch (level) {
      case spdlog::level::critical: return 2;
      case spdlog::level::err: return 3;
      case spdlog::level::warn: return 4;
      case spdlog::level::info: return 6;
      default: return 7;
    }
  }
};

std::unique_ptr<spdlog::formatter> journal_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<PriorityFlag>('*').set_pattern("%*%v");
  return formatter;
}

template <class Unsigned>
bool parse_number(std::string_view text, Unsigned& out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc{} && end == text.data() + text.size();
}

}  // namespace

bool stderr_is_journal(std::string_view journal_stream) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (!parse_number(journal_stream.substr(0, colon), device) || !parse_number(journal_stream.substr(colon + 1), inode))
    return false;
  struct stat st {};
  if (::fstat(2, &st) != 0) return false;
  return st.st_dev == device && st.st_ino == inode;
}

void set_up_logging(const Options& o, spdlog::sink_ptr also) {
  set_up_logging("shmqd", o.log_level, o.log_file, std::move(also));
}

void set_up_logging(const std::string& program, const std::string& level, const std::string& log_file,
                    spdlog::sink_ptr also) {
  const char* stream = std::getenv("JOURNAL_STREAM");
  const bool journal = stream != nullptr && stderr_is_journal(stream);
  spdlog::sink_ptr err;
  if (journal) {
    err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    err->set_formatter(journal_formatter());
  } else {
    err = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    err->set_pattern(timestamped_pattern(program));
  }
  std::vector<spdlog::sink_ptr> sinks{err};
  if (!log_file.empty()) {
    sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file));
    sinks.back()->set_pattern(timestamped_pattern(program));
  }
  if (also) sinks.push_back(std::move(also));
  auto logger = std::make_shared<spdlog::logger>(program, sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::debug);  // rare lines; a reader of the file sees them at once
  spdlog::set_default_logger(std::move(logger));
}

}  // namespace shmq::daemon
