// shmqd's errors.log (daemon/error_log_sink.hpp, shmq/stats/error_log.hpp):
// the sink in a logger of the test's own, as shmqd's default logger holds it.
// A real shmqd writing it, read by shmq-stat --errors: tests/tools/cli_test.py
// (ErrorsTest) and python/tests/test_durable.py.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "daemon_support.hpp"
#include "error_log_sink.hpp"
#include "shmq/stats/error_log.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

class ErrorLogTest : public DataDirTest {
 protected:
  fs::path file() const { return stats::error_log_path(dir_); }
  // A logger like shmqd's, at info, writing only to the sink.
  std::shared_ptr<spdlog::logger> logger(std::shared_ptr<daemon::ErrorLogSink> sink) const {
    auto l = std::make_shared<spdlog::logger>("test", std::move(sink));
    l->set_level(spdlog::level::info);
    return l;
  }
};

TEST_F(ErrorLogTest, KeepsWarningsAndErrorsNotInfoAndCountsRepeats) {
  auto sink = std::make_shared<daemon::ErrorLogSink>(file());
  auto log = logger(sink);
  log->info("all is well");
  log->warn("queue '{}': cut a torn journal tail", "q");
  log->error("queue 'q': journal write failed");
  log->warn("queue '{}': cut a torn journal tail", "q");
  log->warn("queue '{}': cut a torn journal tail", "q");
  sink.reset();
  log.reset();  // the sink's last words: the pending repeats
  const auto entries = stats::read_error_log(file());
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].level, "error");
  EXPECT_EQ(entries[0].count, 1u);
  EXPECT_EQ(entries[1].level, "warning") << "seen last, so listed last";
  EXPECT_EQ(entries[1].message, "queue 'q': cut a torn journal tail");
  EXPECT_EQ(entries[1].count, 3u);
  EXPECT_LE(entries[1].first, entries[1].last);
  EXPECT_FALSE(fs::exists(file().string() + ".tmp"));
}

TEST_F(ErrorLogTest, ManyDistinctMessagesKeepOnlyTheLatestAndTheFileStaysSmall) {
  const std::string long_tail(5000, 'x');  // each message cut to kErrorMessageBytes
  {
    auto sink = std::make_shared<daemon::ErrorLogSink>(file());
    auto log = logger(sink);
    for (int i = 0; i < 250; ++i) log->error("failure {} {}", i, long_tail);
  }
  const auto entries = stats::read_error_log(file());
  ASSERT_EQ(entries.size(), stats::kErrorLogEntries);
  EXPECT_EQ(entries.front().message.rfind("failure 150 ", 0), 0u) << "the oldest 150 went";
  EXPECT_EQ(entries.back().message.rfind("failure 249 ", 0), 0u);
  for (const auto& e : entries) EXPECT_EQ(e.message.size(), stats::kErrorMessageBytes);
  EXPECT_LT(fs::file_size(file()), 140u << 10) << "bounded: 100 entries of at most 1 KiB and their times";
}

TEST_F(ErrorLogTest, ARestartedSinkCountsOnAndSkipsLinesThatAreNotEntries) {
  {
    auto sink = std::make_shared<daemon::ErrorLogSink>(file());
    logger(sink)->error("journal set-up failed");
  }
  std::ofstream(file(), std::ios::app) << "{\"first\": cut short\n";
  {
    auto sink = std::make_shared<daemon::ErrorLogSink>(file());
    logger(sink)->error("journal set-up failed");
  }
  const auto entries = stats::read_error_log(file());
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].count, 2u);
}

TEST_F(ErrorLogTest, TimesAreIso8601WithMicrosecondsAndTheUtcOffset) {
  ::setenv("TZ", "Asia/Kolkata", 1);  // +05:30, where tzdata is installed
  ::tzset();
  const std::string text = daemon::iso8601(std::chrono::system_clock::from_time_t(0) + std::chrono::microseconds(7));
  ::unsetenv("TZ");
  ::tzset();
  ASSERT_EQ(text.size(), 32u) << text;
  EXPECT_EQ(text.substr(19, 7), ".000007") << text;
  if (text.ends_with("+00:00")) GTEST_SKIP() << "no tzdata for Asia/Kolkata here: " << text;
  EXPECT_EQ(text, "1970-01-01T05:30:00.000007+05:30");
}

}  // namespace
}  // namespace shmq::test
