// Queues shared by the users of one group (docs/security.md): a queue created
// --mode 0660 --group G is used by producers and consumers of different uids
// in G; a consumer of one uid killed with kill -9 is repaired by shmqd
// (running as root, as the tests' shmqd does) or by a member of another uid;
// a user outside G, or one that may only read, is refused with
// PermissionDenied; shmqd --group G lets members read its journals; a rebuild
// gives the queue back its owner, group and mode.
//
// The tests run processes as unused numeric ids (no /etc/passwd entries
// needed): children setgroups/setgid/setuid to them. Without root they skip.
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <vector>

#include "daemon_support.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

constexpr gid_t kGroup = 61000;   // the queues' group
constexpr uid_t kUserA = 61001;   // members of it (each with its own primary group, as useradd makes)
constexpr uid_t kUserB = 61002;
constexpr uid_t kOutsider = 61003;  // not a member

// Becomes `uid`, primary group `uid`, with the supplementary `groups`.
bool become(uid_t uid, const std::vector<gid_t>& groups) {
  return ::setgroups(groups.size(), groups.data()) == 0 && ::setgid(uid) == 0 && ::setuid(uid) == 0 &&
         ::geteuid() == uid;
}

// Runs `body` in a child as `uid`; exit 90 when it cannot become it.
pid_t spawn_as(uid_t uid, const std::vector<gid_t>& groups, const std::function<int()>& body) {
  return spawn([&] { return become(uid, groups) ? body() : 90; });
}

int run_as(uid_t uid, const std::vector<gid_t>& groups, const std::function<int()>& body) {
  return wait_exit(spawn_as(uid, groups, body));
}

int run_as_member(uid_t uid, const std::function<int()>& body) { return run_as(uid, {kGroup}, body); }

// The code of the shmq::Error `f` throws (Errc::System, and a note on
// stderr, when it throws none), for children that report by exit code.
Errc error_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (message != nullptr) *message = e.what();
    return e.code();
  }
  std::fprintf(stderr, "no shmq::Error thrown\n");
  return Errc::System;
}

class UsersTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root to run processes as other users (uids 61001..61003, group 61000)";
    }
  }

  [[nodiscard]] std::string segment_path(const std::string& queue) const {
    return "/dev/shm/shmq." + ns_ + "." + queue;
  }

  // `queue`, created by user A with `mode` and group G.
  static void create_shared(const std::string& queue, mode_t mode = 0660, bool durable = false) {
    ASSERT_EQ(run_as_member(kUserA,
                            [&] {
                              QueueOptions o;
                              o.capacity = kRing;
                              o.max_message = 256;
                              o.mode = mode;
                              o.group = kGroup;
                              o.durable = durable;
                              (void)Queue::create(queue, o);
                              return 0;
                            }),
              0);
  }

  static void expect_owner(const std::string& path, uid_t uid, gid_t gid, mode_t mode) {
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, uid) << path;
    EXPECT_EQ(st.st_gid, gid) << path;
    EXPECT_EQ(st.st_mode & 07777, mode) << path;
  }

  // User A sends sequences 1..count (payload_for) to `queue`.
  static int send_as_a(const std::string& queue, std::uint64_t count) {
    return run_as_member(kUserA, [&] {
      auto p = Producer::attach(Queue::open(queue), "a");
      for (std::uint64_t i = 1; i <= count; ++i) {
        if (p.send(bytes_of(payload_for(i)), 5s) != Status::Ok) return 1;
      }
      return 0;
    });
  }

  // A consumer of user B in group "g" takes `take` messages and is killed
  // with kill -9 while it holds them.
  static void kill_a_consumer_of_b_holding(const std::string& queue, std::uint64_t take) {
    Pipe holding;
    const pid_t child = spawn_as(kUserB, {kGroup}, [&] {
      auto c = Consumer::join(Queue::open(queue), "g");
      std::vector<Message> held(take);
      for (auto& m : held) {
        if (c.receive(m, 5s) != Status::Ok) return 1;
      }
      holding.signal();
      ::pause();
      return 0;
    });
    ASSERT_TRUE(holding.wait()) << "user B's consumer never held its messages";
    ::kill(child, SIGKILL);
    EXPECT_EQ(wait_exit(child), 128 + SIGKILL);
  }

  // A consumer of user A joins "g" and gets all `count` messages: the first
  // `held` flagged redelivered (what B's dead consumer held), then the rest.
  static int receive_all_as_a(const std::string& queue, std::uint64_t held, std::uint64_t count) {
    return run_as_member(kUserA, [&] {
      auto c = Consumer::join(Queue::open(queue), "g");
      Message m;
      for (std::uint64_t i = 1; i <= count; ++i) {
        const Status status = c.receive(m, 10s);
        if (status != Status::Ok) {
          std::fprintf(stderr, "receive of %llu: %s\n", static_cast<unsigned long long>(i),
                       std::string(to_string(status)).c_str());
          return 10;
        }
        if (m.sequence != i || m.text() != payload_for(i)) return 11;
        if (m.redelivered != (i <= held)) return 12;
        if (c.ack(m) != Status::Ok) return 13;
      }
      return c.try_receive(m) == Status::Empty ? 0 : 14;
    });
  }
};

TEST_F(UsersTest, MembersOfTheGroupProduceAndConsumeAcrossUids) {
  create_shared("shared");
  expect_owner(segment_path("shared"), kUserA, kGroup, 0660);
  Pipe joined;
  const pid_t consumer = spawn_as(kUserB, {kGroup}, [&] {
    auto c = Consumer::join(Queue::open("shared"), "g");
    joined.signal();
    Message m;
    for (std::uint64_t i = 1; i <= 20; ++i) {
      if (c.receive(m, 10s) != Status::Ok) return 1;
      if (m.sequence != i || m.text() != payload_for(i) || m.redelivered) return 2;
      if (c.ack(m) != Status::Ok) return 3;
    }
    return 0;
  });
  ASSERT_TRUE(joined.wait());
  EXPECT_EQ(send_as_a("shared", 20), 0);
  EXPECT_EQ(wait_exit(consumer), 0) << "user B's consumer (1: no message; 2: a wrong one; 3: ack; 90: setuid)";
}

TEST_F(UsersTest, ShmqdRedeliversWhatAKilledConsumerOfAnotherUidHeld) {
  create_shared("shared");
  Daemon daemon = start_daemon();
  ASSERT_TRUE(daemon.serves(Queue::open("shared")));
  ASSERT_EQ(send_as_a("shared", 5), 0);
  kill_a_consumer_of_b_holding("shared", 3);
  // shmqd (root) repairs before anyone else joins the group.
  const Queue q = Queue::open_read_only("shared");
  EXPECT_TRUE(eventually([&] { return q.info().clients_reaped >= 1 && group(q.info(), "g").in_flight == 0; }, 10s))
      << "shmqd did not reap user B's consumer";
  EXPECT_EQ(receive_all_as_a("shared", 3, 5), 0);
}

TEST_F(UsersTest, WithoutShmqdAMemberOfAnotherUidTakesOverTheDeadConsumer) {
  create_shared("shared");
  ASSERT_EQ(send_as_a("shared", 5), 0);
  kill_a_consumer_of_b_holding("shared", 3);
  EXPECT_EQ(receive_all_as_a("shared", 3, 5), 0)
      << "10: not delivered; 11: wrong message; 12: redelivered flag wrong; 14: extra message";
}

TEST_F(UsersTest, AUserOutsideTheGroupIsRefusedWithTheFileNamed) {
  create_shared("shared");
  const std::string path = segment_path("shared");
  EXPECT_EQ(run_as(kOutsider, {},
                   [&] {
                     std::string message;
                     if (error_of([] { (void)Queue::open("shared"); }, &message) != Errc::PermissionDenied) return 1;
                     // The message says which file, its mode and owner, and who asked.
                     if (message.find(path) == std::string::npos || message.find("0660") == std::string::npos ||
                         message.find("61001") == std::string::npos || message.find("61000") == std::string::npos ||
                         message.find("uid 61003") == std::string::npos) {
                       std::fprintf(stderr, "message: %s\n", message.c_str());
                       return 2;
                     }
                     if (error_of([] { (void)Queue::open_read_only("shared"); }) != Errc::PermissionDenied) return 3;
                     // Nor may it give a queue of its own the group.
                     QueueOptions o;
                     o.group = kGroup;
                     if (error_of([&] { (void)Queue::create("mine", o); }, &message) != Errc::PermissionDenied) {
                       return 4;
                     }
                     return message.find("61000") != std::string::npos ? 0 : 5;
                   }),
            0);
  // Nothing of the refused create is left behind.
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    EXPECT_EQ(entry.path().filename().string().find(ns_ + ".mine"), std::string::npos) << entry.path();
  }
}

TEST_F(UsersTest, AMemberWhoMayOnlyReadWatchesButCannotSendOrReceive) {
  create_shared("watched", 0640);
  ASSERT_EQ(send_as_a("watched", 3), 0);
  EXPECT_EQ(run_as_member(kUserB,
                          [] {
                            // No writable handle, so no producer or consumer: PermissionDenied.
                            if (error_of([] { (void)Queue::open("watched"); }) != Errc::PermissionDenied) return 1;
                            // But shmq-stat's read-only view works.
                            const Queue q = Queue::open_read_only("watched");
                            const QueueInfo info = q.info();
                            if (info.messages_total != 3 || info.mode != 0640) return 2;
                            if (info.uid != kUserA || info.gid != kGroup || q.options().group != kGroup) return 3;
                            // And a read-only handle makes no producer or consumer.
                            if (error_of([&] { (void)Producer::attach(q, "b"); }) == Errc::System) return 4;
                            if (error_of([&] { (void)Consumer::join(q, "g"); }) == Errc::System) return 5;
                            return 0;
                          }),
            0);
}

TEST_F(UsersTest, ClientsOfOtherUidsFindShmqdAndReadItsJournal) {
  create_shared("dq", 0660, true);
  Daemon daemon = start_daemon({"--group", std::to_string(kGroup)});
  ASSERT_TRUE(daemon.serves(Queue::open("dq")));
  // shmqd's files: its record readable by all, its data directory and
  // journals readable by the group, written by shmqd alone.
  expect_owner(dir_, 0, kGroup, 02750);
  struct stat record {};
  ASSERT_EQ(::stat(("/dev/shm/shmqd." + ns_).c_str(), &record), 0);
  EXPECT_EQ(record.st_mode & 0777, 0644u);
  // Three rings' worth, with no group yet: the ring has long reused the
  // first records, which only the journal holds.
  const std::uint64_t count = 3 * kPerRing;
  ASSERT_EQ(run_as_member(kUserA,
                          [&] {
                            auto p = Producer::attach(Queue::open("dq"), "a");
                            for (std::uint64_t i = 1; i <= count; ++i) {
                              if (p.send(bytes_of(payload_of(i)), 10s) != Status::Ok) return 1;
                            }
                            return p.wait_durable(10s) == Status::Ok ? 0 : 2;
                          }),
            0);
  expect_owner(dir_ + "/journal", 0, kGroup, 02750);  // created since: the group and setgid inherited
  expect_owner(dir_ + "/journal/dq", 0, kGroup, 02750);
  for (const auto& entry : fs::directory_iterator(dir_ + "/journal/dq")) {
    if (entry.path().extension() == ".journal") expect_owner(entry.path(), 0, kGroup, 0640);
  }
  const pid_t expected_pid = daemon.pid();
  EXPECT_EQ(run_as_member(kUserB,
                          [&] {
                            if (daemon_pid() != expected_pid) return 1;
                            if (daemon_data_dir() != fs::path(dir_)) return 2;
                            auto c = Consumer::join(Queue::open("dq"), "late", {.start = StartAt::Oldest});
                            Message m;
                            for (std::uint64_t i = 1; i <= count; ++i) {
                              const Status status = c.receive(m, 10s);
                              if (status != Status::Ok) {
                                std::fprintf(stderr, "receive of %llu: %s (%s)\n",
                                             static_cast<unsigned long long>(i),
                                             std::string(to_string(status)).c_str(), c.journal_error().c_str());
                                return 3;
                              }
                              if (m.sequence != i || m.text() != payload_of(i)) return 4;
                              if (c.ack(m) != Status::Ok) return 5;
                            }
                            return 0;
                          }),
            0)
      << "user B (1: no daemon pid; 2: another data directory; 3: not received; 4: wrong message)";
  // Nobody outside the group reads the journal.
  EXPECT_EQ(run_as(kOutsider, {}, [&] { return ::access((dir_ + "/journal").c_str(), R_OK) == 0 ? 1 : 0; }), 0);
}

TEST_F(UsersTest, ARebuildGivesTheQueueBackItsOwnerGroupAndMode) {
  create_shared("dq", 0660, true);
  {
    Daemon daemon = start_daemon({"--group", std::to_string(kGroup)});
    ASSERT_TRUE(daemon.serves(Queue::open("dq")));
    ASSERT_EQ(run_as_member(kUserB,
                            [] {
                              (void)Consumer::join(Queue::open("dq"), "g");  // the group stays, unacked
                              return 0;
                            }),
              0);
    ASSERT_EQ(run_as_member(kUserA,
                            [] {
                              auto p = Producer::attach(Queue::open("dq"), "a");
                              for (std::uint64_t i = 1; i <= 5; ++i) {
                                if (p.send(bytes_of(payload_for(i)), 5s) != Status::Ok) return 1;
                              }
                              return p.wait_durable(10s) == Status::Ok ? 0 : 2;
                            }),
              0);
    EXPECT_EQ(daemon.terminate(), 0);
  }
  ASSERT_TRUE(Queue::remove("dq"));  // as a reboot does
  Daemon daemon = start_daemon({"--group", std::to_string(kGroup)});
  ASSERT_TRUE(eventually([&] { return fs::exists(segment_path("dq")); }, 10s)) << "not rebuilt";
  expect_owner(segment_path("dq"), kUserA, kGroup, 0660);
  EXPECT_EQ(run_as_member(kUserB,
                          [] {
                            auto c = Consumer::join(Queue::open("dq"), "g");
                            Message m;
                            for (std::uint64_t i = 1; i <= 5; ++i) {
                              if (c.receive(m, 10s) != Status::Ok) return 1;
                              if (m.sequence != i || m.text() != payload_for(i)) return 2;
                              if (c.ack(m) != Status::Ok) return 3;
                            }
                            return 0;
                          }),
            0);
}

}  // namespace
}  // namespace shmq::test
