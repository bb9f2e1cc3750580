// A peer shrinks a queue's segment file under a client (docs/security.md, "A
// truncated segment"): the client's calls on that queue report Corrupt,
// blocked ones at once, instead of a SIGBUS killing it; a SIGBUS that is not
// about a queue segment still kills.
//
// Every case runs in a forked child, so that a SIGBUS shows as the child's
// death (128 + SIGBUS) instead of ending the test binary.
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "shmq/sigbus.hpp"
#include "test_support.hpp"

namespace shmq::test {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizer = true;  // its own SIGBUS handler reports and exits instead of the default action
#else
constexpr bool kSanitizer = false;
#endif

QueueOptions options(bool durable) {
  QueueOptions o;
  o.capacity = 64 << 10;
  o.max_message = 256;
  o.durable = durable;
  return o;
}

class TruncatedMappingTest : public NamespaceTest {
 protected:
  std::string segment_path(const std::string& queue) const { return "/dev/shm/shmq." + ns_ + "." + queue; }
  // Runs `body` in a child that has the guard in front of any sanitizer's
  // handler; returns its exit status (128 + SIGBUS: killed by it).
  static int in_child(const std::function<int()>& body) {
    return wait_exit(spawn([&] {
      install_sigbus_guard();
      return body();
    }));
  }
  int shrink(const std::string& queue) const { return ::truncate(segment_path(queue).c_str(), 4096); }
};

TEST_F(TruncatedMappingTest, SendOnATruncatedSegmentReportsCorrupt) {
  EXPECT_EQ(in_child([&] {
              auto q = Queue::create("q", options(false));
              auto p = Producer::attach(q, "p");
              if (p.try_send(bytes_of("before")) != Status::Ok) return 1;
              if (shrink("q") != 0) return 2;
              // The first send writes past the new end: SIGBUS, handled; at
              // the latest the one after reports it.
              Status s = p.try_send(bytes_of("after"));
              if (s == Status::Ok) s = p.try_send(bytes_of("after"));
              if (s != Status::Corrupt) return 3;
              return p.send(bytes_of("blocking"), 1s) == Status::Corrupt ? 0 : 4;
            }),
            0);
}

TEST_F(TruncatedMappingTest, ReceiveOnATruncatedSegmentReportsCorruptInAnyThread) {
  EXPECT_EQ(in_child([&] {
              auto q = Queue::create("q", options(false));
              auto c = Consumer::join(q, "g");
              auto p = Producer::attach(q, "p");
              for (int i = 0; i < 10; ++i) {
                if (p.try_send(bytes_of("m")) != Status::Ok) return 1;
              }
              if (shrink("q") != 0) return 2;
              Status s = Status::Ok;
              std::thread reader([&] {  // the fault in a thread other than the main one
                Message m;
                s = c.try_receive(m);
              });
              reader.join();
              if (s != Status::Corrupt) return 3;
              Message m;
              return c.receive(m, 1s) == Status::Corrupt ? 0 : 4;
            }),
            0);
}

// Waits whose pages are still there (the header is below 4096) find the
// truncation by the file's size after an idle slice: a blocked durable
// confirm and a blocked receive return Corrupt, long before their deadline.
TEST_F(TruncatedMappingTest, BlockedCallsReturnSoonAfterTheTruncation) {
  EXPECT_EQ(in_child([&] {
              auto q = Queue::create("q", options(true));  // no shmqd: nothing is ever synced
              auto c = Consumer::join(q, "g");
              auto p = Producer::attach(q, "p");
              std::thread shrinker([&] {
                std::this_thread::sleep_for(100ms);
                (void)shrink("q");
              });
              const auto start = std::chrono::steady_clock::now();
              const Status confirm = p.send(bytes_of("m"), Confirm::Durable, 20s);
              Message m;
              const Status received = c.receive(m, 20s);
              const auto took = std::chrono::steady_clock::now() - start;
              shrinker.join();
              if (confirm != Status::Corrupt) return 1;
              if (received != Status::Corrupt) return 2;
              return took < 2s ? 0 : 3;
            }),
            0);
}

// Another process cuts each segment to half its size under clients in their
// own processes: a producer blocked on a full ring, a consumer blocked on an
// empty one, and a producer and a consumer busy in a loop on a third queue.
// Each gets Corrupt (exit 0), none dies of SIGBUS (128 + 7).
TEST_F(TruncatedMappingTest, HalvedUnderBlockedAndBusyClientsInOtherProcesses) {
  const QueueOptions o = options(false);
  for (const char* queue : {"full", "empty", "busy"}) (void)Consumer::join(Queue::create(queue, o), "g");
  {
    auto p = Producer::attach(Queue::open("full"), "filler");
    while (p.try_send(bytes_of(std::string(200, 'f'))) == Status::Ok) {
    }
  }
  const auto corrupt_within = [](auto&& call) {  // exit 0: Corrupt came, before the deadline
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      const Status s = call();
      if (s == Status::Corrupt) return 0;
      const bool going_on = s == Status::Ok || s == Status::Timeout || s == Status::Empty || s == Status::Full;
      if (!going_on) return 10 + static_cast<int>(s);  // another failure
    }
    return 9;
  };
  Pipe ready;
  std::vector<pid_t> clients;
  const auto client = [&](const std::function<int()>& body) {
    clients.push_back(spawn([&] {
      install_sigbus_guard();
      return body();
    }));
  };
  client([&] {  // blocked: the ring is full
    auto p = Producer::attach(Queue::open("full"), "blocked");
    ready.signal();
    return corrupt_within([&] { return p.send(bytes_of("m"), 20s); });
  });
  client([&] {  // blocked: the ring is empty
    auto c = Consumer::join(Queue::open("empty"), "g");
    ready.signal();
    Message m;
    return corrupt_within([&] { return c.receive(m, 20s); });
  });
  client([&] {  // busy sending
    auto p = Producer::attach(Queue::open("busy"), "busy");
    ready.signal();
    return corrupt_within([&] { return p.send(bytes_of(std::string(100, 'b')), 100ms); });
  });
  client([&] {  // busy receiving
    auto c = Consumer::join(Queue::open("busy"), "g");
    ready.signal();
    Message m;
    return corrupt_within([&] {
      const Status s = c.receive(m, 100ms);
      return s == Status::Ok ? c.ack(m) : s;
    });
  });
  for (std::size_t i = 0; i < clients.size(); ++i) ASSERT_TRUE(ready.wait());
  std::this_thread::sleep_for(200ms);  // the blocked ones wait, the busy ones run
  const pid_t truncator = spawn([&] {
    for (const char* queue : {"full", "empty", "busy"}) {
      const std::string path = segment_path(queue);
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || ::truncate(path.c_str(), st.st_size / 2) != 0) return 1;
    }
    return 0;
  });
  EXPECT_EQ(wait_exit(truncator), 0);
  const char* const roles[] = {"blocked producer", "blocked consumer", "busy producer", "busy consumer"};
  for (std::size_t i = 0; i < clients.size(); ++i) {
    EXPECT_EQ(wait_exit(clients[i]), 0) << roles[i] << " (128+" << SIGBUS << ": killed by SIGBUS)";
  }
}

TEST_F(TruncatedMappingTest, OtherSigbusStillKills) {
  // A file of our own, not a queue segment, shrunk under its mapping.
  const int rc = in_child([] {
    char path[] = "/tmp/shmq-sigbus-XXXXXX";
    const int fd = ::mkstemp(path);
    ::unlink(path);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (fd < 0 || ::ftruncate(fd, 2 * page) != 0) return 1;
    auto* p = static_cast<volatile char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (p == MAP_FAILED) return 2;
    auto q = Queue::create("mapped", options(false));  // something guarded too
    if (::ftruncate(fd, 0) != 0) return 3;
    p[page] = 1;
    return 4;
  });
  if (kSanitizer) {
    EXPECT_NE(rc, 0);
  } else {
    EXPECT_EQ(rc, 128 + SIGBUS);
  }
  // A SIGBUS sent by kill(2) kills as before.
  const int sent = in_child([] {
    auto q = Queue::create("sent", options(false));
    ::kill(::getpid(), SIGBUS);
    return 1;
  });
  if (kSanitizer) {
    EXPECT_NE(sent, 0);
  } else {
    EXPECT_EQ(sent, 128 + SIGBUS);
  }
}

// libshmq installs its handler by itself where SIGBUS has its default
// action, and leaves a program's own handler alone.
TEST_F(TruncatedMappingTest, InstallsItselfOnlyOverTheDefaultAction) {
  const auto child = [&](bool own_handler) {
    return wait_exit(spawn([&] {
      struct sigaction current {};
      ::sigaction(SIGBUS, nullptr, &current);
      const bool default_action = (current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_DFL;
      if (!default_action) return 10;  // a sanitizer's: nothing to check here
      if (own_handler) {
        struct sigaction mine {};
        mine.sa_handler = [](int) { ::_exit(42); };
        sigemptyset(&mine.sa_mask);
        ::sigaction(SIGBUS, &mine, nullptr);
      }
      const std::string name = own_handler ? "own" : "plain";
      auto q = Queue::create(name, options(false));
      if (sigbus_guard_installed() == own_handler) return 1;
      auto p = Producer::attach(q, "p");
      if (shrink(name) != 0) return 2;
      for (int i = 0; i < 100; ++i) {
        if (p.try_send(bytes_of("m")) == Status::Corrupt) return 0;
      }
      return 3;
    }));
  };
  const int plain = child(false);
  if (plain == 10) GTEST_SKIP() << "a sanitizer handles SIGBUS in this build";
  EXPECT_EQ(plain, 0) << "the guard, installed by itself, turned the SIGBUS into Corrupt";
  EXPECT_EQ(child(true), 42) << "the program's own handler got the SIGBUS";
}

}  // namespace
}  // namespace shmq::test
