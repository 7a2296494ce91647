// runnel-bench against a real runnel-server: each workload does what it says (the server's
// state shows it), reports it as JSON, and bad arguments, an unreachable server and error
// replies end the run with a message.
#include <catch2/catch.hpp>


#include <cstdio>
#include <string>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::test::RunnelServer;

namespace {

struct Run {
  int status = -1;
  std::string out;  // stdout, then stderr
};

// Runs runnel-bench with `args` (bounded by 120 s), capturing its output.
Run bench(const std::string& args) {
  auto run = runnel::test::run_command(std::string(RUNNEL_BENCH_PATH) + " " + args, 120);
  return Run{run.status, std::move(run.output)};
}

// The number after "field": in the JSON's phase `phase` (0 = first).
double json_number(const std::string& json, const std::string& field, int phase = 0) {
  std::size_t at = json.find("\"phases\"");
  REQUIRE(at != std::string::npos);
  for (int i = 0; i <= phase; ++i) {
    at = json.find("{\"name\"", at + 1);
    REQUIRE(at != std::string::npos);
  }
  at = json.find("\"" + field + "\":", at);
  REQUIRE(at != std::string::npos);
  return std::stod(json.substr(at + field.size() + 3));
}

std::string port_args(const RunnelServer& server) { return "-p " + std::to_string(server.port) + " -q --json"; }

}  // namespace

TEST_CASE("runnel-bench produce writes exactly --count entries, over --streams keys", "[bench]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  Run run = bench("produce " + port_args(server) + " -c 4 -P 8 -n 2000 --key one");
  INFO(run.out);
  REQUIRE(run.status == 0);
  CHECK(json_number(run.out, "ops") == 2000);
  CHECK(json_number(run.out, "samples") == 2000);
  CHECK(json_number(run.out, "p99") > 0);
  CHECK(c.call({"XLEN", "one"}).integer == 2000);

  run = bench("produce " + port_args(server) + " -c 2 -P 4 -n 400 --streams 4 --key many --fields 3 --value-size 100");
  REQUIRE(run.status == 0);
  for (int s = 0; s < 4; ++s) CHECK(c.call({"XLEN", "many:" + std::to_string(s)}).integer == 100);
  const auto entry = c.call({"XRANGE", "many:0", "-", "+", "COUNT", "1"});
  REQUIRE(entry.elements.size() == 1);
  CHECK(entry.elements[0].elements[1].elements.size() == 6);             // 3 fields
  CHECK(entry.elements[0].elements[1].elements[1].str == std::string(100, 'v'));
}

TEST_CASE("runnel-bench strings sends SET and GET in turn over --keys keys", "[bench]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  Run run = bench("strings " + port_args(server) + " -c 4 -P 8 -n 2000 --keys 50 --key sk --value-size 10");
  INFO(run.out);
  REQUIRE(run.status == 0);
  CHECK(json_number(run.out, "ops") == 2000);
  CHECK(c.call({"DBSIZE"}).integer == 50);
  CHECK(c.call({"GET", "sk:0"}).str == std::string(10, 'v'));
  CHECK(c.call({"TYPE", "sk:49"}).str == "string");
}

TEST_CASE("runnel-bench produce --idmp sends XADD IDMP with a new idempotent ID each time", "[bench]") {
  RunnelServer server({}, 2);
  Run run = bench("produce " + port_args(server) + " -n 2000 -c 4 -P 8 --idmp --key idem");
  INFO(run.out);
  REQUIRE(run.status == 0);
  Connection c("127.0.0.1", server.port);
  CHECK(c.call({"XLEN", "idem"}).integer == 2000);  // no XADD taken for another's retry
  const auto info = c.call({"XINFO", "STREAM", "idem"});
  std::int64_t added = -1;
  for (std::size_t i = 0; i + 1 < info.elements.size(); i += 2) {
    if (info.elements[i].str == "iids-added") added = info.elements[i + 1].integer;
  }
  CHECK(added == 2000);
}

TEST_CASE("runnel-bench consume and fanout deliver and acknowledge every entry", "[bench]") {
  RunnelServer server({}, 2);
  Connection c("127.0.0.1", server.port);
  Run run = bench("consume " + port_args(server) + " --consumers 3 --batch 50 --prefill 1000 --key q");
  INFO(run.out);
  REQUIRE(run.status == 0);
  CHECK(json_number(run.out, "ops") == 1000);
  CHECK(c.call({"XPENDING", "q", "g0"}).elements.at(0).integer == 0);  // all acknowledged

  // With CLAIM (Redis 8.4), or an XAUTOCLAIM with each read: one consumer acknowledges each
  // batch before its next read, so nothing is claimed twice and every entry counts once.
  for (const char* mode : {"--claim 0", "--autoclaim 0"}) {
    run = bench(std::string("consume ") + port_args(server) + " --consumers 1 --batch 50 --prefill 1000 --key q " + mode);
    INFO(mode << ": " << run.out);
    REQUIRE(run.status == 0);
    CHECK(json_number(run.out, "ops") == 1000);
    CHECK(c.call({"XPENDING", "q", "g0"}).elements.at(0).integer == 0);
  }
  CHECK(bench("consume " + port_args(server) + " --claim 5 --autoclaim 5").status != 0);  // one or the other

  run = bench("fanout " + port_args(server) + " --groups 3 --prefill 500 --key f");
  INFO(run.out);
  REQUIRE(run.status == 0);
  CHECK(json_number(run.out, "ops") == 1500);
  for (int g = 0; g < 3; ++g) CHECK(c.call({"XPENDING", "f", "g" + std::to_string(g)}).elements.at(0).integer == 0);
}

TEST_CASE("runnel-bench latency and isolation measure entries end to end", "[bench]") {
  RunnelServer server({}, 2);
  Run run = bench("latency " + port_args(server) + " -d 1 --rate 500 --producers 2 --consumers 2 --key lat");
  INFO(run.out);
  REQUIRE(run.status == 0);
  const double delivered = json_number(run.out, "ops");
  CHECK(delivered >= 400);
  CHECK(json_number(run.out, "samples") == delivered);  // one latency per entry
  Connection c("127.0.0.1", server.port);
  CHECK(c.call({"XLEN", "lat"}).integer == static_cast<std::int64_t>(delivered));

  run = bench("isolation " + port_args(server) + " -d 0.5 -c 2 -P 16 --key iso");
  INFO(run.out);
  REQUIRE(run.status == 0);
  CHECK(run.out.find("\"online quiet\"") != std::string::npos);
  CHECK(json_number(run.out, "ops", 0) >= 400);  // online alone: 1,000/s for 0.5 s
  CHECK(json_number(run.out, "ops", 1) >= 400);  // online under the flood
  CHECK(json_number(run.out, "ops", 2) > 1000);  // the flood
  CHECK(c.call({"XLEN", "iso:batch"}).integer > 1000);
}

TEST_CASE("runnel-bench reports bad arguments, an unreachable server and error replies", "[bench]") {
  Run run = bench("produce -P 0");
  CHECK(run.status != 0);
  CHECK(run.out.find("--pipeline") != std::string::npos);

  run = bench("produce -p " + std::to_string(runnel::test::free_port()) + " -d 1 -q");
  CHECK(run.status == 1);
  CHECK(run.out.find("cannot connect") != std::string::npos);

  RunnelServer locked({"--requirepass", "secret"});
  run = bench("produce -p " + std::to_string(locked.port) + " -d 5 -q");
  CHECK(run.status == 1);
  CHECK(run.out.find("XADD got an error reply: NOAUTH") != std::string::npos);
}
