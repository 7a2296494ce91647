// runnel-server as a process: pipelining, partial frames, large values, garbage input,
// authentication, maxclients, the data-dir lock and clean shutdown.
#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <random>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::client::ConnectionError;
using runnel::client::encode_command;
using runnel::protocol::Reply;
using runnel::test::RunnelServer;

TEST_CASE("10,000 pipelined commands in one write are answered in order", "[server]") {
  for (unsigned threads : {1u, 2u, 4u}) {
    RunnelServer server({}, threads);
    Connection c("127.0.0.1", server.port);
    std::string batch;
    for (int i = 0; i < 10000; ++i) {
      const std::string n = std::to_string(i);
      batch += i % 2 ? encode_command({"ECHO", n}) : encode_command({"XADD", "s" + std::to_string(i % 7), "*", "n", n});
    }
    c.send_raw(batch);
    for (int i = 0; i < 10000; ++i) {
      const Reply r = c.read_reply();
      if (i % 2) {
        REQUIRE(r.str == std::to_string(i));
      } else {
        REQUIRE(r.type == Reply::Type::kBulk);
        REQUIRE(r.str.find('-') != std::string::npos);
      }
    }
    REQUIRE(c.call({"DBSIZE"}).integer == 7);
  }
}

TEST_CASE("A client that sends half a frame and waits does not stall others", "[server]") {
  RunnelServer server;
  Connection slow("127.0.0.1", server.port, 2s);
  Connection other("127.0.0.1", server.port);
  slow.send_raw("*2\r\n$4\r\nECHO\r\n$5\r\nhel");
  REQUIRE(other.call({"PING"}).str == "PONG");
  slow.set_timeout(300ms);
  REQUIRE_THROWS_AS(slow.read_reply(), runnel::client::ConnectionError);  // nothing yet
  slow.set_timeout(5s);
  slow.send_raw("lo\r\n");
  REQUIRE(slow.read_reply().str == "hello");
}

TEST_CASE("A 100 MB value is stored and read back whole", "[server]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port, 60s);
  std::string value(100 * 1024 * 1024, '\0');
  std::mt19937 gen(7);
  for (std::size_t i = 0; i < value.size(); i += 4096) value[i] = static_cast<char>(gen());
  const Reply id = c.call({"XADD", "big", "*", "payload", value});
  REQUIRE(id.type == Reply::Type::kBulk);
  const Reply range = c.call({"XRANGE", "big", "-", "+"});
  REQUIRE(range.elements.size() == 1);
  REQUIRE(range.elements[0].elements[1].elements[1].str == value);
  REQUIRE(c.call({"PING"}).str == "PONG");
}

TEST_CASE("A flood of garbage gets one clear error and a close, and others carry on", "[server]") {
  RunnelServer server;
  Connection bystander("127.0.0.1", server.port);
  Connection garbage("127.0.0.1", server.port);
  std::string junk(1024 * 1024, '\0');
  std::mt19937 gen(42);
  for (char& ch : junk) ch = static_cast<char>(gen());
  junk[0] = '*';  // a multibulk header that cannot be a number
  try {
    garbage.send_raw(junk);
  } catch (const runnel::client::ConnectionError&) {
    // The server may close before all of it is sent.
  }
  const std::string got = garbage.read_until_close(5s);
  REQUIRE(got.rfind("-ERR Protocol error: ", 0) == 0);
  REQUIRE(got.find("\r\n") == got.size() - 2);  // exactly one reply
  REQUIRE(bystander.call({"PING"}).str == "PONG");
  Connection fresh("127.0.0.1", server.port);
  REQUIRE(fresh.call({"PING"}).str == "PONG");
}

TEST_CASE("Inline garbage without newlines is cut off at the inline limit", "[server]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  c.send_raw(std::string(70 * 1024, 'x'));
  const std::string got = c.read_until_close(5s);
  REQUIRE(got == "-ERR Protocol error: too big inline request\r\n");
}

TEST_CASE("AUTH flows with --requirepass", "[server][auth]") {
  RunnelServer server({"--requirepass", "s3cret"});
  Connection c("127.0.0.1", server.port);
  REQUIRE(c.call({"PING"}).str == "NOAUTH Authentication required.");
  REQUIRE(c.call({"AUTH", "wrong"}).str ==
          "WRONGPASS invalid username-password pair or user is disabled.");
  REQUIRE(c.call({"AUTH", "other", "s3cret"}).str ==
          "WRONGPASS invalid username-password pair or user is disabled.");
  REQUIRE(c.call({"AUTH", "s3cret"}).str == "OK");
  REQUIRE(c.call({"PING"}).str == "PONG");
  REQUIRE(c.call({"RESET"}).str == "RESET");
  REQUIRE(c.call({"PING"}).str == "NOAUTH Authentication required.");

  Connection hello("127.0.0.1", server.port);
  REQUIRE(hello.call({"HELLO", "3"}).str.rfind("NOAUTH HELLO must be called", 0) == 0);
  const Reply map = hello.call({"HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "w1"});
  REQUIRE(map.type == Reply::Type::kMap);
  REQUIRE(hello.call({"CLIENT", "GETNAME"}).str == "w1");

  // Before AUTH, Redis's tight limits apply: no 1 MB argument from a stranger.
  Connection stranger("127.0.0.1", server.port);
  stranger.send_raw("*1\r\n$1048576\r\n");
  REQUIRE(stranger.read_until_close(5s) == "-ERR Protocol error: unauthenticated bulk length\r\n");
}

TEST_CASE("maxclients refuses the connection past the limit with Redis's error", "[server]") {
  RunnelServer server({"--maxclients", "2"});
  Connection a("127.0.0.1", server.port);
  // The start-up probe's connection counts until the server has seen it close.
  for (int i = 0; i < 500; ++i) {
    if (a.call({"INFO", "clients"}).str.find("connected_clients:1\r\n") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  Connection b("127.0.0.1", server.port);
  REQUIRE(a.call({"PING"}).str == "PONG");
  REQUIRE(b.call({"PING"}).str == "PONG");
  Connection c("127.0.0.1", server.port);
  REQUIRE(c.read_until_close(5s) == "-ERR max number of clients reached\r\n");
  REQUIRE(a.call({"INFO", "stats"}).str.find("rejected_connections:1") != std::string::npos);
}

TEST_CASE("A second server on the same data dir fails at once", "[server]") {
  RunnelServer first;
  const std::string dir = (first.dir.path() / "data").string();
  runnel::test::TempDir logs;
  const auto port = runnel::test::free_port();
  REQUIRE_THROWS_WITH(
      runnel::test::ServerProcess({runnel::test::runnel_server_path(), "--port",
                                   std::to_string(port), "--dir", dir},
                                  port, (logs.path() / "log").string(), 3s),
      Catch::Contains("is in use by another runnel-server"));
}

TEST_CASE("SIGTERM stops the server cleanly after in-flight replies", "[server]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  REQUIRE(c.call({"XADD", "s", "*", "f", "v"}).type == Reply::Type::kBulk);
  REQUIRE(server.process.terminate() == 0);
  REQUIRE(c.peer_closed(5s));
  REQUIRE(server.process.log().find("bye bye") != std::string::npos);
}

TEST_CASE("CLIENT KILL closes another connection", "[server]") {
  RunnelServer server;
  Connection victim("127.0.0.1", server.port);
  Connection admin("127.0.0.1", server.port);
  const auto id = std::to_string(victim.call({"CLIENT", "ID"}).integer);
  REQUIRE(admin.call({"CLIENT", "KILL", "ID", id}).integer == 1);
  REQUIRE(victim.peer_closed(5s));
  REQUIRE(admin.call({"CLIENT", "KILL", "ID", id}).integer == 0);
}

TEST_CASE("SHUTDOWN closes the connection and stops the server", "[server]") {
  RunnelServer server;
  Connection admin("127.0.0.1", server.port);
  admin.send({"SHUTDOWN"});
  REQUIRE(admin.peer_closed(5s));
  for (int i = 0; i < 500 && !server.process.exited(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.process.exited());
}

TEST_CASE("A client that stops reading is paused, not buffered without bound", "[server]") {
  RunnelServer server({"--reply-pause-bytes", "65536"});
  Connection reader("127.0.0.1", server.port);
  Connection flooder("127.0.0.1", server.port);
  const std::string value(16 * 1024, 'v');
  REQUIRE(reader.call({"XADD", "s", "1-1", "f", value}).str == "1-1");
  const std::string flooder_id = "id=" + std::to_string(flooder.call({"CLIENT", "ID"}).integer) + " ";
  // Ask for far more reply bytes than socket buffers hold, without reading any of it.
  std::string batch;
  for (int i = 0; i < 2000; ++i) batch += encode_command({"XRANGE", "s", "-", "+"});
  std::thread sender([&] {
    try {
      flooder.send_raw(batch);
    } catch (const runnel::client::ConnectionError&) {
    }
  });
  std::this_thread::sleep_for(500ms);
  // The server stops running the flooder's commands once 64 KiB of replies are unsent, so
  // it holds about one reply past the bound (a 16 KiB read of these commands would
  // otherwise make about 8 MB of replies at once).
  const std::string list = reader.call({"CLIENT", "LIST"}).str;
  const auto at = list.find("obl=", list.find(flooder_id));
  REQUIRE(at != std::string::npos);
  const auto obl = std::stoull(list.substr(at + 4));
  CHECK(obl > 0);
  CHECK(obl < 256 * 1024);
  // Drain, so the sender finishes and every reply arrives in order.
  for (int i = 0; i < 2000; ++i) REQUIRE(flooder.read_reply().elements.size() == 1);
  sender.join();
}

TEST_CASE("Pipelined commands for another shard travel in batches and still answer in order", "[server]") {
  RunnelServer server({"--fsync", "always"}, 2);
  // Connections are spread over the two shards, so at least one of these is remote to "k".
  for (int conn = 0; conn < 2; ++conn) {
    Connection c("127.0.0.1", server.port);
    std::string batch;
    for (int i = 1; i <= 3000; ++i) {
      const std::string id = std::to_string(conn * 10000 + i) + "-1";
      if (i % 3 == 1) batch += encode_command({"XADD", "k", id, "n", std::to_string(i)});
      if (i % 3 == 2) batch += encode_command({"XLEN", "k"});
      if (i % 3 == 0) batch += encode_command({"XADD", "k", "1-1", "n", "x"});  // an error mid-batch
    }
    // The last frame arrives in two pieces.
    c.send_raw(std::string_view(batch).substr(0, batch.size() - 5));
    std::this_thread::sleep_for(50ms);
    c.send_raw(std::string_view(batch).substr(batch.size() - 5));
    std::int64_t len = conn * 1000;
    for (int i = 1; i <= 3000; ++i) {
      const Reply r = c.read_reply();
      if (i % 3 == 1) {
        REQUIRE(r.str == std::to_string(conn * 10000 + i) + "-1");
        ++len;
      } else if (i % 3 == 2) {
        REQUIRE(r.integer == len);
      } else {
        REQUIRE(r.is_error());
      }
    }
  }
}

TEST_CASE("A pipeline spread over keys on every shard answers in order, and reads after it see it", "[server]") {
  RunnelServer server({"--fsync", "always"}, 4);
  constexpr int kKeys = 8;
  for (int conn = 0; conn < 4; ++conn) {  // connections land on different shards
    Connection c("127.0.0.1", server.port);
    const std::string prefix = "c" + std::to_string(conn) + ":";
    std::string batch;
    std::vector<std::string> expected;  // per reply: an ID, a length (":n"), "-" for an error, or "read"
    std::vector<int> lengths(kKeys, 0);
    for (int i = 1; i <= 2000; ++i) {
      const int k = i % kKeys;
      const std::string key = prefix + std::to_string(k);
      if (i % 250 == 0) {
        // Not a key command: it sees every command before it, on every shard.
        std::vector<std::string> read{"XREAD", "COUNT", "1000", "STREAMS"};
        for (int j = 0; j < kKeys; ++j) read.push_back(prefix + std::to_string(j));
        for (int j = 0; j < kKeys; ++j) read.push_back("0");
        const std::vector<std::string_view> views(read.begin(), read.end());
        encode_command(views, batch);
        expected.push_back("read");
      } else if (i % 5 == 0) {
        batch += encode_command({"XADD", key, "1-0", "n", "x"});  // at or below the top: an error
        expected.push_back(lengths[k] > 0 ? "-" : "1-0");
        if (lengths[k] == 0) ++lengths[k];
      } else if (i % 5 == 1) {
        batch += encode_command({"XLEN", key});
        expected.push_back(":" + std::to_string(lengths[k]));
      } else {
        batch += encode_command({"XADD", key, std::to_string(i + 1) + "-1", "n", std::to_string(i)});
        expected.push_back(std::to_string(i + 1) + "-1");
        ++lengths[k];
      }
    }
    c.send_raw(batch);
    std::vector<int> seen(kKeys, 0);
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const Reply r = c.read_reply();
      const std::string& want = expected[i];
      INFO("reply " << i << " expected " << want);
      if (want == "-") {
        REQUIRE(r.is_error());
      } else if (want[0] == ':') {
        REQUIRE(r.integer == std::stoll(want.substr(1)));
      } else if (want == "read") {
        std::int64_t total = 0;
        for (const Reply& stream : r.elements) total += static_cast<std::int64_t>(stream.elements.at(1).elements.size());
        std::int64_t written = 0;
        for (std::size_t j = 0; j < i; ++j) {
          if (expected[j] != "-" && expected[j] != "read" && expected[j][0] != ':') ++written;
        }
        REQUIRE(total == written);
      } else {
        REQUIRE(r.str == want);
      }
    }
  }
}

TEST_CASE("A connection that keeps using one other shard's keys moves to that shard", "[server]") {
  RunnelServer server({}, 2);
  // A fresh server hands connections out in turn, so these two start on different shards.
  Connection c1("127.0.0.1", server.port);
  Connection c2("127.0.0.1", server.port);
  const std::int64_t id2 = c2.call({"CLIENT", "ID"}).integer;
  for (int i = 1; i <= 100; ++i) {
    REQUIRE(c1.call({"XADD", "k", std::to_string(2 * i - 1) + "-0", "n", "1"}).str == std::to_string(2 * i - 1) + "-0");
    REQUIRE(c2.call({"XADD", "k", std::to_string(2 * i) + "-0", "n", "2"}).str == std::to_string(2 * i) + "-0");
  }
  CHECK(c2.call({"XLEN", "k"}).integer == 200);
  const std::string text = c1.call({"INFO", "shards"}).str;
  auto field = [&](int shard, const std::string& name) {
    const auto line = text.find("shard" + std::to_string(shard) + ":");
    const auto at = text.find("," + name + "=", line);
    REQUIRE(at != std::string::npos);
    return std::stoll(text.substr(at + name.size() + 2));
  };
  const int owner = text.find("shard0:keys=1") != std::string::npos ? 0 : 1;
  INFO(text);
  CHECK(field(owner, "connections") == 2);
  CHECK(field(1 - owner, "connections") == 0);
  CHECK(field(owner, "connections_moved_in") == 1);
  // The moved connection is the same client: CLIENT LIST shows it once, and CLIENT KILL reaches it.
  const std::string list = c1.call({"CLIENT", "LIST"}).str;
  CHECK(std::count(list.begin(), list.end(), '\n') == 2);
  CHECK(c1.call({"CLIENT", "KILL", "ID", std::to_string(id2)}).integer == 1);
  CHECK_THROWS_AS(c2.call({"PING"}), ConnectionError);
  CHECK(c1.call({"PING"}).str == "PONG");
}

TEST_CASE("INFO shards shows each shard's keys and commands", "[server]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  for (int i = 0; i < 20; ++i) c.call({"XADD", "key" + std::to_string(i), "*", "f", "v"});
  const std::string text = c.call({"INFO", "shards"}).str;
  std::int64_t keys = 0, commands = 0;
  for (int shard = 0; shard < 2; ++shard) {
    const auto at = text.find("shard" + std::to_string(shard) + ":keys=");
    REQUIRE(at != std::string::npos);
    keys += std::stoll(text.substr(text.find("keys=", at) + 5));
    commands += std::stoll(text.substr(text.find("commands=", at) + 9));
    CHECK(text.find("hops_waiting=", at) != std::string::npos);
  }
  CHECK(keys == 20);
  CHECK(commands >= 20);
  CHECK(text.find("shard2:") == std::string::npos);
}

TEST_CASE("redis-benchmark reads the server's CONFIG (save and appendonly) without a warning", "[server]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  const Reply save = c.call({"CONFIG", "GET", "save"});
  REQUIRE(save.type == Reply::Type::kArray);
  REQUIRE(save.elements.size() == 2);
  CHECK(save.elements[1].str.empty());
  const Reply aof = c.call({"CONFIG", "GET", "appendonly"});
  REQUIRE(aof.elements.size() == 2);
  CHECK(aof.elements[1].str == "no");
  const auto run = runnel::test::run_command(
      "redis-benchmark -h 127.0.0.1 -p " + std::to_string(server.port) + " -n 200 -c 2 -t ping", 60);
  INFO(run.output);
  CHECK(run.status == 0);
  CHECK(run.output.find("requests per second") != std::string::npos);
  CHECK(run.output.find("Could not fetch server CONFIG") == std::string::npos);
}

namespace {

// runnel-server started by a shell that first sets the open files limit with `ulimit`.
struct LimitedServer {
  explicit LimitedServer(const std::string& ulimit)
      : process({"/bin/sh", "-c",
                 ulimit + " && exec " + runnel::test::runnel_server_path() + " --port " + std::to_string(port) +
                     " --dir " + (dir.path() / "data").string() + " --threads 1"},
                port, (dir.path() / "server.log").string()) {}
  runnel::test::TempDir dir{"runnel-limits"};
  std::uint16_t port = runnel::test::free_port();
  runnel::test::ServerProcess process;
};

// Opens connections (at most `most`) until one is refused; returns how many were served
// and what the refused one was told.
std::pair<std::size_t, std::string> connect_until_refused(std::uint16_t port, std::vector<std::unique_ptr<Connection>>& open,
                                                          std::size_t most) {
  for (std::size_t i = 0; i < most; ++i) {
    auto c = std::make_unique<Connection>("127.0.0.1", port, 5s);
    c->send({"PING"});
    std::string raw;
    try {
      c->read_reply(&raw);
    } catch (const ConnectionError&) {
      return {open.size(), raw};
    }
    if (raw != "+PONG\r\n") return {open.size(), raw};
    open.push_back(std::move(c));
  }
  return {open.size(), ""};
}

}  // namespace

TEST_CASE("A low soft limit on open files is raised to the hard limit at start", "[server][limits]") {
  LimitedServer server("ulimit -S -n 256");
  CHECK(server.process.log().find("Raised the open files limit from 256 to") != std::string::npos);
  Connection c("127.0.0.1", server.port);
  const Reply max = c.call({"CONFIG", "GET", "maxclients"});
  REQUIRE(max.elements.size() == 2);
  CHECK(max.elements[1].str == "10000");  // the hard limit (20,000 here, or more) has room
}

// Under a hard limit of 64 descriptors, maxclients is lowered to what is left once the
// server's own are counted, as Redis does; connections past it get Redis's error. With
// maxclients raised past what the descriptors allow, accept itself runs out: the connection
// is still answered with the same error (from a descriptor held in reserve), not left
// hanging in the backlog.
TEST_CASE("Out of descriptors, connections are refused with Redis's max clients error", "[server][limits]") {
  LimitedServer server("ulimit -n 64");
  CHECK(server.process.log().find("maxclients has been reduced to") != std::string::npos);
  Connection admin("127.0.0.1", server.port);
  const Reply max = admin.call({"CONFIG", "GET", "maxclients"});
  REQUIRE(max.elements.size() == 2);
  const std::size_t maxclients = std::stoul(max.elements[1].str);
  CHECK(maxclients < 64);
  // The start-up probe's connection counts until the server has seen it close.
  for (int i = 0; i < 500; ++i) {
    if (admin.call({"INFO", "clients"}).str.find("connected_clients:1\r\n") != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  std::vector<std::unique_ptr<Connection>> open;
  auto [served, refusal] = connect_until_refused(server.port, open, 200);
  CHECK(served + 1 == maxclients);  // with `admin`
  CHECK(refusal == "-ERR max number of clients reached\r\n");
  open.clear();
  REQUIRE(admin.call({"CONFIG", "SET", "maxclients", "1000"}).str == "OK");
  std::this_thread::sleep_for(200ms);  // the closed connections' descriptors are freed
  std::tie(served, refusal) = connect_until_refused(server.port, open, 200);
  CHECK(served < 64);
  CHECK(refusal == "-ERR max number of clients reached\r\n");
  CHECK(admin.call({"PING"}).str == "PONG");  // the others are served on
  CHECK(admin.call({"INFO", "stats"}).str.find("rejected_connections:2") != std::string::npos);
  CHECK(server.process.log().find("Out of file descriptors") != std::string::npos);
}
