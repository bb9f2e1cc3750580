// Segments outside /dev/shm (SHMQ_SHM_DIR): the library, shmq, shmq-stat and
// shmqd all follow it; a small tmpfs of its own (16 MiB) that cannot hold a
// queue or fills up under running clients; a hugetlbfs, whose files are
// whole huge pages. The mounts need root (CAP_SYS_ADMIN): without it the
// tests skip, saying so.
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <fstream>

#include "daemon_support.hpp"

namespace shmq::test {
namespace {

namespace fs = std::filesystem;

// A file system mounted at a fresh temporary directory, named to this
// process and its children by SHMQ_SHM_DIR; unmounted by unmount().
class MountedShmDir {
 public:
  // Empty when mounted; else why not (the reason to skip).
  std::string mount(const char* type, const std::string& options) {
    std::string dir = (fs::temp_directory_path() / "shmq-shmdir-XXXXXX").string();
    if (::mkdtemp(dir.data()) == nullptr) return std::string("mkdtemp: ") + std::strerror(errno);
    dir_ = dir;
    if (::mount(type, dir_.c_str(), type, 0, options.c_str()) != 0) {
      return std::string("cannot mount ") + type + " (" + options + ") here: " + std::strerror(errno) +
             " (needs root with CAP_SYS_ADMIN)";
    }
    mounted_ = true;
    ::setenv("SHMQ_SHM_DIR", dir_.c_str(), 1);
    return {};
  }
  void unmount() {
    ::unsetenv("SHMQ_SHM_DIR");
    if (mounted_ && ::umount2(dir_.c_str(), MNT_DETACH) != 0) ADD_FAILURE() << "umount " << dir_;
    mounted_ = false;
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool mounted_ = false;
};

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::uint64_t free_bytes(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return 0;
  return static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

// Writes `path` until the file system says ENOSPC; true when it did.
bool fill_until_enospc(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const std::string chunk(64 << 10, 'x');
  bool full = false;
  for (;;) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n < 0) {
      full = errno == ENOSPC;
      break;
    }
    if (n == 0) break;
  }
  ::close(fd);
  return full;
}

// Runs a tool; returns its exit status and what it wrote (stdout and stderr).
std::pair<int, std::string> run_tool(std::vector<std::string> argv) {
  int out[2];
  if (::pipe(out) != 0) return {-1, "pipe"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::close(out[0]);
    std::vector<char*> c;
    for (auto& a : argv) c.push_back(a.data());
    c.push_back(nullptr);
    ::execv(c[0], c.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  return {wait_exit(pid), text};
}

QueueOptions small_queue() {
  QueueOptions o;
  o.capacity = 1 << 20;
  o.max_message = 256;
  o.max_groups = 2;
  return o;
}

// A child that sends `count` messages "<i>" to `queue`; exit 0 when all went.
pid_t spawn_sender(const std::string& queue, int count) {
  return spawn([queue, count] {
    auto p = Producer::attach(Queue::open(queue), "p");
    for (int i = 1; i <= count; ++i) {
      if (p.send(bytes_of(std::to_string(i)), 20s) != Status::Ok) return 1;
    }
    return 0;
  });
}

// Receives `count` messages "1".."count" in order in group `group`; exit 0 when so.
int receive_in_order(const std::string& queue, const std::string& group, int count) {
  auto c = Consumer::join(Queue::open(queue), group);
  Message m;
  for (int i = 1; i <= count; ++i) {
    if (c.receive(m, 20s) != Status::Ok) return 2;
    if (std::string(reinterpret_cast<const char*>(m.payload.data()), m.payload.size()) != std::to_string(i)) return 3;
    if (c.ack(m) != Status::Ok) return 4;
  }
  return 0;
}

// --- SHMQ_SHM_DIR itself: a plain directory is enough. ---

class ShmDirTest : public NamespaceTest {
 protected:
  void SetUp() override {
    NamespaceTest::SetUp();
    std::string dir = "/dev/shm/shmq-test-dir-XXXXXX";
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    NamespaceTest::TearDown();
    ::unsetenv("SHMQ_SHM_DIR");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(ShmDirTest, FollowsTheEnvironment) {
  ::unsetenv("SHMQ_SHM_DIR");
  EXPECT_EQ(shm_dir(), "/dev/shm");
  ::setenv("SHMQ_SHM_DIR", "", 1);
  EXPECT_EQ(shm_dir(), "/dev/shm") << "empty means unset";
  ::setenv("SHMQ_SHM_DIR", (dir_ + "/").c_str(), 1);
  EXPECT_EQ(shm_dir(), dir_) << "a trailing slash names the same directory";

  Queue q = Queue::create("q", small_queue());
  EXPECT_TRUE(fs::exists(dir_ + "/shmq." + ns_ + ".q"));
  EXPECT_FALSE(fs::exists("/dev/shm/shmq." + ns_ + ".q"));
  EXPECT_EQ(Queue::list(), std::vector<std::string>{"q"});
  EXPECT_FALSE(q.deleted());
  const pid_t sender = spawn_sender("q", 100);
  EXPECT_EQ(receive_in_order("q", "g", 100), 0);
  EXPECT_EQ(wait_exit(sender), 0);

  auto [rc, out] = run_tool({SHMQ_STAT_PATH, "--json"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"shm_dir\": \"" + dir_ + "\""), std::string::npos) << out;
  std::tie(rc, out) = run_tool({SHMQ_STAT_PATH});
  EXPECT_NE(out.find("in " + dir_), std::string::npos) << out;

  ::unsetenv("SHMQ_SHM_DIR");
  EXPECT_EQ(code_of([] { (void)Queue::open("q"); }), Errc::NotFound) << "not in /dev/shm";
  ::setenv("SHMQ_SHM_DIR", dir_.c_str(), 1);
  EXPECT_TRUE(Queue::remove("q"));
  EXPECT_TRUE(q.deleted());
  EXPECT_TRUE(files_in(dir_).empty());
}

TEST_F(ShmDirTest, RefusesARelativeMissingOrNonDirectoryPath) {
  const auto refused = [](const std::string& dir, const std::string& why) {
    ::setenv("SHMQ_SHM_DIR", dir.c_str(), 1);
    try {
      (void)Queue::create("q", small_queue());
      ADD_FAILURE() << dir << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::InvalidArgument) << e.what();
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("SHMQ_SHM_DIR"), std::string::npos) << e.what();
    }
    EXPECT_EQ(code_of([] { (void)shm_dir(); }), Errc::InvalidArgument);
    EXPECT_EQ(code_of([] { (void)Queue::list(); }), Errc::InvalidArgument);
  };
  refused("dev/shm", "is not an absolute path");
  refused(dir_ + "/missing", "does not exist");
  std::ofstream(dir_ + "/file") << "x";
  refused(dir_ + "/file", "is not a directory");

  ::setenv("SHMQ_SHM_DIR", "relative", 1);
  const auto [rc, out] = run_tool({SHMQ_PATH, "create", "q"});
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("'relative' (SHMQ_SHM_DIR) is not an absolute path"), std::string::npos) << out;
}

// --- A 16 MiB tmpfs: too small for some queues, and filled up. ---

class SmallShmTest : public DaemonTest {
 protected:
  void SetUp() override {
    DaemonTest::SetUp();
    if (const std::string why = shm_.mount("tmpfs", "size=16m"); !why.empty()) GTEST_SKIP() << why;
  }
  void TearDown() override {
    DaemonTest::TearDown();  // removes the namespace's files there first
    shm_.unmount();
  }
  const std::string& dir() const { return shm_.dir(); }
  MountedShmDir shm_;
};

TEST_F(SmallShmTest, AQueueTooLargeFailsWithNoSpaceLeavingNothing) {
  QueueOptions o;
  o.capacity = 64 << 20;
  try {
    (void)Queue::create("big", o);
    FAIL() << "a 64 MiB ring created in a 16 MiB tmpfs";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::NoSpace) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir()), std::string::npos) << "names the directory: " << e.what();
  }
  EXPECT_TRUE(files_in(dir()).empty());

  const auto [rc, out] = run_tool({SHMQ_PATH, "create", "big", "--capacity", "64M"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("cannot create queue 'big'"), std::string::npos) << out;
  EXPECT_NE(out.find(dir() + " has"), std::string::npos) << out;
  EXPECT_TRUE(files_in(dir()).empty());
}

TEST_F(SmallShmTest, AQueueThatFitsWorksAcrossProcesses) {
  (void)Queue::create("q", small_queue());
  const auto [rc, out] = run_tool({SHMQ_PATH, "create", "q2"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("of " + dir()), std::string::npos) << out;
  (void)Consumer::join(Queue::open("q"), "g");  // before any send
  const int messages = 50'000;                   // the 1 MiB ring many times over
  const pid_t receiver = spawn([] { return receive_in_order("q", "g", messages); });
  const pid_t sender = spawn_sender("q", messages);
  EXPECT_EQ(wait_exit(sender), 0);
  EXPECT_EQ(wait_exit(receiver), 0);
}

TEST_F(SmallShmTest, ClientsKeepGoingWhenTheFileSystemFillsUp) {
  (void)Queue::create("q", small_queue());
  (void)Consumer::join(Queue::open("q"), "g");
  ASSERT_TRUE(fill_until_enospc(dir() + "/filler"));
  ASSERT_LT(free_bytes(dir()), 64u << 10);
  // Every page of the segment was reserved at create: the ring wraps many
  // times over a full file system, without a SIGBUS.
  const int messages = 50'000;
  const pid_t receiver = spawn([] { return receive_in_order("q", "g", messages); });
  const pid_t sender = spawn_sender("q", messages);
  EXPECT_EQ(wait_exit(sender), 0) << "128+7 is a SIGBUS";
  EXPECT_EQ(wait_exit(receiver), 0) << "128+7 is a SIGBUS";
  // And the next queue is refused cleanly.
  EXPECT_EQ(code_of([] { (void)Queue::create("q2", small_queue()); }), Errc::NoSpace);
  EXPECT_EQ(files_in(dir()), (std::vector<std::string>{"filler", "shmq." + ns_ + ".q"}));
}

// shmqd rebuilds a durable queue whose segment is gone into a tmpfs without
// room for it: a clear error in its log, and it lives on; once room is made,
// its retry (every second for want of room) rebuilds the queue.
TEST_F(SmallShmTest, ShmqdRebuildsOnceThereIsRoom) {
  QueueOptions o = small_queue();
  o.durable = true;
  const std::string log = dir_ + "/shmqd.log";
  {
    Daemon d = start_daemon({}, log);
    Queue q = Queue::create("d", o);
    ASSERT_TRUE(d.serves(q));
    (void)Consumer::join(q, "g");
    auto p = Producer::attach(q, "p");
    for (int i = 1; i <= 100; ++i) ASSERT_EQ(p.send(bytes_of(std::to_string(i)), 10s), Status::Ok);
    ASSERT_EQ(p.wait_durable(10s), Status::Ok);
    std::this_thread::sleep_for(300ms);  // the group's state checkpointed (every 100 ms)
    EXPECT_EQ(d.terminate(), 0);
  }
  ASSERT_TRUE(Queue::remove("d"));  // as a reboot would
  // Room for shmqd's record, not for the segment.
  const std::uint64_t room = 256 << 10;
  const std::uint64_t filler = free_bytes(dir()) - room;
  ASSERT_LT(room, Queue::segment_bytes(o));
  {
    const int fd = ::open((dir() + "/filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::posix_fallocate(fd, 0, static_cast<off_t>(filler)), 0);
    ::close(fd);
  }
  Daemon d = start_daemon({}, log);
  ASSERT_TRUE(eventually([&] { return slurp(log).find("not rebuilt") != std::string::npos; }, 10s)) << slurp(log);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("queue 'd' not rebuilt from its journal"), std::string::npos) << text;
  EXPECT_NE(text.find(dir() + " has"), std::string::npos) << "says the directory is too full: " << text;
  EXPECT_NE(text.find("segments in " + dir()), std::string::npos) << text;
  EXPECT_EQ(text.find("--salvage"), std::string::npos) << "no room is no damage: " << text;
  std::printf("%s", text.c_str());  // what an operator reads
  EXPECT_EQ(::kill(d.pid(), 0), 0);
  int status = 0;
  EXPECT_EQ(::waitpid(d.pid(), &status, WNOHANG), 0) << "shmqd died";
  EXPECT_EQ(files_in(dir()), (std::vector<std::string>{"filler", "shmqd." + ns_})) << "nothing half-built left";

  fs::remove(dir() + "/filler");
  ASSERT_TRUE(eventually([] { return !Queue::list().empty(); }, 10s)) << "rebuilt on its retry: " << slurp(log);
  Queue q = Queue::open("d");
  ASSERT_TRUE(d.serves(q));
  EXPECT_EQ(receive_in_order("d", "g", 100), 0) << "every journaled message back";
}

// A full directory: a first shmqd, which needs a page for its record, says
// so and exits 1; one restarted there reuses its record's page and serves.
TEST_F(SmallShmTest, ShmqdOnAFullDirectory) {
  Queue q = Queue::create("q", small_queue());
  ASSERT_TRUE(fill_until_enospc(dir() + "/filler"));
  const std::string log = dir_ + "/shmqd.log";
  Daemon first = start_daemon({}, log);
  EXPECT_EQ(first.exit_code(), 1);
  EXPECT_NE(slurp(log).find("cannot write the daemon record " + dir() + "/shmqd." + ns_ +
                            ": No space left on device (its directory is full"),
            std::string::npos)
      << slurp(log);

  fs::remove(dir() + "/filler");
  {
    Daemon d = start_daemon();
    ASSERT_TRUE(d.serves(q));
    EXPECT_EQ(d.terminate(), 0);
  }
  ASSERT_TRUE(fill_until_enospc(dir() + "/filler"));
  Daemon d = start_daemon();
  ASSERT_TRUE(d.serves(q)) << "shmqd did not come back on a full directory";
  EXPECT_EQ(daemon_pid(), d.pid());
}

// --- hugetlbfs: whole huge pages. ---

std::uint64_t meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string name;
  std::uint64_t value = 0;
  std::string unit;
  while (in >> name >> value) {
    std::getline(in, unit);
    if (name == key + ":") return value;
  }
  return 0;
}

class HugePageTest : public NamespaceTest {
 protected:
  void SetUp() override {
    NamespaceTest::SetUp();
    const std::uint64_t total = meminfo("HugePages_Total");
    const std::uint64_t free = meminfo("HugePages_Free");
    page_ = meminfo("Hugepagesize") << 10;
    const std::uint64_t needed = (Queue::segment_bytes(small_queue()) + page_ - 1) / std::max<std::uint64_t>(page_, 1);
    if (total == 0 || page_ == 0) {
      GTEST_SKIP() << "no huge pages reserved (/proc/meminfo HugePages_Total 0; echo 8 > /proc/sys/vm/nr_hugepages)";
    }
    if (free < needed + 1) GTEST_SKIP() << "only " << free << " huge pages free, the test needs " << needed + 1;
    if (const std::string why = shm_.mount("hugetlbfs", ""); !why.empty()) GTEST_SKIP() << why;
  }
  void TearDown() override {
    NamespaceTest::TearDown();
    shm_.unmount();
  }
  MountedShmDir shm_;
  std::uint64_t page_ = 0;
};

TEST_F(HugePageTest, AQueueOnHugetlbfsIsWholeHugePagesAndWorks) {
  const QueueOptions o = small_queue();
  (void)Queue::create("q", o);
  const auto file_bytes = fs::file_size(shm_.dir() + "/shmq." + ns_ + ".q");
  EXPECT_EQ(file_bytes % page_, 0u);
  EXPECT_GE(file_bytes, Queue::segment_bytes(o));
  EXPECT_LT(file_bytes, Queue::segment_bytes(o) + page_);
  (void)Consumer::join(Queue::open("q"), "g");
  const pid_t sender = spawn_sender("q", 20'000);
  EXPECT_EQ(receive_in_order("q", "g", 20'000), 0);
  EXPECT_EQ(wait_exit(sender), 0);
  (void)Queue::open_read_only("q").info();
  const auto [rc, out] = run_tool({SHMQ_STAT_PATH, "q"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("QUEUE q"), std::string::npos) << out;
  EXPECT_EQ(out.find("UNREADABLE"), std::string::npos) << out;

  // More than the free huge pages: fallocate refuses it, and nothing stays.
  QueueOptions big;
  big.capacity = 1ull << 30;
  try {
    (void)Queue::create("big", big);
    FAIL() << "a 1 GiB ring created on " << meminfo("HugePages_Free") << " free huge pages";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::NoSpace) << e.what();
    EXPECT_NE(std::string(e.what()).find("cannot allocate queue 'big'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(shm_.dir()), std::string::npos) << e.what();
  }
  EXPECT_EQ(files_in(shm_.dir()), std::vector<std::string>{"shmq." + ns_ + ".q"});
  EXPECT_TRUE(Queue::remove("q"));
}

}  // namespace
}  // namespace shmq::test
