// Blocked readers woken at the right moment, against redis-server and runnel-server (1 and 2
// shards): after the command or the whole transaction that fed them, on its final state; and
// never left blocked on a key deleted while their read was under way. Each scenario repeats
// enough times to catch a rare race, bounded in count and time.
#include <catch2/catch.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;

namespace {

// Polls (at most 5 s) until INFO clients shows `blocked` blocked clients.
bool wait_blocked(Connection& admin, int blocked) {
  const std::string want = "blocked_clients:" + std::to_string(blocked) + "\r\n";
  for (int i = 0; i < 500; ++i) {
    if (admin.call({"INFO", "clients"}).str.find(want) != std::string::npos) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Runs `scenario(port)` against redis-server, then runnel-server at 1 and 2 shards.
void against_all(const std::function<void(std::uint16_t)>& scenario) {
  {
    INFO("against redis-server");
    runnel::test::RedisServer redis;
    scenario(redis.port);
  }
  for (unsigned threads : {1u, 2u}) {
    INFO("against runnel-server, --threads " << threads);
    runnel::test::RunnelServer runnel({}, threads);
    scenario(runnel.port);
  }
}

}  // namespace

TEST_CASE("A reader blocked on a stream is served after a transaction ends, on its final state", "[blocking][wakeup]") {
  against_all([](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    Connection writer("127.0.0.1", port);
    for (int round = 0; round < 40; ++round) {
      const std::string key = "s" + std::to_string(round);
      Connection reader("127.0.0.1", port, 10s);
      reader.send({"XREAD", "BLOCK", "5000", "STREAMS", key, "$"});
      REQUIRE(wait_blocked(admin, 1));
      // The entry the transaction adds is deleted by it: the reader must not see it.
      writer.send({"MULTI"});
      writer.send({"XADD", key, "1-1", "f", "old"});
      writer.send({"DEL", key});
      writer.send({"EXEC"});
      for (int i = 0; i < 4; ++i) writer.read_reply();
      writer.call({"XADD", key, "2-1", "f", "new"});
      std::string raw;
      reader.read_reply(&raw);
      CAPTURE(round, raw);
      CHECK(raw.find("2-1") != std::string::npos);
      CHECK(raw.find("1-1") == std::string::npos);
    }
  });
}

TEST_CASE("A reader blocked on a stream gets every entry a transaction added, in one reply", "[blocking][wakeup]") {
  against_all([](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    Connection writer("127.0.0.1", port);
    for (int round = 0; round < 40; ++round) {
      const std::string key = "t" + std::to_string(round);
      Connection reader("127.0.0.1", port, 10s);
      reader.send({"XREAD", "BLOCK", "5000", "STREAMS", key, "$"});
      REQUIRE(wait_blocked(admin, 1));
      writer.send({"MULTI"});
      writer.send({"XADD", key, "1-1", "n", "1"});
      writer.send({"XADD", key, "1-2", "n", "2"});
      writer.send({"XADD", key, "1-3", "n", "3"});
      writer.send({"EXEC"});
      for (int i = 0; i < 5; ++i) writer.read_reply();
      const auto reply = reader.read_reply();
      CAPTURE(round, runnel::protocol::to_display_string(reply));
      REQUIRE(reply.is_aggregate());
      REQUIRE(reply.elements.size() >= 1);
      // RESP2: [[key, entries]]
      const auto& entries = reply.elements[0].elements[1];
      CHECK(entries.elements.size() == 3);
    }
  });
}

TEST_CASE("A group reader racing a DEL or FLUSHALL of its stream is never left blocked", "[blocking][wakeup]") {
  against_all([](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    Connection deleter("127.0.0.1", port);
    int unblocked = 0, nogroup = 0;
    for (int round = 0; round < 300; ++round) {
      admin.call({"XGROUP", "CREATE", "race", "g", "$", "MKSTREAM"});
      // A 5 s read timeout: a reader left blocked fails the test instead of hanging it.
      Connection reader("127.0.0.1", port, 5s);
      reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "race", ">"});
      // At once: it may come before, during or after the read. Every other round, FLUSHALL.
      if (round % 2 == 0) {
        deleter.call({"DEL", "race"});
      } else {
        deleter.call({"FLUSHALL"});
      }
      const auto reply = reader.read_reply();
      CAPTURE(round, reply.str);
      REQUIRE(reply.is_error());
      // The DEL came after the read blocked (Redis's -UNBLOCKED), or before it (-NOGROUP).
      if (reply.str.rfind("UNBLOCKED the stream key no longer exists", 0) == 0) {
        ++unblocked;
      } else {
        CHECK(reply.str.rfind("NOGROUP No such key 'race' or consumer group 'g'", 0) == 0);
        ++nogroup;
      }
    }
    INFO("unblocked " << unblocked << ", nogroup " << nogroup);
    CHECK(unblocked + nogroup == 300);
    CHECK(admin.call({"INFO", "clients"}).str.find("blocked_clients:0\r\n") != std::string::npos);
  });
}

// RENAME onto a key readers wait on serves them on the renamed stream, as Redis's dbAdd
// signals the key; a group reader on the old key is told it is gone. Each round uses new
// names, so at --threads 2 some renames stay on one shard and some cross.
TEST_CASE("A RENAME serves the readers blocked on the new name and unblocks group readers of the old", "[blocking][wakeup][rename]") {
  against_all([](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    for (int round = 0; round < 8; ++round) {
      const std::string src = "src" + std::to_string(round);
      const std::string dst = "dst" + std::to_string(round);
      CAPTURE(round);
      // A group reader on the new name, whose group the renamed stream has: served.
      admin.call({"FLUSHALL"});
      admin.call({"XGROUP", "CREATE", dst, "g", "$", "MKSTREAM"});
      admin.call({"XADD", src, "1-1", "f", "v"});
      admin.call({"XGROUP", "CREATE", src, "g", "0"});
      {
        Connection reader("127.0.0.1", port, 10s);
        reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", dst, ">"});
        REQUIRE(wait_blocked(admin, 1));
        CHECK(admin.call({"RENAME", src, dst}).str == "OK");
        const auto reply = reader.read_reply();
        CHECK(runnel::protocol::to_display_string(reply).find("1-1") != std::string::npos);
        CHECK(admin.call({"XPENDING", dst, "g"}).elements.at(0).integer == 1);
      }
      // ... whose group the renamed stream lacks: -NOGROUP.
      admin.call({"FLUSHALL"});
      admin.call({"XGROUP", "CREATE", dst, "g", "$", "MKSTREAM"});
      admin.call({"XADD", src, "1-1", "f", "v"});
      {
        Connection reader("127.0.0.1", port, 10s);
        reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", dst, ">"});
        REQUIRE(wait_blocked(admin, 1));
        CHECK(admin.call({"RENAMENX", src, "other" + std::to_string(round)}).integer == 1);
        CHECK(admin.call({"RENAME", "other" + std::to_string(round), dst}).str == "OK");
        const auto reply = reader.read_reply();
        REQUIRE(reply.is_error());
        CHECK(reply.str == "NOGROUP the consumer group this client was blocked on no longer exists");
      }
      // A group reader on the old name: -UNBLOCKED. An XREAD reader there keeps waiting, and
      // gets the entry of a new stream made under the old name.
      admin.call({"FLUSHALL"});
      admin.call({"XGROUP", "CREATE", src, "g", "$", "MKSTREAM"});
      {
        Connection group_reader("127.0.0.1", port, 10s);
        Connection reader("127.0.0.1", port, 10s);
        group_reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", src, ">"});
        reader.send({"XREAD", "BLOCK", "0", "STREAMS", src, "$"});
        REQUIRE(wait_blocked(admin, 2));
        CHECK(admin.call({"RENAME", src, dst}).str == "OK");
        const auto gone = group_reader.read_reply();
        REQUIRE(gone.is_error());
        CHECK(gone.str == "UNBLOCKED the stream key no longer exists");
        REQUIRE(wait_blocked(admin, 1));
        admin.call({"XADD", src, "2-2", "a", "b"});
        const auto reply = reader.read_reply();
        const std::string shown = runnel::protocol::to_display_string(reply);
        CHECK(shown.find("2-2") != std::string::npos);
        CHECK(shown.find(src) != std::string::npos);
      }
      // XREAD on a missing key, with $: the renamed stream's entries are new to it.
      admin.call({"FLUSHALL"});
      admin.call({"XADD", src, "1-1", "f", "v"});
      {
        Connection reader("127.0.0.1", port, 10s);
        reader.send({"XREAD", "BLOCK", "0", "STREAMS", dst, "$"});
        REQUIRE(wait_blocked(admin, 1));
        CHECK(admin.call({"RENAME", src, dst}).str == "OK");
        const std::string shown = runnel::protocol::to_display_string(reader.read_reply());
        CHECK(shown.find("1-1") != std::string::npos);
        CHECK(shown.find(dst) != std::string::npos);
      }
    }
    CHECK(admin.call({"INFO", "clients"}).str.find("blocked_clients:0\r\n") != std::string::npos);
  });
}

TEST_CASE("A RENAME is seen by WATCH on either key", "[blocking][rename]") {
  against_all([](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    Connection watcher("127.0.0.1", port);
    for (const bool watch_source : {true, false}) {
      admin.call({"FLUSHALL"});
      admin.call({"XADD", "ws", "1-1", "f", "v"});
      CHECK(watcher.call({"WATCH", watch_source ? "ws" : "wd"}).str == "OK");
      CHECK(admin.call({"RENAME", "ws", "wd"}).str == "OK");
      watcher.call({"MULTI"});
      watcher.call({"XLEN", "wd"});
      const auto reply = watcher.call({"EXEC"});
      CAPTURE(watch_source);
      CHECK(reply.type == runnel::protocol::Reply::Type::kNull);
    }
  });
}

TEST_CASE("Readers blocked on a stream that expires get what redis-server gives them", "[blocking][wakeup][expire]") {
  std::vector<std::string> expected;  // redis-server's replies, run first
  bool first = true;
  against_all([&](std::uint16_t port) {
    Connection admin("127.0.0.1", port);
    Connection writer("127.0.0.1", port);
    std::vector<std::string> got;
    for (int round = 0; round < 3; ++round) {
      const std::string key = "x" + std::to_string(round);
      writer.call({"XADD", key, "1-1", "f", "v"});
      writer.call({"XGROUP", "CREATE", key, "g", "$"});
      Connection group_reader("127.0.0.1", port, 10s);
      Connection reader("127.0.0.1", port, 10s);
      group_reader.send({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "2000", "STREAMS", key, ">"});
      reader.send({"XREAD", "BLOCK", "1500", "STREAMS", key, "$"});
      REQUIRE(wait_blocked(admin, 2));
      // Deleted by the sweep, untouched by any command: nothing reads the key meanwhile.
      writer.call({"PEXPIRE", key, "100"});
      std::string raw;
      group_reader.read_reply(&raw);
      got.push_back("group reader: " + raw);
      reader.read_reply(&raw);
      got.push_back("reader: " + raw);
      got.push_back("exists: " + std::to_string(writer.call({"EXISTS", key}).integer));
    }
    if (first) {
      expected = got;
      first = false;
      return;
    }
    CHECK(got == expected);
  });
}
