// Pub/Sub against redis-server: the same steps, on several connections, give the same bytes
// on every connection (RESP2 and RESP3, subscribed mode, pattern and shard channels), at
// --threads 1, 2 and 4; a fan-out over 4 shards where every message arrives once and in
// order; and a subscriber that stops reading is closed without holding up the others.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

// Sends `args` on `c`, then PING with a marker, and returns every byte that came before the
// marker's reply: the command's replies and any messages pushed meanwhile.
std::string exchange(Connection& c, const std::vector<std::vector<std::string>>& commands, int& marker_counter) {
  const std::string marker = "marker-" + std::to_string(++marker_counter);
  for (const auto& args : commands) {
    std::vector<std::string_view> views(args.begin(), args.end());
    if (!args.empty()) c.send(std::span<const std::string_view>(views.data(), views.size()));
  }
  c.send({"PING", marker});
  std::string transcript;
  for (int i = 0; i < 1000; ++i) {
    std::string raw;
    const Reply r = c.read_reply(&raw);
    // The marker's reply: a bulk (RESP3, or RESP2 outside subscriptions) or ["pong", marker].
    const bool is_marker = (r.type == Reply::Type::kBulk && r.str == marker) ||
                           (r.is_aggregate() && r.elements.size() == 2 && r.elements[1].str == marker);
    if (is_marker) return transcript;
    transcript += raw;
  }
  FAIL("no marker after 1000 replies");
  return transcript;
}

struct Step {
  int connection;
  std::vector<std::string> args;
  std::vector<std::vector<std::string>> then = {};  // sent after args, before the marker
  bool compared = true;  // HELLO names the server and the client id: not compared
};

// Runs `steps` on fresh connections to `port`; one transcript per step.
std::vector<std::string> run_steps(std::uint16_t port, const std::vector<Step>& steps) {
  std::vector<std::unique_ptr<Connection>> connections;
  for (int i = 0; i < 3; ++i) connections.push_back(std::make_unique<Connection>("127.0.0.1", port, 5s));
  connections[0]->call({"FLUSHALL"});
  int markers = 0;
  std::vector<std::string> out;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i << " on port " << port);
    std::vector<std::vector<std::string>> commands{steps[i].args};
    commands.insert(commands.end(), steps[i].then.begin(), steps[i].then.end());
    out.push_back(exchange(*connections[steps[i].connection], commands, markers));
  }
  return out;
}

// Each step reads its own connection; a step with no args only collects what was pushed.
const std::vector<Step> kSteps = {
    {0, {"SUBSCRIBE", "news", "sport"}},
    {0, {"XLEN", "s"}},  // not allowed while subscribed in RESP2
    {0, {"PING"}},
    {1, {"PUBLISH", "news", "hello"}},
    {0, {}},
    {0, {"PSUBSCRIBE", "n*", "sp?rt"}},
    {1, {"PUBLISH", "news", "twice"}},  // the channel and the pattern: 2
    {0, {}},
    {1, {"PUBLISH", "sport", "score"}},
    {0, {}},
    {1, {"PUBLISH", "nobody", "listens"}},
    {1, {"PUBSUB", "NUMSUB", "news", "sport", "nobody"}},
    {1, {"PUBSUB", "NUMPAT"}},
    {1, {"PUBSUB", "CHANNELS", "n*"}},
    {1, {"PUBSUB", "CHANNELS", "x", "y"}},
    {1, {"PUBSUB", "NUMPAT", "x"}},
    {1, {"PUBSUB", "FOO"}},
    {1, {"PUBSUB"}},
    {1, {"PUBSUB", "HELP"}},
    {1, {"PUBLISH", "x"}},
    {0, {"UNSUBSCRIBE", "news", "nosuch"}},
    {0, {"PUNSUBSCRIBE", "n*"}},
    {0, {"PUNSUBSCRIBE", "sp?rt"}},
    {0, {"UNSUBSCRIBE"}},  // the last channel: back to the normal context
    {0, {"UNSUBSCRIBE"}},
    {0, {"PUNSUBSCRIBE"}},
    {0, {"XLEN", "s"}},
    {0, {"SUBSCRIBE"}},
    // Shard channels: their own namespace and count.
    {2, {"SSUBSCRIBE", "orders"}},
    {2, {"SUBSCRIBE", "orders"}},
    {1, {"SPUBLISH", "orders", "sharded"}},
    {1, {"PUBLISH", "orders", "classic"}},
    {2, {}},
    {1, {"PUBSUB", "SHARDCHANNELS"}},
    {1, {"PUBSUB", "SHARDNUMSUB", "orders", "none"}},
    {2, {"SUNSUBSCRIBE", "orders"}},
    {2, {"UNSUBSCRIBE", "orders"}},
    // RESP3: messages are pushes beside normal replies; any command runs.
    {0, {"HELLO", "3"}, {}, false},
    {0, {"SUBSCRIBE", "r3"}},
    {0, {"XLEN", "s"}},
    {0, {"PUBLISH", "r3", "to myself"}},
    {1, {"PUBLISH", "r3", "from another"}},
    {0, {}},
    {0, {"PSUBSCRIBE", "r*"}},
    {1, {"PUBLISH", "r3", "both"}},
    {0, {}},
    {0, {"UNSUBSCRIBE", "r3"}},
    {0, {"PUNSUBSCRIBE"}},
    {0, {"UNSUBSCRIBE"}},
    // RESET leaves every subscription.
    {2, {"SUBSCRIBE", "a"}},
    {2, {"RESET"}},
    {1, {"PUBLISH", "a", "gone"}},
    {2, {"XLEN", "s"}},
    // SUBSCRIBE inside MULTI is queued and runs in EXEC.
    {2, {"MULTI"}, {{"SUBSCRIBE", "in-multi"}, {"EXEC"}}},
    {1, {"PUBLISH", "in-multi", "after exec"}},
    {2, {}},
};

}  // namespace

TEST_CASE("Pub/Sub gives redis-server's bytes on every connection, in RESP2 and RESP3", "[pubsub]") {
  std::vector<std::string> expected;
  {
    runnel::test::RedisServer redis;
    expected = run_steps(redis.port, kSteps);
  }
  for (unsigned threads : {1u, 2u, 4u}) {
    runnel::test::RunnelServer runnel({}, threads);
    const std::vector<std::string> got = run_steps(runnel.port, kSteps);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < kSteps.size(); ++i) {
      std::string shown;
      for (const auto& a : kSteps[i].args) shown += a + " ";
      INFO("--threads " << threads << ", step " << i << " on connection " << kSteps[i].connection << ": " << shown);
      if (kSteps[i].compared) CHECK(got[i] == expected[i]);
    }
  }
}

TEST_CASE("One publisher reaches 100 subscribers over 4 shards, each message once and in order", "[pubsub]") {
  runnel::test::RunnelServer runnel({}, 4);
  constexpr int kSubscribers = 100;
  constexpr int kMessages = 500;
  std::vector<std::unique_ptr<Connection>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_unique<Connection>("127.0.0.1", runnel.port, 10s));
    const Reply r = subscribers.back()->call({"SUBSCRIBE", "fan"});
    REQUIRE(r.is_aggregate());
  }
  Connection admin("127.0.0.1", runnel.port);
  // The acceptor deals connections round-robin: every shard is home to subscribers.
  const std::string shards = admin.call({"INFO", "shards"}).str;
  for (int s = 0; s < 4; ++s) {
    const auto line = shards.find("shard" + std::to_string(s) + ":");
    REQUIRE(line != std::string::npos);
    const auto at = shards.find("connections=", line);
    REQUIRE(at != std::string::npos);
    INFO(shards);
    CHECK(std::stoi(shards.substr(at + 12)) >= 20);
  }
  Connection publisher("127.0.0.1", runnel.port, 10s);
  for (int m = 0; m < kMessages; ++m) publisher.send({"PUBLISH", "fan", "m" + std::to_string(m)});
  for (int m = 0; m < kMessages; ++m) {
    const Reply r = publisher.read_reply();
    REQUIRE(r.type == Reply::Type::kInteger);
    REQUIRE(r.integer == kSubscribers);
  }
  for (int i = 0; i < kSubscribers; ++i) {
    for (int m = 0; m < kMessages; ++m) {
      const Reply r = subscribers[i]->read_reply();
      REQUIRE(r.elements.size() == 3);
      INFO("subscriber " << i);
      REQUIRE(r.elements[2].str == "m" + std::to_string(m));
    }
  }
  CHECK(admin.call({"PUBSUB", "NUMSUB", "fan"}).elements.at(1).integer == kSubscribers);
  const std::string stats = admin.call({"INFO", "stats"}).str;
  CHECK(stats.find("pubsub_channels:1\r\n") != std::string::npos);
}

TEST_CASE("A subscriber that stops reading is closed at the output buffer limit and the others get everything",
          "[pubsub][limits]") {
  runnel::test::RunnelServer runnel({"--pubsub-output-buffer-limit", "1048576"}, 2);
  Connection slow("127.0.0.1", runnel.port, 10s);
  Connection fast("127.0.0.1", runnel.port, 10s);
  REQUIRE(slow.call({"SUBSCRIBE", "flood"}).is_aggregate());
  REQUIRE(fast.call({"SUBSCRIBE", "flood"}).is_aggregate());
  Connection publisher("127.0.0.1", runnel.port, 10s);
  const std::string payload(16 * 1024, 'p');
  constexpr int kMessages = 1000;  // 16 MB: far past the slow one's 1 MiB and its socket buffers
  int receivers_at_end = -1;
  int fast_got = 0;
  for (int m = 0; m < kMessages; ++m) {
    const Reply r = publisher.call({"PUBLISH", "flood", payload});
    REQUIRE(r.type == Reply::Type::kInteger);
    receivers_at_end = static_cast<int>(r.integer);
    // The fast subscriber keeps up.
    const Reply got = fast.read_reply();
    REQUIRE(got.elements.size() == 3);
    ++fast_got;
  }
  CHECK(fast_got == kMessages);
  CHECK(receivers_at_end == 1);  // the slow one was dropped on the way
  CHECK(slow.peer_closed(5s));
  // The limit is live configuration.
  Connection admin("127.0.0.1", runnel.port);
  CHECK(admin.call({"CONFIG", "GET", "pubsub-output-buffer-limit"}).elements.at(1).str == "1048576");
  CHECK(admin.call({"CONFIG", "SET", "pubsub-output-buffer-limit", "32mb"}).str == "OK");
  CHECK(admin.call({"CONFIG", "GET", "pubsub-output-buffer-limit"}).elements.at(1).str == "33554432");
}

TEST_CASE("A subscriber past the pubsub soft limit for longer than its seconds is closed, and one below it stays",
          "[pubsub][limits]") {
  runnel::test::RunnelServer runnel({}, 2);
  Connection admin("127.0.0.1", runnel.port);
  REQUIRE(admin.call({"CONFIG", "SET", "client-output-buffer-limit", "pubsub 0 262144 1"}).str == "OK");
  CHECK(admin.call({"CONFIG", "GET", "pubsub-output-buffer-soft-limit"}).elements.at(1).str == "262144");
  Connection slow("127.0.0.1", runnel.port, 10s);
  Connection fast("127.0.0.1", runnel.port, 10s);
  REQUIRE(slow.call({"SUBSCRIBE", "soft"}).is_aggregate());
  REQUIRE(fast.call({"SUBSCRIBE", "soft"}).is_aggregate());
  Connection publisher("127.0.0.1", runnel.port, 10s);
  const std::string payload(16 * 1024, 's');
  const auto publish = [&](int n) {
    for (int m = 0; m < n; ++m) {
      REQUIRE(publisher.call({"PUBLISH", "soft", payload}).type == Reply::Type::kInteger);
      REQUIRE(fast.read_reply().elements.size() == 3);
    }
  };
  // 8 MB: the slow subscriber's unsent messages pass 256 KiB (past its socket's buffers),
  // but for less than a second: it stays (no hard limit here).
  publish(500);
  CHECK(publisher.call({"PUBLISH", "soft", "x"}).integer == 2);
  REQUIRE(fast.read_reply().elements.size() == 3);
  // Still past the soft limit more than a second later: the next message closes it.
  std::this_thread::sleep_for(1500ms);
  publish(1);
  CHECK(slow.peer_closed(5s));
  CHECK(publisher.call({"PUBLISH", "soft", "y"}).integer == 1);  // the fast one was never dropped
  REQUIRE(fast.read_reply().elements.size() == 3);
}

TEST_CASE("Publishers wait for a shard whose queued messages pass pubsub-backlog-bytes, and nothing is lost or reordered",
          "[pubsub][limits]") {
  // A backlog of one byte: any message still queued for another shard makes the next
  // PUBLISH to it wait, so a pipelined publisher goes both ways many times.
  runnel::test::RunnelServer runnel({"--pubsub-backlog-bytes", "1"}, 2);
  constexpr int kSubscribers = 10;
  constexpr int kMessages = 2000;
  std::vector<std::unique_ptr<Connection>> subscribers;
  for (int i = 0; i < kSubscribers; ++i) {
    subscribers.push_back(std::make_unique<Connection>("127.0.0.1", runnel.port, 10s));
    REQUIRE(subscribers.back()->call({"SUBSCRIBE", "queued"}).is_aggregate());
  }
  Connection publisher("127.0.0.1", runnel.port, 10s);
  const std::string body(200, 'q');
  for (int m = 0; m < kMessages; ++m) publisher.send({"PUBLISH", "queued", body + std::to_string(m)});
  for (int m = 0; m < kMessages; ++m) {
    const Reply r = publisher.read_reply();
    REQUIRE(r.type == Reply::Type::kInteger);
    REQUIRE(r.integer == kSubscribers);
  }
  for (int i = 0; i < kSubscribers; ++i) {
    INFO("subscriber " << i);
    for (int m = 0; m < kMessages; ++m) REQUIRE(subscribers[i]->read_reply().elements.at(2).str == body + std::to_string(m));
  }
  const std::string stats = publisher.call({"INFO", "stats"}).str;
  const auto at = stats.find("pubsub_publish_waits:");
  REQUIRE(at != std::string::npos);
  CHECK(std::stoull(stats.substr(at + 21)) > 0);
  CHECK(publisher.call({"CONFIG", "GET", "pubsub-backlog-bytes"}).elements.at(1).str == "1");
}
