// The common interface of every transport the harness measures: shmq and the
// baselines. A Transport is made in the parent, before the sides start, and
// owns the channels (segments, queues, descriptors); it removes them when the
// process that made it destroys it. Each side then opens its own ends.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// How a side waits for a message or for room: polling, or asleep in the kernel.
enum class Wait { Spin, Block };

[[nodiscard]] std::string_view to_string(Wait wait);

struct ChannelConfig {
  std::size_t payload = 64;  // bytes of every message
  Wait wait = Wait::Spin;
  // Block mode: polls before a blocked call sleeps, where the transport has
  // that option (shmq's WaitOptions::spin, whose own default is 4000).
  std::uint32_t block_spin = 0;
  std::size_t ring_bytes = 1 << 20;  // what a channel buffers, where the transport lets us choose
  int groups = 1;                    // consumer groups (shmq only)
  bool durable = false;              // durable queue (shmq only)
  // Durable only: every send waits for its own confirm (Confirm::Durable),
  // instead of streaming while a watcher times the confirms.
  bool confirm_each = false;
  bool exclusive = false;  // shmq only: the consumers' groups are exclusive
  // shmq only: receive up to this many per call, and send up to this many per
  // call (buffered until then, or until flush()); 1 = single calls.
  std::size_t batch = 1;
};

class Sender {
 public:
  virtual ~Sender() = default;
  // Sends one message, waiting while the channel is full. Throws on failure.
  virtual void send(std::span<const std::byte> message) = 0;
  // Sends what send() buffered (a batching sender); a no-op for the others.
  virtual void flush() {}
  // Waits until everything sent is confirmed durable and returns each send's
  // confirm latency in ns. Empty unless the channel is durable.
  virtual std::vector<std::uint64_t> drain_confirms() { return {}; }
};

class Receiver {
 public:
  virtual ~Receiver() = default;
  // Waits for the next message; the view stays valid until release().
  virtual std::span<const std::byte> receive() = 0;
  virtual void release() {}
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Called in the side that uses the end: producer and group index the
  // producer name and the consumer group where the transport has them.
  virtual std::unique_ptr<Sender> sender(int channel, int producer) = 0;
  virtual std::unique_ptr<Receiver> receiver(int channel, int group) = 0;
  // True when the sides must be threads of one process.
  [[nodiscard]] virtual bool threads() const { return false; }
};

struct TransportInfo {
  std::string_view name;
  std::string_view description;
  bool multi;  // several producers, consumers, groups; durable
  std::unique_ptr<Transport> (*make)(int channels, const ChannelConfig& config);
};

// Every transport built in, shmq first.
[[nodiscard]] std::span<const TransportInfo> transports();
[[nodiscard]] const TransportInfo& find_transport(std::string_view name);

std::unique_ptr<Transport> make_shmq(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_bare_ring(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_boost_mq(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_posix_mq(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_unix_socket(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_pipe(int channels, const ChannelConfig& config);
std::unique_ptr<Transport> make_moodycamel(int channels, const ChannelConfig& config);
#ifdef SHMQ_BENCH_ICEORYX
std::unique_ptr<Transport> make_iceoryx(int channels, const ChannelConfig& config);
#endif

// A system-wide unique name for a channel of this run:
// shmq-bench.<namespace>.<pid>.<kind><channel>.
[[nodiscard]] std::string resource_name(std::string_view kind, int channel);

// One polling step of a spin loop.
inline void cpu_relax() noexcept { __builtin_ia32_pause(); }

// Throws std::system_error for errno when `ok` is false.
void check_errno(bool ok, std::string_view what);

}  // namespace bench
