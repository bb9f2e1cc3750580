// LD_PRELOAD'ed into shmqd by DurableTest.AFailedSyncIsWrittenAgainNotTrusted.
//
// Makes one fdatasync fail with EIO when the file $SHMQ_TEST_FAIL_SYNC exists
// (it is removed then), and writes down in $SHMQ_TEST_LOST_LOG what Linux may
// have lost with that failure while it still reads back fine from the page
// cache ("fsyncgate"): the file's bytes since its last good sync, as
// "lost PATH FROM TO". A later ftruncate below them is written down as
// "truncate PATH SIZE" (what is cut is written anew, and synced again). The
// test then zeroes what is still lost, as a power loss would leave it.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace {

std::mutex mutex;
std::map<std::string, off_t> synced_size;  // by path: the size at its last good fdatasync

std::string path_of(int fd) {
  char link[64];
  char target[4096];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  const ssize_t n = ::readlink(link, target, sizeof target - 1);
  return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string();
}

off_t size_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_size : 0;
}

void note(const std::string& line) {
  const char* log = std::getenv("SHMQ_TEST_LOST_LOG");
  if (log == nullptr) return;
  if (FILE* f = std::fopen(log, "a")) {
    std::fprintf(f, "%s\n", line.c_str());
    std::fclose(f);
  }
}

bool failure_requested() {
  const char* trigger = std::getenv("SHMQ_TEST_FAIL_SYNC");
  return trigger != nullptr && ::unlink(trigger) == 0;
}

}  // namespace

extern "C" int fdatasync(int fd) {
  using Fn = int (*)(int);
  static const auto real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "fdatasync"));
  const std::lock_guard lock(mutex);
  const std::string path = path_of(fd);
  if (failure_requested()) {
    note("lost " + path + " " + std::to_string(synced_size[path]) + " " + std::to_string(size_of(fd)));
    errno = EIO;
    return -1;
  }
  const int result = real(fd);
  if (result == 0) synced_size[path] = size_of(fd);
  return result;
}

extern "C" int ftruncate(int fd, off_t length) {
  using Fn = int (*)(int, off_t);
  static const auto real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "ftruncate"));
  const int result = real(fd, length);
  if (result == 0) {
    const std::lock_guard lock(mutex);
    const std::string path = path_of(fd);
    note("truncate " + path + " " + std::to_string(length));
    if (synced_size[path] > length) synced_size[path] = length;
  }
  return result;
}
