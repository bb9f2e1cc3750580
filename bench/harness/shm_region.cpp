#include "shm_region.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "transport.hpp"

namespace bench {

ShmRegion::ShmRegion(std::string name, std::size_t bytes, bool owner)
    : name_(std::move(name)), bytes_(bytes), owner_(owner) {
  const int flags = owner ? O_RDWR | O_CREAT | O_EXCL : O_RDWR;
  const int fd = shm_open(("/" + name_).c_str(), flags, 0600);
  check_errno(fd >= 0, "shm_open " + name_);
  if (owner && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    close(fd);
    shm_unlink(("/" + name_).c_str());
    check_errno(false, "ftruncate " + name_);
  }
  data_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (data_ == MAP_FAILED && owner) shm_unlink(("/" + name_).c_str());
  check_errno(data_ != MAP_FAILED, "mmap " + name_);
}

ShmRegion ShmRegion::create(const std::string& name, std::size_t bytes) { return {name, bytes, true}; }

ShmRegion ShmRegion::open(const std::string& name, std::size_t bytes) { return {name, bytes, false}; }

ShmRegion::ShmRegion(ShmRegion&& other) noexcept
    : name_(std::move(other.name_)),
      bytes_(other.bytes_),
      data_(std::exchange(other.data_, nullptr)),
      owner_(std::exchange(other.owner_, false)) {}

ShmRegion::~ShmRegion() {
  if (data_ != nullptr) munmap(data_, bytes_);
  if (owner_) shm_unlink(("/" + name_).c_str());
}

SharedBlock::SharedBlock(std::size_t bytes)
    : bytes_(bytes), data_(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) {
  check_errno(data_ != MAP_FAILED, "mmap shared block");
}

SharedBlock::~SharedBlock() { munmap(data_, bytes_); }

}  // namespace bench
