// The bridge's side of NATS: one connection and its JetStream context per
// route, RAII over libnats' handles, and the JetStream questions a route asks
// at start (does the stream exist, which stream captures a subject).
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "counters.hpp"

namespace shmq::bridge {

// A start-up failure the user must fix (bad URL, missing stream, ...): the
// bridge logs what() and exits 1.
class SetupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "<what>: <libnats' text for status>" plus its last error detail.
[[nodiscard]] std::string nats_error(const std::string& what, natsStatus status);

struct NatsMsgDeleter {
  void operator()(natsMsg* m) const noexcept { natsMsg_Destroy(m); }
};
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsMsgDeleter>;

struct ConnectOptions {
  std::string url;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_wait_max{5000};  // backoff: 100 ms doubling up to this
  std::string name = "shmq-bridge";
};

class NatsClient {
 public:
  // Connects once (no retry: an unreachable server at start is an error the
  // user must see); afterwards libnats reconnects forever, with backoff.
  // Throws SetupError.
  // `js_options`: the JetStream context's (an out route's async publish
  // handler and its limit); null for libnats' defaults.
  NatsClient(const ConnectOptions& options, Counters& counters, jsOptions* js_options = nullptr);
  NatsClient(const NatsClient&) = delete;
  NatsClient& operator=(const NatsClient&) = delete;
  ~NatsClient();

  [[nodiscard]] natsConnection* connection() const noexcept { return nc_; }
  [[nodiscard]] jsCtx* jetstream() const noexcept { return js_; }
  // Bumped on every reconnection: a route that must re-create server-side
  // state (a consumer) compares it with the value it last saw.
  [[nodiscard]] std::uint64_t reconnections() const noexcept {
    return state_->reconnections.load(std::memory_order_acquire);  // pairs with the release in on_reconnected
  }
  [[nodiscard]] bool connected() const noexcept;

  // The names of the streams whose subjects capture `subject` (the server
  // answers; wildcards as JetStream matches them). Throws SetupError.
  [[nodiscard]] std::vector<std::string> streams_capturing(const std::string& subject) const;
  // Whether stream `name` exists; throws SetupError on any other failure.
  [[nodiscard]] bool stream_exists(const std::string& name) const;
  // Its retention policy; throws SetupError when it does not exist.
  [[nodiscard]] jsRetentionPolicy stream_retention(const std::string& name) const;
  // Creates a file-stored stream capturing `subject`. Throws SetupError.
  void create_stream(const std::string& name, const std::string& subject,
                     std::chrono::seconds duplicate_window, int replicas) const;

 private:
  // What libnats' callbacks use. libnats may still call them from its own
  // thread after natsConnection_Destroy returns, up to the closed callback,
  // the last one: the destructor waits for that before freeing this.
  struct CallbackState {
    CallbackState(Counters& c, std::chrono::milliseconds wait_max) : counters(c), reconnect_wait_max(wait_max) {}
    Counters& counters;
    std::chrono::milliseconds reconnect_wait_max;
    std::atomic<std::uint64_t> reconnections{0};
    std::atomic<bool> closing{false};
    std::mutex mutex;
    std::condition_variable closed_cv;
    bool closed = false;
  };
  void close();
  static void on_reconnected(natsConnection* nc, void* closure);
  static void on_disconnected(natsConnection* nc, void* closure);
  static void on_closed(natsConnection* nc, void* closure);
  static int64_t reconnect_delay(natsConnection* nc, int attempts, void* closure);

  std::unique_ptr<CallbackState> state_;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

}  // namespace shmq::bridge
