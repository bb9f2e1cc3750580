// A file descriptor with the few system calls the journal makes, each
// throwing JournalError(Io) with errno and the path on failure.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <vector>

namespace shmq::journal {

class File {
 public:
  [[nodiscard]] static File open(const std::filesystem::path& path, int flags, mode_t mode = 0644);
  // nullopt when the path does not exist (a segment retention just deleted).
  [[nodiscard]] static std::optional<File> open_if_exists(const std::filesystem::path& path, int flags);
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::uint64_t size() const;
  // Reads until `out` is full or the file ends; returns the bytes read.
  std::size_t read_at(std::uint64_t offset, std::span<std::byte> out) const;
  void write_all(std::span<const std::byte> bytes);
  void sync_data();
  void truncate(std::uint64_t size);
  // flock(LOCK_EX | LOCK_NB); false when another holder has it.
  [[nodiscard]] bool try_lock();

 private:
  friend void sync_directory(const std::filesystem::path& dir);
  File(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::filesystem::path path_;
};

[[noreturn]] void throw_io(const std::string& what, const std::filesystem::path& path);
// Makes a created, renamed or deleted entry of `dir` durable.
void sync_directory(const std::filesystem::path& dir);

}  // namespace shmq::journal
