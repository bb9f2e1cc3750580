// Bad input and bad segments: every one is a clear Error, never a crash.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <random>

#include "shm/layout.hpp"
#include "shm/mapping.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

class ValidationTest : public NamespaceTest {
 protected:
  std::string path(const std::string& queue) const { return "/dev/shm/shmq." + ns_ + "." + queue; }
};

TEST_F(ValidationTest, Names) {
  for (const char* bad : {"", ".", "..", "a/b", "../etc", "a b", "x\n", "ü", "q*"}) {
    EXPECT_EQ(code_of([&] { Queue::create(bad); }), Errc::InvalidName) << bad;
  }
  EXPECT_EQ(code_of([&] { Queue::create(std::string(64, 'a')); }), Errc::InvalidName);
  EXPECT_EQ(code_of([&] { Queue::create(std::string("a\0b", 3)); }), Errc::InvalidName);
  EXPECT_NO_THROW(Queue::create(std::string(63, 'a')));
  EXPECT_NO_THROW(Queue::create("Ok.name_with-chars.9"));
  EXPECT_EQ(code_of([&] { Queue::create("q", {}, "dotted.ns"); }), Errc::InvalidName);
  auto q = Queue::create("named");
  EXPECT_EQ(code_of([&] { Producer::attach(q, "bad/name"); }), Errc::InvalidName);
  EXPECT_EQ(code_of([&] { Consumer::join(q, ""); }), Errc::InvalidName);
}

TEST_F(ValidationTest, Options) {
  const auto with = [](std::uint64_t capacity, std::uint32_t max_message) {
    QueueOptions o;
    o.capacity = capacity;
    o.max_message = max_message;
    return o;
  };
  EXPECT_EQ(code_of([&] { Queue::create("q", with(0, 100)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(5000, 100)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(2048, 100)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(std::uint64_t{1} << 41, 100)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(4096, 0)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(4096, 2000)); }), Errc::InvalidArgument);
  EXPECT_EQ(code_of([&] { Queue::create("q", with(std::uint64_t{1} << 40, 100)); }), Errc::NoSpace)
      << "1 TiB does not fit in /dev/shm here";
  QueueOptions mode;
  mode.mode = 0400;
  EXPECT_EQ(code_of([&] { Queue::create("q", mode); }), Errc::InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(path("q"))) << "no failed create leaves a segment";
}

// Queue::options() reads the segment: every handle, however it was opened,
// reports the options the queue was created with.
TEST_F(ValidationTest, OptionsAreTheQueuesOwn) {
  QueueOptions created;
  created.capacity = 1u << 16;
  created.max_message = 1000;
  created.mode = 0640;
  created.max_producers = 3;
  created.max_groups = 5;
  created.max_consumers = 7;
  const auto expect_created = [&](const QueueOptions& got, const char* how) {
    SCOPED_TRACE(how);
    EXPECT_EQ(got.capacity, created.capacity);
    EXPECT_EQ(got.max_message, created.max_message);
    EXPECT_EQ(got.durable, created.durable);
    EXPECT_EQ(got.mode, created.mode);
    EXPECT_EQ(got.max_producers, created.max_producers);
    EXPECT_EQ(got.max_groups, created.max_groups);
    EXPECT_EQ(got.max_consumers, created.max_consumers);
  };
  expect_created(Queue::create("q", created).options(), "create");
  expect_created(Queue::open("q").options(), "open");
  expect_created(Queue::open_read_only("q").options(), "open_read_only");
  expect_created(Queue::open_or_create("q", QueueOptions{}).options(), "open_or_create: the queue's, not the defaults");

  created.durable = true;
  expect_created(Queue::create("durable", created).options(), "durable");
  expect_created(Queue::open("durable").options(), "durable, opened");
}

// Queue::segment_bytes: what shmq create reports a queue takes of /dev/shm.
TEST_F(ValidationTest, SegmentBytesIsTheSizeOfTheSegment) {
  QueueOptions o;
  o.capacity = 64 << 10;
  o.max_message = 1024;
  o.max_groups = 3;
  Queue::create("q", o);
  EXPECT_EQ(Queue::segment_bytes(o), std::filesystem::file_size(path("q")));
  QueueOptions more_groups = o;
  more_groups.max_groups = 4;
  EXPECT_GE(Queue::segment_bytes(more_groups), Queue::segment_bytes(o) + o.capacity / 8)
      << "a state word (8 bytes) per 64-byte chunk of the ring per group";
}

TEST_F(ValidationTest, MissingDuplicateAndRemove) {
  EXPECT_EQ(code_of([&] { Queue::open("nope"); }), Errc::NotFound);
  Queue::create("q");
  EXPECT_EQ(code_of([&] { Queue::create("q"); }), Errc::AlreadyExists);
  EXPECT_EQ(Queue::list(), std::vector<std::string>{"q"});
  EXPECT_TRUE(Queue::remove("q"));
  EXPECT_FALSE(Queue::remove("q"));
  EXPECT_TRUE(Queue::list().empty());
}

TEST_F(ValidationTest, SegmentOfAnotherNamespace) {
  Queue::create("q", {}, ns_ + "other");
  std::filesystem::copy_file("/dev/shm/shmq." + ns_ + "other.q", path("q"));
  std::filesystem::remove("/dev/shm/shmq." + ns_ + "other.q");
  EXPECT_EQ(code_of([&] { Queue::open("q"); }), Errc::WrongNamespace);
}

TEST_F(ValidationTest, ForeignTruncatedAndNewerSegments) {
  {
    std::ofstream(path("foreign")) << std::string(8192, 'j');
    EXPECT_EQ(code_of([&] { Queue::open("foreign"); }), Errc::Incompatible);
    std::ofstream(path("tiny")) << "x";
    EXPECT_EQ(code_of([&] { Queue::open("tiny"); }), Errc::Corrupt);
    std::ofstream(path("empty")) << "";
    EXPECT_EQ(code_of([&] { Queue::open("empty"); }), Errc::NotReady);
  }
  Queue::create("cut");
  ASSERT_EQ(::truncate(path("cut").c_str(), 4096), 0);
  EXPECT_EQ(code_of([&] { Queue::open("cut"); }), Errc::Corrupt);
  Queue::create("newer");
  {
    const int fd = ::open(path("newer").c_str(), O_RDWR);
    const std::uint32_t version = layout::kLayoutVersion + 1;
    ASSERT_EQ(::pwrite(fd, &version, 4, 8), 4);
    ::close(fd);
  }
  EXPECT_EQ(code_of([&] { Queue::open("newer"); }), Errc::Incompatible);
}

// Flips each byte of the superblock of a real segment in turn: every open
// either succeeds (a byte nothing depends on) or fails with an Error.
TEST_F(ValidationTest, FlippedHeaderBytesNeverCrash) {
  Queue::create("flip");
  const int fd = ::open(path("flip").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  int failures = 0;
  for (off_t at = 0; at < static_cast<off_t>(sizeof(layout::Superblock)); ++at) {
    unsigned char original = 0;
    ASSERT_EQ(::pread(fd, &original, 1, at), 1);
    const unsigned char flipped = original ^ 0x5a;
    ASSERT_EQ(::pwrite(fd, &flipped, 1, at), 1);
    try {
      auto q = Queue::open("flip");
      auto p = Producer::attach(q, "p");
      (void)p.try_send(bytes_of("still works"));
    } catch (const Error&) {
      ++failures;
    }
    ASSERT_EQ(::pwrite(fd, &original, 1, at), 1);
  }
  ::close(fd);
  // Not all: any record key with its top bit set is as good as another.
  EXPECT_GT(failures, 90) << "most header bytes are checked";
  EXPECT_NO_THROW(Queue::open("flip"));
}

// Random garbage in the ring and tables of a live queue: consumers and
// info() report corruption or skip, never crash or hang.
TEST_F(ValidationTest, ScribbledRingIsReportedNotFollowed) {
  QueueOptions o;
  o.capacity = 8192;
  o.max_message = 256;
  auto q = Queue::create("scribble", o);
  auto p = Producer::attach(q, "p");
  auto c = Consumer::join(q, "g");
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    while (p.try_send(bytes_of(std::string(rng() % 200, 'x'))) == Status::Ok) {
    }
    auto* ring = reinterpret_cast<unsigned char*>(detail::mapping_of(q)->ring);
    for (int i = 0; i < 8; ++i) ring[rng() % o.capacity] = static_cast<unsigned char>(rng());
    (void)q.info();
    (void)q.records();
    Message m;
    for (int i = 0; i < 100; ++i) {
      const Status s = c.try_receive(m);
      if (s != Status::Ok) break;
      ASSERT_LE(m.payload.size(), o.max_message);
      (void)c.ack(m);
    }
  }
}

// A segment lock whose flock fails for a reason other than a signal says so
// (Errc::System), instead of retrying for ever.
TEST_F(ValidationTest, ASegmentLockThatCannotBeTakenIsAnError) {
  detail::Mapping m;  // fd -1: flock fails with EBADF
  m.ns = ns_;
  m.name = "q";
  EXPECT_EQ(code_of([&] { const detail::SegmentLock lock(m); }), Errc::System);
  ASSERT_TRUE(m.lock_mutex.try_lock()) << "the failed lock gave its mutex back";
  m.lock_mutex.unlock();
  EXPECT_FALSE(detail::SegmentLock(m, detail::SegmentLock::TryTag{}).owned());
}

}  // namespace
}  // namespace shmq::test
