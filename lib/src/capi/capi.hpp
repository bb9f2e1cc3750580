// The C API's plumbing (lib/include/shmq/shmq.h): its handles, and the one
// place where C++ exceptions become status codes and a per-thread message.
//
// The C API is a thin layer over the public C++ API: nothing here reaches
// into libshmq's internals, so it keeps the C++ API's promises by construction.
#pragma once

#include <chrono>
#include <cstdint>
#include <new>
#include <string>
#include <string_view>

#include "shmq/consumer.hpp"
#include "shmq/producer.hpp"
#include "shmq/queue.hpp"
#include "shmq/shmq.h"
#include "shmq/status.hpp"

struct shmq_queue {
  explicit shmq_queue(shmq::Queue q);
  shmq::Queue queue;
  // The delivery policy as shmq_queue_get_options hands it out: fixed at the
  // queue's creation, so read once, here (dead_letter points into the string).
  std::string dead_letter;
  shmq_delivery_policy_t policy{};
};
struct shmq_producer {
  shmq::Producer producer;
};
struct shmq_consumer {
  shmq::Consumer consumer;
};

namespace shmq::capi {

// The data path's codes are shmq::Status's; set-up's are 100 + shmq::Errc's.
inline shmq_status_t status_of(Status status) noexcept { return static_cast<shmq_status_t>(status); }
inline shmq_status_t status_of(Errc code) noexcept { return static_cast<shmq_status_t>(100 + static_cast<int>(code)); }

// Records `message` as this thread's last error and returns `status`.
shmq_status_t fail(shmq_status_t status, std::string_view message) noexcept;

// For a NULL handle or pointer the caller passed.
inline shmq_status_t null_argument(const char* what) noexcept {
  return fail(SHMQ_INVALID_ARGUMENT, std::string_view(what));
}

// Runs `body` (which returns a shmq_status_t), turning whatever it throws into
// a status and a message: no exception crosses into C.
template <class Body>
shmq_status_t guarded(Body&& body) noexcept {
  try {
    return body();
  } catch (const Error& e) {
    return fail(status_of(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return fail(SHMQ_NO_MEMORY, "out of memory");
  } catch (const std::exception& e) {
    return fail(SHMQ_INTERNAL, e.what());
  } catch (...) {
    return fail(SHMQ_INTERNAL, "an unknown C++ exception");
  }
}

// A C timeout (ns; negative: forever) as the C++ API's.
inline Duration timeout_of(std::int64_t timeout_ns) noexcept {
  return timeout_ns < 0 ? kForever : Duration(timeout_ns);
}

// A namespace argument: NULL means the current one (the C++ API's empty view).
inline std::string_view ns_of(const char* ns) noexcept { return ns == nullptr ? std::string_view{} : ns; }

// Copies `text` into buf (NUL-terminated, cut to size - 1; buf may be NULL
// when size is 0); *length (may be NULL) gets its full length.
// SHMQ_INVALID_ARGUMENT for a NULL buf of a size.
shmq_status_t copy_out(std::string_view text, char* buf, std::size_t size, std::size_t* length) noexcept;

// A policy as C sees it; `dead_letter` must outlive the view (it points into it).
inline shmq_delivery_policy_t policy_view(const DeliveryPolicy& p, const std::string& dead_letter) noexcept {
  shmq_delivery_policy_t v{};
  v.max_deliveries = p.max_deliveries;
  v.dead_letter = dead_letter.c_str();
  v.ack_timeout_ns = static_cast<std::int64_t>(p.ack_timeout.count());
  v.ttl_ns = static_cast<std::int64_t>(p.ttl.count());
  return v;
}

// Whether a C caller left an options struct's reserved words zero, as its
// *_init function does (others may mean something in a later version).
template <std::size_t N>
bool reserved_zero(const std::uint64_t (&words)[N]) noexcept {
  for (const std::uint64_t w : words) {
    if (w != 0) return false;
  }
  return true;
}

}  // namespace shmq::capi
