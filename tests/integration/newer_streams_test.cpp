// What Redis 7.2 and later added to streams, where one connection in a scenario file cannot
// show it: a blocked XREAD '+', and the consumers' seen and active times across a restart
// and a kill -9. The replies themselves are in tests/compat/scenarios/redis7*_*.txt.
#include <catch2/catch.hpp>

#include <signal.h>

#include <array>
#include <future>
#include <map>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

std::int64_t blocked_clients(Connection& c) {
  const std::string info = c.call({"INFO", "clients"}).str;
  const auto at = info.find("blocked_clients:");
  REQUIRE(at != std::string::npos);
  return std::stoll(info.substr(at + 16));
}

// Polls (at most 5 s) until `n` clients are blocked.
bool wait_blocked(Connection& c, std::int64_t n) {
  for (int i = 0; i < 500; ++i) {
    if (blocked_clients(c) == n) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// XINFO CONSUMERS as name -> {pending, idle, inactive}.
std::map<std::string, std::array<std::int64_t, 3>> consumers(Connection& c, const std::string& key,
                                                            const std::string& group) {
  std::map<std::string, std::array<std::int64_t, 3>> out;
  const Reply r = c.call({"XINFO", "CONSUMERS", key, group});
  for (const Reply& e : r.elements) {
    REQUIRE(e.elements.size() == 8);
    CHECK(e.elements[6].str == "inactive");
    out[e.elements[1].str] = {e.elements[3].integer, e.elements[5].integer, e.elements[7].integer};
  }
  return out;
}

}  // namespace

TEST_CASE("A reader blocked in XREAD + on an empty stream gets only the last entry a transaction added",
          "[newer][blocking]") {
  for (unsigned threads : {1u, 4u}) {
    runnel::test::RunnelServer server({}, threads);
    Connection admin("127.0.0.1", server.port);
    admin.call({"XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"});  // empty, not missing
    for (const char* key : {"e", "missing"}) {
      INFO("--threads " << threads << ", key " << key);
      Connection reader("127.0.0.1", server.port, 10s);
      auto answer = std::async(std::launch::async, [&] {
        return reader.call({"XREAD", "COUNT", "10", "BLOCK", "10000", "STREAMS", key, "+"});
      });
      REQUIRE(wait_blocked(admin, 1));
      admin.send({"MULTI"});
      for (const char* id : {"1-1", "2-1", "3-1"}) admin.send({"XADD", key, id, "n", id});
      admin.send({"EXEC"});
      for (int i = 0; i < 5; ++i) REQUIRE_FALSE(admin.read_reply().is_error());
      REQUIRE(answer.wait_for(10s) == std::future_status::ready);
      const Reply got = answer.get();
      REQUIRE(got.elements.size() == 1);
      REQUIRE(got.elements[0].elements[1].elements.size() == 1);
      CHECK(got.elements[0].elements[1].elements[0].elements[0].str == "3-1");
      admin.call({"DEL", key});
      admin.call({"XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"});
    }
  }
}

TEST_CASE("Consumers' seen and active times survive a restart, and active ones a kill -9 under always",
          "[newer][crash]") {
  runnel::test::TempDir dir("runnel-consumer-times");
  const std::uint16_t port = runnel::test::free_port();
  const std::vector<std::string> flags = {runnel::test::runnel_server_path(), "--port", std::to_string(port),
                                          "--dir", (dir.path() / "data").string(), "--threads", "1",
                                          "--fsync", "always"};
  {
    runnel::test::ServerProcess server(flags, port, (dir.path() / "1.log").string());
    Connection c("127.0.0.1", port);
    c.call({"XADD", "s", "1-1", "f", "v"});
    c.call({"XGROUP", "CREATE", "s", "g", "0"});
    REQUIRE(c.call({"XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"}).elements.size() == 1);
    // bob is made by a read that gets nothing: seen, never active.
    REQUIRE(c.call({"XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"}).type == Reply::Type::kNull);
    const auto before = consumers(c, "s", "g");
    REQUIRE(before.size() == 2);
    CHECK(before.at("alice")[2] >= 0);
    CHECK(before.at("bob")[2] == -1);
    REQUIRE(server.terminate() == 0);  // a clean stop writes the seen times no reply waited for
  }
  {
    runnel::test::ServerProcess server(flags, port, (dir.path() / "2.log").string());
    Connection c("127.0.0.1", port);
    const auto after = consumers(c, "s", "g");
    REQUIRE(after.size() == 2);
    CHECK(after.at("alice")[0] == 1);
    CHECK(after.at("alice")[2] >= 0);  // its active time came back, not -1
    CHECK(after.at("bob")[2] == -1);
    // carol gets an entry; her active time is written with the delivery, before the reply.
    c.call({"XADD", "s", "2-1", "f", "v"});
    REQUIRE(c.call({"XREADGROUP", "GROUP", "g", "carol", "STREAMS", "s", ">"}).elements.size() == 1);
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
  }
  runnel::test::ServerProcess server(flags, port, (dir.path() / "3.log").string());
  Connection c("127.0.0.1", port);
  const auto after = consumers(c, "s", "g");
  REQUIRE(after.count("carol") == 1);
  CHECK(after.at("carol")[0] == 1);
  CHECK(after.at("carol")[2] >= 0);
  CHECK(after.at("alice")[2] >= 0);
}

TEST_CASE("XACKDEL, XDELEX DELREF, ACKED trims, CLAIM and XNACK survive a kill -9 under always, as acknowledged",
          "[newer][crash]") {
  for (unsigned threads : {1u, 4u}) {
    INFO("--threads " << threads);
    runnel::test::TempDir dir("runnel-delref-crash");
    const std::uint16_t port = runnel::test::free_port();
    const std::vector<std::string> flags = {runnel::test::runnel_server_path(), "--port", std::to_string(port),
                                            "--dir", (dir.path() / "data").string(), "--threads",
                                            std::to_string(threads), "--fsync", "always"};
    Reply range_before, pending_before, pending2_before;
    {
      runnel::test::ServerProcess server(flags, port, (dir.path() / "1.log").string());
      Connection c("127.0.0.1", port);
      for (int i = 1; i <= 8; ++i) c.call({"XADD", "s", std::to_string(i) + "-1", "f", std::to_string(i)});
      c.call({"XGROUP", "CREATE", "s", "g", "0"});
      c.call({"XGROUP", "CREATE", "s", "h", "0"});
      REQUIRE(c.call({"XREADGROUP", "GROUP", "g", "a", "COUNT", "6", "STREAMS", "s", ">"}).elements.size() == 1);
      REQUIRE(c.call({"XREADGROUP", "GROUP", "h", "b", "COUNT", "3", "STREAMS", "s", ">"}).elements.size() == 1);
      // Acknowledged in g, and kept (2): 1-1 is pending in h, 5-1 not read by h yet.
      const Reply codes = c.call({"XACKDEL", "s", "g", "ACKED", "IDS", "2", "1-1", "5-1"});
      REQUIRE(codes.elements.size() == 2);
      CHECK(codes.elements[0].integer == 2);
      CHECK(codes.elements[1].integer == 2);
      // DELREF: 2-1 leaves the stream and both PELs.
      CHECK(c.call({"XDELEX", "s", "DELREF", "IDS", "1", "2-1"}).elements[0].integer == 1);
      c.call({"XACK", "s", "h", "3-1"});
      c.call({"XACK", "s", "g", "3-1", "4-1"});
      // ACKED trim: 3-1 and 4-1 are free (h has read up to 3-1 only: 4-1 is unread by h, kept).
      CHECK(c.call({"XTRIM", "s", "MINID", "9", "ACKED"}).integer == 1);
      // CLAIM: z takes g's idle entries (6-1) and the new ones (7-1, 8-1).
      REQUIRE(c.call({"XREADGROUP", "GROUP", "g", "z", "CLAIM", "0", "STREAMS", "s", ">"}).elements.size() == 1);
      // XNACK: 8-1 then 6-1 into the NACKed zone, in that order.
      CHECK(c.call({"XNACK", "s", "g", "FAIL", "IDS", "2", "8-1", "6-1"}).integer == 2);
      range_before = c.call({"XRANGE", "s", "-", "+"});
      pending_before = c.call({"XPENDING", "s", "g", "-", "+", "100"});
      pending2_before = c.call({"XPENDING", "s", "h", "-", "+", "100"});
      REQUIRE(::kill(server.pid(), SIGKILL) == 0);
    }
    runnel::test::ServerProcess server(flags, port, (dir.path() / "2.log").string());
    Connection c("127.0.0.1", port);
    auto ids = [](const Reply& r, std::size_t column) {
      std::vector<std::string> out;
      for (const Reply& e : r.elements) out.push_back(e.elements[column].str);
      return out;
    };
    CHECK(ids(c.call({"XRANGE", "s", "-", "+"}), 0) == ids(range_before, 0));
    CHECK(ids(range_before, 0) == std::vector<std::string>{"1-1", "4-1", "5-1", "6-1", "7-1", "8-1"});
    CHECK(ids(c.call({"XPENDING", "s", "g", "-", "+", "100"}), 0) == ids(pending_before, 0));
    CHECK(ids(pending_before, 0) == std::vector<std::string>{"6-1", "7-1", "8-1"});
    CHECK(ids(pending_before, 1) == std::vector<std::string>{"", "z", ""});
    CHECK(ids(c.call({"XPENDING", "s", "g", "-", "+", "100"}), 1) == ids(pending_before, 1));
    CHECK(ids(c.call({"XPENDING", "s", "h", "-", "+", "100"}), 0) == ids(pending2_before, 0));
    CHECK(ids(pending2_before, 0) == std::vector<std::string>{"1-1"});
    // The NACKed zone kept its order: CLAIM serves 8-1 before 6-1.
    const Reply first = c.call({"XREADGROUP", "GROUP", "g", "y", "COUNT", "1", "CLAIM", "3600000", "STREAMS", "s", ">"});
    REQUIRE(first.type == Reply::Type::kArray);
    CHECK(first.elements[0].elements[1].elements[0].elements[0].str == "8-1");
  }
}

TEST_CASE("A reader blocked in XREADGROUP CLAIM wakes when a pending entry becomes idle enough", "[newer][blocking]") {
  for (unsigned threads : {1u, 4u}) {
    INFO("--threads " << threads);
    runnel::test::RunnelServer server({}, threads);
    Connection admin("127.0.0.1", server.port);
    admin.call({"XADD", "s", "1-1", "f", "v"});
    admin.call({"XGROUP", "CREATE", "s", "g", "0"});
    REQUIRE(admin.call({"XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"}).elements.size() == 1);
    // Nothing new, 1-1 not idle for 300 ms yet: bob blocks, and nothing but the passing of
    // time can wake him (the 10 s BLOCK would end in a null reply).
    Connection bob("127.0.0.1", server.port, 20s);
    Reply got = bob.call({"XREADGROUP", "GROUP", "g", "bob", "CLAIM", "300", "BLOCK", "10000", "STREAMS", "s", ">"});
    REQUIRE(got.type == Reply::Type::kArray);
    const Reply& entry = got.elements[0].elements[1].elements[0];
    CHECK(entry.elements[0].str == "1-1");
    CHECK(entry.elements[2].integer >= 300);  // its idle time before the claim
    CHECK(entry.elements[3].integer == 1);
    // With nothing pending when it blocks: an entry that alice (blocked first, so served
    // first) takes afterwards comes to carol once it is idle enough.
    admin.call({"XACK", "s", "g", "1-1"});
    Connection alice("127.0.0.1", server.port, 20s);
    auto alice_got = std::async(std::launch::async, [&] {
      return alice.call({"XREADGROUP", "GROUP", "g", "alice", "BLOCK", "10000", "STREAMS", "s", ">"});
    });
    REQUIRE(wait_blocked(admin, 1));
    Connection carol("127.0.0.1", server.port, 20s);
    auto answer = std::async(std::launch::async, [&] {
      return carol.call({"XREADGROUP", "GROUP", "g", "carol", "CLAIM", "200", "BLOCK", "10000", "STREAMS", "s", ">"});
    });
    REQUIRE(wait_blocked(admin, 2));
    admin.call({"XADD", "s", "2-1", "f", "v"});
    REQUIRE(alice_got.wait_for(10s) == std::future_status::ready);
    CHECK(alice_got.get().elements[0].elements[1].elements[0].elements[0].str == "2-1");
    REQUIRE(answer.wait_for(10s) == std::future_status::ready);
    got = answer.get();
    REQUIRE(got.type == Reply::Type::kArray);
    CHECK(got.elements[0].elements[1].elements[0].elements[0].str == "2-1");
    CHECK(got.elements[0].elements[1].elements[0].elements[3].integer == 1);  // alice's delivery
    admin.call({"XADD", "s", "3-1", "f", "v"});
    REQUIRE(admin.call({"XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"}).elements.size() == 1);
    admin.call({"XACK", "s", "g", "2-1"});
    // Now nothing is claimable for 200 ms: dave blocks, and gets 3-1 from alice.
    Connection dave("127.0.0.1", server.port, 20s);
    got = dave.call({"XREADGROUP", "GROUP", "g", "dave", "CLAIM", "200", "BLOCK", "10000", "STREAMS", "s", ">"});
    REQUIRE(got.type == Reply::Type::kArray);
    CHECK(got.elements[0].elements[1].elements[0].elements[0].str == "3-1");
    CHECK(got.elements[0].elements[1].elements[0].elements[3].integer == 1);
    CHECK(blocked_clients(admin) == 0);
  }
}

TEST_CASE("A producer that retries each XADD after losing its reply makes no duplicates with IDMP, and one each without",
          "[newer][idmp]") {
  runnel::test::RunnelServer server({}, 2);
  Connection watcher("127.0.0.1", server.port);
  constexpr int kJobs = 50;
  for (const bool idmp : {true, false}) {
    INFO((idmp ? "with" : "without") << " IDMP");
    const std::string key = idmp ? "with" : "without";
    std::vector<std::string> first_ids;
    for (int job = 0; job < kJobs; ++job) {
      std::vector<std::string> xadd = {"XADD", key};
      if (idmp) xadd.insert(xadd.end(), {"IDMP", "producer-1", "job-" + std::to_string(job)});
      xadd.insert(xadd.end(), {"*", "job", std::to_string(job)});
      const std::vector<std::string_view> args(xadd.begin(), xadd.end());
      {
        // The XADD is applied, and the connection drops before its reply is read.
        Connection lost("127.0.0.1", server.port);
        lost.send(args);
        bool applied = false;
        for (int i = 0; i < 500 && !applied; ++i) {
          applied = watcher.call({"XLEN", key}).integer > job + (idmp ? 0 : job);
          if (!applied) std::this_thread::sleep_for(2ms);
        }
        REQUIRE(applied);
      }
      // The producer retries on a new connection.
      Connection retry("127.0.0.1", server.port);
      const Reply again = retry.call(args);
      REQUIRE(again.type == Reply::Type::kBulk);
      first_ids.push_back(again.str);
    }
    const std::int64_t length = watcher.call({"XLEN", key}).integer;
    const std::int64_t duplicates = length - kJobs;
    WARN((idmp ? "with" : "without") << " IDMP: " << duplicates << " duplicates in " << kJobs << " retried XADDs");
    if (idmp) {
      CHECK(duplicates == 0);
      // Each retry answered the entry the first attempt added.
      const Reply all = watcher.call({"XRANGE", key, "-", "+"});
      REQUIRE(all.elements.size() == kJobs);
      for (int job = 0; job < kJobs; ++job) CHECK(all.elements[job].elements[0].str == first_ids[job]);
    } else {
      CHECK(duplicates == kJobs);
    }
  }
}

TEST_CASE("Idempotent producers' IDs and window survive a kill -9 under always", "[newer][idmp][crash]") {
  runnel::test::TempDir dir("runnel-idmp-crash");
  const std::uint16_t port = runnel::test::free_port();
  const std::vector<std::string> flags = {runnel::test::runnel_server_path(), "--port", std::to_string(port),
                                          "--dir", (dir.path() / "data").string(), "--threads", "1",
                                          "--fsync", "always"};
  std::vector<std::string> ids;
  std::string before;
  {
    runnel::test::ServerProcess server(flags, port, (dir.path() / "1.log").string());
    Connection c("127.0.0.1", port);
    before = c.call({"XADD", "s", "IDMP", "p", "before", "*", "f", "v"}).str;
    REQUIRE(c.call({"XCFGSET", "s", "IDMP-MAXSIZE", "1000", "IDMP-DURATION", "3600"}).str == "OK");
    for (int i = 0; i < 50; ++i) {
      ids.push_back(c.call({"XADD", "s", "IDMP", "p", "r" + std::to_string(i), "*", "n", std::to_string(i)}).str);
    }
    ids.push_back(c.call({"XADD", "s", "IDMPAUTO", "q", "*", "a", "1", "b", "2"}).str);
    REQUIRE(c.call({"XADD", "s", "IDMP", "p", "r0", "*", "n", "0"}).str == ids[0]);  // a duplicate, counted
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
  }
  runnel::test::ServerProcess server(flags, port, (dir.path() / "2.log").string());
  Connection c("127.0.0.1", port);
  const std::int64_t length = c.call({"XLEN", "s"}).integer;
  CHECK(length == 52);
  for (int i = 0; i < 50; ++i) {
    CHECK(c.call({"XADD", "s", "IDMP", "p", "r" + std::to_string(i), "*", "n", std::to_string(i)}).str == ids[i]);
  }
  CHECK(c.call({"XADD", "s", "IDMPAUTO", "q", "*", "b", "2", "a", "1"}).str == ids[50]);
  CHECK(c.call({"XLEN", "s"}).integer == length);
  // The window came back, and XCFGSET forgot what came before it ("before" is new again).
  const Reply info = c.call({"XINFO", "STREAM", "s"});
  std::map<std::string, std::int64_t> fields;
  for (std::size_t i = 0; i + 1 < info.elements.size(); i += 2) fields[info.elements[i].str] = info.elements[i + 1].integer;
  CHECK(fields["idmp-duration"] == 3600);
  CHECK(fields["idmp-maxsize"] == 1000);
  CHECK(fields["iids-tracked"] == 51);
  // The duplicate counted just before the kill came back too (a duplicate's reply waits for
  // the disk, as a write's does), and the 51 retries since.
  CHECK(fields["iids-duplicates"] == 52);
  CHECK(c.call({"XADD", "s", "IDMP", "p", "before", "*", "f", "v"}).str != before);
}
