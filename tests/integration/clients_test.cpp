// Real clients against runnel-server: redis-cli (interactive, in a pty) and redis-py, and the
// commands other client libraries send on connect.
#include <catch2/catch.hpp>

#include <cstdlib>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::test::RunnelServer;

namespace {
int run(const std::string& command) {
  const int status = std::system(("timeout 280 " + command).c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
std::string script(const std::string& name) {
  return runnel::test::source_dir() + "/tests/integration/" + name;
}
}  // namespace

TEST_CASE("redis-cli works interactively, and its hints show the arguments of every command, "
          "newer ones included",
          "[clients]") {
  RunnelServer server;
  REQUIRE(run("/usr/bin/python3 " + script("redis_cli_session.py") + " " +
              std::to_string(server.port)) == 0);
}

TEST_CASE("redis-cli runs one-shot commands", "[clients]") {
  RunnelServer server;
  const std::string cli = "/usr/bin/redis-cli -p " + std::to_string(server.port) + " ";
  REQUIRE(run(cli + "XADD s 7-1 a b | grep -qx 7-1") == 0);
  REQUIRE(run(cli + "--no-raw XLEN s | grep -qx '(integer) 1'") == 0);
  REQUIRE(run(cli + "COMMAND DOCS | grep -q xadd") == 0);
}

TEST_CASE("redis-py connects, with and without a password", "[clients]") {
  {
    RunnelServer server;
    REQUIRE(run("/usr/bin/python3 " + script("redis_py_smoke.py") + " " +
                std::to_string(server.port)) == 0);
  }
  {
    RunnelServer server({"--requirepass", "pw"});
    REQUIRE(run("/usr/bin/python3 " + script("redis_py_smoke.py") + " " +
                std::to_string(server.port) + " pw") == 0);
  }
}

TEST_CASE("ioredis and node-redis connect, produce and read", "[clients]") {
  RunnelServer server;
  const std::string dir = runnel::test::source_dir() + "/tests/clients/node";
  REQUIRE(run("node " + dir + "/clients.mjs " + std::to_string(server.port)) == 0);
}

TEST_CASE("What ioredis and node-redis send on connect is accepted", "[clients]") {
  RunnelServer server;
  Connection c("127.0.0.1", server.port);
  REQUIRE(c.call({"CLIENT", "SETINFO", "LIB-NAME", "ioredis"}).str == "OK");
  REQUIRE(c.call({"CLIENT", "SETINFO", "LIB-VER", "5.3.2"}).str == "OK");
  const auto info = c.call({"INFO"});
  REQUIRE(info.type == runnel::protocol::Reply::Type::kBulk);  // ioredis's ready check
  REQUIRE(info.str.find("redis_version:") != std::string::npos);
  REQUIRE(info.str.find("loading:0") != std::string::npos);
  const std::string list = c.call({"CLIENT", "LIST"}).str;
  REQUIRE(list.find("lib-name=ioredis lib-ver=5.3.2") != std::string::npos);
}

TEST_CASE("A work queue on XREADGROUP CLAIM alone survives a killed consumer (redis-py)", "[clients][newer]") {
  RunnelServer server({}, 2);
  runnel::test::TempDir work("work-queue-claim");
  REQUIRE(run("/usr/bin/python3 " + script("work_queue.py") + " " + std::to_string(server.port) + " " +
              work.path().string() + " claim") == 0);
}

TEST_CASE("A work queue of 100,000 jobs survives a killed consumer (redis-py)", "[clients]") {
  RunnelServer server({}, 2);
  runnel::test::TempDir work("work-queue");
  REQUIRE(run("/usr/bin/python3 " + script("work_queue.py") + " " + std::to_string(server.port) +
              " " + work.path().string()) == 0);
}
