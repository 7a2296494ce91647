// ReplyWriter: each type in RESP2 and RESP3, and a round trip through the reply parser.
#include <catch2/catch.hpp>

#include <runnel/protocol/reply_parser.hpp>
#include <runnel/protocol/reply_writer.hpp>

using runnel::protocol::Reply;
using runnel::protocol::ReplyWriter;
using runnel::protocol::RespVersion;

namespace {
template <typename F>
std::string write(RespVersion v, F&& f) {
  std::string out;
  ReplyWriter w(out, v);
  f(w);
  return out;
}
}  // namespace

TEST_CASE("Each reply type is written as RESP2 and RESP3 write it", "[writer]") {
  auto both = [](auto f, std::string resp2, std::string resp3) {
    CHECK(write(RespVersion::kResp2, f) == resp2);
    CHECK(write(RespVersion::kResp3, f) == resp3);
  };
  both([](ReplyWriter& w) { w.simple("OK"); }, "+OK\r\n", "+OK\r\n");
  both([](ReplyWriter& w) { w.error("ERR x"); }, "-ERR x\r\n", "-ERR x\r\n");
  both([](ReplyWriter& w) { w.integer(-42); }, ":-42\r\n", ":-42\r\n");
  both([](ReplyWriter& w) { w.bulk(std::string_view("a\0b", 3)); }, std::string("$3\r\na\0b\r\n", 9),
       std::string("$3\r\na\0b\r\n", 9));
  both([](ReplyWriter& w) { w.null(); }, "$-1\r\n", "_\r\n");
  both([](ReplyWriter& w) { w.null_array(); }, "*-1\r\n", "_\r\n");
  both([](ReplyWriter& w) { w.array(2); }, "*2\r\n", "*2\r\n");
  both([](ReplyWriter& w) { w.map(2); }, "*4\r\n", "%2\r\n");
  both([](ReplyWriter& w) { w.set(3); }, "*3\r\n", "~3\r\n");
  both([](ReplyWriter& w) { w.boolean(true); }, ":1\r\n", "#t\r\n");
  both([](ReplyWriter& w) { w.dbl(1.5); }, "$3\r\n1.5\r\n", ",1.5\r\n");
  both([](ReplyWriter& w) { w.dbl(-1.0 / 0.0); }, "$4\r\n-inf\r\n", ",-inf\r\n");
  both([](ReplyWriter& w) { w.verbatim("hi"); }, "$2\r\nhi\r\n", "=6\r\ntxt:hi\r\n");
}

TEST_CASE("Written replies parse back to the same values", "[writer]") {
  std::string out;
  ReplyWriter w(out, RespVersion::kResp3);
  w.map(2);
  w.bulk("k");
  w.array(3);
  w.integer(1);
  w.null();
  w.verbatim("text");
  w.simple("s");
  w.boolean(false);
  Reply reply;
  for (std::size_t cut = 0; cut < out.size(); ++cut) {
    Reply partial;
    REQUIRE(runnel::protocol::parse_reply(std::string_view(out).substr(0, cut), partial).status ==
            runnel::protocol::ReplyStatus::kNeedMore);
  }
  const auto result = runnel::protocol::parse_reply(out, reply);
  REQUIRE(result.status == runnel::protocol::ReplyStatus::kDone);
  REQUIRE(result.consumed == out.size());
  REQUIRE(reply.type == Reply::Type::kMap);
  REQUIRE(reply.elements.size() == 4);
  REQUIRE(reply.elements[1].elements.size() == 3);
  CHECK(reply.elements[1].elements[1].type == Reply::Type::kNull);
  CHECK(reply.elements[1].elements[2].str == "text");
  CHECK(reply.elements[3].type == Reply::Type::kBoolean);
}

TEST_CASE("The reply parser refuses nesting deeper than its bound", "[writer]") {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "*1\r\n";
  deep += ":1\r\n";
  Reply reply;
  CHECK(runnel::protocol::parse_reply(deep, reply, 64).status == runnel::protocol::ReplyStatus::kError);
  CHECK(runnel::protocol::parse_reply(deep, reply, 128).status == runnel::protocol::ReplyStatus::kDone);
}
