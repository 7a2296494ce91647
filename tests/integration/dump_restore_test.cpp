// DUMP and RESTORE between redis-server 7.0 and Runnel, both ways, and RESTORE's durability.
// The payload is Redis's RDB serialization of a stream (storage/rdb.hpp); redis-server runs
// with sanitize-dump-payload yes, so it checks every listpack Runnel writes, deeply.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

// A stream with what DUMP must carry: entries over several nodes (long values, a field set
// that changes, deletions inside nodes), two groups, pending entries of three consumers, one
// with none, a group that read nothing, and a group read past a deletion.
void fill(Connection& c, const std::string& key) {
  for (int i = 1; i <= 450; ++i) {
    const std::string n = std::to_string(i);
    if (i % 97 == 0) {
      c.call({"XADD", key, n + "-1", "other", "x", "more", std::string(300, 'L')});
    } else {
      c.call({"XADD", key, n + "-1", "f", std::string(static_cast<std::size_t>(i % 60), 'v'), "n", n});
    }
  }
  c.call({"XDEL", key, "3-1", "200-1", "450-1"});
  c.call({"XGROUP", "CREATE", key, "g", "0"});
  c.call({"XGROUP", "CREATE", key, "late", "$"});
  c.call({"XGROUP", "CREATE", key, "past", "250-1"});
  c.call({"XREADGROUP", "GROUP", "g", "alice", "COUNT", "5", "STREAMS", key, ">"});
  c.call({"XREADGROUP", "GROUP", "g", "bob", "COUNT", "3", "STREAMS", key, ">"});
  c.call({"XREADGROUP", "GROUP", "g", "bob", "STREAMS", key, "0"});  // a second delivery
  c.call({"XGROUP", "CREATECONSUMER", key, "g", "carol"});
  c.call({"XREADGROUP", "GROUP", "past", "dave", "COUNT", "2", "STREAMS", key, ">"});
  c.call({"XACK", key, "g", "2-1"});
}

// Runnel's XINFO STREAM FULL as Redis 7.0 shows it: Runnel's additions (active-time,
// nacked-count) left out, and radix-tree-nodes (Runnel's own figure) taken from `redis`.
Reply as_redis_70(Reply info, const Reply& redis) {
  auto drop = [](Reply& map, const std::string& name) {
    for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
      if (map.elements[i].str == name) {
        map.elements.erase(map.elements.begin() + static_cast<std::ptrdiff_t>(i),
                           map.elements.begin() + static_cast<std::ptrdiff_t>(i) + 2);
        return;
      }
    }
  };
  for (std::size_t i = 0; i + 1 < info.elements.size() && i + 1 < redis.elements.size(); i += 2) {
    if (info.elements[i].str == "radix-tree-nodes") info.elements[i + 1] = redis.elements[i + 1];
  }
  for (std::size_t i = 0; i + 1 < info.elements.size(); i += 2) {
    if (info.elements[i].str != "groups") continue;
    for (Reply& group : info.elements[i + 1].elements) {
      drop(group, "nacked-count");
      for (std::size_t k = 0; k + 1 < group.elements.size(); k += 2) {
        if (group.elements[k].str != "consumers") continue;
        for (Reply& consumer : group.elements[k + 1].elements) drop(consumer, "active-time");
      }
    }
  }
  return info;
}

std::string show(const Reply& r) { return runnel::protocol::to_display_string(r); }

}  // namespace

TEST_CASE("A stream DUMPed by redis-server RESTOREs into Runnel whole, and Runnel's DUMP into redis-server",
          "[dump]") {
  runnel::test::RedisServer redis_server({"--sanitize-dump-payload", "yes"});
  Connection redis("127.0.0.1", redis_server.port);
  fill(redis, "s");
  const Reply original = redis.call({"XINFO", "STREAM", "s", "FULL"});
  const Reply groups = redis.call({"XINFO", "GROUPS", "s"});
  const Reply entries = redis.call({"XRANGE", "s", "-", "+"});
  const std::string from_redis = redis.call({"DUMP", "s"}).str;
  for (unsigned threads : {1u, 4u}) {
    INFO("--threads " << threads);
    const std::string copy = "copy" + std::to_string(threads), back = "back" + std::to_string(threads);
    runnel::test::RunnelServer runnel_server({}, threads);
    Connection runnel("127.0.0.1", runnel_server.port);
    REQUIRE(runnel.call({"RESTORE", "s", "0", from_redis}).str == "OK");
    // Everything, times and delivery counts included, as redis-server holds it.
    CHECK(show(as_redis_70(runnel.call({"XINFO", "STREAM", "s", "FULL"}), original)) == show(original));
    CHECK(show(runnel.call({"XRANGE", "s", "-", "+"})) == show(entries));
    CHECK(show(runnel.call({"XINFO", "GROUPS", "s"})) == show(groups));
    // The groups work on, as they do on a copy redis-server restores from the same payload.
    REQUIRE(redis.call({"RESTORE", copy, "0", from_redis}).str == "OK");
    CHECK(runnel.call({"XCLAIM", "s", "g", "erin", "0", "1-1", "JUSTID"}).elements.size() == 1);
    redis.call({"XCLAIM", copy, "g", "erin", "0", "1-1", "JUSTID"});
    for (const char* group : {"g", "late", "past"}) {
      INFO("group " << group);
      const Reply mine = runnel.call({"XREADGROUP", "GROUP", group, "c", "COUNT", "2", "STREAMS", "s", ">"});
      const Reply theirs = redis.call({"XREADGROUP", "GROUP", group, "c", "COUNT", "2", "STREAMS", copy, ">"});
      CHECK(show(mine.elements.empty() ? mine : mine.elements[0].elements[1]) ==
            show(theirs.elements.empty() ? theirs : theirs.elements[0].elements[1]));
    }
    CHECK(show(runnel.call({"XPENDING", "s", "g"})) == show(redis.call({"XPENDING", copy, "g"})));

    // And back: redis-server takes Runnel's DUMP, checks it deeply, and holds what Runnel
    // holds now (the claim, the new consumers and deliveries included).
    const std::string from_runnel = runnel.call({"DUMP", "s"}).str;
    REQUIRE(redis.call({"RESTORE", back, "0", from_runnel}).str == "OK");
    const Reply back_info = redis.call({"XINFO", "STREAM", back, "FULL"});
    Reply mine = as_redis_70(runnel.call({"XINFO", "STREAM", "s", "FULL"}), back_info);
    // Node boundaries are each server's own after deletions (Redis keeps tombstones in its
    // nodes, Runnel's DUMP writes none): radix-tree-keys aside, all is equal.
    for (std::size_t i = 0; i + 1 < mine.elements.size(); i += 2) {
      if (mine.elements[i].str == "radix-tree-keys") mine.elements[i + 1] = back_info.elements[i + 1];
    }
    CHECK(show(back_info) == show(mine));
  }
}

TEST_CASE("RESTORE refuses what is not a whole stream, and leaves the key as it was", "[dump]") {
  runnel::test::RedisServer redis_server;
  Connection redis("127.0.0.1", redis_server.port);
  redis.call({"XADD", "s", "1-1", "f", "v"});
  redis.call({"SET", "str", "text"});
  const std::string stream = redis.call({"DUMP", "s"}).str;
  const std::string string = redis.call({"DUMP", "str"}).str;
  runnel::test::RunnelServer runnel_server;
  Connection runnel("127.0.0.1", runnel_server.port);
  runnel.call({"XADD", "kept", "5-5", "a", "b"});
  // Another type's value: a clear error naming what it is.
  CHECK(runnel.call({"RESTORE", "t", "0", string}).str.find("ERR Bad data format: the payload holds a value of another type") == 0);
  // A bad checksum, a truncated payload, and one flipped byte under a good checksum.
  std::string flipped = stream;
  flipped[5] = static_cast<char>(flipped[5] ^ 0x20);
  CHECK(runnel.call({"RESTORE", "t", "0", flipped}).str == "ERR DUMP payload version or checksum are wrong");
  CHECK(runnel.call({"RESTORE", "t", "0", stream.substr(0, stream.size() - 3)}).str ==
        "ERR DUMP payload version or checksum are wrong");
  CHECK(runnel.call({"RESTORE", "kept", "0", stream}).str == "BUSYKEY Target key name already exists.");
  CHECK(runnel.call({"RESTORE", "kept", "0", flipped, "REPLACE"}).str == "ERR DUMP payload version or checksum are wrong");
  CHECK(runnel.call({"XRANGE", "kept", "-", "+"}).elements.size() == 1);  // untouched
  CHECK(runnel.call({"EXISTS", "t"}).integer == 0);
  // REPLACE swaps the whole stream.
  CHECK(runnel.call({"RESTORE", "kept", "0", stream, "REPLACE"}).str == "OK");
  CHECK(show(runnel.call({"XRANGE", "kept", "-", "+"})) == show(redis.call({"XRANGE", "s", "-", "+"})));
  // A TTL: one already past makes no key (OK, as Redis does); a later one is the key's TTL.
  CHECK(runnel.call({"RESTORE", "soon", "0", stream, "ABSTTL"}).str == "OK");
  CHECK(runnel.call({"TTL", "soon"}).integer == -1);
  CHECK(runnel.call({"RESTORE", "past", "1000", stream, "ABSTTL"}).str == "OK");
  CHECK(runnel.call({"EXISTS", "past"}).integer == 0);
  CHECK(runnel.call({"RESTORE", "later", "60000", stream}).str == "OK");
  const std::int64_t pttl = runnel.call({"PTTL", "later"}).integer;
  CHECK(pttl > 0);
  CHECK(pttl <= 60000);
  CHECK(show(runnel.call({"XRANGE", "later", "-", "+"})) == show(redis.call({"XRANGE", "s", "-", "+"})));
}

TEST_CASE("A RESTOREd stream and its COPYs, groups and pending entries included, survive a kill -9 under always",
          "[dump][crash]") {
  runnel::test::RedisServer redis_server;
  Connection redis("127.0.0.1", redis_server.port);
  fill(redis, "s");
  const std::string payload = redis.call({"DUMP", "s"}).str;
  const Reply original = redis.call({"XINFO", "STREAM", "s", "FULL"});
  runnel::test::TempDir dir("runnel-restore-crash");
  const std::uint16_t port = runnel::test::free_port();
  const std::vector<std::string> flags = {runnel::test::runnel_server_path(), "--port", std::to_string(port),
                                          "--dir", (dir.path() / "data").string(), "--threads", "2",
                                          "--fsync", "always"};
  {
    runnel::test::ServerProcess server(flags, port, (dir.path() / "1.log").string());
    Connection c("127.0.0.1", port);
    REQUIRE(c.call({"RESTORE", "s", "0", payload}).str == "OK");
    for (int i = 0; i < 8; ++i) REQUIRE(c.call({"COPY", "s", "copy" + std::to_string(i)}).integer == 1);  // both shards
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
  }
  runnel::test::ServerProcess server(flags, port, (dir.path() / "2.log").string());
  Connection c("127.0.0.1", port);
  CHECK(show(as_redis_70(c.call({"XINFO", "STREAM", "s", "FULL"}), original)) == show(original));
  for (int i = 0; i < 8; ++i) {
    INFO("copy" << i);
    CHECK(show(as_redis_70(c.call({"XINFO", "STREAM", "copy" + std::to_string(i), "FULL"}), original)) == show(original));
  }
}

TEST_CASE("redis-server MIGRATEs streams into Runnel, with AUTH, KEYS and REPLACE", "[dump]") {
  runnel::test::RedisServer redis_server;
  Connection redis("127.0.0.1", redis_server.port);
  runnel::test::RunnelServer runnel_server({"--requirepass", "pw"}, 2);
  Connection runnel("127.0.0.1", runnel_server.port);
  REQUIRE(runnel.call({"AUTH", "pw"}).str == "OK");
  fill(redis, "a");
  for (const char* key : {"b", "c"}) redis.call({"XADD", key, "1-1", "f", key});
  const Reply a = redis.call({"XINFO", "STREAM", "a", "FULL"});
  const std::string port = std::to_string(runnel_server.port);
  // redis-server sends AUTH, SELECT 0 and RESTORE to Runnel, then deletes its own copy.
  REQUIRE(redis.call({"MIGRATE", "127.0.0.1", port, "a", "0", "5000", "AUTH", "pw"}).str == "OK");
  CHECK(redis.call({"EXISTS", "a"}).integer == 0);
  CHECK(show(as_redis_70(runnel.call({"XINFO", "STREAM", "a", "FULL"}), a)) == show(a));
  // Several keys at once; a key already there is BUSYKEY unless REPLACE, and COPY keeps the source.
  runnel.call({"XADD", "c", "9-9", "old", "x"});
  const Reply busy = redis.call({"MIGRATE", "127.0.0.1", port, "", "0", "5000", "COPY", "AUTH", "pw", "KEYS", "b", "c"});
  CHECK(busy.str.find("BUSYKEY") != std::string::npos);
  REQUIRE(redis.call({"MIGRATE", "127.0.0.1", port, "", "0", "5000", "COPY", "REPLACE", "AUTH", "pw", "KEYS", "b", "c"}).str ==
          "OK");
  CHECK(redis.call({"EXISTS", "b", "c"}).integer == 2);
  CHECK(show(runnel.call({"XRANGE", "c", "-", "+"})) == show(redis.call({"XRANGE", "c", "-", "+"})));
  CHECK(show(runnel.call({"XRANGE", "b", "-", "+"})) == show(redis.call({"XRANGE", "b", "-", "+"})));
}

TEST_CASE("runnel-import loads the streams of a Redis RDB file and counts what it skips", "[dump][import]") {
  runnel::test::RedisServer redis_server;
  Connection redis("127.0.0.1", redis_server.port);
  fill(redis, "s");
  redis.call({"XADD", "ttl", "1-1", "f", "v"});
  redis.call({"PEXPIRE", "ttl", "600000"});
  redis.call({"SET", "str", "text"});
  redis.call({"RPUSH", "list", "a", "b"});
  redis.call({"HSET", "hash", "f", "1"});
  redis.call({"ZADD", "zset", "1", "m"});
  redis.call({"SADD", "set", "x"});
  redis.call({"SELECT", "1"});
  redis.call({"XADD", "elsewhere", "1-1", "f", "v"});
  redis.call({"SELECT", "0"});
  const Reply original = redis.call({"XINFO", "STREAM", "s", "FULL"});
  REQUIRE(redis.call({"SAVE"}).str == "OK");
  runnel::test::RunnelServer runnel_server({}, 2);
  const std::string command = std::string(RUNNEL_IMPORT_PATH) + " " + (redis_server.dir.path() / "dump.rdb").string() +
                              " -p " + std::to_string(runnel_server.port) + " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  INFO(output);
  CHECK(status == 0);
  CHECK(output.find("runnel-import: 2 streams (") != std::string::npos);
  CHECK(output.find("loaded without their TTL (Runnel has no key expiry yet): 1 streams") != std::string::npos);
  for (const char* skipped : {"1 string", "1 list", "1 hash", "1 zset", "1 set", "1 stream in a database other than 0"}) {
    CHECK(output.find(std::string("skipped: ") + skipped) != std::string::npos);
  }
  Connection runnel("127.0.0.1", runnel_server.port);
  CHECK(show(as_redis_70(runnel.call({"XINFO", "STREAM", "s", "FULL"}), original)) == show(original));
  CHECK(runnel.call({"XLEN", "ttl"}).integer == 1);
  CHECK(runnel.call({"DBSIZE"}).integer == 2);
  // Run again, the streams are there: refused one by one (BUSYKEY) unless --replace.
  CHECK(std::system((std::string(RUNNEL_IMPORT_PATH) + " " + (redis_server.dir.path() / "dump.rdb").string() + " -p " +
                     std::to_string(runnel_server.port) + " >/dev/null 2>&1").c_str()) != 0);
  CHECK(std::system((std::string(RUNNEL_IMPORT_PATH) + " " + (redis_server.dir.path() / "dump.rdb").string() + " -p " +
                     std::to_string(runnel_server.port) + " --replace >/dev/null 2>&1").c_str()) == 0);
}

TEST_CASE("Runnel MIGRATEs streams to redis-server and to another Runnel, and keeps what the target refused",
          "[dump][migrate]") {
  runnel::test::RedisServer redis_server({"--requirepass", "pw", "--enable-debug-command", "yes"});
  Connection redis("127.0.0.1", redis_server.port);
  REQUIRE(redis.call({"AUTH", "pw"}).str == "OK");
  runnel::test::RunnelServer runnel_server({}, 4);
  Connection runnel("127.0.0.1", runnel_server.port);
  fill(runnel, "a");
  for (const char* key : {"b", "c", "d"}) runnel.call({"XADD", key, "1-1", "f", key});
  const Reply a = runnel.call({"XINFO", "STREAM", "a", "FULL"});
  const std::string redis_port = std::to_string(redis_server.port);
  // One key, with AUTH: it leaves Runnel, and redis-server holds what Runnel held.
  REQUIRE(runnel.call({"MIGRATE", "127.0.0.1", redis_port, "a", "0", "5000", "AUTH", "pw"}).str == "OK");
  CHECK(runnel.call({"EXISTS", "a"}).integer == 0);
  CHECK(show(as_redis_70(a, redis.call({"XINFO", "STREAM", "a", "FULL"}))) ==
        show(redis.call({"XINFO", "STREAM", "a", "FULL"})));
  // Several keys over the shards: one the target has already is refused (BUSYKEY) and stays
  // here; the others move.
  redis.call({"XADD", "c", "9-9", "there", "x"});
  const Reply partly =
      runnel.call({"MIGRATE", "127.0.0.1", redis_port, "", "0", "5000", "AUTH", "pw", "KEYS", "b", "c", "d", "nosuch"});
  CHECK(partly.str == "ERR Target instance replied with error: BUSYKEY Target key name already exists.");
  CHECK(runnel.call({"EXISTS", "b", "c", "d"}).integer == 1);  // c
  CHECK(redis.call({"XRANGE", "b", "-", "+"}).elements.size() == 1);
  // COPY REPLACE: the target's copy is overwritten, and Runnel keeps its own.
  REQUIRE(runnel.call({"MIGRATE", "127.0.0.1", redis_port, "c", "0", "5000", "COPY", "REPLACE", "AUTH", "pw"}).str == "OK");
  CHECK(show(redis.call({"XRANGE", "c", "-", "+"})) == show(runnel.call({"XRANGE", "c", "-", "+"})));
  // A wrong password: nothing moves.
  CHECK(runnel.call({"MIGRATE", "127.0.0.1", redis_port, "c", "0", "5000", "AUTH", "no"}).str.find(
            "ERR Target instance replied with error: WRONGPASS") == 0);
  CHECK(runnel.call({"EXISTS", "c"}).integer == 1);
  // Runnel to Runnel.
  runnel::test::RunnelServer other_server({}, 2);
  Connection other("127.0.0.1", other_server.port);
  REQUIRE(runnel.call({"MIGRATE", "127.0.0.1", std::to_string(other_server.port), "c", "0", "5000"}).str == "OK");
  CHECK(other.call({"XLEN", "c"}).integer == 1);
  CHECK(runnel.call({"EXISTS", "c"}).integer == 0);
}

TEST_CASE("A stream written to while MIGRATE sends it is kept, and a silent target times out", "[dump][migrate]") {
  runnel::test::RedisServer redis_server({"--enable-debug-command", "yes"});
  runnel::test::RunnelServer runnel_server({}, 2);
  Connection runnel("127.0.0.1", runnel_server.port);
  runnel.call({"XADD", "s", "1-1", "f", "v"});
  // redis-server busy for a second: the RESTORE waits, and an XADD lands meanwhile.
  Connection sleeper("127.0.0.1", redis_server.port);
  sleeper.send({"DEBUG", "SLEEP", "1"});
  Connection migrating("127.0.0.1", runnel_server.port, std::chrono::seconds(30));
  migrating.send({"MIGRATE", "127.0.0.1", std::to_string(redis_server.port), "s", "0", "10000"});
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  REQUIRE(runnel.call({"XADD", "s", "2-1", "f", "later"}).str == "2-1");
  const Reply migrated = migrating.read_reply();
  CHECK(migrated.str.find("but kept it here: it changed while it was sent") != std::string::npos);
  CHECK(runnel.call({"XLEN", "s"}).integer == 2);  // nothing lost
  (void)sleeper.read_reply();
  Connection redis("127.0.0.1", redis_server.port);
  CHECK(redis.call({"XLEN", "s"}).integer == 1);  // the copy as it was sent
  // A target that takes the connection and never answers: IOERR after the timeout, and the
  // stream stays.
  sleeper.send({"DEBUG", "SLEEP", "2"});
  CHECK(runnel.call({"MIGRATE", "127.0.0.1", std::to_string(redis_server.port), "s", "0", "300"}).str ==
        "IOERR error or timeout reading to target instance");
  CHECK(runnel.call({"XLEN", "s"}).integer == 2);
  (void)sleeper.read_reply();
}
