// Segments are created with the requested mode; another user is refused cleanly.
#include <sys/stat.h>

#include "test_support.hpp"

namespace shmq::test {
namespace {

class PermissionTest : public NamespaceTest {};

constexpr uid_t kNobody = 65534;

TEST_F(PermissionTest, ModeIsAppliedAndOtherUsersAreRefused) {
  QueueOptions shared;
  shared.mode = 0660;
  Queue::create("group-rw", shared);
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm/shmq." + ns_ + ".group-rw").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  Queue::create("private");
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user (uid 65534) for the refusal";
  const pid_t child = spawn([] {
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) return 10;
    try {
      Queue::open("private");
    } catch (const Error& e) {
      return e.code() == Errc::PermissionDenied ? 0 : 11;
    }
    return 12;
  });
  EXPECT_EQ(wait_exit(child), 0);
}

}  // namespace
}  // namespace shmq::test
