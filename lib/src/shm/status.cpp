#include "shmq/status.hpp"

namespace shmq {

std::string_view to_string(Status status) noexcept {
  switch (status) {
    case Status::Ok: return "ok";
    case Status::Empty: return "empty";
    case Status::Full: return "full";
    case Status::Duplicate: return "duplicate";
    case Status::Timeout: return "timeout";
    case Status::TooLarge: return "too large";
    case Status::InFlightLimit: return "in-flight limit";
    case Status::NotInFlight: return "not in flight";
    case Status::Corrupt: return "corrupt";
    case Status::NotDurable: return "not durable";
    case Status::JournalUnreadable: return "journal unreadable";
    case Status::Deleted: return "deleted";
    case Status::LeaseExpired: return "lease expired";
  }
  return "unknown";
}

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::InvalidName: return "invalid name";
    case Errc::InvalidArgument: return "invalid argument";
    case Errc::NotFound: return "not found";
    case Errc::AlreadyExists: return "already exists";
    case Errc::PermissionDenied: return "permission denied";
    case Errc::NotReady: return "not ready";
    case Errc::Incompatible: return "incompatible";
    case Errc::Corrupt: return "corrupt";
    case Errc::WrongNamespace: return "wrong namespace";
    case Errc::TableFull: return "table full";
    case Errc::NameInUse: return "name in use";
    case Errc::NoSpace: return "no space";
    case Errc::NeedsRebuild: return "needs rebuild";
    case Errc::System: return "system error";
  }
  return "unknown";
}

}  // namespace shmq
