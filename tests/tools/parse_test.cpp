// The parsers of tools/parse.hpp: what they accept, and that they refuse the rest.
#include "parse.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;
using shmq::StartAt;
using shmq::tools::ParseError;

TEST(ParseSize, AcceptsBytesAndBinarySuffixes) {
  EXPECT_EQ(shmq::tools::parse_size("4096"), 4096u);
  EXPECT_EQ(shmq::tools::parse_size("64K"), 64u << 10);
  EXPECT_EQ(shmq::tools::parse_size("16m"), 16u << 20);
  EXPECT_EQ(shmq::tools::parse_size("1G"), 1u << 30);
  EXPECT_EQ(shmq::tools::parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(shmq::tools::parse_size("1T"), 1ull << 40);
}

TEST(ParseSize, RefusesGarbageAndOverflow) {
  for (const char* text :
       {"", "K", "-1", "1.5M", "12X", "64 K", "1KK", "99999999999999999999", "17179869184G"}) {
    EXPECT_THROW((void)shmq::tools::parse_size(text), ParseError) << text;
  }
}

// The message of the ParseError `parse` throws, or "" when it throws none.
template <class Parse>
std::string error_of(Parse parse) {
  try {
    (void)parse();
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(ParseSize, FractionsAreRefusedAsFractionsNamingAWholeSize) {
  EXPECT_EQ(error_of([] { return shmq::tools::parse_size("1.5G"); }),
            "invalid size '1.5G': fractions are not supported; write 1536M");
  EXPECT_EQ(error_of([] { return shmq::tools::parse_size("0.5k"); }),
            "invalid size '0.5k': fractions are not supported; write 512");
  EXPECT_EQ(error_of([] { return shmq::tools::parse_size("2.0MiB"); }),
            "invalid size '2.0MiB': fractions are not supported; write 2M");
  EXPECT_EQ(error_of([] { return shmq::tools::parse_size("0.3M"); }),
            "invalid size '0.3M': fractions are not supported; use a whole number of a smaller unit (K, M, G) "
            "or of bytes");
  for (const char* text : {"1.5", "1.M", "1.5X", "1.1234567891G", "99999999999999.5T"}) {
    EXPECT_NE(error_of([&] { return shmq::tools::parse_size(text); }).find("fractions are not supported"),
              std::string::npos)
        << text;
  }
  EXPECT_EQ(error_of([] { return shmq::tools::parse_size("12X"); }),
            "invalid size '12X': the suffix must be K, M, G or T");
}

TEST(ParseDuration, AcceptsUnitsAndFractions) {
  EXPECT_EQ(shmq::tools::parse_duration("500ms"), 500ms);
  EXPECT_EQ(shmq::tools::parse_duration("3s"), 3s);
  EXPECT_EQ(shmq::tools::parse_duration("2m"), 2min);
  EXPECT_EQ(shmq::tools::parse_duration("1h"), 1h);
  EXPECT_EQ(shmq::tools::parse_duration("250ns"), 250ns);
  EXPECT_EQ(shmq::tools::parse_duration("10us"), 10us);
  EXPECT_EQ(shmq::tools::parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(shmq::tools::parse_duration("0.5m"), 30s);
  EXPECT_EQ(shmq::tools::parse_duration("0"), 0s);
}

TEST(ParseDuration, RefusesMissingUnitsGarbageAndOverflow) {
  for (const char* text : {"", "5", "s", "5x", "1.s", ".5s", "-1s", "5 s", "9999999999999h",
                           "99999999999999999999ns"}) {
    EXPECT_THROW((void)shmq::tools::parse_duration(text), ParseError) << text;
  }
}

TEST(ParseMode, ReadsOctal) {
  EXPECT_EQ(shmq::tools::parse_mode("600"), 0600u);
  EXPECT_EQ(shmq::tools::parse_mode("0640"), 0640u);
  for (const char* text : {"", "8", "1000", "rw", "0x1ff", "64 0"}) {
    EXPECT_THROW((void)shmq::tools::parse_mode(text), ParseError) << text;
  }
}

TEST(ParseMode, SegmentModesHaveNoExecuteBits) {
  EXPECT_EQ(shmq::tools::parse_segment_mode("660"), 0660u);
  EXPECT_EQ(shmq::tools::parse_segment_mode("666"), 0666u);
  EXPECT_EQ(error_of([] { return shmq::tools::parse_segment_mode("777"); }),
            "invalid mode '777': a queue segment is never executed, so execute bits are refused; write 666");
  for (const char* text : {"700", "0610", "601", "999"}) {
    EXPECT_THROW((void)shmq::tools::parse_segment_mode(text), ParseError) << text;
  }
}

TEST(ParseSequence, NeedsAPositiveInteger) {
  EXPECT_EQ(shmq::tools::parse_sequence("1"), 1u);
  EXPECT_EQ(shmq::tools::parse_sequence("18446744073709551615"), UINT64_MAX);
  for (const char* text : {"", "0", "-1", "1a", " 1", "18446744073709551616"}) {
    EXPECT_THROW((void)shmq::tools::parse_sequence(text), ParseError) << text;
  }
}

TEST(ParseTime, ReadsRfc3339AndUnixTimes) {
  constexpr std::uint64_t kNoon = 1'764'417'600'000'000'000;  // 2025-11-29T12:00:00Z
  EXPECT_EQ(shmq::tools::parse_time("2025-11-29T12:00:00Z"), kNoon);
  EXPECT_EQ(shmq::tools::parse_time("2025-11-29t12:00:00.25z"), kNoon + 250'000'000);
  EXPECT_EQ(shmq::tools::parse_time("2025-11-29T13:30:00+01:30"), kNoon);
  EXPECT_EQ(shmq::tools::parse_time("2025-11-29T11:00:00-01:00"), kNoon);
  EXPECT_EQ(shmq::tools::parse_time("1970-01-01T00:00:00Z"), 0u);
  EXPECT_EQ(shmq::tools::parse_time("@1764417600"), kNoon);
  EXPECT_EQ(shmq::tools::parse_time("@1764417600.5"), kNoon + 500'000'000);
  EXPECT_EQ(shmq::tools::parse_time("@1764417600000000000ns"), kNoon);
  EXPECT_EQ(shmq::tools::parse_time("@1764417600000ms"), kNoon);
}

TEST(ParseTime, RefusesImpossibleDates) {
  for (const char* text :
       {"", "2025-11-29", "2025-11-29T12:00:00", "2025-02-30T00:00:00Z", "2025-11-29T24:00:00Z",
        "2025-11-29T12:60:00Z", "2025-11-29T12:00:00Zx", "2025-11-29T12:00:00+25:00",
        "1969-12-31T23:59:59Z", "@", "@x", "@99999999999999999999", "2025-11-29T12:00:00.Z"}) {
    EXPECT_THROW((void)shmq::tools::parse_time(text), ParseError) << text;
  }
}

TEST(ParseStart, TellsTheKindsApart) {
  EXPECT_EQ(shmq::tools::parse_start("oldest").at, StartAt::Oldest);
  EXPECT_EQ(shmq::tools::parse_start("newest").at, StartAt::Newest);
  const auto position = shmq::tools::parse_start("4096");
  EXPECT_EQ(position.at, StartAt::Position);
  EXPECT_EQ(position.position, 4096u);
  const auto time = shmq::tools::parse_start("@10");
  EXPECT_EQ(time.at, StartAt::Time);
  EXPECT_EQ(time.time_ns, 10'000'000'000u);
  EXPECT_EQ(shmq::tools::parse_start("1970-01-01T00:00:01Z").time_ns, 1'000'000'000u);
  for (const char* text : {"", "latest", "-5", "12abc"}) {
    EXPECT_THROW((void)shmq::tools::parse_start(text), ParseError) << text;
  }
}

}  // namespace
