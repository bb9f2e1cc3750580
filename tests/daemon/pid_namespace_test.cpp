// Liveness across pid namespaces (containers sharing /dev/shm): a client's
// pid means nothing to a process of another namespace, so shmqd and the
// library judge liveness by entry locks (lib/src/shm/liveness.hpp). These
// tests put a consumer, or shmqd itself, in a new pid namespace
// (unshare(CLONE_NEWPID), as `unshare --pid --fork` does), and write
// misleading pids into the tables.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "daemon_support.hpp"
#include "shm/liveness.hpp"
#include "shm/process.hpp"
#include "shmq/consumer.hpp"
#include "shmq/producer.hpp"
#include "shmq/queue.hpp"

namespace shmq::test {
namespace {

// A process running `body` as pid 1 of a new pid namespace, and the forked
// parent that made the namespace and waits for it.
struct NamespacedChild {
  pid_t outer = -1;  // the parent, here
  pid_t inner = -1;  // the child's pid as this namespace sees it
  std::string error;  // why there is none (unshare refused)

  void kill9() {
    if (inner > 0) ::kill(inner, SIGKILL);
    if (outer > 0) wait_exit(outer);
    inner = outer = -1;
  }
  ~NamespacedChild() { kill9(); }
};

NamespacedChild spawn_in_new_pid_namespace(const std::function<int()>& body) {
  int report[2];
  if (::pipe(report) != 0) throw std::runtime_error("pipe");
  NamespacedChild child;
  child.outer = ::fork();
  if (child.outer == 0) {
    ::close(report[0]);
    pid_t inner = -errno;
    if (::unshare(CLONE_NEWPID) != 0) {
      inner = -errno;
    } else {
      inner = spawn(body);  // pid 1 of the new namespace
    }
    (void)!::write(report[1], &inner, sizeof inner);
    ::_exit(inner > 0 ? wait_exit(inner) : 1);
  }
  ::close(report[1]);
  pid_t inner = 0;
  const bool read_it = ::read(report[0], &inner, sizeof inner) == sizeof inner;
  ::close(report[0]);
  if (!read_it || inner <= 0) {
    child.error = std::string("unshare(CLONE_NEWPID): ") + std::strerror(read_it ? -inner : EIO);
    wait_exit(std::exchange(child.outer, -1));
  } else {
    child.inner = inner;
  }
  return child;
}

Queue make_queue_with(std::uint64_t messages) {
  Queue q = make_crash_queue();
  auto p = Producer::attach(q, "p");
  for (std::uint64_t i = 1; i <= messages; ++i) EXPECT_EQ(p.try_send(bytes_of(payload_for(i))), Status::Ok);
  return q;
}

// Joins `group` of "crash", takes `take` messages, signals `holding`, waits.
int hold_messages(const std::string& group, std::uint64_t take, const Pipe& holding) {
  auto c = Consumer::join(Queue::open("crash"), group);
  std::vector<Message> held(take);
  for (auto& m : held) {
    if (c.try_receive(m) != Status::Ok) return 1;
  }
  holding.signal();
  for (;;) ::pause();
}

const ConsumerInfo* only_member(const Queue& q, const std::string& name) {
  const auto info = q.info();
  const GroupInfo& g = group(info, name);
  static thread_local ConsumerInfo copy;
  if (g.consumers.size() != 1) return nullptr;
  copy = g.consumers[0];
  return &copy;
}

bool no_members(const Queue& q, const std::string& name) { return group(q.info(), name).consumers.empty(); }

// What a consumer joining here receives: `redelivered` flagged messages
// 1..redelivered, then unflagged ones up to `total`.
void expect_redelivery(const Queue& q, const std::string& group_name, std::uint64_t redelivered, std::uint64_t total) {
  auto c = Consumer::join(q, group_name);
  for (std::uint64_t seq = 1; seq <= total; ++seq) {
    Message m;
    ASSERT_EQ(c.try_receive(m), Status::Ok) << "message " << seq;
    EXPECT_EQ(m.sequence, seq);
    EXPECT_EQ(m.redelivered, seq <= redelivered) << "message " << seq;
    ASSERT_EQ(c.ack(m), Status::Ok);
  }
}

class PidNamespaceTest : public DaemonTest {};

// shmqd here, a consumer as pid 1 of a new namespace: its pid names init
// here, a live process that is not the client. shmqd must neither take the
// live consumer for dead nor miss its death.
TEST_F(PidNamespaceTest, ShmqdRedeliversWhatAConsumerOfAnotherPidNamespaceHeld) {
  Queue q = make_queue_with(5);
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  Pipe holding;
  NamespacedChild consumer = spawn_in_new_pid_namespace([&] { return hold_messages("g", 3, holding); });
  if (consumer.inner < 0) GTEST_SKIP() << consumer.error;
  ASSERT_TRUE(holding.wait());

  // Alive: shmqd polls its entry (no pidfd can name it) and leaves it be.
  std::this_thread::sleep_for(300ms);
  const ConsumerInfo* member = only_member(q, "g");
  ASSERT_NE(member, nullptr) << "shmqd reaped a live consumer of another pid namespace";
  EXPECT_EQ(member->pid, 1);
  EXPECT_NE(member->pid_namespace, detail::self_pid_namespace());
  EXPECT_TRUE(member->alive);
  EXPECT_EQ(member->in_flight, 3u);

  consumer.kill9();
  ASSERT_TRUE(eventually([&] { return no_members(q, "g"); })) << "shmqd missed the death";
  expect_redelivery(q, "g", 3, 5);
}

// The reverse: shmqd as pid 1 of a new namespace, the clients here. Its
// record and its place in the queue say it serves, from any namespace.
TEST_F(PidNamespaceTest, ShmqdInAnotherPidNamespaceRedeliversWhatAConsumerHereHeld) {
  Queue q = make_queue_with(5);
  const std::string data_dir = dir_;
  NamespacedChild daemon = spawn_in_new_pid_namespace([&] {
    std::vector<std::string> argv{SHMQD_PATH, "--data-dir", data_dir, "--foreground"};
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    ::execv(c[0], c.data());
    return 127;
  });
  if (daemon.inner < 0) GTEST_SKIP() << daemon.error;
  ASSERT_TRUE(eventually([&] { return q.info().daemon_alive; })) << "shmqd never served the queue";
  EXPECT_EQ(q.info().daemon_pid, 1);
  EXPECT_NE(q.info().daemon_pid_namespace, detail::self_pid_namespace());
  EXPECT_EQ(daemon_pid(), 1) << "its record says it runs";

  kill_a_consumer_holding("crash", "g", 3);
  ASSERT_TRUE(eventually([&] { return no_members(q, "g"); })) << "shmqd missed the death";
  expect_redelivery(q, "g", 3, 5);

  daemon.kill9();
  EXPECT_FALSE(q.info().daemon_alive);
  EXPECT_EQ(daemon_pid(), 0);
}

// Writes `pid` and its start time (0 when it is gone) into member `index`
// of the queue's first group, as if that process held the entry.
void rename_member(const Queue& q, std::uint32_t index, pid_t pid) {
  auto& member = detail::mapping_of(q)->consumer(0, index);
  member.pid.store(pid, std::memory_order_relaxed);
  member.start_time.store(detail::process_start_time(pid), std::memory_order_relaxed);
}

// A dead consumer whose entry names a live process (this one): shmqd reaps
// it all the same, on its first scan.
TEST_F(PidNamespaceTest, ADeadConsumerWhoseEntryNamesALiveProcessIsReaped) {
  Queue q = make_queue_with(5);
  kill_a_consumer_holding("crash", "g", 3);
  rename_member(q, 0, ::getpid());
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  ASSERT_TRUE(eventually([&] { return no_members(q, "g"); }));
  expect_redelivery(q, "g", 3, 5);
}

// The same without shmqd: a consumer joining the group reaps it first.
TEST_F(PidNamespaceTest, ADeadConsumerWhoseEntryNamesALiveProcessIsReapedByAJoin) {
  Queue q = make_queue_with(5);
  kill_a_consumer_holding("crash", "g", 3);
  rename_member(q, 0, ::getpid());
  expect_redelivery(q, "g", 3, 5);
}

// A live consumer whose entry names a dead process: never reaped, neither
// by shmqd nor by a peer joining its group, until it really dies.
TEST_F(PidNamespaceTest, ALiveConsumerWhoseEntryNamesADeadProcessIsKept) {
  Queue q = make_queue_with(5);
  Pipe holding;
  const pid_t holder = spawn_holding_consumer("crash", "g", 3, 0, holding);
  ASSERT_TRUE(holding.wait());
  const pid_t gone = spawn([] { return 0; });
  wait_exit(gone);
  rename_member(q, 0, gone);

  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q));
  {
    auto peer = Consumer::join(q, "g");  // a join reaps dead members first
    std::this_thread::sleep_for(300ms);
    const QueueInfo info = q.info();
    const GroupInfo& g = group(info, "g");
    ASSERT_EQ(g.consumers.size(), 2u) << "a live consumer was reaped";
    EXPECT_EQ(g.in_flight, 3u);
    EXPECT_TRUE(g.consumers[0].alive);
  }
  ::kill(holder, SIGKILL);
  wait_exit(holder);
  ASSERT_TRUE(eventually([&] { return no_members(q, "g"); }));
  expect_redelivery(q, "g", 3, 5);
}

// A process that may only read the segment can take a read lock on a dead
// member's byte, never a write lock: liveness is probed for reading, so its
// lock passes for no holder, and shmqd reaps the member. (Until it lets go,
// the entry cannot be taken again, as a reader's flock on the segment would
// block every join: docs/security.md.)
TEST_F(PidNamespaceTest, AReadersLockKeepsNoDeadMemberAlive) {
  Queue q = make_queue_with(5);
  kill_a_consumer_holding("crash", "g", 3);
  const int reader = ::open(detail::mapping_of(q)->path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(reader, 0);
  struct flock lock {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = detail::consumer_lock_byte(0, 0);
  lock.l_len = 1;
  ASSERT_EQ(::fcntl(reader, F_OFD_SETLK, &lock), 0);
  EXPECT_FALSE(q.info().groups.at(0).consumers.at(0).alive);
  Daemon d = start_daemon();
  ASSERT_TRUE(eventually([&] { return no_members(q, "g"); }));
  ::close(reader);
  expect_redelivery(q, "g", 3, 5);
}

}  // namespace
}  // namespace shmq::test
