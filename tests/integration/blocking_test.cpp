// XREAD BLOCK against runnel-server at 1 and 2 threads: every blocked reader woken by an XADD,
// timeouts, disconnects that leave nothing behind, pipelined replies kept in order, and a
// reader blocked on streams of different shards answered once.
#include <catch2/catch.hpp>

#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::client::encode_command;
using runnel::protocol::Reply;
using runnel::test::RunnelServer;

namespace {

std::int64_t info_field(Connection& c, const std::string& field) {
  const std::string info = c.call({"INFO", "clients"}).str;
  const auto at = info.find(field + ":");
  REQUIRE(at != std::string::npos);
  return std::stoll(info.substr(at + field.size() + 1));
}

// Polls (at most 5 s) until INFO's `field` equals `value`.
bool wait_for(Connection& c, const std::string& field, std::int64_t value) {
  for (int i = 0; i < 500; ++i) {
    if (info_field(c, field) == value) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

}  // namespace

TEST_CASE("An XADD wakes every reader blocked on the stream", "[blocking]") {
  for (unsigned threads : {1u, 2u, 4u}) {
    RunnelServer server({}, threads);
    Connection admin("127.0.0.1", server.port);
    REQUIRE(admin.call({"XADD", "s", "1-1", "old", "x"}).str == "1-1");
    std::vector<std::unique_ptr<Connection>> readers;
    for (int i = 0; i < 3; ++i) {
      readers.push_back(std::make_unique<Connection>("127.0.0.1", server.port));
      readers.back()->send({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"});
      REQUIRE(wait_for(admin, "blocked_clients", i + 1));
    }
    REQUIRE(admin.call({"XADD", "s", "2-1", "new", "y"}).str == "2-1");
    for (auto& r : readers) {
      const Reply reply = r->read_reply();
      REQUIRE(reply.elements.size() == 1);
      CHECK(reply.elements[0].elements[0].str == "s");
      const Reply& entries = reply.elements[0].elements[1];
      REQUIRE(entries.elements.size() == 1);  // only what came after '$'
      CHECK(entries.elements[0].elements[0].str == "2-1");
    }
    CHECK(wait_for(admin, "blocked_clients", 0));
    CHECK(wait_for(admin, "blocked_reader_registrations", 0));
  }
}

TEST_CASE("A blocked read times out with a null reply", "[blocking]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  REQUIRE(c.call({"XREAD", "BLOCK", "50", "STREAMS", "nokey", "$"}).type == Reply::Type::kNull);
  REQUIRE(c.call({"HELLO", "3"}).type == Reply::Type::kMap);
  std::string raw;
  c.call({"XREAD", "BLOCK", "50", "STREAMS", "nokey", "$"}, &raw);
  REQUIRE(raw == "_\r\n");
}

TEST_CASE("A reader that disconnects while blocked leaves nothing behind", "[blocking]") {
  for (unsigned threads : {1u, 2u, 4u}) {
    RunnelServer server({}, threads);
    Connection admin("127.0.0.1", server.port);
    {
      Connection gone("127.0.0.1", server.port);
      gone.send({"XREAD", "BLOCK", "0", "STREAMS", "a", "b", "c", "d", "$", "$", "$", "$"});
      REQUIRE(wait_for(admin, "blocked_clients", 1));
      REQUIRE(info_field(admin, "blocked_reader_registrations") == 4);
    }
    REQUIRE(wait_for(admin, "blocked_clients", 0));
    REQUIRE(wait_for(admin, "blocked_reader_registrations", 0));
    REQUIRE(wait_for(admin, "connected_clients", 1));
    REQUIRE(admin.call({"XADD", "a", "*", "f", "v"}).type == Reply::Type::kBulk);
  }
}

TEST_CASE("Commands pipelined around a blocked read are answered in order", "[blocking]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  Connection admin("127.0.0.1", server.port);
  c.send_raw(encode_command({"PING"}) + encode_command({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"}) +
             encode_command({"ECHO", "after"}));
  REQUIRE(c.read_reply().str == "PONG");  // sent before the block ends
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  REQUIRE(admin.call({"XADD", "s", "7-7", "f", "v"}).str == "7-7");
  const Reply read = c.read_reply();
  REQUIRE(read.elements.size() == 1);
  REQUIRE(c.read_reply().str == "after");
}

TEST_CASE("A reader blocked on streams of several shards is answered once", "[blocking]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  Connection admin("127.0.0.1", server.port);
  // Eight keys: with two shards, both own some of them.
  std::vector<std::string> args{"XREAD", "BLOCK", "0", "STREAMS"};
  for (int i = 0; i < 8; ++i) args.push_back("key" + std::to_string(i));
  for (int i = 0; i < 8; ++i) args.push_back("$");
  std::vector<std::string_view> views(args.begin(), args.end());
  c.send(views);
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  REQUIRE(info_field(admin, "blocked_reader_registrations") == 8);
  // Data lands on several streams at once; only one of them answers.
  std::string burst;
  for (int i = 0; i < 8; ++i) burst += encode_command({"XADD", "key" + std::to_string(i), "*", "n", std::to_string(i)});
  admin.send_raw(burst);
  for (int i = 0; i < 8; ++i) REQUIRE(admin.read_reply().type == Reply::Type::kBulk);
  const Reply reply = c.read_reply();
  REQUIRE(reply.elements.size() == 1);
  REQUIRE(reply.elements[0].elements[1].elements.size() == 1);
  REQUIRE(c.call({"PING"}).str == "PONG");  // and nothing else came before it
  REQUIRE(wait_for(admin, "blocked_reader_registrations", 0));
}

TEST_CASE("CLIENT KILL and SHUTDOWN end blocked reads", "[blocking]") {
  RunnelServer server({}, 2);
  Connection admin("127.0.0.1", server.port);
  Connection blocked("127.0.0.1", server.port);
  const auto id = std::to_string(blocked.call({"CLIENT", "ID"}).integer);
  blocked.send({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"});
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  REQUIRE(admin.call({"CLIENT", "KILL", "ID", id}).integer == 1);
  REQUIRE(blocked.peer_closed(5s));
  REQUIRE(wait_for(admin, "blocked_reader_registrations", 0));
  Connection again("127.0.0.1", server.port);
  again.send({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"});
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  REQUIRE(server.process.terminate() == 0);
  REQUIRE(again.peer_closed(5s));
}

namespace {

// One timeline of a blocked reader, run against a server: what the reader saw at each step.
std::vector<std::string> blocked_reader_timeline(std::uint16_t port) {
  Connection admin("127.0.0.1", port);
  Connection reader("127.0.0.1", port);
  std::vector<std::string> seen;
  auto observe = [&] {
    reader.set_timeout(300ms);
    try {
      seen.push_back(runnel::protocol::to_display_string(reader.read_reply()));
    } catch (const runnel::client::ConnectionError&) {
      seen.push_back("(still blocked)");
    }
  };
  admin.call({"FLUSHALL"});
  admin.call({"XADD", "s", "5-1", "f", "v"});
  reader.send({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"});
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  admin.call({"DEL", "s"});
  observe();
  admin.call({"XADD", "s", "3-1", "f", "v"});  // a new stream, but not above 5-1
  observe();
  admin.call({"FLUSHALL"});
  observe();
  admin.call({"XADD", "s", "6-1", "f", "v"});  // above the ID the reader resolved '$' to
  observe();
  return seen;
}

}  // namespace

TEST_CASE("DEL and FLUSHALL leave a blocked reader as redis-server does", "[blocking]") {
  runnel::test::RedisServer redis;
  RunnelServer runnel({}, 2);
  const auto expected = blocked_reader_timeline(redis.port);
  REQUIRE(expected.back() != "(still blocked)");  // the timeline ends with a wake-up
  REQUIRE(blocked_reader_timeline(runnel.port) == expected);
}

namespace {

// A blocked XREADGROUP reader's timeline: woken by XADD, then ended by XGROUP DESTROY, by
// DEL and by FLUSHALL; a blocked XREAD beside it through the same DEL.
std::vector<std::string> group_reader_timeline(std::uint16_t port) {
  Connection admin("127.0.0.1", port);
  Connection reader("127.0.0.1", port);
  Connection plain("127.0.0.1", port);
  std::vector<std::string> seen;
  auto observe = [&](Connection& c) {
    c.set_timeout(300ms);
    try {
      seen.push_back(runnel::protocol::to_display_string(c.read_reply()));
    } catch (const runnel::client::ConnectionError&) {
      seen.push_back("(still blocked)");
    }
  };
  auto block = [&](int expected_blocked) {
    reader.send({"XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"});
    REQUIRE(wait_for(admin, "blocked_clients", expected_blocked));
  };
  admin.call({"FLUSHALL"});
  admin.call({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  block(1);
  admin.call({"XADD", "s", "1-1", "f", "v"});
  observe(reader);
  seen.push_back(runnel::protocol::to_display_string(admin.call({"XPENDING", "s", "g"})));
  block(1);
  admin.call({"XGROUP", "DESTROY", "s", "g"});
  observe(reader);
  admin.call({"XGROUP", "CREATE", "s", "g", "$"});
  block(1);
  plain.send({"XREAD", "BLOCK", "0", "STREAMS", "s", "$"});
  REQUIRE(wait_for(admin, "blocked_clients", 2));
  admin.call({"DEL", "s"});
  observe(reader);
  observe(plain);
  admin.call({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  block(2);
  admin.call({"FLUSHALL"});
  observe(reader);
  admin.call({"XADD", "s", "5-1", "f", "v"});
  observe(plain);
  return seen;
}

}  // namespace

TEST_CASE("Blocked XREADGROUP readers end as redis-server's do", "[blocking]") {
  runnel::test::RedisServer redis;
  RunnelServer runnel({}, 2);
  const auto expected = group_reader_timeline(redis.port);
  REQUIRE(std::count(expected.begin(), expected.end(), "(still blocked)") == 1);
  REQUIRE(group_reader_timeline(runnel.port) == expected);
}

TEST_CASE("XREADGROUP blocked on streams of several shards takes from one and cancels the rest",
          "[blocking]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  Connection admin("127.0.0.1", server.port);
  std::vector<std::string> args{"XREADGROUP", "GROUP", "g", "worker", "BLOCK", "0", "STREAMS"};
  for (int i = 0; i < 8; ++i) {
    const std::string key = "jobs" + std::to_string(i);
    REQUIRE(admin.call({"XGROUP", "CREATE", key, "g", "$", "MKSTREAM"}).str == "OK");
    args.push_back(key);
  }
  for (int i = 0; i < 8; ++i) args.push_back(">");
  std::vector<std::string_view> views(args.begin(), args.end());
  c.send(views);
  REQUIRE(wait_for(admin, "blocked_clients", 1));
  REQUIRE(info_field(admin, "blocked_reader_registrations") == 8);
  std::string burst;
  for (int i = 0; i < 8; ++i) burst += encode_command({"XADD", "jobs" + std::to_string(i), "*", "n", std::to_string(i)});
  admin.send_raw(burst);
  for (int i = 0; i < 8; ++i) REQUIRE(admin.read_reply().type == Reply::Type::kBulk);
  const Reply reply = c.read_reply();
  REQUIRE(reply.elements.size() == 1);  // one stream answered
  const std::string winner = reply.elements[0].elements[0].str;
  REQUIRE(reply.elements[0].elements[1].elements.size() == 1);
  REQUIRE(wait_for(admin, "blocked_reader_registrations", 0));
  // Only the winner's entry was delivered: it is pending; the others are still to be read.
  for (int i = 0; i < 8; ++i) {
    const std::string key = "jobs" + std::to_string(i);
    const auto pending = admin.call({"XPENDING", key, "g"});
    CHECK(pending.elements[0].integer == (key == winner ? 1 : 0));
  }
  const auto rest = c.call({"XREADGROUP", "GROUP", "g", "worker", "STREAMS", "jobs0", "jobs1",
                            "jobs2", "jobs3", "jobs4", "jobs5", "jobs6", "jobs7", ">", ">", ">",
                            ">", ">", ">", ">", ">"});
  REQUIRE(rest.elements.size() == 7);
}
