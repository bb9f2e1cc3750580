// shmq-bridge against a real nats-server and real kill -9: exactly once out
// (shmq -> JetStream) and in (JetStream -> shmq), across crashes of the
// bridge and of nats-server; bad input ends with a message and exit 1.
//
// Sizes: 100,000 messages out (3 producers) and in, a third of that for the
// round trip; SHMQ_BRIDGE_TEST_MESSAGES overrides the total (sanitizer
// builds run 20,000). The kills land at fixed fractions of the stream (a
// quarter, a half, three quarters stored), never at a time.
#include <map>
#include <mutex>
#include <set>

#include "nats_fixture.hpp"
#include "shm/mapping.hpp"

namespace shmq::test::bridge {
namespace {

std::uint64_t total_messages() {
  const char* env = std::getenv("SHMQ_BRIDGE_TEST_MESSAGES");
  return env != nullptr ? std::stoull(env) : 100'000;
}

QueueOptions big_queue() {
  QueueOptions o;
  o.capacity = 4u << 20;
  return o;
}

bool group_exists(const Queue& q, const std::string& group) {
  for (const auto& g : q.info().groups)
    if (g.name == group) return true;
  return false;
}

std::uint64_t group_lag(const Queue& q, const std::string& group) {
  for (const auto& g : q.info().groups)
    if (g.name == group) return g.lag_messages;
  return ~0ull;
}

std::uint64_t producer_last(const Queue& q, const std::string& name) {
  for (const auto& p : q.info().producers)
    if (p.name == name) return p.last_sequence;
  return 0;
}

// Whether shmqd's repair of the dead holder of `name` is over: the entry
// reaped, and the segment lock (which the repair holds) free.
bool repaired(const Queue& q, const std::string& name) {
  for (const auto& p : q.info().producers)
    if (p.name == name && p.attached) return false;
  const detail::SegmentLock lock(*detail::mapping_of(q), detail::SegmentLock::TryTag{});
  return lock.owned();
}

// Sends `count` messages "<name>-<seq>" from producer `name`, waiting while full.
std::thread producer_thread(const Queue& q, std::string name, std::uint64_t count) {
  return std::thread([&q, name, count] {
    Producer p = Producer::attach(q, name);
    for (std::uint64_t i = 1; i <= count; ++i) {
      const std::string payload = name + "-" + std::to_string(i);
      ASSERT_EQ(p.send(as_bytes(payload)), Status::Ok);
    }
  });
}

// Every (producer, sequence) once, each producer's in increasing order.
void expect_exactly_once(const std::vector<JsClient::StoredMessage>& stored,
                         const std::vector<std::string>& producers, std::uint64_t per_producer, bool ordered) {
  std::map<std::string, std::vector<std::uint64_t>> seqs;
  for (const auto& m : stored) {
    EXPECT_EQ(m.payload, m.producer + "-" + std::to_string(m.shmq_seq)) << "stream seq " << m.stream_seq;
    seqs[m.producer].push_back(m.shmq_seq);
  }
  EXPECT_EQ(seqs.size(), producers.size());
  for (const auto& name : producers) {
    auto got = seqs[name];
    ASSERT_EQ(got.size(), per_producer) << name;
    if (ordered) {
      for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1) << name << " out of order or missing";
    } else {
      std::sort(got.begin(), got.end());
      for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1) << name << " missing or duplicated";
    }
  }
}

// Receives from `group` of `q` on a thread of its own, recording (sequence, payload, producer).
class Collector {
 public:
  Collector(const Queue& q, const std::string& group) : consumer_(Consumer::join(q, group)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Collector() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return received_.size();
  }
  struct Received {
    std::uint64_t seq;
    std::string payload;
    std::string producer;
  };
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }

 private:
  void run() {
    while (!stop_) {
      Message m;
      if (consumer_.receive(m, 50ms) != Status::Ok) continue;
      {
        std::lock_guard lock(mutex_);
        received_.push_back({m.sequence, std::string(m.text()), std::string(m.producer())});
      }
      (void)consumer_.ack(m);
    }
  }
  Consumer consumer_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Received> received_;
  std::thread thread_;
};

TEST_F(BridgeTest, OutIsExactlyOnceAcrossKills) {
  const std::uint64_t per_producer = total_messages() / 3;
  const std::uint64_t total = per_producer * 3;
  const Queue q = Queue::create("src", big_queue());
  pid_t bridge = start_bridge({"out", "src", "--group", "js", "--subject", "shmq.src", "--stream", "SRC"});
  ASSERT_TRUE(eventually([&] { return group_exists(q, "js"); }, 10s)) << read_file(log());
  std::vector<std::string> names{"alpha", "beta", "gamma"};
  std::vector<std::thread> producers;
  for (const auto& n : names) producers.push_back(producer_thread(q, n, per_producer));
  JsClient js(server_->url());
  ASSERT_TRUE(js.ok());
  for (int kill = 1; kill <= 3; ++kill) {
    // Mid-stream: once a quarter, a half, three quarters are stored.
    ASSERT_TRUE(eventually([&] { return js.stream_messages("SRC") >= total * kill / 4; }, 60s)) << read_file(log());
    kill9(bridge);
    bridge = start_bridge({"out", "src", "--group", "js", "--subject", "shmq.src", "--stream", "SRC"});
  }
  for (auto& t : producers) t.join();
  ASSERT_TRUE(eventually([&] { return group_lag(q, "js") == 0; }, 120s)) << read_file(log());
  EXPECT_EQ(terminate(bridge), 0) << read_file(log());
  const auto stored = js.read_stream("SRC", js.stream_messages("SRC"));
  EXPECT_EQ(stored.size(), total);
  expect_exactly_once(stored, names, per_producer, /*ordered=*/true);
  for (const auto& m : stored) {
    ASSERT_EQ(m.msg_id, ns_ + ".src." + m.producer + "." + std::to_string(m.shmq_seq));
  }
}

TEST_F(BridgeTest, InIsExactlyOnceInOrderAcrossKills) {
  const std::uint64_t total = total_messages();
  JsClient js(server_->url());
  ASSERT_TRUE(js.ok());
  ASSERT_EQ(js.add_stream("FEED", "feed.>"), NATS_OK);
  ASSERT_EQ(js.publish("feed.a", "m", static_cast<int>(total)), NATS_OK);
  // Gaps in the stream's sequences: deleted messages are skipped.
  const std::set<std::uint64_t> deleted{2, 3, total / 2};
  for (std::uint64_t seq : deleted) ASSERT_EQ(js_DeleteMsg(js.js(), "FEED", seq, nullptr, nullptr), NATS_OK);
  const Queue q = Queue::create("dst", big_queue());
  Collector collector(q, "check");
  pid_t bridge = start_bridge({"in", "FEED", "--queue", "dst"});
  for (int kill = 1; kill <= 3; ++kill) {
    ASSERT_TRUE(eventually([&] { return producer_last(q, "bridge.FEED") >= total * kill / 4; }, 60s))
        << read_file(log());
    kill9(bridge);
    bridge = start_bridge({"in", "FEED", "--queue", "dst"});
  }
  const std::size_t expected = total - deleted.size();
  ASSERT_TRUE(eventually([&] { return collector.size() >= expected; }, 120s)) << read_file(log());
  EXPECT_EQ(terminate(bridge), 0) << read_file(log());
  collector.stop();
  const auto got = collector.received();
  ASSERT_EQ(got.size(), expected);
  std::uint64_t seq = 0;
  for (const auto& r : got) {
    do ++seq;
    while (deleted.contains(seq));
    ASSERT_EQ(r.seq, seq) << "shmq sequence = stream sequence, in order, once";
    ASSERT_EQ(r.payload, "m" + std::to_string(seq - 1));
    ASSERT_EQ(r.producer, "bridge.FEED");
  }
}

// A shmqd of the test's own (its data in the test's directory); killed with
// kill -9 by the caller.
pid_t start_shmqd(const std::string& dir) {
  std::filesystem::create_directories(dir + "/shmqd");
  const pid_t shmqd = start_process({SHMQD_PATH, "--data-dir", dir + "/shmqd", "--foreground"}, dir + "/shmqd.log");
  EXPECT_TRUE(eventually([&] { return daemon_pid() == shmqd; }, 10s)) << read_file(dir + "/shmqd.log");
  return shmqd;
}

void kill9_shmqd(pid_t shmqd) {
  ::kill(shmqd, SIGKILL);
  ::waitpid(shmqd, nullptr, 0);
}

// Into a durable queue the sends are confirmed durable (shmqd's journal
// synced them) a batch at a time: across kills, still each once, in order.
TEST_F(BridgeTest, InToADurableQueueIsExactlyOnceAcrossKills) {
  const pid_t shmqd = start_shmqd(dir_);
  const std::uint64_t total = 20000;
  JsClient js(server_->url());
  ASSERT_TRUE(js.ok());
  ASSERT_EQ(js.add_stream("DUR", "dur"), NATS_OK);
  ASSERT_EQ(js.publish("dur", "d", static_cast<int>(total)), NATS_OK);
  QueueOptions options;
  options.durable = true;
  const Queue q = Queue::create("durable", options);
  Collector collector(q, "check");
  pid_t bridge = start_bridge({"in", "DUR", "--queue", "durable"});
  for (int kill = 1; kill <= 2; ++kill) {
    ASSERT_TRUE(eventually([&] { return producer_last(q, "bridge.DUR") >= total * kill / 3; }, 60s))
        << read_file(log());
    kill9(bridge);
    bridge = start_bridge({"in", "DUR", "--queue", "durable"});
  }
  ASSERT_TRUE(eventually([&] { return collector.size() >= total; }, 120s)) << read_file(log());
  EXPECT_EQ(terminate(bridge), 0) << read_file(log());
  collector.stop();
  EXPECT_GE(q.info().journal_synced, q.info().tail_position) << "the last batch confirmed durable before exit";
  const auto got = collector.received();
  ASSERT_EQ(got.size(), total);
  for (std::uint64_t i = 0; i < total; ++i) {
    ASSERT_EQ(got[i].seq, i + 1);
    ASSERT_EQ(got[i].payload, "d" + std::to_string(i));
  }
  kill9_shmqd(shmqd);
}

// A simulated power loss mid-stream: once shmqd journaled what the bridge
// sent so far, shmqd is stopped (SIGSTOP) and a new bridge's next batch is
// committed in shared memory but never journaled; then the bridge and shmqd
// are killed and shared memory removed, and the queue is rebuilt from its
// journal without that batch. The restarted bridge resumes after what the
// journal kept: still each stream sequence once, in order.
TEST_F(BridgeTest, InToADurableQueueIsExactlyOnceAcrossAPowerLoss) {
  pid_t shmqd = start_shmqd(dir_);
  const std::uint64_t total = 20000;
  JsClient js(server_->url());
  ASSERT_TRUE(js.ok());
  ASSERT_EQ(js.add_stream("DUR", "dur"), NATS_OK);
  ASSERT_EQ(js.publish("dur", "d", static_cast<int>(total)), NATS_OK);
  QueueOptions options = big_queue();
  options.durable = true;
  std::uint64_t journaled = 0;
  {
    const Queue q = Queue::create("durable", options);
    (void)Consumer::join(q, "check");  // the group exists before anything is sent
    pid_t bridge = start_bridge({"in", "DUR", "--queue", "durable"});
    ASSERT_TRUE(eventually([&] { return producer_last(q, "bridge.DUR") >= total / 2; }, 60s)) << read_file(log());
    kill9(bridge);
    ASSERT_TRUE(eventually([&] { return q.info().journal_synced >= q.info().tail_position; }, 30s));
    // Stopped in the middle of its repair of the dead bridge, shmqd would
    // hold the segment lock, and the next bridge's attach would wait for ever.
    ASSERT_TRUE(eventually([&] { return repaired(q, "bridge.DUR"); }, 30s));
    journaled = producer_last(q, "bridge.DUR");
    ::kill(shmqd, SIGSTOP);
    bridge = start_bridge({"in", "DUR", "--queue", "durable"});
    ASSERT_TRUE(eventually([&] { return producer_last(q, "bridge.DUR") > journaled; }, 30s))
        << "the bridge sends on, unconfirmed, while shmqd is stopped\n" << read_file(log());
    kill9(bridge);
    kill9_shmqd(shmqd);
  }
  ASSERT_TRUE(Queue::remove("durable"));  // shared memory gone; the journal stays
  shmqd = start_shmqd(dir_);
  ASSERT_TRUE(eventually([] { return Queue::list().size() == 1; }, 30s)) << read_file(dir_ + "/shmqd.log");
  const Queue q = Queue::open("durable");
  EXPECT_EQ(producer_last(q, "bridge.DUR"), journaled) << "the sends shmqd never journaled are lost";
  Collector collector(q, "check");
  const pid_t bridge = start_bridge({"in", "DUR", "--queue", "durable"});
  ASSERT_TRUE(eventually([&] { return collector.size() >= total; }, 120s)) << read_file(log());
  EXPECT_EQ(terminate(bridge), 0) << read_file(log());
  collector.stop();
  const auto got = collector.received();
  ASSERT_EQ(got.size(), total);
  for (std::uint64_t i = 0; i < total; ++i) {
    ASSERT_EQ(got[i].seq, i + 1) << "each stream sequence once, in order";
    ASSERT_EQ(got[i].payload, "d" + std::to_string(i));
  }
  kill9_shmqd(shmqd);
}

// A -> stream -> B, nats-server killed (store on disk) and restarted
// mid-stream: both routes reconnect by themselves; B gets each of A's
// messages once.
TEST_F(BridgeTest, RoundTripSurvivesNatsServerRestart) {
  const std::uint64_t total = total_messages() / 3;
  const Queue a = Queue::create("a", big_queue());
  const Queue b = Queue::create("b", big_queue());
  Collector collector(b, "check");
  const pid_t out = start_bridge({"out", "a", "--group", "js", "--subject", "rt.a", "--stream", "RT"});
  ASSERT_TRUE(eventually([&] { return group_exists(a, "js"); }, 10s)) << read_file(log());
  const pid_t in = start_bridge({"in", "RT", "--queue", "b"});
  std::thread producer = producer_thread(a, "sender", total);
  ASSERT_TRUE(eventually([&] { return collector.size() >= total / 3; }, 60s)) << read_file(log());
  server_->kill9();
  std::this_thread::sleep_for(500ms);
  ASSERT_TRUE(server_->restart());
  producer.join();
  ASSERT_TRUE(eventually([&] { return collector.size() >= total; }, 120s)) << read_file(log());
  EXPECT_EQ(terminate(out), 0) << read_file(log());
  EXPECT_EQ(terminate(in), 0) << read_file(log());
  collector.stop();
  const auto got = collector.received();
  ASSERT_EQ(got.size(), total);
  std::set<std::string> payloads;
  std::uint64_t last_seq = 0;
  for (const auto& r : got) {
    EXPECT_GT(r.seq, last_seq);
    last_seq = r.seq;
    EXPECT_TRUE(payloads.insert(r.payload).second) << "twice: " << r.payload;
  }
  for (std::uint64_t i = 1; i <= total; ++i) EXPECT_TRUE(payloads.contains("sender-" + std::to_string(i))) << i;
  EXPECT_NE(read_file(log()).find("reconnected"), std::string::npos);
}

// A JetStream cluster of three nats-servers on loopback, an R3 stream: the
// round trip A -> stream -> B goes on when a server is killed mid-stream.
TEST_F(BridgeTest, RoundTripOverAnR3ClusterSurvivesAServerKill) {
  server_.reset();  // the fixture's single server is not part of the cluster
  std::vector<int> route_ports{free_port(), free_port(), free_port()};
  std::string routes;
  for (int p : route_ports) routes += (routes.empty() ? "" : ",") + std::string("nats://127.0.0.1:") + std::to_string(p);
  std::vector<std::unique_ptr<NatsServer>> cluster;
  std::string urls;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "n" + std::to_string(i);
    cluster.push_back(std::make_unique<NatsServer>(dir_ + "/js-" + name, dir_ + "/nats-" + name + ".log"));
    ASSERT_TRUE(cluster.back()->start({"--server_name", name, "--cluster_name", "shmqtest", "--cluster",
                                       "nats://127.0.0.1:" + std::to_string(route_ports[i]), "--routes", routes}))
        << read_file(dir_ + "/nats-" + name + ".log");
    urls += (urls.empty() ? "" : ",") + cluster.back()->url();
  }
  // The R3 stream, once the cluster has elected a meta leader.
  JsClient js(cluster[2]->url());
  ASSERT_TRUE(js.ok());
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  ASSERT_TRUE(eventually([&] { return js.add_stream("R3", "r3.a", 3) == NATS_OK; }, 30s))
      << read_file(dir_ + "/nats-n0.log");
  std::printf("R3 stream created after %.1f s\n", elapsed());
  const std::uint64_t total = total_messages() / 5;
  const Queue a = Queue::create("a", big_queue());
  const Queue b = Queue::create("b", big_queue());
  Collector collector(b, "check");
  const pid_t out = start_bridge({"out", "a", "--group", "js", "--subject", "r3.a"}, urls);
  ASSERT_TRUE(eventually([&] { return group_exists(a, "js"); }, 10s)) << read_file(log());
  const pid_t in = start_bridge({"in", "R3", "--queue", "b"}, urls);
  std::thread producer = producer_thread(a, "sender", total);
  ASSERT_TRUE(eventually([&] { return collector.size() >= total / 3; }, 60s)) << read_file(log());
  std::printf("n0 killed at %.1f s\n", elapsed());
  cluster[0]->kill9();  // the bridges' first URL: both were connected to it
  producer.join();
  ASSERT_TRUE(eventually([&] { return collector.size() >= total; }, 120s)) << read_file(log());
  std::printf("all through at %.1f s\n", elapsed());
  EXPECT_EQ(terminate(out), 0) << read_file(log());
  EXPECT_EQ(terminate(in), 0) << read_file(log());
  collector.stop();
  const auto got = collector.received();
  ASSERT_EQ(got.size(), total);
  std::set<std::string> payloads;
  for (const auto& r : got) EXPECT_TRUE(payloads.insert(r.payload).second) << "twice: " << r.payload;
  EXPECT_EQ(payloads.size(), total);
}

std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    (void)::write(fd, request.data(), request.size());
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return answer;
}

// Two routes from one --config file in one process; its counters on --metrics.
TEST_F(BridgeTest, ConfigFileRunsSeveralRoutesAndServesMetrics) {
  const Queue a = Queue::create("a");
  const Queue b = Queue::create("b");
  Collector collector(b, "check");
  const std::string config = dir_ + "/bridge.json";
  std::ofstream(config) << R"({
    "log_level": "info",
    "routes": [
      {"direction": "out", "queue": "a", "group": "js", "subject": "cf.a", "stream": "CF", "duplicate_window": "5m"},
      {"direction": "in", "stream": "CF", "queue": "b"}
    ]
  })";
  const int metrics_port = free_port();
  const pid_t bridge = start_bridge({"--config", config, "--metrics", "127.0.0.1:" + std::to_string(metrics_port)});
  ASSERT_TRUE(eventually([&] { return group_exists(a, "js"); }, 10s)) << read_file(log());
  producer_thread(a, "sender", 100).join();
  ASSERT_TRUE(eventually([&] { return collector.size() >= 100; }, 30s)) << read_file(log());
  std::string page;
  ASSERT_TRUE(eventually([&] {
    page = http_get(metrics_port, "/metrics");
    return page.find("direction=\"in\"} 100") != std::string::npos;
  }, 10s)) << page;
  EXPECT_NE(page.find("shmq_bridge_forwarded_total{route=\"out:a:cf.a\",direction=\"out\"} 100"), std::string::npos)
      << page;
  EXPECT_NE(page.find("shmq_bridge_forwarded_total{route=\"in:CF:b\",direction=\"in\"} 100"), std::string::npos)
      << page;
  EXPECT_NE(page.find("# TYPE shmq_bridge_in_flight gauge"), std::string::npos) << page;
  // A normal shmq client: shmq-stat (Queue::info) shows it as a group member and as a producer.
  bool member = false;
  for (const auto& g : a.info().groups)
    for (const auto& c : g.consumers) member = member || (g.name == "js" && c.pid == bridge && c.alive);
  EXPECT_TRUE(member);
  bool producer = false;
  for (const auto& p : b.info().producers) producer = producer || (p.name == "bridge.CF" && p.pid == bridge && p.alive);
  EXPECT_TRUE(producer);
  // The created stream's duplicate window is the configured one.
  JsClient js(server_->url());
  jsStreamInfo* si = nullptr;
  ASSERT_EQ(js_GetStreamInfo(&si, js.js(), "CF", nullptr, nullptr), NATS_OK);
  EXPECT_EQ(si->Config->Duplicates, std::chrono::nanoseconds(5min).count());
  jsStreamInfo_Destroy(si);
  EXPECT_EQ(terminate(bridge), 0) << read_file(log());
}

TEST_F(BridgeTest, BadInputEndsWithAMessageAndExit1) {
  const Queue q = Queue::create("here");
  JsClient js(server_->url());
  ASSERT_TRUE(js.ok());
  ASSERT_EQ(js.add_stream("ONLY", "only.>"), NATS_OK);
  ASSERT_EQ(js.add_stream("WORK", "work.>", 1, "workqueue"), NATS_OK);
  struct Case {
    const char* what;
    std::vector<std::string> args;
    std::string url;
    const char* says;
  };
  const std::string closed = "nats://127.0.0.1:" + std::to_string(free_port());
  const std::vector<Case> cases{
      {"unreachable URL", {"out", "here", "--group", "g", "--subject", "only.x"}, closed, "cannot connect"},
      {"unreachable URL (in)", {"in", "ONLY", "--queue", "here"}, closed, "cannot connect"},
      {"missing stream", {"in", "NOPE", "--queue", "here"}, {}, "does not exist"},
      {"subject not captured", {"out", "here", "--group", "g", "--subject", "other.x"}, {}, "no JetStream stream captures"},
      {"stream not capturing the subject", {"out", "here", "--group", "g", "--subject", "other.x", "--stream", "ONLY"}, {},
       "does not capture"},
      {"filter not captured", {"in", "ONLY", "--filter", "other.x", "--queue", "here"}, {}, "filter"},
      {"a work-queue stream (in)", {"in", "WORK", "--queue", "here"}, {}, "needs limits retention"},
      {"missing queue (out)", {"out", "nope", "--group", "g", "--subject", "only.x"}, {}, "not found"},
      {"missing queue (in)", {"in", "ONLY", "--queue", "nope"}, {}, "not found"},
      {"bad config file", {"--config", dir_ + "/none.json"}, {}, "cannot read config file"},
  };
  for (const Case& c : cases) {
    const auto [rc, output] = run_bridge(c.args, 20s, c.url);
    EXPECT_EQ(rc, 1) << c.what << ": " << output;
    EXPECT_NE(output.find(c.says), std::string::npos) << c.what << ": " << output;
  }
  EXPECT_FALSE(group_exists(q, "g")) << "a failed start leaves no group behind";
}

}  // namespace
}  // namespace shmq::test::bridge
