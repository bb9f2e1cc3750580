#include "nats_client.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace shmq::bridge {
namespace {

// libnats' own handles, freed on every path out of the constructor.
struct OptionsDeleter {
  void operator()(natsOptions* o) const noexcept { natsOptions_Destroy(o); }
};

void check(natsStatus status, const char* what) {
  if (status != NATS_OK) throw SetupError(nats_error(what, status));
}

}  // namespace

std::string nats_error(const std::string& what, natsStatus status) {
  std::string text = what + ": " + natsStatus_GetText(status);
  const char* detail = nats_GetLastError(nullptr);
  if (detail != nullptr && *detail != '\0' && text.find(detail) == std::string::npos) text += std::string(" (") + detail + ")";
  return text;
}

NatsClient::NatsClient(const ConnectOptions& options, Counters& counters, jsOptions* js_options)
    : state_(new CallbackState(counters, options.reconnect_wait_max)) {
  natsOptions* raw = nullptr;
  check(natsOptions_Create(&raw), "nats options");
  std::unique_ptr<natsOptions, OptionsDeleter> opts(raw);
  // Several servers (a cluster): comma-separated, tried in turn.
  std::vector<std::string> urls;
  for (std::size_t from = 0; from <= options.url.size();) {
    const std::size_t comma = std::min(options.url.find(',', from), options.url.size());
    if (comma > from) urls.push_back(options.url.substr(from, comma - from));
    from = comma + 1;
  }
  std::vector<const char*> servers;
  for (const auto& u : urls) servers.push_back(u.c_str());
  if (servers.empty()) throw SetupError("no NATS URL given");
  check(natsOptions_SetServers(raw, servers.data(), static_cast<int>(servers.size())),
        ("NATS URL '" + options.url + "'").c_str());
  check(natsOptions_SetName(raw, options.name.c_str()), "nats options");
  check(natsOptions_SetTimeout(raw, options.connect_timeout.count()), "nats options");
  // Once connected, reconnect forever: a route holds (backpressure) while
  // nats-server is away rather than giving up.
  check(natsOptions_SetMaxReconnect(raw, -1), "nats options");
  CallbackState* state = state_.get();
  check(natsOptions_SetCustomReconnectDelay(raw, &NatsClient::reconnect_delay, state), "nats options");
  check(natsOptions_SetReconnectedCB(raw, &NatsClient::on_reconnected, state), "nats options");
  check(natsOptions_SetDisconnectedCB(raw, &NatsClient::on_disconnected, state), "nats options");
  check(natsOptions_SetClosedCB(raw, &NatsClient::on_closed, state), "nats options");
  const natsStatus s = natsConnection_Connect(&nc_, raw);
  if (s != NATS_OK) {
    throw SetupError(nats_error("cannot connect to nats-server at " + options.url, s));
  }
  counters.connected.store(1, std::memory_order_relaxed);
  const natsStatus j = natsConnection_JetStream(&js_, nc_, js_options);
  if (j != NATS_OK) {
    close();
    throw SetupError(nats_error("JetStream context", j));
  }
}

NatsClient::~NatsClient() {
  jsCtx_Destroy(js_);
  close();
}

void NatsClient::close() {
  state_->closing.store(true, std::memory_order_relaxed);  // only quiets on_disconnected's line
  natsConnection_Close(nc_);  // flushes what is buffered
  natsConnection_Destroy(nc_);
  std::unique_lock lock(state_->mutex);
  if (!state_->closed_cv.wait_for(lock, std::chrono::seconds(5), [&] { return state_->closed; })) {
    lock.unlock();
    (void)state_.release();  // libnats may still call back: leave it its state
  }
}

bool NatsClient::connected() const noexcept { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

void NatsClient::on_reconnected(natsConnection*, void* closure) {
  auto* state = static_cast<CallbackState*>(closure);
  state->counters.reconnects.fetch_add(1, std::memory_order_relaxed);
  state->counters.connected.store(1, std::memory_order_relaxed);
  state->reconnections.fetch_add(1, std::memory_order_release);  // pairs with the acquire in reconnections()
  spdlog::info("{}: reconnected to nats-server", state->counters.route);
}

void NatsClient::on_disconnected(natsConnection*, void* closure) {
  auto* state = static_cast<CallbackState*>(closure);
  state->counters.connected.store(0, std::memory_order_relaxed);
  if (state->closing.load(std::memory_order_relaxed)) return;  // our own close
  spdlog::warn("{}: disconnected from nats-server; reconnecting (holding meanwhile)", state->counters.route);
}

void NatsClient::on_closed(natsConnection*, void* closure) {
  auto* state = static_cast<CallbackState*>(closure);
  std::lock_guard lock(state->mutex);
  state->closed = true;
  state->closed_cv.notify_all();
}

int64_t NatsClient::reconnect_delay(natsConnection*, int attempts, void* closure) {
  const auto* state = static_cast<CallbackState*>(closure);
  // 100 ms doubling per attempt, capped.
  const int64_t cap = state->reconnect_wait_max.count();
  int64_t delay = 100;
  for (int i = 1; i < attempts && delay < cap; ++i) delay *= 2;
  return std::min(delay, cap);
}

std::vector<std::string> NatsClient::streams_capturing(const std::string& subject) const {
  const std::string request = nlohmann::json{{"subject", subject}}.dump();
  natsMsg* reply = nullptr;
  const natsStatus s = natsConnection_Request(&reply, nc_, "$JS.API.STREAM.NAMES", request.data(),
                                              static_cast<int>(request.size()), 5000);
  if (s == NATS_NO_RESPONDERS) throw SetupError("nats-server has no JetStream (start it with -js)");
  check(s, "asking JetStream which stream captures a subject");
  NatsMsgPtr owned(reply);
  const auto answer = nlohmann::json::parse(
      std::string_view(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply))), nullptr,
      false);
  if (answer.is_discarded()) throw SetupError("JetStream's answer to STREAM.NAMES is not JSON");
  if (answer.contains("error")) throw SetupError("JetStream: " + answer["error"].value("description", std::string("error")));
  std::vector<std::string> names;
  if (answer.contains("streams") && answer["streams"].is_array()) {
    for (const auto& n : answer["streams"]) names.push_back(n.get<std::string>());
  }
  return names;
}

bool NatsClient::stream_exists(const std::string& name) const {
  jsStreamInfo* info = nullptr;
  jsErrCode code{};
  const natsStatus s = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return true;
  }
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) return false;
  throw SetupError(nats_error("stream '" + name + "'", s));
}

jsRetentionPolicy NatsClient::stream_retention(const std::string& name) const {
  jsStreamInfo* info = nullptr;
  jsErrCode code{};
  const natsStatus s = js_GetStreamInfo(&info, js_, name.c_str(), nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) throw SetupError("stream '" + name + "' does not exist");
  check(s, ("stream '" + name + "'").c_str());
  const jsRetentionPolicy retention = info->Config->Retention;
  jsStreamInfo_Destroy(info);
  return retention;
}

void NatsClient::create_stream(const std::string& name, const std::string& subject,
                               std::chrono::seconds duplicate_window, int replicas) const {
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = name.c_str();
  const char* subjects[] = {subject.c_str()};
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  cfg.Duplicates = std::chrono::duration_cast<std::chrono::nanoseconds>(duplicate_window).count();
  jsStreamInfo* info = nullptr;
  jsErrCode code{};
  const natsStatus s = js_AddStream(&info, js_, &cfg, nullptr, &code);
  check(s, ("creating stream '" + name + "'").c_str());
  jsStreamInfo_Destroy(info);
  spdlog::info("created stream '{}' (subjects {}, duplicate window {} s, {} replica(s))", name, subject,
               duplicate_window.count(), replicas);
}

}  // namespace shmq::bridge
