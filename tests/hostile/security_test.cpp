// The security promises of docs/security.md: segments are created with the
// requested mode and owned by their creator; no name can reach outside the
// namespace's files in /dev/shm; another user's private segment is refused
// cleanly; a planted symlink is not followed.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "test_support.hpp"

namespace shmq::test {
namespace {

constexpr uid_t kNobody = 65534;

class SecurityTest : public NamespaceTest {
 protected:
  std::string path(const std::string& queue) const { return "/dev/shm/shmq." + ns_ + "." + queue; }
};

// Returns how a child running as uid/gid 65534 ended: 0 ok, 10 setuid failed.
int as_nobody(const std::function<int()>& body) {
  return wait_exit(spawn([&] {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 10;
    return body();
  }));
}

TEST_F(SecurityTest, SegmentsHaveTheRequestedModeAndTheCreatorAsOwner) {
  const mode_t old_umask = ::umask(0077);  // a strict umask must not narrow an asked-for 0660
  Queue::create("private");
  QueueOptions group;
  group.mode = 0660;
  Queue::create("shared", group);
  QueueOptions all;
  all.mode = 0666;
  Queue::create("world", all);
  ::umask(old_umask);
  for (const auto& [queue, mode] : {std::pair{"private", 0600u}, {"shared", 0660u}, {"world", 0666u}}) {
    struct stat st {};
    ASSERT_EQ(::stat(path(queue).c_str(), &st), 0) << queue;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << queue;
    EXPECT_EQ(st.st_mode & 07777, mode) << queue;
    EXPECT_EQ(st.st_uid, ::geteuid()) << queue;
    EXPECT_EQ(st.st_gid, ::getegid()) << queue;
  }
  EXPECT_EQ(Queue::open("private").info().mode, 0600u);
  QueueOptions bad;
  for (mode_t mode : {0400u, 0200u, 01600u, 04600u, 02660u, 0u}) {
    bad.mode = mode;
    EXPECT_EQ(code_of([&] { Queue::create("bad", bad); }), Errc::InvalidArgument) << std::oct << mode;
  }
  EXPECT_FALSE(std::filesystem::exists(path("bad")));
}

TEST_F(SecurityTest, NamesCannotEscapeTheNamespace) {
  const std::vector<std::string> bad = {
      "../x", "/x", "x/..", "..", ".", "a/b", std::string("a\0b", 3), std::string("\0", 1), std::string(64, 'a'),
      std::string(4096, 'a'), "", "x y", "x\n", "\\x", "~x", "$x", "%2e%2e%2fx", "\xc3\xbc"};
  for (const std::string& name : bad) {
    EXPECT_EQ(code_of([&] { Queue::create(name); }), Errc::InvalidName) << name;
    EXPECT_EQ(code_of([&] { Queue::open(name); }), Errc::InvalidName) << name;
    EXPECT_EQ(code_of([&] { Queue::open_read_only(name); }), Errc::InvalidName) << name;
    EXPECT_EQ(code_of([&] { Queue::remove(name); }), Errc::InvalidName) << name;
    if (name.empty()) continue;  // an empty namespace argument means the current namespace
    EXPECT_EQ(code_of([&] { Queue::create("q", {}, name); }), Errc::InvalidName) << "namespace " << name;
    EXPECT_EQ(code_of([&] { Queue::open("q", name); }), Errc::InvalidName) << "namespace " << name;
    EXPECT_EQ(code_of([&] { Queue::list(name); }), Errc::InvalidName) << "namespace " << name;
  }
  // Namespaces also refuse '.', so shmq.<ns>.<queue> is unambiguous.
  EXPECT_EQ(code_of([&] { Queue::create("q", {}, "a.b"); }), Errc::InvalidName);
  // Through the environment too.
  ::setenv("SHMQ_NAMESPACE", "../etc", 1);
  EXPECT_EQ(code_of([&] { Queue::create("q"); }), Errc::InvalidName);
  ::setenv("SHMQ_NAMESPACE", ns_.c_str(), 1);
  // Client names inside a queue: the same rules.
  auto q = Queue::create("q");
  for (const std::string& name : bad) {
    EXPECT_EQ(code_of([&] { Producer::attach(q, name); }), Errc::InvalidName) << name;
    EXPECT_EQ(code_of([&] { Consumer::join(q, name); }), Errc::InvalidName) << name;
  }
  // 63 characters is the longest name, and it stays inside /dev/shm.
  const std::string longest(63, 'z');
  Queue::create(longest);
  EXPECT_TRUE(std::filesystem::exists(path(longest)));
  EXPECT_FALSE(std::filesystem::exists("/dev/x"));
  EXPECT_FALSE(std::filesystem::exists("/x"));
}

TEST_F(SecurityTest, PlantedSymlinkIsNotFollowed) {
  const std::string target = "/tmp/shmq-security-" + ns_;
  std::ofstream(target) << std::string(8192, 'v');
  std::filesystem::create_symlink(target, path("planted"));
  // shm_open opens with O_NOFOLLOW: the link is refused (ELOOP), its target never read.
  EXPECT_THROW(Queue::open("planted"), Error);
  EXPECT_NE(code_of([&] { Queue::open("planted"); }), Errc::Incompatible) << "opened and read the link's target";
  EXPECT_NE(code_of([&] { Queue::open_read_only("planted"); }), Errc::Incompatible);
  EXPECT_EQ(code_of([&] { Queue::create("planted"); }), Errc::AlreadyExists) << "create must not follow it either";
  std::ifstream in(target);
  const std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  EXPECT_EQ(content, std::string(8192, 'v')) << "the link's target was modified";
  std::filesystem::remove(target);
}

TEST_F(SecurityTest, AnotherUsersPrivateSegmentIsRefusedCleanly) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child as another user (uid 65534)";
  auto q = Queue::create("private");
  auto p = Producer::attach(q, "p");
  ASSERT_EQ(p.try_send(as_bytes("secret")), Status::Ok);
  const int rc = as_nobody([] {
    if (code_of([] { Queue::open("private"); }) != Errc::PermissionDenied) return 11;
    if (code_of([] { Queue::open_read_only("private"); }) != Errc::PermissionDenied) return 12;
    if (code_of([] { Queue::create("private"); }) != Errc::AlreadyExists) return 13;
    // /dev/shm is sticky: another user cannot delete (nor replace) it.
    try {
      Queue::remove("private");
      return 14;
    } catch (const Error&) {
    }
    return 0;
  });
  EXPECT_EQ(rc, 0) << "10: setuid failed, 11: open, 12: open_read_only, 13: create, 14: remove was allowed";
  EXPECT_TRUE(std::filesystem::exists(path("private")));
  // A group-readable segment is readable by a group member, and still not writable by others.
  QueueOptions shared;
  shared.mode = 0660;
  Queue::create("shared", shared);
  ASSERT_EQ(::chown(path("shared").c_str(), 0, kNobody), 0);
  EXPECT_EQ(as_nobody([] {
              try {
                (void)Queue::open("shared").info();
              } catch (const Error&) {
                return 21;
              }
              return 0;
            }),
            0)
      << "a member of the segment's group opens a 0660 segment";
}

TEST_F(SecurityTest, SegmentOfAnotherUserIsNotTakenOver) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to fork a child as another user (uid 65534)";
  // nobody creates a private queue; root can read anything, so check the file only.
  EXPECT_EQ(as_nobody([] {
              try {
                Queue::create("theirs");
              } catch (const Error&) {
                return 31;
              }
              return 0;
            }),
            0);
  struct stat st {};
  ASSERT_EQ(::stat(path("theirs").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace shmq::test
