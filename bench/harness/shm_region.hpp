// A POSIX shared-memory object mapped read-write: created (and unlinked on
// destruction) by its owner, opened by the sides.
#pragma once

#include <cstddef>
#include <string>

namespace bench {

class ShmRegion {
 public:
  static ShmRegion create(const std::string& name, std::size_t bytes);
  static ShmRegion open(const std::string& name, std::size_t bytes);
  ShmRegion(ShmRegion&& other) noexcept;
  ShmRegion& operator=(ShmRegion&&) = delete;
  ~ShmRegion();

  [[nodiscard]] void* data() const noexcept { return data_; }

 private:
  ShmRegion(std::string name, std::size_t bytes, bool owner);
  std::string name_;
  std::size_t bytes_;
  void* data_ = nullptr;
  bool owner_;
};

// Anonymous memory shared with forked children: results and start flags.
class SharedBlock {
 public:
  explicit SharedBlock(std::size_t bytes);
  SharedBlock(const SharedBlock&) = delete;
  SharedBlock& operator=(const SharedBlock&) = delete;
  ~SharedBlock();

  template <class T>
  [[nodiscard]] T* as() const noexcept {
    return static_cast<T*>(data_);
  }

 private:
  std::size_t bytes_;
  void* data_;
};

}  // namespace bench
