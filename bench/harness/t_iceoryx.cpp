// Eclipse iceoryx 2.0 (built only when its packages are present). Each
// Transport runs a RouDi daemon of its own for the length of the run; each side
// registers a runtime, and every channel is one service with an untyped
// publisher and subscriber (loan/publish, take/release: zero-copy). Spin mode
// polls take(); block mode sleeps in a WaitSet. Nothing is dropped: the
// publisher waits for a slow subscriber.
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "iceoryx_hoofs/log/logmanager.hpp"
#include "iceoryx_posh/popo/untyped_publisher.hpp"
#include "iceoryx_posh/popo/untyped_subscriber.hpp"
#include "iceoryx_posh/popo/wait_set.hpp"
#include "iceoryx_posh/runtime/posh_runtime.hpp"
#include "transport.hpp"

namespace bench {
namespace {

using iox::capro::IdString_t;

// The runtime of this side's process, registered once.
void ensure_runtime() {
  static const bool registered = [] {
    iox::log::LogManager::GetLogManager().SetDefaultLogLevel(iox::log::LogLevel::kError,
                                                             iox::log::LogLevelOutput::kHideLogLevel);
    const std::string name = fmt::format("shmq-bench-{}", getpid());
    iox::runtime::PoshRuntime::initRuntime(IdString_t(iox::cxx::TruncateToCapacity, name.c_str()));
    return true;
  }();
  (void)registered;
}

iox::capro::ServiceDescription service(pid_t owner, int channel) {
  const std::string instance = fmt::format("{}", owner), event = fmt::format("ch{}", channel);
  return {"shmq-bench", IdString_t(iox::cxx::TruncateToCapacity, instance.c_str()),
          IdString_t(iox::cxx::TruncateToCapacity, event.c_str())};
}

class IoxSender final : public Sender {
 public:
  explicit IoxSender(const iox::capro::ServiceDescription& s) : publisher_(s, options()) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!publisher_.hasSubscribers()) {
      if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("iceoryx: no subscriber");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  void send(std::span<const std::byte> message) override {
    publisher_.loan(static_cast<std::uint32_t>(message.size()))
        .and_then([&](void* chunk) {
          std::memcpy(chunk, message.data(), message.size());
          publisher_.publish(chunk);
        })
        .or_else([](auto&) { throw std::runtime_error("iceoryx: loan failed"); });
  }

 private:
  static iox::popo::PublisherOptions options() {
    iox::popo::PublisherOptions o;
    o.subscriberTooSlowPolicy = iox::popo::ConsumerTooSlowPolicy::WAIT_FOR_CONSUMER;
    return o;
  }
  iox::popo::UntypedPublisher publisher_;
};

class IoxReceiver final : public Receiver {
 public:
  IoxReceiver(const iox::capro::ServiceDescription& s, std::size_t payload, Wait wait)
      : subscriber_(s, options()), payload_(payload), wait_(wait) {
    if (wait == Wait::Block) {
      waitset_.attachState(subscriber_, iox::popo::SubscriberState::HAS_DATA).or_else([](auto&) {
        throw std::runtime_error("iceoryx: attachState failed");
      });
    }
  }

  std::span<const std::byte> receive() override {
    for (;;) {
      auto taken = subscriber_.take();
      if (!taken.has_error()) {
        chunk_ = taken.value();
        return {static_cast<const std::byte*>(chunk_), payload_};
      }
      if (wait_ == Wait::Block) {
        (void)waitset_.wait();
      } else {
        cpu_relax();
      }
    }
  }

  void release() override { subscriber_.release(chunk_); }

 private:
  static iox::popo::SubscriberOptions options() {
    iox::popo::SubscriberOptions o;
    o.queueCapacity = 256;
    o.queueFullPolicy = iox::popo::QueueFullPolicy::BLOCK_PRODUCER;
    return o;
  }
  iox::popo::UntypedSubscriber subscriber_;
  iox::popo::WaitSet<> waitset_;
  std::size_t payload_;
  Wait wait_;
  const void* chunk_ = nullptr;
};

// A RouDi daemon, started for this Transport and stopped with it. The sides'
// runtimes deregister when their processes exit (run_sides ends them with
// exit(), not _exit()), so RouDi shuts down cleanly and removes its segments.
class Roudi {
 public:
  Roudi() : owner_(getpid()), pid_(fork()) {
    check_errno(pid_ >= 0, "fork iox-roudi");
    if (pid_ == 0) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
      execlp("iox-roudi", "iox-roudi", "--monitoring-mode", "off", "--log-level", "error", nullptr);
      _exit(127);
    }
    wait_ready();
  }
  ~Roudi() { stop(); }
  Roudi(const Roudi&) = delete;
  Roudi& operator=(const Roudi&) = delete;

 private:
  // Ready once its IPC channel (a datagram socket at /tmp/roudi) accepts a connect.
  void wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!channel_open()) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("iox-roudi did not start (not installed, or another RouDi runs)");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("iox-roudi not ready after 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  static bool channel_open() {
    const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, "/tmp/roudi", sizeof addr.sun_path - 1);
    const bool open = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return open;
  }

  void stop() {
    if (pid_ <= 0 || getpid() != owner_) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  pid_t owner_;
  pid_t pid_;
};

class Iceoryx final : public Transport {
 public:
  explicit Iceoryx(const ChannelConfig& c) : config_(c), owner_(getpid()) {}
  ~Iceoryx() override = default;
  Iceoryx(const Iceoryx&) = delete;
  Iceoryx& operator=(const Iceoryx&) = delete;

  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    ensure_runtime();
    return std::make_unique<IoxSender>(service(owner_, channel));
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    ensure_runtime();
    return std::make_unique<IoxReceiver>(service(owner_, channel), config_.payload, config_.wait);
  }

 private:
  Roudi roudi_;
  ChannelConfig config_;
  pid_t owner_;
};

}  // namespace

std::unique_ptr<Transport> make_iceoryx(int /*channels*/, const ChannelConfig& config) {
  return std::make_unique<Iceoryx>(config);
}

}  // namespace bench
