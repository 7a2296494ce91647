// The typed stream API (runnel/client/streams.hpp): StreamId's text form and order, the
// arguments each builder encodes, each parser against wrong shapes, and every typed call
// against redis-server and runnel-server, each spoken to in RESP2 and in RESP3.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <runnel/client/streams.hpp>
#include <runnel/client/sync_client.hpp>

#include "server_process.hpp"

using runnel::client::AutoClaimIdsResult;
using runnel::client::AutoClaimResult;
using runnel::client::ClientOptions;
using runnel::client::Command;
using runnel::client::ConsumerInfo;
using runnel::client::Entry;
using runnel::client::Fields;
using runnel::client::GroupInfo;
using runnel::client::Ok;
using runnel::client::PendingEntry;
using runnel::client::PendingSummary;
using runnel::client::RangeBound;
using runnel::client::Reply;
using runnel::client::Request;
using runnel::client::ServerError;
using runnel::client::StreamEntries;
using runnel::client::StreamId;
using runnel::client::StreamInfo;
using runnel::client::SyncClient;
using runnel::client::Transaction;
using runnel::client::TransactionResult;
using runnel::client::TrimOptions;
using runnel::client::UnexpectedReply;
using runnel::client::XAddOptions;
using runnel::client::XClaimOptions;
using runnel::client::XPendingOptions;
using runnel::client::XReadGroupOptions;
using runnel::client::XReadOptions;
namespace cmd = runnel::client::cmd;
using namespace std::chrono_literals;

// Failures print IDs as the server writes them.
template <>
struct Catch::StringMaker<StreamId> {
  static std::string convert(const StreamId& id) { return id.to_string(); }
};

namespace {

// Adds entries 1-0, 2-0, ... n-0 to `key`, each with the field n = its number.
template <class Client>
void add_numbered(Client& client, std::string_view key, std::uint64_t n) {
  XAddOptions at;
  for (std::uint64_t i = 1; i <= n; ++i) {
    at.id = StreamId{i, 0};
    client.xadd(key, {{"n", std::to_string(i)}}, at);
  }
}

constexpr std::uint64_t kTop = std::numeric_limits<std::uint64_t>::max();

// ---------------------------------------------------------------------------------------------
// Hand-built replies

Reply scalar(Reply::Type type, std::string text) {
  Reply reply;
  reply.type = type;
  reply.str = std::move(text);
  return reply;
}
Reply bulk(std::string text) {
  return scalar(Reply::Type::kBulk, std::move(text));
}
Reply simple(std::string text) {
  return scalar(Reply::Type::kSimple, std::move(text));
}
Reply error(std::string text) {
  return scalar(Reply::Type::kError, std::move(text));
}
Reply nil() {
  return Reply{};
}
Reply integer(std::int64_t value) {
  Reply reply;
  reply.type = Reply::Type::kInteger;
  reply.integer = value;
  return reply;
}
Reply aggregate(Reply::Type type, std::vector<Reply> elements) {
  Reply reply;
  reply.type = type;
  reply.elements = std::move(elements);
  return reply;
}
Reply array(std::vector<Reply> elements) {
  return aggregate(Reply::Type::kArray, std::move(elements));
}
Reply map(std::vector<Reply> elements) {
  return aggregate(Reply::Type::kMap, std::move(elements));
}

// The encoded frame of a command, for comparing what a builder wrote.
template <class... Args>
std::string frame(std::string_view name, const Args&... args) {
  return Command(name, args...).encoded();
}

// ---------------------------------------------------------------------------------------------
// Live servers

struct Target {
  const char* server;
  std::uint16_t port;
  bool resp3;
};

ClientOptions options_for(const Target& target) {
  ClientOptions options;
  options.port = target.port;
  options.resp3 = target.resp3;
  return options;
}

bool is_redis(const Target& target) {
  return std::string_view(target.server) == "redis-server";
}

// Runs `body(client, target)` against redis-server and runnel-server, each in RESP2 and in
// RESP3: four runs, each on an emptied keyspace, each failure labelled with its target.
template <class Body>
void on_each_target(Body&& body) {
  runnel::test::RedisServer redis;
  runnel::test::RunnelServer runnel;
  const Target targets[] = {{"redis-server", redis.port, false},
                            {"redis-server", redis.port, true},
                            {"runnel-server", runnel.port, false},
                            {"runnel-server", runnel.port, true}};
  for (const auto& target : targets) {
    INFO(target.server << " in RESP" << (target.resp3 ? 3 : 2));
    SyncClient client(options_for(target));
    REQUIRE(client.protocol() == (target.resp3 ? 3 : 2));
    client.execute("FLUSHALL");
    body(client, target);
  }
}

// Runs `call` and returns the ServerError's code it throws ("" if it throws none).
template <class Call>
std::string server_error_code(Call&& call) {
  try {
    call();
  } catch (const ServerError& e) {
    return e.code();
  }
  return "";
}

std::vector<StreamId> ids_of(const std::vector<Entry>& entries) {
  std::vector<StreamId> ids;
  for (const auto& entry : entries) ids.push_back(entry.id);
  return ids;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// StreamId

TEST_CASE("StreamId parses ms-seq and ms, and refuses anything else", "[client][streams]") {
  CHECK(StreamId::parse("5-3") == StreamId{5, 3});
  CHECK(StreamId::parse("5") == StreamId{5, 0});
  CHECK(StreamId::parse("0-0") == StreamId::min());
  CHECK(StreamId::parse("18446744073709551615-18446744073709551615") == StreamId::max());
  CHECK(StreamId::parse("1526919030474-55") == StreamId{1526919030474, 55});
  for (const char* junk :
       {"", "-", "+", "*", "$", ">", "5-", "-5", "5-*", "a-1", "1-a", "1-2-3", " 1-2", "1-2 ",
        "+1-2", "1--2", "0x10-1", "18446744073709551616-0", "0-18446744073709551616"}) {
    INFO("text: \"" << junk << "\"");
    CHECK_FALSE(StreamId::parse(junk).has_value());
  }
}

TEST_CASE("StreamId formats as ms-seq and round-trips through parse", "[client][streams]") {
  CHECK(StreamId{}.to_string() == "0-0");
  CHECK(StreamId{1526919030474, 55}.to_string() == "1526919030474-55");
  CHECK(StreamId::max().to_string() == "18446744073709551615-18446744073709551615");
  for (const StreamId id : {StreamId{0, 1}, StreamId{7, 0}, StreamId{kTop, 0}, StreamId{0, kTop}}) {
    CHECK(StreamId::parse(id.to_string()) == id);
  }
}

TEST_CASE("StreamId orders by ms, then seq", "[client][streams]") {
  CHECK(StreamId{1, 5} < StreamId{2, 0});
  CHECK(StreamId{2, 0} < StreamId{2, 1});
  CHECK(StreamId{2, 1} == StreamId{2, 1});
  CHECK(StreamId{2, 1} != StreamId{1, 2});
  CHECK(StreamId::min() < StreamId{0, 1});
  CHECK(StreamId{kTop, kTop - 1} < StreamId::max());
  CHECK((StreamId{3, 3} <=> StreamId{3, 3}) == std::strong_ordering::equal);
}

TEST_CASE("StreamId next and prev carry across seq and saturate at the ends", "[client][streams]") {
  CHECK(StreamId{1, 1}.next() == StreamId{1, 2});
  CHECK(StreamId{1, kTop}.next() == StreamId{2, 0});
  CHECK(StreamId::max().next() == StreamId::max());
  CHECK(StreamId{1, 1}.prev() == StreamId{1, 0});
  CHECK(StreamId{2, 0}.prev() == StreamId{1, kTop});
  CHECK(StreamId::min().prev() == StreamId::min());
  static_assert(StreamId{4, 4}.next().prev() == StreamId{4, 4});
}

TEST_CASE("Entry::field finds the first field of a name", "[client][streams]") {
  const Entry entry{{1, 0}, {{"a", "1"}, {"b", "2"}, {"a", "3"}}};
  REQUIRE(entry.field("a") != nullptr);
  CHECK(*entry.field("a") == "1");
  CHECK(*entry.field("b") == "2");
  CHECK(entry.field("c") == nullptr);
}

// ---------------------------------------------------------------------------------------------
// Builders

TEST_CASE("The builders encode each command's arguments in the server's order",
          "[client][streams]") {
  XAddOptions add;
  add.id = StreamId{5, 1};
  add.trim = TrimOptions::max_len(100, true);
  add.trim->limit = 10;
  CHECK(cmd::xadd("s", {{"f", "v"}, {"g", "w"}}, add).command.encoded() ==
        frame("XADD", "s", "MAXLEN", "~", "100", "LIMIT", "10", "5-1", "f", "v", "g", "w"));
  CHECK(cmd::xadd("s", {{"f", "v"}}).command.encoded() == frame("XADD", "s", "*", "f", "v"));
  XAddOptions text_id;
  text_id.id = StreamId{9, 9};  // id_text wins when set
  text_id.id_text = "5-*";
  text_id.trim = TrimOptions::min_id({3, 0});
  CHECK(cmd::xadd_nomkstream("s", {{"f", "v"}}, text_id).command.encoded() ==
        frame("XADD", "s", "NOMKSTREAM", "MINID", "3-0", "5-*", "f", "v"));

  CHECK(cmd::xrange("s").command.encoded() == frame("XRANGE", "s", "-", "+"));
  CHECK(cmd::xrange("s", RangeBound::exclusive({1, 2}), StreamId{3, 4}, 5).command.encoded() ==
        frame("XRANGE", "s", "(1-2", "3-4", "COUNT", "5"));
  CHECK(cmd::xrevrange("s", "+", "1526985054069", 1).command.encoded() ==
        frame("XREVRANGE", "s", "+", "1526985054069", "COUNT", "1"));

  const auto read = cmd::xread({{"a", "0"}, {"b", "$"}}, XReadOptions{10, 250ms});
  CHECK(read.command.encoded() ==
        frame("XREAD", "COUNT", "10", "BLOCK", "250", "STREAMS", "a", "b", "0", "$"));
  CHECK(read.block_ms == 250);
  CHECK(cmd::xread({{"a", "0"}}).block_ms == -1);
  CHECK(cmd::xread({{"a", "0"}}, XReadOptions{{}, 0ms}).block_ms == 0);
  const auto group_read =
      cmd::xreadgroup("g", "c", {{"a", ">"}}, XReadGroupOptions{1, std::nullopt, true});
  CHECK(group_read.command.encoded() ==
        frame("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "a", ">"));
  CHECK(group_read.block_ms == -1);

  CHECK(cmd::xack("s", "g", {{1, 0}, {2, 3}}).command.encoded() ==
        frame("XACK", "s", "g", "1-0", "2-3"));
  CHECK(cmd::xgroup_create("s", "g", "$", true, 7).command.encoded() ==
        frame("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM", "ENTRIESREAD", "7"));
  CHECK(cmd::xgroup_setid("s", "g", "0").command.encoded() ==
        frame("XGROUP", "SETID", "s", "g", "0"));

  XPendingOptions pending;
  pending.idle_ms = 500;
  pending.start = RangeBound::exclusive({1, 0});
  pending.count = 3;
  pending.consumer = "alice";
  CHECK(cmd::xpending("s", "g", pending).command.encoded() ==
        frame("XPENDING", "s", "g", "IDLE", "500", "(1-0", "+", "3", "alice"));
  CHECK(cmd::xpending("s", "g").command.encoded() == frame("XPENDING", "s", "g"));

  XClaimOptions claim;
  claim.idle_ms = 1;
  claim.time_ms = 2;
  claim.retry_count = 3;
  claim.force = true;
  claim.last_id = StreamId{4, 0};
  CHECK(cmd::xclaim_justid("s", "g", "c", 60000, {{1, 0}}, claim).command.encoded() ==
        frame("XCLAIM", "s", "g", "c", "60000", "1-0", "IDLE", "1", "TIME", "2", "RETRYCOUNT", "3",
              "FORCE", "JUSTID", "LASTID", "4-0"));
  CHECK(cmd::xautoclaim_justid("s", "g", "c", 10, {0, 0}, 25).command.encoded() ==
        frame("XAUTOCLAIM", "s", "g", "c", "10", "0-0", "COUNT", "25", "JUSTID"));

  CHECK(cmd::xtrim("s", TrimOptions::max_len(0)).command.encoded() ==
        frame("XTRIM", "s", "MAXLEN", "0"));
  CHECK(cmd::xsetid("s", {10, 0}, 20, StreamId{9, 0}).command.encoded() ==
        frame("XSETID", "s", "10-0", "ENTRIESADDED", "20", "MAXDELETEDID", "9-0"));
  CHECK(cmd::del({"a", "b"}).command.encoded() == frame("DEL", "a", "b"));
}

TEST_CASE("A Transaction is MULTI, its commands and EXEC, sent as one request",
          "[client][streams]") {
  Transaction transaction;
  CHECK(transaction.empty());
  transaction.add(cmd::xadd("s", {{"f", "v"}})).add(Command("XLEN", "s"));
  CHECK(transaction.size() == 2);
  const auto request = transaction.request();
  CHECK(request.replies == 4);
  CHECK(request.block_ms == -1);
  CHECK(request.command.encoded() ==
        frame("MULTI") + frame("XADD", "s", "*", "f", "v") + frame("XLEN", "s") + frame("EXEC"));
  CHECK(Transaction().request().command.encoded() == frame("MULTI") + frame("EXEC"));
  CHECK_THROWS_AS(transaction.add(transaction.request()), std::invalid_argument);
  CHECK_THROWS_AS(transaction.add(transaction.request().command), std::invalid_argument);
  CHECK_THROWS_AS(transaction.add(Command()), std::invalid_argument);
  CHECK(transaction.size() == 2);
}

// ---------------------------------------------------------------------------------------------
// Parsers against hand-built replies

namespace {

template <class T>
void check_refuses(const Request<T>& request, Reply reply, const char* command) {
  INFO(command << " given " << runnel::protocol::to_display_string(reply));
  CHECK_THROWS_AS(request.parse(Reply(reply)), UnexpectedReply);
  CHECK_THROWS_WITH(request.parse(Reply(reply)), Catch::Contains(command));
}

}  // namespace

TEST_CASE("Each parser throws UnexpectedReply, naming its command, on a wrong-shaped reply",
          "[client][streams]") {
  const auto entry = [] { return array({bulk("1-0"), array({bulk("f"), bulk("v")})}); };

  check_refuses(cmd::xadd("s", {}), integer(1), "XADD");
  check_refuses(cmd::xadd("s", {}), nil(), "XADD");
  check_refuses(cmd::xadd("s", {}), bulk("not-an-id"), "XADD");
  check_refuses(cmd::xadd_nomkstream("s", {}), array({}), "XADD");

  check_refuses(cmd::xrange("s"), integer(3), "XRANGE");
  check_refuses(cmd::xrange("s"), array({bulk("1-0")}), "XRANGE");
  check_refuses(cmd::xrange("s"), array({array({bulk("1-0")})}), "XRANGE");
  check_refuses(cmd::xrange("s"), array({array({bulk("1-0"), array({bulk("odd")})})}), "XRANGE");
  check_refuses(cmd::xrange("s"), array({array({bulk("x"), array({})})}), "XRANGE");
  check_refuses(cmd::xrange("s"), array({array({bulk("1-0"), array({bulk("f"), integer(1)})})}),
                "XRANGE");
  check_refuses(cmd::xrange("s"), array({nil()}), "XRANGE");
  check_refuses(cmd::xrevrange("s"), bulk("x"), "XREVRANGE");

  check_refuses(cmd::xread({{"s", "0"}}), integer(0), "XREAD");
  check_refuses(cmd::xread({{"s", "0"}}), array({bulk("s")}), "XREAD");
  check_refuses(cmd::xread({{"s", "0"}}), array({array({bulk("s")})}), "XREAD");
  check_refuses(cmd::xread({{"s", "0"}}), array({array({integer(1), array({entry()})})}), "XREAD");
  check_refuses(cmd::xread({{"s", "0"}}), map({bulk("s")}), "XREAD");
  check_refuses(cmd::xread({{"s", "0"}}), map({bulk("s"), integer(1)}), "XREAD");
  check_refuses(cmd::xreadgroup("g", "c", {{"s", ">"}}), map({bulk("s"), array({bulk("1-0")})}),
                "XREADGROUP");

  check_refuses(cmd::xack("s", "g", {}), integer(-1), "XACK");
  check_refuses(cmd::xack("s", "g", {}), simple("OK"), "XACK");
  check_refuses(cmd::xgroup_create("s", "g", "$"), integer(1), "XGROUP CREATE");
  check_refuses(cmd::xgroup_create("s", "g", "$"), simple("QUEUED"), "XGROUP CREATE");
  check_refuses(cmd::xgroup_setid("s", "g", "$"), bulk("OK"), "XGROUP SETID");
  check_refuses(cmd::xgroup_destroy("s", "g"), integer(2), "XGROUP DESTROY");
  check_refuses(cmd::xgroup_createconsumer("s", "g", "c"), nil(), "XGROUP CREATECONSUMER");
  check_refuses(cmd::xgroup_delconsumer("s", "g", "c"), bulk("many"), "XGROUP DELCONSUMER");

  check_refuses(cmd::xpending("s", "g"), array({integer(0), nil(), nil()}), "XPENDING");
  check_refuses(cmd::xpending("s", "g"), array({bulk("x"), nil(), nil(), nil()}), "XPENDING");
  check_refuses(cmd::xpending("s", "g"),
                array({integer(1), bulk("1-0"), bulk("1-0"), array({array({bulk("c")})})}),
                "XPENDING");
  check_refuses(cmd::xpending("s", "g", XPendingOptions{}),
                array({array({bulk("1-0"), bulk("c"), integer(1)})}), "XPENDING");
  check_refuses(cmd::xpending("s", "g", XPendingOptions{}),
                array({array({bulk("1-0"), bulk("c"), integer(-5), integer(1)})}), "XPENDING");
  check_refuses(cmd::xpending("s", "g", XPendingOptions{}), nil(), "XPENDING");

  check_refuses(cmd::xclaim("s", "g", "c", 0, {}), map({}), "XCLAIM");
  check_refuses(cmd::xclaim_justid("s", "g", "c", 0, {}), array({entry()}), "XCLAIM");
  check_refuses(cmd::xautoclaim("s", "g", "c", 0, {}), array({bulk("0-0")}), "XAUTOCLAIM");
  check_refuses(cmd::xautoclaim("s", "g", "c", 0, {}),
                array({bulk("0-0"), array({}), array({}), array({})}), "XAUTOCLAIM");
  check_refuses(cmd::xautoclaim("s", "g", "c", 0, {}),
                array({bulk("0-0"), array({}), array({integer(1)})}), "XAUTOCLAIM");
  check_refuses(cmd::xautoclaim_justid("s", "g", "c", 0, {}),
                array({bulk("0-0"), array({entry()}), array({})}), "XAUTOCLAIM");

  check_refuses(cmd::xinfo_stream("s"), array({bulk("length")}), "XINFO STREAM");
  check_refuses(cmd::xinfo_stream("s"), map({bulk("groups"), integer(1)}), "XINFO STREAM");
  check_refuses(cmd::xinfo_stream("s"), map({bulk("length"), bulk("long")}), "XINFO STREAM");
  check_refuses(cmd::xinfo_stream("s"),
                map({bulk("length"), integer(1), bulk("first-entry"), integer(1)}), "XINFO STREAM");
  check_refuses(cmd::xinfo_groups("s"), map({}), "XINFO GROUPS");
  check_refuses(cmd::xinfo_groups("s"), array({map({bulk("consumers"), integer(1)})}),
                "XINFO GROUPS");
  check_refuses(cmd::xinfo_groups("s"),
                array({map({bulk("name"), bulk("g"), bulk("lag"), bulk("-")})}), "XINFO GROUPS");
  check_refuses(cmd::xinfo_consumers("s", "g"), array({array({bulk("name")})}), "XINFO CONSUMERS");
  check_refuses(cmd::xinfo_consumers("s", "g"),
                array({map({bulk("name"), bulk("c"), bulk("inactive"), integer(-2)})}),
                "XINFO CONSUMERS");

  check_refuses(cmd::xlen("s"), nil(), "XLEN");
  check_refuses(cmd::xdel("s", {}), array({}), "XDEL");
  check_refuses(cmd::xtrim("s", {}), simple("OK"), "XTRIM");
  check_refuses(cmd::xsetid("s", {}), integer(1), "XSETID");
  check_refuses(cmd::del({"s"}), nil(), "DEL");
  check_refuses(cmd::ping(), integer(1), "PING");
  check_refuses(Transaction().request(), simple("OK"), "MULTI/EXEC");
  check_refuses(Transaction().request(), array({simple("OK"), integer(1)}), "MULTI/EXEC");
}

TEST_CASE("The parsers take the RESP3 shapes: maps, booleans, verbatim strings, the null",
          "[client][streams]") {
  // XREAD in RESP3: a map stream -> entries, a deleted entry as [id, _].
  auto read =
      cmd::xreadgroup("g", "c", {{"s", "0"}})
          .parse(map({bulk("s"),
                      array({array({bulk("1-1"), nil()}),
                             array({bulk("2-0"),
                                    array({bulk("f"), scalar(Reply::Type::kVerbatim, "v")})})})}));
  REQUIRE(read.size() == 1);
  CHECK(read[0].stream == "s");
  REQUIRE(read[0].entries.size() == 2);
  CHECK(read[0].entries[0].deleted);
  CHECK(read[0].entries[0].fields.empty());
  CHECK(read[0].entries[1].fields == Fields{{"f", "v"}});

  Reply yes;
  yes.type = Reply::Type::kBoolean;
  yes.integer = 1;
  CHECK(cmd::xgroup_destroy("s", "g").parse(std::move(yes)));
  CHECK(cmd::xread({{"s", "$"}}).parse(nil()).empty());
  CHECK(cmd::xrange("s", "-", "+", 0).parse(nil()).empty());  // COUNT 0 answers nil
}

TEST_CASE("XINFO CONSUMERS takes Redis 7.2's inactive field, -1 as never, and ignores others",
          "[client][streams]") {
  const auto consumers = cmd::xinfo_consumers("s", "g").parse(array({
      map({bulk("name"), bulk("alice"), bulk("pending"), integer(2), bulk("idle"), integer(30),
           bulk("inactive"), integer(25), bulk("shiny-new-field"), array({})}),
      map({bulk("name"), bulk("bob"), bulk("pending"), integer(0), bulk("idle"), integer(9),
           bulk("inactive"), integer(-1)}),
      array({bulk("idle"), integer(4), bulk("name"), bulk("carol")}),
  }));
  REQUIRE(consumers.size() == 3);
  CHECK(consumers[0].name == "alice");
  CHECK(consumers[0].pending == 2);
  CHECK(consumers[0].idle_ms == 30);
  CHECK(consumers[0].inactive_ms == 25u);
  CHECK(consumers[1].name == "bob");
  CHECK_FALSE(consumers[1].inactive_ms.has_value());
  CHECK(consumers[2].name == "carol");
  CHECK(consumers[2].idle_ms == 4);
  CHECK_FALSE(consumers[2].inactive_ms.has_value());
}

TEST_CASE("EXEC's parser: a failed command in place, nil as aborted, EXECABORT as ServerError",
          "[client][streams]") {
  const auto request = Transaction().add(cmd::xlen("s")).add(cmd::xlen("s")).request();
  const auto result = request.parse(array({simple("OK"), simple("QUEUED"), simple("QUEUED"),
                                           array({integer(3), error("WRONGTYPE no")})}));
  CHECK_FALSE(result.aborted);
  REQUIRE(result.replies.size() == 2);
  CHECK(result.get(0, cmd::xlen("s")) == 3);
  try {
    (void)result.get(1, cmd::xlen("s"));
    FAIL("no ServerError");
  } catch (const ServerError& e) {
    CHECK(e.code() == "WRONGTYPE");
  }
  CHECK_THROWS_AS(result.get(2, cmd::xlen("s")), std::out_of_range);

  const auto aborted =
      request.parse(array({simple("OK"), simple("QUEUED"), simple("QUEUED"), nil()}));
  CHECK(aborted.aborted);
  CHECK(aborted.replies.empty());
  CHECK_THROWS_AS(aborted.get(0, cmd::xlen("s")), std::out_of_range);

  try {
    (void)request.parse(array({simple("OK"), simple("QUEUED"), error("ERR unknown command"),
                               error("EXECABORT Transaction discarded")}));
    FAIL("no ServerError");
  } catch (const ServerError& e) {
    CHECK(e.code() == "EXECABORT");
    CHECK_THAT(e.what(), Catch::StartsWith("EXECABORT Transaction discarded") &&
                             Catch::Contains("[command 1: ERR unknown command]"));
  }
  try {
    (void)request.parse(array({error("ERR MULTI calls can not be nested"), integer(1), integer(1),
                               error("ERR EXEC without MULTI")}));
    FAIL("no ServerError");
  } catch (const ServerError& e) {
    CHECK(e.code() == "ERR");
    CHECK_THAT(e.what(), Catch::Contains("nested"));
  }
}

// ---------------------------------------------------------------------------------------------
// Against redis-server and runnel-server, in RESP2 and RESP3

TEST_CASE("XADD, XRANGE and XREVRANGE round-trip IDs and fields, on redis-server and Runnel",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    XAddOptions at;
    at.id = StreamId{1, 1};
    CHECK(client.xadd("s", {{"a", "1"}, {"b", "2"}, {"a", "3"}}, at) == StreamId{1, 1});
    XAddOptions seq_by_server;
    seq_by_server.id_text = "2-*";
    CHECK(client.xadd("s", {{"c", "3"}}, seq_by_server) == StreamId{2, 0});
    const StreamId auto_id = client.xadd("s", {{"d", ""}});
    CHECK(auto_id.ms > 1'600'000'000'000u);  // a wall-clock time

    CHECK(client.xadd_nomkstream("absent", {{"f", "v"}}) == std::nullopt);
    CHECK(client.xlen("absent") == 0);
    CHECK(client.xadd_nomkstream("s", {{"e", "5"}}) > auto_id);

    const auto all = client.xrange("s");
    REQUIRE(all.size() == 4);
    CHECK(all[0].id == StreamId{1, 1});
    CHECK(all[0].fields == Fields{{"a", "1"}, {"b", "2"}, {"a", "3"}});
    CHECK_FALSE(all[0].deleted);
    CHECK(all[1].fields == Fields{{"c", "3"}});
    CHECK(all[2].id == auto_id);
    CHECK(*all[2].field("d") == "");

    CHECK(ids_of(client.xrange("s", RangeBound::exclusive({1, 1}), StreamId{2, 0})) ==
          std::vector<StreamId>{{2, 0}});
    CHECK(ids_of(client.xrange("s", "-", "+", 2)) == std::vector<StreamId>{{1, 1}, {2, 0}});
    CHECK(client.xrange("s", "-", "+", 0).empty());
    CHECK(client.xrange("absent").empty());
    CHECK(ids_of(client.xrevrange("s", "+", "-", 1)) == std::vector<StreamId>{all[3].id});
    CHECK(ids_of(client.xrevrange("s", StreamId{2, 0}, "1")) ==
          std::vector<StreamId>{{2, 0}, {1, 1}});

    // MAXLEN trims as it adds.
    XAddOptions capped;
    capped.trim = TrimOptions::max_len(2);
    client.xadd("s", {{"f", "v"}}, capped);
    CHECK(client.xlen("s") == 2);

    CHECK(server_error_code([&] { (void)client.xadd("s", {{"f", "v"}}, at); }) == "ERR");
  });
}

TEST_CASE("XREAD reads two streams at once, and an XREAD BLOCK that runs out is empty",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "a", 3);
    XAddOptions at;
    at.id = StreamId{5, 0};
    client.xadd("b", {{"n", "5"}}, at);

    const auto both = client.xread({{"a", "1-0"}, {"b", "0"}, {"absent", "0"}});
    REQUIRE(both.size() == 2);  // streams with nothing to read are left out
    CHECK(both[0].stream == "a");
    CHECK(ids_of(both[0].entries) == std::vector<StreamId>{{2, 0}, {3, 0}});
    CHECK(*both[0].entries[1].field("n") == "3");
    CHECK(both[1].stream == "b");
    CHECK(ids_of(both[1].entries) == std::vector<StreamId>{{5, 0}});

    const auto counted = client.xread({{"a", "0"}, {"b", "0"}}, {.count = 1});
    REQUIRE(counted.size() == 2);
    CHECK(counted[0].entries.size() == 1);
    CHECK(counted[1].entries.size() == 1);

    CHECK(client.xread({{"a", "$"}, {"b", "$"}}).empty());
    const auto started = std::chrono::steady_clock::now();
    CHECK(client.xread({{"a", "$"}}, {.block = 50ms}).empty());
    CHECK(std::chrono::steady_clock::now() - started >= 40ms);
  });
}

TEST_CASE("Consumer groups: XGROUP, XREADGROUP, XACK and both forms of XPENDING",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "s", 3);
    CHECK(client.xgroup_create("s", "g", "0") == Ok{});
    CHECK(client.xgroup_create("fresh", "g", "$", true) == Ok{});
    CHECK(client.xlen("fresh") == 0);

    const auto first = client.xreadgroup("g", "alice", {{"s", ">"}}, {.count = 2});
    REQUIRE(first.size() == 1);
    CHECK(first[0].stream == "s");
    CHECK(ids_of(first[0].entries) == std::vector<StreamId>{{1, 0}, {2, 0}});
    const auto rest = client.xreadgroup("g", "bob", {{"s", ">"}});
    REQUIRE(rest.size() == 1);
    CHECK(ids_of(rest[0].entries) == std::vector<StreamId>{{3, 0}});
    CHECK(client.xreadgroup("g", "bob", {{"s", ">"}}).empty());
    // A consumer's history: its pending entries (reading them counts as a delivery).
    const auto history = client.xreadgroup("g", "alice", {{"s", "0"}});
    REQUIRE(history.size() == 1);
    CHECK(ids_of(history[0].entries) == std::vector<StreamId>{{1, 0}, {2, 0}});

    const PendingSummary summary = client.xpending("s", "g");
    CHECK(summary.count == 3);
    CHECK(summary.smallest == StreamId{1, 0});
    CHECK(summary.largest == StreamId{3, 0});
    CHECK(summary.consumers ==
          std::vector<std::pair<std::string, std::uint64_t>>{{"alice", 2}, {"bob", 1}});

    const std::vector<PendingEntry> pending = client.xpending("s", "g", XPendingOptions{});
    REQUIRE(pending.size() == 3);
    CHECK(pending[0].id == StreamId{1, 0});
    CHECK(pending[0].consumer == "alice");
    CHECK(pending[0].deliveries == 2);
    CHECK(pending[0].idle_ms < 60'000);
    CHECK(pending[2].consumer == "bob");
    CHECK(pending[2].deliveries == 1);
    XPendingOptions of_bob;
    of_bob.consumer = "bob";
    of_bob.start = RangeBound::exclusive({1, 0});
    CHECK(client.xpending("s", "g", of_bob).size() == 1);
    XPendingOptions idle_long;
    idle_long.idle_ms = 3'600'000;
    CHECK(client.xpending("s", "g", idle_long).empty());

    CHECK(client.xack("s", "g", {{1, 0}, {1, 0}, {9, 0}}) == 1);
    CHECK(client.xpending("s", "g").count == 2);

    CHECK(client.xgroup_createconsumer("s", "g", "carol"));
    CHECK_FALSE(client.xgroup_createconsumer("s", "g", "carol"));
    CHECK(client.xgroup_delconsumer("s", "g", "carol") == 0);
    CHECK(client.xgroup_delconsumer("s", "g", "bob") == 1);
    CHECK(client.xpending("s", "g").count == 1);

    const PendingSummary none = client.xpending("fresh", "g");
    CHECK(none.count == 0);
    CHECK_FALSE(none.smallest.has_value());
    CHECK_FALSE(none.largest.has_value());
    CHECK(none.consumers.empty());

    CHECK(client.xgroup_setid("s", "g", "0", 0) == Ok{});
    CHECK(client.xgroup_destroy("s", "g"));
    CHECK_FALSE(client.xgroup_destroy("s", "g"));

    // NOACK: delivered, never pending.
    client.xgroup_create("s", "quiet", "0");
    XReadGroupOptions noack;
    noack.noack = true;
    REQUIRE(client.xreadgroup("quiet", "c", {{"s", ">"}}, noack).size() == 1);
    CHECK(client.xpending("s", "quiet").count == 0);

    // A blocking group read that runs out.
    XReadGroupOptions briefly;
    briefly.block = 50ms;
    CHECK(client.xreadgroup("quiet", "c", {{"s", ">"}}, briefly).empty());
  });
}

TEST_CASE("XINFO GROUPS parses into GroupInfo in RESP2 and RESP3, from redis-server and Runnel",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "s", 3);
    client.xgroup_create("s", "g", "0");
    auto groups = client.xinfo_groups("s");
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].name == "g");
    CHECK(groups[0].consumers == 0);
    CHECK(groups[0].pending == 0);
    CHECK(groups[0].last_delivered_id == StreamId{0, 0});
    CHECK(groups[0].entries_read == std::nullopt);
    CHECK(groups[0].lag == 3u);

    client.xreadgroup("g", "alice", {{"s", ">"}}, {.count = 2});
    groups = client.xinfo_groups("s");
    REQUIRE(groups.size() == 1);
    CHECK(groups[0].consumers == 1);
    CHECK(groups[0].pending == 2);
    CHECK(groups[0].last_delivered_id == StreamId{2, 0});
    CHECK(groups[0].entries_read == 2u);
    CHECK(groups[0].lag == 1u);

    // A group made at "$" has read nothing it can count: entries-read nil; once entries come
    // after it, the lag is unknown too.
    client.xgroup_create("s", "late", "$");
    XAddOptions at;
    at.id = StreamId{4, 0};
    client.xadd("s", {{"n", "4"}}, at);
    groups = client.xinfo_groups("s");
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].name == "late");
    CHECK(groups[1].last_delivered_id == StreamId{3, 0});
    CHECK(groups[1].entries_read == std::nullopt);
    CHECK(groups[1].lag == std::nullopt);
    CHECK(groups[0].lag == 2u);

    client.xgroup_setid("s", "late", "0", 2);
    groups = client.xinfo_groups("s");
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].entries_read == 2u);
    CHECK(groups[1].lag == 2u);

    CHECK(server_error_code([&] { (void)client.xinfo_groups("absent"); }) == "ERR");
  });
}

TEST_CASE("XINFO STREAM and XINFO CONSUMERS parse by field name, from redis-server and Runnel",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    client.xgroup_create("s", "g", "$", true);
    StreamInfo info = client.xinfo_stream("s");
    CHECK(info.length == 0);
    CHECK(info.groups == 1);
    CHECK(info.last_generated_id == StreamId{0, 0});
    CHECK_FALSE(info.first_entry.has_value());
    CHECK_FALSE(info.last_entry.has_value());

    XAddOptions at;
    at.id = StreamId{1, 1};
    client.xadd("s", {{"a", "1"}}, at);
    at.id = StreamId{2, 0};
    client.xadd("s", {{"b", "2"}}, at);
    at.id = StreamId{3, 0};
    client.xadd("s", {{"c", "3"}}, at);
    client.xdel("s", {{1, 1}});
    info = client.xinfo_stream("s");
    CHECK(info.length == 2);
    CHECK(info.radix_tree_keys >= 1);
    CHECK(info.radix_tree_nodes >= 1);
    CHECK(info.last_generated_id == StreamId{3, 0});
    CHECK(info.max_deleted_entry_id == StreamId{1, 1});
    CHECK(info.entries_added == 3);
    CHECK(info.recorded_first_entry_id == StreamId{2, 0});
    CHECK(info.groups == 1);
    REQUIRE(info.first_entry.has_value());
    CHECK(info.first_entry->id == StreamId{2, 0});
    CHECK(info.first_entry->fields == Fields{{"b", "2"}});
    REQUIRE(info.last_entry.has_value());
    CHECK(info.last_entry->id == StreamId{3, 0});

    client.xreadgroup("g", "alice", {{"s", ">"}}, {.count = 1});
    client.xgroup_createconsumer("s", "g", "bob");
    const auto consumers = client.xinfo_consumers("s", "g");
    REQUIRE(consumers.size() == 2);
    CHECK(consumers[0].name == "alice");
    CHECK(consumers[0].pending == 1);
    CHECK(consumers[0].idle_ms < 60'000);
    CHECK(consumers[1].name == "bob");
    CHECK(consumers[1].pending == 0);

    CHECK(server_error_code([&] { (void)client.xinfo_stream("absent"); }) == "ERR");
    CHECK(server_error_code([&] { (void)client.xinfo_consumers("s", "nogroup"); }) == "NOGROUP");
  });
}

TEST_CASE(
    "A pending entry deleted from the stream: a placeholder in XREADGROUP history, then "
    "in XAUTOCLAIM's deleted list",
    "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "s", 3);
    client.xgroup_create("s", "g", "0");
    client.xreadgroup("g", "alice", {{"s", ">"}});
    CHECK(client.xdel("s", {{2, 0}, {9, 0}}) == 1);

    const auto history = client.xreadgroup("g", "alice", {{"s", "0"}});
    REQUIRE(history.size() == 1);
    REQUIRE(history[0].entries.size() == 3);
    CHECK(history[0].entries[1].id == StreamId{2, 0});
    CHECK(history[0].entries[1].deleted);
    CHECK(history[0].entries[1].fields.empty());
    CHECK_FALSE(history[0].entries[0].deleted);
    CHECK(*history[0].entries[2].field("n") == "3");

    const AutoClaimResult claimed = client.xautoclaim("s", "g", "bob", 0, {0, 0});
    CHECK(claimed.next == StreamId{0, 0});
    CHECK(ids_of(claimed.entries) == std::vector<StreamId>{{1, 0}, {3, 0}});
    CHECK(claimed.deleted == std::vector<StreamId>{{2, 0}});
    CHECK(client.xpending("s", "g").count == 2);  // the deleted one left the pending list
  });
}

TEST_CASE("XCLAIM and XAUTOCLAIM move pending entries, with and without JUSTID",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "s", 3);
    client.xgroup_create("s", "g", "0");
    client.xreadgroup("g", "alice", {{"s", ">"}});

    // Nothing has been idle an hour.
    CHECK(client.xclaim("s", "g", "bob", 3'600'000, {{1, 0}}).empty());

    XClaimOptions as_if_old;
    as_if_old.idle_ms = 5000;
    as_if_old.retry_count = 7;
    const auto claimed = client.xclaim("s", "g", "bob", 0, {{1, 0}}, as_if_old);
    REQUIRE(claimed.size() == 1);
    CHECK(claimed[0].id == StreamId{1, 0});
    CHECK(claimed[0].fields == Fields{{"n", "1"}});
    XPendingOptions idle;
    idle.idle_ms = 4000;
    const auto old = client.xpending("s", "g", idle);
    REQUIRE(old.size() == 1);
    CHECK(old[0].consumer == "bob");
    CHECK(old[0].deliveries == 7);
    CHECK(old[0].idle_ms >= 5000);

    // JUSTID does not count as a delivery; FORCE of an ID not in the stream claims nothing.
    XClaimOptions force;
    force.force = true;
    CHECK(client.xclaim("s", "g", "bob", 0, {{9, 0}}, force).empty());
    CHECK(client.xclaim_justid("s", "g", "bob", 0, {{2, 0}}) == std::vector<StreamId>{{2, 0}});
    CHECK(client.xpending("s", "g", XPendingOptions{}).at(1).deliveries == 1);

    const AutoClaimResult page = client.xautoclaim("s", "g", "carol", 0, {0, 0}, 1);
    CHECK(page.next == StreamId{2, 0});
    CHECK(ids_of(page.entries) == std::vector<StreamId>{{1, 0}});
    CHECK(page.deleted.empty());
    const AutoClaimIdsResult ids = client.xautoclaim_justid("s", "g", "carol", 0, page.next);
    CHECK(ids.next == StreamId{0, 0});
    CHECK(ids.ids == std::vector<StreamId>{{2, 0}, {3, 0}});
    CHECK(ids.deleted.empty());
    CHECK(client.xpending("s", "g").consumers ==
          std::vector<std::pair<std::string, std::uint64_t>>{{"carol", 3}});

    CHECK(server_error_code([&] {
            (void)client.xclaim("s", "nog", "c", 0, {{1, 0}});
          }) == "NOGROUP");
    CHECK(server_error_code([&] { (void)client.xautoclaim("s", "nog", "c", 0, {}); }) == "NOGROUP");
  });
}

TEST_CASE("XTRIM, XDEL, XSETID, DEL and PING return their counts and answers",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target&) {
    add_numbered(client, "s", 5);
    CHECK(client.xtrim("s", TrimOptions::max_len(4)) == 1);
    CHECK(client.xtrim("s", TrimOptions::min_id({3, 0})) == 1);
    CHECK(client.xtrim("s", TrimOptions::min_id({3, 0})) == 0);
    CHECK(client.xlen("s") == 3);
    CHECK(client.xdel("s", {{3, 0}, {4, 0}, {42, 0}}) == 2);

    CHECK(client.xsetid("s", {10, 0}, 20, StreamId{9, 0}) == Ok{});
    const auto info = client.xinfo_stream("s");
    CHECK(info.last_generated_id == StreamId{10, 0});
    CHECK(info.entries_added == 20);
    CHECK(info.max_deleted_entry_id == StreamId{9, 0});
    CHECK(server_error_code([&] { (void)client.xsetid("s", {1, 0}); }) == "ERR");

    client.xadd("t", {{"f", "v"}});
    CHECK(client.del({"s", "t", "absent"}) == 2);
    CHECK(client.ping() == "PONG");
  });
}

TEST_CASE("A Transaction runs as MULTI/EXEC, and a command that fails in EXEC reports in place",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target& target) {
    XAddOptions at5;
    at5.id = StreamId{5, 0};
    XAddOptions at1;
    at1.id = StreamId{1, 0};
    const auto add5 = cmd::xadd("s", {{"f", "v"}}, at5);
    const auto add1 = cmd::xadd("s", {{"f", "v"}}, at1);  // below the top: refused in EXEC
    const auto length = cmd::xlen("s");
    Transaction transaction;
    transaction.add(add5).add(add1).add(length);
    const TransactionResult result = client.exec(transaction);
    CHECK_FALSE(result.aborted);
    REQUIRE(result.replies.size() == 3);
    CHECK(result.get(0, add5) == StreamId{5, 0});
    try {
      (void)result.get(1, add1);
      FAIL("no ServerError");
    } catch (const ServerError& e) {
      CHECK(e.code() == "ERR");
    }
    CHECK(result.get(2, length) == 1);

    // A group that exists: BUSYGROUP inside EXEC, the read after it still runs.
    client.xgroup_create("s", "g", "0");
    const auto create = cmd::xgroup_create("s", "g", "0");
    const auto read = cmd::xreadgroup("g", "c", {{"s", ">"}});
    const auto grouped = client.exec(Transaction().add(create).add(read));
    REQUIRE(grouped.replies.size() == 2);
    try {
      (void)grouped.get(0, create);
      FAIL("no ServerError");
    } catch (const ServerError& e) {
      CHECK(e.code() == "BUSYGROUP");
    }
    const auto entries = grouped.get(1, read);
    REQUIRE(entries.size() == 1);
    CHECK(ids_of(entries[0].entries) == std::vector<StreamId>{{5, 0}});

    // A command refused while queueing discards the whole transaction.
    Transaction refused;
    refused.add(cmd::xlen("s")).add(Command("XADD", "s"));
    try {
      (void)client.exec(refused);
      FAIL("no ServerError");
    } catch (const ServerError& e) {
      CHECK(e.code() == "EXECABORT");
      CHECK_THAT(e.what(), Catch::Contains("[command 1: ERR"));
    }
    CHECK(client.xlen("s") == 1);
    CHECK(client.ping() == "PONG");  // the connection is out of MULTI

    // A watched key changed by another client: EXEC answers nil.
    SyncClient other(options_for(target));
    client.execute("WATCH", "s");
    other.xadd("s", {{"f", "v"}});
    const auto aborted = client.exec(Transaction().add(length));
    CHECK(aborted.aborted);
    CHECK(aborted.replies.empty());
  });
}

TEST_CASE("Server errors carry their code: NOGROUP, BUSYGROUP, WRONGTYPE, ERR",
          "[client][streams][servers]") {
  on_each_target([](SyncClient& client, const Target& target) {
    client.xadd("s", {{"f", "v"}});
    client.xgroup_create("s", "g", "0");
    CHECK(server_error_code([&] {
            (void)client.xreadgroup("nog", "c", {{"s", ">"}});
          }) == "NOGROUP");
    CHECK(server_error_code([&] { (void)client.xpending("s", "nog"); }) == "NOGROUP");
    CHECK(server_error_code([&] { (void)client.xgroup_create("s", "g", "$"); }) == "BUSYGROUP");
    CHECK(server_error_code([&] { (void)client.xgroup_create("absent", "g", "$"); }) == "ERR");
    CHECK(server_error_code([&] { (void)client.xrange("s", "x", "+"); }) == "ERR");
    CHECK(server_error_code([&] { (void)client.xread({}); }) == "ERR");
    // Runnel holds only streams, so only redis-server has a key of another type.
    if (is_redis(target)) {
      client.execute("SET", "text", "x");
      CHECK(server_error_code([&] { (void)client.xlen("text"); }) == "WRONGTYPE");
      CHECK(server_error_code([&] { (void)client.xadd("text", {{"f", "v"}}); }) == "WRONGTYPE");
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Redis 8.2 to 8.8 (runnel-server only: redis-server 7.0 has none of it)

TEST_CASE("The SDK's XDELEX, XACKDEL, XNACK, CLAIM reads and trims with references parse Runnel's replies",
          "[client][streams][newer]") {
  using runnel::client::DeleteResult;
  using runnel::client::NackMode;
  using runnel::client::References;
  runnel::test::RunnelServer runnel;
  for (const bool resp3 : {false, true}) {
    INFO("RESP" << (resp3 ? 3 : 2));
    SyncClient client(options_for({"runnel-server", runnel.port, resp3}));
    client.execute("FLUSHALL");
    add_numbered(client, "s", 5);
    client.xgroup_create("s", "g", "0");
    XReadGroupOptions three;
    three.count = 3;
    REQUIRE(client.xreadgroup("g", "alice", {{"s", ">"}}, three).size() == 1);
    // XDELEX ACKED keeps what the group still has pending or has not read.
    CHECK(client.xdelex("s", {{1, 0}, {5, 0}, {9, 0}}, References::acked) ==
          std::vector<DeleteResult>{DeleteResult::referenced, DeleteResult::referenced, DeleteResult::referenced});
    CHECK(client.xackdel("s", "g", {{1, 0}, {4, 0}}) ==
          std::vector<DeleteResult>{DeleteResult::deleted, DeleteResult::not_found});
    // XNACK, then a CLAIM read takes it first, with its delivery.
    CHECK(client.xnack("s", "g", NackMode::fail, {{2, 0}}) == 1);
    XReadGroupOptions claim;
    claim.count = 1;
    claim.claim_min_idle_ms = 3600000;
    const auto got = client.xreadgroup("g", "bob", {{"s", ">"}}, claim);
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].entries.size() == 1);
    CHECK(got[0].entries[0].id == StreamId(2, 0));
    REQUIRE(got[0].entries[0].delivery.has_value());
    CHECK(got[0].entries[0].delivery->deliveries == 1);
    runnel::client::XNackOptions force;
    force.force = true;
    force.retry_count = 4;
    CHECK(client.xnack("s", "g", NackMode::fatal, {{5, 0}}, force) == 1);
    // A trim with DELREF drops what it trims from the pending lists.
    TrimOptions trim = TrimOptions::max_len(1);
    trim.references = References::remove;
    CHECK(client.xtrim("s", trim) == 3);  // 2, 3 and 4 (1 is gone)
    const PendingSummary left = client.xpending("s", "g");
    CHECK(left.count == 1);  // 5, NACKed (FORCE)
    CHECK(left.smallest == StreamId(5, 0));
  }
  // Idempotent producers: a retried XADD answers the first one's ID.
  {
    SyncClient client(options_for({"runnel-server", runnel.port, false}));
    XAddOptions once;
    once.idmp_producer = "p";
    once.idmp_id = "order-7";
    const StreamId first = client.xadd("idem", {{"f", "v"}}, once);
    CHECK(client.xadd("idem", {{"f", "v"}}, once) == first);
    XAddOptions hashed;
    hashed.idmp_producer = "p";
    const StreamId auto_first = client.xadd("idem", {{"a", "1"}, {"b", "2"}}, hashed);
    CHECK(client.xadd("idem", {{"b", "2"}, {"a", "1"}}, hashed) == auto_first);
    CHECK(client.xlen("idem") == 2);
    CHECK(client.run(cmd::xcfgset("idem", 60, 500)) == Ok{});
  }
  CHECK(cmd::xnack("s", "g", NackMode::silent, {{1, 0}}, {}).command.encoded() ==
        Command("XNACK", "s", "g", "SILENT", "IDS", "1", "1-0").encoded());
  CHECK(cmd::xdelex("s", {{1, 0}}).command.encoded() == Command("XDELEX", "s", "KEEPREF", "IDS", "1", "1-0").encoded());
}
