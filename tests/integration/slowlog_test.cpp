// SLOWLOG against redis-server: with every command logged (slowlog-log-slower-than 0), the
// same commands leave the same entries, argument for argument: cut where Redis cuts them,
// passwords redacted, a transaction's commands one by one, the client's name with each.
#include <catch2/catch.hpp>

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <runnel/client/connection.hpp>

#include "server_process.hpp"

using runnel::client::Connection;
using runnel::protocol::Reply;

namespace {

// Each entry of SLOWLOG GET -1, oldest first: its arguments, then the client's name.
std::vector<std::vector<std::string>> run_and_read(std::uint16_t port) {
  Connection admin("127.0.0.1", port);
  REQUIRE(admin.call({"CONFIG", "SET", "slowlog-log-slower-than", "0"}).str == "OK");
  REQUIRE(admin.call({"SLOWLOG", "RESET"}).str == "OK");
  {
    Connection c("127.0.0.1", port);
    c.call({"CLIENT", "SETNAME", "tester"});
    c.call({"XADD", "s", "1-1", "f", "v"});
    c.call({"SET", "k", "v"});
    c.call({"GET", "k"});
    c.call({"XADD", "s", "2-1", "f", std::string(200, 'x')});
    std::vector<std::string> mset{"MSET"};
    for (int i = 0; i < 20; ++i) {
      mset.push_back("key" + std::to_string(i));
      mset.push_back("value" + std::to_string(i));
    }
    const std::vector<std::string_view> views(mset.begin(), mset.end());
    c.call(std::span<const std::string_view>(views));  // 41 arguments: 31 kept, then how many more
    c.call({"MULTI"});
    c.call({"SET", "a", "1"});
    c.call({"INCR", "a"});
    c.call({"PING"});
    c.call({"EXEC"});
    c.call({"AUTH", "secret"});
    c.call({"HELLO", "2", "AUTH", "default", "secret"});
    c.call({"CONFIG", "SET", "requirepass", "", "maxclients", "10000"});
    c.call({"XRANGE", "s", "-", "+", "COUNT", "1"});
    c.call({"DEL", "k", "s"});
  }
  const Reply got = admin.call({"SLOWLOG", "GET", "-1"});
  REQUIRE(got.type == Reply::Type::kArray);
  std::vector<std::vector<std::string>> entries;
  std::int64_t last_id = -1;
  for (auto it = got.elements.rbegin(); it != got.elements.rend(); ++it) {
    REQUIRE(it->elements.size() == 6);
    CHECK(it->elements[0].integer > last_id);  // ids grow
    last_id = it->elements[0].integer;
    CHECK(it->elements[1].integer > 1700000000);  // a Unix time in seconds
    CHECK(it->elements[2].integer >= 0);
    std::vector<std::string> entry;
    for (const Reply& arg : it->elements[3].elements) entry.push_back(arg.str);
    entry.push_back("client name: " + it->elements[5].str);
    CHECK(it->elements[4].str.rfind("127.0.0.1:", 0) == 0);
    entries.push_back(std::move(entry));
  }
  CHECK(admin.call({"SLOWLOG", "LEN"}).integer == static_cast<std::int64_t>(got.elements.size()) + 1);
  // Off, then a shorter log.
  REQUIRE(admin.call({"CONFIG", "SET", "slowlog-log-slower-than", "-1"}).str == "OK");
  const std::int64_t len = admin.call({"SLOWLOG", "LEN"}).integer;
  admin.call({"PING"});
  CHECK(admin.call({"SLOWLOG", "LEN"}).integer == len);
  REQUIRE(admin.call({"CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "3"}).str == "OK");
  admin.call({"PING"});
  CHECK(admin.call({"SLOWLOG", "LEN"}).integer == 3);
  CHECK(admin.call({"SLOWLOG", "GET", "1"}).elements.size() == 1);
  REQUIRE(admin.call({"CONFIG", "SET", "slowlog-log-slower-than", "10000", "slowlog-max-len", "128"}).str == "OK");
  return entries;
}

}  // namespace

TEST_CASE("SLOWLOG keeps what redis-server keeps, argument for argument", "[slowlog]") {
  std::vector<std::vector<std::string>> expected;
  {
    runnel::test::RedisServer redis;
    expected = run_and_read(redis.port);
  }
  for (unsigned threads : {1u, 2u}) {
    INFO("--threads " << threads);
    runnel::test::RunnelServer runnel({}, threads);
    const auto actual = run_and_read(runnel.port);
    const auto names = [](const std::vector<std::vector<std::string>>& entries) {
      std::string out;
      for (const auto& e : entries) out += e.front() + " ";
      return out;
    };
    INFO("redis-server: " << names(expected));
    INFO("runnel:       " << names(actual));
    REQUIRE(actual.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      INFO("entry " << i);
      CHECK(actual[i] == expected[i]);
    }
  }
  CHECK(expected.size() > 10);
}

namespace {

// INFO commandstats after the same commands: each command's calls, rejected and failed
// calls ("cmdstat_xadd:calls=2,rejected_calls=0,failed_calls=1"), the times left out.
std::map<std::string, std::string> command_stats(std::uint16_t port) {
  Connection c("127.0.0.1", port);
  REQUIRE(c.call({"CONFIG", "RESETSTAT"}).str == "OK");
  c.call({"XADD", "s", "1-1", "f", "v"});
  c.call({"XADD", "s", "1-1", "f", "v"});  // an error: failed
  c.call({"XLEN", "s"});
  c.call({"XLEN"});                        // wrong arity: rejected
  c.call({"GET", "s"});                    // WRONGTYPE: failed
  c.call({"SET", "k", "1"});
  c.call({"INCR", "k"});
  c.call({"CONFIG", "GET", "maxclients"});
  c.call({"MULTI"});
  c.call({"XADD", "s", "2-1", "f", "v"});
  c.call({"INCR", "k"});
  c.call({"EXEC"});
  c.call({"DEL", "k", "s", "nosuch"});
  c.call({"PUBLISH", "channel", "m"});
  c.call({"PING"});
  const std::string text = c.call({"INFO", "commandstats"}).str;
  std::map<std::string, std::string> out;
  std::size_t at = 0;
  while ((at = text.find("cmdstat_", at)) != std::string::npos) {
    const std::size_t colon = text.find(':', at);
    const std::size_t end = text.find("\r\n", at);
    const std::string name = text.substr(at, colon - at);
    std::string fields;
    for (const char* field : {"calls=", "rejected_calls=", "failed_calls="}) {
      std::size_t f = text.find(std::string(",") + field, colon);
      if (std::string_view(field) == "calls=") f = text.find(field, colon) - 1;
      const std::size_t value_end = std::min(text.find(',', f + 1), end);
      fields += text.substr(f + 1, value_end - f - 1) + " ";
    }
    CHECK(text.substr(colon, end - colon).find("usec_per_call=") != std::string::npos);
    out[name] = fields;
    at = end;
  }
  return out;
}

}  // namespace

TEST_CASE("INFO commandstats counts calls, rejected and failed calls as redis-server does", "[slowlog][commandstats]") {
  std::map<std::string, std::string> expected;
  {
    runnel::test::RedisServer redis;
    expected = command_stats(redis.port);
  }
  for (unsigned threads : {1u, 2u}) {
    INFO("--threads " << threads);
    runnel::test::RunnelServer runnel({}, threads);
    CHECK(command_stats(runnel.port) == expected);
  }
  CHECK(expected.size() > 8);
}
