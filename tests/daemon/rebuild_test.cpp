// The rebuild of a durable queue from a damaged journal, driven in-process
// (shmqd's own JournalPipeline and rebuild_queue), so that every byte offset
// of the journal's last records can be tried: the rebuild reports and
// recovers every good record, refuses damage in the middle, never crashes.
#include <gtest/gtest.h>

#include <fstream>

#include "daemon_support.hpp"
#include "journal/journal.hpp"
#include "journaling/pipeline.hpp"
#include "journaling/store.hpp"
#include "journaling/rebuild.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;
constexpr int kMessages = 100;
constexpr std::size_t kRecordHeaderBytes = 48;  // docs/journal.md, "Record"

class RebuildTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    pristine_ = fs::path(dir_) / "pristine";
    write_journal();
    bytes_ = slurp(segment(pristine_).string());
    const auto payload = bytes_.rfind(payload_for(kMessages));
    ASSERT_NE(payload, std::string::npos);
    last_record_ = payload - kRecordHeaderBytes;
    last_record_end_ = payload + payload_for(kMessages).size();
    ASSERT_LT(last_record_end_, bytes_.size()) << "the checkpoint written at the stop follows the last record";
  }

  // kMessages records and a group "g" that acked none, journaled by shmqd's
  // pipeline, which checkpoints as it stops; then the segment is gone.
  void write_journal() {
    QueueOptions o;
    o.capacity = 64 << 10;
    o.max_message = 256;
    o.durable = true;
    Queue q = Queue::create("dq", o);
    (void)Consumer::join(q, "g");
    {
      daemon::JournalPipeline pipeline(q, pristine_, {});
      auto p = Producer::attach(q, "p");
      for (int i = 1; i <= kMessages; ++i) ASSERT_EQ(p.send(bytes_of(payload_for(i)), 10s), Status::Ok);
      ASSERT_EQ(p.wait_durable(10s), Status::Ok);
    }
    ASSERT_TRUE(Queue::remove("dq"));
  }

  static fs::path segment(const fs::path& dir) { return dir / "00000000000000000064.journal"; }

  // A copy of the pristine journal with `damaged` as its segment.
  fs::path damaged_copy(const std::string& damaged) {
    const fs::path dir = fs::path(dir_) / "damaged";
    fs::remove_all(dir);
    fs::create_directories(dir);
    fs::copy_file(pristine_ / "queue.json", dir / "queue.json");
    std::ofstream(segment(dir), std::ios::binary) << damaged;
    return dir;
  }

  // Rebuilds from `dir` and returns what group g receives (all flagged).
  std::vector<std::string> rebuild_and_receive(const fs::path& dir, bool salvage, daemon::RebuildReport& report) {
    report = daemon::rebuild_queue(ns_, "dq", dir, salvage);
    std::vector<std::string> got;
    {
      Queue q = Queue::open("dq");
      auto c = Consumer::join(q, "g");
      Message m;
      while (c.try_receive(m) == Status::Ok) {
        got.emplace_back(reinterpret_cast<const char*>(m.payload.data()), m.payload.size());
        EXPECT_TRUE(m.redelivered);
        EXPECT_EQ(c.ack(m), Status::Ok);
      }
    }
    Queue::remove("dq");
    return got;
  }

  static void expect_first(const std::vector<std::string>& got, int n) {
    ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ASSERT_EQ(got[i], payload_for(i + 1));
  }

  fs::path pristine_;
  std::string bytes_;
  std::size_t last_record_ = 0, last_record_end_ = 0;
};

TEST_F(RebuildTest, ATailCutAtEveryOffsetOfTheLastRecordLeavesEveryRecordBeforeIt) {
  for (std::size_t cut = last_record_; cut <= last_record_end_; ++cut) {
    SCOPED_TRACE("file cut to " + std::to_string(cut) + " bytes");
    daemon::RebuildReport report;
    const auto got = rebuild_and_receive(damaged_copy(bytes_.substr(0, cut)), false, report);
    // Cut exactly at its end, the last record is whole; only the checkpoint after it is gone.
    expect_first(got, cut == last_record_end_ ? kMessages : kMessages - 1);
    if (cut != last_record_ && cut != last_record_end_) {
      EXPECT_NE(report.damage.find("torn tail"), std::string::npos) << report.damage;
    }
  }
}

TEST_F(RebuildTest, AFlippedByteInTheFinalRecordIsCutAndReported) {
  for (std::size_t at = last_record_end_; at < bytes_.size(); ++at) {
    SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
    std::string damaged = bytes_;
    damaged[at] ^= 0x01;
    daemon::RebuildReport report;
    expect_first(rebuild_and_receive(damaged_copy(damaged), false, report), kMessages);
    EXPECT_NE(report.damage.find("torn tail"), std::string::npos) << report.damage;
  }
}

TEST_F(RebuildTest, AFlippedByteBeforeAGoodRecordIsRefusedUnlessSalvaged) {
  for (std::size_t at = last_record_; at < last_record_end_; at += 7) {
    SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
    std::string damaged = bytes_;
    damaged[at] ^= 0x01;
    const fs::path dir = damaged_copy(damaged);
    try {
      (void)daemon::rebuild_queue(ns_, "dq", dir, false);
      ADD_FAILURE() << "rebuilt past damage in the middle";
    } catch (const journal::JournalError& e) {
      EXPECT_EQ(e.code(), journal::Errc::Corrupt);
      EXPECT_EQ(e.file(), segment(dir));
    }
    EXPECT_TRUE(Queue::list().empty());
    daemon::RebuildReport report;
    expect_first(rebuild_and_receive(dir, true, report), kMessages - 1);
    EXPECT_NE(report.damage.find("skipped"), std::string::npos) << report.damage;
  }
}

}  // namespace
}  // namespace shmq::test
