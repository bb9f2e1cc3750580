// Byte-stream and datagram channels over file descriptors (pipes, sockets).
// In spin mode the descriptors are non-blocking and the ends poll.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "transport.hpp"

namespace bench {

// Descriptor pairs {read end, write end}, one per channel, closed by the owner.
class FdPairs {
 public:
  FdPairs() = default;
  FdPairs(const FdPairs&) = delete;
  FdPairs& operator=(const FdPairs&) = delete;
  ~FdPairs();
  void add(int read_end, int write_end, Wait wait);
  [[nodiscard]] const std::pair<int, int>& at(int channel) const { return fds_.at(channel); }

 private:
  std::vector<std::pair<int, int>> fds_;
};

// Writes the whole message, polling on EAGAIN.
void write_all(int fd, std::span<const std::byte> message);

// A receiver of fixed-size messages: reads until the buffer is full, so it
// also reassembles messages a stream split.
class FdReceiver final : public Receiver {
 public:
  FdReceiver(int fd, std::size_t payload) : fd_(fd), buffer_(payload) {}
  std::span<const std::byte> receive() override;

 private:
  int fd_;
  std::vector<std::byte> buffer_;
};

class FdSender final : public Sender {
 public:
  explicit FdSender(int fd) : fd_(fd) {}
  void send(std::span<const std::byte> message) override { write_all(fd_, message); }

 private:
  int fd_;
};

// A transport whose channels are descriptor pairs made before the sides fork.
class FdTransport final : public Transport {
 public:
  FdTransport(std::size_t payload, std::unique_ptr<FdPairs> fds) : payload_(payload), fds_(std::move(fds)) {}
  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    return std::make_unique<FdSender>(fds_->at(channel).second);
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    return std::make_unique<FdReceiver>(fds_->at(channel).first, payload_);
  }

 private:
  std::size_t payload_;
  std::unique_ptr<FdPairs> fds_;
};

}  // namespace bench
