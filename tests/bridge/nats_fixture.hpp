// Helpers for the bridge's tests: a real nats-server (JetStream on, its store
// in the test's temporary directory) on a free loopback port, killed at
// teardown; shmq-bridge as a real process; a JetStream client to fill and
// read streams.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace shmq::test::bridge {

using namespace std::chrono_literals;

inline const char* nats_server_path() {
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"})
    if (::access(p, X_OK) == 0) return p;
  return nullptr;
}

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// Starts `argv` with stdout and stderr to `log`; returns its pid.
inline pid_t start_process(const std::vector<std::string>& argv, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Waits up to `limit` for `pid`; its exit status (128+signal), or -1 when it still runs.
inline int wait_exit_for(pid_t pid, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `done` every 20 ms up to `limit`; returns its last answer.
inline bool eventually(const std::function<bool()>& done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

class NatsServer {
 public:
  NatsServer(std::string store_dir, std::string log) : store_(std::move(store_dir)), log_(std::move(log)) {}
  NatsServer(const NatsServer&) = delete;
  ~NatsServer() { kill9(); }

  // Starts it (again, on the same port and store after a kill); false when it does not listen within 10 s.
  bool start(std::vector<std::string> extra = {}) {
    if (port_ == 0) port_ = free_port();
    std::vector<std::string> argv{nats_server_path(), "-js", "-sd", store_, "-a", "127.0.0.1", "-p",
                                  std::to_string(port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    extra_ = extra;
    pid_ = start_process(argv, log_);
    return eventually([&] { return port_accepts(port_); }, 10s);
  }
  bool restart() { return start(extra_); }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int port() const { return port_; }
  void set_port(int port) { port_ = port; }

 private:
  std::string store_;
  std::string log_;
  std::vector<std::string> extra_;
  int port_ = 0;
  pid_t pid_ = 0;
};

// A test's own JetStream client.
class JsClient {
 public:
  explicit JsClient(const std::string& url) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 100);
    status_ = natsConnection_Connect(&nc_, o);
    natsOptions_Destroy(o);
    if (status_ == NATS_OK) {
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.PublishAsync.MaxPending = 4096;
      jo.Wait = 2000;  // a request to a cluster still electing its leader is retried sooner
      status_ = natsConnection_JetStream(&js_, nc_, &jo);
    }
  }
  ~JsClient() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(nc_);
  }
  [[nodiscard]] bool ok() const { return status_ == NATS_OK; }
  jsCtx* js() { return js_; }

  // Creates a file-stored stream by a request to JetStream's API, not by
  // the bridge's NatsClient::create_stream: the tests stay independent of
  // the code they test. `retention`: "limits", "interest" or "workqueue".
  natsStatus add_stream(const std::string& name, const std::string& subject, int replicas = 1,
                        const std::string& retention = "limits") {
    const std::string config = R"({"name":")" + name + R"(","subjects":[")" + subject +
                               R"("],"storage":"file","retention":")" + retention +
                               R"(","num_replicas":)" + std::to_string(replicas) + "}";
    natsMsg* reply = nullptr;
    const natsStatus s = natsConnection_Request(&reply, nc_, ("$JS.API.STREAM.CREATE." + name).c_str(),
                                                config.data(), static_cast<int>(config.size()), 2000);
    if (s != NATS_OK) return s;
    const std::string_view answer(natsMsg_GetData(reply), static_cast<std::size_t>(natsMsg_GetDataLength(reply)));
    const bool refused = answer.find(R"("error")") != std::string_view::npos;  // e.g. a cluster still electing
    natsMsg_Destroy(reply);
    return refused ? NATS_ERR : NATS_OK;
  }
  // Messages in the stream; 0 when it cannot be asked.
  std::uint64_t stream_messages(const std::string& name) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js_, name.c_str(), nullptr, nullptr) != NATS_OK) return 0;
    const std::uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
  }
  // Publishes payloads "<prefix><i>" for i in [0, count) and waits for every ack.
  natsStatus publish(const std::string& subject, const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
      const std::string payload = prefix + std::to_string(i);
      const natsStatus s = js_PublishAsync(js_, subject.c_str(), payload.data(), static_cast<int>(payload.size()), nullptr);
      if (s != NATS_OK) return s;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 30000;
    return js_PublishAsyncComplete(js_, &po);
  }

  struct StoredMessage {
    std::uint64_t stream_seq = 0;
    std::string payload;
    std::string producer;  // Shmq-Producer
    std::uint64_t shmq_seq = 0;
    std::string msg_id;
  };
  // The stream's messages, in order (an ordered consumer reading until it
  // has `expected` or 10 s pass without one).
  std::vector<StoredMessage> read_stream(const std::string& stream, std::uint64_t expected) {
    std::vector<StoredMessage> out;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream.c_str();
    so.Ordered = true;
    natsSubscription* sub = nullptr;
    const natsStatus s = js_SubscribeSync(&sub, js_, ">", nullptr, &so, nullptr);
    EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s) << " " << nats_GetLastError(nullptr);
    if (s != NATS_OK) return out;
    while (out.size() < expected) {
      natsMsg* m = nullptr;
      if (natsSubscription_NextMsg(&m, sub, 10000) != NATS_OK) break;
      StoredMessage sm;
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        sm.stream_seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
      }
      sm.payload.assign(natsMsg_GetData(m), static_cast<std::size_t>(natsMsg_GetDataLength(m)));
      const char* v = nullptr;
      if (natsMsgHeader_Get(m, "Shmq-Producer", &v) == NATS_OK) sm.producer = v;
      if (natsMsgHeader_Get(m, "Shmq-Seq", &v) == NATS_OK) sm.shmq_seq = std::stoull(v);
      if (natsMsgHeader_Get(m, "Nats-Msg-Id", &v) == NATS_OK) sm.msg_id = v;
      out.push_back(std::move(sm));
      natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return out;
  }

 private:
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  natsStatus status_ = NATS_ERR;
};

// A test with a nats-server of its own (skips, saying why, without one).
class BridgeTest : public DataDirTest {
 protected:
  void SetUp() override {
    DataDirTest::SetUp();
    if (nats_server_path() == nullptr) GTEST_SKIP() << "nats-server is not installed (Debian: apt install nats-server)";
    server_ = std::make_unique<NatsServer>(dir_ + "/js", dir_ + "/nats-server.log");
    ASSERT_TRUE(server_->start()) << read_file(dir_ + "/nats-server.log");
  }
  void TearDown() override {
    for (pid_t pid : bridges_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    server_.reset();
    DataDirTest::TearDown();
  }

  // Starts shmq-bridge with `args` after --nats URL; its output goes to bridge.log.
  pid_t start_bridge(const std::vector<std::string>& args, const std::string& url = {}) {
    std::vector<std::string> argv{BRIDGE_PATH, "--nats", url.empty() ? server_->url() : url};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = start_process(argv, log());
    bridges_.push_back(pid);
    return pid;
  }
  void kill9(pid_t pid) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    std::erase(bridges_, pid);
  }
  // SIGTERM; its exit status (or -1 when it did not exit within 20 s).
  int terminate(pid_t pid) {
    ::kill(pid, SIGTERM);
    const int rc = wait_exit_for(pid, 20s);
    if (rc >= 0) std::erase(bridges_, pid);
    return rc;
  }
  // Runs shmq-bridge to its end (it must end within `limit`); its status and output.
  std::pair<int, std::string> run_bridge(const std::vector<std::string>& args, std::chrono::seconds limit,
                                         const std::string& url = {}) {
    const std::string out = dir_ + "/run.log";
    std::filesystem::remove(out);
    std::vector<std::string> argv{BRIDGE_PATH, "--nats", url.empty() ? server_->url() : url};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = start_process(argv, out);
    int rc = wait_exit_for(pid, limit);
    if (rc < 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    return {rc, read_file(out)};
  }
  [[nodiscard]] std::string log() const { return dir_ + "/bridge.log"; }

  std::unique_ptr<NatsServer> server_;
  std::vector<pid_t> bridges_;
};

}  // namespace shmq::test::bridge
