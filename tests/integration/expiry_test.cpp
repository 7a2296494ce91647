// Key expiry beyond single replies (tests/compat/scenarios/expire.txt has those): the sweep
// frees keys nobody touches, streams' files included; TTLs survive a restart; a key that
// expired while the server was down is gone at start; --maxmemory-strings bounds strings.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using namespace std::chrono_literals;
using runnel::client::Connection;
using runnel::protocol::Reply;
namespace fs = std::filesystem;

namespace {

// The number of stream folders in a data dir (the trash not counted).
int stream_folders(const fs::path& data) {
  int n = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data / "streams", ec)) {
    if (entry.path().filename().string()[0] != '.') ++n;
  }
  return n;
}

std::int64_t info_field(Connection& c, const std::string& section, const std::string& field) {
  const std::string text = c.call({"INFO", section}).str;
  const auto at = text.find(field + ":");
  if (at == std::string::npos) return -1;
  return std::stoll(text.substr(at + field.size() + 1));
}

// Polls `done` every 10 ms for at most 5 s.
template <typename F>
bool eventually(F&& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

runnel::test::ServerProcess start(const runnel::test::TempDir& dir, std::uint16_t port, unsigned threads) {
  return runnel::test::ServerProcess({runnel::test::runnel_server_path(), "--port", std::to_string(port), "--dir",
                                      (dir.path() / "data").string(), "--threads", std::to_string(threads)},
                                     port, (dir.path() / "server.log").string());
}

}  // namespace

TEST_CASE("The sweep deletes expired keys nobody touches, and a stream's folder with it", "[expire]") {
  runnel::test::RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  for (int i = 0; i < 20; ++i) {
    REQUIRE(c.call({"XADD", "s" + std::to_string(i), "1-1", "f", "v"}).type == Reply::Type::kBulk);
    REQUIRE(c.call({"SET", "k" + std::to_string(i), "v", "PX", "200"}).str == "OK");
  }
  REQUIRE(c.call({"XADD", "kept", "1-1", "f", "v"}).type == Reply::Type::kBulk);
  for (int i = 0; i < 20; ++i) REQUIRE(c.call({"PEXPIRE", "s" + std::to_string(i), "200"}).integer == 1);
  const fs::path data = server.dir.path() / "data";
  CHECK(stream_folders(data) == 21);
  CHECK(c.call({"DBSIZE"}).integer == 41);
  // No command names the keys: only the sweep can delete them. INFO reads counters only.
  CHECK(eventually([&] { return info_field(c, "stats", "expired_keys") == 40; }));
  CHECK(eventually([&] { return stream_folders(data) == 1; }));
  CHECK(c.call({"DBSIZE"}).integer == 1);
  CHECK(info_field(c, "memory", "used_memory_strings") == 0);
}

TEST_CASE("TTLs survive a restart, and keys that expired while the server was down are gone", "[expire]") {
  runnel::test::TempDir dir("runnel-expire");
  const std::uint16_t port = runnel::test::free_port();
  std::int64_t deadline = 0;
  {
    auto server = start(dir, port, 2);
    Connection c("127.0.0.1", port);
    REQUIRE(c.call({"SET", "long", "v", "EX", "100"}).str == "OK");
    REQUIRE(c.call({"SET", "short", "v", "PX", "300"}).str == "OK");
    REQUIRE(c.call({"SET", "plain", "v"}).str == "OK");
    REQUIRE(c.call({"XADD", "stream-long", "1-1", "f", "v"}).type == Reply::Type::kBulk);
    REQUIRE(c.call({"EXPIRE", "stream-long", "100"}).integer == 1);
    REQUIRE(c.call({"XADD", "stream-short", "1-1", "f", "v"}).type == Reply::Type::kBulk);
    REQUIRE(c.call({"PEXPIRE", "stream-short", "300"}).integer == 1);
    REQUIRE(c.call({"XADD", "stream-persisted", "1-1", "f", "v"}).type == Reply::Type::kBulk);
    REQUIRE(c.call({"EXPIRE", "stream-persisted", "1"}).integer == 1);
    REQUIRE(c.call({"PERSIST", "stream-persisted"}).integer == 1);
    deadline = c.call({"PEXPIRETIME", "long"}).integer;
    REQUIRE(deadline > 0);
    REQUIRE(server.terminate() == 0);
  }
  std::this_thread::sleep_for(600ms);  // the short TTLs pass while the server is down
  // A kill -9 this time, at another --threads: the journals are replayed and rehomed.
  {
    auto server = start(dir, port, 3);
    Connection c("127.0.0.1", port);
    CHECK(c.call({"PEXPIRETIME", "long"}).integer == deadline);
    const std::int64_t ttl = c.call({"TTL", "long"}).integer;
    CHECK(ttl > 90);
    CHECK(ttl <= 100);
    CHECK(c.call({"EXISTS", "short"}).integer == 0);
    CHECK(c.call({"TTL", "plain"}).integer == -1);
    CHECK(c.call({"TTL", "stream-long"}).integer > 90);
    CHECK(c.call({"EXISTS", "stream-short"}).integer == 0);
    CHECK(c.call({"TTL", "stream-persisted"}).integer == -1);
    CHECK(c.call({"XLEN", "stream-persisted"}).integer == 1);
    CHECK(c.call({"DBSIZE"}).integer == 4);
    CHECK(stream_folders(dir.path() / "data") == 2);
    REQUIRE(c.call({"SET", "after", "v", "EX", "200"}).str == "OK");
    REQUIRE(::kill(server.pid(), SIGKILL) == 0);
  }
  {
    auto server = start(dir, port, 1);
    Connection c("127.0.0.1", port);
    CHECK(c.call({"TTL", "after"}).integer > 190);
    CHECK(c.call({"PEXPIRETIME", "long"}).integer == deadline);
    CHECK(c.call({"DBSIZE"}).integer == 5);
    // The journals of shards that no longer exist were folded into the others and deleted.
    CHECK(fs::exists(dir.path() / "data" / "keys" / "0"));
    CHECK_FALSE(fs::exists(dir.path() / "data" / "keys" / "1"));
    CHECK_FALSE(fs::exists(dir.path() / "data" / "keys" / "2"));
  }
}

TEST_CASE("Past --maxmemory-strings string writes get -OOM, and reads, deletes and streams go on", "[expire][limits]") {
  runnel::test::RunnelServer server({"--maxmemory-strings", "20000"}, 2);
  Connection c("127.0.0.1", server.port);
  const std::string value(1000, 'x');
  std::optional<std::string> refused;
  int stored = 0;
  for (int i = 0; i < 100 && !refused; ++i) {
    const Reply r = c.call({"SET", "k" + std::to_string(i), value});
    if (r.type == Reply::Type::kError) {
      refused = r.str;
    } else {
      ++stored;
    }
  }
  REQUIRE(refused);
  CHECK(*refused == "OOM command not allowed when used memory > 'maxmemory-strings'.");
  CHECK(stored >= 18);  // about 20000 / (1000 + 64 + the key)
  CHECK(stored <= 20);
  CHECK(c.call({"APPEND", "k0", "y"}).str == *refused);
  CHECK(c.call({"MSET", "a", "1", "b", "2"}).str == *refused);
  // A SETRANGE far out asks for its zeros in one go: refused whatever was there before.
  CHECK(c.call({"DEL", "k5"}).integer == 1);
  CHECK(c.call({"SETRANGE", "zeros", "100000000", "x"}).str == *refused);
  CHECK(c.call({"EXISTS", "zeros"}).integer == 0);
  CHECK(c.call({"GET", "k0"}).str == value);
  CHECK(c.call({"XADD", "s", "1-1", "f", value}).type == Reply::Type::kBulk);  // streams live on disk
  CHECK(c.call({"DEL", "k0", "k1"}).integer == 2);
  CHECK(c.call({"SET", "k0", value}).str == "OK");
  // The limit is live.
  CHECK(c.call({"CONFIG", "SET", "maxmemory-strings", "0"}).str == "OK");
  CHECK(c.call({"SET", "more", value}).str == "OK");
}
