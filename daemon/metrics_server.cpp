#include "metrics_server.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace shmq::daemon {

namespace {

UniqueFd listen_on(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    throw std::runtime_error("--metrics wants HOST:PORT, e.g. 127.0.0.1:9464, not '" + address + "'");
  }
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw std::runtime_error("--metrics " + address + ": " + ::gai_strerror(rc));
  }
  UniqueFd fd(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int one = 1;
  const bool ok = fd && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                  ::bind(fd.get(), found->ai_addr, found->ai_addrlen) == 0 && ::listen(fd.get(), 16) == 0;
  const int error = errno;
  ::freeaddrinfo(found);
  if (!ok) throw std::runtime_error("cannot listen on " + address + ": " + std::strerror(error));
  return fd;
}

void send_all(int fd, const std::string& data) {
  for (std::size_t sent = 0; sent < data.size();) {
    // MSG_NOSIGNAL: a scraper that hung up must not SIGPIPE the daemon.
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

std::string response(const char* status, const std::string& content_type, const std::string& body) {
  return std::string("HTTP/1.0 ") + status + "\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

MetricsServer::MetricsServer(const std::string& address, std::function<std::string()> render)
    : listen_(listen_on(address)), render_(std::move(render)), thread_([this] { serve(); }) {
  spdlog::info("serving metrics on http://{}/metrics", address);
}

MetricsServer::~MetricsServer() {
  stopping_ = true;
  ::shutdown(listen_.get(), SHUT_RDWR);  // wakes the accept()
  thread_.join();
}

void MetricsServer::serve() {
  while (!stopping_) {
    const UniqueFd client(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!stopping_) spdlog::error("metrics: accept: {}", std::strerror(errno));
      return;
    }
    answer(client.get());
  }
}

void MetricsServer::answer(int fd) const {
  // A client that sends nothing is dropped after a second.
  const timeval limit{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  std::string request;
  char buf[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 8192) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    request.append(buf, static_cast<std::size_t>(n));
  }
  const std::string line = request.substr(0, request.find("\r\n"));
  if (!line.starts_with("GET ")) {
    send_all(fd, response("405 Method Not Allowed", "text/plain", "GET /metrics only\n"));
  } else if (!line.starts_with("GET /metrics ") && !line.starts_with("GET /metrics?")) {
    send_all(fd, response("404 Not Found", "text/plain", "try /metrics\n"));
  } else {
    try {
      const std::string body = render_();
      send_all(fd, response("200 OK", "text/plain; version=0.0.4; charset=utf-8", body));
    } catch (const std::exception& e) {
      send_all(fd, response("500 Internal Server Error", "text/plain", std::string(e.what()) + "\n"));
    }
  }
}

}  // namespace shmq::daemon
