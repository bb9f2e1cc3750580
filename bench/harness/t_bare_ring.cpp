// The floor: a single-producer/single-consumer ring of fixed-size slots in
// shared memory, with no features. Spin mode polls; block mode sleeps on a
// futex at once when there is nothing to do.
#include <atomic>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "futex.hpp"
#include "shm_region.hpp"
#include "transport.hpp"

namespace bench {
namespace {

constexpr std::size_t kLine = 64;

struct alignas(kLine) Index {
  std::atomic<std::uint64_t> value{0};
  std::atomic<std::uint32_t> sleeping{0};  // the other side waits for `value` to move
};

struct Header {
  Index tail;  // written by the producer
  Index head;  // written by the consumer
};

struct Layout {
  std::size_t slot;   // bytes per slot: the payload, rounded up to 8
  std::size_t slots;  // a power of two
  [[nodiscard]] std::size_t bytes() const { return sizeof(Header) + slot * slots; }
};

Layout layout_for(const ChannelConfig& c) {
  const std::size_t slot = (c.payload + 7) & ~std::size_t{7};
  return {slot, std::bit_floor(std::max<std::size_t>(c.ring_bytes / slot, 2))};
}

// Waits until `ready()` (which loads the other side's index, seq_cst); in
// block mode announces the wait on `index.sleeping` and sleeps until the other
// side moves `index.value`. The seq_cst store here and in publish() make sure
// one of the two sides sees the other's store.
template <class Ready>
void wait_for(Index& index, Wait wait, Ready ready) {
  while (!ready()) {
    if (wait == Wait::Spin) {
      cpu_relax();
      continue;
    }
    index.sleeping.store(1, std::memory_order_seq_cst);
    if (ready()) break;
    futex_wait(index.sleeping, 1);
  }
}

// Moves `index.value` on, waking the other side if it sleeps (block mode).
void publish(Index& index, std::uint64_t value, Wait wait) {
  if (wait == Wait::Spin) {
    index.value.store(value, std::memory_order_release);
    return;
  }
  index.value.store(value, std::memory_order_seq_cst);
  if (index.sleeping.load(std::memory_order_seq_cst) != 0) {
    index.sleeping.store(0, std::memory_order_relaxed);
    futex_wake_all(index.sleeping);
  }
}

class RingEnd {
 protected:
  RingEnd(const std::string& name, const ChannelConfig& c)
      : layout_(layout_for(c)), region_(ShmRegion::open(name, layout_.bytes())), wait_(c.wait) {}
  [[nodiscard]] Header& header() const { return *static_cast<Header*>(region_.data()); }
  [[nodiscard]] std::byte* slot(std::uint64_t i) const {
    return static_cast<std::byte*>(region_.data()) + sizeof(Header) +
           (i & (layout_.slots - 1)) * layout_.slot;
  }
  Layout layout_;
  ShmRegion region_;
  Wait wait_;
};

class RingSender final : public Sender, RingEnd {
 public:
  RingSender(const std::string& name, const ChannelConfig& c) : RingEnd(name, c) {}

  void send(std::span<const std::byte> message) override {
    if (message.size() > layout_.slot) throw std::length_error("message larger than a slot");
    Header& h = header();
    if (tail_ - head_cache_ == layout_.slots) {
      wait_for(h.head, wait_, [&] {
        head_cache_ = h.head.value.load(std::memory_order_seq_cst);
        return tail_ - head_cache_ < layout_.slots;
      });
    }
    std::memcpy(slot(tail_), message.data(), message.size());
    publish(h.tail, ++tail_, wait_);
  }

 private:
  std::uint64_t tail_ = 0;
  std::uint64_t head_cache_ = 0;
};

class RingReceiver final : public Receiver, RingEnd {
 public:
  RingReceiver(const std::string& name, const ChannelConfig& c) : RingEnd(name, c), payload_(c.payload) {}

  std::span<const std::byte> receive() override {
    Header& h = header();
    if (head_ == tail_cache_) {
      wait_for(h.tail, wait_, [&] {
        tail_cache_ = h.tail.value.load(std::memory_order_seq_cst);
        return head_ != tail_cache_;
      });
    }
    return {slot(head_), payload_};
  }

  void release() override {
    publish(header().head, ++head_, wait_);
  }

 private:
  std::size_t payload_;
  std::uint64_t head_ = 0;
  std::uint64_t tail_cache_ = 0;
};

class BareRing final : public Transport {
 public:
  BareRing(int channels, const ChannelConfig& c) : config_(c) {
    for (int i = 0; i < channels; ++i) {
      names_.push_back(resource_name("ring", i));
      regions_.push_back(ShmRegion::create(names_.back(), layout_for(c).bytes()));
      new (regions_.back().data()) Header{};
    }
  }
  std::unique_ptr<Sender> sender(int channel, int /*producer*/) override {
    return std::make_unique<RingSender>(names_.at(channel), config_);
  }
  std::unique_ptr<Receiver> receiver(int channel, int /*group*/) override {
    return std::make_unique<RingReceiver>(names_.at(channel), config_);
  }

 private:
  ChannelConfig config_;
  std::vector<std::string> names_;
  std::vector<ShmRegion> regions_;
};

}  // namespace

std::unique_ptr<Transport> make_bare_ring(int channels, const ChannelConfig& config) {
  return std::make_unique<BareRing>(channels, config);
}

}  // namespace bench
