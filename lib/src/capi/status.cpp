// The C API's status codes, last error and version.
#include <cstring>

#include "capi/capi.hpp"
#include "shmq/version.hpp"

namespace shmq::capi {

// The C codes are the C++ enumerators' values: checked here, once.
static_assert(SHMQ_DELETED == static_cast<int>(Status::Deleted));
static_assert(SHMQ_LEASE_EXPIRED == static_cast<int>(Status::LeaseExpired));
static_assert(SHMQ_JOURNAL_UNREADABLE == static_cast<int>(Status::JournalUnreadable));
static_assert(SHMQ_CORRUPT == static_cast<int>(Status::Corrupt));
static_assert(SHMQ_INVALID_NAME == 100 + static_cast<int>(Errc::InvalidName));
static_assert(SHMQ_CORRUPT_HEADER == 100 + static_cast<int>(Errc::Corrupt));
static_assert(SHMQ_NEEDS_REBUILD == 100 + static_cast<int>(Errc::NeedsRebuild));
static_assert(SHMQ_SYSTEM == 100 + static_cast<int>(Errc::System));

namespace {
thread_local std::string last_error;
}

shmq_status_t fail(shmq_status_t status, std::string_view message) noexcept {
  try {
    last_error.assign(message);
  } catch (...) {
    last_error.clear();  // out of memory: no message rather than none at all
  }
  return status;
}

shmq_status_t copy_out(std::string_view text, char* buf, std::size_t size, std::size_t* length) noexcept {
  if (buf == nullptr && size != 0) return null_argument("buf is NULL but size is not 0");
  if (length != nullptr) *length = text.size();
  if (size == 0) return SHMQ_OK;
  const std::size_t n = text.size() < size ? text.size() : size - 1;
  if (n != 0) std::memcpy(buf, text.data(), n);  // an empty view's data() may be NULL: memcpy from NULL is undefined
  buf[n] = '\0';
  return SHMQ_OK;
}

}  // namespace shmq::capi

extern "C" {

const char* shmq_status_str(shmq_status_t status) {
  using shmq::Errc;
  using shmq::Status;
  // to_string's views are of string literals, so NUL-terminated.
  if (status >= SHMQ_OK && status <= SHMQ_LEASE_EXPIRED) return shmq::to_string(static_cast<Status>(status)).data();
  if (status == SHMQ_CORRUPT_HEADER) return "corrupt header";  // Errc::Corrupt's "corrupt" is SHMQ_CORRUPT's
  if (status >= SHMQ_INVALID_NAME && status <= SHMQ_SYSTEM)
    return shmq::to_string(static_cast<Errc>(status - SHMQ_INVALID_NAME)).data();
  if (status == SHMQ_NO_MEMORY) return "no memory";
  if (status == SHMQ_INTERNAL) return "internal error";
  return "unknown status";
}

const char* shmq_last_error(void) { return shmq::capi::last_error.c_str(); }

const char* shmq_version(void) { return SHMQ_VERSION_STRING; }

}  // extern "C"
