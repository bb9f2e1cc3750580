// POSIX message queue (mq_open). Spin mode opens the queue O_NONBLOCK and
// polls; block mode sleeps in mq_receive/mq_send.
#include <fcntl.h>
#include <mqueue.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>

#include "transport.hpp"

namespace bench {
namespace {

mqd_t open_queue(const std::string& name, int flags, Wait wait) {
  const mqd_t q = mq_open(name.c_str(), flags | (wait == Wait::Spin ? O_NONBLOCK : 0));
  check_errno(q != static_cast<mqd_t>(-1), "mq_open " + name);
  return q;
}

class MqSender final : public Sender {
 public:
  MqSender(const std::string& name, Wait wait) : q_(open_queue(name, O_WRONLY, wait)) {}
  ~MqSender() override { mq_close(q_); }
  MqSender(const MqSender&) = delete;
  MqSender& operator=(const MqSender&) = delete;

  void send(std::span<const std::byte> message) override {
    const auto* data = reinterpret_cast<const char*>(message.data());
    while (mq_send(q_, data, message.size(), 0) != 0) {
      check_errno(errno == EAGAIN || errno == EINTR, "mq_send");
      cpu_relax();
    }
  }

 private:
  mqd_t q_;
};

class MqReceiver final : public Receiver {
 public:
  MqReceiver(const std::string& name, Wait wait, std::size_t payload)
      : q_(open_queue(name, O_RDONLY, wait)), buffer_(payload) {}
  ~MqReceiver() override { mq_close(q_); }
  MqReceiver(const MqReceiver&) = delete;
  MqReceiver& operator=(const MqReceiver&) = delete;

  std::span<const std::byte> receive() override {
    ssize_t n = 0;
    while ((n = mq_receive(q_, reinterpret_cast<char*>(buffer_.data()), buffer_.size(), nullptr)) < 0) {
      check_errno(errno == EAGAIN || errno == EINTR, "mq_receive");
      cpu_relax();
    }
    return {buffer_.data(), static_cast<std::size_t>(n)};
  }

 private:
  mqd_t q_;
  std::vector<std::byte> buffer_;
};

// Creates the queue with up to `depth` messages, halving the depth while the
// system limits (msg_max, RLIMIT_MSGQUEUE) refuse it.
void create_queue(const std::string& name, std::size_t payload, long depth) {
  for (;; depth /= 2) {
    mq_attr attr{};
    attr.mq_maxmsg = depth;
    attr.mq_msgsize = static_cast<long>(payload);
    const mqd_t q = mq_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
    if (q != static_cast<mqd_t>(-1)) {
      mq_close(q);
      return;
    }
    check_errno((errno == EINVAL || errno == EMFILE || errno == ENOMEM) && depth > 1,
                "mq_open (create) " + name);
  }
}

class PosixMq final : public Transport {
 public:
  PosixMq(int channels, const ChannelConfig& c) : config_(c) {
    for (int i = 0; i < channels; ++i) {
      names_.push_back(fmt::format("/{}", resource_name("mq", i)));
      create_queue(names_.back(), c.payload, 1024);
    }
  }
  ~PosixMq() override {
    for (const auto& n : names_) mq_unlink(n.c_str());
  }
  PosixMq(const PosixMq&) = delete;
  PosixMq& operator=(const PosixMq&) = delete;

  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    return std::make_unique<MqSender>(names_.at(channel), config_.wait);
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    return std::make_unique<MqReceiver>(names_.at(channel), config_.wait, config_.payload);
  }

 private:
  ChannelConfig config_;
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Transport> make_posix_mq(int channels, const ChannelConfig& config) {
  return std::make_unique<PosixMq>(channels, config);
}

}  // namespace bench
