// Boost.Interprocess message_queue: spin mode polls try_receive/try_send,
// block mode uses receive/send (an interprocess condition variable).
#include <algorithm>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <stdexcept>
#include <vector>

#include "transport.hpp"

namespace bench {
namespace {

namespace bip = boost::interprocess;

class BoostSender final : public Sender {
 public:
  BoostSender(const std::string& name, Wait wait) : queue_(bip::open_only, name.c_str()), wait_(wait) {}
  void send(std::span<const std::byte> message) override {
    if (wait_ == Wait::Block) {
      queue_.send(message.data(), message.size(), 0);
    } else {
      while (!queue_.try_send(message.data(), message.size(), 0)) cpu_relax();
    }
  }

 private:
  bip::message_queue queue_;
  Wait wait_;
};

class BoostReceiver final : public Receiver {
 public:
  BoostReceiver(const std::string& name, Wait wait)
      : queue_(bip::open_only, name.c_str()), buffer_(queue_.get_max_msg_size()), wait_(wait) {}
  std::span<const std::byte> receive() override {
    bip::message_queue::size_type size = 0;
    unsigned priority = 0;
    if (wait_ == Wait::Block) {
      queue_.receive(buffer_.data(), buffer_.size(), size, priority);
    } else {
      while (!queue_.try_receive(buffer_.data(), buffer_.size(), size, priority)) cpu_relax();
    }
    return {buffer_.data(), size};
  }

 private:
  bip::message_queue queue_;
  std::vector<std::byte> buffer_;
  Wait wait_;
};

class BoostMq final : public Transport {
 public:
  BoostMq(int channels, const ChannelConfig& c) : wait_(c.wait) {
    const std::size_t depth = std::clamp<std::size_t>(c.ring_bytes / c.payload, 2, 8192);
    for (int i = 0; i < channels; ++i) {
      names_.push_back(resource_name("boost", i));
      bip::message_queue::remove(names_.back().c_str());
      bip::message_queue(bip::create_only, names_.back().c_str(), depth, c.payload);
    }
  }
  ~BoostMq() override {
    for (const auto& n : names_) bip::message_queue::remove(n.c_str());
  }
  BoostMq(const BoostMq&) = delete;
  BoostMq& operator=(const BoostMq&) = delete;

  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    return std::make_unique<BoostSender>(names_.at(channel), wait_);
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    return std::make_unique<BoostReceiver>(names_.at(channel), wait_);
  }

 private:
  Wait wait_;
  std::vector<std::string> names_;
};

}  // namespace

std::unique_ptr<Transport> make_boost_mq(int channels, const ChannelConfig& config) {
  return std::make_unique<BoostMq>(channels, config);
}

}  // namespace bench
