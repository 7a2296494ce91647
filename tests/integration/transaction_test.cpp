// MULTI/EXEC through real connections: WATCH across connections (against redis-server), and
// atomicity of transactions whose keys live on different shards.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

// Runs `steps` (which connection, command) on two connections to `port`; returns the raw
// replies in order.
std::vector<std::string> run_two(std::uint16_t port, const std::vector<std::pair<int, std::vector<std::string>>>& steps) {
  Connection a("127.0.0.1", port), b("127.0.0.1", port);
  Connection* conns[] = {&a, &b};
  std::vector<std::string> out;
  for (const auto& [who, args] : steps) {
    std::vector<std::string_view> v(args.begin(), args.end());
    std::string raw;
    conns[who]->call(v, &raw);
    out.push_back(raw);
  }
  return out;
}

}  // namespace

TEST_CASE("WATCH sees changes made by other connections, as redis-server does", "[transaction]") {
  const std::vector<std::pair<int, std::vector<std::string>>> steps = {
      {0, {"FLUSHALL"}},
      {0, {"XADD", "s", "1-1", "f", "v"}},
      {0, {"XGROUP", "CREATE", "s", "g", "0"}},
      // XREADGROUP and XACK by another client do not count as changes.
      {0, {"WATCH", "s"}},
      {1, {"XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"}},
      {1, {"XACK", "s", "g", "1-1"}},
      {0, {"MULTI"}},
      {0, {"XLEN", "s"}},
      {0, {"EXEC"}},
      // XADD does, and so does DEL of a key that was absent when watched and made since.
      {0, {"WATCH", "s", "other"}},
      {1, {"XADD", "other", "1-1", "f", "v"}},
      {1, {"DEL", "other"}},
      {0, {"MULTI"}},
      {0, {"XLEN", "s"}},
      {0, {"EXEC"}},
      // A failed write changes nothing.
      {0, {"WATCH", "s"}},
      {1, {"XADD", "s", "1-1", "f", "v"}},
      {1, {"XDEL", "s", "9-9"}},
      {0, {"MULTI"}},
      {0, {"XADD", "s", "2-1", "f", "v"}},
      {0, {"EXEC"}},
      // FLUSHALL from another connection.
      {0, {"WATCH", "s"}},
      {1, {"FLUSHALL"}},
      {0, {"MULTI"}},
      {0, {"XLEN", "s"}},
      {0, {"EXEC"}},
  };
  runnel::test::RedisServer redis;
  const auto expected = run_two(redis.port, steps);
  for (unsigned threads : {1u, 2u, 4u}) {
    runnel::test::RunnelServer runnel({}, threads);
    const auto actual = run_two(runnel.port, steps);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      INFO("threads " << threads << ", step " << i << ": " << steps[i].second[0]);
      CHECK(actual[i] == expected[i]);
    }
  }
}

TEST_CASE("A transaction over several shards is atomic: no other client sees half of it", "[transaction]") {
  runnel::test::RunnelServer server({}, 2);
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4", "k5"};
  std::atomic<bool> stop{false};
  std::atomic<int> committed{0};
  std::atomic<int> bad_replies{0};  // counted here, checked on the main thread (Catch is not thread-safe)
  std::thread writer([&] {
    Connection c("127.0.0.1", server.port);
    for (int i = 0; i < 2000 && !stop; ++i) {
      c.send({"MULTI"});
      for (const auto& k : keys) c.send({"XADD", k, "*", "n", std::to_string(i)});
      c.send({"EXEC"});
      if (c.read_reply().str != "OK") ++bad_replies;
      for (std::size_t k = 0; k < keys.size(); ++k) {
        if (c.read_reply().str != "QUEUED") ++bad_replies;
      }
      if (c.read_reply().elements.size() != keys.size()) ++bad_replies;
      ++committed;
    }
  });
  // Meanwhile another client reads every length in one transaction: they must always agree.
  Connection r("127.0.0.1", server.port);
  int checks = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (committed < 2000 && std::chrono::steady_clock::now() < deadline) {
    r.send({"MULTI"});
    for (const auto& k : keys) r.send({"XLEN", k});
    r.send({"EXEC"});
    r.read_reply();
    for (std::size_t k = 0; k < keys.size(); ++k) r.read_reply();
    const Reply lens = r.read_reply();
    REQUIRE(lens.elements.size() == keys.size());
    for (const Reply& len : lens.elements) REQUIRE(len.integer == lens.elements[0].integer);
    ++checks;
  }
  stop = true;
  writer.join();
  CHECK(bad_replies == 0);
  CHECK(committed == 2000);
  CHECK(checks > 10);
  CHECK(r.call({"XLEN", "k5"}).integer == 2000);
}
